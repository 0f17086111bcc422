package bench

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmooncake/mooncake/catalog"
	"github.com/pgmooncake/mooncake/test/pgtest"
)

// csColumns are the columns of the columnstore benchmark's tables, the
// same for the heap and the columnstore table: a realistic mix.
const csColumns = `id bigint, user_id int, kind text, country text, amount numeric(12,2),
  at timestamptz, ok boolean, score double precision`

// csSelect generates {rows} rows (deterministic): kind of 10 values,
// country of 8, user_id of 100,000, amounts in cents, times over 2022 to
// 2024, scores in quarters (so that every side's sum and avg are exact);
// a few NULLs.
const csSelect = `SELECT g,
  (g * 7919 % 100000)::int,
  (ARRAY['view', 'click', 'purchase', 'signup', 'login', 'logout', 'search', 'share', 'refund', 'cart'])[1 + (g * 7) % 10],
  CASE WHEN g % 101 = 0 THEN NULL ELSE (ARRAY['US', 'FR', 'DE', 'JP', 'BR', 'IN', 'GB', 'CA'])[1 + (g * 13) % 8] END,
  CASE WHEN g % 97 = 0 THEN NULL ELSE ((g * 104729) % 1000000 / 100.0)::numeric(12,2) END,
  timestamptz '2022-01-01 00:00:00+00' + ((g * 134623) % 94608000) * interval '1 second',
  g % 3 = 0,
  ((g * 31) % 4000) / 4.0
FROM generate_series(1, {rows}::bigint) g`

// sameRows fails the test unless tables a and b hold the same rows
// (EXCEPT ALL both ways).
func sameRows(t *testing.T, conn *pgx.Conn, what, a, b string) {
	t.Helper()
	for _, q := range []string{"SELECT count(*) FROM (SELECT * FROM " + a + " EXCEPT ALL SELECT * FROM " + b + ") d",
		"SELECT count(*) FROM (SELECT * FROM " + b + " EXCEPT ALL SELECT * FROM " + a + ") d"} {
		if n := queryInt(t, conn, q); n != 0 {
			t.Fatalf("%s differ: %s gives %d", what, q, n)
		}
	}
}

// csQuery is one analytic query of the benchmark; {t} names the table.
type csQuery struct {
	name    string
	sql     string
	ordered bool // the query orders its rows totally: compare in order
}

// csQueries are the manual's kinds of aggregation over the table.
var csQueries = []csQuery{
	{name: "count", ordered: true, sql: `SELECT count(*) FROM {t}`},
	{name: "manual_aggregation", ordered: true, sql: `SELECT kind, date_trunc('quarter', at) AS quarter,
  sum(amount) AS total, count(*) AS n, avg(amount) AS avg_amount
FROM {t}
WHERE at BETWEEN '2023-01-01' AND '2023-12-31'
GROUP BY kind, quarter
ORDER BY kind, quarter`},
	{name: "filtered_groupby", ordered: true, sql: `SELECT country, ok, count(*), sum(amount), max(score), min(at), avg(score)
FROM {t}
WHERE user_id < 50000 AND kind <> 'view'
GROUP BY country, ok
ORDER BY country, ok`},
	{name: "top_users", ordered: true, sql: `SELECT user_id, sum(amount) AS spent, count(*)
FROM {t}
WHERE at >= '2024-01-01'
GROUP BY user_id
ORDER BY spent DESC NULLS LAST, user_id
LIMIT 20`},
	{name: "distinct_per_month", ordered: true, sql: `SELECT date_trunc('month', at) AS month, count(DISTINCT user_id)
FROM {t}
GROUP BY month
ORDER BY month`},
	{name: "point", ordered: true, sql: `SELECT * FROM {t} WHERE id = 4242`},
}

