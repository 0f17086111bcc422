package catalog

import (
	"context"
	gosql "database/sql"
	"errors"
	"testing"

	"github.com/apache/iceberg-go"
	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5/pgconn"
)

// numericTypmod is the atttypmod PostgreSQL stores for numeric(p,s). Since
// PostgreSQL 15 the scale takes the low 11 bits and may be negative.
func numericTypmod(p, s int32) int32 { return (p<<16 | s&0x7ff) + 4 }

func TestResolveType(t *testing.T) {
	tests := []struct {
		name      string
		oid       uint32
		typmod    int32
		kind      Kind
		precision int
		scale     int
	}{
		{"bool", OIDBool, -1, KindBool, 0, 0},
		{"int2", OIDInt2, -1, KindInt16, 0, 0},
		{"int4", OIDInt4, -1, KindInt32, 0, 0},
		{"int8", OIDInt8, -1, KindInt64, 0, 0},
		{"float4", OIDFloat4, -1, KindFloat32, 0, 0},
		{"float8", OIDFloat8, -1, KindFloat64, 0, 0},
		{"text", OIDText, -1, KindString, 0, 0},
		{"varchar", OIDVarchar, -1, KindString, 0, 0},
		{"varchar(20)", OIDVarchar, 24, KindString, 0, 0},
		{"bpchar(3)", OIDBpchar, 7, KindString, 0, 0},
		{"date", OIDDate, -1, KindDate, 0, 0},
		{"timestamp", OIDTimestamp, -1, KindTimestamp, 0, 0},
		{"timestamp(3)", OIDTimestamp, 3, KindTimestamp, 0, 0},
		{"timestamptz", OIDTimestampTZ, -1, KindTimestampTZ, 0, 0},
		{"numeric(12,3)", OIDNumeric, numericTypmod(12, 3), KindDecimal, 12, 3},
		{"numeric(1,0)", OIDNumeric, numericTypmod(1, 0), KindDecimal, 1, 0},
		{"numeric(38,38)", OIDNumeric, numericTypmod(38, 38), KindDecimal, 38, 38},
		{"numeric(38,0)", OIDNumeric, numericTypmod(38, 0), KindDecimal, 38, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveType(tc.oid, tc.typmod, tc.name)
			if err != nil {
				t.Fatalf("ResolveType(%d, %d, %q) error: %v", tc.oid, tc.typmod, tc.name, err)
			}
			want := ColumnType{OID: tc.oid, Typmod: tc.typmod, Kind: tc.kind, Precision: tc.precision, Scale: tc.scale}
			if got != want {
				t.Errorf("ResolveType(%d, %d, %q) = %+v; want %+v", tc.oid, tc.typmod, tc.name, got, want)
			}
		})
	}
}

func TestResolveTypeUnsupported(t *testing.T) {
	tests := []struct {
		name   string
		oid    uint32
		typmod int32
	}{
		{"numeric", OIDNumeric, -1},
		{"numeric(40,2)", OIDNumeric, numericTypmod(40, 2)},
		{"numeric(39,0)", OIDNumeric, numericTypmod(39, 0)},
		{"numeric(5,-2)", OIDNumeric, numericTypmod(5, -2)},
		{"numeric(10,-1000)", OIDNumeric, numericTypmod(10, -1000)},
		{"numeric(3,5)", OIDNumeric, numericTypmod(3, 5)},
		{"point", 600, -1},
		{"bytea", 17, -1},
		{"json", 114, -1},
		{"uuid", 2950, -1},
		{"interval", 1186, -1},
		{"time", 1083, -1},
		{"int4[]", 1007, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveType(tc.oid, tc.typmod, tc.name)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) {
				t.Fatalf("ResolveType(%d, %d, %q) = %+v, %v; want a *pgconn.PgError", tc.oid, tc.typmod, tc.name, got, err)
			}
			if pgErr.Code != "0A000" {
				t.Errorf("ResolveType(%d, %d, %q) error code = %q; want %q", tc.oid, tc.typmod, tc.name, pgErr.Code, "0A000")
			}
			if pgErr.Message == "" {
				t.Errorf("ResolveType(%d, %d, %q) error has no message", tc.oid, tc.typmod, tc.name)
			}
		})
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
		{"numeric(12,3)", ColumnType{Kind: KindDecimal, Precision: 12, Scale: 3}, "DECIMAL(12,3)", iceberg.DecimalTypeOf(12, 3)},
		{"numeric(38,0)", ColumnType{Kind: KindDecimal, Precision: 38, Scale: 0}, "DECIMAL(38,0)", iceberg.DecimalTypeOf(38, 0)},
		{"text", ColumnType{Kind: KindString}, "VARCHAR", iceberg.PrimitiveTypes.String},
		{"date", ColumnType{Kind: KindDate}, "DATE", iceberg.PrimitiveTypes.Date},
		{"timestamp", ColumnType{Kind: KindTimestamp}, "TIMESTAMP", iceberg.PrimitiveTypes.Timestamp},
		{"timestamptz", ColumnType{Kind: KindTimestampTZ}, "TIMESTAMPTZ", iceberg.PrimitiveTypes.TimestampTz},
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

