package test

import (
	"context"
	gosql "database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgmooncake/mooncake/catalog"
)

// INSERT INTO columnstore_table SELECT ... whose SELECT is a scan pushed
// down whole (a mirror, a columnstore table, a Parquet file; filters,
// column lists, CREATE TABLE ... AS) runs in DuckDB straight into the
// table's files, and gives the rows the row path gives: each statement is
// compared with a heap table that took the same one, and the path taken
// is checked from the DEBUG1 messages. Values the row path would change or
// refuse, other shapes (RETURNING, casts, defaults) and other types go the
// row path.
func TestColumnstoreInsertSelect(t *testing.T) {
	c, conn := startMooncake(t)
	const cols = `id bigint NOT NULL, i int, s smallint, b boolean, f float8, r real, n numeric(12,2), t text,
  v varchar(8), u uuid, d date, ts timestamp, tz timestamptz, by bytea`
	exec(t, conn, "CREATE TABLE src (id bigint PRIMARY KEY, "+strings.TrimPrefix(cols, "id bigint NOT NULL, ")+")")
	exec(t, conn, `INSERT INTO src SELECT g,
  CASE WHEN g % 7 = 0 THEN NULL ELSE (g * 7919) % 100000 - 50000 END,
  CASE WHEN g % 11 = 0 THEN NULL ELSE g % 3000 END,
  CASE WHEN g % 17 = 0 THEN NULL ELSE g % 2 = 0 END,
  CASE g % 9 WHEN 0 THEN NULL WHEN 1 THEN 'NaN' WHEN 2 THEN 'Infinity' WHEN 3 THEN '-Infinity' WHEN 4 THEN -0.0
    WHEN 5 THEN 1.0 / g ELSE g * 1.0e-40 END,
  CASE WHEN g % 13 = 0 THEN NULL ELSE g / 3.0 END,
  CASE WHEN g % 19 = 0 THEN NULL ELSE (g * 104729 % 1000000) / 100.0 - 5000 END,
  CASE g % 8 WHEN 0 THEN NULL WHEN 1 THEN '' WHEN 2 THEN 'a,b' WHEN 3 THEN 'say "hi"' WHEN 4 THEN 'two' || chr(10) || 'lines'
    WHEN 5 THEN ' padded ' WHEN 6 THEN 'é中🙂' ELSE 'N' END,
  CASE WHEN g % 29 = 0 THEN NULL ELSE left(md5(g::text), g % 9) END,
  CASE WHEN g % 31 = 0 THEN NULL ELSE md5(g::text)::uuid END,
  CASE WHEN g % 37 = 0 THEN NULL WHEN g % 41 = 0 THEN 'infinity' ELSE date '1900-01-01' + (g * 977) % 73000 END,
  CASE WHEN g % 43 = 0 THEN NULL WHEN g % 47 = 0 THEN '-infinity' ELSE timestamp '1950-01-01' + (g * 7727) * interval '1 second' + (g % 1000) * interval '1 microsecond' END,
  CASE WHEN g % 53 = 0 THEN NULL ELSE timestamptz '1970-03-10 00:00:00+00' + (g * 104723) * interval '1 minute' END,
  CASE WHEN g % 59 = 0 THEN NULL ELSE decode(md5(g::text), 'hex') END
FROM generate_series(1, 20000) g`)
	exec(t, conn, "CALL mooncake.create_table('src_m', 'src')")
	waitConverged(t, conn, "src", "src_m", time.Minute)
	exec(t, conn, "CREATE TABLE h ("+cols+")")
	exec(t, conn, "CREATE TABLE cs ("+cols+") USING columnstore")

	cc, last := debugConn(t, c, "was run by DuckDB", "takes its rows from PostgreSQL")
	same := func(what, a, b string) {
		t.Helper()
		if m, x := differences(t, conn, a, b); m != 0 || x != 0 {
			t.Fatalf("%s: %s and %s differ: %d rows missing, %d extra", what, a, b, m, x)
		}
	}
	// both runs q into h and into cs and checks the path cs's took
	both := func(q, wantPath string) {
		t.Helper()
		exec(t, cc, strings.ReplaceAll(q, "TBL", "h"))
		last()
		exec(t, cc, strings.ReplaceAll(q, "TBL", "cs"))
		if mark, msg := last(); mark != wantPath {
			t.Fatalf("%s: the path was %q (%s), want %q", q, mark, msg, wantPath)
		}
		same(q, "h", "cs")
	}
	const duck, pg = "was run by DuckDB", "takes its rows from PostgreSQL"
	both("INSERT INTO TBL SELECT * FROM src_m", duck)
	if n := queryInt(t, conn, "SELECT count(*) FROM cs"); n != 20000 {
		t.Fatalf("%d rows after INSERT ... SELECT", n)
	}
	both("INSERT INTO TBL SELECT * FROM src_m WHERE id % 3 = 0 AND t IS NOT NULL", duck)
	both("INSERT INTO TBL (id, t, tz) SELECT id, t, tz FROM src_m WHERE id < 500", duck)
	both("INSERT INTO TBL SELECT * FROM TBL WHERE id > 19000", duck) // from itself
	// a prepared statement's parameter, in a CTE that counts no rows
	for _, tbl := range []string{"h", "cs"} {
		exec(t, cc, "PREPARE ins_"+tbl+"(bigint) AS WITH w AS (INSERT INTO "+tbl+" SELECT * FROM src_m WHERE id < $1) SELECT 1")
	}
	both("EXECUTE ins_TBL(1234)", duck)
	// under another TimeZone: DuckDB filters on the session's dates
	exec(t, cc, "SET TimeZone = 'America/New_York'")
	both("INSERT INTO TBL SELECT * FROM src_m WHERE tz::date < '1971-06-01'", duck)
	// a projection PostgreSQL computes: the row path
	both("INSERT INTO TBL (id, d, ts) SELECT id, tz::date, tz::timestamp FROM src_m WHERE id < 300", "")
	exec(t, cc, "RESET TimeZone")
	// the row path: a cast (int into bigint), a default-less shape that is
	// not a plain column, RETURNING
	both("INSERT INTO TBL (id, i) SELECT i, s FROM src_m WHERE i IS NOT NULL AND id < 100", "")
	both("INSERT INTO TBL (id, t) SELECT id, upper(t) || '!' FROM src_m WHERE id < 100", "")
	rows, err := cc.Query(context.Background(), "INSERT INTO cs SELECT * FROM src_m WHERE id < 50 RETURNING id")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	rows.Close()
	if n != 49 {
		t.Fatalf("RETURNING gave %d rows", n)
	}
	exec(t, conn, "INSERT INTO h SELECT * FROM src WHERE id < 50")
	same("RETURNING", "h", "cs")

	// EXPLAIN ANALYZE tells how many rows DuckDB inserted
	var plan []string
	prows, err := conn.Query(context.Background(), "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) INSERT INTO cs SELECT * FROM src_m WHERE id < 10")
	if err != nil {
		t.Fatal(err)
	}
	for prows.Next() {
		var line string
		prows.Scan(&line)
		plan = append(plan, line)
	}
	prows.Close()
	if !strings.Contains(strings.Join(plan, "\n"), "Rows Inserted by DuckDB: 9") {
		t.Fatalf("EXPLAIN ANALYZE:\n%s", strings.Join(plan, "\n"))
	}
	exec(t, conn, "INSERT INTO h SELECT * FROM src WHERE id < 10")
	same("EXPLAIN ANALYZE", "h", "cs")

	// values the row path would refuse or change: a BC date
	exec(t, conn, "CREATE TABLE odd (id bigint PRIMARY KEY, d date, v varchar(8))")
	exec(t, conn, "INSERT INTO odd VALUES (1, '0044-03-15 BC', 'x'), (2, '2024-01-01', 'y')")
	exec(t, conn, "CALL mooncake.create_table('odd_m', 'odd')")
	waitConverged(t, conn, "odd", "odd_m", time.Minute)
	both("INSERT INTO TBL (id, d, v) SELECT id, d, v FROM odd_m", pg)

	// a rollback, and CREATE TABLE ... USING columnstore AS SELECT
	before := queryInt(t, conn, "SELECT count(*) FROM cs")
	exec(t, cc, "BEGIN")
	exec(t, cc, "INSERT INTO cs SELECT * FROM src_m")
	exec(t, cc, "ROLLBACK")
	if n := queryInt(t, conn, "SELECT count(*) FROM cs"); n != before {
		t.Fatalf("after a rollback %d rows, want %d", n, before)
	}
	last()
	exec(t, cc, "CREATE TABLE cs_as USING columnstore AS SELECT * FROM src_m WHERE id % 2 = 0")
	if mark, msg := last(); mark != duck {
		t.Fatalf("CREATE TABLE AS: the path was %q (%s)", mark, msg)
	}
	if m, x := differences(t, conn, "(SELECT * FROM src WHERE id % 2 = 0) s", "cs_as"); m != 0 || x != 0 {
		t.Fatalf("CREATE TABLE AS: %d rows missing, %d extra", m, x)
	}

	// the data lake: a Parquet file written by DuckDB, read by a column
	// definition list
	dir, err := os.MkdirTemp("", "insert-lake-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	pq := filepath.Join(dir, "events.parquet")
	duckdb, err := gosql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer duckdb.Close()
	if _, err := duckdb.Exec(fmt.Sprintf(`COPY (SELECT g::BIGINT AS id, 'kind ' || (g %% 7) AS kind, (g * 1.25)::DECIMAL(12,2) AS amount,
  TIMESTAMP '2024-01-01' + g * INTERVAL 1 MINUTE AS at FROM range(1, 50001) t(g)) TO %s (FORMAT parquet)`, catalog.QuoteLiteral(pq))); err != nil {
		t.Fatal(err)
	}
	os.Chmod(pq, 0o644)
	lake := "mooncake.read_parquet(" + catalog.QuoteLiteral(pq) + ") AS (id bigint, kind text, amount numeric(12,2), at timestamp)"
	exec(t, conn, "CREATE TABLE lake_h AS SELECT * FROM "+lake)
	last()
	exec(t, cc, "CREATE TABLE lake_cs USING columnstore AS SELECT * FROM "+lake)
	if mark, msg := last(); mark != duck {
		t.Fatalf("CREATE TABLE AS from a Parquet file: the path was %q (%s)", mark, msg)
	}
	same("CREATE TABLE AS from a Parquet file", "lake_h", "lake_cs")
	agg := "SELECT concat_ws('|', count(*), sum(amount), min(at), max(kind)) FROM "
	if a, b := queryString(t, conn, agg+"lake_h"), queryString(t, conn, agg+"lake_cs"); a != b {
		t.Fatalf("aggregates of the lake load: heap %s, columnstore %s", a, b)
	}

	// privileges: the role must read the source
	exec(t, conn, "CREATE ROLE writer LOGIN")
	exec(t, conn, "GRANT INSERT ON cs TO writer")
	exec(t, conn, "SET ROLE writer")
	_, err = conn.Exec(context.Background(), "INSERT INTO cs SELECT * FROM src_m")
	exec(t, conn, "RESET ROLE")
	if sqlState(err) != "42501" {
		t.Fatalf("INSERT ... SELECT from a mirror the role cannot read: %v, want 42501", err)
	}
}