// TestColumnstoreLoad compares a columnstore table (CREATE TABLE ... USING
// columnstore) with a heap table of the same columns (issue 14):
//
//  1. INSERT INTO t SELECT ... FROM generate_series of MOONCAKE_BENCH_ROWS
//     rows (default 10,000,000) into each (target: the columnstore loads
//     at least 2 × faster);
//     Then INSERT INTO t SELECT * FROM mooncake.read_parquet of the
//     columnstore table's data files (the columnstore's run by DuckDB),
//     and INSERT INTO t SELECT * FROM the heap table of step 1 (the rows
//     coming through PostgreSQL);
//  2. COPY t FROM a CSV file of the same rows (written by COPY heap TO)
//     into a fresh table of each kind (the columnstore's read by DuckDB),
//     and COPY t FROM STDIN of the same file as a client sends it (the
//     columnstore's spooled, then read by DuckDB);
//  3. the bytes on disk of each: the heap's pg_total_relation_size, the
//     columnstore table's data files (the files under its location, the
//     directory above its metadata file's; target ≤ 1/4 of the heap);
//  4. analytic queries on the columnstore table and on the heap, their
//     answers compared (the table loaded by COPY must give the same too).
//
// For each load it also prints the CPU time the backend and the sidecar
// spent (from /proc/<pid>/stat), which tells where the time goes.
// MOONCAKE_BENCH_RUNS: timed runs per query (default 5, in turns after one
// untimed; medians). MOONCAKE_BENCH_PROFILE=DIR: CPU profiles of the
// sidecar during the columnstore loads (DIR/columnstore-insert.pprof,
// DIR/columnstore-copy.pprof, DIR/columnstore-stdin.pprof), over twice the heap's time for the same
// load (at least 1 s), which ends within the columnstore's.
// Only wrong answers fail the test.
func TestColumnstoreLoad(t *testing.T) {
	requireBench(t)
	ctx := context.Background()
	rows := envInt(t, "MOONCAKE_BENCH_ROWS", 10_000_000)
	runs := int(envInt(t, "MOONCAKE_BENCH_RUNS", 5))

	dir, err := os.MkdirTemp("", "columnstore-bench-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777) // the server writes the CSV file there
	csv := filepath.Join(dir, "rows.csv")

	opts := []pgtest.Option{
		pgtest.WithSetting("shared_buffers", "2GB"), pgtest.WithSetting("work_mem", "256MB"),
		pgtest.WithSetting("max_wal_size", "8GB"), pgtest.WithSetting("checkpoint_timeout", "30min"),
	}
	var g *gate
	if os.Getenv(ProfileEnv) != "" {
		g = newGate(t) // serves pprof
		opts = append(opts, g.option())
	}
	c, conn := startCluster(t, opts...)
	backend := int(queryInt(t, conn, "SELECT pg_backend_pid()"))
	sidecar := c.SidecarPID(t)
	figure("columnstore: %s rows of (%s)", thousands(float64(rows)), strings.Join(strings.Fields(csColumns), " "))

	gen := strings.ReplaceAll(csSelect, "{rows}", fmt.Sprint(rows))
	loadWith := func(what, table string, run func(), profile time.Duration) csLoad {
		t.Helper()
		if g != nil && profile > 0 {
			g.profile(t, what, max(profile, time.Second))
		}
		b0, s0 := procCPU(t, backend), procCPU(t, sidecar)
		start := time.Now()
		run()
		l := csLoad{wall: time.Since(start), backend: procCPU(t, backend) - b0, sidecar: procCPU(t, sidecar) - s0}
		if n := queryInt(t, conn, "SELECT count(*) FROM "+table); n != rows {
			t.Fatalf("%s: %s holds %d rows; want %d", what, table, n, rows)
		}
		return l
	}
	load := func(what, table, sql string, profile time.Duration) csLoad {
		t.Helper()
		return loadWith(what, table, func() { mustExec(t, conn, sql) }, profile)
	}
	// a COPY FROM STDIN of the CSV file, as psql's \copy sends it
	stdin := func(what, table string, profile time.Duration) csLoad {
		t.Helper()
		return loadWith(what, table, func() {
			f, err := os.Open(csv)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := conn.PgConn().CopyFrom(ctx, f, "COPY "+table+" FROM STDIN (FORMAT csv)"); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		}, profile)
	}

	// (1) INSERT ... SELECT
	mustExec(t, conn, "CREATE TABLE heap_t ("+csColumns+")")
	mustExec(t, conn, "CREATE TABLE cs_t ("+csColumns+") USING columnstore")
	mustExec(t, conn, "CHECKPOINT")
	heapIns := load("heap-insert", "heap_t", "INSERT INTO heap_t "+gen, 0)
	mustExec(t, conn, "CHECKPOINT")
	csIns := load("columnstore-insert", "cs_t", "INSERT INTO cs_t "+gen, 2*heapIns.wall)

	// (1b) INSERT ... SELECT from Parquet files (the data lake): the
	// columnstore table's own data files, read by mooncake.read_parquet
	var quoted []string
	for _, f := range columnstoreDataFiles(t, ctx, conn, "cs_t") {
		quoted = append(quoted, catalog.QuoteLiteral(f))
	}
	lake := "mooncake.read_parquet(ARRAY[" + strings.Join(quoted, ", ") + "]) AS (" + csColumns + ")"
	mustExec(t, conn, "CREATE TABLE heap_p ("+csColumns+")")
	mustExec(t, conn, "CREATE TABLE cs_p ("+csColumns+") USING columnstore")
	mustExec(t, conn, "CHECKPOINT")
	heapLake := load("heap-lake", "heap_p", "INSERT INTO heap_p SELECT * FROM "+lake, 0)
	mustExec(t, conn, "CHECKPOINT")
	csLake := load("columnstore-lake", "cs_p", "INSERT INTO cs_p SELECT * FROM "+lake, 2*heapLake.wall)
	sameRows(t, conn, "the loads from Parquet", "heap_p", "cs_p")
	mustExec(t, conn, "DROP TABLE heap_p")
	mustExec(t, conn, "DROP TABLE cs_p")

	// (1c) INSERT ... SELECT * FROM a heap table (heap_t, vacuumed first
	// so that neither load sets its hint bits): the rows come through
	// PostgreSQL, the way most loads of existing data take
	mustExec(t, conn, "VACUUM heap_t")
	mustExec(t, conn, "CREATE TABLE heap_h ("+csColumns+")")
	mustExec(t, conn, "CREATE TABLE cs_h ("+csColumns+") USING columnstore")
	mustExec(t, conn, "CHECKPOINT")
	heapHeap := load("heap-from-heap", "heap_h", "INSERT INTO heap_h SELECT * FROM heap_t", 0)
	mustExec(t, conn, "CHECKPOINT")
	csHeap := load("columnstore-from-heap", "cs_h", "INSERT INTO cs_h SELECT * FROM heap_t", 2*heapHeap.wall)
	sameRows(t, conn, "the loads from the heap table", "heap_t", "cs_h")
	mustExec(t, conn, "DROP TABLE heap_h")
	mustExec(t, conn, "DROP TABLE cs_h")

	// (2) COPY FROM a CSV file of the same rows
	start := time.Now()
	mustExec(t, conn, "COPY heap_t TO "+catalog.QuoteLiteral(csv)+" (FORMAT csv)")
	csvT := time.Since(start)
	st, err := os.Stat(csv)
	if err != nil {
		t.Fatal(err)
	}
	figure("columnstore: the CSV file: %.1f MiB, written by COPY heap_t TO in %s", float64(st.Size())/(1<<20), secs(csvT))
	mustExec(t, conn, "CREATE TABLE heap_c ("+csColumns+")")
	mustExec(t, conn, "CREATE TABLE cs_c ("+csColumns+") USING columnstore")
	mustExec(t, conn, "CHECKPOINT")
	heapCopy := load("heap-copy", "heap_c", "COPY heap_c FROM "+catalog.QuoteLiteral(csv)+" (FORMAT csv)", 0)
	mustExec(t, conn, "CHECKPOINT")
	csCopy := load("columnstore-copy", "cs_c", "COPY cs_c FROM "+catalog.QuoteLiteral(csv)+" (FORMAT csv)", 2*heapCopy.wall)
	// (2b) COPY FROM STDIN of the same file (the tables dropped after)
	mustExec(t, conn, "CREATE TABLE heap_s ("+csColumns+")")
	mustExec(t, conn, "CREATE TABLE cs_s ("+csColumns+") USING columnstore")
	mustExec(t, conn, "CHECKPOINT")
	heapStdin := stdin("heap-stdin", "heap_s", 0)
	mustExec(t, conn, "CHECKPOINT")
	csStdin := stdin("columnstore-stdin", "cs_s", 2*heapStdin.wall)
	mustExec(t, conn, "DROP TABLE heap_s")
	mustExec(t, conn, "DROP TABLE cs_s")
	os.Remove(csv)

	// (3) bytes on disk
	heapBytes := queryInt(t, conn, "SELECT pg_total_relation_size('heap_t')")
	csBytes, csFiles, metaBytes, metaFiles := columnstoreBytes(t, ctx, conn, "cs_t")
	copyBytes, copyFiles, _, _ := columnstoreBytes(t, ctx, conn, "cs_c")

	// (4) the queries, after VACUUM ANALYZE (the heap at its best)
	mustExec(t, conn, "VACUUM ANALYZE heap_t")
	mustExec(t, conn, "ANALYZE cs_t")
	mustExec(t, conn, "CHECKPOINT")
	type result struct {
		name       string
		heapT, csT time.Duration
		rows       int
	}
	var results []result
	for _, q := range csQueries {
		heapSQL := strings.ReplaceAll(q.sql, "{t}", "heap_t")
		csSQL := strings.ReplaceAll(q.sql, "{t}", "cs_t")
		want, err := textRows(ctx, conn, heapSQL)
		if err != nil {
			t.Fatalf("%s: %v", heapSQL, err)
		}
		for _, table := range []string{"cs_t", "cs_c"} {
			got, err := textRows(ctx, conn, strings.ReplaceAll(q.sql, "{t}", table))
			if err != nil {
				t.Fatalf("%s on %s: %v", q.name, table, err)
			}
			if d := sameResult(want, got, q.ordered); d != "" {
				t.Errorf("%s: the heap and columnstore table %s differ (shown as \"mirror\"): %s\n%s", q.name, table, d, q.sql)
			}
		}
		m := interleaved(t, runs, runPG(ctx, conn, heapSQL), runPG(ctx, conn, csSQL))
		results = append(results, result{q.name, m[0], m[1], len(want)})
	}

	figure("columnstore: loads, wall time (rows/s); CPU of the backend and of the sidecar during it:")
	for _, l := range []struct {
		what string
		l    csLoad
	}{{"INSERT ... SELECT, heap", heapIns}, {"INSERT ... SELECT, columnstore", csIns},
		{"INSERT ... SELECT Parquet, heap", heapLake}, {"INSERT ... SELECT Parquet, columnstore", csLake},
		{"INSERT ... SELECT * FROM heap, heap", heapHeap}, {"INSERT ... SELECT * FROM heap, columnstore", csHeap},
		{"COPY FROM csv, heap", heapCopy}, {"COPY FROM csv, columnstore", csCopy},
		{"COPY FROM STDIN csv, heap", heapStdin}, {"COPY FROM STDIN csv, columnstore", csStdin}} {
		figure("columnstore:   %-38s %9s (%10s rows/s)  backend CPU %9s  sidecar CPU %9s",
			l.what, secs(l.l.wall), thousands(perSecond(rows, l.l.wall)), secs(l.l.backend), secs(l.l.sidecar))
	}
	figure("columnstore: INSERT ... SELECT heap/columnstore %.2f (target ≥ 2), from Parquet files %.2f, from a heap table %.2f; COPY FROM heap/columnstore %.2f (target ≥ 2); COPY FROM STDIN heap/columnstore %.2f",
		ratio(heapIns.wall, csIns.wall), ratio(heapLake.wall, csLake.wall), ratio(heapHeap.wall, csHeap.wall), ratio(heapCopy.wall, csCopy.wall), ratio(heapStdin.wall, csStdin.wall))
	figure("columnstore: on disk: heap %.1f MiB (pg_total_relation_size); columnstore %.1f MiB in %d data file(s) (+ %.2f MiB in %d metadata files, manifests), %.1f MiB in %d loaded by COPY; columnstore/heap %.3f (target ≤ 0.25)",
		float64(heapBytes)/(1<<20), float64(csBytes)/(1<<20), csFiles, float64(metaBytes)/(1<<20), metaFiles,
		float64(copyBytes)/(1<<20), copyFiles, float64(csBytes)/float64(heapBytes))
	figure("columnstore: queries, median of %d runs in turns after one untimed (answers equal on the heap and both columnstore tables):", runs)
	for _, r := range results {
		figure("columnstore:   %-20s heap %10s  columnstore %10s  heap/columnstore %7.2f  (%d rows)",
			r.name, ms(r.heapT), ms(r.csT), ratio(r.heapT, r.csT), r.rows)
	}
}

// csLoad is one load's wall time and the CPU time its two processes spent.
type csLoad struct {
	wall, backend, sidecar time.Duration
}

// procCPU is the CPU time (user and system, all threads) process pid has
// spent, from /proc/<pid>/stat.
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// the fields after the command name, which is in parentheses
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		t.Fatalf("/proc/%d/stat: %q", pid, s)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/%d/stat: %q", pid, s)
	}
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks
}

