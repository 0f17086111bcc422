package catalog

import (
	"context"
	gosql "database/sql"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/iceberg-go"
	_ "github.com/duckdb/duckdb-go/v2"
)

// numericTypmod is the atttypmod PostgreSQL stores for numeric(p,s). Since
// PostgreSQL 15 the scale takes the low 11 bits and may be negative.
func numericTypmod(p, s int32) int32 { return (p<<16 | s&0x7ff) + 4 }

func TestResolveType(t *testing.T) {
	tests := []struct {
		name   string
		oid    uint32
		typmod int32
		kind   Kind
	}{
		{"bool", OIDBool, -1, KindBool},
		{"int2", OIDInt2, -1, KindInt16},
		{"int4", OIDInt4, -1, KindInt32},
		{"int8", OIDInt8, -1, KindInt64},
		{"float4", OIDFloat4, -1, KindFloat32},
		{"float8", OIDFloat8, -1, KindFloat64},
		{"text", OIDText, -1, KindString},
		{"varchar", OIDVarchar, -1, KindString},
		{"varchar(20)", OIDVarchar, 24, KindString},
		{"bpchar(3)", OIDBpchar, 7, KindString},
		{"date", OIDDate, -1, KindDate},
		{"timestamp", OIDTimestamp, -1, KindTimestamp},
		{"timestamp(3)", OIDTimestamp, 3, KindTimestamp},
		{"timestamptz", OIDTimestampTZ, -1, KindTimestampTZ},
		{"uuid", OIDUUID, -1, KindUUID},
		{"bytea", OIDBytea, -1, KindBytea},
		{"time", OIDTime, -1, KindTime},
		{"time(3)", OIDTime, 3, KindTime},
		{"money", OIDMoney, -1, KindMoney},
		// numeric of any typmod keeps its text: DECIMAL has no NaN.
		{"numeric", OIDNumeric, -1, KindText},
		{"numeric(12,3)", OIDNumeric, numericTypmod(12, 3), KindText},
		{"numeric(40,2)", OIDNumeric, numericTypmod(40, 2), KindText},
		{"numeric(5,-2)", OIDNumeric, numericTypmod(5, -2), KindText},
		{"json", 114, -1, KindText},
		{"jsonb", 3802, -1, KindText},
		{"interval", 1186, -1, KindText},
		{"timetz", 1266, -1, KindText},
		{"inet", 869, -1, KindText},
		{"cidr", 650, -1, KindText},
		{"point", 600, -1, KindText},
		{"int4[]", 1007, -1, KindText},
		{"a type of an extension", 16500, -1, KindText},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveType(tc.oid, tc.typmod, tc.name)
			if err != nil {
				t.Fatalf("ResolveType(%d, %d, %q) error: %v", tc.oid, tc.typmod, tc.name, err)
			}
			want := ColumnType{OID: tc.oid, Typmod: tc.typmod, Kind: tc.kind, Name: tc.name}
			if got != want {
				t.Errorf("ResolveType(%d, %d, %q) = %+v; want %+v", tc.oid, tc.typmod, tc.name, got, want)
			}
		})
	}
}

func TestKindNames(t *testing.T) {
	seen := map[string]bool{}
	for k := KindBool; k <= KindMoney; k++ {
		name := k.String()
		if seen[name] {
			t.Errorf("Kind(%d).String() = %q, a name already taken", int(k), name)
		}
		seen[name] = true
		if got, err := ParseKind(name); err != nil || got != k {
			t.Errorf("ParseKind(%q) = %v, %v; want %v", name, got, err, k)
		}
	}
	if got, err := ParseKind("no such kind"); err == nil {
		t.Errorf("ParseKind(%q) = %v; want an error", "no such kind", got)
	}
}

