/*-------------------------------------------------------------------------
 *
 * rowcodec.c
 *		  Decoding the rows of a scan answer into a TupleTableSlot.
 *
 * A scan answer opens with a T frame that gives each column a format, 0 for
 * text and 1 for PostgreSQL's binary send/recv format, then carries D frames
 * of rows laid out like COPY BINARY tuples: a uint16 field count, then per
 * field an int32 length (-1 for NULL) and that many bytes. Values are built
 * by the column type's own receive or input function, so PostgreSQL itself
 * validates them; the common fixed-width types are decoded inline.
 *
 * Text on the wire is UTF-8. Receive functions of text types would read it
 * in the session's client_encoding, so binary text, varchar, bpchar, name
 * and json values are converted from UTF-8 and given to the input function
 * instead, like text-format values. Other receive functions that embed
 * text (arrays of text, enums, jsonb) assume client_encoding is UTF-8 when
 * the database encoding is not.
 *
 * Every length is checked against the frame before it is read: a malformed
 * frame is a protocol violation, never a read out of bounds.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "mb/pg_wchar.h"
#include "port/pg_bswap.h"
#include "storage/itemptr.h"
#include "utils/date.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "pg_mooncake.h"

/* How a column's field bytes become a Datum */
typedef enum ColumnDecoding
{
	DECODE_RECV,				/* the type's receive function */
	DECODE_INPUT,				/* UTF-8 text through the input function */
	DECODE_INT2,				/* the rest: binary, decoded inline */
	DECODE_INT4,
	DECODE_INT8,
	DECODE_FLOAT4,
	DECODE_FLOAT8,
	DECODE_BOOL,
	DECODE_DATE,
	DECODE_TIMESTAMP			/* timestamp and timestamptz without typmod */
} ColumnDecoding;

typedef struct ColumnDecoder
{
	AttrNumber	attnum;			/* slot attribute the field goes to */
	Oid			typid;			/* its type */
	int32		typmod;			/* and typmod */
	ColumnDecoding how;			/* decoding method */
	FmgrInfo	func;			/* input or receive function, if used */
	Oid			typioparam;		/* the function's type I/O parameter */
} ColumnDecoder;

struct MooncakeRowDecoder
{
	char	   *relname;		/* foreign table, for error context */
	TupleDesc	tupdesc;		/* descriptor of the scan slot */
	int			ncolumns;		/* fields in each row */
	ColumnDecoder *columns;		/* one per field */
	int			current;		/* field being decoded, or -1 */
	bool		has_tid;		/* a field is the row's ctid (columnstore UPDATE/DELETE) */
	bool		oracle_formats; /* text of types outside pg_catalog, on IvorySQL:
								 * parsed under the fixed nls_* formats */
	ItemPointerData tid;		/* the last row's */
};

static void
decode_error_callback(void *arg)
{
	MooncakeRowDecoder *decoder = (MooncakeRowDecoder *) arg;
	Form_pg_attribute att;

	if (decoder->current < 0)
		return;
	if (decoder->columns[decoder->current].attnum < 0)
	{
		errcontext("column \"ctid\" of foreign table \"%s\"", decoder->relname);
		return;
	}
	att = TupleDescAttr(decoder->tupdesc,
						decoder->columns[decoder->current].attnum - 1);
	errcontext("column \"%s\" of foreign table \"%s\"",
			   NameStr(att->attname), decoder->relname);
}

/* Types whose binary format is their text, which must be UTF-8 decoded */
static bool
is_text_like(Oid typid)
{
	switch (getBaseType(typid))
	{
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case NAMEOID:
		case JSONOID:
			return true;
		default:
			return false;
	}
}

static ColumnDecoding
binary_fast_path(Oid typid, int32 typmod)
{
	switch (typid)
	{
		case INT2OID:
			return DECODE_INT2;
		case INT4OID:
			return DECODE_INT4;
		case INT8OID:
			return DECODE_INT8;
		case FLOAT4OID:
			return DECODE_FLOAT4;
		case FLOAT8OID:
			return DECODE_FLOAT8;
		case BOOLOID:
			return DECODE_BOOL;
		case DATEOID:
			return DECODE_DATE;
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			/* a typmod means rounding, which the receive function does */
			return typmod < 0 ? DECODE_TIMESTAMP : DECODE_RECV;
		default:
			return DECODE_RECV;
	}
}

/*
 * Build a decoder from the T frame of a scan answer. The scan asked for
 * ncolumns columns, which go to the slot attributes attnums[]; tupdesc is
 * the scan slot's descriptor. The decoder and its function lookups are
 * allocated in CurrentMemoryContext.
 */
