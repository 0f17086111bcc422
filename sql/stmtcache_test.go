package sql

import (
	"context"
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/pgmooncake/mooncake/catalog"
)

// reuseVersion is the ReuseKey queryStrings runs its queries under: the
// tests change it when they change a view, as the catalog does.
var reuseVersion = "1"

// queryStrings runs query under tz, reusing statements, and returns its
// rows, each column's value as text, with the columns' Arrow types.
func queryStrings(t *testing.T, e *Engine, query, tz string) ([]string, []arrow.DataType, error) {
	t.Helper()
	rdr, release, err := e.QueryWith(context.Background(), query, QueryOptions{TimeZone: tz, ReuseKey: reuseVersion})
	if err != nil {
		return nil, nil, err
	}
	defer release()
	if _, ok := rdr.(*streamReader); !ok {
		t.Fatalf("%s: the query did not stream (reader %T)", query, rdr)
	}
	var rows []string
	var types []arrow.DataType
	for _, f := range rdr.Schema().Fields() {
		types = append(types, f.Type)
	}
	for rdr.Next() {
		rows = append(rows, batchStrings(rdr.RecordBatch())...)
	}
	return rows, types, rdr.Err()
}

// batchStrings is each row of rec, its values' text joined by "|".
func batchStrings(rec arrow.RecordBatch) []string {
	var rows []string
	for i := 0; i < int(rec.NumRows()); i++ {
		var vals []string
		for _, col := range rec.Columns() {
			vals = append(vals, col.ValueStr(i))
		}
		rows = append(rows, strings.Join(vals, "|"))
	}
	return rows
}

// cachedStatements is how many statements the engine's only connection
// keeps.
func cachedStatements(t *testing.T, e *Engine) int {
	t.Helper()
	conn, err := e.DB.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	n := -1
	conn.Raw(func(dc any) error {
		n = e.stmts.forConn(dc).len()
		return nil
	})
	return n
}

// Statements are kept under their SQL, the zone and the versions of the
// views they read: a view replaced (over no file, over other files, of
// other column types, dropped and created again) comes with a new version,
// and the answers follow. (DuckDB alone would keep reading a view that
// read no file after it is replaced; and it plans with the statistics of
// the tables a query reads, so only views over files alone are reused:
// catalog.Mirror.FilesOnly, ViewVersion.)
func TestStatementCache(t *testing.T) {
	e := openStreamEngine(t)
	e.DB.SetMaxOpenConns(1) // one connection: every query finds its statements
	ctx := context.Background()
	dir := t.TempDir()
	file := func(name, sel string) string {
		p := filepath.Join(dir, name)
		if _, err := e.DB.ExecContext(ctx, "COPY ("+sel+") TO "+catalog.QuoteLiteral(p)+" (FORMAT parquet)"); err != nil {
			t.Fatal(err)
		}
		return catalog.QuoteLiteral(p)
	}
	a := file("a.parquet", "SELECT 1::INTEGER AS id, 'one' AS v")
	b := file("b.parquet", "SELECT i::INTEGER AS id, 'n' || i AS v FROM range(2, 4) t(i)")
	c := file("c.parquet", "SELECT 10000000000::BIGINT AS id, 'big' AS v")
	version := 1
	exec := func(s string) {
		t.Helper()
		if _, err := e.DB.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		version++ // as the catalog does for a mirror's view
		reuseVersion = fmt.Sprint(version)
	}
	t.Cleanup(func() { reuseVersion = "1" })
	expect := func(query, tz, want string) {
		t.Helper()
		rows, _, err := queryStrings(t, e, query, tz)
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		if got := strings.Join(rows, ","); got != want {
			t.Fatalf("%s (TimeZone %q): %s, want %s", query, tz, got, want)
		}
	}
	const count = "SELECT count(*), sum(id) FROM v"
	const rows = "SELECT id, v FROM v ORDER BY id"

	// A view over no file (a mirror's before its first), then over one.
	exec("CREATE VIEW v AS SELECT CAST(NULL AS INTEGER) AS id, CAST(NULL AS VARCHAR) AS v WHERE false")
	expect(count, "", "0|(null)")
	exec("CREATE OR REPLACE VIEW v AS SELECT * FROM read_parquet([" + a + "])")
	expect(count, "", "1|1")
	expect(count, "", "1|1")
	expect(count, "", "1|1")
	expect(rows, "", "1|one")
	// The count over no file, the count and the rows over one file.
	if n := cachedStatements(t, e); n != 3 {
		t.Fatalf("%d statements cached, want 3", n)
	}
	// Another file list, as at a flush.
	exec("CREATE OR REPLACE VIEW v AS SELECT * FROM read_parquet([" + a + ", " + b + "])")
	expect(count, "", "3|6")
	expect(rows, "", "1|one,2|n2,3|n3")
	// A wider type, as after ALTER COLUMN TYPE.
	exec("CREATE OR REPLACE VIEW v AS SELECT * FROM read_parquet([" + c + "])")
	expect(count, "", "1|10000000000")
	rs, types, err := queryStrings(t, e, rows, "")
	if err != nil || strings.Join(rs, ",") != "10000000000|big" || types[0].ID() != arrow.INT64 {
		t.Fatalf("%s after the type changed: %v %v %v", rows, rs, types, err)
	}
	// Dropped: the error of a query on a missing view; created again.
	exec("DROP VIEW v")
	if _, _, err := queryStrings(t, e, count, ""); err == nil || !strings.Contains(err.Error(), "v") {
		t.Fatalf("%s on a dropped view: %v", count, err)
	}
	exec("CREATE VIEW v AS SELECT * FROM read_parquet([" + b + "])")
	expect(count, "", "2|5")

	// The same text under two zones: each is bound under its own.
	const zoned = "SELECT CAST(TIMESTAMPTZ '2024-06-01 12:00:00+00' AS VARCHAR), CAST(CAST(TIMESTAMPTZ '2024-06-01 02:00:00+00' AS DATE) AS VARCHAR)"
	for i := 0; i < 2; i++ {
		expect(zoned, "", "2024-06-01 12:00:00+00|2024-06-01")
		expect(zoned, "America/New_York", "2024-06-01 08:00:00-04|2024-05-31")
		expect(zoned, "Asia/Tokyo", "2024-06-01 21:00:00+09|2024-06-01")
	}

	// An error at execution leaves no statement behind, and the query's
	// error comes back each time.
	const bad = "SELECT CAST(v AS INTEGER) FROM v"
	for i := 0; i < 2; i++ {
		if _, _, err := queryStrings(t, e, bad, ""); err == nil {
			t.Fatalf("%s did not fail", bad)
		}
	}

	// Queries not marked reusable (the data lake's) keep nothing.
	before := cachedStatements(t, e)
	for i := 0; i < 3; i++ {
		rdr, release, err := e.Query(ctx, "SELECT count(*) FROM read_parquet("+a+")")
		if err != nil {
			t.Fatal(err)
		}
		for rdr.Next() {
		}
		release()
	}
	if n := cachedStatements(t, e); n != before {
		t.Fatalf("%d statements cached after queries without reuse, want %d", n, before)
	}

	if n := e.StatementsReused(); n < 5 {
		t.Fatalf("%d statements reused", n)
	}

	// At most stmtsPerConn statements per connection.
	for i := 0; i < stmtsPerConn+10; i++ {
		expect(fmt.Sprintf("SELECT %d", i), "", fmt.Sprint(i))
	}
	if n := cachedStatements(t, e); n != stmtsPerConn {
		t.Fatalf("%d statements cached, want %d", n, stmtsPerConn)
	}
}