func TestColumnTypeStorage(t *testing.T) {
	tests := []struct {
		name    string
		typ     ColumnType
		duck    string
		iceberg iceberg.Type
	}{
		{"bool", ColumnType{Kind: KindBool}, "BOOLEAN", iceberg.PrimitiveTypes.Bool},
		{"int2", ColumnType{Kind: KindInt16}, "INTEGER", iceberg.PrimitiveTypes.Int32},
		{"int4", ColumnType{Kind: KindInt32}, "INTEGER", iceberg.PrimitiveTypes.Int32},
		{"int8", ColumnType{Kind: KindInt64}, "BIGINT", iceberg.PrimitiveTypes.Int64},
		{"float4", ColumnType{Kind: KindFloat32}, "FLOAT", iceberg.PrimitiveTypes.Float32},
		{"float8", ColumnType{Kind: KindFloat64}, "DOUBLE", iceberg.PrimitiveTypes.Float64},
		{"legacy numeric(12,3)", ColumnType{Kind: KindDecimal, Precision: 12, Scale: 3}, "DECIMAL(12,3)", iceberg.DecimalTypeOf(12, 3)},
		{"legacy numeric(38,0)", ColumnType{Kind: KindDecimal, Precision: 38, Scale: 0}, "DECIMAL(38,0)", iceberg.DecimalTypeOf(38, 0)},
		{"text", ColumnType{Kind: KindString}, "VARCHAR", iceberg.PrimitiveTypes.String},
		{"numeric, json, arrays...", ColumnType{Kind: KindText}, "VARCHAR", iceberg.PrimitiveTypes.String},
		{"date", ColumnType{Kind: KindDate}, "DATE", iceberg.PrimitiveTypes.Date},
		{"timestamp", ColumnType{Kind: KindTimestamp}, "TIMESTAMP", iceberg.PrimitiveTypes.Timestamp},
		{"timestamptz", ColumnType{Kind: KindTimestampTZ}, "TIMESTAMPTZ", iceberg.PrimitiveTypes.TimestampTz},
		{"uuid", ColumnType{Kind: KindUUID}, "UUID", iceberg.PrimitiveTypes.UUID},
		{"bytea", ColumnType{Kind: KindBytea}, "BLOB", iceberg.PrimitiveTypes.Binary},
		{"time", ColumnType{Kind: KindTime}, "TIME", iceberg.PrimitiveTypes.Time},
		{"money", ColumnType{Kind: KindMoney}, "BIGINT", iceberg.PrimitiveTypes.Int64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.typ.DuckDBType(); got != tc.duck {
				t.Errorf("DuckDBType(%+v) = %q; want %q", tc.typ, got, tc.duck)
			}
			if got := tc.typ.IcebergType(); !got.Equals(tc.iceberg) {
				t.Errorf("IcebergType(%+v) = %v; want %v", tc.typ, got, tc.iceberg)
			}
		})
	}
}

