package sql

import (
	"context"
	gosql "database/sql"
	"math"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

func openEngine(t *testing.T) *Engine {
	t.Helper()
	e, err := Open(Options{MemoryLimit: "1GB", Threads: 1})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// TestOpenSettings checks that the settings reach every connection of the
// pool, not only the one Open happened to use.
func TestOpenSettings(t *testing.T) {
	e := openEngine(t)
	ctx := context.Background()
	c1, err := e.DB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	c2, err := e.DB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	tests := []struct {
		setting string
		want    string
	}{
		{"threads", "1"},
		{"memory_limit", "953.6 MiB"}, // 1GB = 10^9 bytes
		{"TimeZone", "UTC"},
		{"preserve_insertion_order", "false"},
	}
	for _, tc := range tests {
		t.Run(tc.setting, func(t *testing.T) {
			for i, c := range []*gosql.Conn{c1, c2} {
				var got string
				if err := c.QueryRowContext(ctx, "SELECT CAST(current_setting('"+tc.setting+"') AS VARCHAR)").Scan(&got); err != nil {
					t.Fatalf("connection %d: current_setting(%q): %v", i+1, tc.setting, err)
				}
				if got != tc.want {
					t.Errorf("connection %d: current_setting(%q) = %q; want %q", i+1, tc.setting, got, tc.want)
				}
			}
		})
	}
}

func TestQueryTypes(t *testing.T) {
	e := openEngine(t)
	rdr, release, err := e.Query(context.Background(), `SELECT
		CAST(-32768 AS SMALLINT) AS i2,
		CAST(7 AS INTEGER) AS i4,
		CAST(9223372036854775807 AS BIGINT) AS i8,
		CAST(1.5 AS FLOAT) AS f4,
		CAST('NaN' AS DOUBLE) AS f8,
		true AS b,
		'ünïcode' AS s,
		DATE '2000-01-02' AS d,
		CAST('infinity' AS DATE) AS dinf,
		TIMESTAMP '2000-01-01 00:00:00.000001' AS ts,
		TIMESTAMPTZ '1970-01-01 00:00:00+00' AS tstz,
		CAST('-infinity' AS TIMESTAMP) AS tsninf,
		CAST(NULL AS INTEGER) AS n`)
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	defer release()

	wantTypes := []struct {
		name string
		typ  arrow.DataType
	}{
		{"i2", arrow.PrimitiveTypes.Int16},
		{"i4", arrow.PrimitiveTypes.Int32},
		{"i8", arrow.PrimitiveTypes.Int64},
		{"f4", arrow.PrimitiveTypes.Float32},
		{"f8", arrow.PrimitiveTypes.Float64},
		{"b", arrow.FixedWidthTypes.Boolean},
		{"s", arrow.BinaryTypes.String},
		{"d", arrow.FixedWidthTypes.Date32},
		{"dinf", arrow.FixedWidthTypes.Date32},
		{"ts", &arrow.TimestampType{Unit: arrow.Microsecond}},
		{"tstz", &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
		{"tsninf", &arrow.TimestampType{Unit: arrow.Microsecond}},
		{"n", arrow.PrimitiveTypes.Int32},
	}
	schema := rdr.Schema()
	if schema.NumFields() != len(wantTypes) {
		t.Fatalf("Query returned %d columns; want %d", schema.NumFields(), len(wantTypes))
	}
	for i, w := range wantTypes {
		f := schema.Field(i)
		if f.Name != w.name || !arrow.TypeEqual(f.Type, w.typ) {
			t.Errorf("column %d = %s %s; want %s %s", i, f.Name, f.Type, w.name, w.typ)
		}
	}
	if t.Failed() {
		return
	}

	if !rdr.Next() {
		t.Fatalf("Query returned no record batch: %v", rdr.Err())
	}
	rec := rdr.RecordBatch()
	if rec.NumRows() != 1 {
		t.Fatalf("Query returned %d rows; want 1", rec.NumRows())
	}
	col := func(i int) arrow.Array { return rec.Column(i) }
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"i2", col(0).(*array.Int16).Value(0), int16(-32768)},
		{"i4", col(1).(*array.Int32).Value(0), int32(7)},
		{"i8", col(2).(*array.Int64).Value(0), int64(math.MaxInt64)},
		{"f4", col(3).(*array.Float32).Value(0), float32(1.5)},
		{"f8 is NaN", math.IsNaN(col(4).(*array.Float64).Value(0)), true},
		{"b", col(5).(*array.Boolean).Value(0), true},
		{"s", col(6).(*array.String).Value(0), "ünïcode"},
		{"d", col(7).(*array.Date32).Value(0), arrow.Date32(10958)},
		{"dinf", col(8).(*array.Date32).Value(0), arrow.Date32(math.MaxInt32)},
		{"ts", col(9).(*array.Timestamp).Value(0), arrow.Timestamp(946684800000001)},
		{"tstz", col(10).(*array.Timestamp).Value(0), arrow.Timestamp(0)},
		{"tsninf", col(11).(*array.Timestamp).Value(0), arrow.Timestamp(-math.MaxInt64)},
		{"n is NULL", col(12).IsNull(0), true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("column %s = %v; want %v", c.name, c.got, c.want)
		}
	}
	if rdr.Next() {
		t.Errorf("Query returned a second record batch")
	}
	if err := rdr.Err(); err != nil {
		t.Errorf("reader error: %v", err)
	}
}

func TestQueryError(t *testing.T) {
	e := openEngine(t)
	rdr, release, err := e.Query(context.Background(), "SELECT * FROM no_such_table")
	if err == nil {
		release()
		t.Fatalf("Query(missing table) returned a reader with schema %v; want an error", rdr.Schema())
	}
	// The failed query's connection must have gone back to the pool.
	if got := e.DB.Stats().InUse; got != 0 {
		t.Errorf("after a failed Query, %d connections are in use; want 0", got)
	}
}

// TestQueryCancel checks that a context deadline stops a long query
// promptly: the sidecar relies on it when the FDW hangs up.
func TestQueryCancel(t *testing.T) {
	e := openEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		rdr, release, err := e.Query(ctx, "SELECT count(*) FROM range(10000000000)")
		if err != nil {
			done <- err
			return
		}
		defer release()
		for rdr.Next() {
		}
		done <- rdr.Err()
	}()
	select {
	case err := <-done:
		elapsed := time.Since(start)
		if err == nil {
			t.Errorf("Query(count of 10^10 rows) with a 100ms deadline succeeded after %v; want an error", elapsed)
		}
		if elapsed > 2*time.Second {
			t.Errorf("Query with a 100ms deadline returned after %v; want it to stop promptly", elapsed)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("Query with a 100ms deadline still running after 5s")
	}
}