MooncakeRowDecoder *
mooncake_row_decoder_create(const char *relname, TupleDesc tupdesc,
							int ncolumns, const AttrNumber *attnums,
							const char *payload, uint32 len)
{
	MooncakeRowDecoder *decoder;
	uint16		nformats;
	int			i;

	if (len < sizeof(uint16))
		mooncake_protocol_violation(NULL, "The row description is truncated.");
	memcpy(&nformats, payload, sizeof(uint16));
	nformats = pg_ntoh16(nformats);
	if (len != sizeof(uint16) + nformats)
		mooncake_protocol_violation(NULL, "The row description has the wrong length.");
	if (nformats != ncolumns)
		mooncake_protocol_violation(NULL,
									psprintf("The row description has %d columns, the scan asked for %d.",
											 (int) nformats, ncolumns));

	decoder = palloc0(sizeof(MooncakeRowDecoder));
	decoder->relname = pstrdup(relname);
	decoder->tupdesc = tupdesc;
	decoder->ncolumns = ncolumns;
	decoder->columns = palloc0(sizeof(ColumnDecoder) * Max(ncolumns, 1));
	decoder->current = -1;

	for (i = 0; i < ncolumns; i++)
	{
		ColumnDecoder *col = &decoder->columns[i];
		Form_pg_attribute att;
		char		format = payload[sizeof(uint16) + i];
		Oid			funcid = InvalidOid;

		col->attnum = attnums[i];
		if (attnums[i] == SelfItemPointerAttributeNumber)
		{
			/* the row id of a columnstore table's UPDATE or DELETE */
			if (format != 0)
				mooncake_protocol_violation(NULL, "The row description has a binary ctid.");
			col->typid = TIDOID;
			col->typmod = -1;
			col->how = DECODE_INPUT;
			getTypeInputInfo(TIDOID, &funcid, &col->typioparam);
			fmgr_info(funcid, &col->func);
			decoder->has_tid = true;
			continue;
		}
		if (attnums[i] < 1 || attnums[i] > tupdesc->natts)
			mooncake_protocol_violation(NULL, psprintf("Column %d is not in the scan's tuple.", (int) attnums[i]));
		att = TupleDescAttr(tupdesc, attnums[i] - 1);
		col->typid = att->atttypid;
		col->typmod = att->atttypmod;

		if (format == 0 || (format == 1 && is_text_like(col->typid)))
		{
			col->how = DECODE_INPUT;
			getTypeInputInfo(col->typid, &funcid, &col->typioparam);
			if (!decoder->oracle_formats && mooncake_type_needs_oracle_formats(col->typid))
				decoder->oracle_formats = true;
		}
		else if (format == 1)
		{
			col->how = binary_fast_path(col->typid, col->typmod);
			if (col->how == DECODE_RECV)
				getTypeBinaryInputInfo(col->typid, &funcid, &col->typioparam);
		}
		else
			mooncake_protocol_violation(NULL,
										psprintf("The row description has format %d for column \"%s\".",
												 (int) format, NameStr(att->attname)));

		if (OidIsValid(funcid))
			fmgr_info(funcid, &col->func);
	}
	return decoder;
}

static void
check_length(int len, int expected)
{
	if (len != expected)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("incorrect binary data format"),
				 errdetail("The value has %d bytes, its type has %d.",
						   len, expected)));
}