// openDuck opens an in-memory DuckDB on one connection, in UTC like the
// sidecar's engine.
func openDuck(t *testing.T) *gosql.DB {
	t.Helper()
	db, err := gosql.Open("duckdb", "")
	if err != nil {
		t.Fatalf("open duckdb: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("SET TimeZone = 'UTC'"); err != nil {
		t.Fatalf("set time zone: %v", err)
	}
	return db
}

// castText runs typ.CastFromText on a VARCHAR column holding text, and
// returns the stored value printed by DuckDB and whether it has the
// column's DuckDB type.
func castText(ctx context.Context, db *gosql.DB, typ ColumnType, text string) (value string, sameType bool, err error) {
	expr := typ.CastFromText("v")
	var v gosql.NullString
	err = db.QueryRowContext(ctx, "SELECT CAST(x AS VARCHAR), typeof(x) = typeof(CAST(NULL AS "+typ.DuckDBType()+
		")) FROM (SELECT "+expr+" AS x FROM (SELECT CAST(? AS VARCHAR) AS v))", text).Scan(&v, &sameType)
	if !v.Valid {
		return "<NULL>", sameType, err
	}
	return v.String, sameType, err
}

func mustResolve(t *testing.T, oid uint32, typmod int32) ColumnType {
	t.Helper()
	typ, err := ResolveType(oid, typmod, "")
	if err != nil {
		t.Fatalf("ResolveType(%d, %d) error: %v", oid, typmod, err)
	}
	return typ
}

// thousandDigits is a 1000-digit integer, as numeric writes it.
var thousandDigits = "9" + strings.Repeat("1234567890", 99) + "123456789"

// TestCastFromText feeds PostgreSQL's text output (cdc.SessionParams:
// DateStyle ISO, TimeZone UTC, extra_float_digits 3, bytea_output hex,
// lc_monetary C) through the cast expressions in DuckDB. want is the stored
// value as DuckDB prints it.
func TestCastFromText(t *testing.T) {
	db := openDuck(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		oid    uint32
		typmod int32
		text   string
		want   string
	}{
		{"bool true", OIDBool, -1, "t", "true"},
		{"bool false", OIDBool, -1, "f", "false"},
		{"int2 min", OIDInt2, -1, "-32768", "-32768"},
		{"int2 max", OIDInt2, -1, "32767", "32767"},
		{"int4 min", OIDInt4, -1, "-2147483648", "-2147483648"},
		{"int8 min", OIDInt8, -1, "-9223372036854775808", "-9223372036854775808"},
		{"int8 max", OIDInt8, -1, "9223372036854775807", "9223372036854775807"},
		{"float4 NaN", OIDFloat4, -1, "NaN", "nan"},
		{"float4 Infinity", OIDFloat4, -1, "Infinity", "inf"},
		{"float4 -Infinity", OIDFloat4, -1, "-Infinity", "-inf"},
		{"float4 max", OIDFloat4, -1, "3.4028235e+38", "3.4028235e+38"},
		{"float4 denormal min", OIDFloat4, -1, "1e-45", "1e-45"},
		{"float4 0.1", OIDFloat4, -1, "0.1", "0.1"},
		{"float8 NaN", OIDFloat8, -1, "NaN", "nan"},
		{"float8 Infinity", OIDFloat8, -1, "Infinity", "inf"},
		{"float8 -Infinity", OIDFloat8, -1, "-Infinity", "-inf"},
		{"float8 -0", OIDFloat8, -1, "-0", "-0.0"},
		{"float8 exponent", OIDFloat8, -1, "1e+100", "1e+100"},
		{"float8 shortest", OIDFloat8, -1, "0.30000000000000004", "0.30000000000000004"},
		{"numeric(12,3) keeps its scale", OIDNumeric, numericTypmod(12, 3), "1.500", "1.500"},
		{"numeric(12,3) NaN", OIDNumeric, numericTypmod(12, 3), "NaN", "NaN"},
		{"numeric Infinity", OIDNumeric, -1, "Infinity", "Infinity"},
		{"numeric -Infinity", OIDNumeric, -1, "-Infinity", "-Infinity"},
		{"numeric 1000 digits", OIDNumeric, -1, thousandDigits, thousandDigits},
		{"numeric 1000 fraction digits", OIDNumeric, -1, "0." + strings.Repeat("0", 999) + "1", "0." + strings.Repeat("0", 999) + "1"},
		{"text empty", OIDText, -1, "", ""},
		{"text unicode", OIDText, -1, "ünïcode ✓", "ünïcode ✓"},
		{"text ends in BC", OIDText, -1, "AD or BC", "AD or BC"},
		{"varchar quote", OIDVarchar, -1, "it's", "it's"},
		{"bpchar padded", OIDBpchar, 9, "ab   ", "ab   "},
		{"json keeps its spacing", 114, -1, `{"a" : [1, 2]}`, `{"a" : [1, 2]}`},
		{"int4[] with NULL", 1007, -1, "{1,NULL,3}", "{1,NULL,3}"},
		{"uuid", OIDUUID, -1, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{"bytea", OIDBytea, -1, `\x00ff5c41`, `\x00\xFF\x5CA`},
		{"bytea empty", OIDBytea, -1, `\x`, ""},
		{"time", OIDTime, -1, "13:45:00.000001", "13:45:00.000001"},
		{"time midnight", OIDTime, -1, "00:00:00", "00:00:00"},
		{"time 24:00", OIDTime, -1, "24:00:00", "24:00:00"},
		{"money", OIDMoney, -1, "$1,234.56", "123456"},
		{"money zero", OIDMoney, -1, "$0.00", "0"},
		{"money min", OIDMoney, -1, "-$92,233,720,368,547,758.08", "-9223372036854775808"},
		{"money max", OIDMoney, -1, "$92,233,720,368,547,758.07", "9223372036854775807"},
		{"date", OIDDate, -1, "2024-06-05", "2024-06-05"},
		{"date BC", OIDDate, -1, "0044-03-15 BC", "0044-03-15 (BC)"},
		{"date min", OIDDate, -1, "4713-11-24 BC", "4713-11-24 (BC)"},
		{"date max", OIDDate, -1, "5874897-12-31", "5874897-12-31"},
		{"date infinity", OIDDate, -1, "infinity", "infinity"},
		{"date -infinity", OIDDate, -1, "-infinity", "-infinity"},
		{"timestamp", OIDTimestamp, -1, "2024-06-05 10:00:00.123456", "2024-06-05 10:00:00.123456"},
		{"timestamp before 2000", OIDTimestamp, -1, "1999-12-31 23:59:59.999999", "1999-12-31 23:59:59.999999"},
		{"timestamp BC", OIDTimestamp, -1, "0044-03-15 10:00:00 BC", "0044-03-15 (BC) 10:00:00"},
		{"timestamp min", OIDTimestamp, -1, "4713-11-24 00:00:00 BC", "4713-11-24 (BC) 00:00:00"},
		{"timestamp infinity", OIDTimestamp, -1, "infinity", "infinity"},
		{"timestamp -infinity", OIDTimestamp, -1, "-infinity", "-infinity"},
		{"timestamp year 200000", OIDTimestamp, -1, "200000-02-29 12:34:56.789012", "200000-02-29 12:34:56.789012"},
		{"timestamp last in DuckDB's range", OIDTimestamp, -1, "294247-01-10 04:00:54.775806", "294247-01-10 04:00:54.775806"},
		// Past DuckDB's range: shifted by TimestampShift.
		{"timestamp first past DuckDB's range", OIDTimestamp, -1, "294247-01-10 04:00:54.775807", "144170-06-28 (BC) 09:59:32.612095"},
		{"timestamp max", OIDTimestamp, -1, "294276-12-31 23:59:59.999999", "144140-06-19 (BC) 05:58:37.836287"},
		{"timestamptz", OIDTimestampTZ, -1, "2024-06-05 10:00:00+00", "2024-06-05 10:00:00+00"},
		{"timestamptz fraction", OIDTimestampTZ, -1, "2024-06-05 10:00:00.5+00", "2024-06-05 10:00:00.5+00"},
		{"timestamptz year 10000", OIDTimestampTZ, -1, "10000-01-01 00:00:00+00", "10000-01-01 00:00:00+00"},
		{"timestamptz BC", OIDTimestampTZ, -1, "0044-03-15 10:00:00+00 BC", "0044-03-15 (BC) 10:00:00+00"},
		{"timestamptz infinity", OIDTimestampTZ, -1, "infinity", "infinity"},
		{"timestamptz -infinity", OIDTimestampTZ, -1, "-infinity", "-infinity"},
		{"timestamptz year 200000", OIDTimestampTZ, -1, "200000-01-01 00:00:00+00", "200000-01-01 00:00:00+00"},
		{"timestamptz max", OIDTimestampTZ, -1, "294276-12-31 23:59:59.999999+00", "144140-06-19 (BC) 05:58:37.836287+00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			typ := mustResolve(t, tc.oid, tc.typmod)
			got, sameType, err := castText(ctx, db, typ, tc.text)
			if err != nil {
				t.Fatalf("CastFromText(%q) on %s: %v", tc.text, typ.DuckDBType(), err)
			}
			if got != tc.want {
				t.Errorf("CastFromText(%q) on %s = %q; want %q", tc.text, typ.DuckDBType(), got, tc.want)
			}
			if !sameType {
				t.Errorf("CastFromText(%q) is not of type %s", tc.text, typ.DuckDBType())
			}
		})
	}
}

// TestCastFromTextLiteral checks the casts of constants, which DuckDB
// folds when planning: the branch of a value past DuckDB's range must not
// be evaluated for other values, nor the other way round. The writer casts
// key literals so.
func TestCastFromTextLiteral(t *testing.T) {
	db := openDuck(t)
	for _, tc := range []struct {
		oid  uint32
		text string
		want string
	}{
		{OIDTimestamp, "2024-06-05 10:00:00", "2024-06-05 10:00:00"},
		{OIDTimestamp, "294276-12-31 23:59:59.999999", "144140-06-19 (BC) 05:58:37.836287"},
		{OIDTimestampTZ, "294276-12-31 23:59:59.999999+00", "144140-06-19 (BC) 05:58:37.836287+00"},
		{OIDTimestamp, "0044-03-15 10:00:00 BC", "0044-03-15 (BC) 10:00:00"},
	} {
		typ := mustResolve(t, tc.oid, -1)
		var got string
		if err := db.QueryRow("SELECT CAST(" + typ.CastFromText(QuoteLiteral(tc.text)) + " AS VARCHAR)").Scan(&got); err != nil {
			t.Errorf("CastFromText(%s) on %s: %v", QuoteLiteral(tc.text), typ.DuckDBType(), err)
			continue
		}
		if got != tc.want {
			t.Errorf("CastFromText(%s) on %s = %q; want %q", QuoteLiteral(tc.text), typ.DuckDBType(), got, tc.want)
		}
	}
}

// TestCastToText stores PostgreSQL's text of a value with CastFromText and
// renders it back with CastToText: the result is text PostgreSQL reads as
// the same value (want; mostly the text itself) and CastFromText turns it
// into the same stored value.
func TestCastToText(t *testing.T) {
	db := openDuck(t)
	tests := []struct {
		name string
		oid  uint32
		text string
		want string
	}{
		{"bool", OIDBool, "t", "t"},
		{"int2", OIDInt2, "-32768", "-32768"},
		{"int8", OIDInt8, "9223372036854775807", "9223372036854775807"},
		{"float4", OIDFloat4, "0.1", "0.1"},
		{"float8 NaN", OIDFloat8, "NaN", "nan"},
		{"float8 -Infinity", OIDFloat8, "-Infinity", "-inf"},
		{"float8 -0", OIDFloat8, "-0", "-0.0"},
		{"float8 shortest", OIDFloat8, "0.30000000000000004", "0.30000000000000004"},
		{"numeric", OIDNumeric, "-1.500", "-1.500"},
		{"numeric 1000 digits", OIDNumeric, thousandDigits, thousandDigits},
		{"text", OIDText, "a'b\\c\n", "a'b\\c\n"},
		{"jsonb", 3802, `{"a": 1}`, `{"a": 1}`},
		{"interval", 1186, "P1Y2M3DT4H5M6.789S", "P1Y2M3DT4H5M6.789S"},
		{"uuid", OIDUUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{"bytea", OIDBytea, `\x00ff5c41`, `\x00ff5c41`},
		{"bytea empty", OIDBytea, `\x`, `\x`},
		{"time", OIDTime, "13:45:00.000001", "13:45:00.000001"},
		{"time 24:00", OIDTime, "24:00:00", "24:00:00"},
		{"money", OIDMoney, "-$1,234.56", "-1234.56"},
		{"money min", OIDMoney, "-$92,233,720,368,547,758.08", "-92233720368547758.08"},
		{"date BC", OIDDate, "0044-03-15 BC", "0044-03-15 BC"},
		{"date max", OIDDate, "5874897-12-31", "5874897-12-31"},
		{"date -infinity", OIDDate, "-infinity", "-infinity"},
		{"timestamp", OIDTimestamp, "2024-06-05 10:00:00.5", "2024-06-05 10:00:00.5"},
		{"timestamp BC", OIDTimestamp, "4713-11-24 00:00:00 BC", "4713-11-24 00:00:00 BC"},
		{"timestamp infinity", OIDTimestamp, "infinity", "infinity"},
		{"timestamp year 200000", OIDTimestamp, "200000-02-29 12:34:56.789012", "200000-02-29 12:34:56.789012"},
		{"timestamp first past DuckDB's range", OIDTimestamp, "294247-01-10 04:00:54.775807", "294247-01-10 04:00:54.775807"},
		{"timestamp max", OIDTimestamp, "294276-12-31 23:59:59.999999", "294276-12-31 23:59:59.999999"},
		{"timestamp past DuckDB's range, midnight", OIDTimestamp, "294270-01-01 00:00:00", "294270-01-01 00:00:00"},
		{"timestamptz BC", OIDTimestampTZ, "0044-03-15 10:00:00+00 BC", "0044-03-15 10:00:00+00 BC"},
		{"timestamptz -infinity", OIDTimestampTZ, "-infinity", "-infinity"},
		{"timestamptz max", OIDTimestampTZ, "294276-12-31 23:59:59.999999+00", "294276-12-31 23:59:59.999999+00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			typ := mustResolve(t, tc.oid, -1)
			q := "SELECT txt, " + typ.CastFromText("txt") + " IS NOT DISTINCT FROM x FROM (SELECT x, " + typ.CastToText("x") +
				" AS txt FROM (SELECT " + typ.CastFromText("v") + " AS x FROM (SELECT CAST(? AS VARCHAR) AS v)))"
			var got string
			var same bool
			if err := db.QueryRow(q, tc.text).Scan(&got, &same); err != nil {
				t.Fatalf("CastToText(CastFromText(%q)) on %s: %v", tc.text, typ.DuckDBType(), err)
			}
			if got != tc.want {
				t.Errorf("CastToText(CastFromText(%q)) on %s = %q; want %q", tc.text, typ.DuckDBType(), got, tc.want)
			}
			if !same {
				t.Errorf("CastFromText(CastToText(x)) on %s is not x, for x = CastFromText(%q)", typ.DuckDBType(), tc.text)
			}
		})
	}
}

// TestCastFromTextNull checks that NULL stays NULL through every cast.
func TestCastFromTextNull(t *testing.T) {
	db := openDuck(t)
	for k := KindBool; k <= KindMoney; k++ {
		typ := ColumnType{Kind: k, Precision: 12, Scale: 3}
		var v, back gosql.NullString
		q := "SELECT CAST(x AS VARCHAR), " + typ.CastToText("x") + " FROM (SELECT " + typ.CastFromText("CAST(NULL AS VARCHAR)") + " AS x)"
		if err := db.QueryRow(q).Scan(&v, &back); err != nil {
			t.Fatalf("CastFromText(NULL) on %s: %v", typ.DuckDBType(), err)
		}
		if v.Valid || back.Valid {
			t.Errorf("kind %s: CastFromText(NULL) = %q, CastToText of it = %q; want NULL, NULL", k, v.String, back.String)
		}
	}
}

// TestLegacyDecimal checks the mirrors created when numeric(p,s) was
// stored as DECIMAL(p,s): they still load so, and a NaN, which DECIMAL
// cannot hold, fails loudly rather than being stored wrong.
func TestLegacyDecimal(t *testing.T) {
	typ, err := legacyType(OIDNumeric, numericTypmod(12, 3), "numeric(12,3)")
	if err != nil {
		t.Fatalf("legacyType(numeric(12,3)) error: %v", err)
	}
	if typ.Kind != KindDecimal || typ.DuckDBType() != "DECIMAL(12,3)" {
		t.Fatalf("legacyType(numeric(12,3)) = %+v, %s; want KindDecimal, DECIMAL(12,3)", typ, typ.DuckDBType())
	}
	db := openDuck(t)
	ctx := context.Background()
	if got, _, err := castText(ctx, db, typ, "1.50"); err != nil || got != "1.500" {
		t.Errorf("CastFromText(%q) on %s = %q, %v; want %q", "1.50", typ.DuckDBType(), got, err, "1.500")
	}
	if got, _, err := castText(ctx, db, typ, "NaN"); err == nil {
		t.Errorf("CastFromText(%q) on %s = %q; want an error", "NaN", typ.DuckDBType(), got)
	}
	for _, tc := range []struct {
		name   string
		typmod int32
	}{
		{"numeric", -1},
		{"numeric(40,2)", numericTypmod(40, 2)},
		{"numeric(5,-2)", numericTypmod(5, -2)},
		{"numeric(3,5)", numericTypmod(3, 5)},
	} {
		if got, err := legacyType(OIDNumeric, tc.typmod, tc.name); err == nil {
			t.Errorf("legacyType(%s) = %+v; want an error (never stored as DECIMAL)", tc.name, got)
		}
	}
}

// TestDecimalType: the numeric(p,s) a mirror stores as DECIMAL(p,s), and
// the ones it keeps as text; AsText and IsNaN.
func TestDecimalType(t *testing.T) {
	for _, tc := range []struct {
		name   string
		typmod int32
		want   string // DuckDB type
	}{
		{"numeric(12,2)", numericTypmod(12, 2), "DECIMAL(12,2)"},
		{"numeric(38,10)", numericTypmod(38, 10), "DECIMAL(38,10)"},
		{"numeric(5,5)", numericTypmod(5, 5), "DECIMAL(5,5)"},
		{"numeric(10,0)", numericTypmod(10, 0), "DECIMAL(10,0)"},
		{"numeric(1,0)", numericTypmod(1, 0), "DECIMAL(1,0)"},
		{"numeric", -1, "VARCHAR"},
		{"numeric(39,2)", numericTypmod(39, 2), "VARCHAR"},
		{"numeric(5,-2)", numericTypmod(5, -2), "VARCHAR"},
		{"numeric(3,5)", numericTypmod(3, 5), "VARCHAR"},
	} {
		rt, err := ResolveType(OIDNumeric, tc.typmod, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		got := DecimalType(rt)
		if got.DuckDBType() != tc.want {
			t.Errorf("DecimalType(%s) stores %s; want %s", tc.name, got.DuckDBType(), tc.want)
		}
		if got.Kind == KindDecimal {
			if txt := got.AsText(); txt != rt {
				t.Errorf("DecimalType(%s).AsText() = %+v; want %+v", tc.name, txt, rt)
			}
			nan, one := "NaN", "1.5"
			if !got.IsNaN(&nan) || got.IsNaN(&one) || got.IsNaN(nil) || rt.IsNaN(&nan) {
				t.Errorf("IsNaN of %s is wrong", tc.name)
			}
		}
	}
	for _, oid := range []uint32{OIDInt4, OIDText, OIDFloat8} {
		rt, _ := ResolveType(oid, -1, "x")
		if DecimalType(rt) != rt {
			t.Errorf("DecimalType changed type %d", oid)
		}
	}
}

// TestColumnsProperty checks the mooncake.columns property: every kind
// survives encoding, and the property of mirrors created before the kind
// was recorded still loads, as those mirrors stored their columns.
func TestColumnsProperty(t *testing.T) {
	var cols []Column
	for k := KindBool; k <= KindMoney; k++ {
		typ := ColumnType{OID: 16384 + uint32(k), Typmod: -1, Kind: k, Name: "type " + k.String()}
		if k == KindDecimal {
			typ = ColumnType{OID: OIDNumeric, Typmod: numericTypmod(12, 3), Kind: k, Precision: 12, Scale: 3, Name: "numeric(12,3)"}
		}
		cols = append(cols, Column{Name: "c_" + k.String(), Type: typ, NotNull: k%2 == 0, ID: 100 + int(k), AttNum: 1 + int(k)})
	}
	colsJSON, keyJSON, err := encodeColumns(cols, []string{"c_int32"})
	if err != nil {
		t.Fatalf("encodeColumns: %v", err)
	}
	got, key, err := decodeColumns(colsJSON, keyJSON)
	if err != nil {
		t.Fatalf("decodeColumns(%s): %v", colsJSON, err)
	}
	if !reflect.DeepEqual(got, cols) {
		t.Errorf("decodeColumns(encodeColumns(cols)) = %+v; want %+v", got, cols)
	}
	if want := []int{int(KindInt32)}; !reflect.DeepEqual(key, want) {
		t.Errorf("decodeColumns key = %v; want %v", key, want)
	}

	legacy := `[{"name":"id","oid":20,"typmod":-1,"type":"","not_null":true},` +
		`{"name":"n","oid":1700,"typmod":786439,"type":""},{"name":"s","oid":1043,"typmod":24,"type":""}]`
	got, key, err = decodeColumns(legacy, `["id"]`)
	if err != nil {
		t.Fatalf("decodeColumns(%s): %v", legacy, err)
	}
	want := []Column{
		// Field IDs were then the positions + 1; attnums were not known.
		{Name: "id", Type: ColumnType{OID: OIDInt8, Typmod: -1, Kind: KindInt64}, NotNull: true, ID: 1},
		{Name: "n", Type: ColumnType{OID: OIDNumeric, Typmod: numericTypmod(12, 3), Kind: KindDecimal, Precision: 12, Scale: 3}, ID: 2},
		{Name: "s", Type: ColumnType{OID: OIDVarchar, Typmod: 24, Kind: KindString}, ID: 3},
	}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(key, []int{0}) {
		t.Errorf("decodeColumns(%s) = %+v, %v; want %+v, [0]", legacy, got, key, want)
	}

	for _, bad := range []string{
		`[{"name":"j","oid":114,"typmod":-1}]`,              // no kind, and never stored before kinds were recorded
		`[{"name":"j","oid":114,"typmod":-1,"kind":"xml"}]`, // unknown kind
		`[{"name":"n","oid":1700,"typmod":-1,"kind":"decimal"}]`,
	} {
		if got, _, err := decodeColumns(bad, `[]`); err == nil {
			t.Errorf("decodeColumns(%s) = %+v; want an error", bad, got)
		}
	}
}