// columnstoreBytes sums the sizes of the columnstore table's Parquet data
// files and, apart, of its metadata (metadata JSON files, manifests): the
// files under its location, the directory above the one of its current
// metadata file (mooncake.columnstore_tables.metadata_location).
// columnstoreDataFiles lists the Parquet data files under a columnstore
// table's directory.
func columnstoreDataFiles(t *testing.T, ctx context.Context, conn *pgx.Conn, table string) []string {
	t.Helper()
	var loc string
	if err := conn.QueryRow(ctx, "SELECT metadata_location FROM mooncake.columnstore_tables WHERE table_name = $1", table).Scan(&loc); err != nil {
		t.Fatalf("the metadata location of %s: %v", table, err)
	}
	files, err := filepath.Glob(filepath.Join(filepath.Dir(filepath.Dir(strings.TrimPrefix(loc, "file://"))), "data", "*.parquet"))
	if err != nil || len(files) == 0 {
		t.Fatalf("the data files of %s: %v", table, err)
	}
	return files
}

func columnstoreBytes(t *testing.T, ctx context.Context, conn *pgx.Conn, table string) (data int64, dataFiles int, meta int64, metaFiles int) {
	t.Helper()
	var loc string
	if err := conn.QueryRow(ctx, "SELECT metadata_location FROM mooncake.columnstore_tables WHERE table_name = $1", table).Scan(&loc); err != nil {
		t.Fatalf("the metadata location of %s: %v", table, err)
	}
	root := filepath.Dir(filepath.Dir(strings.TrimPrefix(loc, "file://")))
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if strings.HasSuffix(p, ".parquet") && !strings.Contains(p, string(filepath.Separator)+"metadata"+string(filepath.Separator)) {
			data += info.Size()
			dataFiles++
		} else {
			meta += info.Size()
			metaFiles++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the files of %s under %s: %v", table, root, err)
	}
	if dataFiles == 0 {
		t.Fatalf("%s has no data files under %s", table, root)
	}
	return data, dataFiles, meta, metaFiles
}
