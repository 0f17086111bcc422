package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	osexec "os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmooncake/mooncake/test/pgtest"
	"github.com/pgmooncake/mooncake/test/s3test"
)

// pyModules are what testdata/read_mirror.py imports (make deps-python).
const pyModules = "pyiceberg.catalog.sql, pyarrow, psycopg2, sqlalchemy"

// requirePyIceberg returns the python3 to run, or skips the test (fails it
// with MOONCAKE_REQUIRE_PG=1) when python3 or pyiceberg is missing.
func requirePyIceberg(t *testing.T) string {
	t.Helper()
	python, err := osexec.LookPath("python3")
	if err != nil {
		skipOrFailPy(t, "python3 not found: %v", err)
	}
	if out, err := osexec.Command(python, "-c", "import "+pyModules).CombinedOutput(); err != nil {
		skipOrFailPy(t, "pyiceberg is not installed (make deps-python): %v\n%s", err, out)
	}
	return python
}

func skipOrFailPy(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv(pgtest.RequireEnv) == "1" {
		t.Fatalf(format+" ("+pgtest.RequireEnv+"=1, so this is a failure)", args...)
	}
	t.Skipf(format+" (set "+pgtest.RequireEnv+"=1 to fail instead)", args...)
}

// TestPyIcebergReadsMirror has pyiceberg read the mirrors through the SQL
// catalog in the database, after a workload whose updates and deletes of
// flushed rows left position delete files, and compares every row with the
// source.
func TestPyIcebergReadsMirror(t *testing.T) {
	python := requirePyIceberg(t)
	seed := workloadSeed(t)
	t.Logf("%s=%d", seedEnv, seed)
	c, conn := startMooncake(t)
	w := setupWorkload(t, conn, seed, false)
	w.truncateOdds = 0 // keep rows in the files, so that deletes hit them
	workers := []*wlWorker{w.newWorker(t, c, 0), w.newWorker(t, c, 1)}
	keepTrace(t, w, workers)
	ctx := context.Background()

	if err := runRound(ctx, workers, 30, map[int][]txPlan{0: {workers[0].planBig(0)}}); err != nil {
		t.Fatalf("first round: %v", err)
	}
	time.Sleep(3 * time.Second) // flushed: the next changes hit rows in data files
	if err := runRound(ctx, workers, 30, map[int][]txPlan{0: {workers[0].planBig(4)}}); err != nil {
		t.Fatalf("second round: %v", err)
	}
	exec(t, conn, `UPDATE wl_types SET i = coalesce(i, 0) + 1 WHERE id % 10 = 3`)
	exec(t, conn, `DELETE FROM wl_types WHERE id % 10 = 7`)
	exec(t, conn, `UPDATE wl_comp SET qty = qty + 1 WHERE a % 10 = 3`)
	exec(t, conn, `DELETE FROM wl_comp WHERE a % 10 = 7`)
	exec(t, conn, `UPDATE wl_toast SET counter = counter + 1 WHERE id % 4 = 1`)
	exec(t, conn, `DELETE FROM wl_toast WHERE id % 4 = 3`)
	checkMirrors(t, conn, w, "before the flush", 30*time.Second)
	waitFlushed(t, conn, 20*time.Second)
	if _, dels := logFileCounts(t, conn, "flushed"); dels == 0 {
		t.Fatalf("no position delete files: the test would not exercise them")
	}

	for _, tb := range wlTables {
		t.Run(tb.mirror, func(t *testing.T) { pyicebergMatchesSource(t, python, c, conn, tb) })
	}
}

// pyicebergMatchesSource has pyiceberg read a mirror through the SQL
// catalog in the database (testdata/read_mirror.py) and compares every
// row with its source's.
func pyicebergMatchesSource(t *testing.T, python string, c *pgtest.Cluster, conn *pgx.Conn, tb wlTable) {
	t.Helper()
	uri := fmt.Sprintf("postgresql+psycopg2://postgres@127.0.0.1:%d/postgres?options=-csearch_path%%3Dmooncake", c.Port())
	start := time.Now()
	// The warehouse belongs to the server's OS user, in 0700
	// directories: as root (CI) the script reads it anyway; as any other
	// user the server runs as that user.
	cmd := osexec.Command(python, "testdata/read_mirror.py", uri, "public."+tb.mirror, strings.Join(tb.key, ","))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("read_mirror.py %s: %v\n%s", tb.mirror, err, stderr.String())
	}
	gotNames, got := parseMirrorRows(t, out)
	wantNames, want := canonicalSourceRows(t, conn, tb)
	t.Logf("pyiceberg read %d rows of %s in %v", len(got), tb.mirror, time.Since(start).Round(time.Millisecond))
	if strings.Join(gotNames, ",") != strings.Join(wantNames, ",") {
		t.Fatalf("pyiceberg columns %v; want %v", gotNames, wantNames)
	}
	compareRows(t, got, want)
}

// waitFlushed waits until every mirror has committed all it applied to
// Iceberg, which is all pyiceberg reads.
func waitFlushed(t *testing.T, conn *pgx.Conn, timeout time.Duration) {
	t.Helper()
	var pending int64
	if _, ok := waitFor(timeout, func() bool {
		pending = queryInt(t, conn, `SELECT count(*) FROM mooncake.columnstore_tables
			WHERE flushed_lsn < applied_lsn OR unflushed_rows > 0`)
		return pending == 0
	}); !ok {
		t.Fatalf("%d mirrors still hold unflushed changes after %v", pending, timeout)
	}
}

