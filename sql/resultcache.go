package sql

import (
	"container/list"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// The answers of small queries over mirrors' views that read their files
// alone (Scan.ReuseKey: no tail, no rows deleted since the last flush)
// are kept, under the key of the prepared statements (TimeZone, the
// versions of the views, the SQL). Such a view reads immutable files
// named in its definition, and any change to what it reads (rows
// arriving, a flush, a compaction, a schema change) redefines it under a
// new version, before the change is visible: an answer kept under a key
// is the answer the SQL has for as long as a query can compute that key.
// The SQL itself is deterministic: the values of now(), current_date and
// the other stable expressions come from PostgreSQL as constants, and no
// volatile function is pushed down. A sample (ANALYZE) is never kept
// (QueryOptions.Cacheable). A dashboard's repeated query, or a point
// query on an idle mirror, is then answered without DuckDB.

// Bounds of the result cache: an answer of at most resultEntryBytes of
// Arrow, DefaultResultCacheBytes in all unless Options say otherwise (the
// least recently used go first).
const (
	resultEntryBytes        = 256 << 10
	DefaultResultCacheBytes = 32 << 20
)

type resultCache struct {
	entryMax int64 // 0: nothing is kept
	totalMax int64
	mu       sync.Mutex
	lru      *list.List // of *cachedResult, most recently used first
	items    map[string]*list.Element
	bytes    int64
	hits     atomic.Int64
}

type cachedResult struct {
	key    string
	schema *arrow.Schema
	recs   []arrow.RecordBatch
	size   int64
}

// get returns a reader over the answer kept under key, or nil.
func (c *resultCache) get(key string) array.RecordReader {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil
	}
	c.lru.MoveToFront(el)
	e := el.Value.(*cachedResult)
	for _, r := range e.recs {
		r.Retain() // the reader's own references: eviction may come first
	}
	c.hits.Add(1)
	rr := &replayReader{schema: e.schema, recs: e.recs, next: 0}
	rr.refs.Store(1)
	return rr
}

// put keeps a copy of recs (the whole answer) under key.
func (c *resultCache) put(key string, schema *arrow.Schema, recs []arrow.RecordBatch, size int64) {
	if size > c.entryMax || size > c.totalMax {
		return
	}
	copies := make([]arrow.RecordBatch, 0, len(recs))
	for _, r := range recs {
		// Copies in Go's memory: the answer stays apart from DuckDB's
		// result and its allocator.
		cols := make([]arrow.Array, r.NumCols())
		for i, col := range r.Columns() {
			cp, err := array.Concatenate([]arrow.Array{col}, memory.DefaultAllocator)
			if err != nil {
				for _, a := range cols[:i] {
					a.Release()
				}
				for _, b := range copies {
					b.Release()
				}
				return
			}
			cols[i] = cp
		}
		copies = append(copies, array.NewRecordBatch(schema, cols, r.NumRows()))
		for _, a := range cols {
			a.Release()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items == nil {
		c.items, c.lru = map[string]*list.Element{}, list.New()
	}
	if el, ok := c.items[key]; ok {
		// Kept meanwhile by the same query run concurrently.
		c.lru.MoveToFront(el)
		for _, b := range copies {
			b.Release()
		}
		return
	}
	c.items[key] = c.lru.PushFront(&cachedResult{key: key, schema: schema, recs: copies, size: size})
	c.bytes += size
	for c.bytes > c.totalMax {
		el := c.lru.Back()
		e := el.Value.(*cachedResult)
		c.lru.Remove(el)
		delete(c.items, e.key)
		c.bytes -= e.size
		for _, b := range e.recs {
			b.Release()
		}
	}
}

// replayReader reads a kept answer.
type replayReader struct {
	refs   atomic.Int64
	schema *arrow.Schema
	recs   []arrow.RecordBatch // one reference each, until read past or released
	next   int
	cur    arrow.RecordBatch
}

func (r *replayReader) Schema() *arrow.Schema { return r.schema }

func (r *replayReader) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if r.next >= len(r.recs) {
		return false
	}
	r.cur = r.recs[r.next]
	r.next++
	return true
}

func (r *replayReader) RecordBatch() arrow.RecordBatch { return r.cur }
func (r *replayReader) Record() arrow.RecordBatch      { return r.cur }
func (r *replayReader) Err() error                     { return nil }
func (r *replayReader) Retain()                        { r.refs.Add(1) }

func (r *replayReader) Release() {
	if r.refs.Add(-1) != 0 {
		return
	}
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	for _, b := range r.recs[r.next:] {
		b.Release()
	}
	r.next = len(r.recs)
}

// recordingReader passes a query's answer through and keeps it in the
// cache once read to its end without error, if it is small enough.
type recordingReader struct {
	array.RecordReader
	cache    *resultCache
	key      string
	recs     []arrow.RecordBatch // retained while the answer may still be kept
	size     int64
	over     bool // too large, or already kept
	released bool
}

func (r *recordingReader) Next() bool {
	if !r.RecordReader.Next() {
		if !r.over && r.RecordReader.Err() == nil {
			r.cache.put(r.key, r.RecordReader.Schema(), r.recs, r.size)
			r.drop()
		}
		return false
	}
	if !r.over {
		rec := r.RecordReader.RecordBatch()
		if r.size += recordBytes(rec); r.size > r.cache.entryMax {
			r.drop()
		} else {
			rec.Retain()
			r.recs = append(r.recs, rec)
		}
	}
	return true
}

// drop lets go of the records kept so far; nothing more is kept.
func (r *recordingReader) drop() {
	r.over = true
	for _, b := range r.recs {
		b.Release()
	}
	r.recs = nil
}

func (r *recordingReader) Release() {
	if !r.released {
		r.released = true
		r.drop()
	}
	r.RecordReader.Release()
}

// recordBytes is the size of a record's buffers (those it shares with
// others included).
func recordBytes(rec arrow.RecordBatch) int64 {
	var n int64
	var data func(d arrow.ArrayData)
	data = func(d arrow.ArrayData) {
		for _, b := range d.Buffers() {
			if b != nil {
				n += int64(b.Len())
			}
		}
		for _, c := range d.Children() {
			data(c)
		}
		if dict, ok := d.Dictionary().(*array.Data); ok && dict != nil {
			data(dict)
		}
	}
	for _, col := range rec.Columns() {
		data(col.Data())
	}
	return n
}

// ResultsReused counts the queries answered from the result cache.
func (e *Engine) ResultsReused() int64 { return e.results.hits.Load() }
