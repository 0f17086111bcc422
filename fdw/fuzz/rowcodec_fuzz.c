/*-------------------------------------------------------------------------
 *
 * rowcodec_fuzz.c
 *		  libFuzzer target of the FDW's row decoder, fdw/rowcodec.c, built
 *		  outside the server against the stand-in backend of shim.c.
 *
 * What is fuzzed is rowcodec.c itself, unmodified: the T frame (row
 * description) it builds a decoder from, the D frames (rows) it decodes,
 * its length and bounds checks, and its dispatch of each field to an
 * inline binary decoding, an input function or a receive function. The
 * input and receive functions, the encoding conversion and the catalog are
 * stubs (shim.c), stand-ins for PostgreSQL's own, which are not fuzzed
 * here; test/fuzz_test.go runs the decoder in a backend with the real ones.
 *
 * An input is:
 *
 *	 byte 0			bits 0-2: the scan's number of columns, minus 1 (1..8);
 *					bits 3-4: slot attributes the scan does not ask for (0..3);
 *					bits 5-7: rotation of the columns' attribute numbers
 *	 byte 1			bit 0: the database is LATIN1 (text is converted), not
 *					UTF8 (validated in place); bits 1-3: receive functions
 *					stop that many bytes short of their value; bit 4: input
 *					and receive functions reject a value starting with '!'
 *	 ncolumns bytes	each column's type: an index, modulo their number, into
 *					fuzz_column_types[] (shim.c)
 *	 1 byte			length L of the T frame's payload
 *	 L bytes		the T frame's payload (uint16 count, one format byte each)
 *	 the rest		D frames' payloads back to back (rows: uint16 field count,
 *					then per field an int32 length, -1 for NULL, and the bytes)
 *
 * Each payload is copied into an allocation of its own exact size, so any
 * read past the end of a frame is AddressSanitizer's to catch. As
 * fdw/fuzz.c does in a backend, the harness creates a decoder from the T
 * payload, then decodes rows until the D payloads are used up, catching
 * the ERROR a malformed frame or value raises (PG_TRY). After each row it
 * decoded, it checks the row against its own reading of the frame: the
 * offset is past the row, each field went to its attribute, NULL or not,
 * with the value built from exactly its bytes, and the attributes the scan
 * did not ask for are NULL. A broken check aborts, which libFuzzer reports
 * as a crash.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "port/pg_bswap.h"
#include "utils/date.h"
#include "utils/timestamp.h"

#include "pg_mooncake.h"
#include "shim.h"

/* PostgreSQL routes these to its own snprintf (libpgport); use libc's */
#undef snprintf
#undef fprintf

#define MAX_COLUMNS	8
#define MAX_EXTRA	3
#define MAX_ATTS	(MAX_COLUMNS + MAX_EXTRA)

/* Poison for the slot's values before each row */
#define POISON_DATUM	((Datum) UINT64CONST(0xdeadbeefdeadbeef))

/* How the decoder must decode a column (rowcodec.c's ColumnDecoding) */
typedef enum Expected
{
	EXPECT_RECV,
	EXPECT_INPUT,
	EXPECT_INT2,
	EXPECT_INT4,
	EXPECT_INT8,
	EXPECT_FLOAT4,
	EXPECT_FLOAT8,
	EXPECT_BOOL,
	EXPECT_DATE,
	EXPECT_TIMESTAMP
} Expected;

typedef struct FuzzInput
{
	int			ncolumns;
	int			natts;
	AttrNumber	attnums[MAX_COLUMNS];
	const FuzzColumnType *coltypes[MAX_COLUMNS];
	char	   *tframe;			/* T payload, its own allocation */
	uint32		tlen;
	char	   *dframe;			/* D payloads, their own allocation */
	uint32		dlen;
	TupleDesc	tupdesc;
	TupleTableSlot *slot;
} FuzzInput;

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ROWCODEC_FUZZ_VERBOSE=1: tell what became of each input */
static bool verbose;

static uint16
get16(const char *p)
{
	uint16		v;

	memcpy(&v, p, sizeof(v));
	return pg_ntoh16(v);
}

