/*-------------------------------------------------------------------------
 *
 * shim.c
 *		  Just enough of a PostgreSQL backend, outside the server, to link
 *		  the real, unmodified fdw/rowcodec.c into a libFuzzer target.
 *
 * These functions stand in for PostgreSQL's: memory contexts (palloc and
 * friends, backed by malloc and freed per input), error reporting (ereport
 * of an ERROR runs the error context callbacks, then siglongjmp()s to the
 * harness's PG_TRY, as errfinish() does), the catalog lookups rowcodec.c
 * makes (over a small fixed catalog of types), pg_any_to_server() (UTF-8
 * validated in place, or converted to LATIN1), and the types' input and
 * receive functions.
 *
 * The type functions here are not PostgreSQL's and are not what is fuzzed:
 * PostgreSQL's own input and receive functions validate values inside the
 * server (test/fuzz_test.go fuzzes the decoder there). What this target
 * fuzzes is rowcodec.c's framing, bounds checks and dispatch, so the stubs
 * read every byte they are given, the NUL after a receive buffer included,
 * and a receive stub may stop short of the end of its value (to exercise
 * the decoder's "whole value read" check). A value they return is built
 * from exactly the bytes they read, so the harness can check that the
 * decoder put the right bytes into the right attribute.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdio.h>
#include <stdlib.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/uuid.h"

#include "pg_mooncake.h"
#include "shim.h"

/* PostgreSQL routes these to its own snprintf (libpgport); use libc's */
#undef vsnprintf
#undef snprintf
#undef vfprintf
#undef fprintf

/* ----------------------------------------------------------------
 * The catalog
 * ----------------------------------------------------------------
 */

static const FuzzType fuzz_catalog[] = {
	{"int2", INT2OID, 2, true, TYPALIGN_SHORT, INT2OID, InvalidOid},
	{"int4", INT4OID, 4, true, TYPALIGN_INT, INT4OID, InvalidOid},
	{"int8", INT8OID, 8, true, TYPALIGN_DOUBLE, INT8OID, InvalidOid},
	{"float4", FLOAT4OID, 4, true, TYPALIGN_INT, FLOAT4OID, InvalidOid},
	{"float8", FLOAT8OID, 8, true, TYPALIGN_DOUBLE, FLOAT8OID, InvalidOid},
	{"bool", BOOLOID, 1, true, TYPALIGN_CHAR, BOOLOID, InvalidOid},
	{"date", DATEOID, 4, true, TYPALIGN_INT, DATEOID, InvalidOid},
	{"timestamp", TIMESTAMPOID, 8, true, TYPALIGN_DOUBLE, TIMESTAMPOID, InvalidOid},
	{"timestamptz", TIMESTAMPTZOID, 8, true, TYPALIGN_DOUBLE, TIMESTAMPTZOID, InvalidOid},
	{"text", TEXTOID, -1, false, TYPALIGN_INT, TEXTOID, InvalidOid},
	{"varchar", VARCHAROID, -1, false, TYPALIGN_INT, VARCHAROID, InvalidOid},
	{"bpchar", BPCHAROID, -1, false, TYPALIGN_INT, BPCHAROID, InvalidOid},
	{"name", NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR, NAMEOID, CHAROID},
	{"json", JSONOID, -1, false, TYPALIGN_INT, JSONOID, InvalidOid},
	{"jsonb", JSONBOID, -1, false, TYPALIGN_INT, JSONBOID, InvalidOid},
	{"numeric", NUMERICOID, -1, false, TYPALIGN_INT, NUMERICOID, InvalidOid},
	{"bytea", BYTEAOID, -1, false, TYPALIGN_INT, BYTEAOID, InvalidOid},
	{"int4[]", INT4ARRAYOID, -1, false, TYPALIGN_INT, INT4ARRAYOID, INT4OID},
	{"text[]", TEXTARRAYOID, -1, false, TYPALIGN_INT, TEXTARRAYOID, TEXTOID},
	{"uuid", UUIDOID, UUID_LEN, false, TYPALIGN_CHAR, UUIDOID, InvalidOid},
	{"interval", INTERVALOID, 16, false, TYPALIGN_DOUBLE, INTERVALOID, InvalidOid},
	{"text_domain", FUZZ_TEXT_DOMAIN_OID, -1, false, TYPALIGN_INT, TEXTOID, InvalidOid},
	{"int4_domain", FUZZ_INT4_DOMAIN_OID, 4, true, TYPALIGN_INT, INT4OID, InvalidOid},
};

