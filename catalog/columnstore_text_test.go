package catalog_test

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pgmooncake/mooncake/catalog"
	"github.com/pgmooncake/mooncake/sql"
	"github.com/pgmooncake/mooncake/sql/lake"
)

// decimalRows reads the columnstore table at metadata with the data lake
// reader: per row, id|n|z, each value as the text the table stores (a
// DECIMAL as DuckDB prints it), NULL as "null"; and each column's kind.
func decimalRows(t *testing.T, eng *sql.Engine, metadata string) (string, map[string]catalog.Kind) {
	t.Helper()
	ctx := context.Background()
	spec, err := lake.ParseSpec([]byte(`{"format":"iceberg","paths":[`+strconv.Quote(metadata)+`]}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := lake.Open(ctx, eng, spec)
	if err != nil {
		t.Fatalf("open %s: %v", metadata, err)
	}
	_, cols, err := catalog.LoadColumnstore(ctx, metadata)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]catalog.Kind{}
	for _, c := range cols {
		kinds[c.Name] = c.Type.Kind
	}
	rows, err := eng.DB.QueryContext(ctx, "SELECT concat_ws('|', id, coalesce(CAST(n AS VARCHAR), 'null'), coalesce(CAST(z AS VARCHAR), 'null')) FROM "+
		f.View()+" ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return strings.Join(out, ","), kinds
}

// numeric(p,s) columns of a columnstore table are stored as DECIMAL(p,s)
// until a write brings NaN: then the column (that one only) is stored as
// numeric_out's text, its rows rewritten in the same new version (the
// deletes of the write applied before), and it stays text.
func TestColumnstoreDecimalAsText(t *testing.T) {
	ctx := context.Background()
	eng, err := sql.Open(sql.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.DB.Close()
	num := func(p, s int) catalog.ColumnType {
		ct, err := catalog.ResolveType(catalog.OIDNumeric, int32(p<<16|s)+4, "numeric("+strconv.Itoa(p)+","+strconv.Itoa(s)+")")
		if err != nil {
			t.Fatal(err)
		}
		return catalog.DecimalType(ct)
	}
	i8, _ := catalog.ResolveType(catalog.OIDInt8, -1, "bigint")
	base, err := catalog.CreateColumnstore(ctx, []catalog.Column{
		{Name: "id", Type: i8, NotNull: true}, {Name: "n", Type: num(12, 2)}, {Name: "z", Type: num(5, 5)},
	}, filepath.Join(t.TempDir(), "tbl"))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"id", "n", "z"}
	a, err := catalog.AppendColumnstore(ctx, eng.DB, base, names, [][]*string{
		{s("1"), s("123.45"), s("0.12345")}, {s("2"), nil, nil}, {s("3"), s("-0.01"), s("-0.50000")},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, kinds := decimalRows(t, eng, a.MetadataLocation)
	if kinds["n"] != catalog.KindDecimal || kinds["z"] != catalog.KindDecimal {
		t.Fatalf("kinds %v, want decimals", kinds)
	}
	if want := "1|123.45|.12345,2|null|null,3|-0.01|-.50000"; got != want {
		t.Fatalf("rows %s, want %s", got, want)
	}

	// An UPDATE of id 1 to NaN in n: the row deleted, n rewritten as text,
	// the new row appended; z stays DECIMAL.
	m, err := catalog.ModifyColumnstore(ctx, eng.DB, a.MetadataLocation, a.MetadataLocation, [][2]int64{{0, 0}},
		names, [][]*string{{s("1"), s("NaN"), s("0.00001")}})
	if err != nil {
		t.Fatal(err)
	}
	if m.Rows != 2 {
		t.Fatalf("modify: %+v, want 2 rows (one deleted, one written)", m)
	}
	got, kinds = decimalRows(t, eng, m.MetadataLocation)
	if kinds["n"] != catalog.KindText || kinds["z"] != catalog.KindDecimal {
		t.Fatalf("kinds after NaN in n: %v", kinds)
	}
	if want := "1|NaN|.00001,2|null|null,3|-0.01|-.50000"; got != want {
		t.Fatalf("rows after NaN in n: %s, want %s", got, want)
	}
	// n keeps its place among the Iceberg fields (pyiceberg and Spark list
	// them in that order), under a new field ID.
	tbl, _, err := catalog.LoadColumnstore(ctx, m.MetadataLocation)
	if err != nil {
		t.Fatal(err)
	}
	var fields []string
	for _, f := range tbl.Schema().Fields() {
		fields = append(fields, f.Name+"/"+f.Type.String())
	}
	if got := strings.Join(fields, " "); got != "id/long n/string z/decimal(5, 5)" {
		t.Fatalf("fields after NaN in n: %s", got)
	}
	// NaN in z: its DECIMAL(5,5) values get numeric_out's leading zero.
	a, err = catalog.AppendColumnstore(ctx, eng.DB, m.MetadataLocation, []string{"id", "z"}, [][]*string{{s("4"), s("NaN")}})
	if err != nil {
		t.Fatal(err)
	}
	got, kinds = decimalRows(t, eng, a.MetadataLocation)
	if kinds["n"] != catalog.KindText || kinds["z"] != catalog.KindText {
		t.Fatalf("kinds after NaN in z: %v", kinds)
	}
	if want := "1|NaN|0.00001,2|null|null,3|-0.01|-0.50000,4|null|NaN"; got != want {
		t.Fatalf("rows after NaN in z: %s, want %s", got, want)
	}
	// The versions before are left as they were.
	if got, _ := decimalRows(t, eng, base); got != "" {
		t.Fatalf("the first version reads %q", got)
	}
	// Text stays text: numeric rows without NaN are written as text.
	a, err = catalog.AppendColumnstore(ctx, eng.DB, a.MetadataLocation, names, [][]*string{{s("5"), s("7.00"), s("0.10000")}})
	if err != nil {
		t.Fatal(err)
	}
	if got, kinds = decimalRows(t, eng, a.MetadataLocation); kinds["n"] != catalog.KindText || !strings.HasSuffix(got, ",5|7.00|0.10000") {
		t.Fatalf("after a row without NaN: %s %v", got, kinds)
	}

	// ALTER COLUMN TYPE of a DECIMAL column to numeric without typmod or
	// another scale stores it as text; a wider precision stays DECIMAL.
	b2, err := catalog.CreateColumnstore(ctx, []catalog.Column{
		{Name: "id", Type: i8, NotNull: true, AttNum: 1}, {Name: "n", Type: num(12, 2), AttNum: 2}, {Name: "z", Type: num(5, 5), AttNum: 3},
	}, filepath.Join(t.TempDir(), "tbl2"))
	if err != nil {
		t.Fatal(err)
	}
	a, err = catalog.AppendColumnstore(ctx, eng.DB, b2, names, [][]*string{{s("1"), s("5.25"), s("0.5")}})
	if err != nil {
		t.Fatal(err)
	}
	unbounded, _ := catalog.ResolveType(catalog.OIDNumeric, -1, "numeric")
	alt, err := catalog.AlterColumnstore(ctx, eng.DB, a.MetadataLocation, []catalog.Column{
		{Name: "id", Type: i8, NotNull: true, AttNum: 1}, {Name: "n", Type: catalog.DecimalType(unbounded), AttNum: 2}, {Name: "z", Type: num(7, 5), AttNum: 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, kinds = decimalRows(t, eng, alt)
	if kinds["n"] != catalog.KindText || kinds["z"] != catalog.KindDecimal {
		t.Fatalf("kinds after ALTER: %v", kinds)
	}
	if want := "1|5.25|0.50000"; got != want {
		t.Fatalf("rows after ALTER: %s, want %s", got, want)
	}
}