static uint32
get32(const char *p)
{
	uint32		v;

	memcpy(&v, p, sizeof(v));
	return pg_ntoh32(v);
}

static uint64
get64(const char *p)
{
	uint64		v;

	memcpy(&v, p, sizeof(v));
	return pg_ntoh64(v);
}

/* The decoding the header comment of rowcodec.c promises for a column */
static Expected
expected_decoding(const FuzzColumnType *ct, char format)
{
	Oid			base = fuzz_type(ct->typid)->basetype;
	bool		text_like = base == TEXTOID || base == VARCHAROID ||
		base == BPCHAROID || base == NAMEOID || base == JSONOID;

	if (format == 0 || text_like)
		return EXPECT_INPUT;
	switch (ct->typid)
	{
		case INT2OID:
			return EXPECT_INT2;
		case INT4OID:
			return EXPECT_INT4;
		case INT8OID:
			return EXPECT_INT8;
		case FLOAT4OID:
			return EXPECT_FLOAT4;
		case FLOAT8OID:
			return EXPECT_FLOAT8;
		case BOOLOID:
			return EXPECT_BOOL;
		case DATEOID:
			return EXPECT_DATE;
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return ct->typmod < 0 ? EXPECT_TIMESTAMP : EXPECT_RECV;
		default:
			return EXPECT_RECV;
	}
}

static void
check_fixed(int col, int len, int expected)
{
	if (len != expected)
		fuzz_fail("column %d: a %d-byte value decoded as a %d-byte type",
				  col, len, expected);
}

/* Check the value the decoder stored for column col, whose bytes are p */
static void
check_value(const FuzzInput *in, int col, const char *p, int len, Datum d)
{
	const FuzzColumnType *ct = in->coltypes[col];
	const FuzzType *type = fuzz_type(ct->typid);
	char		format = in->tframe[sizeof(uint16) + col];
	Datum		want;

	switch (expected_decoding(ct, format))
	{
		case EXPECT_INT2:
			check_fixed(col, len, 2);
			want = Int16GetDatum((int16) get16(p));
			break;
		case EXPECT_INT4:
			check_fixed(col, len, 4);
			want = Int32GetDatum((int32) get32(p));
			break;
		case EXPECT_INT8:
			check_fixed(col, len, 8);
			want = Int64GetDatum((int64) get64(p));
			break;
		case EXPECT_FLOAT4:
			check_fixed(col, len, 4);
			/* the bits of the float4, sign-extended as Float4GetDatum does */
			want = Int32GetDatum((int32) get32(p));
			if (isnan(DatumGetFloat4(want)) && isnan(DatumGetFloat4(d)))
				return;
			break;
		case EXPECT_FLOAT8:
			check_fixed(col, len, 8);
			want = Int64GetDatum((int64) get64(p));
			if (isnan(DatumGetFloat8(want)) && isnan(DatumGetFloat8(d)))
				return;
			break;
		case EXPECT_BOOL:
			check_fixed(col, len, 1);
			want = BoolGetDatum(p[0] != 0);
			break;
		case EXPECT_DATE:
			{
				DateADT		date = (DateADT) get32(p);

				check_fixed(col, len, 4);
				if (!DATE_NOT_FINITE(date) && !IS_VALID_DATE(date))
					fuzz_fail("column %d: date %d out of range accepted",
							  col, (int) date);
				want = DateADTGetDatum(date);
				break;
			}
		case EXPECT_TIMESTAMP:
			{
				Timestamp	ts = (Timestamp) get64(p);

				check_fixed(col, len, 8);
				if (!TIMESTAMP_NOT_FINITE(ts) && !IS_VALID_TIMESTAMP(ts))
					fuzz_fail("column %d: timestamp " INT64_FORMAT " out of range accepted",
							  col, ts);
				want = TimestampGetDatum(ts);
				break;
			}
		case EXPECT_INPUT:
			{
				char	   *text = malloc(len + 1);
				int			n = fuzz_server_text(p, len, text);

				if (n < 0)
					fuzz_fail("column %d: invalid UTF-8 text accepted", col);
				if (fuzz_options.reject && text[0] == '!')
					fuzz_fail("column %d: the input function's ERROR lost", col);
				if (!fuzz_datum_matches(type, text, n, d))
					fuzz_fail("column %d (%s): the value is not its field's text",
							  col, ct->name);
				free(text);
				return;
			}
		case EXPECT_RECV:
			if (fuzz_options.recv_short > 0 && len > 0)
				fuzz_fail("column %d: a value not read to its end accepted", col);
			if (fuzz_options.reject && len > 0 && p[0] == '!')
				fuzz_fail("column %d: the receive function's ERROR lost", col);
			if (!fuzz_datum_matches(type, p, len, d))
				fuzz_fail("column %d (%s): the value is not its field's bytes",
						  col, ct->name);
			return;
	}
	if (d != want)
		fuzz_fail("column %d (%s): decoded " UINT64_FORMAT ", the field holds " UINT64_FORMAT,
				  col, ct->name, (uint64) d, (uint64) want);
}

