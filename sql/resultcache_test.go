package sql

import (
	"context"
	"strconv"
	"strings"
	"testing"
)

// TestResultCache: a small answer of a cacheable query is kept under the
// zone, the views' versions and the SQL, and answers the same query
// without DuckDB (the table changes behind it to show it); another
// version, zone or SQL runs the query; nothing is kept of a sample, of an
// answer read halfway, of a failed query or of one past the entry bound;
// the least recently used answers go first, and a reader keeps its
// answer when it is evicted meanwhile.
func TestResultCache(t *testing.T) {
	e := openStreamEngine(t)
	ctx := context.Background()
	if _, err := e.DB.Exec("CREATE TABLE rc AS SELECT range AS i, 'v' || range AS s FROM range(10)"); err != nil {
		t.Fatal(err)
	}
	// run reads a query's answer (all of it, or its first batch only) and
	// says whether the cache gave it.
	run := func(q string, o QueryOptions, all bool) (string, bool, error) {
		t.Helper()
		before := e.ResultsReused()
		rdr, release, err := e.QueryWith(ctx, q, o)
		if err != nil {
			return "", false, err
		}
		defer release()
		var rows []string
		for rdr.Next() {
			rows = append(rows, batchStrings(rdr.RecordBatch())...)
			if !all {
				break
			}
		}
		return strings.Join(rows, ";"), e.ResultsReused() > before, rdr.Err()
	}
	const q = "SELECT i, s FROM rc WHERE i < 3 ORDER BY i"
	v1 := QueryOptions{ReuseKey: "1:1;", Cacheable: true}
	got, hit, err := run(q, v1, true)
	if err != nil || hit || got != "0|v0;1|v1;2|v2" {
		t.Fatalf("first run: %q, hit %v, %v", got, hit, err)
	}
	if _, err := e.DB.Exec("UPDATE rc SET s = 'changed' WHERE i = 1"); err != nil {
		t.Fatal(err)
	}
	if got, hit, err = run(q, v1, true); err != nil || !hit || got != "0|v0;1|v1;2|v2" {
		t.Fatalf("second run under the same key: %q, hit %v, %v; want the kept answer", got, hit, err)
	}
	v2 := QueryOptions{ReuseKey: "1:2;", Cacheable: true}
	if got, hit, err = run(q, v2, true); err != nil || hit || got != "0|v0;1|changed;2|v2" {
		t.Fatalf("new version: %q, hit %v, %v", got, hit, err)
	}
	if _, hit, _ = run(q, QueryOptions{ReuseKey: "1:2;", Cacheable: true, TimeZone: "Asia/Tokyo"}, true); hit {
		t.Errorf("another zone was answered from the cache")
	}
	if _, hit, _ = run(q+" ", v2, true); hit {
		t.Errorf("other SQL was answered from the cache")
	}
	// not cacheable (a sample), no version (a tail, the lake): never kept
	for _, o := range []QueryOptions{{ReuseKey: "1:3;"}, {Cacheable: true}} {
		run(q, o, true)
		if _, hit, _ := run(q, o, true); hit {
			t.Errorf("%+v: answered from the cache", o)
		}
	}
	// read halfway: not kept
	const many = "SELECT i FROM range(10000) t(i)"
	v4 := QueryOptions{ReuseKey: "1:4;", Cacheable: true}
	run(many, v4, false)
	if got, hit, _ := run(many, v4, true); hit || strings.Count(got, ";") != 9999 {
		t.Errorf("an answer read halfway was kept (hit %v, %d rows)", hit, strings.Count(got, ";")+1)
	}
	if _, hit, _ := run(many, v4, true); !hit {
		t.Errorf("an answer of 80 kB read whole was not kept")
	}
	// a failed query: not kept
	const bad = "SELECT CAST(s AS INTEGER) FROM rc"
	for range 2 {
		if _, hit, err := run(bad, v4, true); err == nil || hit {
			t.Errorf("%s: hit %v, %v; want an error each time", bad, hit, err)
		}
	}
	// past the entry bound: not kept
	const big = "SELECT i, i * 2 AS j FROM range(100000) t(i)"
	run(big, v4, true)
	if _, hit, _ := run(big, v4, true); hit {
		t.Errorf("an answer past %d bytes was kept", resultEntryBytes)
	}
	// eviction: room for two answers of 80 kB
	e.results.mu.Lock()
	e.results.totalMax = 200 << 10
	e.results.mu.Unlock()
	for _, v := range []string{"a", "b", "c"} {
		run(many, QueryOptions{ReuseKey: v, Cacheable: true}, true)
	}
	if _, hit, _ := run(many, QueryOptions{ReuseKey: "a", Cacheable: true}, true); hit {
		t.Errorf("the least recently used answer was not evicted")
	}
	// "a" is back, "b" went: a reader of "c" keeps its answer when "c" goes
	rdr, release, err := e.QueryWith(ctx, many, QueryOptions{ReuseKey: "c", Cacheable: true})
	if err != nil {
		t.Fatal(err)
	}
	run(many, QueryOptions{ReuseKey: "d", Cacheable: true}, true)
	run(many, QueryOptions{ReuseKey: "e", Cacheable: true}, true)
	n := 0
	for rdr.Next() {
		rec := rdr.RecordBatch()
		col := rec.Column(0)
		for i := 0; i < col.Len(); i++ {
			if col.ValueStr(i) != strconv.Itoa(n) {
				t.Fatalf("row %d of an evicted answer reads %s", n, col.ValueStr(i))
			}
			n++
		}
	}
	release()
	if n != 10000 {
		t.Errorf("the evicted answer's reader read %d rows", n)
	}
	if e.results.bytes > e.results.totalMax || len(e.results.items) > 2 {
		t.Errorf("%d answers, %d bytes kept; bound %d", len(e.results.items), e.results.bytes, e.results.totalMax)
	}
}