// TestCastFromText feeds PostgreSQL's text output (DateStyle ISO, TimeZone
// UTC, extra_float_digits 3: the sidecar's session settings) through the
// cast expressions in DuckDB. want is the stored value as DuckDB prints it.
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
		{"numeric(12,3) pads scale", OIDNumeric, numericTypmod(12, 3), "1.50", "1.500"},
		{"numeric(12,3) negative", OIDNumeric, numericTypmod(12, 3), "-123456789.123", "-123456789.123"},
		{"numeric(38,0) max", OIDNumeric, numericTypmod(38, 0), "99999999999999999999999999999999999999", "99999999999999999999999999999999999999"},
		{"text empty", OIDText, -1, "", ""},
		{"text unicode", OIDText, -1, "ünïcode ✓", "ünïcode ✓"},
		{"text ends in BC", OIDText, -1, "AD or BC", "AD or BC"},
		{"varchar quote", OIDVarchar, -1, "it's", "it's"},
		{"bpchar padded", OIDBpchar, 9, "ab   ", "ab   "},
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
		{"timestamptz", OIDTimestampTZ, -1, "2024-06-05 10:00:00+00", "2024-06-05 10:00:00+00"},
		{"timestamptz fraction", OIDTimestampTZ, -1, "2024-06-05 10:00:00.5+00", "2024-06-05 10:00:00.5+00"},
		{"timestamptz year 10000", OIDTimestampTZ, -1, "10000-01-01 00:00:00+00", "10000-01-01 00:00:00+00"},
		{"timestamptz BC", OIDTimestampTZ, -1, "0044-03-15 10:00:00+00 BC", "0044-03-15 (BC) 10:00:00+00"},
		{"timestamptz infinity", OIDTimestampTZ, -1, "infinity", "infinity"},
		{"timestamptz -infinity", OIDTimestampTZ, -1, "-infinity", "-infinity"},
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

// TestCastFromTextNull checks that NULL stays NULL through every cast.
func TestCastFromTextNull(t *testing.T) {
	db := openDuck(t)
	for _, oid := range []uint32{OIDBool, OIDInt2, OIDInt8, OIDFloat8, OIDText, OIDDate, OIDTimestamp, OIDTimestampTZ} {
		typ := mustResolve(t, oid, -1)
		var v gosql.NullString
		if err := db.QueryRow("SELECT CAST(" + typ.CastFromText("CAST(NULL AS VARCHAR)") + " AS VARCHAR)").Scan(&v); err != nil {
			t.Fatalf("CastFromText(NULL) on %s: %v", typ.DuckDBType(), err)
		}
		if v.Valid {
			t.Errorf("CastFromText(NULL) on %s = %q; want NULL", typ.DuckDBType(), v.String)
		}
	}
}

// TestCastFromTextOutOfRange lists values PostgreSQL can hold but a mirror's
// DuckDB type cannot. They must fail loudly rather than be stored wrong.
// Today such a value stops the replication of its database: the apply loop
// retries the transaction that carries it forever.
func TestCastFromTextOutOfRange(t *testing.T) {
	db := openDuck(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		oid    uint32
		typmod int32
		text   string
	}{
		// DECIMAL has no NaN; numeric(p,s) accepts 'NaN'.
		{"numeric NaN", OIDNumeric, numericTypmod(12, 3), "NaN"},
		// DuckDB's TIMESTAMP ends at 294247-01-10 04:00:54.775806,
		// PostgreSQL's at 294276-12-31 23:59:59.999999.
		{"timestamp max", OIDTimestamp, -1, "294276-12-31 23:59:59.999999"},
		{"timestamptz max", OIDTimestampTZ, -1, "294276-12-31 23:59:59.999999+00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			typ := mustResolve(t, tc.oid, tc.typmod)
			if got, _, err := castText(ctx, db, typ, tc.text); err == nil {
				t.Errorf("CastFromText(%q) on %s = %q; want an error", tc.text, typ.DuckDBType(), got)
			}
		})
	}
}
