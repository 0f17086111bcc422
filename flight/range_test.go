package flight

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pgmooncake/mooncake/catalog"
)

// The values below were checked against PostgreSQL 15:
//
//	SELECT '4713-01-01 BC'::date - '1970-01-01'::date;   -- -2440550
//	SELECT '4714-11-24 BC'::date - '1970-01-01'::date;   -- -2440588 (julian day 0)
//	SELECT '5874897-12-31'::date - '1970-01-01'::date;   -- 2145042905
//	SELECT extract(epoch FROM '4714-11-24 00:00:00 BC'::timestamp) * 1000000;
//	                                                     -- -210866803200000000
//	SET timezone = 'America/New_York';
//	SELECT '4714-11-24 00:00:00+00 BC'::timestamptz;     -- 4714-11-23 19:03:58-04:56:02 BC
//
// and '4714-11-23 BC'::date, '4714-11-23 23:59:59.999999 BC'::timestamp
// are out of range.
const (
	firstDay       = -2440588            // 4714-11-24 BC
	firstMicros    = -210866803200000000 // 4714-11-24 00:00:00 BC
	lastDay        = 2145042905          // 5874897-12-31
	lastArrowMicro = math.MaxInt64 - 1   // 294247-01-10 04:00:54.775806
)

// TestDatetimeRange reads PostgreSQL's boundary dates and timestamps, as a
// query answered by PostgreSQL gives them, into their Arrow values.
func TestDatetimeRange(t *testing.T) {
	mem := checkedMem(t)
	value := func(oid uint32, text string) (int64, error) {
		b := NewTextBuilder(mem, oid, -1)
		defer b.Release()
		if err := b.Append(text); err != nil {
			return 0, err
		}
		a := b.NewArray()
		defer a.Release()
		switch a := a.(type) {
		case *array.Date32:
			return int64(a.Value(0)), nil
		case *array.Timestamp:
			return int64(a.Value(0)), nil
		case *array.Time64:
			return int64(a.Value(0)), nil
		}
		return 0, fmt.Errorf("array of type %s", a.DataType())
	}
	const (
		date = catalog.OIDDate
		ts   = catalog.OIDTimestamp
		tstz = catalog.OIDTimestampTZ
	)
	day := int64(microsPerDay)
	tests := []struct {
		oid  uint32
		text string
		want int64
	}{
		{date, "4713-01-01 BC", -2440550},
		{date, "4714-11-24 BC", firstDay},
		{date, "4714-11-25 BC", firstDay + 1},
		{date, "0001-12-31 BC", -719163},
		{date, "0001-01-01", -719162},
		{date, "1970-01-01", 0},
		{date, "5874897-12-31", lastDay},
		{date, "infinity", math.MaxInt32},
		{date, "-infinity", math.MinInt32},

		{ts, "4714-11-24 00:00:00 BC", firstMicros},
		{ts, "4713-01-01 00:00:00 BC", -2440550 * day},
		{ts, "0001-12-31 23:59:59.999999 BC", -719162*day - 1},
		{ts, "0001-01-01 00:00:00", -719162 * day},
		{ts, "294247-01-10 04:00:54.775806", lastArrowMicro},
		{ts, "infinity", math.MaxInt64},
		{ts, "-infinity", math.MinInt64},

		{tstz, "4714-11-24 00:00:00+00 BC", firstMicros},
		// The same instant in zones west and east of UTC (their LMT).
		{tstz, "4714-11-23 19:03:58-04:56:02 BC", firstMicros},
		{tstz, "4714-11-24 05:53:28+05:53:28 BC", firstMicros},
		{tstz, "2000-01-01 00:00:00-15:59:59", 946684800000000 + (15*3600+59*60+59)*microsPerSecond},
		{tstz, "2000-01-01 00:00:00+15:59:59", 946684800000000 - (15*3600+59*60+59)*microsPerSecond},
		{tstz, "294247-01-10 04:00:54.775806+00", lastArrowMicro},
		{tstz, "294247-01-09 23:00:54.775806-05", lastArrowMicro},
		{tstz, "infinity", math.MaxInt64},
		{tstz, "-infinity", math.MinInt64},

		{catalog.OIDTime, "24:00:00", 86_400_000_000},
		{catalog.OIDTime, "00:00:00", 0},
	}
	for _, tt := range tests {
		got, err := value(tt.oid, tt.text)
		if err != nil || got != tt.want {
			t.Errorf("type %d: %q is %d (%v), want %d", tt.oid, tt.text, got, err, tt.want)
		}
	}
	// 0001-12-31 19:03:58-04:56:02 BC is 0001-01-01 00:00:00 UTC, the first
	// instant of 1 AD.
	if got, _ := value(tstz, "0001-12-31 19:03:58-04:56:02 BC"); got != -719162*day {
		t.Errorf("0001-12-31 19:03:58-04:56:02 BC: %d, want %d", got, -719162*day)
	}

	// What PostgreSQL holds but the Arrow types do not, and text past
	// PostgreSQL's range: 22008.
	for _, tt := range []struct {
		oid  uint32
		text string
	}{
		{date, "4714-11-23 BC"},
		{date, "5874898-01-01"},
		{ts, "4714-11-23 23:59:59.999999 BC"},
		{ts, "294247-01-10 04:00:54.775807"},
		{ts, "294276-12-31 23:59:59.999999"},
		{tstz, "4714-11-23 23:59:59.999999+00 BC"},
		{tstz, "4714-11-23 19:03:57.999999-04:56:02 BC"},
		{tstz, "294276-12-31 23:59:59.999999+00"},
		{tstz, "294276-12-31 18:59:59.999999-05"},
		{tstz, "294247-01-10 04:00:54.775807+00"},
		{ts, "99999999-12-31 00:00:00"},
		{ts, "99999999-12-31 00:00:00 BC"},
	} {
		_, err := value(tt.oid, tt.text)
		checkSQLState(t, fmt.Sprintf("type %d %q", tt.oid, tt.text), err, "22008")
	}
}