/*
 * The decoder took the row at start..end of the D payload: read it again
 * and check the slot against it.
 */
static void
check_row(const FuzzInput *in, uint32 start, uint32 end)
{
	const char *frame = in->dframe;
	Datum	   *values = in->slot->tts_values;
	bool	   *isnull = in->slot->tts_isnull;
	bool		requested[MAX_ATTS] = {false};
	uint32		pos = start;
	int			i;

	if (end <= start || end > in->dlen)
		fuzz_fail("the row at %u ends at %u, in a frame of %u bytes",
				  start, end, in->dlen);
	if (in->dlen - pos < 2 || get16(frame + pos) != in->ncolumns)
		fuzz_fail("the row at %u has no count of %d fields", start,
				  in->ncolumns);
	pos += 2;
	for (i = 0; i < in->ncolumns; i++)
	{
		int			att = in->attnums[i] - 1;
		int32		len;

		requested[att] = true;
		if (in->dlen - pos < 4)
			fuzz_fail("the row at %u is truncated in field %d", start, i);
		len = (int32) get32(frame + pos);
		pos += 4;
		if (len == -1)
		{
			if (!isnull[att])
				fuzz_fail("field %d is NULL, attribute %d is not", i, att + 1);
			continue;
		}
		if (len < 0 || (uint32) len > in->dlen - pos)
			fuzz_fail("field %d of the row at %u is %d bytes, past its frame",
					  i, start, len);
		if (isnull[att])
			fuzz_fail("field %d is not NULL, attribute %d is", i, att + 1);
		check_value(in, i, frame + pos, len, values[att]);
		pos += len;
	}
	if (pos != end)
		fuzz_fail("the row at %u ends at %u, the decoder went on to %u",
				  start, pos, end);
	for (i = 0; i < in->natts; i++)
		if (!requested[i] && !isnull[i])
			fuzz_fail("attribute %d, not in the scan, is not NULL", i + 1);
}

/* Decode as fdw/fuzz.c does: a decoder from the T frame, then every row */
static void
decode_all(FuzzInput *in)
{
	ErrorContextCallback *context = error_context_stack;
	MooncakeRowDecoder *decoder;
	uint32		offset = 0;
	int			rows = 0;
	int			i;

	decoder = mooncake_row_decoder_create("fuzz", in->tupdesc, in->ncolumns,
										  in->attnums, in->tframe, in->tlen);
	if (in->tlen != sizeof(uint16) + in->ncolumns ||
		get16(in->tframe) != in->ncolumns)
		fuzz_fail("a row description of %u bytes accepted for %d columns",
				  in->tlen, in->ncolumns);
	for (i = 0; i < in->ncolumns; i++)
		if (in->tframe[sizeof(uint16) + i] != 0 &&
			in->tframe[sizeof(uint16) + i] != 1)
			fuzz_fail("format %d accepted", in->tframe[sizeof(uint16) + i]);

	while (offset < in->dlen)
	{
		uint32		start = offset;

		/* ExecClearTuple() leaves the old values: poison them */
		for (i = 0; i < in->natts; i++)
		{
			in->slot->tts_values[i] = POISON_DATUM;
			in->slot->tts_isnull[i] = false;
		}
		mooncake_decode_row(decoder, in->dframe, in->dlen, &offset, in->slot);
		if (error_context_stack != context)
			fuzz_fail("the decoder left its error context callback behind");
		check_row(in, start, offset);
		rows++;
	}
	if (verbose)
		fprintf(stderr, "decoded %d rows\n", rows);
}

