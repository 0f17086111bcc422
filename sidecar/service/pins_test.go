package service

import (
	"context"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/pgmooncake/mooncake/sql"
)

// TestPins: a pinned transaction reads a view as it was when it first read
// it, through what a flush does to a mirror's DuckDB objects (rows
// appended and deleted, the view replaced over another table, the old
// table dropped); the pin serves one scan at a time, and ends with its
// backend's transaction or after a failed scan.
func TestPins(t *testing.T) {
	eng, err := sql.Open(sql.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ctx := context.Background()
	run := func(q string) {
		t.Helper()
		if _, err := eng.DB.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	run(`ATTACH ':memory:' AS pg_test`)
	run(`CREATE TABLE pg_test.main.tail1 AS SELECT range AS id FROM range(10)`)
	run(`CREATE VIEW pg_test.main.v AS SELECT * FROM pg_test.main.tail1`)
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
	p, err := ps.take(ctx, eng, key)
	if err != nil || p == nil {
		t.Fatalf("take: %v %v", p, err)
	}
	if n := count(sql.QueryOptions{Conn: p.conn}); n != 10 {
		t.Fatalf("pinned count %d, want 10", n)
	}
	// Another scan of the transaction while the pin serves one reads
	// without it.
	if q, err := ps.take(ctx, eng, key); err != nil || q != nil {
		t.Fatalf("a busy pin was taken again: %v %v", q, err)
	}
	ps.done(p, false)

	// A flush: rows move to another table, the view is replaced, the old
	// table dropped; the tail takes more rows.
	run(`CREATE TABLE pg_test.main.tail2 AS SELECT range AS id FROM range(25)`)
	run(`CREATE OR REPLACE VIEW pg_test.main.v AS SELECT * FROM pg_test.main.tail2`)
	run(`DROP TABLE pg_test.main.tail1`)
	run(`DELETE FROM pg_test.main.tail2 WHERE id < 5`)
	if n := count(sql.QueryOptions{}); n != 20 {
		t.Fatalf("unpinned count %d, want 20", n)
	}
	p, err = ps.take(ctx, eng, key)
	if err != nil || p == nil {
		t.Fatalf("take again: %v %v", p, err)
	}
	if n := count(sql.QueryOptions{Conn: p.conn}); n != 10 {
		t.Fatalf("pinned count after the flush %d, want 10", n)
	}
	ps.done(p, false)
	if ps.count() != 1 {
		t.Fatalf("%d pins", ps.count())
	}

	// The backend's next transaction: the old pin ends, a new one reads
	// the view as it is.
	next := pinKey{database: "test", pid: 7, xact: 200}
	ps.settle("test", 7, next, nil)
	p, err = ps.take(ctx, eng, next)
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
	ps.done(p, true)
	if ps.count() != 0 {
		t.Fatalf("%d pins after a failed scan", ps.count())
	}

	// A scan outside a pin lets the backend's pins go; so does closing
	// the database.
	p, _ = ps.take(ctx, eng, next)
	ps.done(p, false)
	ps.settle("test", 8, pinKey{}, nil)
	if ps.count() != 1 {
		t.Fatalf("another backend's scan ended a pin")
	}
	ps.settle("test", 7, pinKey{}, nil)
	if ps.count() != 0 {
		t.Fatalf("%d pins after the backend scanned outside them", ps.count())
	}
	p, _ = ps.take(ctx, eng, next)
	ps.releaseDatabase("test")
	if ps.count() != 0 {
		t.Fatal("closing the database kept its pin")
	}
	ps.done(p, false) // the scan it served ends: so does its transaction
	if n := count(sql.QueryOptions{}); n != 20 {
		t.Fatalf("count %d", n)
	}

	// The sweep ends idle pins whose backend has another transaction.
	ps.backends = func(ctx context.Context, database string, pids []int) (map[int]backendState, error) {
		return map[int]backendState{7: {xact: 300, query: 300, active: true}}, nil
	}
	p, _ = ps.take(ctx, eng, next)
	ps.done(p, false)
	waitPins(t, &ps, 0, "the sweep kept a pin of an ended transaction")

	// READ COMMITTED statements: a statement's pin stays while the
	// backend's scans name it live (a function's statement inside it has
	// its own), and ends when they no longer do.
	outer := pinKey{database: "test", pid: 7, xact: 400, stmt: 1}
	inner := pinKey{database: "test", pid: 7, xact: 400, stmt: 2}
	ps.settle("test", 7, outer, []int64{1})
	p, _ = ps.take(ctx, eng, outer)
	if n := count(sql.QueryOptions{Conn: p.conn}); n != 20 {
		t.Fatalf("statement's count %d, want 20", n)
	}
	ps.done(p, false)
	run(`INSERT INTO pg_test.main.tail2 SELECT range + 100 FROM range(3)`)
	ps.settle("test", 7, inner, []int64{2, 1})
	q, _ := ps.take(ctx, eng, inner)
	if n := count(sql.QueryOptions{Conn: q.conn}); n != 23 {
		t.Fatalf("inner statement's count %d, want 23", n)
	}
	ps.done(q, false)
	if ps.count() != 2 {
		t.Fatalf("%d pins while both statements run, want 2", ps.count())
	}
	ps.settle("test", 7, outer, []int64{1}) // the inner statement ended
	if ps.count() != 1 {
		t.Fatalf("%d pins after the inner statement ended, want 1", ps.count())
	}
	p, _ = ps.take(ctx, eng, outer)
	if n := count(sql.QueryOptions{Conn: p.conn}); n != 20 {
		t.Fatalf("statement's second count %d, want 20 (as at its first scan)", n)
	}
	ps.done(p, false)
	// The sweep keeps the pin while the statement runs, and ends it when
	// the backend runs another or none.
	ps.backends = func(ctx context.Context, database string, pids []int) (map[int]backendState, error) {
		return map[int]backendState{7: {xact: 390, query: 400, active: true}}, nil
	}
	time.Sleep(2*pinIdle + 200*time.Millisecond)
	if ps.count() != 1 {
		t.Fatalf("the sweep ended the pin of a running statement")
	}
	ps.backends = func(ctx context.Context, database string, pids []int) (map[int]backendState, error) {
		return map[int]backendState{7: {xact: 390, query: 400, active: false}}, nil
	}
	waitPins(t, &ps, 0, "the sweep kept the pin of a statement whose backend is idle")
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
