package catalog

import (
	"context"
	gosql "database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// An UPDATE sends its rows in batches, each naming the rows it replaces by
// their place in the files its scan read. When a first batch brings NaN
// into a DECIMAL column, ColumnstoreAsText writes every file again: the
// rows keep their positions and the delete files follow, so the later
// batches' row ids, translated by PropRenamedFiles, still name the right
// rows (files large enough for DuckDB to write them with two threads).
func TestColumnstoreRenamedFiles(t *testing.T) {
	ctx := context.Background()
	duck, err := gosql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer duck.Close()
	for _, q := range []string{"SET threads = 2", "SET preserve_insertion_order = false"} {
		if _, err := duck.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	i8, _ := ResolveType(OIDInt8, -1, "bigint")
	n, _ := ResolveType(OIDNumeric, (12<<16|2)+4, "numeric(12,2)")
	base, err := CreateColumnstore(ctx, []Column{{Name: "id", Type: i8, NotNull: true}, {Name: "n", Type: DecimalType(n)}},
		filepath.Join(t.TempDir(), "tbl"))
	if err != nil {
		t.Fatal(err)
	}
	rows := func(from, to int) [][]*string {
		var out [][]*string
		for i := from; i <= to; i++ {
			id, v := fmt.Sprint(i), fmt.Sprintf("%d.%02d", i/100, i%100)
			out = append(out, []*string{&id, &v})
		}
		return out
	}
	names := []string{"id", "n"}
	a, err := AppendColumnstore(ctx, duck, base, names, rows(1, 150000))
	if err != nil {
		t.Fatal(err)
	}
	if a, err = AppendColumnstore(ctx, duck, a.MetadataLocation, names, rows(150001, 200000)); err != nil {
		t.Fatal(err)
	}
	// A DELETE of id 3 first: a delete file the rewrite carries over.
	x := a.MetadataLocation
	at := placesOf(t, duck, x)
	d, err := ModifyColumnstore(ctx, duck, x, x, [][2]int64{at[3]}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The UPDATE's scan reads version x1; batch one sets id 10 to NaN.
	x1 := d.MetadataLocation
	at = placesOf(t, duck, x1)
	s := func(v string) *string { return &v }
	b1, err := ModifyColumnstore(ctx, duck, x1, x1, [][2]int64{at[10], at[150005]}, names,
		[][]*string{{s("10"), s("NaN")}, {s("150005"), s("1.50")}})
	if err != nil {
		t.Fatal(err)
	}
	tbl, _, err := LoadColumnstore(ctx, b1.MetadataLocation)
	if err != nil {
		t.Fatal(err)
	}
	if r := RenamedFiles(tbl.Properties()); len(r) != 2 {
		t.Fatalf("the rewrite recorded %v, want the table's 2 data files", r)
	}
	// Batch two names rows of x1's files.
	b2, err := ModifyColumnstore(ctx, duck, b1.MetadataLocation, x1, [][2]int64{at[20], at[160000]}, names,
		[][]*string{{s("20"), s("7.77")}})
	if err != nil {
		t.Fatal(err)
	}
	live := tableRows(t, duck, b2.MetadataLocation)
	want := map[string]string{"10": "NaN", "20": "7.77", "150005": "1.50", "11": "0.11", "199999": "1999.99"}
	for id, v := range want {
		if live[id] != v {
			t.Errorf("id %s: %q, want %q", id, live[id], v)
		}
	}
	for _, id := range []string{"3", "160000"} {
		if _, ok := live[id]; ok {
			t.Errorf("id %s was deleted and reads %q", id, live[id])
		}
	}
	if len(live) != 199998 {
		t.Errorf("%d rows, want 199998", len(live))
	}
}

// placesOf numbers the rows of the table at loc as a scan does: by id, the
// index of its file among the table's sorted data files and its row number.
func placesOf(t *testing.T, duck *gosql.DB, loc string) map[int][2]int64 {
	t.Helper()
	tbl, cols, err := LoadColumnstore(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	data, _, err := currentFiles(context.Background(), tbl)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range data {
		paths = append(paths, f.FilePath())
	}
	slices.Sort(paths)
	m := newMirror("", "", "", cols, nil)
	out := map[int][2]int64{}
	for i, p := range paths {
		r, err := duck.Query("SELECT " + m.fileCol(0) + ", file_row_number FROM " + m.readFiles([]string{p}))
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			var id, pos int64
			r.Scan(&id, &pos)
			out[int(id)] = [2]int64{int64(i), pos}
		}
		r.Close()
	}
	return out
}

// tableRows is id -> n (as text) of the table's live rows at loc.
func tableRows(t *testing.T, duck *gosql.DB, loc string) map[string]string {
	t.Helper()
	tbl, cols, err := LoadColumnstore(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	data, deletes, err := currentFiles(context.Background(), tbl)
	if err != nil {
		t.Fatal(err)
	}
	var paths, dels []string
	for _, f := range data {
		paths = append(paths, f.FilePath())
	}
	for _, f := range deletes {
		dels = append(dels, f.FilePath())
	}
	m := newMirror("", "", "", cols, nil)
	q := "SELECT CAST(" + m.fileCol(0) + " AS VARCHAR), CAST(" + m.fileCol(1) + " AS VARCHAR) FROM " + m.readFiles(paths) + " p"
	if len(dels) > 0 {
		q += " WHERE NOT EXISTS (SELECT 1 FROM read_parquet(" + stringList(dels) + ") d WHERE d.file_path = p.filename AND d.pos = p.file_row_number)"
	}
	r, err := duck.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := map[string]string{}
	for r.Next() {
		var id string
		var v *string
		r.Scan(&id, &v)
		if _, dup := out[id]; dup {
			t.Fatalf("id %s twice", id)
		}
		if v == nil {
			out[id] = "NULL"
		} else {
			out[id] = strings.TrimSpace(*v)
		}
	}
	return out
}
