package bench

import (
	"context"
	gosql "database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5"

	"github.com/pgmooncake/mooncake/catalog"
	"github.com/pgmooncake/mooncake/test/pgtest"
	"github.com/pgmooncake/mooncake/test/s3test"
)

// lakeColumns are the columns of the benchmark's Parquet file as
// PostgreSQL declares them, and lakeSelect the DuckDB query writing them.
const lakeColumns = `event_id bigint, user_id int, event_type text, created_at timestamp, amount numeric(12,2),
  country text, device text, duration_ms int, is_mobile boolean, page text`

// lakeSelect generates {rows} rows in DuckDB (deterministic): ten event
// types, created_at over 2022 to 2024, amounts in cents.
const lakeSelect = `SELECT
  i AS event_id,
  CAST(hash(i) % 1000000 AS INTEGER) AS user_id,
  (['view', 'click', 'purchase', 'signup', 'login', 'logout', 'search', 'share', 'refund', 'cart'])[1 + CAST(hash(i * 7) % 10 AS INTEGER)] AS event_type,
  TIMESTAMP '2022-01-01' + to_seconds(CAST(hash(i * 13) % 94608000 AS BIGINT)) AS created_at,
  CAST(CAST(hash(i * 17) % 100000 AS DECIMAL(12,0)) / 100 AS DECIMAL(12,2)) AS amount,
  (['US', 'FR', 'DE', 'JP', 'BR', 'IN', 'GB', 'CA'])[1 + CAST(hash(i * 19) % 8 AS INTEGER)] AS country,
  (['desktop', 'phone', 'tablet'])[1 + CAST(hash(i * 23) % 3 AS INTEGER)] AS device,
  CAST(hash(i * 29) % 600000 AS INTEGER) AS duration_ms,
  hash(i * 31) % 2 = 0 AS is_mobile,
  '/p/' || CAST(hash(i * 37) % 5000 AS VARCHAR) AS page
FROM range({rows}) t(i)`

// lakeQuery is the manual's kind of aggregation over the events;
// {events} names the source. DuckDB runs the same text.
const lakeQuery = `SELECT event_type, date_trunc('month', created_at) AS month, count(*) AS n, sum(amount) AS total
FROM {events}
WHERE created_at > '2023-01-01'
GROUP BY 1, 2
ORDER BY 1, 2`

