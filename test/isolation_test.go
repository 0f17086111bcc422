package test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmooncake/mooncake/test/pgtest"
)

// fingerprint sums what a scan of the mirror reads, so that two reads of
// different rows differ.
const fingerprintQuery = `SELECT count(*), sum(bal), sum(id::bigint * bal), max(length(note)) FROM %s`

// TestRepeatableReadMirror: a REPEATABLE READ or SERIALIZABLE transaction
// reads a mirror as it was at its first read, statement after statement,
// while its source takes transfers, inserts and deletes and the mirror
// flushes to Iceberg under it; the next transaction reads the changes.
// The sidecar ends the transaction's pin once the backend has moved on
// (idle, another transaction, or gone).
func TestRepeatableReadMirror(t *testing.T) {
	c, conn := startMooncake(t)
	exec(t, conn, `CREATE TABLE acct (id int PRIMARY KEY, bal bigint NOT NULL, note text)`)
	exec(t, conn, `INSERT INTO acct SELECT g, 1000, 'n' || g FROM generate_series(1, 2000) g`)
	exec(t, conn, `CALL mooncake.create_table('acct_m', 'acct')`)
	pushedDown(t, conn, fmt.Sprintf(fingerprintQuery, "acct_m"))

	writes, stop := acctWorkload(t, c)
	defer stop()

	reader := c.Conn(t, "postgres")
	fp := func(q string) string {
		rows, err := reader.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		vals, err := pgx.CollectExactlyOneRow(rows, func(r pgx.CollectableRow) ([]any, error) { return r.Values() })
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(vals...)
	}
	for _, level := range []string{"REPEATABLE READ", "SERIALIZABLE"} {
		exec(t, reader, "BEGIN ISOLATION LEVEL "+level)
		first := fp(fmt.Sprintf(fingerprintQuery, "acct_m"))
		startWrites := writes.Load()
		// Through at least two flushes (every 2 s in these tests).
		deadline := time.Now().Add(5 * time.Second)
		reads := 0
		for time.Now().Before(deadline) {
			if got := fp(fmt.Sprintf(fingerprintQuery, "acct_m")); got != first {
				t.Fatalf("%s: read %d of the mirror gave %s, the first %s", level, reads+1, got, first)
			}
			// A join of the mirror with itself, pushed down whole, reads
			// the same rows.
			if got := fp(`SELECT count(*), sum(a.bal), sum(a.id::bigint * b.bal), max(length(b.note)) FROM acct_m a JOIN acct_m b USING (id) WHERE a.bal = b.bal`); got != first {
				t.Fatalf("%s: self-join counted %s rows, the mirror had %s", level, got, first)
			}
			reads++
			time.Sleep(100 * time.Millisecond)
		}
		// Idle in the transaction for longer than the sidecar's sweep
		// waits: the pin stays while the transaction lasts.
		time.Sleep(2500 * time.Millisecond)
		if got := fp(fmt.Sprintf(fingerprintQuery, "acct_m")); got != first {
			t.Fatalf("%s: after 2.5 s idle in the transaction the mirror read %s, the first %s", level, got, first)
		}
		if writes.Load()-startWrites < 100 {
			t.Fatalf("%s: the workload made only %d writes meanwhile", level, writes.Load()-startWrites)
		}
		if st := queryStatus(t, conn); st.ReadPins < 1 {
			t.Fatalf("%s: the sidecar holds %d read pins during the transaction", level, st.ReadPins)
		}
		// A statement failed in DuckDB (rolled back to a savepoint) has
		// aborted the pin's DuckDB transaction: the next read fails with
		// 40001 rather than read the mirror at another moment.
		exec(t, reader, "SAVEPOINT s")
		if _, err := reader.Exec(context.Background(), "SELECT 1 / (count(*) - count(*)) FROM acct_m"); sqlState(err) != "22012" {
			t.Fatalf("%s: division by zero gave %v", level, err)
		}
		exec(t, reader, "ROLLBACK TO SAVEPOINT s")
		if _, err := reader.Exec(context.Background(), fmt.Sprintf(fingerprintQuery, "acct_m")); sqlState(err) != "40001" {
			t.Fatalf("%s: a read after the pin was lost gave %v, want 40001", level, err)
		}
		exec(t, reader, "ROLLBACK")
		t.Logf("%s: %d reads of the mirror alike over 5 s while the source took %d writes", level, reads, writes.Load()-startWrites)

		// The next statement reads the mirror as it is now.
		if got := fp(fmt.Sprintf(fingerprintQuery, "acct_m")); got == first {
			t.Fatalf("%s: after COMMIT the mirror still reads %s", level, got)
		}
	}

	// A sidecar restarted in the middle of the transaction has lost its
	// pin: 40001, and the next transaction reads again.
	exec(t, reader, "BEGIN ISOLATION LEVEL REPEATABLE READ")
	fp(fmt.Sprintf(fingerprintQuery, "acct_m"))
	c.KillSidecar(t)
	c.WaitSidecar(t)
	for deadline := time.Now().Add(30 * time.Second); ; {
		exec(t, reader, "SAVEPOINT r")
		_, err := reader.Exec(context.Background(), fmt.Sprintf(fingerprintQuery, "acct_m"))
		if sqlState(err) == "08006" && time.Now().Before(deadline) { // the new sidecar is not there yet
			exec(t, reader, "ROLLBACK TO SAVEPOINT r")
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if sqlState(err) != "40001" {
			t.Fatalf("a read after the sidecar restarted gave %v, want 40001", err)
		}
		break
	}
	exec(t, reader, "ROLLBACK")
	exec(t, reader, "BEGIN ISOLATION LEVEL REPEATABLE READ")
	fp(fmt.Sprintf(fingerprintQuery, "acct_m"))
	fp(fmt.Sprintf(fingerprintQuery, "acct_m"))
	exec(t, reader, "COMMIT")

	// The pin ends when the backend is idle after its transaction.
	exec(t, reader, "BEGIN ISOLATION LEVEL REPEATABLE READ")
	fp(fmt.Sprintf(fingerprintQuery, "acct_m"))
	exec(t, reader, "COMMIT")
	if _, ok := waitFor(5*time.Second, func() bool { return queryStatus(t, conn).ReadPins == 0 }); !ok {
		t.Fatalf("the read pin of an ended transaction stayed: %d", queryStatus(t, conn).ReadPins)
	}
	// ... and when the backend goes away in the middle of one.
	gone := c.Conn(t, "postgres")
	exec(t, gone, "BEGIN ISOLATION LEVEL REPEATABLE READ")
	var pid int
	if err := gone.QueryRow(context.Background(), "SELECT count(*), pg_backend_pid() FROM acct_m").Scan(new(int64), &pid); err != nil {
		t.Fatal(err)
	}
	if st := queryStatus(t, conn); st.ReadPins != 1 {
		t.Fatalf("%d read pins, want 1", st.ReadPins)
	}
	exec(t, conn, "SELECT pg_terminate_backend($1)", pid)
	if _, ok := waitFor(5*time.Second, func() bool { return queryStatus(t, conn).ReadPins == 0 }); !ok {
		t.Fatalf("the read pin of a terminated backend stayed: %d", queryStatus(t, conn).ReadPins)
	}

	// A column added to the source after the transaction's first read of
	// the mirrors (of another mirror: a read of acct_m would hold its lock
	// and make the ALTER wait for the transaction): the mirror follows.
	exec(t, conn, `CREATE TABLE other (id int PRIMARY KEY)`)
	exec(t, conn, `INSERT INTO other VALUES (1)`)
	exec(t, conn, `CALL mooncake.create_table('other_m', 'other')`)
	exec(t, reader, "BEGIN ISOLATION LEVEL REPEATABLE READ")
	if n := queryInt(t, reader, "SELECT count(*) FROM other_m"); n != 1 {
		t.Fatalf("other_m has %d rows", n)
	}
	exec(t, conn, "ALTER TABLE acct ADD COLUMN extra int")
	exec(t, conn, "UPDATE acct SET extra = 1 WHERE id = 5")
	if _, ok := waitFor(10*time.Second, func() bool {
		return queryInt(t, conn, "SELECT count(extra) FROM acct_m") == 1
	}); !ok {
		t.Fatal("the mirror never got the new column's value")
	}
	// Its pin holds the mirror as it was before the column: reading
	// the column fails with 40001 (PostgreSQL would read NULLs from the
	// transaction's snapshot; the pin cannot show the column), and the
	// next transaction reads it.
	if _, err := reader.Exec(context.Background(), "SELECT count(extra) FROM acct_m"); sqlState(err) != "40001" {
		t.Fatalf("reading a column added after the pin's moment gave %v, want 40001", err)
	}
	exec(t, reader, "ROLLBACK")
	if n := queryInt(t, reader, "SELECT count(extra) FROM acct_m"); n != 1 {
		t.Fatalf("the next transaction counted %d values of the new column", n)
	}

	stop()
	waitConverged(t, conn, "acct", "acct_m", 30*time.Second)
}

// acctWorkload runs, until stop, transfers between the rows of acct (they
// keep the total), inserts, deletes and updates of the note; writes
// counts them.
func acctWorkload(t *testing.T, c *pgtest.Cluster) (writes *atomic.Int64, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	writes = new(atomic.Int64)
	var wg sync.WaitGroup
	writer := c.Conn(t, "postgres")
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			var err error
			switch i % 4 {
			case 0, 1:
				_, err = writer.Exec(ctx, `WITH a AS (UPDATE acct SET bal = bal - 7 WHERE id = $1), b AS (UPDATE acct SET bal = bal + 7 WHERE id = $2) SELECT`, 1+i%1999, 2+(i*7)%1998)
			case 2:
				_, err = writer.Exec(ctx, `INSERT INTO acct VALUES ($1, 5, repeat('x', $2 % 50))`, 10000+i, i)
			case 3:
				_, err = writer.Exec(ctx, `DELETE FROM acct WHERE id = $1`, 3+(i*13)%1990)
			}
			if err != nil {
				if ctx.Err() == nil {
					t.Error(err)
				}
				return
			}
			writes.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	})
	return writes, func() {
		cancel()
		wg.Wait()
	}
}

