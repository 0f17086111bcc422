/*-------------------------------------------------------------------------
 *
 * fuzz.c
 *		  A way in for fuzzing the row decoder (rowcodec.c) where it runs: in
 *		  a backend, with PostgreSQL's own receive and input functions.
 *
 * mooncake.decode_rows(types regtype[], description bytea, rows bytea)
 * decodes a row description (a T frame's payload) and the rows of D frames
 * (their payloads back to back) for columns of the given types, as a scan
 * would, and returns how many rows it decoded. Whatever the bytes, it
 * returns or fails with an error; test/fuzz_test.go feeds it. Superusers
 * only: it is a test of the extension, not a user operation.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/tupdesc.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "pg_mooncake.h"

PG_FUNCTION_INFO_V1(mooncake_decode_rows);

Datum
mooncake_decode_rows(PG_FUNCTION_ARGS)
{
	ArrayType  *types = PG_GETARG_ARRAYTYPE_P(0);
	bytea	   *description = PG_GETARG_BYTEA_PP(1);
	bytea	   *rows = PG_GETARG_BYTEA_PP(2);
	Datum	   *typids;
	bool	   *nulls;
	int			ntypes;
	TupleDesc	tupdesc;
	AttrNumber *attnums;
	TupleTableSlot *slot;
	MooncakeRowDecoder *decoder;
	uint32		offset = 0;
	uint32		len = VARSIZE_ANY_EXHDR(rows);
	int64		count = 0;
	int			i;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function decode_rows")));
	deconstruct_array(types, REGTYPEOID, sizeof(Oid), true, TYPALIGN_INT,
					  &typids, &nulls, &ntypes);
	if (ntypes < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("decode_rows needs at least one type")));
	tupdesc = CreateTemplateTupleDesc(ntypes);
	attnums = palloc(sizeof(AttrNumber) * ntypes);
	for (i = 0; i < ntypes; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("the types of decode_rows must not be NULL")));
		TupleDescInitEntry(tupdesc, i + 1, psprintf("c%d", i),
						   DatumGetObjectId(typids[i]), -1, 0);
		attnums[i] = i + 1;
	}
	slot = MakeSingleTupleTableSlot(tupdesc, &TTSOpsVirtual);
	decoder = mooncake_row_decoder_create("fuzz", tupdesc, ntypes, attnums,
										  VARDATA_ANY(description),
										  VARSIZE_ANY_EXHDR(description));
	while (offset < len)
	{
		ExecClearTuple(slot);
		mooncake_decode_row(decoder, VARDATA_ANY(rows), len, &offset, slot);
		ExecStoreVirtualTuple(slot);
		count++;
	}
	ExecDropSingleTupleTableSlot(slot);
	PG_RETURN_INT64(count);
}