#define FUZZ_NTYPES lengthof(fuzz_catalog)

/*
 * The columns the harness picks from, by index: keep the order, the seed
 * corpus (gen_corpus.py) refers to them by it. Every decoding of
 * rowcodec.c is here: the inline binary fast paths, timestamps with a
 * typmod (receive function), the text-like types whose binary format goes
 * through the input function (also through a domain), and types with
 * structure that only have receive and input functions.
 */
const FuzzColumnType fuzz_column_types[] = {
	{"int2", INT2OID, -1},		/* 0 */
	{"int4", INT4OID, -1},		/* 1 */
	{"int8", INT8OID, -1},		/* 2 */
	{"float4", FLOAT4OID, -1},	/* 3 */
	{"float8", FLOAT8OID, -1},	/* 4 */
	{"bool", BOOLOID, -1},		/* 5 */
	{"date", DATEOID, -1},		/* 6 */
	{"timestamp", TIMESTAMPOID, -1},	/* 7 */
	{"timestamptz", TIMESTAMPTZOID, -1},	/* 8 */
	{"timestamp(3)", TIMESTAMPOID, 3},	/* 9 */
	{"timestamptz(0)", TIMESTAMPTZOID, 0},	/* 10 */
	{"text", TEXTOID, -1},		/* 11 */
	{"varchar", VARCHAROID, -1},	/* 12 */
	{"varchar(5)", VARCHAROID, VARHDRSZ + 5},	/* 13 */
	{"bpchar(3)", BPCHAROID, VARHDRSZ + 3},	/* 14 */
	{"name", NAMEOID, -1},		/* 15 */
	{"json", JSONOID, -1},		/* 16 */
	{"jsonb", JSONBOID, -1},	/* 17 */
	{"numeric", NUMERICOID, -1},	/* 18 */
	{"numeric(10,2)", NUMERICOID, ((10 << 16) | 2) + VARHDRSZ},	/* 19 */
	{"bytea", BYTEAOID, -1},	/* 20 */
	{"int4[]", INT4ARRAYOID, -1},	/* 21 */
	{"text[]", TEXTARRAYOID, -1},	/* 22 */
	{"uuid", UUIDOID, -1},		/* 23 */
	{"interval", INTERVALOID, -1},	/* 24 */
	{"text_domain", FUZZ_TEXT_DOMAIN_OID, -1},	/* 25 */
	{"int4_domain", FUZZ_INT4_DOMAIN_OID, -1},	/* 26 */
};

const int	fuzz_ncolumn_types = lengthof(fuzz_column_types);

FuzzOptions fuzz_options;