// TestStatementReadsOneMoment: a READ COMMITTED statement that reads a
// mirror more than once (two subqueries, a CTE beside a subquery, a
// correlated subquery run once per row, a function's statements between
// them) reads it as of one moment in all its scans, as a statement reads
// a heap table, while the source takes transfers, inserts and deletes and
// the mirror flushes under it. The sidecar lets the statements' pins go
// once they end.
func TestStatementReadsOneMoment(t *testing.T) {
	c, conn := startMooncake(t)
	exec(t, conn, `CREATE TABLE acct (id int PRIMARY KEY, bal bigint NOT NULL, note text)`)
	exec(t, conn, `INSERT INTO acct SELECT g, 1000, 'n' || g FROM generate_series(1, 2000) g`)
	exec(t, conn, `CALL mooncake.create_table('acct_m', 'acct')`)
	exec(t, conn, `CREATE TABLE filler (id int PRIMARY KEY)`)
	exec(t, conn, `INSERT INTO filler SELECT generate_series(1, 400000)`)
	exec(t, conn, `CALL mooncake.create_table('filler_m', 'filler')`)
	exec(t, conn, `CREATE TABLE ks (k int)`)
	exec(t, conn, `INSERT INTO ks SELECT generate_series(1, 20)`)
	exec(t, conn, `CREATE FUNCTION fp_now() RETURNS text LANGUAGE plpgsql VOLATILE AS
		$$ BEGIN RETURN (SELECT row(count(*), sum(id::bigint * bal))::text FROM acct_m); END $$`)
	const fp = `(SELECT row(count(*), sum(bal), sum(id::bigint * bal), max(length(note)))::text FROM acct_m)`
	queries := []struct{ name, sql string }{
		{"two subqueries", `SELECT ` + fp + `, ` + fp},
		{"a CTE and a subquery", `WITH a AS MATERIALIZED (SELECT ` + fp + ` AS v) SELECT a.v, ` + fp + ` FROM a`},
		{"a function's statement between two subqueries", `SELECT ` + fp + `, fp_now() IS NOT NULL, ` + fp},
		{"a correlated subquery, once per row", `SELECT min(v), max(v) FROM (SELECT (SELECT row(count(*), sum(id::bigint * bal))::text FROM acct_m WHERE id > ks.k * 0) AS v FROM ks) s`},
		// The outer scan's 400,000 rows are still streaming from the
		// sidecar when the subquery first runs: its scan has the outer
		// one's result read to its end first (spilled), then runs in the
		// statement's DuckDB transaction.
		{"a correlated subquery, once per row of a mirror's scan", `SELECT min(v), max(v) FROM (SELECT CASE WHEN f.id % 40000 = 0 THEN
			(SELECT row(count(*), sum(id::bigint * bal))::text FROM acct_m WHERE id > f.id * 0) END AS v FROM filler_m f) s`},
	}
	for _, q := range queries {
		rows, err := conn.Query(context.Background(), "EXPLAIN (COSTS OFF) "+q.sql)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		plan := strings.Join(lines, "\n")
		if n := strings.Count(plan, "Foreign Scan"); n < 1 || (n < 2 && !strings.Contains(q.name, "correlated")) {
			t.Fatalf("%s: %d foreign scans in the plan:\n%s", q.name, n, plan)
		}
	}

	writes, stop := acctWorkload(t, c)
	defer stop()
	reader := c.Conn(t, "postgres")
	start := writes.Load()
	deadline := time.Now().Add(5 * time.Second)
	reads := 0
	for time.Now().Before(deadline) {
		for _, q := range queries {
			var a, b string
			var mid any
			var err error
			if strings.Contains(q.name, "function") {
				err = reader.QueryRow(context.Background(), q.sql).Scan(&a, &mid, &b)
			} else {
				err = reader.QueryRow(context.Background(), q.sql).Scan(&a, &b)
			}
			if err != nil {
				t.Fatalf("%s: %v", q.name, err)
			}
			if a != b {
				t.Fatalf("%s: one statement read the mirror as %s and as %s (after %d statements)", q.name, a, b, reads)
			}
			reads++
		}
	}
	// A cursor's statement, read by FETCH after FETCH with the backend
	// idle in between for longer than the sidecar's sweep waits, reads
	// one moment in all its scans.
	exec(t, reader, "BEGIN")
	exec(t, reader, `DECLARE c CURSOR FOR SELECT ks.k, (SELECT row(count(*), sum(id::bigint * bal))::text FROM acct_m WHERE id > ks.k * 0) FROM ks ORDER BY ks.k`)
	var seen []string
	for i := 0; i < 4; i++ {
		rows, err := reader.Query(context.Background(), "FETCH 5 FROM c")
		if err != nil {
			t.Fatal(err)
		}
		vals, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
			var k int
			var v string
			err := r.Scan(&k, &v)
			return v, err
		})
		if err != nil {
			t.Fatalf("FETCH %d: %v", i+1, err)
		}
		seen = append(seen, vals...)
		time.Sleep(1500 * time.Millisecond)
	}
	exec(t, reader, "COMMIT")
	for _, v := range seen {
		if v != seen[0] {
			t.Fatalf("the cursor read the mirror as %s and as %s", seen[0], v)
		}
	}
	if len(seen) != 20 {
		t.Fatalf("the cursor gave %d rows", len(seen))
	}

	if w := writes.Load() - start; w < 100 {
		t.Fatalf("the workload made only %d writes meanwhile", w)
	}
	t.Logf("%d statements read the mirror alike in all their scans while the source took %d writes", reads, writes.Load()-start)
	if _, ok := waitFor(5*time.Second, func() bool { return queryStatus(t, conn).ReadPins == 0 }); !ok {
		t.Fatalf("the read pins of ended statements stayed: %d", queryStatus(t, conn).ReadPins)
	}
	stop()
	waitConverged(t, conn, "acct", "acct_m", 30*time.Second)
}
