package sql

import (
	"context"
	"database/sql/driver"
	"errors"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/jackc/pgx/v5/pgconn"
)

func openStreamEngine(t *testing.T) *Engine {
	t.Helper()
	e, err := Open(Options{MemoryLimit: "1GB", Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.DB.Close() })
	return e
}

// The driver's connection still has the handle streaming queries use: a
// driver upgrade that moves it fails here, not silently in production.
func TestStreamConnHandle(t *testing.T) {
	e := openStreamEngine(t)
	conn, err := e.DB.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Raw(func(dc any) error {
		h, err := connHandle(dc.(driver.Conn))
		if err == nil && h.Ptr == nil {
			err = errors.New("nil handle")
		}
		return err
	}); err != nil {
		t.Fatalf("connHandle: %v", err)
	}
}

func TestStreamQuery(t *testing.T) {
	e := openStreamEngine(t)
	ctx := context.Background()
	for round := 0; round < 3; round++ { // the pooled connection is reused
		rdr, release, err := e.Query(ctx, "SELECT i, i::VARCHAR AS s FROM range(1000000) t(i)")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := rdr.(*streamReader); !ok {
			t.Fatalf("the query did not stream (reader %T)", rdr)
		}
		var n, sum int64
		for rdr.Next() {
			rec := rdr.RecordBatch()
			ids := rec.Column(0).(*array.Int64)
			for i := 0; i < ids.Len(); i++ {
				sum += ids.Value(i)
			}
			n += rec.NumRows()
		}
		if err := rdr.Err(); err != nil {
			t.Fatal(err)
		}
		release()
		if n != 1000000 || sum != 999999*1000000/2 {
			t.Fatalf("round %d: %d rows, sum %d", round, n, sum)
		}
	}

	// A reader that stops early ends the query; the connection is fine.
	for round := 0; round < 3; round++ {
		rdr, release, err := e.Query(ctx, "SELECT i, hash(i) FROM range(100000000) t(i)")
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k < 2 && rdr.Next(); k++ {
		}
		start := time.Now()
		release()
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("releasing a reader after 2 chunks took %s", took)
		}
		var n int64
		if err := e.DB.QueryRowContext(ctx, "SELECT count(*) FROM range(10)").Scan(&n); err != nil || n != 10 {
			t.Fatalf("after an early release: %d, %v", n, err)
		}
	}

	// An error before the first row comes back from Query with its code.
	if _, release, err := e.Query(ctx, "SELECT sum(CAST('x' || i AS INTEGER)) FROM range(100000) t(i)"); err == nil {
		release()
		t.Fatal("a failing aggregate did not fail")
	}
	if _, release, err := e.Query(ctx, "SELECT no_such_column FROM range(3)"); err == nil {
		release()
		t.Fatal("a query with an unknown column did not fail")
	}
	// An error in the middle of the stream ends it with the error.
	rdr, release, err := e.Query(ctx, "SELECT CASE WHEN i < 500000 THEN i::VARCHAR ELSE 'x' || i END::BIGINT AS v FROM range(1000000) t(i) ORDER BY i")
	if err == nil {
		var n int64
		for rdr.Next() {
			n += rdr.RecordBatch().NumRows()
		}
		err = rdr.Err()
		release()
		t.Logf("%d rows before the error", n)
	}
	var pe *pgconn.PgError
	if !errors.As(QueryError(err), &pe) || pe.Code != "22P02" {
		t.Fatalf("conversion error mid-stream: %v", err)
	}
	// The connection works after that.
	if _, release, err := e.Query(ctx, "SELECT 1"); err != nil {
		t.Fatalf("after an error: %v", err)
	} else {
		release()
	}
}

// A cancelled context interrupts DuckDB inside a chunk's work.
func TestStreamQueryCancel(t *testing.T) {
	e := openStreamEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	start := time.Now()
	time.AfterFunc(300*time.Millisecond, cancel)
	// hash(i) = 42 for no i in range: the first chunk never comes.
	rdr, release, err := e.Query(ctx, "SELECT i FROM range(1000000000000) t(i) WHERE hash(i) = 42")
	if err == nil {
		for rdr.Next() {
		}
		err = rdr.Err()
		release()
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the query stopped %s after the cancel", took)
	}
	var pe *pgconn.PgError
	if !errors.As(QueryError(err), &pe) || pe.Code != "57014" {
		t.Fatalf("cancelled query: %v", err)
	}
	if _, release, err := e.Query(context.Background(), "SELECT 1"); err != nil {
		t.Fatalf("after a cancel: %v", err)
	} else {
		release()
	}
}