void
fuzz_fail(const char *fmt,...)
{
	va_list		ap;

	fputs("rowcodec_fuzz: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	abort();
}

static int
fuzz_type_index(Oid typid)
{
	int			i;

	for (i = 0; i < (int) FUZZ_NTYPES; i++)
		if (fuzz_catalog[i].oid == typid)
			return i;
	return -1;
}

const FuzzType *
fuzz_type(Oid typid)
{
	int			i = fuzz_type_index(typid);

	if (i < 0)
		fuzz_fail("lookup of type %u, which no column has", typid);
	return &fuzz_catalog[i];
}

/* Fake function OIDs: each type's input function, then its receive one */
#define FUZZ_FUNC_BASE	1000000
#define INPUT_FUNC(i)	(FUZZ_FUNC_BASE + 2 * (i))
#define RECV_FUNC(i)	(FUZZ_FUNC_BASE + 2 * (i) + 1)

static Oid
type_ioparam(const FuzzType *type)
{
	return OidIsValid(type->typelem) ? type->typelem : type->oid;
}

/* ----------------------------------------------------------------
 * Memory: palloc and friends
 *
 * Every chunk is its own malloc() (so AddressSanitizer bounds each one),
 * linked into a list that fuzz_arena_reset() frees after each input, as
 * PostgreSQL resets the memory context of a failed or finished scan.
 * ----------------------------------------------------------------
 */

typedef union ArenaChunk
{
	struct
	{
		union ArenaChunk *prev;
		union ArenaChunk *next;
	}			link;
	max_align_t align;
} ArenaChunk;

static ArenaChunk *arena_head;

static void *
arena_alloc(Size size, bool zero)
{
	ArenaChunk *chunk;

	if (!AllocSizeIsValid(size))
		elog(ERROR, "invalid memory alloc request size %zu", size);
	chunk = zero ? calloc(1, sizeof(ArenaChunk) + size)
		: malloc(sizeof(ArenaChunk) + size);
	if (chunk == NULL)
		fuzz_fail("out of memory");
	chunk->link.prev = NULL;
	chunk->link.next = arena_head;
	if (arena_head)
		arena_head->link.prev = chunk;
	arena_head = chunk;
	return chunk + 1;
}

void *
palloc(Size size)
{
	return arena_alloc(size, false);
}

void *
palloc0(Size size)
{
	return arena_alloc(size, true);
}

void
pfree(void *pointer)
{
	ArenaChunk *chunk = (ArenaChunk *) pointer - 1;

	if (chunk->link.prev)
		chunk->link.prev->link.next = chunk->link.next;
	else
		arena_head = chunk->link.next;
	if (chunk->link.next)
		chunk->link.next->link.prev = chunk->link.prev;
	free(chunk);
}

void
fuzz_arena_reset(void)
{
	while (arena_head)
	{
		ArenaChunk *next = arena_head->link.next;

		free(arena_head);
		arena_head = next;
	}
}

char *
pstrdup(const char *in)
{
	size_t		len = strlen(in);
	char	   *out = palloc(len + 1);

	memcpy(out, in, len + 1);
	return out;
}

char *
pnstrdup(const char *in, Size len)
{
	char	   *out;

	len = strnlen(in, len);
	out = palloc(len + 1);
	memcpy(out, in, len);
	out[len] = '\0';
	return out;
}

char *
psprintf(const char *fmt,...)
{
	va_list		ap;
	int			len;
	char	   *out;

	va_start(ap, fmt);
	len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (len < 0)
		fuzz_fail("psprintf: bad format \"%s\"", fmt);
	out = palloc(len + 1);
	va_start(ap, fmt);
	vsnprintf(out, len + 1, fmt, ap);
	va_end(ap);
	return out;
}

/* ----------------------------------------------------------------
 * Errors
 *
 * PostgreSQL 15's ereport(ERROR, ...) is errstart_cold() (errstart() for a
 * level not known at compile time), then the errcode/errmsg/... calls,
 * then errfinish(), which runs error_context_stack's callbacks and, for an
 * ERROR, siglongjmp()s to PG_exception_stack (PG_TRY). Levels below ERROR
 * are dropped. Messages are formatted (their arguments read) into fixed
 * buffers.
 * ----------------------------------------------------------------
 */

ErrorContextCallback *error_context_stack = NULL;
sigjmp_buf *PG_exception_stack = NULL;

static struct
{
	bool		active;			/* between errstart and the catch */
	int			elevel;
	int			sqlerrcode;
	char		message[256];
	char		detail[256];
	char		context[512];
} current_error;

static const char *
unpack_sqlstate(int sqlstate)
{
	static char buf[6];
	int			i;

	for (i = 0; i < 5; i++)
	{
		buf[i] = PGUNSIXBIT(sqlstate);
		sqlstate >>= 6;
	}
	buf[5] = '\0';
	return buf;
}

static void
error_format(char *buf, size_t size, bool append, const char *fmt, va_list ap)
{
	size_t		used = append ? strlen(buf) : 0;

	if (append && used > 0 && used + 1 < size)
		buf[used++] = '\n';
	if (used < size)
		vsnprintf(buf + used, size - used, fmt, ap);
}

bool
errstart(int elevel, const char *domain)
{
	if (elevel < ERROR)
		return false;
	if (current_error.active)
		fuzz_fail("an ERROR raised while another is being reported");
	memset(&current_error, 0, sizeof(current_error));
	current_error.active = true;
	current_error.elevel = elevel;
	current_error.sqlerrcode = ERRCODE_INTERNAL_ERROR;
	return true;
}

bool
errstart_cold(int elevel, const char *domain)
{
	return errstart(elevel, domain);
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	ErrorContextCallback *econtext;

	if (!current_error.active)
		fuzz_fail("errfinish without errstart at %s:%d", filename, lineno);
	for (econtext = error_context_stack; econtext != NULL;
		 econtext = econtext->previous)
		econtext->callback(econtext->arg);
	if (current_error.message[0] == '\0')
		fuzz_fail("an ERROR without a message at %s:%d", filename, lineno);
	if (PG_exception_stack == NULL)
		fuzz_fail("ERROR outside PG_TRY: %s", current_error.message);
	siglongjmp(*PG_exception_stack, 1);
}

void
fuzz_error_reset(void)
{
	current_error.active = false;
}

void
fuzz_error_print(void)
{
	fprintf(stderr, "ERROR %s: %s\n", unpack_sqlstate(current_error.sqlerrcode),
			current_error.message);
	if (current_error.detail[0])
		fprintf(stderr, "DETAIL: %s\n", current_error.detail);
	if (current_error.context[0])
		fprintf(stderr, "CONTEXT: %s\n", current_error.context);
}

void
pg_re_throw(void)
{
	fuzz_fail("pg_re_throw: the harness never rethrows");
}

int
errcode(int sqlerrcode)
{
	current_error.sqlerrcode = sqlerrcode;
	return 0;
}

#define ERROR_FIELD(name, field, append) \
int \
name(const char *fmt,...) \
{ \
	va_list		ap; \
 \
	va_start(ap, fmt); \
	error_format(current_error.field, sizeof(current_error.field), \
				 append, fmt, ap); \
	va_end(ap); \
	return 0; \
}

ERROR_FIELD(errmsg, message, false)
ERROR_FIELD(errmsg_internal, message, false)
ERROR_FIELD(errdetail, detail, false)
ERROR_FIELD(errdetail_internal, detail, false)
ERROR_FIELD(errcontext_msg, context, true)

int
set_errcontext_domain(const char *domain)
{
	return 0;
}

/*
 * protocol.c's, without a connection: an ERROR with the detail given.
 */
void
mooncake_protocol_violation(MooncakeConnection *conn, const char *detail)
{
	if (conn != NULL)
		fuzz_fail("the row decoder has no connection to blame");
	ereport(ERROR,
			(errcode(ERRCODE_PROTOCOL_VIOLATION),
			 errmsg("invalid message from the mooncake sidecar"),
			 errdetail_internal("%s", detail)));
	pg_unreachable();
}

/*
 * plan.c's Oracle formats (IvorySQL's nls_* settings): this stand-in
 * server is PostgreSQL, which has none.
 */
bool
mooncake_type_needs_oracle_formats(Oid typid)
{
	return false;
}

int
mooncake_push_oracle_formats(void)
{
	fuzz_fail("Oracle formats pushed without an Oracle type");
	return 0;
}

void
mooncake_reset_transmission_modes(int nestlevel)
{
	fuzz_fail("transmission modes reset without an Oracle type");
}

/* ----------------------------------------------------------------
 * Catalog lookups and fmgr
 * ----------------------------------------------------------------
 */

Oid
getBaseType(Oid typid)
{
	return fuzz_type(typid)->basetype;
}

void
getTypeInputInfo(Oid type, Oid *typInput, Oid *typIOParam)
{
	const FuzzType *t = fuzz_type(type);

	*typInput = INPUT_FUNC(t - fuzz_catalog);
	*typIOParam = type_ioparam(t);
}

void
getTypeBinaryInputInfo(Oid type, Oid *typReceive, Oid *typIOParam)
{
	const FuzzType *t = fuzz_type(type);

	*typReceive = RECV_FUNC(t - fuzz_catalog);
	*typIOParam = type_ioparam(t);
}

static Datum
never_called(PG_FUNCTION_ARGS)
{
	fuzz_fail("a type function called through fn_addr");
}

void
fmgr_info(Oid functionId, FmgrInfo *finfo)
{
	if (functionId < FUZZ_FUNC_BASE ||
		functionId >= FUZZ_FUNC_BASE + 2 * FUZZ_NTYPES)
		fuzz_fail("fmgr_info of function %u, which no type has", functionId);
	memset(finfo, 0, sizeof(*finfo));
	finfo->fn_oid = functionId;
	finfo->fn_addr = never_called;
	finfo->fn_nargs = 3;
	finfo->fn_strict = true;
}

/* The type whose input (or receive) function flinfo is, checked */
static const FuzzType *
function_type(FmgrInfo *flinfo, bool recv, Oid typioparam)
{
	Oid			fn = flinfo->fn_oid;
	const FuzzType *t;

	if (fn < FUZZ_FUNC_BASE || fn >= FUZZ_FUNC_BASE + 2 * FUZZ_NTYPES ||
		flinfo->fn_addr != never_called)
		fuzz_fail("%s of an FmgrInfo fmgr_info did not fill (function %u)",
				  recv ? "ReceiveFunctionCall" : "InputFunctionCall", fn);
	if (((fn - FUZZ_FUNC_BASE) % 2 == 1) != recv)
		fuzz_fail("%s of %s function %u",
				  recv ? "ReceiveFunctionCall" : "InputFunctionCall",
				  recv ? "an input" : "a receive", fn);
	t = &fuzz_catalog[(fn - FUZZ_FUNC_BASE) / 2];
	if (typioparam != type_ioparam(t))
		fuzz_fail("type %s called with typioparam %u", t->name, typioparam);
	return t;
}

/* Read every byte of a value, the way a type function parses it */
static uint32
touch(const char *bytes, int len)
{
	uint32		sum = 0;
	int			i;

	for (i = 0; i < len; i++)
		sum = sum * 31 + (unsigned char) bytes[i];
	return sum;
}

/*
 * The Datum a stub returns for the bytes it read: for pass-by-value types
 * the bytes (at most typlen of them) as an integer, for fixed-length types
 * typlen bytes, zero-padded, and for varlena types a varlena of them.
 */
static Datum
make_datum(const FuzzType *type, const char *bytes, int len)
{
	if (type->typbyval)
	{
		uint64		v = 0;

		memcpy(&v, bytes, Min(len, type->typlen));
		return (Datum) v;
	}
	if (type->typlen > 0)
	{
		char	   *p = palloc0(type->typlen);

		memcpy(p, bytes, Min(len, type->typlen));
		return PointerGetDatum(p);
	}
	else
	{
		struct varlena *v = palloc(VARHDRSZ + len);

		SET_VARSIZE(v, VARHDRSZ + len);
		memcpy(VARDATA(v), bytes, len);
		return PointerGetDatum(v);
	}
}

bool
fuzz_datum_matches(const FuzzType *type, const char *bytes, int len, Datum d)
{
	if (type->typbyval)
	{
		uint64		v = 0;

		memcpy(&v, bytes, Min(len, type->typlen));
		return d == (Datum) v;
	}
	if (type->typlen > 0)
	{
		const char *p = DatumGetPointer(d);
		int			n = Min(len, type->typlen);
		int			i;

		if (memcmp(p, bytes, n) != 0)
			return false;
		for (i = n; i < type->typlen; i++)
			if (p[i] != 0)
				return false;
		return true;
	}
	else
	{
		const struct varlena *v = (const struct varlena *) DatumGetPointer(d);

		return VARSIZE_ANY(v) == VARHDRSZ + (Size) len &&
			memcmp(VARDATA_ANY(v), bytes, len) == 0;
	}
}

Datum
InputFunctionCall(FmgrInfo *flinfo, char *str, Oid typioparam, int32 typmod)
{
	const FuzzType *t = function_type(flinfo, false, typioparam);
	int			len;

	if (str == NULL)
		fuzz_fail("InputFunctionCall of a NULL for a value that is not NULL");
	len = strlen(str);
	(void) touch(str, len);
	if (fuzz_options.reject && str[0] == '!')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type %s: \"%s\"",
						t->name, str)));
	return make_datum(t, str, len);
}

