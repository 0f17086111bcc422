package service

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmooncake/mooncake/catalog"
	"github.com/pgmooncake/mooncake/sql"
)

func TestFrameRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		typ     byte
		payload []byte
	}{
		{"empty", frameComplete, []byte{}},
		{"json", frameQuery, []byte(`{"op":"status"}`)},
		{"binary", frameData, []byte{0, 1, 0xff, 0, 'E'}},
		{"largest", frameQuery, bytes.Repeat([]byte{'x'}, maxRequestLength)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := writeFrame(&buf, tc.typ, tc.payload); err != nil {
				t.Fatalf("writeFrame: %v", err)
			}
			if want := 5 + len(tc.payload); buf.Len() != want {
				t.Errorf("writeFrame wrote %d bytes; want %d", buf.Len(), want)
			}
			if got := binary.BigEndian.Uint32(buf.Bytes()[1:5]); got != uint32(len(tc.payload)) {
				t.Errorf("frame length field = %d; want %d", got, len(tc.payload))
			}
			typ, payload, err := readFrame(bufio.NewReader(&buf))
			if err != nil {
				t.Fatalf("readFrame: %v", err)
			}
			if typ != tc.typ || !bytes.Equal(payload, tc.payload) {
				t.Errorf("readFrame(writeFrame(%q, %d bytes)) = %q, %d bytes; want the same", tc.typ, len(tc.payload), typ, len(payload))
			}
			if _, _, err := readFrame(bufio.NewReader(&buf)); err != io.EOF {
				t.Errorf("readFrame after the frame = %v; want io.EOF", err)
			}
		})
	}
}

func TestReadFrameRejects(t *testing.T) {
	header := func(typ byte, n uint32) []byte {
		return binary.BigEndian.AppendUint32([]byte{typ}, n)
	}
	tests := []struct {
		name  string
		input []byte
	}{
		{"oversized", header(frameQuery, maxRequestLength+1)},
		{"huge", header(frameQuery, math.MaxUint32)},
		{"short header", []byte{frameQuery, 0, 0}},
		{"short payload", append(header(frameQuery, 10), "abc"...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			typ, payload, err := readFrame(bufio.NewReader(bytes.NewReader(tc.input)))
			if err == nil {
				t.Errorf("readFrame(% x) = %q, %d bytes; want an error", tc.input, typ, len(payload))
			}
		})
	}
}

// errorFields builds an E payload by hand: code byte, string, NUL; final NUL.
func errorFields(fields ...string) []byte {
	var b []byte
	for i := 0; i < len(fields); i += 2 {
		b = append(b, fields[i][0])
		b = append(b, fields[i+1]...)
		b = append(b, 0)
	}
	return append(b, 0)
}

func TestErrorPayload(t *testing.T) {
	full := &pgconn.PgError{Code: "42P01", Message: "mirror a.b does not exist", Detail: "some detail", Hint: "some hint"}
	tests := []struct {
		name string
		err  error
		want []byte
	}{
		{"pg error", full, errorFields("C", "42P01", "M", "mirror a.b does not exist", "D", "some detail", "H", "some hint")},
		{"pg error without detail", &pgconn.PgError{Code: "0A000", Message: "no", Hint: "try"}, errorFields("C", "0A000", "M", "no", "H", "try")},
		{"wrapped pg error", fmt.Errorf("publish: %w", full), errorFields("C", "42P01", "M", "mirror a.b does not exist", "D", "some detail", "H", "some hint")},
		{"plain error", errors.New("disk on fire"), errorFields("C", "XX000", "M", "disk on fire")},
		{"wrapped plain error", fmt.Errorf("flush: %w", errors.New("disk on fire")), errorFields("C", "XX000", "M", "flush: disk on fire")},
		{"unicode", errors.New("ünïcode"), errorFields("C", "XX000", "M", "ünïcode")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := errorPayload(tc.err); !bytes.Equal(got, tc.want) {
				t.Errorf("errorPayload(%v) = %q; want %q", tc.err, got, tc.want)
			}
		})
	}
}

// field is the expected encoding of one field: int32 length, then bytes.
func field(data ...byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(data))), data...)
}

