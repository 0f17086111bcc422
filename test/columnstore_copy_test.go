package test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgmooncake/mooncake/catalog"
)

// COPY columnstore_table FROM 'file' (in CSV or text format) is read by the
// sidecar's DuckDB when the file and its values are in forms both readers
// read alike, and by PostgreSQL's COPY otherwise. Either way the rows are those
// a heap table gets from the same file, errors carry COPY's SQLSTATEs,
// and the privileges are COPY's.
func TestColumnstoreCopyFile(t *testing.T) {
	c, conn := startMooncake(t)
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "csv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777)
	file := func(name string) string { return filepath.Join(dir, name) }
	lit := catalog.QuoteLiteral

	// a connection that reports which reader read each COPY
	cc, lastReader := debugConn(t, c, "was read by DuckDB", "is read by PostgreSQL")
	var why string // the last reader's DEBUG1 message
	reader := func() string {
		mark, msg := lastReader()
		switch mark {
		case "was read by DuckDB":
			why = msg
			return "duckdb"
		case "is read by PostgreSQL":
			why = msg
			return "postgres"
		}
		return ""
	}

	const cols = `id bigint NOT NULL, i int, s smallint, b boolean, f float8, n numeric(12,2), t text, v varchar(8),
  u uuid, d date, ts timestamp, tz timestamptz`
	exec(t, conn, "CREATE TABLE src ("+cols+")")
	exec(t, conn, "CREATE TABLE h ("+cols+")")
	exec(t, conn, "CREATE TABLE cs ("+cols+") USING columnstore")
	// values of every form: NULLs, empty strings, quotes, delimiters and
	// newlines in text, NaN and infinities, the extremes of each type
	exec(t, conn, `INSERT INTO src SELECT g,
  CASE WHEN g % 7 = 0 THEN NULL WHEN g % 5 = 0 THEN -2147483647 ELSE (g * 7919) % 100000 - 50000 END,
  CASE WHEN g % 11 = 0 THEN NULL WHEN g % 13 = 0 THEN -32767 ELSE g % 3000 END,
  CASE WHEN g % 17 = 0 THEN NULL ELSE g % 2 = 0 END,
  CASE g % 9 WHEN 0 THEN NULL WHEN 1 THEN 'NaN' WHEN 2 THEN 'Infinity' WHEN 3 THEN '-Infinity' WHEN 4 THEN -0.0
    WHEN 5 THEN 1.0 / g ELSE g * 1.0e-40 END,
  CASE WHEN g % 19 = 0 THEN NULL WHEN g % 23 = 0 THEN -9999999999.99 ELSE (g * 104729 % 1000000) / 100.0 END,
  CASE g % 8 WHEN 0 THEN NULL WHEN 1 THEN '' WHEN 2 THEN 'a,b' WHEN 3 THEN 'say "hi"' WHEN 4 THEN 'two' || chr(10) || 'lines'
    WHEN 5 THEN ' padded ' WHEN 6 THEN 'é中🙂' ELSE 'N' END,
  CASE WHEN g % 29 = 0 THEN NULL ELSE left(md5(g::text), g % 9) END,
  CASE WHEN g % 31 = 0 THEN NULL ELSE md5(g::text)::uuid END,
  CASE WHEN g % 37 = 0 THEN NULL ELSE date '1900-01-01' + (g * 977) % 73000 END,
  CASE WHEN g % 41 = 0 THEN NULL ELSE timestamp '1950-01-01' + (g * 7727) * interval '1 second' + (g % 1000) * interval '1 microsecond' END,
  CASE WHEN g % 43 = 0 THEN NULL ELSE timestamptz '1970-03-10 00:00:00+00' + (g * 104723) * interval '1 minute' END
FROM generate_series(1, 20000) g`)
	exec(t, conn, "SET TimeZone = 'America/New_York'") // offsets -05 and -04 in the file
	exec(t, conn, "COPY src TO "+lit(file("plain.csv"))+" (FORMAT csv)")
	exec(t, conn, "COPY src TO "+lit(file("options.csv"))+` (FORMAT csv, DELIMITER '|', NULL '\N', HEADER, QUOTE '''')`)
	exec(t, conn, "COPY src (id, t, tz) TO "+lit(file("some.csv"))+" (FORMAT csv)")
	// text format: t's newlines become escapes (PostgreSQL reads them),
	// the other columns have none but the null string
	exec(t, conn, "COPY src TO "+lit(file("plain.txt")))
	exec(t, conn, "COPY src (id, i, s, b, f, n, v, u, d, ts, tz) TO "+lit(file("noescape.txt"))+" (DELIMITER '|')")
	exec(t, conn, "RESET TimeZone")
	for _, name := range []string{"plain.csv", "options.csv", "some.csv", "plain.txt", "noescape.txt"} {
		os.Chmod(file(name), 0o644)
	}
	// the same rows with line ends PostgreSQL reads and DuckDB is not given
	plain, err := os.ReadFile(file("plain.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file("crlf.csv"), []byte(strings.ReplaceAll(string(plain), "\n", "\r\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	// values in forms only PostgreSQL reads
	if err := os.WriteFile(file("forms.csv"), []byte("+1, 2 , 7,yes,1e300,.5,x,y,A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11,2024-1-2,2024-01-02T03:04:05,2024-01-02 03:04:05\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	same := func(when string) {
		t.Helper()
		for _, q := range []string{
			"SELECT count(*) FROM (SELECT * FROM h EXCEPT ALL SELECT * FROM cs) d",
			"SELECT count(*) FROM (SELECT * FROM cs EXCEPT ALL SELECT * FROM h) d",
		} {
			if n := queryInt(t, conn, q); n != 0 {
				t.Fatalf("%s: %d rows differ (%s)", when, n, q)
			}
		}
	}
	copyBoth := func(what, wantReader string) {
		t.Helper()
		exec(t, cc, strings.ReplaceAll(what, "TBL", "h"))
		reader()
		exec(t, cc, strings.ReplaceAll(what, "TBL", "cs"))
		if r := reader(); r != wantReader {
			t.Fatalf("%s was read by %q, want %q (%s)", what, r, wantReader, why)
		}
		same(what)
	}
	copyBoth("COPY TBL FROM "+lit(file("plain.csv"))+" (FORMAT csv)", "duckdb")
	if n := queryInt(t, conn, "SELECT count(*) FROM cs"); n != 20000 {
		t.Fatalf("%d rows after the first COPY", n)
	}
	copyBoth("COPY TBL FROM "+lit(file("options.csv"))+` (FORMAT csv, DELIMITER '|', NULL '\N', HEADER true, QUOTE '''')`, "duckdb")
	copyBoth("COPY TBL (id, t, tz) FROM "+lit(file("some.csv"))+" (FORMAT csv)", "duckdb")
	copyBoth("COPY TBL FROM "+lit(file("plain.txt")), "postgres")
	copyBoth("COPY TBL (id, i, s, b, f, n, v, u, d, ts, tz) FROM "+lit(file("noescape.txt"))+" (DELIMITER '|')", "duckdb")
	copyBoth("COPY TBL FROM "+lit(file("crlf.csv"))+" (FORMAT csv)", "postgres")
	copyBoth("COPY TBL FROM "+lit(file("forms.csv"))+" (FORMAT csv)", "postgres")
	copyBoth("COPY TBL FROM "+lit(file("plain.csv"))+" (FORMAT csv, FORCE_NULL (t))", "")
	if n := queryInt(t, conn, "SELECT count(*) FROM cs"); n != 140001 {
		t.Fatalf("%d rows after the COPYs", n)
	}
	// a pushed-down aggregate over the loaded files, against the heap
	agg := "SELECT concat_ws('|', count(*), sum(i), sum(n), max(t), min(tz), max(ts), count(DISTINCT u), sum(s), count(b)) FROM "
	if a, b := queryString(t, conn, agg+"h"), queryString(t, conn, agg+"cs"); a != b {
		t.Fatalf("aggregates: heap %s, columnstore %s", a, b)
	}

	// COPY FROM STDIN (psql's \copy, a driver's CopyFrom): the data is
	// spooled, then read by DuckDB or by PostgreSQL's COPY
	stdinBoth := func(what, data, wantReader string) {
		t.Helper()
		for _, tbl := range []string{"h", "cs"} {
			reader()
			if _, err := cc.PgConn().CopyFrom(ctx, strings.NewReader(data), strings.ReplaceAll(what, "TBL", tbl)); err != nil {
				t.Fatalf("%s: %v", strings.ReplaceAll(what, "TBL", tbl), err)
			}
		}
		if r := reader(); r != wantReader {
			t.Fatalf("%s was read by %q, want %q (%s)", what, r, wantReader, why)
		}
		same(what)
	}
	stdinBoth("COPY TBL FROM STDIN (FORMAT csv)", string(plain), "duckdb")
	textData, err := os.ReadFile(file("plain.txt"))
	if err != nil {
		t.Fatal(err)
	}
	stdinBoth("COPY TBL FROM STDIN", string(textData), "postgres") // escapes
	stdinBoth("COPY TBL FROM STDIN (FORMAT csv)", strings.ReplaceAll(string(plain), "\n", "\r\n"), "postgres")
	// a client failing the COPY midway: nothing is loaded, the session goes on
	before := queryInt(t, conn, "SELECT count(*) FROM cs")
	_, err = cc.PgConn().CopyFrom(ctx, io.MultiReader(strings.NewReader(string(plain[:len(plain)/2])), failingReader{}), "COPY cs FROM STDIN (FORMAT csv)")
	if err == nil {
		t.Fatal("a failed COPY FROM STDIN succeeded")
	}
	if n := queryInt(t, cc, "SELECT count(*) FROM cs"); n != before {
		t.Fatalf("after a failed COPY FROM STDIN %d rows, want %d", n, before)
	}
	if left, _ := filepath.Glob(filepath.Join(c.DataDir(), "pg_mooncake", "tmp", "copy-*")); len(left) > 0 {
		t.Fatalf("spools left: %v", left)
	}

	// a relative path names a file in the data directory
	rel := "mooncake-copy-test.csv"
	if err := os.WriteFile(filepath.Join(c.DataDir(), rel), []byte("1,2\n3,\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(filepath.Join(c.DataDir(), rel))
	copyBoth("COPY TBL (id, i) FROM "+lit(rel)+" (FORMAT csv)", "duckdb")

	// quoting PostgreSQL and DuckDB read differently, a byte order mark:
	// the same rows (or error) as the heap's
	exec(t, conn, "CREATE TABLE eh (a text, b text)")
	exec(t, conn, "CREATE TABLE ec (a text, b text) USING columnstore")
	for name, content := range map[string]string{
		"bom":           "\xef\xbb\xbfx,1\n",
		"mid quote":     "x,a\"b\n",
		"quoted middle": "x,a\"b,c\"\n",
		"space before":  "x, \"a\"\n",
		"space after":   "x,\"a\" \n",
		"doubled":       "x,\"a\"\"b\"\n",
		"plain":         "x,abc\n",
	} {
		p := file("edge_" + strings.ReplaceAll(name, " ", "_") + ".csv")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		var got [2]string
		for k, tbl := range []string{"eh", "ec"} {
			exec(t, conn, "TRUNCATE "+tbl)
			if _, err := conn.Exec(ctx, "COPY "+tbl+" FROM "+lit(p)+" (FORMAT csv)"); err != nil {
				got[k] = "error " + sqlState(err)
				continue
			}
			got[k] = queryString(t, conn, "SELECT string_agg(a || '|' || b || '|' || length(a), ',') FROM "+tbl)
		}
		if got[0] != got[1] {
			t.Errorf("%s: heap %q, columnstore %q", name, got[0], got[1])
		}
	}

	// bad input: COPY's errors, from the fallback
	for name, content := range map[string]string{
		"bad int":       "1,abc\n",
		"extra column":  "1,2,3\n",
		"missing":       "1\n",
		"null id":       ",2\n",
		"int4 overflow": "1,2147483648\n",
	} {
		p := file(strings.ReplaceAll(name, " ", "_") + ".csv")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		var codes [2]string
		for k, tbl := range []string{"h", "cs"} {
			_, err := conn.Exec(ctx, "COPY "+tbl+" (id, i) FROM "+lit(p)+" (FORMAT csv)")
			codes[k] = sqlState(err)
		}
		if codes[0] == "" || codes[0] != codes[1] {
			t.Errorf("%s: heap %q, columnstore %q", name, codes[0], codes[1])
		}
	}
	same("after the errors")

	// transactions: a rollback and a savepoint
	n0 := queryInt(t, conn, "SELECT count(*) FROM cs")
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	exec(t, tx.Conn(), "COPY cs FROM "+lit(file("plain.csv"))+" (FORMAT csv)")
	if n := queryInt(t, tx.Conn(), "SELECT count(*) FROM cs"); n != n0+20000 {
		t.Fatalf("the transaction sees %d rows, want %d", n, n0+20000)
	}
	tx.Rollback(ctx)
	if n := queryInt(t, conn, "SELECT count(*) FROM cs"); n != n0 {
		t.Fatalf("after the rollback %d rows, want %d", n, n0)
	}
	exec(t, conn, "BEGIN")
	exec(t, conn, "COPY cs FROM "+lit(file("plain.csv"))+" (FORMAT csv)")
	exec(t, conn, "SAVEPOINT a")
	exec(t, conn, "COPY cs FROM "+lit(file("plain.csv"))+" (FORMAT csv)")
	exec(t, conn, "ROLLBACK TO SAVEPOINT a")
	exec(t, conn, "COMMIT")
	if n := queryInt(t, conn, "SELECT count(*) FROM cs"); n != n0+20000 {
		t.Fatalf("after the savepoint %d rows, want %d", n, n0+20000)
	}

	// privileges: reading server files and INSERT, as COPY wants them
	exec(t, conn, "CREATE ROLE loader LOGIN")
	exec(t, conn, "GRANT INSERT, SELECT ON cs TO loader")
	exec(t, conn, "CREATE ROLE reader LOGIN IN ROLE pg_read_server_files")
	exec(t, conn, "GRANT SELECT ON cs TO reader")
	for _, role := range []string{"loader", "reader"} {
		exec(t, conn, "SET ROLE "+role)
		_, err := conn.Exec(ctx, "COPY cs FROM "+lit(file("plain.csv"))+" (FORMAT csv)")
		exec(t, conn, "RESET ROLE")
		if sqlState(err) != "42501" {
			t.Errorf("COPY as %s: %v, want 42501", role, err)
		}
	}
	// STDIN takes INSERT only, and is read by DuckDB
	some, err := os.ReadFile(file("some.csv"))
	if err != nil {
		t.Fatal(err)
	}
	exec(t, cc, "SET ROLE loader")
	reader()
	if _, err := cc.PgConn().CopyFrom(ctx, strings.NewReader(string(some)), "COPY cs (id, t, tz) FROM STDIN (FORMAT csv)"); err != nil {
		t.Fatalf("COPY FROM STDIN as loader: %v", err)
	}
	if r := reader(); r != "duckdb" {
		t.Errorf("COPY FROM STDIN as loader was read by %q (%s)", r, why)
	}
	exec(t, cc, "RESET ROLE")
	exec(t, conn, "GRANT pg_read_server_files TO loader")
	exec(t, cc, "SET ROLE loader")
	exec(t, cc, "COPY cs (id, t, tz) FROM "+lit(file("some.csv"))+" (FORMAT csv)")
	if r := reader(); r != "duckdb" {
		t.Errorf("COPY as loader was read by %q", r)
	}
	exec(t, cc, "RESET ROLE")
	if n := queryInt(t, conn, "SELECT count(*) FROM cs"); n != n0+60000 {
		t.Fatalf("after loader's COPY %d rows, want %d", n, n0+40000)
	}
}

// failingReader fails a COPY FROM STDIN midway (the driver sends CopyFail).
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("the client gives up") }
