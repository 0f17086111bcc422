package flight

import (
	"math"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/extensions"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pgmooncake/mooncake/catalog"
)

// numericMod is the typmod of numeric(p,s).
func numericMod(p, s int32) int32 { return p<<16 | s&0x7ff + 4 }

func checkedMem(t *testing.T) memory.Allocator {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

func TestArrowType(t *testing.T) {
	tests := []struct {
		oid    uint32
		typmod int32
		want   string
	}{
		{catalog.OIDBool, -1, "bool"},
		{catalog.OIDInt2, -1, "int16"},
		{catalog.OIDInt4, -1, "int32"},
		{catalog.OIDInt8, -1, "int64"},
		{oidOID, -1, "uint32"},
		{catalog.OIDFloat4, -1, "float32"},
		{catalog.OIDFloat8, -1, "float64"},
		{catalog.OIDNumeric, -1, "utf8"},
		{catalog.OIDNumeric, numericMod(10, 2), "decimal(10, 2)"},
		{catalog.OIDNumeric, numericMod(38, 10), "decimal(38, 10)"},
		{catalog.OIDNumeric, numericMod(39, 0), "decimal256(39, 0)"},
		{catalog.OIDNumeric, numericMod(76, 76), "decimal256(76, 76)"},
		{catalog.OIDNumeric, numericMod(77, 2), "utf8"},
		{catalog.OIDNumeric, numericMod(5, -2), "utf8"},
		{catalog.OIDNumeric, numericMod(3, 5), "utf8"},
		{catalog.OIDDate, -1, "date32"},
		{catalog.OIDTimestamp, 6, "timestamp[us]"},
		{catalog.OIDTimestampTZ, -1, "timestamp[us, tz=UTC]"},
		{catalog.OIDTime, -1, "time64[us]"},
		{catalog.OIDText, -1, "utf8"},
		{catalog.OIDVarchar, 14, "utf8"},
		{catalog.OIDBpchar, 14, "utf8"},
		{19, -1, "utf8"},   // name
		{18, -1, "utf8"},   // "char"
		{1186, -1, "utf8"}, // interval
		{790, -1, "utf8"},  // money
		{1266, -1, "utf8"}, // timetz
		{869, -1, "utf8"},  // inet
		{123456, -1, "utf8"},
		{catalog.OIDBytea, -1, "binary"},
		{catalog.OIDUUID, -1, "extension<arrow.uuid>"},
		{oidJSON, -1, "extension<arrow.json[storage_type=utf8]>"},
		{oidJSONB, -1, "extension<arrow.json[storage_type=utf8]>"},
		{1007, -1, "list<item: int32, nullable>"},
		{1231, numericMod(10, 2), "list<item: decimal(10, 2), nullable>"},
		{1231, -1, "list<item: utf8, nullable>"},
		{2951, -1, "list<item: extension<arrow.uuid>, nullable>"},
		{1187, -1, "utf8"}, // interval[]
	}
	for _, tt := range tests {
		if got := ArrowType(tt.oid, tt.typmod).String(); got != tt.want {
			t.Errorf("ArrowType(%d, %d) = %s, want %s", tt.oid, tt.typmod, got, tt.want)
		}
	}
	if elem, ok := ElementOID(1015); !ok || elem != catalog.OIDVarchar {
		t.Errorf("ElementOID(1015) = %d, %v", elem, ok)
	}
	if _, ok := ElementOID(catalog.OIDInt4); ok {
		t.Error("ElementOID(int4) is ok")
	}
}

// textColumnOf builds a one-row column from PostgreSQL text.
func textColumnOf(t *testing.T, mem memory.Allocator, oid uint32, typmod int32, text string) arrow.Array {
	t.Helper()
	b := NewTextBuilder(mem, oid, typmod)
	defer b.Release()
	if err := b.Append(text); err != nil {
		t.Fatalf("Append(%q) for type %d: %v", text, oid, err)
	}
	a := b.NewArray()
	if !arrow.TypeEqual(a.DataType(), ArrowType(oid, typmod)) || !arrow.TypeEqual(b.Type(), a.DataType()) {
		t.Fatalf("array of type %s, want %s", a.DataType(), ArrowType(oid, typmod))
	}
	return a
}

// TestTextRoundTrip reads PostgreSQL text into Arrow and prints it back.
func TestTextRoundTrip(t *testing.T) {
	n38 := numericMod(38, 10)
	tests := []struct {
		oid    uint32
		typmod int32
		texts  []string
	}{
		{catalog.OIDBool, -1, []string{"t", "f"}},
		{catalog.OIDInt2, -1, []string{"0", "-32768", "32767"}},
		{catalog.OIDInt4, -1, []string{"-2147483648", "2147483647", "42"}},
		{catalog.OIDInt8, -1, []string{"-9223372036854775808", "9223372036854775807"}},
		{oidOID, -1, []string{"0", "4294967295"}},
		{catalog.OIDFloat8, -1, []string{
			"NaN", "Infinity", "-Infinity", "0", "-0", "0.1", "1e+20", "123456789012",
			"1.5e-05", "0.0001", "100000000000000", "1e+15", "-1.234e-300", "0.30000000000000004",
			"1.7976931348623157e+308", "5e-324", "3.141592653589793", "-2.5",
		}},
		{catalog.OIDFloat4, -1, []string{
			"NaN", "Infinity", "-Infinity", "0", "-0", "0.1", "100000", "1e+06",
			"1.5e-05", "3.4028235e+38", "1e-45", "-123.456",
		}},
		{catalog.OIDNumeric, numericMod(10, 2), []string{"0.00", "-1.50", "12345678.99", "-99999999.99"}},
		{catalog.OIDNumeric, numericMod(5, 0), []string{"0", "-99999", "12345"}},
		{catalog.OIDNumeric, n38, []string{
			"9999999999999999999999999999.9999999999", "-9999999999999999999999999999.9999999999",
			"0.0000000001", "-0.0000000001", "0.0000000000", "123.4560000000",
		}},
		{catalog.OIDNumeric, numericMod(76, 20), []string{
			strings.Repeat("9", 56) + "." + strings.Repeat("9", 20), "-1.00000000000000000001",
		}},
		{catalog.OIDNumeric, -1, []string{"2.5000000000000000", "NaN", "-Infinity", "1e+5 is kept"}},
		{catalog.OIDDate, -1, []string{
			"2024-01-31", "1970-01-01", "2000-02-29", "0044-03-15 BC", "0001-01-01", "0001-12-31 BC",
			"4713-11-24 BC", "5874897-12-31", "infinity", "-infinity",
		}},
		{catalog.OIDTimestamp, -1, []string{
			"2024-01-31 12:34:56.123456", "2024-01-31 12:34:56", "2024-01-31 12:34:56.5",
			"1969-12-31 23:59:59.999999", "0044-03-15 12:00:00 BC", "4713-11-24 00:00:00 BC",
			"294247-01-10 04:00:54.775806", "infinity", "-infinity",
		}},
		{catalog.OIDTimestampTZ, -1, []string{
			"2024-01-31 12:34:56.123456+00", "2024-01-31 00:00:00+00", "0044-03-15 12:00:00+00 BC",
			"infinity", "-infinity",
		}},
		{catalog.OIDTime, -1, []string{"12:34:56.789", "00:00:00", "23:59:59.999999", "24:00:00"}},
		{catalog.OIDBytea, -1, []string{`\x`, `\x0a0b`, `\xdeadbeef00`}},
		{catalog.OIDUUID, -1, []string{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "00000000-0000-0000-0000-000000000000"}},
		{oidJSON, -1, []string{`{"a": [1, 2.50]}`, `"ü"`, `null`}},
		{oidJSONB, -1, []string{`{"a": [1, 2.5], "b": null}`}},
		{catalog.OIDText, -1, []string{"", "héllo wörld ✓", "NULL", `a"b\c`}},
		{catalog.OIDVarchar, 14, []string{"abc"}},
		{catalog.OIDBpchar, 14, []string{"abc   "}},
		{1186, -1, []string{"1 year 2 mons 3 days 04:05:06.7", "-00:00:01"}},
		{790, -1, []string{"$1,234.56", "-$0.05"}},
		{1007, -1, []string{"{1,2,NULL}", "{}", "{-2147483648}", "{NULL}"}},
		{1000, -1, []string{"{t,f,NULL}"}},
		{1005, -1, []string{"{1,-32768}"}},
		{1016, -1, []string{"{9223372036854775807}"}},
		{1021, -1, []string{"{NaN,Infinity,-Infinity,1.5,1e+06}"}},
		{1022, -1, []string{"{NaN,Infinity,-Infinity,0.1,1e+20,1.5e-05}"}},
		{1231, numericMod(10, 2), []string{"{1.50,-2.00,NULL}"}},
		{1231, -1, []string{"{1.5,NaN,2.5000}"}},
		{1009, -1, []string{
			`{"a b","c\"d",NULL,"NULL","null",""}`, `{x,"{}","a,b","back\\slash"}`, `{ü,"✓ ✓"}`,
			`{"tab	x","new` + "\n" + `line"}`,
		}},
		{1015, -1, []string{"{a,b}"}},
		{1014, -1, []string{`{"a  ",b}`}},
		{1182, -1, []string{`{2024-01-31,"0044-03-15 BC",infinity,-infinity,NULL}`}},
		{1115, -1, []string{`{"2024-01-31 12:34:56.5","0044-03-15 12:00:00 BC",infinity}`}},
		{1185, -1, []string{`{"2024-01-31 12:34:56.5+00",-infinity}`}},
		{1183, -1, []string{`{12:34:56.789,24:00:00}`}},
		{2951, -1, []string{`{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,NULL}`}},
		{1001, -1, []string{`{"\\x0a0b","\\x",NULL}`}},
		{199, -1, []string{`{"{\"a\": 1}","[1, 2]",NULL,"\"x y\""}`}},
		{3807, -1, []string{`{"{\"a\": 1}",3}`}},
		{1187, -1, []string{`{"1 day","2 mons"}`, "{{1,2},{3,4}}"}}, // interval[]: text
	}
	mem := checkedMem(t)
	for _, tt := range tests {
		b := NewTextBuilder(mem, tt.oid, tt.typmod)
		for _, text := range tt.texts {
			if err := b.Append(text); err != nil {
				t.Errorf("type %d: Append(%q): %v", tt.oid, text, err)
				b.AppendNull()
			}
		}
		b.AppendNull()
		a := b.NewArray()
		b.Release()
		if a.Len() != len(tt.texts)+1 {
			t.Fatalf("type %d: %d values, want %d", tt.oid, a.Len(), len(tt.texts)+1)
		}
		for i, want := range tt.texts {
			if got, null := FormatText(a, i, tt.oid, tt.typmod); null || got != want {
				t.Errorf("type %d: %q reads back as %q (null %v)", tt.oid, want, got, null)
			}
		}
		if _, null := FormatText(a, len(tt.texts), tt.oid, tt.typmod); !null {
			t.Errorf("type %d: NULL is not null", tt.oid)
		}
		a.Release()
	}
}

// TestTextValues checks the Arrow values text becomes, where the text does
// not round trip or the value is part of the contract.
func TestTextValues(t *testing.T) {
	mem := checkedMem(t)
	ts := func(text string, oid uint32) int64 {
		a := textColumnOf(t, mem, oid, -1, text)
		defer a.Release()
		return int64(a.(*array.Timestamp).Value(0))
	}
	tests := []struct {
		name      string
		got, want int64
	}{
		{"epoch", ts("1970-01-01 00:00:00", catalog.OIDTimestamp), 0},
		{"+05:30", ts("2024-01-31 05:30:00+05:30", catalog.OIDTimestampTZ), ts("2024-01-31 00:00:00+00", catalog.OIDTimestampTZ)},
		{"-08", ts("2024-01-30 16:00:00-08", catalog.OIDTimestampTZ), ts("2024-01-31 00:00:00+00", catalog.OIDTimestampTZ)},
		{"LMT", ts("1900-01-01 00:00:00+05:53:28", catalog.OIDTimestampTZ), ts("1899-12-31 18:06:32+00", catalog.OIDTimestampTZ)},
		{"BC", ts("0001-12-31 23:59:59.999999 BC", catalog.OIDTimestamp), ts("0001-01-01 00:00:00", catalog.OIDTimestamp) - 1},
		{"micros", ts("2000-01-01 00:00:00.000001", catalog.OIDTimestamp), 946684800000001},
		{"infinity", ts("infinity", catalog.OIDTimestampTZ), math.MaxInt64},
		{"-infinity", ts("-infinity", catalog.OIDTimestamp), math.MinInt64},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, tt.got, tt.want)
		}
	}
	for text, want := range map[string]arrow.Date32{
		"1970-01-02": 1, "1969-12-31": -1, "2000-01-01": 10957, "0001-01-01": -719162,
		"infinity": math.MaxInt32, "-infinity": math.MinInt32,
	} {
		a := textColumnOf(t, mem, catalog.OIDDate, -1, text)
		if got := a.(*array.Date32).Value(0); got != want {
			t.Errorf("date %s: %d, want %d", text, got, want)
		}
		a.Release()
	}

	a := textColumnOf(t, mem, catalog.OIDNumeric, numericMod(10, 4), "1.5")
	if got := a.(*array.Decimal128).Value(0); got != decimal128.FromI64(15000) {
		t.Errorf("numeric 1.5 at scale 4: %v", got)
	}
	a.Release()
	a = textColumnOf(t, mem, catalog.OIDNumeric, numericMod(10, 2), "1.2500")
	if got, _ := FormatText(a, 0, catalog.OIDNumeric, numericMod(10, 2)); got != "1.25" {
		t.Errorf("numeric 1.2500 at scale 2: %s", got)
	}
	a.Release()

	a = textColumnOf(t, mem, 1007, -1, "[0:2]={1,2,3}")
	if got, _ := FormatText(a, 0, 1007, -1); got != "{1,2,3}" {
		t.Errorf("array with bounds: %s", got)
	}
	a.Release()

	a = textColumnOf(t, mem, 1009, -1, `{"NULL",NULL,null}`)
	values := a.(*array.List).ListValues().(*array.String)
	if values.Value(0) != "NULL" || values.IsValid(1) || values.IsValid(2) {
		t.Errorf(`{"NULL",NULL,null}: %v`, values)
	}
	a.Release()

	a = textColumnOf(t, mem, catalog.OIDFloat8, -1, "NaN")
	if !math.IsNaN(a.(*array.Float64).Value(0)) {
		t.Error("NaN is not NaN")
	}
	a.Release()

	a = textColumnOf(t, mem, catalog.OIDUUID, -1, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11")
	if got, _ := FormatText(a, 0, catalog.OIDUUID, -1); got != "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" {
		t.Errorf("uuid: %s", got)
	}
	a.Release()
}

