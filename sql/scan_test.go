package sql

import (
	"context"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/pgmooncake/mooncake/catalog"
)

func mustResolve(t *testing.T, oid uint32, typmod int32) catalog.ColumnType {
	t.Helper()
	typ, err := catalog.ResolveType(oid, typmod, "")
	if err != nil {
		t.Fatalf("ResolveType(%d, %d): %v", oid, typmod, err)
	}
	return typ
}

// TestPlanScanTypes plans a scan of a mirror with a column of each storage
// kind, read as its own PostgreSQL type, runs it on a table standing in
// for the mirror's view, and checks each column's wire format and the
// Arrow type the encoder receives for it.
func TestPlanScanTypes(t *testing.T) {
	tests := []struct {
		name   string
		stored catalog.ColumnType
		oid    uint32 // the type the foreign table declares
		text   string // a value, as PostgreSQL writes it
		format Format
		arrow  arrow.DataType
	}{
		{"bool", mustResolve(t, catalog.OIDBool, -1), catalog.OIDBool, "t", FormatBinary, arrow.FixedWidthTypes.Boolean},
		{"int2", mustResolve(t, catalog.OIDInt2, -1), catalog.OIDInt2, "-32768", FormatBinary, arrow.PrimitiveTypes.Int16},
		{"int8", mustResolve(t, catalog.OIDInt8, -1), catalog.OIDInt8, "1", FormatBinary, arrow.PrimitiveTypes.Int64},
		{"float4", mustResolve(t, catalog.OIDFloat4, -1), catalog.OIDFloat4, "NaN", FormatBinary, arrow.PrimitiveTypes.Float32},
		{"text", mustResolve(t, catalog.OIDText, -1), catalog.OIDText, "x", FormatBinary, arrow.BinaryTypes.String},
		{"date", mustResolve(t, catalog.OIDDate, -1), catalog.OIDDate, "0044-03-15 BC", FormatBinary, arrow.FixedWidthTypes.Date32},
		{"timestamp", mustResolve(t, catalog.OIDTimestamp, -1), catalog.OIDTimestamp, "294276-12-31 23:59:59.999999", FormatBinary, &arrow.TimestampType{Unit: arrow.Microsecond}},
		{"timestamptz", mustResolve(t, catalog.OIDTimestampTZ, -1), catalog.OIDTimestampTZ, "infinity", FormatBinary, &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
		{"uuid", mustResolve(t, catalog.OIDUUID, -1), catalog.OIDUUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", FormatBinary, arrow.BinaryTypes.String},
		{"bytea", mustResolve(t, catalog.OIDBytea, -1), catalog.OIDBytea, `\x00ff`, FormatBinary, arrow.BinaryTypes.Binary},
		{"time", mustResolve(t, catalog.OIDTime, -1), catalog.OIDTime, "24:00:00", FormatBinary, arrow.FixedWidthTypes.Time64us},
		{"money", mustResolve(t, catalog.OIDMoney, -1), catalog.OIDMoney, "-$1.00", FormatBinary, arrow.PrimitiveTypes.Int64},
		{"numeric", mustResolve(t, catalog.OIDNumeric, -1), catalog.OIDNumeric, "NaN", FormatText, arrow.BinaryTypes.String},
		{"jsonb", mustResolve(t, 3802, -1), 3802, `{"a": 1}`, FormatText, arrow.BinaryTypes.String},
		{"int4[]", mustResolve(t, 1007, -1), 1007, `{1,NULL}`, FormatText, arrow.BinaryTypes.String},
		// Foreign tables declaring another type than the mirror's.
		{"int4 read as int8", mustResolve(t, catalog.OIDInt4, -1), catalog.OIDInt8, "7", FormatBinary, arrow.PrimitiveTypes.Int64},
		{"numeric read as text", mustResolve(t, catalog.OIDNumeric, -1), catalog.OIDText, "1.50", FormatBinary, arrow.BinaryTypes.String},
		{"bytea read as text", mustResolve(t, catalog.OIDBytea, -1), catalog.OIDText, `\x00ff`, FormatText, arrow.BinaryTypes.String},
		{"money read as numeric", mustResolve(t, catalog.OIDMoney, -1), catalog.OIDNumeric, "-$1.00", FormatText, arrow.BinaryTypes.String},
		{"uuid read as text", mustResolve(t, catalog.OIDUUID, -1), catalog.OIDText, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", FormatText, arrow.BinaryTypes.String},
		{"timestamp read as text", mustResolve(t, catalog.OIDTimestamp, -1), catalog.OIDText, "0044-03-15 10:00:00 BC", FormatText, arrow.BinaryTypes.String},
		{"decimal", catalog.ColumnType{OID: catalog.OIDNumeric, Typmod: 12<<16 | 3 + 4, Kind: catalog.KindDecimal, Precision: 12, Scale: 3}, catalog.OIDNumeric, "1.5", FormatText, arrow.BinaryTypes.String},
	}

	m := &catalog.Mirror{Database: "scantest", Namespace: "public", Name: "t"}
	var cols []Column
	var defs, casts []string
	for i, tc := range tests {
		name := "c" + tc.name
		m.Columns = append(m.Columns, catalog.Column{Name: name, Type: tc.stored})
		cols = append(cols, Column{Name: name, TypeOID: tc.oid, Typmod: tc.stored.Typmod})
		defs = append(defs, catalog.QuoteIdent(name)+" "+tc.stored.DuckDBType())
		casts = append(casts, tc.stored.CastFromText(catalog.QuoteLiteral(tests[i].text)))
	}
	scan, err := PlanScan(m, cols, false)
	if err != nil {
		t.Fatalf("PlanScan: %v", err)
	}

	e := openEngine(t)
	ctx := context.Background()
	for _, s := range []string{
		"ATTACH ':memory:' AS pg_scantest",
		"CREATE SCHEMA pg_scantest.public",
		"CREATE TABLE " + m.View() + " (" + strings.Join(defs, ", ") + ")",
		"INSERT INTO " + m.View() + " VALUES (" + strings.Join(casts, ", ") + ")",
	} {
		if _, err := e.DB.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	rdr, release, err := e.Query(ctx, scan.SQL)
	if err != nil {
		t.Fatalf("Query(%s): %v", scan.SQL, err)
	}
	defer release()
	if !rdr.Next() {
		t.Fatalf("Query(%s) returned no rows: %v", scan.SQL, rdr.Err())
	}
	rec := rdr.RecordBatch()
	for i, tc := range tests {
		if scan.Formats[i] != tc.format {
			t.Errorf("%s: format %d; want %d", tc.name, scan.Formats[i], tc.format)
		}
		if scan.TypeOID[i] != tc.oid {
			t.Errorf("%s: type OID %d; want %d", tc.name, scan.TypeOID[i], tc.oid)
		}
		if got := rec.Column(i).DataType(); !arrow.TypeEqual(got, tc.arrow) {
			t.Errorf("%s: arrow type %s; want %s", tc.name, got, tc.arrow)
		}
	}
	// Text columns carry PostgreSQL's text of the value.
	for i, tc := range tests {
		if tc.format != FormatText {
			continue
		}
		got := rec.Column(i).ValueStr(0)
		want := map[string]string{"bytea read as text": `\x00ff`, "money read as numeric": "-1.00",
			"decimal": "1.500"}[tc.name]
		if want == "" {
			want = tc.text
		}
		if got != want {
			t.Errorf("%s: text %q; want %q", tc.name, got, want)
		}
	}

	// For Flight, the DECIMAL column stays a DECIMAL; nothing else changes.
	arrowScan, err := PlanScan(m, cols, true)
	if err != nil {
		t.Fatalf("PlanScan for Flight: %v", err)
	}
	rdr2, release2, err := e.Query(ctx, arrowScan.SQL)
	if err != nil {
		t.Fatalf("Query(%s): %v", arrowScan.SQL, err)
	}
	defer release2()
	if !rdr2.Next() {
		t.Fatalf("Query(%s) returned no rows: %v", arrowScan.SQL, rdr2.Err())
	}
	rec2 := rdr2.RecordBatch()
	for i, tc := range tests {
		want := rec.Column(i).DataType()
		if tc.name == "decimal" {
			want = &arrow.Decimal128Type{Precision: 12, Scale: 3}
		}
		if got := rec2.Column(i).DataType(); !arrow.TypeEqual(got, want) {
			t.Errorf("%s for Flight: arrow type %s; want %s", tc.name, got, want)
		}
		if d, ok := rec2.Column(i).(*array.Decimal128); tc.name == "decimal" && (!ok || d.Value(0).LowBits() != 1500 || d.Value(0).HighBits() != 0) {
			t.Errorf("decimal for Flight: %s; want 1.500", rec2.Column(i).ValueStr(0))
		}
	}
}