static TupleDesc
make_tupdesc(const FuzzInput *in)
{
	TupleDesc	desc = calloc(1, offsetof(struct TupleDescData, attrs) +
							  in->natts * sizeof(FormData_pg_attribute));
	int			i;

	desc->natts = in->natts;
	desc->tdtypeid = RECORDOID;
	desc->tdtypmod = -1;
	desc->tdrefcount = -1;
	for (i = 0; i < in->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		const FuzzColumnType *ct = &fuzz_column_types[1];	/* int4 */
		const FuzzType *type;
		int			c;

		for (c = 0; c < in->ncolumns; c++)
			if (in->attnums[c] == i + 1)
				ct = in->coltypes[c];
		type = fuzz_type(ct->typid);
		snprintf(NameStr(att->attname), NAMEDATALEN, "c%d", i + 1);
		att->atttypid = ct->typid;
		att->atttypmod = ct->typmod;
		att->attnum = i + 1;
		att->attlen = type->typlen;
		att->attbyval = type->typbyval;
		att->attalign = type->typalign;
		att->attstorage = type->typlen == -1 ? TYPSTORAGE_EXTENDED : TYPSTORAGE_PLAIN;
		att->attstattarget = -1;
		att->attcacheoff = -1;
		att->attislocal = true;
	}
	return desc;
}

static void *
copy_bytes(const uint8_t *data, size_t len)
{
	/* malloc(0) is a distinct pointer with no byte to read */
	void	   *p = malloc(len);

	if (len > 0)
		memcpy(p, data, len);
	return p;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FuzzInput	in;
	size_t		pos;
	int			extra;
	int			rotation;
	int			i;

	verbose = getenv("ROWCODEC_FUZZ_VERBOSE") != NULL;
	if (size < 3)
		return 0;
	memset(&in, 0, sizeof(in));
	in.ncolumns = (data[0] & 7) + 1;
	extra = (data[0] >> 3) & 3;
	rotation = data[0] >> 5;
	in.natts = in.ncolumns + extra;
	fuzz_options.latin1_database = (data[1] & 1) != 0;
	fuzz_options.recv_short = (data[1] >> 1) & 7;
	fuzz_options.reject = (data[1] & 0x10) != 0;
	pos = 2;
	if (size < pos + in.ncolumns + 1)
		return 0;
	for (i = 0; i < in.ncolumns; i++)
	{
		in.coltypes[i] = &fuzz_column_types[data[pos + i] % fuzz_ncolumn_types];
		in.attnums[i] = (i + rotation) % in.natts + 1;
	}
	pos += in.ncolumns;
	in.tlen = Min(data[pos], size - pos - 1);
	pos++;
	in.tframe = copy_bytes(data + pos, in.tlen);
	pos += in.tlen;
	in.dlen = size - pos;
	in.dframe = copy_bytes(data + pos, in.dlen);

	in.tupdesc = make_tupdesc(&in);
	in.slot = calloc(1, sizeof(TupleTableSlot));
	in.slot->type = T_TupleTableSlot;
	in.slot->tts_tupleDescriptor = in.tupdesc;
	in.slot->tts_values = malloc(in.natts * sizeof(Datum));
	in.slot->tts_isnull = malloc(in.natts * sizeof(bool));

	PG_TRY();
	{
		decode_all(&in);
	}
	PG_CATCH();
	{
		if (verbose)
			fuzz_error_print();
		fuzz_error_reset();
	}
	PG_END_TRY();

	if (error_context_stack != NULL || PG_exception_stack != NULL)
		fuzz_fail("error state left behind");
	fuzz_arena_reset();
	free(in.slot->tts_values);
	free(in.slot->tts_isnull);
	free(in.slot);
	free(in.tupdesc);
	free(in.tframe);
	free(in.dframe);
	return 0;
}