// TestDatetimeRoundTrip prints the boundary values back as PostgreSQL does.
func TestDatetimeRoundTrip(t *testing.T) {
	mem := checkedMem(t)
	for _, tt := range []struct {
		oid   uint32
		texts []string
	}{
		{catalog.OIDDate, []string{"4713-01-01 BC", "4714-11-24 BC", "0001-12-31 BC", "0001-01-01", "5874897-12-31", "infinity", "-infinity"}},
		{catalog.OIDTimestamp, []string{"4714-11-24 00:00:00 BC", "4713-01-01 00:00:00 BC", "0001-12-31 23:59:59.999999 BC", "0001-01-01 00:00:00", "294247-01-10 04:00:54.775806"}},
		{catalog.OIDTimestampTZ, []string{"4714-11-24 00:00:00+00 BC", "0001-12-31 23:59:59.999999+00 BC", "294247-01-10 04:00:54.775806+00"}},
		{1182, []string{`{"4713-01-01 BC","4714-11-24 BC",5874897-12-31,infinity}`}},
		{1185, []string{`{"4714-11-24 00:00:00+00 BC",-infinity}`}},
	} {
		for _, text := range tt.texts {
			a := textColumnOf(t, mem, tt.oid, -1, text)
			if got, _ := FormatText(a, 0, tt.oid, -1); got != text {
				t.Errorf("type %d: %q reads back as %q", tt.oid, text, got)
			}
			a.Release()
		}
	}
}

// checkSQLState checks that err carries sqlstate, and that the status a
// client gets has it in its message and ErrorInfo and the code of the
// SQLSTATE.
func checkSQLState(t *testing.T, what string, err error, sqlstate string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want SQLSTATE %s", what, sqlstate)
		return
	}
	var ce *convError
	if !errors.As(err, &ce) || ce.sqlstate != sqlstate {
		t.Errorf("%s: %v has no SQLSTATE %s", what, err, sqlstate)
		return
	}
	// As streamRows and streamScan return it.
	st, ok := status.FromError(toStatus(fmt.Errorf("column %q: %w", "c", err)))
	if !ok {
		t.Errorf("%s: no status", what)
		return
	}
	if st.Code() != codeOf(sqlstate) || st.Code() == codes.Internal && sqlstate != "XX000" {
		t.Errorf("%s: code %s, want %s", what, st.Code(), codeOf(sqlstate))
	}
	if !strings.Contains(st.Message(), "(SQLSTATE "+sqlstate+")") || !strings.Contains(st.Message(), `column "c"`) {
		t.Errorf("%s: message %q", what, st.Message())
	}
	found := false
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.Reason == sqlstate && info.Metadata["sqlstate"] == sqlstate {
			found = true
		}
	}
	if !found {
		t.Errorf("%s: no ErrorInfo with SQLSTATE %s in %v", what, sqlstate, st.Details())
	}
}

