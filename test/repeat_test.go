package test

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestRepeatedQueries runs the same queries on mirrors again and again
// while their sources change, and compares each answer with the heap's.
// The sidecar keeps DuckDB's prepared statements of repeated scans, and
// DuckDB plans with the statistics of the tables it reads (a filter all
// of the tail's rows pass is dropped from the plan): a statement reused
// over a tail that took rows since would count rows its filter excludes.
// It also keeps small answers of queries over files alone: each query
// runs twice, the second answered from the cache when nothing changed.
// Each round changes the sources (rows that pass the filters, then rows
// that do not, updates, deletes) and, every other round of the later
// ones, compacts the mirrors (optimize_table; their next flush brings them
// back to their files alone); a primary-key
// mirror, a REPLICA IDENTITY FULL one, and one created empty, which reads
// its tail alone until its first flush.
func TestRepeatedQueries(t *testing.T) {
	_, conn := startMooncake(t)
	for _, ddl := range []string{
		`CREATE TABLE rk (id bigint PRIMARY KEY, d date NOT NULL, v int, s text)`,
		`CREATE TABLE rf (id bigint, d date NOT NULL, v int, s text)`,
		`ALTER TABLE rf REPLICA IDENTITY FULL`,
		`INSERT INTO rk SELECT g, date '2099-01-01' + g % 50, g % 13, 's' || g % 7 FROM generate_series(1, 300) g`,
		`INSERT INTO rf SELECT * FROM rk`,
		`CALL mooncake.create_table('rk_m', 'rk')`,
		`CALL mooncake.create_table('rf_m', 'rf')`,
		`CALL mooncake.optimize_table('rk_m')`,
		`CALL mooncake.optimize_table('rf_m')`,
		// no data file until the first optimize: its view is the tail alone
		`CREATE TABLE re (id bigint PRIMARY KEY, d date NOT NULL, v int, s text)`,
		`CALL mooncake.create_table('re_m', 're')`,
	} {
		exec(t, conn, ddl)
	}
	sources := []string{"rk", "rf", "re"}
	queries := []string{
		`SELECT count(*), sum(v) FROM %s WHERE d >= date '2099-01-01'`,
		`SELECT s, count(*), sum(v), min(d), max(d) FROM %s WHERE d >= date '2099-01-20' GROUP BY s ORDER BY s`,
		`SELECT count(*) FROM %s WHERE v < 5`,
		`SELECT count(*) FROM %s`,
		`SELECT id, v, s FROM %s WHERE id = 7`,
		`SELECT id, d FROM %s WHERE d < date '2099-01-03' ORDER BY id`,
	}
	check := func(round int) {
		t.Helper()
		for _, src := range sources {
			for _, q := range queries {
				want := rowsText(textRows(t, conn, fmt.Sprintf(q, src)))
				for rep := 0; rep < 2; rep++ {
					got := rowsText(textRows(t, conn, fmt.Sprintf(q, src+"_m")))
					if got != want {
						t.Fatalf("round %d, run %d: %s:\n%s\nthe source:\n%s", round, rep, fmt.Sprintf(q, src+"_m"), got, want)
					}
				}
			}
		}
	}
	rng := rand.New(rand.NewSource(7))
	next := int64(1000)
	both := func(stmt string, args ...any) {
		t.Helper()
		for _, src := range sources {
			exec(t, conn, strings.ReplaceAll(fmt.Sprintf(stmt, args...), "{t}", src))
		}
	}
	check(0)
	for round := 1; round <= 12; round++ {
		switch round % 4 {
		case 1: // rows every filter above lets through
			both(`INSERT INTO {t} VALUES (%d, date '2099-02-01', 1, 's1'), (%d, date '2099-02-11', 2, 's1')`, next, next+1)
		case 2: // rows the date filters exclude
			both(`INSERT INTO {t} VALUES (%d, date '2000-01-01', 9, 's2'), (%d, date '2000-02-01', 3, 's2')`, next, next+1)
		case 3:
			both(`UPDATE {t} SET d = date '1999-12-31', v = v + 100 WHERE id IN (SELECT id FROM {t} ORDER BY id LIMIT 1 OFFSET %d)`, rng.Intn(50))
		case 0:
			both(`DELETE FROM {t} WHERE id IN (SELECT id FROM {t} ORDER BY id LIMIT 2 OFFSET %d)`, rng.Intn(50))
		}
		next += 10
		check(round)
		if round%2 == 0 && round > 4 {
			for _, src := range sources {
				exec(t, conn, `CALL mooncake.optimize_table('`+src+`_m')`)
			}
			check(round)
		}
	}
	// The repeated queries on files alone were answered from the kept
	// answers (sql/resultcache.go); the samples of ANALYZE, which are not
	// kept, ran their prepared statements again.
	if n := queryInt(t, conn, `SELECT (mooncake.sidecar_request('{"op":"status"}')->'queries'->>'results_reused')::int`); n == 0 {
		t.Errorf("no answer was reused")
	}
	// A mirror is read as its files alone again after its next flush
	// (every 2 s here; optimize_table compacts the files, not the tail):
	// the same count answered from the cache tells it is.
	reused := func(what string) int64 {
		return queryInt(t, conn, `SELECT (mooncake.sidecar_request('{"op":"status"}')->'queries'->>'`+what+`')::int`)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		before := reused("results_reused")
		queryInt(t, conn, "SELECT count(*) FROM rk_m")
		queryInt(t, conn, "SELECT count(*) FROM rk_m")
		if reused("results_reused") > before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rk_m is not read as its files alone 20 s after its last change")
		}
	}
	for range 3 {
		exec(t, conn, "ANALYZE rk_m")
	}
	if n := reused("statements_reused"); n == 0 {
		t.Errorf("no statement was reused")
	}
}

