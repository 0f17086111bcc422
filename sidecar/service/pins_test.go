package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmooncake/mooncake/sql"
)

// TestPins: a pinned transaction reads a view as it was when it first read
// it, through what a flush does to a mirror's DuckDB objects (rows
// appended and deleted, the view replaced over another table, the old
// table dropped); the pin serves one scan at a time, and ends with its
// backend's transaction or after a failed scan.
func TestPins(t *testing.T) {
	eng, run := pinTestEngine(t, "tail1", 10)
	ctx := context.Background()
	count := func(opts sql.QueryOptions) int64 {
		t.Helper()
		rdr, release, err := eng.QueryWith(ctx, `SELECT count(*) FROM pg_test.main.v`, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		var n int64
		for rdr.Next() {
			rec := rdr.RecordBatch()
			n = rec.Column(0).(*array.Int64).Value(0)
		}
		return n
	}

	var ps pins
	key := pinKey{database: "test", pid: 7, xact: 100}
	p, err := ps.take(ctx, eng, key, false)
	if err != nil || p == nil {
		t.Fatalf("take: %v %v", p, err)
	}
	if n := count(sql.QueryOptions{Conn: p.conn}); n != 10 {
		t.Fatalf("pinned count %d, want 10", n)
	}
	p.started(nil)
	ps.done(p, nil, false)

	// A flush: rows move to another table, the view is replaced, the old
	// table dropped; the tail takes more rows.
	run(`CREATE TABLE pg_test.main.tail2 AS SELECT range AS id FROM range(25)`)
	run(`CREATE OR REPLACE VIEW pg_test.main.v AS SELECT * FROM pg_test.main.tail2`)
	run(`DROP TABLE pg_test.main.tail1`)
	run(`DELETE FROM pg_test.main.tail2 WHERE id < 5`)
	if n := count(sql.QueryOptions{}); n != 20 {
		t.Fatalf("unpinned count %d, want 20", n)
	}
	p, err = ps.take(ctx, eng, key, false)
	if err != nil || p == nil {
		t.Fatalf("take again: %v %v", p, err)
	}
	if n := count(sql.QueryOptions{Conn: p.conn}); n != 10 {
		t.Fatalf("pinned count after the flush %d, want 10", n)
	}
	p.started(nil)
	ps.done(p, nil, false)
	if ps.count() != 1 {
		t.Fatalf("%d pins", ps.count())
	}

	// The backend's next transaction: the old pin ends, a new one reads
	// the view as it is.
	next := pinKey{database: "test", pid: 7, xact: 200}
	ps.settle("test", 7, next, nil)
	p, err = ps.take(ctx, eng, next, false)
	if err != nil || p == nil {
		t.Fatalf("take for the next transaction: %v %v", p, err)
	}
	if ps.count() != 1 {
		t.Fatalf("%d pins after the backend's next transaction began", ps.count())
	}
	if n := count(sql.QueryOptions{Conn: p.conn}); n != 20 {
		t.Fatalf("next transaction's count %d, want 20", n)
	}
	// A failed scan ends the pin (DuckDB has aborted its transaction).
	if _, _, err := eng.QueryWith(ctx, `SELECT error('boom')`, sql.QueryOptions{Conn: p.conn}); err == nil {
		t.Fatal("error() did not fail")
	}
	p.started(nil)
	ps.done(p, nil, true)
	if ps.count() != 0 {
		t.Fatalf("%d pins after a failed scan", ps.count())
	}

	// A scan outside a pin lets the backend's pins go; so does closing
	// the database.
	p, _ = ps.take(ctx, eng, next, false)
	p.started(nil)
	ps.done(p, nil, false)
	ps.settle("test", 8, pinKey{}, nil)
	if ps.count() != 1 {
		t.Fatalf("another backend's scan ended a pin")
	}
	ps.settle("test", 7, pinKey{}, nil)
	if ps.count() != 0 {
		t.Fatalf("%d pins after the backend scanned outside them", ps.count())
	}
	p, _ = ps.take(ctx, eng, next, false)
	ps.releaseDatabase("test")
	if ps.count() != 0 {
		t.Fatal("closing the database kept its pin")
	}
	p.started(nil)
	ps.done(p, nil, false) // the scan it served ends: so does its transaction
	if n := count(sql.QueryOptions{}); n != 20 {
		t.Fatalf("count %d", n)
	}

	// The sweep ends idle pins whose backend has another transaction.
	// (what backend 7 runs, as pg_stat_activity would show it)
	var seven atomic.Int64 // its transaction's start, 0 for none
	seven.Store(300)
	ps.backends = func(ctx context.Context, database string, pids []int) (map[int]int64, error) {
		if x := seven.Load(); x != 0 {
			return map[int]int64{7: x}, nil
		}
		return map[int]int64{}, nil
	}
	p, _ = ps.take(ctx, eng, next, false)
	p.started(nil)
	ps.done(p, nil, false)
	waitPins(t, &ps, 0, "the sweep kept a pin of an ended transaction")

	// READ COMMITTED statements: a statement's pin stays while the
	// backend's scans name it live (a function's statement inside it has
	// its own), and ends when they no longer do.
	outer := pinKey{database: "test", pid: 7, xact: 400, stmt: 1}
	inner := pinKey{database: "test", pid: 7, xact: 400, stmt: 2}
	ps.settle("test", 7, outer, []int64{1})
	p, _ = ps.take(ctx, eng, outer, false)
	if n := count(sql.QueryOptions{Conn: p.conn}); n != 20 {
		t.Fatalf("statement's count %d, want 20", n)
	}
	p.started(nil)
	ps.done(p, nil, false)
	run(`INSERT INTO pg_test.main.tail2 SELECT range + 100 FROM range(3)`)
	ps.settle("test", 7, inner, []int64{2, 1})
	q, _ := ps.take(ctx, eng, inner, false)
	if n := count(sql.QueryOptions{Conn: q.conn}); n != 23 {
		t.Fatalf("inner statement's count %d, want 23", n)
	}
	q.started(nil)
	ps.done(q, nil, false)
	if ps.count() != 2 {
		t.Fatalf("%d pins while both statements run, want 2", ps.count())
	}
	ps.settle("test", 7, outer, []int64{1}) // the inner statement ended
	if ps.count() != 1 {
		t.Fatalf("%d pins after the inner statement ended, want 1", ps.count())
	}
	p, _ = ps.take(ctx, eng, outer, false)
	if n := count(sql.QueryOptions{Conn: p.conn}); n != 20 {
		t.Fatalf("statement's second count %d, want 20 (as at its first scan)", n)
	}
	p.started(nil)
	ps.done(p, nil, false)
	// The sweep keeps the pin while the statement's transaction runs
	// (a cursor's statement is idle between FETCHes), and ends it when
	// the backend runs another transaction or none.
	seven.Store(400)
	time.Sleep(2*pinIdle + 200*time.Millisecond)
	if ps.count() != 1 {
		t.Fatalf("the sweep ended the pin of a statement whose transaction runs")
	}
	seven.Store(0)
	waitPins(t, &ps, 0, "the sweep kept the pin of a statement whose transaction ended")
}

func waitPins(t *testing.T, ps *pins, want int, msg string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for ps.count() != want {
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPinOpenScans: a scan of a pin while another's result still streams
// on it (a correlated subquery run for each row of a mirror's scan) has
// the first result read to its end into a spill file; both read the
// pin's moment, and the first goes on from the file.
func TestPinOpenScans(t *testing.T) {
	eng, run := pinTestEngine(t, "tail", 100)
	ctx := context.Background()

	var ps pins
	key := pinKey{database: "test", pid: 9, xact: 500, stmt: 1}
	a, err := ps.take(ctx, eng, key, false)
	if err != nil {
		t.Fatal(err)
	}
	// 100 × 5,000 rows: far more chunks than are read ahead
	rdrA, releaseA, err := eng.QueryWith(ctx, `SELECT v.id, r.range AS k FROM pg_test.main.v, range(5000) r`, sql.QueryOptions{Conn: a.conn, TimeZone: "Europe/Berlin"})
	a.started(rdrA)
	if err != nil {
		t.Fatal(err)
	}
	var rowsA, sumA int64
	readA := func(batches int) {
		for i := 0; (batches < 0 || i < batches) && rdrA.Next(); i++ {
			rec := rdrA.RecordBatch()
			ids := rec.Column(0).(*array.Int64)
			for j := 0; j < ids.Len(); j++ {
				sumA += ids.Value(j)
			}
			rowsA += rec.NumRows()
		}
	}
	readA(2)
	// The mirror changes after the pin's moment.
	run(`INSERT INTO pg_test.main.tail SELECT range + 1000 FROM range(50)`)

	b, err := ps.take(ctx, eng, key, false)
	if err != nil {
		t.Fatal(err)
	}
	if b != a {
		t.Fatal("the statement's second scan got another pin")
	}
	rdrB, releaseB, err := eng.QueryWith(ctx, `SELECT count(*), sum(id) FROM pg_test.main.v`, sql.QueryOptions{Conn: b.conn, TimeZone: "Europe/Berlin"})
	b.started(rdrB)
	if err != nil {
		t.Fatal(err)
	}
	var n, sum int64
	for rdrB.Next() {
		rec := rdrB.RecordBatch()
		n = rec.Column(0).(*array.Int64).Value(0)
		sum = int64(rec.Column(1).(*array.Decimal128).Value(0).LowBits())
	}
	if rdrB.Err() != nil {
		t.Fatal(rdrB.Err())
	}
	releaseB()
	ps.done(b, rdrB, false)
	if n != 100 || sum != 4950 {
		t.Fatalf("the second scan read %d rows summing to %d; want the pin's 100 summing to 4950", n, sum)
	}
	readA(-1)
	if rdrA.Err() != nil {
		t.Fatalf("the first scan, after the second: %v", rdrA.Err())
	}
	releaseA()
	ps.done(a, rdrA, false)
	if rowsA != 500000 || sumA != 4950*5000 {
		t.Fatalf("the first scan read %d rows summing to %d; want 500000 summing to %d", rowsA, sumA, 4950*5000)
	}
	ps.settle("test", 9, pinKey{}, nil)
	if ps.count() != 0 {
		t.Fatalf("%d pins left", ps.count())
	}
	// The pool's connections are back in UTC.
	var tz string
	for i := 0; i < 4; i++ {
		if err := eng.DB.QueryRowContext(ctx, "SELECT current_setting('TimeZone')").Scan(&tz); err != nil || tz != "UTC" {
			t.Fatalf("a pool connection in %q (%v)", tz, err)
		}
	}
}

// pinTestEngine is a DuckDB engine (closed with the test) holding a view
// pg_test.main.v of the table pg_test.main.<tail> of ids 0 to rows-1, as
// a mirror's; run executes a statement on it.
func pinTestEngine(t *testing.T, tail string, rows int) (*sql.Engine, func(string)) {
	eng, err := sql.Open(sql.Options{Threads: 1, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	run := func(q string) {
		t.Helper()
		if _, err := eng.DB.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	run(`ATTACH ':memory:' AS pg_test`)
	run(fmt.Sprintf(`CREATE TABLE pg_test.main.%s AS SELECT range AS id FROM range(%d)`, tail, rows))
	run(`CREATE VIEW pg_test.main.v AS SELECT * FROM pg_test.main.` + tail)
	return eng, run
}

// TestPinLost: a scan that says its transaction's pin has served it
// before fails with 40001 when the pin is gone, and begins none.
func TestPinLost(t *testing.T) {
	eng, _ := pinTestEngine(t, "tail", 10)
	var ps pins
	key := pinKey{database: "test", pid: 11, xact: 700}
	p, err := ps.take(context.Background(), eng, key, true)
	var pe *pgconn.PgError
	if p != nil || !errors.As(err, &pe) || pe.Code != "40001" {
		t.Fatalf("take again of a lost pin: %v %v", p, err)
	}
	if ps.count() != 0 {
		t.Fatalf("%d pins", ps.count())
	}
	// a statement's first scan begins one; later ones use it
	key.stmt = 3
	p, err = ps.take(context.Background(), eng, key, false)
	if err != nil {
		t.Fatal(err)
	}
	p.started(nil)
	ps.done(p, nil, false)
	q, err := ps.take(context.Background(), eng, key, true)
	if err != nil || q != p {
		t.Fatalf("take again: %v %v", q, err)
	}
	q.started(nil)
	ps.done(q, nil, true) // failed: the pin ends
	if _, err := ps.take(context.Background(), eng, key, true); !errors.As(err, &pe) || pe.Code != "40001" || !strings.Contains(pe.Message, "statement") {
		t.Fatalf("take again after a failed scan: %v", err)
	}
}
