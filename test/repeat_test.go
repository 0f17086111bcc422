package test

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

// TestRepeatedQueries runs the same queries on mirrors again and again
// while their sources change, and compares each answer with the heap's.
// The sidecar keeps DuckDB's prepared statements of repeated scans, and
// DuckDB plans with the statistics of the tables it reads (a filter all
// of the tail's rows pass is dropped from the plan): a statement reused
// over a tail that took rows since would count rows its filter excludes.
// Each round changes the sources (rows that pass the filters, then rows
// that do not, updates, deletes) and, every other round of the later
// ones, flushes the mirrors back to their files alone; a primary-key
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
}