// TestTextErrors feeds malformed and out-of-range text: an error, and
// nothing appended.
func TestTextErrors(t *testing.T) {
	tests := []struct {
		oid    uint32
		typmod int32
		text   string
		errHas string
	}{
		{catalog.OIDBool, -1, "true", "invalid"},
		{catalog.OIDBool, -1, "", "invalid"},
		{catalog.OIDInt2, -1, "32768", "out of range"},
		{catalog.OIDInt4, -1, "2147483648", "out of range"},
		{catalog.OIDInt8, -1, "9223372036854775808", "out of range"},
		{catalog.OIDInt4, -1, "1.0", "invalid"},
		{catalog.OIDInt4, -1, " 1", "invalid"},
		{oidOID, -1, "-1", "invalid"},
		{catalog.OIDFloat8, -1, "inf", "invalid"},
		{catalog.OIDFloat8, -1, "0x1p3", "invalid"},
		{catalog.OIDFloat8, -1, "1e400", "out of range"},
		{catalog.OIDFloat8, -1, "1e-400", "out of range"},
		{catalog.OIDFloat4, -1, "1e39", "out of range"},
		{catalog.OIDFloat8, -1, "1..2", "invalid"},
		{catalog.OIDNumeric, numericMod(10, 2), "NaN", "numeric without precision"},
		{catalog.OIDNumeric, numericMod(10, 2), "Infinity", "cast it to text"},
		{catalog.OIDNumeric, numericMod(10, 2), "123456789.00", "out of range"},
		{catalog.OIDNumeric, numericMod(10, 2), "1.005", "fraction digits"},
		{catalog.OIDNumeric, numericMod(10, 2), ".5", "invalid"},
		{catalog.OIDNumeric, numericMod(10, 2), "5.", "invalid"},
		{catalog.OIDNumeric, numericMod(10, 2), "1e5", "invalid"},
		{catalog.OIDNumeric, numericMod(10, 2), "+1.00", "invalid"},
		{catalog.OIDNumeric, numericMod(38, 10), "10000000000000000000000000000.0000000000", "out of range"},
		{catalog.OIDNumeric, numericMod(50, 0), strings.Repeat("9", 51), "out of range"},
		{catalog.OIDDate, -1, "2023-02-29", "invalid"},
		{catalog.OIDDate, -1, "2024-13-01", "invalid"},
		{catalog.OIDDate, -1, "0000-01-01", "invalid"},
		{catalog.OIDDate, -1, "24-01-01", "invalid"},
		{catalog.OIDDate, -1, "2024/01/01", "invalid"},
		{catalog.OIDDate, -1, "4714-01-01 BC", "out of range"},
		{catalog.OIDDate, -1, "5874898-01-01", "out of range"},
		{catalog.OIDDate, -1, "Infinity", "invalid"},
		{catalog.OIDTimestamp, -1, "2024-01-31", "invalid"},
		{catalog.OIDTimestamp, -1, "2024-01-31T12:00:00", "invalid"},
		{catalog.OIDTimestamp, -1, "2024-01-31 12:00:00+00", "invalid"},
		{catalog.OIDTimestamp, -1, "2024-01-31 24:00:00", "invalid"},
		{catalog.OIDTimestamp, -1, "2024-01-31 12:60:00", "invalid"},
		{catalog.OIDTimestamp, -1, "2024-01-31 12:00:00.1234567", "invalid"},
		{catalog.OIDTimestamp, -1, "2024-01-31 12:00:00.", "invalid"},
		{catalog.OIDTimestamp, -1, "294247-01-10 04:00:54.775807", "range of an Arrow timestamp"},
		{catalog.OIDTimestamp, -1, "294276-12-31 23:59:59.999999", "range of an Arrow timestamp"},
		{catalog.OIDTimestampTZ, -1, "2024-01-31 12:00:00", "invalid"},
		{catalog.OIDTimestampTZ, -1, "2024-01-31 12:00:00+5", "invalid"},
		{catalog.OIDTimestampTZ, -1, "2024-01-31 12:00:00+05:60", "invalid"},
		{catalog.OIDTimestampTZ, -1, "2024-01-31 12:00:00 UTC", "invalid"},
		{catalog.OIDTime, -1, "24:00:00.000001", "invalid"},
		{catalog.OIDTime, -1, "12:34", "invalid"},
		{catalog.OIDTime, -1, "12:34:56+00", "invalid"},
		{catalog.OIDBytea, -1, "0a0b", "invalid"},
		{catalog.OIDBytea, -1, `\x0a0`, "invalid"},
		{catalog.OIDBytea, -1, `\xzz`, "invalid"},
		{catalog.OIDUUID, -1, "a0eebc999c0b4ef8bb6d6bb9bd380a11", "invalid"},
		{catalog.OIDUUID, -1, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g", "invalid"},
		{1007, -1, "{{1,2},{3,4}}", "multi-dimensional"},
		{1007, -1, "[1:2][1:2]={{1,2},{3,4}}", "array_to_string"},
		{1007, -1, "{1,2", "invalid"},
		{1007, -1, "1,2", "invalid"},
		{1007, -1, "{1,,2}", "invalid"},
		{1007, -1, "{1,}", "invalid"},
		{1007, -1, "{ 1}", "invalid"},
		{1007, -1, "[1:3]={1,2}", "invalid"},
		{1007, -1, "{1,2147483648}", "out of range"},
		{1007, -1, "{1,x}", "invalid"},
		{1009, -1, `{"abc}`, "invalid"},
		{1009, -1, `{"a"b}`, "invalid"},
		{1009, -1, `{a"b}`, "invalid"},
		{1009, -1, `{"a\"}`, "invalid"},
		{1231, numericMod(4, 2), "{1.00,NaN}", "cast it to text"},
	}
	mem := checkedMem(t)
	for _, tt := range tests {
		b := NewTextBuilder(mem, tt.oid, tt.typmod)
		err := b.Append(tt.text)
		if err == nil || !strings.Contains(err.Error(), tt.errHas) {
			t.Errorf("type %d: Append(%q) = %v, want an error with %q", tt.oid, tt.text, err, tt.errHas)
		}
		a := b.NewArray()
		if a.Len() != 0 {
			t.Errorf("type %d: Append(%q) failed but appended", tt.oid, tt.text)
		}
		if l, ok := a.(*array.List); ok && l.ListValues().Len() != 0 {
			t.Errorf("type %d: Append(%q) failed but appended elements", tt.oid, tt.text)
		}
		a.Release()
		b.Release()
	}
}

// column builds an array of type typ from values appended by add.
func column[B array.Builder](mem memory.Allocator, typ arrow.DataType, add func(b B)) arrow.Array {
	b := array.NewBuilder(mem, typ)
	defer b.Release()
	add(b.(B))
	return b.NewArray()
}

// texts is every row of col as FormatText prints it, "NULL" for a NULL.
func texts(col arrow.Array, oid uint32, typmod int32) []string {
	out := make([]string, col.Len())
	for i := range out {
		v, null := FormatText(col, i, oid, typmod)
		if null {
			v = "NULL"
		}
		out[i] = v
	}
	return out
}

func TestConvertPassThrough(t *testing.T) {
	mem := checkedMem(t)
	jsonText := column(mem, arrow.BinaryTypes.String, func(b *array.StringBuilder) { b.Append(`{"a":1}`) })
	defer jsonText.Release()
	jsonCol := array.NewExtensionArrayWithStorage(jsonType, jsonText)
	defer jsonCol.Release()
	tests := []struct {
		oid    uint32
		typmod int32
		col    arrow.Array
	}{
		{catalog.OIDBool, -1, column(mem, arrow.FixedWidthTypes.Boolean, func(b *array.BooleanBuilder) { b.Append(true) })},
		{catalog.OIDInt2, -1, column(mem, arrow.PrimitiveTypes.Int16, func(b *array.Int16Builder) { b.Append(1) })},
		{catalog.OIDInt4, -1, column(mem, arrow.PrimitiveTypes.Int32, func(b *array.Int32Builder) { b.Append(1) })},
		{catalog.OIDInt8, -1, column(mem, arrow.PrimitiveTypes.Int64, func(b *array.Int64Builder) { b.Append(1) })},
		{catalog.OIDFloat4, -1, column(mem, arrow.PrimitiveTypes.Float32, func(b *array.Float32Builder) { b.Append(1) })},
		{catalog.OIDFloat8, -1, column(mem, arrow.PrimitiveTypes.Float64, func(b *array.Float64Builder) { b.Append(1) })},
		{catalog.OIDText, -1, column(mem, arrow.BinaryTypes.String, func(b *array.StringBuilder) { b.Append("x") })},
		{catalog.OIDBytea, -1, column(mem, arrow.BinaryTypes.Binary, func(b *array.BinaryBuilder) { b.Append([]byte{1}) })},
		{catalog.OIDDate, -1, column(mem, arrow.FixedWidthTypes.Date32, func(b *array.Date32Builder) { b.Append(1); b.Append(math.MaxInt32); b.AppendNull() })},
		{catalog.OIDTimestamp, -1, column(mem, timestampType, func(b *array.TimestampBuilder) { b.Append(1); b.Append(math.MaxInt64); b.Append(math.MinInt64) })},
		{catalog.OIDTimestampTZ, -1, column(mem, timestamptzType, func(b *array.TimestampBuilder) { b.Append(1) })},
		{catalog.OIDTime, -1, column(mem, arrow.FixedWidthTypes.Time64us, func(b *array.Time64Builder) { b.Append(1) })},
		{catalog.OIDNumeric, numericMod(10, 2), column(mem, &arrow.Decimal128Type{Precision: 10, Scale: 2}, func(b *array.Decimal128Builder) { b.Append(decimal128.FromI64(150)) })},
		{catalog.OIDUUID, -1, column(mem, uuidType, func(b *extensions.UUIDBuilder) { b.AppendBytes([16]byte{1}) })},
		{oidJSON, -1, jsonCol},
	}
	jsonCol.Retain()
	for _, tt := range tests {
		got, err := ConvertColumn(mem, tt.col, tt.oid, tt.typmod)
		if err != nil {
			t.Errorf("type %d: %v", tt.oid, err)
		} else {
			if got != tt.col {
				t.Errorf("type %d: %s was copied", tt.oid, tt.col.DataType())
			}
			got.Release()
		}
		tt.col.Release()
	}
}

func TestConvertColumn(t *testing.T) {
	mem := checkedMem(t)
	strs := func(typ arrow.DataType, vals ...string) arrow.Array {
		b := array.NewBuilder(mem, typ)
		defer b.Release()
		for _, v := range vals {
			if v == "NULL" {
				b.AppendNull()
				continue
			}
			switch b := b.(type) {
			case *array.StringBuilder:
				b.Append(v)
			case *array.LargeStringBuilder:
				b.Append(v)
			case *array.StringViewBuilder:
				b.Append(v)
			}
		}
		return b.NewArray()
	}
	dec := func(p, s int32, vals ...int64) arrow.Array {
		return column(mem, &arrow.Decimal128Type{Precision: p, Scale: s}, func(b *array.Decimal128Builder) {
			for _, v := range vals {
				b.Append(decimal128.FromI64(v))
			}
			b.AppendNull()
		})
	}
	int32s := column(mem, arrow.PrimitiveTypes.Int32, func(b *array.Int32Builder) { b.AppendValues([]int32{-32768, 32767, 0}, []bool{true, true, false}) })
	uuidBytes := column(mem, &arrow.FixedSizeBinaryType{ByteWidth: 16}, func(b *array.FixedSizeBinaryBuilder) {
		b.Append([]byte{0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11})
	})
	tests := []struct {
		name   string
		col    arrow.Array
		oid    uint32
		typmod int32
		want   []string
	}{
		{"large string", strs(arrow.BinaryTypes.LargeString, "a", "NULL", "ü"), catalog.OIDText, -1, []string{"a", "NULL", "ü"}},
		{"string view", strs(arrow.BinaryTypes.StringView, "a long string past twelve bytes", "b"), catalog.OIDVarchar, -1, []string{"a long string past twelve bytes", "b"}},
		{"text to numeric", strs(arrow.BinaryTypes.String, "1.50", "NULL"), catalog.OIDNumeric, numericMod(10, 2), []string{"1.50", "NULL"}},
		{"text to bool", strs(arrow.BinaryTypes.String, "t", "f"), catalog.OIDBool, -1, []string{"t", "f"}},
		{"text to uuid", strs(arrow.BinaryTypes.String, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), catalog.OIDUUID, -1, []string{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}},
		{"text to timestamptz", strs(arrow.BinaryTypes.String, "2024-01-31 12:34:56.5+00"), catalog.OIDTimestampTZ, -1, []string{"2024-01-31 12:34:56.5+00"}},
		{"text to array", strs(arrow.BinaryTypes.String, "{1,NULL}", "NULL", "{}"), 1016, -1, []string{"{1,NULL}", "NULL", "{}"}},
		{"text to json", strs(arrow.BinaryTypes.String, `{"a": 1}`), oidJSONB, -1, []string{`{"a": 1}`}},
		{"large text to json", strs(arrow.BinaryTypes.LargeString, `[1]`), oidJSON, -1, []string{`[1]`}},
		{"interval text", strs(arrow.BinaryTypes.String, "1 day"), 1186, -1, []string{"1 day"}},
		{"int32 to int16", int32s, catalog.OIDInt2, -1, []string{"-32768", "32767", "NULL"}},
		{"int64 to oid", column(mem, arrow.PrimitiveTypes.Int64, func(b *array.Int64Builder) { b.Append(4294967295) }), oidOID, -1, []string{"4294967295"}},
		{"int16 to int8", column(mem, arrow.PrimitiveTypes.Int16, func(b *array.Int16Builder) { b.Append(-5) }), catalog.OIDInt8, -1, []string{"-5"}},
		{"money", column(mem, arrow.PrimitiveTypes.Int64, func(b *array.Int64Builder) {
			b.AppendValues([]int64{123456, -5, 0, math.MinInt64}, nil)
		}), catalog.OIDMoney, -1, []string{"1234.56", "-0.05", "0.00", "-92233720368547758.08"}},
		{"decimal precision", dec(5, 2, 150, -99999), catalog.OIDNumeric, numericMod(10, 2), []string{"1.50", "-999.99", "NULL"}},
		{"decimal scale up", dec(5, 2, 150), catalog.OIDNumeric, numericMod(10, 4), []string{"1.5000", "NULL"}},
		{"decimal scale down", dec(10, 4, 15000, -10), catalog.OIDNumeric, numericMod(4, 3), []string{"1.500", "-0.001", "NULL"}},
		{"decimal to decimal256", dec(38, 0, -7), catalog.OIDNumeric, numericMod(40, 2), []string{"-7.00", "NULL"}},
		{"decimal to numeric text", dec(38, 3, 12345), catalog.OIDNumeric, -1, []string{"12.345", "NULL"}},
		{"int to numeric", column(mem, arrow.PrimitiveTypes.Int64, func(b *array.Int64Builder) { b.Append(42) }), catalog.OIDNumeric, numericMod(5, 1), []string{"42.0"}},
		{"date -infinity", column(mem, arrow.FixedWidthTypes.Date32, func(b *array.Date32Builder) {
			b.AppendValues([]arrow.Date32{-math.MaxInt32, math.MaxInt32, 0, 0}, []bool{true, true, true, false})
		}), catalog.OIDDate, -1, []string{"-infinity", "infinity", "1970-01-01", "NULL"}},
		{"timestamp -infinity", column(mem, timestampType, func(b *array.TimestampBuilder) {
			b.AppendValues([]arrow.Timestamp{-math.MaxInt64, math.MaxInt64, 1}, nil)
		}), catalog.OIDTimestamp, -1, []string{"-infinity", "infinity", "1970-01-01 00:00:00.000001"}},
		{"timestamptz zone", column(mem, &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "America/New_York"}, func(b *array.TimestampBuilder) {
			b.Append(0)
		}), catalog.OIDTimestampTZ, -1, []string{"1970-01-01 00:00:00+00"}},
		{"timestamptz no zone", column(mem, timestampType, func(b *array.TimestampBuilder) { b.Append(0) }), catalog.OIDTimestampTZ, -1, []string{"1970-01-01 00:00:00+00"}},
		{"timestamp ns", column(mem, &arrow.TimestampType{Unit: arrow.Nanosecond}, func(b *array.TimestampBuilder) {
			b.AppendValues([]arrow.Timestamp{1500, math.MaxInt64}, nil)
		}), catalog.OIDTimestamp, -1, []string{"1970-01-01 00:00:00.000001", "infinity"}},
		{"timestamp s", column(mem, &arrow.TimestampType{Unit: arrow.Second, TimeZone: "UTC"}, func(b *array.TimestampBuilder) { b.Append(-1) }), catalog.OIDTimestampTZ, -1, []string{"1969-12-31 23:59:59+00"}},
		{"time ns", column(mem, arrow.FixedWidthTypes.Time64ns, func(b *array.Time64Builder) { b.Append(45296789000000) }), catalog.OIDTime, -1, []string{"12:34:56.789"}},
		{"time ms", column(mem, arrow.FixedWidthTypes.Time32ms, func(b *array.Time32Builder) { b.Append(1500) }), catalog.OIDTime, -1, []string{"00:00:01.5"}},
		{"large binary", column(mem, arrow.BinaryTypes.LargeBinary, func(b *array.BinaryBuilder) { b.Append([]byte{0xde, 0xad}) }), catalog.OIDBytea, -1, []string{`\xdead`}},
		{"binary view", column(mem, arrow.BinaryTypes.BinaryView, func(b *array.BinaryViewBuilder) { b.Append([]byte{1}) }), catalog.OIDBytea, -1, []string{`\x01`}},
		{"bytea text", strs(arrow.BinaryTypes.String, `\x0102`), catalog.OIDBytea, -1, []string{`\x0102`}},
		{"uuid bytes", uuidBytes, catalog.OIDUUID, -1, []string{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}},
	}
	for _, tt := range tests {
		got, err := ConvertColumn(mem, tt.col, tt.oid, tt.typmod)
		tt.col.Release()
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !arrow.TypeEqual(got.DataType(), ArrowType(tt.oid, tt.typmod)) {
			t.Errorf("%s: type %s, want %s", tt.name, got.DataType(), ArrowType(tt.oid, tt.typmod))
		}
		if g := texts(got, tt.oid, tt.typmod); strings.Join(g, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%s: %q, want %q", tt.name, g, tt.want)
		}
		got.Release()
	}
}