Datum
ReceiveFunctionCall(FmgrInfo *flinfo, StringInfo buf, Oid typioparam,
					int32 typmod)
{
	const FuzzType *t = function_type(flinfo, true, typioparam);
	int			n;

	if (buf == NULL)
		fuzz_fail("ReceiveFunctionCall of a NULL for a value that is not NULL");
	if (buf->cursor != 0 || buf->len < 0 || buf->maxlen <= buf->len)
		fuzz_fail("ReceiveFunctionCall: a buffer with cursor %d, len %d, maxlen %d",
				  buf->cursor, buf->len, buf->maxlen);
	/* receive functions may rely on the NUL after the value */
	(void) touch(buf->data, buf->len + 1);
	if (buf->data[buf->len] != '\0')
		fuzz_fail("ReceiveFunctionCall: the value is not NUL-terminated");
	if (fuzz_options.reject && buf->len > 0 && buf->data[0] == '!')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid binary value for type %s", t->name)));
	n = buf->len - Min(buf->len, fuzz_options.recv_short);
	buf->cursor = n;
	return make_datum(t, buf->data, n);
}

/* ----------------------------------------------------------------
 * Encoding: UTF-8 from the sidecar to the database encoding
 * ----------------------------------------------------------------
 */

/*
 * Length of the valid UTF-8 character at s (n bytes left), or 0, with
 * pg_utf8_islegal()'s rules: no NUL, no overlong forms, no surrogates,
 * nothing above U+10FFFF. *cp gets its code point.
 */