var nullField = []byte{0xff, 0xff, 0xff, 0xff}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// PostgreSQL's binary forms: date is int32 days since 2000-01-01, timestamp
// and timestamptz are int64 microseconds since 2000-01-01 00:00 UTC, with
// the extreme values meaning infinity and -infinity.
var (
	unixEpochDaysPG   int32 = -10957           // 1970-01-01 as a PostgreSQL date
	unixEpochMicrosPG int64 = -946684800000000 // 1970-01-01 as a PostgreSQL timestamp
)

const pgEpochUnixMicros = 946684800 * 1000000 // 2000-01-01 as Unix microseconds

func TestAppendValue(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	type value struct {
		name string
		oid  uint32
		want []byte
	}
	tests := []struct {
		name   string
		build  func() arrow.Array
		values []value
	}{
		{"bool", func() arrow.Array {
			b := array.NewBooleanBuilder(mem)
			defer b.Release()
			b.AppendValues([]bool{true, false}, nil)
			b.AppendNull()
			return b.NewArray()
		}, []value{
			{"true", catalog.OIDBool, field(1)},
			{"false", catalog.OIDBool, field(0)},
			{"NULL", catalog.OIDBool, nullField},
		}},
		{"int16", func() arrow.Array {
			b := array.NewInt16Builder(mem)
			defer b.Release()
			b.AppendValues([]int16{0, -1, math.MinInt16, math.MaxInt16}, nil)
			b.AppendNull()
			return b.NewArray()
		}, []value{
			{"0", catalog.OIDInt2, field(0, 0)},
			{"-1", catalog.OIDInt2, field(0xff, 0xff)},
			{"min", catalog.OIDInt2, field(0x80, 0)},
			{"max", catalog.OIDInt2, field(0x7f, 0xff)},
			{"NULL", catalog.OIDInt2, nullField},
		}},
		{"int32", func() arrow.Array {
			b := array.NewInt32Builder(mem)
			defer b.Release()
			b.AppendValues([]int32{1, -2, math.MinInt32}, nil)
			b.AppendNull()
			return b.NewArray()
		}, []value{
			{"1", catalog.OIDInt4, field(0, 0, 0, 1)},
			{"-2", catalog.OIDInt4, field(0xff, 0xff, 0xff, 0xfe)},
			{"min", catalog.OIDInt4, field(0x80, 0, 0, 0)},
			{"NULL", catalog.OIDInt4, nullField},
		}},
		{"int64", func() arrow.Array {
			b := array.NewInt64Builder(mem)
			defer b.Release()
			b.AppendValues([]int64{0x0102030405060708, -1, math.MinInt64}, nil)
			b.AppendNull()
			return b.NewArray()
		}, []value{
			{"bytes", catalog.OIDInt8, field(1, 2, 3, 4, 5, 6, 7, 8)},
			{"-1", catalog.OIDInt8, field(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)},
			{"min", catalog.OIDInt8, field(0x80, 0, 0, 0, 0, 0, 0, 0)},
			{"NULL", catalog.OIDInt8, nullField},
		}},
		{"float32", func() arrow.Array {
			b := array.NewFloat32Builder(mem)
			defer b.Release()
			nan := math.Float32frombits(0x7fc00000)
			b.AppendValues([]float32{1.5, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), nan}, nil)
			b.AppendNull()
			return b.NewArray()
		}, []value{
			{"1.5", catalog.OIDFloat4, field(0x3f, 0xc0, 0, 0)},
			{"-0", catalog.OIDFloat4, field(0x80, 0, 0, 0)},
			{"+Inf", catalog.OIDFloat4, field(0x7f, 0x80, 0, 0)},
			{"-Inf", catalog.OIDFloat4, field(0xff, 0x80, 0, 0)},
			{"NaN", catalog.OIDFloat4, field(0x7f, 0xc0, 0, 0)},
			{"NULL", catalog.OIDFloat4, nullField},
		}},
		{"float64", func() arrow.Array {
			b := array.NewFloat64Builder(mem)
			defer b.Release()
			b.AppendValues([]float64{1.5, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.Float64frombits(0x7ff8000000000000)}, nil)
			b.AppendNull()
			return b.NewArray()
		}, []value{
			{"1.5", catalog.OIDFloat8, field(0x3f, 0xf8, 0, 0, 0, 0, 0, 0)},
			{"-0", catalog.OIDFloat8, field(0x80, 0, 0, 0, 0, 0, 0, 0)},
			{"+Inf", catalog.OIDFloat8, field(0x7f, 0xf0, 0, 0, 0, 0, 0, 0)},
			{"-Inf", catalog.OIDFloat8, field(0xff, 0xf0, 0, 0, 0, 0, 0, 0)},
			{"NaN", catalog.OIDFloat8, field(0x7f, 0xf8, 0, 0, 0, 0, 0, 0)},
			{"NULL", catalog.OIDFloat8, nullField},
		}},
		{"string", func() arrow.Array {
			b := array.NewStringBuilder(mem)
			defer b.Release()
			b.AppendValues([]string{"abc", "", "ünï"}, nil)
			b.AppendNull()
			return b.NewArray()
		}, []value{
			{"abc", catalog.OIDText, field('a', 'b', 'c')},
			{"empty", catalog.OIDText, field()},
			{"non-ASCII", catalog.OIDVarchar, field([]byte("ünï")...)},
			{"NULL", catalog.OIDText, nullField},
		}},
		{"large string", func() arrow.Array {
			b := array.NewLargeStringBuilder(mem)
			defer b.Release()
			b.Append("xy")
			return b.NewArray()
		}, []value{
			{"xy", catalog.OIDText, field('x', 'y')},
		}},
		{"string view", func() arrow.Array {
			b := array.NewStringViewBuilder(mem)
			defer b.Release()
			b.AppendValues([]string{"short", "a string longer than twelve bytes"}, nil)
			return b.NewArray()
		}, []value{
			{"inline", catalog.OIDText, field([]byte("short")...)},
			{"out of line", catalog.OIDText, field([]byte("a string longer than twelve bytes")...)},
		}},
		{"date32", func() arrow.Array {
			b := array.NewDate32Builder(mem)
			defer b.Release()
			b.AppendValues([]arrow.Date32{0, 10957, 10958, math.MaxInt32, -math.MaxInt32, math.MinInt32}, nil)
			b.AppendNull()
			return b.NewArray()
		}, []value{
			{"1970-01-01", catalog.OIDDate, field(be32(uint32(unixEpochDaysPG))...)},
			{"2000-01-01", catalog.OIDDate, field(0, 0, 0, 0)},
			{"2000-01-02", catalog.OIDDate, field(0, 0, 0, 1)},
			{"infinity", catalog.OIDDate, field(0x7f, 0xff, 0xff, 0xff)},
			{"-infinity from DuckDB", catalog.OIDDate, field(0x80, 0, 0, 0)},
			{"-infinity", catalog.OIDDate, field(0x80, 0, 0, 0)},
			{"NULL", catalog.OIDDate, nullField},
		}},
		{"timestamp us", func() arrow.Array {
			b := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Microsecond})
			defer b.Release()
			b.AppendValues([]arrow.Timestamp{
				arrow.Timestamp(pgEpochUnixMicros), 0, arrow.Timestamp(pgEpochUnixMicros + 1),
				arrow.Timestamp(pgEpochUnixMicros - 1), math.MaxInt64, -math.MaxInt64, math.MinInt64,
			}, nil)
			b.AppendNull()
			return b.NewArray()
		}, []value{
			{"2000-01-01", catalog.OIDTimestamp, field(be64(0)...)},
			{"1970-01-01", catalog.OIDTimestamp, field(be64(uint64(unixEpochMicrosPG))...)},
			{"+1us", catalog.OIDTimestamp, field(be64(1)...)},
			{"-1us", catalog.OIDTimestamp, field(be64(math.MaxUint64)...)},
			{"infinity", catalog.OIDTimestamp, field(0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)},
			{"-infinity from DuckDB", catalog.OIDTimestamp, field(0x80, 0, 0, 0, 0, 0, 0, 0)},
			{"-infinity", catalog.OIDTimestamp, field(0x80, 0, 0, 0, 0, 0, 0, 0)},
			{"NULL", catalog.OIDTimestamp, nullField},
		}},
		{"timestamptz us", func() arrow.Array {
			b := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"})
			defer b.Release()
			b.AppendValues([]arrow.Timestamp{arrow.Timestamp(pgEpochUnixMicros), 0, math.MaxInt64, -math.MaxInt64}, nil)
			b.AppendNull()
			return b.NewArray()
		}, []value{
			{"2000-01-01", catalog.OIDTimestampTZ, field(be64(0)...)},
			{"1970-01-01", catalog.OIDTimestampTZ, field(be64(uint64(unixEpochMicrosPG))...)},
			{"infinity", catalog.OIDTimestampTZ, field(0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)},
			{"-infinity", catalog.OIDTimestampTZ, field(0x80, 0, 0, 0, 0, 0, 0, 0)},
			{"NULL", catalog.OIDTimestampTZ, nullField},
		}},
		{"timestamp other units", func() arrow.Array {
			// One array per unit would be needed; seconds are enough to check
			// the scaling, the other units share the code path.
			b := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Second})
			defer b.Release()
			b.AppendValues([]arrow.Timestamp{946684801}, nil)
			return b.NewArray()
		}, []value{
			{"2000-01-01 00:00:01", catalog.OIDTimestamp, field(be64(1000000)...)},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			arr := tc.build()
			defer arr.Release()
			if arr.Len() != len(tc.values) {
				t.Fatalf("test builds %d values and expects %d", arr.Len(), len(tc.values))
			}
			for i, v := range tc.values {
				prefix := []byte("prefix")
				got, err := appendValue(prefix, arr, i, v.oid)
				if err != nil {
					t.Errorf("appendValue(%s %s) error: %v", tc.name, v.name, err)
					continue
				}
				if !bytes.HasPrefix(got, []byte("prefix")) {
					t.Errorf("appendValue(%s %s) lost the bytes it appends to", tc.name, v.name)
					continue
				}
				if got = got[len("prefix"):]; !bytes.Equal(got, v.want) {
					t.Errorf("appendValue(%s %s) = % x; want % x", tc.name, v.name, got, v.want)
				}
			}
		})
	}
}

