package bench

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestDeleteFilesQueries measures queries on a mirror whose rows were
// updated over several flushes, so that its data files have rows deleted
// by position delete files, against the same queries once optimize_table
// compacted it (no delete files): what a mirror of a table taking updates
// costs to query between two compactions. MOONCAKE_BENCH_ROWS rows
// (default 1,000,000) × 4 columns; MOONCAKE_BENCH_DELETE_FILES flushes
// (default 7: one fewer than a compaction starts at), each updating one row
// in 1,000 across the whole table. Median of MOONCAKE_BENCH_RUNS runs
// (default 9) of each query, every run with other literals so that no
// answer is reused.
func TestDeleteFilesQueries(t *testing.T) {
	requireBench(t)
	ctx := context.Background()
	rows := envInt(t, "MOONCAKE_BENCH_ROWS", 1000000)
	deleteFiles := envInt(t, "MOONCAKE_BENCH_DELETE_FILES", 7)
	runs := int(envInt(t, "MOONCAKE_BENCH_RUNS", 9))
	_, conn := startCluster(t)
	mustExec(t, conn, `CREATE TABLE d (id bigint PRIMARY KEY, a int, b text, c double precision)`)
	mustExec(t, conn, `INSERT INTO d SELECT g, g % 1000, 'text ' || g, g * 1.5 FROM generate_series(1, $1::bigint) g`, rows)
	mustExec(t, conn, `VACUUM ANALYZE d`)
	mustExec(t, conn, `CALL mooncake.create_table('d_m', 'd')`)

	queries := []struct{ name, sql string }{
		{"count with a filter", `SELECT count(*) FROM d_m WHERE a > -1 - $1::int`},
		{"sums with a filter", `SELECT sum(a)::text || ' ' || sum(c)::text FROM d_m WHERE id > -$1::bigint`},
		{"grouping", `SELECT string_agg(a::text || ':' || n::text, ',') FROM (SELECT a, count(*) AS n FROM d_m WHERE id > -$1::bigint GROUP BY a ORDER BY n DESC, a LIMIT 3) x`},
		{"a range of keys", `SELECT count(*)::text || ' ' || sum(c)::text FROM d_m WHERE id BETWEEN 1000 + $1::bigint AND 51000 + $1::bigint`},
	}
	literal := int64(0)
	measure := func(sql string, table string) (time.Duration, string) {
		var answer string
		d := medianOf(t, runs, func() error {
			literal++
			q := strings.ReplaceAll(sql, "d_m", table)
			return conn.QueryRow(ctx, q, literal%5).Scan(&answer)
		})
		return d, answer
	}
	files := func() (int64, int64) {
		var data, dels int64
		if err := conn.QueryRow(ctx, `SELECT data_files, delete_files FROM mooncake.columnstore_tables WHERE table_name = 'd_m'`).Scan(&data, &dels); err != nil {
			t.Fatal(err)
		}
		return data, dels
	}

	for i := range deleteFiles {
		mustExec(t, conn, `UPDATE d SET a = a + 1, c = c + 0.5 WHERE id % 1000 = $1`, i+1)
		deadline := time.Now().Add(60 * time.Second)
		for {
			if _, dels := files(); dels >= i+1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the mirror has no delete file for update %d after 60 s", i+1)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	data, dels := files()
	figure("mirror: %s rows, %d data files, %d delete files (%s rows deleted by position)",
		thousands(float64(rows)), data, dels, thousands(float64(rows/1000*dels)))
	withDeletes := make([]time.Duration, len(queries))
	answers := make([]string, len(queries))
	for i, q := range queries {
		withDeletes[i], answers[i] = measure(q.sql, "d_m")
		_, heap := measure(q.sql, "d")
		if heap != answers[i] {
			t.Errorf("%s: the mirror answered %q, the heap %q", q.name, answers[i], heap)
		}
	}
	mustExec(t, conn, `CALL mooncake.optimize_table('d_m')`)
	data, dels = files()
	figure("after optimize_table: %d data file(s), %d delete files", data, dels)
	for i, q := range queries {
		compacted, answer := measure(q.sql, "d_m")
		if answer != answers[i] {
			t.Errorf("%s: %q after optimize_table, %q before", q.name, answer, answers[i])
		}
		figure("%-20s with delete files %s, compacted %s: %.2f×", q.name, ms(withDeletes[i]), ms(compacted),
			float64(withDeletes[i])/float64(compacted))
	}
}