static Datum
decode_field(ColumnDecoder *col, const char *data, int len)
{
	switch (col->how)
	{
		case DECODE_INT2:
			{
				uint16		v;

				check_length(len, sizeof(v));
				memcpy(&v, data, sizeof(v));
				return Int16GetDatum((int16) pg_ntoh16(v));
			}
		case DECODE_INT4:
			{
				uint32		v;

				check_length(len, sizeof(v));
				memcpy(&v, data, sizeof(v));
				return Int32GetDatum((int32) pg_ntoh32(v));
			}
		case DECODE_INT8:
			{
				uint64		v;

				check_length(len, sizeof(v));
				memcpy(&v, data, sizeof(v));
				return Int64GetDatum((int64) pg_ntoh64(v));
			}
		case DECODE_FLOAT4:
			{
				union
				{
					uint32		i;
					float4		f;
				}			v;

				check_length(len, sizeof(v.i));
				memcpy(&v.i, data, sizeof(v.i));
				v.i = pg_ntoh32(v.i);
				return Float4GetDatum(v.f);
			}
		case DECODE_FLOAT8:
			{
				union
				{
					uint64		i;
					float8		f;
				}			v;

				check_length(len, sizeof(v.i));
				memcpy(&v.i, data, sizeof(v.i));
				v.i = pg_ntoh64(v.i);
				return Float8GetDatum(v.f);
			}
		case DECODE_BOOL:
			check_length(len, 1);
			return BoolGetDatum(data[0] != 0);
		case DECODE_DATE:
			{
				uint32		v;
				DateADT		date;

				check_length(len, sizeof(v));
				memcpy(&v, data, sizeof(v));
				date = (DateADT) pg_ntoh32(v);
				/* the checks of date_recv */
				if (!DATE_NOT_FINITE(date) && !IS_VALID_DATE(date))
					ereport(ERROR,
							(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
							 errmsg("date out of range")));
				return DateADTGetDatum(date);
			}
		case DECODE_TIMESTAMP:
			{
				uint64		v;
				Timestamp	ts;

				check_length(len, sizeof(v));
				memcpy(&v, data, sizeof(v));
				ts = (Timestamp) pg_ntoh64(v);
				/* the checks of timestamp_recv and timestamptz_recv */
				if (!TIMESTAMP_NOT_FINITE(ts) && !IS_VALID_TIMESTAMP(ts))
					ereport(ERROR,
							(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
							 errmsg("timestamp out of range")));
				return TimestampGetDatum(ts);
			}
		case DECODE_INPUT:
			{
				char	   *str = pg_any_to_server(data, len, PG_UTF8);

				/* unconverted text is the frame's bytes: terminate a copy */
				if (str == data)
					str = pnstrdup(data, len);
				return InputFunctionCall(&col->func, str, col->typioparam,
										 col->typmod);
			}
		case DECODE_RECV:
			{
				StringInfoData buf;
				Datum		result;

				/* receive functions want a NUL-terminated buffer of their own */
				buf.data = palloc(len + 1);
				memcpy(buf.data, data, len);
				buf.data[len] = '\0';
				buf.len = len;
				buf.maxlen = len + 1;
				buf.cursor = 0;

				result = ReceiveFunctionCall(&col->func, &buf, col->typioparam,
											 col->typmod);
				if (buf.cursor != buf.len)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
							 errmsg("incorrect binary data format")));
				return result;
			}
	}
	elog(ERROR, "unrecognized mooncake column decoding %d", (int) col->how);
	return (Datum) 0;
}

/*
 * Decode the row at *offset of a D frame into slot and advance *offset past
 * it. The slot must be empty; attributes the scan did not ask for are NULL.
 * The caller stores the tuple. Values are allocated in CurrentMemoryContext.
 */
void
mooncake_decode_row(MooncakeRowDecoder *decoder, const char *frame,
					uint32 framelen, uint32 *offset, TupleTableSlot *slot)
{
	Datum	   *values = slot->tts_values;
	bool	   *isnull = slot->tts_isnull;
	uint32		pos = *offset;
	uint16		nfields;
	ErrorContextCallback errcallback;
	int			i;
	int			nest = 0;

	if (framelen - pos < sizeof(uint16))
		mooncake_protocol_violation(NULL, "A row is truncated.");
	memcpy(&nfields, frame + pos, sizeof(uint16));
	nfields = pg_ntoh16(nfields);
	pos += sizeof(uint16);
	if (nfields != decoder->ncolumns)
		mooncake_protocol_violation(NULL,
									psprintf("A row has %d fields, the row description %d.",
											 (int) nfields, decoder->ncolumns));

	memset(isnull, true, sizeof(bool) * slot->tts_tupleDescriptor->natts);

	if (decoder->oracle_formats)
		nest = mooncake_push_oracle_formats();
	errcallback.callback = decode_error_callback;
	errcallback.arg = decoder;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	for (i = 0; i < decoder->ncolumns; i++)
	{
		ColumnDecoder *col = &decoder->columns[i];
		uint32		netlen;
		int32		len;

		decoder->current = i;
		if (framelen - pos < sizeof(uint32))
			mooncake_protocol_violation(NULL, "A row is truncated.");
		memcpy(&netlen, frame + pos, sizeof(uint32));
		len = (int32) pg_ntoh32(netlen);
		pos += sizeof(uint32);

		if (len == -1)
			continue;
		if (len < 0 || (uint32) len > framelen - pos)
			mooncake_protocol_violation(NULL, "A field is longer than its row.");

		if (col->attnum < 0)
			decoder->tid = *((ItemPointer) DatumGetPointer(decode_field(col, frame + pos, len)));
		else
		{
			values[col->attnum - 1] = decode_field(col, frame + pos, len);
			isnull[col->attnum - 1] = false;
		}
		pos += len;
	}

	decoder->current = -1;
	error_context_stack = errcallback.previous;
	if (decoder->oracle_formats)
		mooncake_reset_transmission_modes(nest);
	*offset = pos;
}

/*
 * The ctid of the row decoded last, when the scan asked for it (the row
 * ids of a columnstore table's UPDATE or DELETE).
 */
bool
mooncake_decoded_tid(MooncakeRowDecoder *decoder, ItemPointer tid)
{
	if (!decoder->has_tid)
		return false;
	*tid = decoder->tid;
	return true;
}
