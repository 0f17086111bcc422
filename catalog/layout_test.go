package catalog

import (
	gosql "database/sql"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"
)

// The view reads data files by name, in groups of one layout, and gets
// the same rows as the read by field ID: across a rename, an added
// column and a promoted type; a file without field IDs falls back.
func TestScanFilesByLayout(t *testing.T) {
	db, err := gosql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dir := t.TempDir()
	write := func(name, query, ids string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		q := "COPY (" + query + ") TO " + QuoteLiteral(path) + " (FORMAT parquet"
		if ids != "" {
			q += ", FIELD_IDS " + ids
		}
		if _, err := db.Exec(q + ")"); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return path
	}
	// Written when the columns were (id int, name text); then name was
	// renamed to label, id promoted to bigint and score added.
	old1 := write("old1.parquet", "SELECT i::INTEGER AS id, 'n' || i AS name FROM range(3) t(i)", "{id: 1, name: 2}")
	old2 := write("old2.parquet", "SELECT (i + 3)::INTEGER AS id, 'n' || (i + 3) AS name FROM range(2) t(i)", "{id: 1, name: 2}")
	cur := write("new.parquet", "SELECT (i + 5)::BIGINT AS id, 'l' || i AS label, i * 0.5 AS score FROM range(2) t(i)", "{id: 1, label: 2, score: 3}")
	col := func(name string, oid uint32, id int) Column { return testColumn(t, name, oid, id) }
	m := &Mirror{Columns: []Column{col("id", 20, 1), col("label", 25, 2), col("score", 701, 3)}}

	rows := func(from string) string {
		t.Helper()
		r, err := db.Query("SELECT f1::VARCHAR, coalesce(f2, 'NULL'), coalesce(f3::VARCHAR, 'NULL') FROM " + from + " p ORDER BY f1")
		if err != nil {
			t.Fatalf("%s: %v", from, err)
		}
		defer r.Close()
		var out []string
		for r.Next() {
			var a, b, c string
			if err := r.Scan(&a, &b, &c); err != nil {
				t.Fatal(err)
			}
			out = append(out, a+"|"+b+"|"+c)
		}
		return strings.Join(out, " ")
	}
	files := []string{old1, cur, old2}
	byName := m.scanFiles(files, false)
	if strings.Contains(byName, "schema = MAP") || strings.Count(byName, "read_parquet(") != 2 {
		t.Fatalf("three files of two layouts are not read by name in two groups: %s", byName)
	}
	want := "0|n0|NULL 1|n1|NULL 2|n2|NULL 3|n3|NULL 4|n4|NULL 5|l0|0.0 6|l1|0.5"
	if got := rows(byName); got != want {
		t.Errorf("by name: %s\nwant %s", got, want)
	}
	if got := rows(m.readFiles(files)); got != want {
		t.Errorf("by field ID: %s\nwant %s", got, want)
	}
	// With positions, for delete files.
	if _, err := db.Exec("SELECT filename, file_row_number, f1 FROM " + m.scanFiles(files, true) + " p"); err != nil {
		t.Errorf("positions: %v", err)
	}
	// A file without field IDs: everything by field ID (as before).
	bare := write("bare.parquet", "SELECT 9::BIGINT AS id", "")
	if got := m.scanFiles([]string{cur, bare}, false); !strings.Contains(got, "schema = MAP") {
		t.Errorf("a file without field IDs is read by name: %s", got)
	}
	// More layouts than maxLayouts: by field ID.
	var many []string
	for i := 0; i <= maxLayouts; i++ {
		many = append(many, write("l"+string(rune('a'+i))+".parquet",
			"SELECT 1::BIGINT AS id, 'x' AS c"+string(rune('a'+i)), "{id: 1, c"+string(rune('a'+i))+": 2}"))
	}
	if got := m.scanFiles(many, false); !strings.Contains(got, "schema = MAP") {
		t.Errorf("%d layouts are read by name: %s", len(many), got)
	}
	// The cache keeps only the files of the last view.
	if n := len(m.layouts.files); n != len(many) {
		t.Errorf("%d layouts cached; want %d", n, len(many))
	}
}

// A mirror's columns may be called filename or file_row_number (in any
// case): reads with positions still give each row's file and position in
// it, by name and by field ID, never the column's values.
func TestFilePositionsBesideReservedNames(t *testing.T) {
	db, err := gosql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dir := t.TempDir()
	var files []string
	for i, q := range []string{
		"SELECT i::BIGINT AS id, 'user' AS filename, 42::BIGINT AS File_Row_Number FROM range(3) t(i)",
		"SELECT (i + 3)::BIGINT AS id, 'user' AS filename, 43::BIGINT AS File_Row_Number FROM range(2) t(i)",
	} {
		path := filepath.Join(dir, "f"+string(rune('0'+i))+".parquet")
		if _, err := db.Exec("COPY (" + q + ") TO " + QuoteLiteral(path) + " (FORMAT parquet, FIELD_IDS {id: 1, filename: 2, File_Row_Number: 3})"); err != nil {
			t.Fatal(err)
		}
		files = append(files, path)
	}
	col := func(name string, oid uint32, id int) Column { return testColumn(t, name, oid, id) }
	m := &Mirror{Columns: []Column{col("id", 20, 1), col("filename", 25, 2), col("File_Row_Number", 20, 3)}}
	want := files[0] + " 0 0|" + files[0] + " 1 1|" + files[0] + " 2 2|" + files[1] + " 0 3|" + files[1] + " 1 4"
	for name, from := range map[string]string{"scanFiles": m.scanFiles(files, true), "readFiles": m.readFiles(files)} {
		r, err := db.Query("SELECT p.filename, p.file_row_number, p.f1, p.f2, p.f3 FROM " + from + " p ORDER BY p.f1")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var got []string
		for r.Next() {
			var file, user string
			var pos, id, user2 int64
			if err := r.Scan(&file, &pos, &id, &user, &user2); err != nil {
				t.Fatal(err)
			}
			if user != "user" || user2 != 42 && user2 != 43 {
				t.Errorf("%s: the user's columns read %q, %d", name, user, user2)
			}
			got = append(got, file+" "+strconv.FormatInt(pos, 10)+" "+strconv.FormatInt(id, 10))
		}
		r.Close()
		if g := strings.Join(got, "|"); g != want {
			t.Errorf("%s: positions %s\nwant %s", name, g, want)
		}
	}
}

// testColumn is a column of the type oid (no typmod) and field ID id.
func testColumn(t *testing.T, name string, oid uint32, id int) Column {
	t.Helper()
	typ, err := ResolveType(oid, -1, "")
	if err != nil {
		t.Fatal(err)
	}
	return Column{Name: name, Type: typ, ID: id}
}