// TestLakeParquet times the manual's aggregation over a Parquet file of
// MOONCAKE_BENCH_ROWS rows (default 10,000,000) read (a) through
// mooncake.read_parquet in FROM, (b) through a foreign table with the
// options path and format, and (c) by DuckDB in this process, the
// baseline (the sidecar's DuckDB settings); then (d) loaded as the manual
// advises, a heap table filled by INSERT ... SELECT from read_parquet and
// mirrored by create_table (load times, and the query on the mirror), and
// the heap table itself for reference. Each way runs once untimed, then
// MOONCAKE_BENCH_RUNS rounds (default 5) run the ways in turn ((a), (b)
// and (c); then (d), the heap and (c) again), so that other work on the
// machine weighs on each alike: the medians count. Every answer
// must equal DuckDB's, or the test fails; no timing is asserted. Printed:
// the medians, (a)/(c) and (b)/(c) (target ≤ 1.2), the planning
// requests' share (EXPLAIN of the query) and the first query after the
// sidecar's short-lived file caches expired.
func TestLakeParquet(t *testing.T) {
	requireBench(t)
	ctx := context.Background()
	rows := envInt(t, "MOONCAKE_BENCH_ROWS", 10_000_000)
	runs := int(envInt(t, "MOONCAKE_BENCH_RUNS", 5))

	dir, err := os.MkdirTemp("", "lake-bench-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755) // the server reads it
	path := filepath.Join(dir, "events.parquet")

	duck := openLakeDuck(t, ctx)
	defer duck.Close()
	start := time.Now()
	if _, err := duck.ExecContext(ctx, "COPY ("+strings.ReplaceAll(lakeSelect, "{rows}", fmt.Sprint(rows))+") TO "+
		catalog.QuoteLiteral(path)+" (FORMAT parquet, ROW_GROUP_SIZE 122880)"); err != nil {
		t.Fatalf("writing the Parquet file: %v", err)
	}
	os.Chmod(path, 0o644)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	figure("lake: %s rows, 10 columns, written by DuckDB in %s: %.1f MiB of Parquet",
		thousands(float64(rows)), secs(time.Since(start)), float64(st.Size())/(1<<20))

	_, conn := startCluster(t,
		pgtest.WithSetting("shared_buffers", "2GB"), pgtest.WithSetting("work_mem", "256MB"),
		pgtest.WithSetting("max_wal_size", "8GB"), pgtest.WithSetting("checkpoint_timeout", "30min"))

	fn := fmt.Sprintf("mooncake.read_parquet(%s) AS (%s)", catalog.QuoteLiteral(path), lakeColumns)
	mustExec(t, conn, fmt.Sprintf("CREATE FOREIGN TABLE events_ft (%s) SERVER mooncake OPTIONS (path %s, format 'parquet')",
		lakeColumns, catalog.QuoteLiteral(path)))
	render := func(src string) string { return strings.ReplaceAll(lakeQuery, "{events}", src) }

	// (c) the baseline, and the answer every other way must give; (a),
	// (b) checked against it, then the three timed in turns, so that other
	// work on the machine weighs on each alike
	duckQ := render(fmt.Sprintf("read_parquet(%s)", catalog.QuoteLiteral(path)))
	want := duckText(t, ctx, duck, duckQ)
	runDuck := func() error { _, err := duckRows(ctx, duck, duckQ); return err }
	checkPG(t, ctx, conn, "read_parquet", render(fn), want)
	checkPG(t, ctx, conn, "foreign table", render("events_ft"), want)
	m := interleaved(t, runs, runDuck, runPG(ctx, conn, render(fn)), runPG(ctx, conn, render("events_ft")))
	duckT, fnT, ftT := m[0], m[1], m[2]

	// Where the time goes besides DuckDB's: planning alone (the plan
	// requests, and the files' description), and one query after the
	// sidecar's caches of the files' description expired.
	explainT := medianOf(t, runs, func() error {
		_, err := textRows(ctx, conn, "EXPLAIN (VERBOSE) "+render(fn))
		return err
	})
	var coldT []time.Duration
	for range 3 {
		time.Sleep(2500 * time.Millisecond)
		start := time.Now()
		if _, err := textRows(ctx, conn, render(fn)); err != nil {
			t.Fatal(err)
		}
		coldT = append(coldT, time.Since(start))
	}

	// (d) as the manual advises: load, then mirror
	mustExec(t, conn, "CREATE TABLE events ("+lakeColumns+", PRIMARY KEY (event_id))")
	start = time.Now()
	mustExec(t, conn, "INSERT INTO events SELECT * FROM "+fn)
	loadT := time.Since(start)
	start = time.Now()
	mustExec(t, conn, "CALL mooncake.create_table('events_m', 'events')")
	mirrorT := time.Since(start)
	if n := queryInt(t, conn, "SELECT count(*) FROM events_m"); n != rows {
		t.Fatalf("the mirror holds %d rows; want %d", n, rows)
	}
	mustExec(t, conn, "VACUUM ANALYZE events")
	mustExec(t, conn, "CHECKPOINT")
	checkPG(t, ctx, conn, "mirror", render("events_m"), want)
	checkPG(t, ctx, conn, "heap", render("events"), want)
	m = interleaved(t, runs, runDuck, runPG(ctx, conn, render("events_m")), runPG(ctx, conn, render("events")))
	duck2T, mirrorQ, heapQ := m[0], m[1], m[2]

	figure("lake: the query (%d groups), median of %d runs in turns after one untimed:", len(want), runs)
	figure("lake:   (a) read_parquet in FROM    %9s  (a)/(c) %5.2f (target ≤ 1.2)", ms(fnT), ratio(fnT, duckT))
	figure("lake:   (b) foreign table           %9s  (b)/(c) %5.2f (target ≤ 1.2)", ms(ftT), ratio(ftT, duckT))
	figure("lake:   (c) DuckDB in-process       %9s  (%s in turns with (d) and the heap)", ms(duckT), ms(duck2T))
	figure("lake:   (d) mirror after the load   %9s  (d)/(c) %5.2f", ms(mirrorQ), ratio(mirrorQ, duck2T))
	figure("lake:       heap table              %9s  heap/(c) %5.2f", ms(heapQ), ratio(heapQ, duck2T))
	figure("lake: planning alone (EXPLAIN VERBOSE of (a)) %s; (a) after the sidecar's file caches expired: %s, %s, %s",
		ms(explainT), ms(coldT[0]), ms(coldT[1]), ms(coldT[2]))
	figure("lake: loading as the manual advises: INSERT ... SELECT FROM read_parquet %s (%s rows/s), create_table %s (%s rows/s)",
		secs(loadT), thousands(perSecond(rows, loadT)), secs(mirrorT), thousands(perSecond(rows, mirrorT)))
	figure("lake: ratios (a)/(c) %.2f, (b)/(c) %.2f", ratio(fnT, duckT), ratio(ftT, duckT))
}

// openLakeDuck opens an in-process DuckDB set as the sidecar sets its own.
func openLakeDuck(t *testing.T, ctx context.Context) *gosql.DB {
	t.Helper()
	db, err := gosql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	for _, s := range []string{fmt.Sprintf("SET threads = %d", runtime.NumCPU()), "SET memory_limit = '4GB'",
		"SET TimeZone = 'UTC'", "SET parquet_metadata_cache = true", "SET preserve_insertion_order = false"} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			t.Fatalf("DuckDB: %s: %v", s, err)
		}
	}
	return db
}

