package bench

import (
	"context"
	"io"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// copyDDL and copyInsert make a 12-column table of the common types, with
// NULLs and text of every length, about 160 bytes a row.
const copyDDL = `CREATE TABLE src (
	id bigint PRIMARY KEY, i integer, s smallint, r real, d double precision, n numeric(12,3),
	t text, v varchar(20), b boolean, dt date, ts timestamp, tz timestamptz)`

const copyInsert = `INSERT INTO src SELECT g,
	CASE WHEN g % 7 = 0 THEN NULL ELSE (g * 37) % 2000000 - 1000000 END,
	CASE WHEN g % 11 = 0 THEN NULL ELSE (g % 65535) - 32767 END,
	CASE WHEN g % 13 = 0 THEN NULL ELSE (g * 1.37)::real / 7 END,
	CASE WHEN g % 17 = 0 THEN NULL ELSE g * 3.14159265358979 / 11 END,
	CASE WHEN g % 19 = 0 THEN NULL ELSE round((g * 12.3457)::numeric % 999999999, 3) END,
	CASE WHEN g % 23 = 0 THEN NULL ELSE 'text ' || md5(g::text) || ' ' || repeat('x', (g % 40)::int) END,
	CASE WHEN g % 31 = 0 THEN NULL ELSE left(md5(g::text), (g % 20)::int) END,
	CASE WHEN g % 3 = 0 THEN NULL ELSE g % 2 = 0 END,
	CASE WHEN g % 37 = 0 THEN NULL ELSE date '2000-01-01' + (g % 20000)::int - 10000 END,
	CASE WHEN g % 41 = 0 THEN NULL ELSE timestamp '1990-01-01' + g * interval '1 minute 7.123456 seconds' END,
	CASE WHEN g % 43 = 0 THEN NULL ELSE timestamptz '1990-01-01 00:00:00+00' + g * interval '3 minutes 1.654321 seconds' END
FROM generate_series(1, $1::bigint) g`

// TestInitialCopy measures create_table's initial copy and resync_table of
// a table of MOONCAKE_BENCH_ROWS rows (default 1,000,000) × 12 columns
// against COPY ... TO STDOUT (FORMAT binary) of the same table read by a
// client that discards it: the rate at which PostgreSQL hands the rows out
// (issue 15's target: the copy at 0.8× of it or better). Best of
// MOONCAKE_BENCH_RUNS runs (default 3) of each. MOONCAKE_COPY_WORKERS=1
// copies with one session, as before the copy was split.
func TestInitialCopy(t *testing.T) {
	requireBench(t)
	ctx := context.Background()
	rows := envInt(t, "MOONCAKE_BENCH_ROWS", 1000000)
	runs := int(envInt(t, "MOONCAKE_BENCH_RUNS", 3))
	c, conn := startCluster(t)
	// The progress NOTICE at the end of the copy phase tells how long it took
	// (the rows are written into the data file as they arrive): the rest is
	// finishing the file and committing it.
	cfg, err := pgx.ParseConfig(c.ConnString("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	copied := regexp.MustCompile(`writing them into the mirror's data files, ([0-9.]+) s`)
	var copyPhase time.Duration
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if m := copied.FindStringSubmatch(n.Message); m != nil {
			f, _ := strconv.ParseFloat(m[1], 64)
			copyPhase = time.Duration(f * float64(time.Second))
		}
	}
	if conn, err = pgx.ConnectConfig(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	mustExec(t, conn, copyDDL)
	mustExec(t, conn, copyInsert, rows)
	mustExec(t, conn, "VACUUM ANALYZE src")
	var size int64
	if err := conn.QueryRow(ctx, "SELECT pg_table_size('src')").Scan(&size); err != nil {
		t.Fatal(err)
	}
	figure("table: %s rows × 12 columns, %s MB", thousands(float64(rows)), thousands(float64(size)/1e6))

	best := func(ds []time.Duration) time.Duration { return sortedCopy(ds)[0] }
	var copies, creates, resyncs []time.Duration
	for r := range runs {
		start := time.Now()
		if _, err := conn.PgConn().CopyTo(ctx, io.Discard, "COPY src TO STDOUT (FORMAT binary)"); err != nil {
			t.Fatal(err)
		}
		copies = append(copies, time.Since(start))

		start = time.Now()
		copyPhase = 0
		mustExec(t, conn, "CALL mooncake.create_table('m', 'src')")
		creates = append(creates, time.Since(start))
		createCopy := copyPhase
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM m").Scan(&n); err != nil || n != rows {
			t.Fatalf("the mirror has %d rows (%v); want %d", n, err, rows)
		}

		start = time.Now()
		mustExec(t, conn, "CALL mooncake.resync_table('m')")
		resyncs = append(resyncs, time.Since(start))
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM m").Scan(&n); err != nil || n != rows {
			t.Fatalf("the mirror has %d rows after resync_table (%v); want %d", n, err, rows)
		}
		mustExec(t, conn, "DROP FOREIGN TABLE m")
		phase := "" // no NOTICE when the copy ends before the first is due
		if createCopy > 0 {
			phase = " (copying " + secs(createCopy) + ", then finishing the data file)"
		}
		figure("run %d: COPY binary %s, create_table %s%s, resync_table %s",
			r+1, secs(copies[r]), secs(creates[r]), phase, secs(resyncs[r]))
	}
	cp, cr, rs := best(copies), best(creates), best(resyncs)
	figure("best: COPY binary %s, create_table %s (%.2f× COPY's rate), resync_table %s (%.2f×); target 0.8×",
		secs(cp), secs(cr), ratio(cp, cr), secs(rs), ratio(cp, rs))
}