func TestAppendValueUnsupported(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	b := array.NewUint8Builder(mem)
	defer b.Release()
	b.Append(1)
	arr := b.NewArray()
	defer arr.Release()
	if got, err := appendValue(nil, arr, 0, catalog.OIDInt2); err == nil {
		t.Errorf("appendValue(uint8) = % x; want an error", got)
	}
}

// TestRowEncoder checks the T payload and the D frames of a two-column
// record: per row a uint16 field count, then the fields.
func TestRowEncoder(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	ib := array.NewInt32Builder(mem)
	defer ib.Release()
	ib.AppendValues([]int32{7, 8}, nil)
	ints := ib.NewArray()
	defer ints.Release()
	sb := array.NewStringBuilder(mem)
	defer sb.Release()
	sb.Append("1.50")
	sb.AppendNull()
	strs := sb.NewArray()
	defer strs.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int32}, {Name: "b", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)
	rec := array.NewRecordBatch(schema, []arrow.Array{ints, strs}, 2)
	defer rec.Release()

	enc := &rowEncoder{scan: &sql.Scan{
		Formats: []sql.Format{sql.FormatBinary, sql.FormatText},
		TypeOID: []uint32{catalog.OIDInt4, catalog.OIDNumeric},
	}}
	if got, want := enc.rowDescription(), []byte{0, 2, 1, 0}; !bytes.Equal(got, want) {
		t.Errorf("rowDescription() = % x; want % x", got, want)
	}
	var out bytes.Buffer
	if err := enc.encode(&out, rec); err != nil {
		t.Fatalf("encode: %v", err)
	}
	if err := enc.flush(&out); err != nil {
		t.Fatalf("flush: %v", err)
	}
	var want []byte
	want = append(want, 0, 2)
	want = append(want, field(0, 0, 0, 7)...)
	want = append(want, field([]byte("1.50")...)...)
	want = append(want, 0, 2)
	want = append(want, field(0, 0, 0, 8)...)
	want = append(want, nullField...)
	typ, payload, err := readFrame(bufio.NewReader(&out))
	if err != nil {
		t.Fatalf("readFrame: %v", err)
	}
	if typ != frameData || !bytes.Equal(payload, want) {
		t.Errorf("encode(2 rows) = %q % x; want %q % x", typ, payload, frameData, want)
	}
	if enc.rows != 2 {
		t.Errorf("encode(2 rows) counted %d rows; want 2", enc.rows)
	}
	if out.Len() != 0 {
		t.Errorf("encode(2 rows) wrote %d bytes after the D frame; want none", out.Len())
	}
}