// TestConversionSQLState checks that every value a result column cannot
// hold reaches the client with a SQLSTATE, from PostgreSQL's text and from
// a mirror's Arrow alike.
func TestConversionSQLState(t *testing.T) {
	mem := checkedMem(t)
	for _, tt := range []struct {
		oid      uint32
		typmod   int32
		text     string
		sqlstate string
	}{
		{catalog.OIDNumeric, numericMod(10, 2), "NaN", "22003"},
		{catalog.OIDNumeric, numericMod(10, 2), "Infinity", "22003"},
		{catalog.OIDNumeric, numericMod(10, 2), "-Infinity", "22003"},
		{catalog.OIDNumeric, numericMod(50, 2), "NaN", "22003"},
		{1231, numericMod(4, 2), "{1.00,NaN}", "22003"},
		{catalog.OIDNumeric, numericMod(10, 2), "123456789.00", "22003"},
		{catalog.OIDNumeric, numericMod(10, 2), "1.005", "22003"},
		{catalog.OIDInt4, -1, "2147483648", "22003"},
		{catalog.OIDFloat8, -1, "1e400", "22003"},
		{1007, -1, "{{1,2},{3,4}}", "0A000"},
		{1007, -1, "[1:2][1:2]={{1,2},{3,4}}", "0A000"},
		{1182, -1, `{{2024-01-01},{"4713-01-01 BC"}}`, "0A000"},
		{1182, -1, `{"4714-11-23 BC"}`, "22008"},
		{catalog.OIDDate, -1, "4714-11-23 BC", "22008"},
		{catalog.OIDTimestamp, -1, "294276-12-31 23:59:59.999999", "22008"},
		{catalog.OIDDate, -1, "01/31/2024", "22007"}, // DateStyle changed by SET
		{catalog.OIDTime, -1, "24:00:01", "22007"},
		{catalog.OIDInt4, -1, "x", "22P02"},
		{1007, -1, "{1,", "22P02"},
	} {
		b := NewTextBuilder(mem, tt.oid, tt.typmod)
		err := b.Append(tt.text)
		a := b.NewArray()
		if a.Len() != 0 {
			t.Errorf("type %d: %q failed but appended", tt.oid, tt.text)
		}
		a.Release()
		b.Release()
		checkSQLState(t, fmt.Sprintf("type %d %q", tt.oid, tt.text), err, tt.sqlstate)
	}

	// A mirror's columns (ConvertColumn).
	col := func(typ arrow.DataType, add func(b array.Builder)) arrow.Array {
		b := array.NewBuilder(mem, typ)
		defer b.Release()
		add(b)
		return b.NewArray()
	}
	for _, tt := range []struct {
		name     string
		col      arrow.Array
		oid      uint32
		typmod   int32
		sqlstate string
	}{
		{"NaN text", col(arrow.BinaryTypes.String, func(b array.Builder) { b.(*array.StringBuilder).Append("NaN") }), catalog.OIDNumeric, numericMod(10, 2), "22003"},
		{"multi-dimensional", col(arrow.BinaryTypes.String, func(b array.Builder) { b.(*array.StringBuilder).Append("{{1}}") }), 1007, -1, "0A000"},
		{"int16 overflow", col(arrow.PrimitiveTypes.Int32, func(b array.Builder) { b.(*array.Int32Builder).Append(32768) }), catalog.OIDInt2, -1, "22003"},
		{"shifted timestamp", col(timestampType, func(b array.Builder) {
			b.(*array.TimestampBuilder).Append(arrow.Timestamp(catalog.TimestampShiftedBelow - 1))
		}), catalog.OIDTimestamp, -1, "22008"},
		{"timestamp s overflow", col(&arrow.TimestampType{Unit: arrow.Second}, func(b array.Builder) {
			b.(*array.TimestampBuilder).Append(math.MaxInt64 / 10)
		}), catalog.OIDTimestamp, -1, "22008"},
		{"no conversion", col(arrow.PrimitiveTypes.Float64, func(b array.Builder) { b.(*array.Float64Builder).Append(1) }), catalog.OIDInt4, -1, "XX000"},
	} {
		got, err := ConvertColumn(mem, tt.col, tt.oid, tt.typmod)
		tt.col.Release()
		if err == nil {
			got.Release()
		}
		checkSQLState(t, tt.name, err, tt.sqlstate)
	}
}

