package sql

import (
	"container/list"
	"runtime"
	"sync"
	"sync/atomic"
	"weak"

	bindings "github.com/duckdb/duckdb-go-bindings"
	duckdb "github.com/duckdb/duckdb-go/v2"
)

// Prepared statements kept between queries. The scans of a dashboard, a
// benchmark, a prepared statement in PostgreSQL or a Flight client repeat
// the same DuckDB SQL; executing DuckDB's prepared statement again skips
// parsing, binding (a mirror's view, its Parquet reader and the field-ID
// schema of its files) and planning, about half of what a query on a small
// mirror costs DuckDB.
//
// A cached statement never reads an older view: DuckDB binds a prepared
// statement again when a catalog it reads has changed since (a mirror's
// view replaced at a flush, a schema change, a dropped mirror), and
// data files are never rewritten in place. But DuckDB plans with the
// statistics of the tables it reads (a filter every row passed when the
// statement was planned is dropped from the plan), and rows added to a
// table do not make it bind again: only SQL over views that read files
// alone is kept (Scan.Reusable), never over a mirror's tail. A statement is bound under the
// connection's TimeZone (DuckDB's time zone functions keep the zone they
// were bound with), so the zone is part of the key. A statement that fails
// is dropped and the query prepared afresh.
//
// DuckDB prepared statements belong to one connection, and database/sql
// owns the connections: a connection's statements are kept in an entry
// found by a weak pointer to the driver's connection, and destroyed once
// the pool has closed and dropped that connection (a cleanup runs when
// it is garbage; DuckDB keeps the statement's client context alive until
// then, so destroying a statement after its connection closed is safe).
// Only the goroutine holding a connection uses its entry.

// stmtsPerConn bounds each connection's statements (least recently used
// go first).
const stmtsPerConn = 64

type stmtCache struct {
	mu    sync.Mutex
	conns map[weak.Pointer[duckdb.Conn]]*connStmts
	hits  atomic.Int64 // statements executed again
}

// connStmts is one connection's statements, by key.
type connStmts struct {
	byKey map[string]*list.Element // of *cachedStmt
	lru   list.List                // most recently used first
}

type cachedStmt struct {
	key   string
	stmt  bindings.PreparedStatement
	epoch int64 // catalog.CatalogEpoch when it was prepared
}

// forConn is the entry of the driver connection dc (nil when dc is not
// DuckDB's).
func (c *stmtCache) forConn(dc any) *connStmts {
	conn, ok := dc.(*duckdb.Conn)
	if !ok || conn == nil {
		return nil
	}
	wp := weak.Make(conn)
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs := c.conns[wp]; cs != nil {
		return cs
	}
	if c.conns == nil {
		c.conns = map[weak.Pointer[duckdb.Conn]]*connStmts{}
	}
	cs := &connStmts{byKey: map[string]*list.Element{}}
	c.conns[wp] = cs
	runtime.AddCleanup(conn, func(wp weak.Pointer[duckdb.Conn]) {
		c.mu.Lock()
		cs := c.conns[wp]
		delete(c.conns, wp)
		c.mu.Unlock()
		if cs != nil {
			cs.clear()
		}
	}, wp)
	return cs
}

// size is how many connections have an entry (for tests).
func (c *stmtCache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.conns)
}

// get is the statement cached under key, if any, prepared at catalog epoch
// epoch: one prepared before a mirrors' DuckDB catalog changed would be
// bound again by DuckDB on every execution (see catalog.CatalogEpoch), so
// it is destroyed and the query prepared afresh.
func (cs *connStmts) get(key string, epoch int64) (bindings.PreparedStatement, bool) {
	if cs == nil {
		return bindings.PreparedStatement{}, false
	}
	e, ok := cs.byKey[key]
	if !ok {
		return bindings.PreparedStatement{}, false
	}
	if e.Value.(*cachedStmt).epoch != epoch {
		cs.remove(e)
		return bindings.PreparedStatement{}, false
	}
	cs.lru.MoveToFront(e)
	return e.Value.(*cachedStmt).stmt, true
}

// put keeps stmt, prepared at catalog epoch epoch, under key; it destroys
// the least recently used statement beyond stmtsPerConn.
func (cs *connStmts) put(key string, stmt bindings.PreparedStatement, epoch int64) {
	cs.byKey[key] = cs.lru.PushFront(&cachedStmt{key: key, stmt: stmt, epoch: epoch})
	for cs.lru.Len() > stmtsPerConn {
		cs.remove(cs.lru.Back())
	}
}

// drop destroys the statement cached under key.
func (cs *connStmts) drop(key string) {
	if e, ok := cs.byKey[key]; ok {
		cs.remove(e)
	}
}

// clear destroys every statement.
func (cs *connStmts) clear() {
	for cs.lru.Len() > 0 {
		cs.remove(cs.lru.Back())
	}
}

func (cs *connStmts) remove(e *list.Element) {
	s := cs.lru.Remove(e).(*cachedStmt)
	delete(cs.byKey, s.key)
	bindings.DestroyPrepare(&s.stmt)
}

// len is how many statements the connection keeps.
func (cs *connStmts) len() int { return cs.lru.Len() }