// TestAppendValueTypes covers the types whose Arrow form differs from
// their binary form: uuid arrives as text and leaves as 16 bytes, bytea as
// raw bytes, time as microseconds, and timestamps past DuckDB's range
// arrive shifted (catalog.TimestampShift).
func TestAppendValueTypes(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	firstPGMicros := int64(-210866803200000000 - pgEpochUnixMicros)
	uuidBytes := []byte{0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11}

	tests := []struct {
		name  string
		build func() arrow.Array
		oid   uint32
		want  [][]byte // per value; nil means an error
	}{
		{"uuid", func() arrow.Array {
			b := array.NewStringBuilder(mem)
			defer b.Release()
			b.AppendValues([]string{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
				"a0eebc999c0b4ef8bb6d6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g", "a0eebc99-9c0b-4ef8-bb6d+6bb9bd380a11"}, nil)
			b.AppendNull()
			return b.NewArray()
		}, catalog.OIDUUID, [][]byte{field(uuidBytes...), field(uuidBytes...), nil, nil, nil, nullField}},
		{"uuid fixed size binary", func() arrow.Array {
			b := array.NewFixedSizeBinaryBuilder(mem, &arrow.FixedSizeBinaryType{ByteWidth: 16})
			defer b.Release()
			b.Append(uuidBytes)
			return b.NewArray()
		}, catalog.OIDUUID, [][]byte{field(uuidBytes...)}},
		{"bytea", func() arrow.Array {
			b := array.NewBinaryBuilder(mem, arrow.BinaryTypes.Binary)
			defer b.Release()
			b.AppendValues([][]byte{{0, 0xff, '\\'}, {}}, nil)
			b.AppendNull()
			return b.NewArray()
		}, catalog.OIDBytea, [][]byte{field(0, 0xff, '\\'), field(), nullField}},
		{"time", func() arrow.Array {
			b := array.NewTime64Builder(mem, &arrow.Time64Type{Unit: arrow.Microsecond})
			defer b.Release()
			b.AppendValues([]arrow.Time64{0, 1, 86400000000}, nil)
			b.AppendNull()
			return b.NewArray()
		}, catalog.OIDTime, [][]byte{field(be64(0)...), field(be64(1)...), field(be64(86400000000)...), nullField}},
		{"time ns", func() arrow.Array {
			b := array.NewTime64Builder(mem, &arrow.Time64Type{Unit: arrow.Nanosecond})
			defer b.Release()
			b.AppendValues([]arrow.Time64{86399999999000}, nil)
			return b.NewArray()
		}, catalog.OIDTime, [][]byte{field(be64(86399999999)...)}},
		{"timestamp past DuckDB's range", func() arrow.Array {
			b := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Microsecond})
			defer b.Release()
			b.AppendValues([]arrow.Timestamp{
				-1<<62 - 1,           // 294247-01-10 04:00:54.775807, the first
				-4610740039282163713, // 294276-12-31 23:59:59.999999, PostgreSQL's last
				-210866803200000000,  // 4713-11-24 00:00:00 BC, PostgreSQL's first, not shifted
			}, nil)
			return b.NewArray()
		}, catalog.OIDTimestamp, [][]byte{
			field(be64(uint64(math.MaxInt64 - pgEpochUnixMicros))...),
			field(be64(9223371331199999999)...),
			field(be64(uint64(firstPGMicros))...),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			arr := tc.build()
			defer arr.Release()
			if arr.Len() != len(tc.want) {
				t.Fatalf("test builds %d values and expects %d", arr.Len(), len(tc.want))
			}
			for i, want := range tc.want {
				got, err := appendValue(nil, arr, i, tc.oid)
				switch {
				case want == nil && err == nil:
					t.Errorf("appendValue(%s value %d) = % x; want an error", tc.name, i, got)
				case want != nil && err != nil:
					t.Errorf("appendValue(%s value %d) error: %v", tc.name, i, err)
				case want != nil && !bytes.Equal(got, want):
					t.Errorf("appendValue(%s value %d) = % x; want % x", tc.name, i, got, want)
				}
			}
		})
	}
}