// TestMirrorAgrees checks that a mirror's date and timestamp values, which
// DuckDB gives as Arrow, are what PostgreSQL's text of them becomes.
func TestMirrorAgrees(t *testing.T) {
	mem := checkedMem(t)
	dates := []arrow.Date32{-2440550, firstDay, -719163, -719162, lastDay, math.MaxInt32, -math.MaxInt32}
	texts := []string{"4713-01-01 BC", "4714-11-24 BC", "0001-12-31 BC", "0001-01-01", "5874897-12-31", "infinity", "-infinity"}
	duck := column(mem, arrow.FixedWidthTypes.Date32, func(b *array.Date32Builder) { b.AppendValues(dates, nil) })
	defer duck.Release()
	conv, err := ConvertColumn(mem, duck, catalog.OIDDate, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer conv.Release()
	for i, text := range texts {
		a := textColumnOf(t, mem, catalog.OIDDate, -1, text)
		if got, want := a.(*array.Date32).Value(0), conv.(*array.Date32).Value(i); got != want {
			t.Errorf("date %q: %d from PostgreSQL, %d from a mirror", text, got, want)
		}
		a.Release()
	}

	stamps := []arrow.Timestamp{firstMicros, -719162 * microsPerDay, lastArrowMicro, math.MaxInt64, -math.MaxInt64}
	stexts := []string{"4714-11-24 00:00:00+00 BC", "0001-01-01 00:00:00+00", "294247-01-10 04:00:54.775806+00", "infinity", "-infinity"}
	duckTS := column(mem, timestamptzType, func(b *array.TimestampBuilder) { b.AppendValues(stamps, nil) })
	defer duckTS.Release()
	convTS, err := ConvertColumn(mem, duckTS, catalog.OIDTimestampTZ, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer convTS.Release()
	for i, text := range stexts {
		a := textColumnOf(t, mem, catalog.OIDTimestampTZ, -1, text)
		if got, want := a.(*array.Timestamp).Value(0), convTS.(*array.Timestamp).Value(i); got != want {
			t.Errorf("timestamptz %q: %d from PostgreSQL, %d from a mirror", text, got, want)
		}
		a.Release()
	}
}

// TestDateParams checks that bound date and timestamp parameters are text
// PostgreSQL reads: BC years with the era after them, ±infinity as in
// results.
func TestDateParams(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ts := func(typ *arrow.TimestampType, v int64) arrow.Array {
		return column(mem, typ, func(b *array.TimestampBuilder) { b.Append(arrow.Timestamp(v)) })
	}
	tests := []struct {
		col  arrow.Array
		want string
	}{
		{column(mem, arrow.FixedWidthTypes.Date32, func(b *array.Date32Builder) { b.Append(-2440550) }), "4713-01-01 BC"},
		{column(mem, arrow.FixedWidthTypes.Date32, func(b *array.Date32Builder) { b.Append(firstDay) }), "4714-11-24 BC"},
		{column(mem, arrow.FixedWidthTypes.Date32, func(b *array.Date32Builder) { b.Append(lastDay) }), "5874897-12-31"},
		{column(mem, arrow.FixedWidthTypes.Date32, func(b *array.Date32Builder) { b.Append(math.MaxInt32) }), "infinity"},
		{column(mem, arrow.FixedWidthTypes.Date32, func(b *array.Date32Builder) { b.Append(math.MinInt32) }), "-infinity"},
		{column(mem, arrow.FixedWidthTypes.Date64, func(b *array.Date64Builder) { b.Append(-719162*86_400_000 - 1) }), "0001-12-31 BC"},
		{ts(timestampType, firstMicros), "4714-11-24 00:00:00 BC"},
		{ts(timestamptzType, -719162*microsPerDay-1), "0001-12-31 23:59:59.999999+00 BC"},
		{ts(timestampType, 1_500_000), "1970-01-01 00:00:01.5"},
		{ts(&arrow.TimestampType{Unit: arrow.Nanosecond}, -1), "1969-12-31 23:59:59.999999999"},
		{ts(&arrow.TimestampType{Unit: arrow.Second, TimeZone: "UTC"}, 0), "1970-01-01 00:00:00+00"},
		{ts(&arrow.TimestampType{Unit: arrow.Millisecond}, -62135596800001), "0001-12-31 23:59:59.999 BC"},
		{ts(timestampType, math.MaxInt64), "infinity"},
		{ts(timestamptzType, math.MinInt64), "-infinity"},
	}
	for _, tt := range tests {
		got, err := paramText(tt.col, 0)
		if err != nil || got != tt.want {
			t.Errorf("%s %s: %q (%v), want %q", tt.col.DataType(), tt.col.ValueStr(0), got, err, tt.want)
		}
		tt.col.Release()
	}
}
