package delta

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestReadSQLPartitionTypes reads Parquet files DuckDB writes, as a
// snapshot with partition columns of every type whose text must be
// converted, a deletion vector and a column missing from one file.
func TestReadSQLPartitionTypes(t *testing.T) {
	db := openDuckDB(t)
	dir := t.TempDir()
	f1, f2 := filepath.Join(dir, "a 1.parquet"), filepath.Join(dir, "b'2.parquet")
	for _, q := range []string{
		"COPY (SELECT range AS id, 'x' || range AS v FROM range(5)) TO " + quoteLiteral(f1),
		"COPY (SELECT range AS id FROM range(10, 12)) TO " + quoteLiteral(f2),
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	str := func(s string) *string { return &s }
	s := &Snapshot{
		Schema: []Field{
			{Name: "id", Type: "long"}, {Name: "v", Type: "string"},
			{Name: "ts", Type: "timestamp"}, {Name: "ntz", Type: "timestamp_ntz"}, {Name: "d", Type: "date"},
			{Name: "dec", Type: "decimal(5,2)"}, {Name: "b", Type: "boolean"}, {Name: "bin", Type: "binary"},
			{Name: "f", Type: "float"}, {Name: "s", Type: "string"},
		},
		PartitionColumns: []string{"ts", "ntz", "d", "dec", "b", "bin", "f", "s"},
		ColumnMapping:    "none",
		Files: []File{
			{Path: f1, PartitionValues: map[string]*string{
				"ts": str("2021-01-02 03:04:05.123456"), "ntz": str("2021-01-02 03:04:05"), "d": str("2024-02-29"),
				"dec": str("-1.50"), "b": str("true"), "bin": str("ab"), "f": str("NaN"), "s": str("it's"),
			}, DeletionVector: &DeletionVector{StorageType: "i", Cardinality: 2}},
			{Path: f2, PartitionValues: map[string]*string{
				"ts": str("2021-01-02T03:04:05.5+02:00"), "ntz": nil, "d": str(""), "dec": nil, "b": str("false"), "bin": nil, "f": str("2.5"), "s": str(""),
			}},
		},
	}
	if _, err := s.ReadSQL(nil); err == nil || !strings.Contains(err.Error(), "deletion vector") {
		t.Errorf("a file's deletion vector without positions: %v", err)
	}
	q, err := s.ReadSQL(map[string][]uint64{f1: {1, 3}})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	defer rows.Close()
	types, _ := rows.ColumnTypes()
	var got []string
	for _, ct := range types {
		got = append(got, ct.DatabaseTypeName())
	}
	if want := []string{"BIGINT", "VARCHAR", "TIMESTAMPTZ", "TIMESTAMP", "DATE", "DECIMAL(5,2)", "BOOLEAN", "BLOB", "FLOAT", "VARCHAR"}; !slices.Equal(got, want) {
		t.Errorf("types %q, want %q", got, want)
	}
	var out [][]string
	for rows.Next() {
		vals := make([]any, len(types))
		ptrs := make([]any, len(types))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			row[i] = canon(v, types[i].DatabaseTypeName())
		}
		out = append(out, row)
	}
	sortRows(out)
	first := []string{"2021-01-02 03:04:05.123456", "2021-01-02 03:04:05.000000", "2024-02-29", "-1.50", "true", `\x6162`, "NaN", "it's"}
	second := []string{"2021-01-02 01:04:05.500000", "NULL", "NULL", "NULL", "false", "NULL", "2.5", "NULL"}
	want := [][]string{
		append([]string{"0", "x0"}, first...),
		append([]string{"10", "NULL"}, second...),
		append([]string{"11", "NULL"}, second...),
		append([]string{"2", "x2"}, first...),
		append([]string{"4", "x4"}, first...),
	}
	compareRows(t, "rows", out, want)
}
