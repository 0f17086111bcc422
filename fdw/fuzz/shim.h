/*-------------------------------------------------------------------------
 *
 * shim.h
 *		  The stand-in PostgreSQL backend that the row decoder (rowcodec.c)
 *		  is linked against for libFuzzer: a small type catalog, the knobs
 *		  the harness turns, and the memory arena.
 *
 * The stubs in shim.c stand in for PostgreSQL's memory contexts, error
 * reporting, catalog lookups, encoding conversion and the types' input and
 * receive functions. Those are PostgreSQL's own code and are not what is
 * fuzzed here: what is fuzzed is rowcodec.c's framing, bounds checks and
 * dispatch. The stubs are strict instead: they read every byte they are
 * handed (so AddressSanitizer sees any slice that overruns its frame) and
 * abort on any call the real functions would never receive from a correct
 * caller (an unknown type or function, a mismatched I/O parameter).
 *
 *-------------------------------------------------------------------------
 */
#ifndef FUZZ_SHIM_H
#define FUZZ_SHIM_H

#include "postgres.h"

/* Types whose OIDs are not in pg_type.h: domains, as CREATE DOMAIN makes */
#define FUZZ_TEXT_DOMAIN_OID	16384	/* domain over text */
#define FUZZ_INT4_DOMAIN_OID	16385	/* domain over int4 */

/* A row of the stand-in pg_type */
typedef struct FuzzType
{
	const char *name;
	Oid			oid;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	Oid			basetype;		/* getBaseType(): itself unless a domain */
	Oid			typelem;		/* the input/receive functions' typioparam */
} FuzzType;

/* A column type the harness can choose: a type and a typmod */
typedef struct FuzzColumnType
{
	const char *name;			/* as SQL spells it, for messages */
	Oid			typid;
	int32		typmod;
} FuzzColumnType;

extern const FuzzColumnType fuzz_column_types[];
extern const int fuzz_ncolumn_types;

/* The catalog row of a type; aborts on a type the catalog has not */
extern const FuzzType *fuzz_type(Oid typid);

/*
 * Knobs the harness sets for each input, from its header. A LATIN1
 * database makes pg_any_to_server() convert (a palloc'd copy) instead of
 * validating in place; recv_short makes receive functions stop that many
 * bytes before the end of their value (0: they read it all); reject makes
 * the input and receive functions raise an ERROR for a value that begins
 * with '!'.
 */
typedef struct FuzzOptions
{
	bool		latin1_database;
	int			recv_short;
	bool		reject;
} FuzzOptions;

extern FuzzOptions fuzz_options;

/* Free everything palloc'd since the last reset */
extern void fuzz_arena_reset(void);

/* Forget the error being reported, after the harness caught it */
extern void fuzz_error_reset(void);

/* Print the error being reported to stderr */
extern void fuzz_error_print(void);

/*
 * What the stubs make of a value: the Datum an input or receive function
 * returns for these bytes. fuzz_datum_matches() tells whether d is that
 * Datum (reading all of it when it is a pointer).
 */
extern bool fuzz_datum_matches(const FuzzType *type, const char *bytes,
							   int len, Datum d);

/*
 * The text an input function gets for a UTF-8 value in the current
 * database encoding, or -1 if pg_any_to_server() would fail. out has room
 * for len + 1 bytes.
 */
extern int	fuzz_server_text(const char *utf8, int len, char *out);

/* Print a broken invariant and abort, so libFuzzer records the input */
extern void fuzz_fail(const char *fmt,...) pg_attribute_printf(1, 2)
			pg_attribute_noreturn();

#endif							/* FUZZ_SHIM_H */