// A statement kept from before a change of the mirrors' DuckDB catalogs
// (catalog.CatalogEpoch) is not executed again: DuckDB would bind it again
// on every execution. The query is prepared afresh, once, and kept.
func TestStatementCacheCatalogEpoch(t *testing.T) {
	e := openStreamEngine(t)
	e.DB.SetMaxOpenConns(1)
	epoch := int64(7)
	catalogEpoch = func() int64 { return epoch }
	t.Cleanup(func() { catalogEpoch = catalog.CatalogEpoch })
	const q = "SELECT 42"
	run := func() {
		t.Helper()
		rows, _, err := queryStrings(t, e, q, "")
		if err != nil || strings.Join(rows, ",") != "42" {
			t.Fatalf("%s: %v %v", q, rows, err)
		}
	}
	run()
	run()
	if n := e.StatementsReused(); n != 1 {
		t.Fatalf("%d statements reused, want 1", n)
	}
	epoch++ // a view of some mirror redefined
	run()
	if n := e.StatementsReused(); n != 1 {
		t.Fatalf("%d statements reused after the catalog changed, want still 1", n)
	}
	if n := cachedStatements(t, e); n != 1 {
		t.Fatalf("%d statements cached, want 1 (the old one destroyed)", n)
	}
	run()
	if n := e.StatementsReused(); n != 2 {
		t.Fatalf("%d statements reused, want 2: the statement prepared again is kept", n)
	}
}

// The statements of connections the pool closed are destroyed.
func TestStatementCacheClosedConnections(t *testing.T) {
	e := openStreamEngine(t)
	e.DB.SetMaxIdleConns(0) // every connection closes after its query
	for i := 0; i < 20; i++ {
		if _, _, err := queryStrings(t, e, fmt.Sprintf("SELECT %d", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.stmts.size() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d closed connections still have statements", e.stmts.size())
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	// Statements of a connection in use stay.
	conn, err := e.DB.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Raw(func(dc any) error {
		cs := e.stmts.forConn(dc)
		r, ok, err := streamQuery(context.Background(), dc.(driver.Conn), "SELECT 42", cs, "k", &e.stmts.hits)
		if !ok || err != nil {
			t.Fatalf("streamQuery: %v %v", ok, err)
		}
		for r.Next() {
			if v := r.RecordBatch().Column(0).(*array.Int32).Value(0); v != 42 {
				t.Fatalf("SELECT 42: %d", v)
			}
		}
		r.Release()
		runtime.GC()
		runtime.GC()
		if cs.len() != 1 || e.stmts.size() != 1 {
			t.Fatalf("a connection in use lost its statements: %d, %d entries", cs.len(), e.stmts.size())
		}
		return nil
	})
}