static int
utf8_char(const unsigned char *s, int n, uint32 *cp)
{
	unsigned char c = s[0];
	int			len;
	int			i;

	if (c == 0)
		return 0;
	if (c < 0x80)
	{
		*cp = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF)
		len = 2, *cp = c & 0x1F;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3, *cp = c & 0x0F;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4, *cp = c & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++)
	{
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		*cp = (*cp << 6) | (s[i] & 0x3F);
	}
	if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) ||
		(c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] > 0x8F))
		return 0;
	return len;
}

/* As fuzz_server_text(), but raise the ERROR pg_any_to_server() would */
static int
server_text(const char *s, int len, char *out, bool raise)
{
	const unsigned char *p = (const unsigned char *) s;
	int			pos = 0;
	int			outlen = 0;

	while (pos < len)
	{
		uint32		cp;
		int			n = utf8_char(p + pos, len - pos, &cp);

		if (n == 0)
		{
			if (!raise)
				return -1;
			ereport(ERROR,
					(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
					 errmsg("invalid byte sequence for encoding \"UTF8\": 0x%02x",
							p[pos])));
		}
		if (fuzz_options.latin1_database)
		{
			if (cp > 0xFF)
			{
				if (!raise)
					return -1;
				ereport(ERROR,
						(errcode(ERRCODE_UNTRANSLATABLE_CHARACTER),
						 errmsg("character with byte sequence 0x%02x... in encoding \"UTF8\" has no equivalent in encoding \"LATIN1\"",
								p[pos])));
			}
			if (out)
				out[outlen] = (char) cp;
			outlen++;
		}
		else
		{
			if (out)
				memcpy(out + outlen, s + pos, n);
			outlen += n;
		}
		pos += n;
	}
	if (out)
		out[outlen] = '\0';
	return outlen;
}

int
fuzz_server_text(const char *utf8, int len, char *out)
{
	if (len <= 0)
	{
		out[0] = '\0';
		return 0;
	}
	return server_text(utf8, len, out, false);
}

/*
 * mbutils.c's: an empty string as is; UTF-8 to a UTF-8 database validated
 * and returned as is (not NUL-terminated: the caller must copy it); to a
 * LATIN1 database converted into a palloc'd, NUL-terminated string.
 */
char *
pg_any_to_server(const char *s, int len, int encoding)
{
	char	   *out;

	if (encoding != PG_UTF8)
		fuzz_fail("pg_any_to_server from encoding %d, not UTF8", encoding);
	if (len <= 0)
		return unconstify(char *, s);
	if (!fuzz_options.latin1_database)
	{
		(void) server_text(s, len, NULL, true);
		return unconstify(char *, s);
	}
	out = palloc(len + 1);
	(void) server_text(s, len, out, true);
	return out;
}