// parseMirrorRows reads read_mirror.py's output: column names, then rows.
func parseMirrorRows(t *testing.T, out []byte) (names []string, rows [][]*string) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	first := true
	for sc.Scan() {
		if first {
			if err := json.Unmarshal(sc.Bytes(), &names); err != nil {
				t.Fatalf("read_mirror.py header %q: %v", sc.Text(), err)
			}
			first = false
			continue
		}
		var row []*string
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatalf("read_mirror.py row %q: %v", sc.Text(), err)
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if first {
		t.Fatal("read_mirror.py printed nothing")
	}
	return names, rows
}

// canonicalSourceRows reads tb's source sorted by its key, every value in
// read_mirror.py's canonical form.
func canonicalSourceRows(t *testing.T, conn *pgx.Conn, tb wlTable) (names []string, rows [][]*string) {
	t.Helper()
	ctx := context.Background()
	cols, err := conn.Query(ctx, `SELECT attname, format_type(atttypid, NULL) FROM pg_attribute
		WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, tb.source)
	if err != nil {
		t.Fatal(err)
	}
	var exprs []string
	types := map[string]string{}
	for cols.Next() {
		var name, typ string
		if err := cols.Scan(&name, &typ); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
		types[name] = typ
		col := pgx.Identifier{name}.Sanitize()
		switch typ {
		case "real":
			exprs = append(exprs, "encode(float4send("+col+"), 'hex')")
		case "double precision":
			exprs = append(exprs, "encode(float8send("+col+"), 'hex')")
		case "date":
			exprs = append(exprs, "("+col+" - date '1970-01-01')::text")
		case "timestamp without time zone", "timestamp with time zone":
			exprs = append(exprs, "(extract(epoch FROM "+col+") * 1000000)::bigint::text")
		case "bigint", "integer", "smallint", "numeric", "text", "character varying", "boolean":
			exprs = append(exprs, col+"::text")
		default:
			t.Fatalf("%s.%s: no canonical form for type %s", tb.source, name, typ)
		}
	}
	cols.Close()
	if err := cols.Err(); err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, k := range tb.key {
		// Qualified, so that it names the column and not the output
		// column of the same name (its canonical text).
		o := tb.source + "." + pgx.Identifier{k}.Sanitize()
		if types[k] == "text" || types[k] == "character varying" {
			o += ` COLLATE "C"` // read_mirror.py sorts by code point
		}
		order = append(order, o)
	}
	q := "SELECT " + strings.Join(exprs, ", ") + " FROM " + tb.source + " ORDER BY " + strings.Join(order, ", ")
	res, err := conn.Query(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer res.Close()
	for res.Next() {
		row := make([]*string, len(names))
		dest := make([]any, len(names))
		for i := range row {
			dest[i] = &row[i]
		}
		if err := res.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	return names, rows
}

// compareRows fails the test when got and want differ, showing the first
// differing rows.
func compareRows(t *testing.T, got, want [][]*string) {
	t.Helper()
	show := func(row []*string) string {
		parts := make([]string, len(row))
		for i, v := range row {
			if v == nil {
				parts[i] = "NULL"
			} else if len(*v) > 60 {
				parts[i] = fmt.Sprintf("%q...(%d bytes)", (*v)[:60], len(*v))
			} else {
				parts[i] = fmt.Sprintf("%q", *v)
			}
		}
		return "(" + strings.Join(parts, ", ") + ")"
	}
	var diffs []string
	for i := 0; i < max(len(got), len(want)) && len(diffs) < 5; i++ {
		var g, w string
		if i < len(got) {
			g = show(got[i])
		}
		if i < len(want) {
			w = show(want[i])
		}
		if g != w {
			diffs = append(diffs, fmt.Sprintf("row %d: pyiceberg %s\n        source    %s", i, g, w))
		}
	}
	if len(got) != len(want) || len(diffs) > 0 {
		t.Errorf("pyiceberg read %d rows, the source has %d; first differences:\n%s", len(got), len(want), strings.Join(diffs, "\n"))
	}
}

// readWithPyIceberg reads a table of the catalog with pyiceberg and
// compares it with the rows of tb's source (names and values). With srv,
// the table's files are read from that S3 server, never from disk. It
// returns the rows read.
func readWithPyIceberg(t *testing.T, c *pgtest.Cluster, conn *pgx.Conn, srv *s3test.Server, ident string, tb wlTable) int {
	t.Helper()
	python := requirePyIceberg(t)
	uri := fmt.Sprintf("postgresql+psycopg2://postgres@127.0.0.1:%d/postgres?options=-csearch_path%%3Dmooncake", c.Port())
	cmd := osexec.Command(python, "testdata/read_mirror.py", uri, ident, strings.Join(tb.key, ","))
	if srv != nil {
		cmd.Env = append(os.Environ(), "MOONCAKE_S3_ENDPOINT="+srv.Direct, "MOONCAKE_S3_KEY_ID="+s3test.KeyID,
			"MOONCAKE_S3_SECRET="+s3test.Secret)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("read_mirror.py %s: %v\n%s", ident, err, stderr.String())
	}
	gotNames, got := parseMirrorRows(t, out)
	wantNames, want := canonicalSourceRows(t, conn, tb)
	if strings.Join(gotNames, ",") != strings.Join(wantNames, ",") {
		t.Fatalf("pyiceberg reads the columns %v of %s; want %v", gotNames, ident, wantNames)
	}
	compareRows(t, got, want)
	return len(got)
}