// duckRows runs a query in DuckDB and reads every row.
func duckRows(ctx context.Context, db *gosql.DB, q string) (int, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return 0, fmt.Errorf("DuckDB: %s: %w", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	n := 0
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

// duckText runs the query in DuckDB with every column cast to text, as
// textRows shows PostgreSQL's rows.
func duckText(t *testing.T, ctx context.Context, db *gosql.DB, q string) []string {
	t.Helper()
	r, err := db.QueryContext(ctx, "SELECT CAST(COLUMNS(*) AS VARCHAR) FROM ("+q+")")
	if err != nil {
		t.Fatalf("DuckDB: %s: %v", q, err)
	}
	defer r.Close()
	cols, _ := r.Columns()
	var out []string
	for r.Next() {
		vals := make([]gosql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := r.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(cols))
		for i, v := range vals {
			parts[i] = "∅"
			if v.Valid {
				parts[i] = v.String
			}
		}
		out = append(out, strings.Join(parts, " | "))
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkPG runs q through pgx and fails unless its rows are want.
func checkPG(t *testing.T, ctx context.Context, conn *pgx.Conn, what, q string, want []string) {
	t.Helper()
	got, err := textRows(ctx, conn, q)
	if err != nil {
		t.Fatalf("%s: %s: %v", what, q, err)
	}
	if d := sameResult(want, got, true); d != "" {
		t.Fatalf("%s: the answer differs from DuckDB's (shown as \"heap\"): %s", what, d)
	}
}

// runPG is a run of q through pgx, every row read.
func runPG(ctx context.Context, conn *pgx.Conn, q string) func() error {
	return func() error {
		_, err := textRows(ctx, conn, q)
		return err
	}
}

// interleaved runs each f once untimed, then runs rounds of all of them
// in turn, and returns each one's median.
func interleaved(t *testing.T, runs int, fs ...func() error) []time.Duration {
	t.Helper()
	times := make([][]time.Duration, len(fs))
	for round := -1; round < runs; round++ {
		for i, f := range fs {
			start := time.Now()
			if err := f(); err != nil {
				t.Fatal(err)
			}
			if round >= 0 {
				times[i] = append(times[i], time.Since(start))
			}
		}
	}
	out := make([]time.Duration, len(fs))
	for i := range fs {
		out[i] = percentile(sortedCopy(times[i]), 50)
	}
	return out
}

// medianOf runs f once untimed, then runs times, and returns the median.
func medianOf(t *testing.T, runs int, f func() error) time.Duration {
	t.Helper()
	if err := f(); err != nil {
		t.Fatal(err)
	}
	var ds []time.Duration
	for range runs {
		start := time.Now()
		if err := f(); err != nil {
			t.Fatal(err)
		}
		ds = append(ds, time.Since(start))
	}
	return percentile(sortedCopy(ds), 50)
}

// TestLakeParquetS3 reads the same kind of Parquet file from a real
// S3-compatible server (moto, started here, behind a proxy counting the
// bytes it sends): the bytes a narrow query (one of the 10 columns)
// transfers against the object's size, and times: the narrow query and
// the manual's aggregation cold (ranges fetched), then warm (from the
// sidecar's cache), against the same queries on the local file. Every
// answer must equal DuckDB's on the local file.
func TestLakeParquetS3(t *testing.T) {
	requireBench(t)
	ctx := context.Background()
	rows := envInt(t, "MOONCAKE_BENCH_ROWS", 10_000_000)
	runs := int(envInt(t, "MOONCAKE_BENCH_RUNS", 5))

	dir, err := os.MkdirTemp("", "lake-s3-bench-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	path := filepath.Join(dir, "events.parquet")
	duck := openLakeDuck(t, ctx)
	defer duck.Close()
	if _, err := duck.ExecContext(ctx, "COPY ("+strings.ReplaceAll(lakeSelect, "{rows}", fmt.Sprint(rows))+") TO "+
		catalog.QuoteLiteral(path)+" (FORMAT parquet, ROW_GROUP_SIZE 122880)"); err != nil {
		t.Fatalf("writing the Parquet file: %v", err)
	}
	os.Chmod(path, 0o644)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s3 := s3test.Start(t)
	s3.Bucket(t, "bench")
	start := time.Now()
	s3.Put(t, "bench", "events/events.parquet", data)
	figure("lake s3: %s rows, %.1f MiB of Parquet uploaded to moto in %s", thousands(float64(rows)), float64(len(data))/(1<<20), secs(time.Since(start)))

	// The store's own speed, for the cold times: one GET of the whole
	// object, straight to moto (not counted by the proxy).
	start = time.Now()
	obj, err := s3.Client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("bench"), Key: aws.String("events/events.parquet")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.Copy(io.Discard, obj.Body)
	obj.Body.Close()
	if err != nil || got != int64(len(data)) {
		t.Fatalf("GET of the object: %d bytes, %v", got, err)
	}
	getT := time.Since(start)
	// and ranged GETs of a column chunk's size, as the cache makes them
	const rangedN, rangedSize = 10, 512 << 10
	start = time.Now()
	for i := range rangedN {
		off := int64(i) * int64(len(data)) / rangedN
		obj, err := s3.Client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("bench"), Key: aws.String("events/events.parquet"),
			Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+rangedSize-1))})
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, obj.Body)
		obj.Body.Close()
	}
	figure("lake s3: the store serves one GET of the whole object at %.1f MiB/s, and takes %s per ranged GET of 512 KiB (one after another)",
		float64(len(data))/(1<<20)/getT.Seconds(), ms(time.Since(start)/rangedN))

	_, conn := startCluster(t, pgtest.WithSetting("pg_mooncake.lake_cache_size", "'4GB'"))
	mustExec(t, conn, s3.SecretSQL("bench", "s3://bench/"))
	remote := fmt.Sprintf("mooncake.read_parquet('s3://bench/events/events.parquet') AS (%s)", lakeColumns)
	local := fmt.Sprintf("mooncake.read_parquet(%s) AS (%s)", catalog.QuoteLiteral(path), lakeColumns)
	narrow := "SELECT count(*), sum(duration_ms) FROM {events}"
	render := func(q, src string) string { return strings.ReplaceAll(q, "{events}", src) }

	wantNarrow := duckText(t, ctx, duck, render(narrow, fmt.Sprintf("read_parquet(%s)", catalog.QuoteLiteral(path))))
	wantAgg := duckText(t, ctx, duck, render(lakeQuery, fmt.Sprintf("read_parquet(%s)", catalog.QuoteLiteral(path))))

	// cold: the first query of each kind fetches what it reads
	before := s3.Sent()
	start = time.Now()
	checkPG(t, ctx, conn, "narrow on S3", render(narrow, remote), wantNarrow)
	coldNarrow := time.Since(start)
	narrowBytes := s3.Sent() - before
	before = s3.Sent()
	start = time.Now()
	checkPG(t, ctx, conn, "aggregation on S3", render(lakeQuery, remote), wantAgg)
	coldAgg := time.Since(start)
	aggBytes := s3.Sent() - before

	// warm: nothing more comes
	before = s3.Sent()
	m := interleaved(t, runs, runPG(ctx, conn, render(narrow, remote)), runPG(ctx, conn, render(narrow, local)),
		runPG(ctx, conn, render(lakeQuery, remote)), runPG(ctx, conn, render(lakeQuery, local)))
	warmBytes := s3.Sent() - before

	size := float64(len(data))
	figure("lake s3: narrow query (1 of 10 columns): %.1f MiB transferred of %.1f MiB (%.1f%%), cold %s (%.1f MiB/s)",
		float64(narrowBytes)/(1<<20), size/(1<<20), 100*float64(narrowBytes)/size, ms(coldNarrow), float64(narrowBytes)/(1<<20)/coldNarrow.Seconds())
	figure("lake s3: the manual's aggregation (3 more columns): %.1f MiB more (%.1f%%), cold %s (%.1f MiB/s)",
		float64(aggBytes)/(1<<20), 100*float64(aggBytes)/size, ms(coldAgg), float64(aggBytes)/(1<<20)/coldAgg.Seconds())
	figure("lake s3: warm, median of %d: narrow %s (local file %s, %.2f), aggregation %s (local file %s, %.2f); %d bytes transferred",
		runs, ms(m[0]), ms(m[1]), ratio(m[0], m[1]), ms(m[2]), ms(m[3]), ratio(m[2], m[3]), warmBytes)
}