// TestRowEncoderTextColumns checks that a column sent as text carries its
// string as it is, whatever its PostgreSQL type (a uuid included), and
// that only strings can be sent as text.
func TestRowEncoderTextColumns(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	sb := array.NewStringBuilder(mem)
	defer sb.Release()
	sb.Append("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
	strs := sb.NewArray()
	defer strs.Release()
	ib := array.NewInt32Builder(mem)
	defer ib.Release()
	ib.Append(7)
	ints := ib.NewArray()
	defer ints.Release()

	schema := arrow.NewSchema([]arrow.Field{{Name: "u", Type: arrow.BinaryTypes.String}}, nil)
	rec := array.NewRecordBatch(schema, []arrow.Array{strs}, 1)
	defer rec.Release()
	enc := &rowEncoder{scan: &sql.Scan{Formats: []sql.Format{sql.FormatText}, TypeOID: []uint32{catalog.OIDUUID}}}
	var out bytes.Buffer
	if err := enc.encode(&out, rec); err != nil {
		t.Fatalf("encode: %v", err)
	}
	want := append([]byte{0, 1}, field([]byte("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")...)...)
	if !bytes.Equal(enc.buf, want) {
		t.Errorf("encode(uuid as text) = % x; want % x", enc.buf, want)
	}

	intSchema := arrow.NewSchema([]arrow.Field{{Name: "i", Type: arrow.PrimitiveTypes.Int32}}, nil)
	intRec := array.NewRecordBatch(intSchema, []arrow.Array{ints}, 1)
	defer intRec.Release()
	enc = &rowEncoder{scan: &sql.Scan{Formats: []sql.Format{sql.FormatText}, TypeOID: []uint32{catalog.OIDInt4}}}
	if err := enc.encode(&out, intRec); err == nil {
		t.Errorf("encode(int32 as text) = % x; want an error", enc.buf)
	}
}

// TestAppendAvg checks an avg sent from its sum's text and count: of
// integers, of numeric(p,s) (the sum's scale is its display scale), NaN,
// and no values.
func TestAppendAvg(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	sums := []string{"-4", "0.0123", "299999999.96", "NaN", ""}
	counts := []int64{3, 2, 3, 2, 0}
	want := []string{"-1.3333333333333333", "0.00615000000000000000", "99999999.986666666667", "NaN", ""}
	sb := array.NewStringBuilder(mem)
	defer sb.Release()
	for _, s := range sums {
		if s == "" {
			sb.AppendNull()
		} else {
			sb.Append(s)
		}
	}
	sumArr := sb.NewArray()
	defer sumArr.Release()
	cb := array.NewInt64Builder(mem)
	defer cb.Release()
	cb.AppendValues(counts, nil)
	countArr := cb.NewArray()
	defer countArr.Release()
	for i := range sums {
		got, err := appendAvg(nil, sumArr, countArr, i)
		if err != nil {
			t.Fatalf("appendAvg(%q, %d): %v", sums[i], counts[i], err)
		}
		w := nullField
		if want[i] != "" {
			w = field([]byte(want[i])...)
		}
		if !bytes.Equal(got, w) {
			t.Errorf("appendAvg(%q, %d) = %q; want %q", sums[i], counts[i], got, w)
		}
	}
}

// TestCheckListenAddress checks that the TCP listener refuses addresses
// other hosts can reach unless told it may.
func TestCheckListenAddress(t *testing.T) {
	for _, tc := range []struct {
		addr          string
		tls, insecure bool
		ok            bool
	}{
		{"127.0.0.1:7433", false, false, true},
		{"[::1]:7433", false, false, true},
		{"localhost:7433", false, false, true},
		{"0.0.0.0:7433", false, false, false},
		{"10.1.2.3:7433", false, false, false},
		{":7433", false, false, false},
		{"10.1.2.3:7433", false, true, true},
		{"0.0.0.0:7433", true, false, true},
		{":7433", true, false, true},
		{"no-port", true, false, false},
	} {
		if err := CheckListenAddress(tc.addr, tc.tls, tc.insecure); (err == nil) != tc.ok {
			t.Errorf("CheckListenAddress(%q, tls %v, insecure %v) = %v; want ok %v", tc.addr, tc.tls, tc.insecure, err, tc.ok)
		}
	}
}
