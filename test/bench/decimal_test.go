package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/pgmooncake/mooncake/catalog"
)

// TestDecimalLayouts weighs ways of storing a numeric(12,2) column in
// Parquet for the manual's aggregation (SELECT k % 100, count(*),
// sum(amount), avg(amount) ... GROUP BY 1 ORDER BY 1), all in DuckDB in
// this process, on MOONCAKE_BENCH_ROWS rows (default 10,000,000):
//
//   - DECIMAL(12,2): the baseline, what DuckDB reads from its own files;
//   - DECIMAL(12,2) beside a BOOLEAN NaN flag, NULL in every row (NaN in
//     a DECIMAL is impossible; numeric(p,s) holds NaN but no infinity):
//     the flag not read (a reader that knows the file holds no NaN, from
//     its column statistics), read with bool_or, read with count;
//   - one DECIMAL(13,2) with NaN as 10^10 (above every value, as
//     PostgreSQL orders NaN), made from the pair by a CASE per row;
//   - the text numeric_out writes (what mirrors store today), cast or
//     TRY_CAST to DECIMAL(12,2).
//
// Each query runs in three rounds of one warm-up and five timed runs, the
// rounds interleaved so that other work on the machine weighs on every
// layout alike; the best time of each is printed with its ratio to the
// baseline. Every query must return 100 rows.
func TestDecimalLayouts(t *testing.T) {
	requireBench(t)
	ctx := context.Background()
	n := envInt(t, "MOONCAKE_BENCH_ROWS", 10_000_000)
	duck := openDuck(t, ctx)
	defer duck.Close()
	dir := t.TempDir()
	file := func(name string) string { return catalog.QuoteLiteral(filepath.Join(dir, name)) }
	src := fmt.Sprintf(`SELECT g AS id, CAST((g * 7919) %% 10007 AS INTEGER) AS k,
		CAST(((g * 37) %% 1000000) / 100.0 AS DECIMAL(12,2)) AS amount FROM range(1, %d) t(g)`, n+1)
	for _, q := range []string{
		`COPY (` + src + `) TO ` + file("dec.parquet") + ` (FORMAT parquet, COMPRESSION zstd)`,
		`COPY (SELECT id, k, amount, CAST(NULL AS BOOLEAN) AS amount_nan FROM (` + src + `)) TO ` + file("decnan.parquet") + ` (FORMAT parquet, COMPRESSION zstd)`,
		`COPY (SELECT id, k, CAST(amount AS VARCHAR) AS amount FROM (` + src + `)) TO ` + file("text.parquet") + ` (FORMAT parquet, COMPRESSION zstd)`,
	} {
		if _, err := duck.ExecContext(ctx, q); err != nil {
			t.Fatalf("DuckDB: %s: %v", q, err)
		}
	}
	const group = ` GROUP BY 1 ORDER BY 1`
	layouts := []struct{ name, sql string }{
		{"DECIMAL(12,2)", `SELECT k % 100, count(*), sum(amount), avg(amount) FROM read_parquet(` + file("dec.parquet") + `)` + group},
		{"DECIMAL(12,2) + NaN flag, flag not read", `SELECT k % 100, count(*), sum(amount), avg(amount) FROM read_parquet(` + file("decnan.parquet") + `)` + group},
		{"DECIMAL(12,2) + NaN flag, bool_or(flag)", `SELECT k % 100, count(*), sum(amount), avg(amount), bool_or(amount_nan) FROM read_parquet(` + file("decnan.parquet") + `)` + group},
		{"DECIMAL(12,2) + NaN flag, count(flag)", `SELECT k % 100, count(*), sum(amount), avg(amount), count(amount_nan) FROM read_parquet(` + file("decnan.parquet") + `)` + group},
		{"DECIMAL(13,2) with NaN as 10^10 (CASE)", `SELECT k % 100, count(*), sum(a), avg(a) FROM (SELECT k, CASE WHEN amount_nan THEN CAST('10000000000' AS DECIMAL(13,2)) ELSE CAST(amount AS DECIMAL(13,2)) END AS a FROM read_parquet(` + file("decnan.parquet") + `))` + group},
		{"text, CAST", `SELECT k % 100, count(*), sum(CAST(amount AS DECIMAL(12,2))), avg(CAST(amount AS DECIMAL(12,2))) FROM read_parquet(` + file("text.parquet") + `)` + group},
		{"text, TRY_CAST and count", `SELECT k % 100, count(*), sum(TRY_CAST(amount AS DECIMAL(12,2))), avg(TRY_CAST(amount AS DECIMAL(12,2))), count(amount) FROM read_parquet(` + file("text.parquet") + `)` + group},
	}
	best := make([]time.Duration, len(layouts))
	for round := 0; round < 3; round++ {
		for i, l := range layouts {
			if b := duckTimes(t, ctx, duck, l.sql, 5).best; round == 0 || b < best[i] {
				best[i] = b
			}
		}
	}
	for i, l := range layouts {
		figure("decimal: %s rows, the manual's aggregation, amount as %-42s best %7.1f ms, %.2f × DECIMAL(12,2)",
			thousands(float64(n)), l.name, float64(best[i].Microseconds())/1000, ratio(best[i], best[0]))
	}
}