func TestConvertColumnZeroCopy(t *testing.T) {
	mem := checkedMem(t)
	// A relabeled column shares its values buffer.
	col := column(mem, &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "Europe/Paris"}, func(b *array.TimestampBuilder) { b.Append(7) })
	defer col.Release()
	got, err := ConvertColumn(mem, col, catalog.OIDTimestampTZ, -1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Data().Buffers()[1] != col.Data().Buffers()[1] {
		t.Error("timestamp relabeled to UTC was copied")
	}
	got.Release()

	fsb := column(mem, &arrow.FixedSizeBinaryType{ByteWidth: 16}, func(b *array.FixedSizeBinaryBuilder) { b.Append(make([]byte, 16)) })
	defer fsb.Release()
	got, err = ConvertColumn(mem, fsb, catalog.OIDUUID, -1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Data().Buffers()[1] != fsb.Data().Buffers()[1] {
		t.Error("uuid storage was copied")
	}
	got.Release()

	text := column(mem, arrow.BinaryTypes.String, func(b *array.StringBuilder) { b.Append("{}") })
	defer text.Release()
	got, err = ConvertColumn(mem, text, oidJSON, -1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Data().Buffers()[2] != text.Data().Buffers()[2] {
		t.Error("json text was copied")
	}
	got.Release()
}

func TestConvertColumnErrors(t *testing.T) {
	mem := checkedMem(t)
	tests := []struct {
		name   string
		col    arrow.Array
		oid    uint32
		typmod int32
		errHas string
	}{
		{"int16 overflow", column(mem, arrow.PrimitiveTypes.Int32, func(b *array.Int32Builder) { b.Append(32768) }), catalog.OIDInt2, -1, "out of range"},
		{"decimal overflow", column(mem, &arrow.Decimal128Type{Precision: 10, Scale: 2}, func(b *array.Decimal128Builder) {
			b.Append(decimal128.FromI64(100000))
		}), catalog.OIDNumeric, numericMod(4, 2), "does not fit"},
		{"decimal inexact", column(mem, &arrow.Decimal128Type{Precision: 10, Scale: 3}, func(b *array.Decimal128Builder) {
			b.Append(decimal128.FromI64(1001))
		}), catalog.OIDNumeric, numericMod(10, 2), "fraction digits"},
		{"shifted timestamp", column(mem, timestampType, func(b *array.TimestampBuilder) {
			b.Append(arrow.Timestamp(catalog.TimestampShiftedBelow - 1))
		}), catalog.OIDTimestamp, -1, "range of an Arrow timestamp"},
		{"timestamp s overflow", column(mem, &arrow.TimestampType{Unit: arrow.Second}, func(b *array.TimestampBuilder) {
			b.Append(math.MaxInt64 / 10)
		}), catalog.OIDTimestamp, -1, "range"},
		{"bad text", column(mem, arrow.BinaryTypes.String, func(b *array.StringBuilder) { b.Append("1"); b.Append("x") }), catalog.OIDInt4, -1, "row 1"},
		{"multi-dimensional", column(mem, arrow.BinaryTypes.String, func(b *array.StringBuilder) { b.Append("{{1}}") }), 1007, -1, "multi-dimensional"},
		{"float to int", column(mem, arrow.PrimitiveTypes.Float64, func(b *array.Float64Builder) { b.Append(1) }), catalog.OIDInt4, -1, "no conversion"},
		{"bool to text", column(mem, arrow.FixedWidthTypes.Boolean, func(b *array.BooleanBuilder) { b.Append(true) }), catalog.OIDText, -1, "no conversion"},
		{"binary of 8 to uuid", column(mem, &arrow.FixedSizeBinaryType{ByteWidth: 8}, func(b *array.FixedSizeBinaryBuilder) { b.Append(make([]byte, 8)) }), catalog.OIDUUID, -1, "no conversion"},
	}
	for _, tt := range tests {
		got, err := ConvertColumn(mem, tt.col, tt.oid, tt.typmod)
		tt.col.Release()
		if err == nil {
			got.Release()
			t.Errorf("%s: no error", tt.name)
			continue
		}
		if !strings.Contains(err.Error(), tt.errHas) {
			t.Errorf("%s: %v, want an error with %q", tt.name, err, tt.errHas)
		}
	}
}

// TestFloatFormat checks the fixed and exponent forms at their thresholds.
func TestFloatFormat(t *testing.T) {
	for f, want := range map[float64]string{
		1e14: "100000000000000", 1e15: "1e+15", 0.0001: "0.0001", 0.00001: "1e-05",
		123.456: "123.456", -0.5: "-0.5", 1e100: "1e+100", 2.5e-10: "2.5e-10",
		999999999999999: "999999999999999", 1234567890123456: "1.234567890123456e+15",
	} {
		if got := formatFloat(f, 64); got != want {
			t.Errorf("float8 %v: %s, want %s", f, got, want)
		}
	}
	for f, want := range map[float32]string{
		100000: "100000", 1e6: "1e+06", 123456: "123456", 1234567: "1.234567e+06", 0.0001: "0.0001", 1e-5: "1e-05",
	} {
		if got := formatFloat(float64(f), 32); got != want {
			t.Errorf("float4 %v: %s, want %s", f, got, want)
		}
	}
}