// planned is how many "plan" requests the sidecar has answered.
func planned(t *testing.T, conn *pgx.Conn) int64 {
	t.Helper()
	return queryInt(t, conn, `SELECT (mooncake.sidecar_request('{"op":"status"}')->'queries'->>'planned')::bigint`)
}

// TestPlanCache: a backend keeps the sidecar's answers to planning for
// pg_mooncake.plan_cache_time, and asks again after it, after the
// session committed anything, once a foreign table changed, and always
// with the setting at 0; the answers stay those of the mirrors as they are.
func TestPlanCache(t *testing.T) {
	c, conn := startMooncake(t)
	for _, s := range []string{
		`CREATE TABLE pc (id bigint PRIMARY KEY, v int)`,
		`INSERT INTO pc SELECT g, g % 10 FROM generate_series(1, 100) g`,
		`CALL mooncake.create_table('pc_m', 'pc')`,
	} {
		exec(t, conn, s)
	}
	const q = `SELECT count(*) FROM pc_m WHERE v < 5`
	// Each run planned anew, as psql's queries are (pgx would keep the
	// plan of a prepared statement).
	unprepared := func(sqlText string) string {
		t.Helper()
		res := conn.PgConn().ExecParams(context.Background(), sqlText, nil, nil, nil, nil).Read()
		if res.Err != nil || len(res.Rows) != 1 {
			t.Fatalf("%s: %v", sqlText, res.Err)
		}
		return string(res.Rows[0][0])
	}
	run := func(n int) int64 {
		t.Helper()
		before := planned(t, conn)
		for i := 0; i < n; i++ {
			if got, want := unprepared(q), unprepared(`SELECT count(*) FROM pc WHERE v < 5`); got != want {
				t.Fatalf("%s: %s, want %s", q, got, want)
			}
		}
		return planned(t, conn) - before
	}
	run(1)
	if n := run(10); n != 0 {
		t.Errorf("10 plannings within pg_mooncake.plan_cache_time asked the sidecar %d times; want 0", n)
	}
	exec(t, conn, `SET pg_mooncake.plan_cache_time = 0`)
	if n := run(5); n < 5 {
		t.Errorf("5 plannings with pg_mooncake.plan_cache_time = 0 asked the sidecar %d times; want at least 5", n)
	}
	exec(t, conn, `SET pg_mooncake.plan_cache_time = '300ms'`)
	run(1)
	time.Sleep(400 * time.Millisecond)
	if n := run(1); n == 0 {
		t.Errorf("a planning after pg_mooncake.plan_cache_time did not ask the sidecar")
	}
	exec(t, conn, `SET pg_mooncake.plan_cache_time = '1h'`)
	run(1)
	// A commit in the session: asked again (rows keep matching).
	exec(t, conn, `INSERT INTO pc VALUES (1000, 1)`)
	if n := run(1); n == 0 {
		t.Errorf("a planning after the session committed did not ask the sidecar")
	}
	// A column added to the source, committed by another session: the
	// foreign table follows, and the new column is planned and read.
	other, err := pgx.Connect(context.Background(), c.ConnString("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	run(1)
	if _, err := other.Exec(context.Background(), `ALTER TABLE pc ADD COLUMN w int DEFAULT 7`); err != nil {
		t.Fatal(err)
	}
	if _, ok := waitFor(10*time.Second, func() bool {
		return queryInt(t, conn, `SELECT count(*) FROM pg_attribute WHERE attrelid = 'pc_m'::regclass AND attname = 'w' AND NOT attisdropped`) == 1
	}); !ok {
		t.Fatal("the foreign table did not get the new column")
	}
	if got, want := unprepared(`SELECT sum(w) FROM pc_m WHERE v < 5`), unprepared(`SELECT sum(w) FROM pc WHERE v < 5`); got != want {
		t.Errorf("sum(w) after ADD COLUMN: %s, want %s", got, want)
	}
	// The foreign table changed: what was kept is gone, asked once again.
	if n := run(3); n < 1 || n > 2 {
		t.Errorf("3 plannings after the foreign table changed asked the sidecar %d times; want 1 (or 2)", n)
	}
}
