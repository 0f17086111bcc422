package catalog

import (
	"context"
	gosql "database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// loadTestDuck is an in-memory DuckDB for the load tests, closed at the end.
func loadTestDuck(t *testing.T) *gosql.DB {
	t.Helper()
	duck, err := gosql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { duck.Close() })
	return duck
}

// loadTestType is the column type of a PostgreSQL type and typmod.
func loadTestType(oid uint32, typmod int32) ColumnType {
	ct, _ := ResolveType(oid, typmod, "")
	return ct
}

// loadedRows reads the rows of the version loc of a columnstore table
// from its data files, as expr of each (a VARCHAR), in order, and
// checks it has files data files (when files > 0).
func loadedRows(t *testing.T, duck *gosql.DB, loc, expr, where string, files int) []string {
	t.Helper()
	ctx := context.Background()
	tbl, _, err := LoadColumnstore(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	data, _, err := currentFiles(ctx, tbl)
	if err != nil || (files > 0 && len(data) != files) {
		t.Fatal(err, len(data))
	}
	var paths []string
	for _, f := range data {
		paths = append(paths, QuoteLiteral(localPath(f.FilePath())))
	}
	if where != "" {
		where = " WHERE " + where
	}
	rows, err := duck.QueryContext(ctx, "SET TimeZone = 'UTC'; SELECT "+expr+" FROM read_parquet(["+strings.Join(paths, ", ")+"])"+where+" ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	return got
}

// TestLoadQuery stores a query's rows in a columnstore table when its
// columns are of the stored types (smallint widened), and gives up for
// other types and for values the row path refuses or changes.
func TestLoadQuery(t *testing.T) {
	ctx := context.Background()
	duck := loadTestDuck(t)
	typ := loadTestType
	num := DecimalType(loadTestType(OIDNumeric, (12<<16|2)+4))
	cols := []Column{
		{Name: "id", Type: typ(OIDInt8, -1), NotNull: true},
		{Name: "s", Type: typ(OIDInt2, -1)},
		{Name: "t", Type: typ(OIDText, -1)},
		{Name: "v", Type: typ(OIDVarchar, 3+4)},
		{Name: "d", Type: typ(OIDDate, -1)},
		{Name: "tz", Type: typ(OIDTimestampTZ, -1)},
		{Name: "n", Type: num},
		{Name: "unset", Type: typ(OIDText, -1)},
	}
	base, err := CreateColumnstore(ctx, cols, filepath.Join(t.TempDir(), "tbl"))
	if err != nil {
		t.Fatal(err)
	}
	fill := []QueryColumn{{"id", 0}, {"s", 1}, {"t", 2}, {"v", 3}, {"d", 4}, {"tz", 5}, {"n", 6}, {"unset", -1}}
	const q = `SELECT * FROM (VALUES (1::BIGINT, 7::SMALLINT, 'é', 'abc', DATE '2024-02-29', TIMESTAMPTZ '2024-01-01 10:00:00+02', 12.5::DECIMAL(12,2)),
  (2, NULL, NULL, NULL, 'infinity'::DATE, NULL, NULL))`
	res, err := LoadQuery(ctx, duck, base, q, "", fill)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 2 || res.DataFiles != 1 {
		t.Fatalf("loaded %+v", res)
	}
	got := loadedRows(t, duck, res.MetadataLocation, "concat_ws('|', id, typeof(s), coalesce(s::VARCHAR, 'null'), coalesce(t, 'null'), coalesce(v, 'null'), d, "+
		"coalesce(epoch(tz)::VARCHAR, 'null'), coalesce(n::VARCHAR, 'null'), coalesce(unset, 'null'))", "", 1)
	if want := "1|INTEGER|7|é|abc|2024-02-29|1704096000.0|12.50|null,2|INTEGER|null|null|null|infinity|null|null|null"; strings.Join(got, ",") != want {
		t.Fatalf("rows %s, want %s", strings.Join(got, ","), want)
	}
	for name, q := range map[string]string{
		"a type":           `SELECT 1::BIGINT, 1::SMALLINT, 2, 'x', DATE '2024-01-01', NULL::TIMESTAMPTZ, NULL::DECIMAL(12,2)`,
		"smallint range":   `SELECT 1::BIGINT, 40000::INTEGER, 'x', 'x', DATE '2024-01-01', NULL::TIMESTAMPTZ, NULL::DECIMAL(12,2)`,
		"a decimal's type": `SELECT 1::BIGINT, 1::SMALLINT, 'x', 'x', DATE '2024-01-01', NULL::TIMESTAMPTZ, 1::DECIMAL(18,4)`,
		"varchar length":   `SELECT 1::BIGINT, 1::SMALLINT, 'x', 'abcd', DATE '2024-01-01', NULL::TIMESTAMPTZ, NULL::DECIMAL(12,2)`,
		"NUL":              `SELECT 1::BIGINT, 1::SMALLINT, 'a' || chr(0), 'x', DATE '2024-01-01', NULL::TIMESTAMPTZ, NULL::DECIMAL(12,2)`,
		"BC date":          `SELECT 1::BIGINT, 1::SMALLINT, 'x', 'x', DATE '0044-03-15 (BC)', NULL::TIMESTAMPTZ, NULL::DECIMAL(12,2)`,
		"not null":         `SELECT NULL::BIGINT, 1::SMALLINT, 'x', 'x', DATE '2024-01-01', NULL::TIMESTAMPTZ, NULL::DECIMAL(12,2)`,
		"a failing query":  `SELECT CAST('x' || range AS BIGINT), 1::SMALLINT, 'x', 'x', DATE '2024-01-01', NULL::TIMESTAMPTZ, NULL::DECIMAL(12,2) FROM range(1)`,
	} {
		_, err := LoadQuery(ctx, duck, res.MetadataLocation, q, "", fill)
		var fb *CSVFallback
		if !errors.As(err, &fb) {
			t.Errorf("%s: %v, want a fallback", name, err)
		} else {
			t.Logf("%s: %s", name, fb.Reason)
		}
	}
}
