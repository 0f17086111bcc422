package catalog

import (
	"context"
	gosql "database/sql"
	"database/sql/driver"
	"fmt"
	"hash/maphash"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	duckdb "github.com/duckdb/duckdb-go/v2"
)

// Large transactions do not go through the in-memory tail. Once a DuckDB
// transaction of the writer has put spillAfter rows of one mirror in its
// tail, the mirror's further inserts stream into a Parquet data file in the
// warehouse (a spill file), written by DuckDB on a connection of its own
// while the apply loop goes on. The writer's transaction makes spill files
// visible (the view reads them) when it commits, and the next flush adds
// them to Iceberg: the sidecar's memory stays bounded whatever the size of
// a source transaction.
//
// Rows of spill files deleted later are hidden by position (the pdel
// table); the flush rewrites such files without them. The keys of the rows
// in the spill file being written are remembered as hashes, so a delete
// that may concern it closes the file first (it can then be read).
const (
	spillAfter    = 64 << 10 // tail rows of one mirror in one DuckDB transaction before spilling
	spillFileRows = 4 << 20  // rows per spill file
)

// arrowText builds Arrow record batches of text values: one nullable utf8
// column c<i> per mirror column, read by DuckDB through its Arrow scan and
// cast to the column types in SQL.
func arrowText(m *Mirror, rows [][]*string) arrow.RecordBatch {
	return textBatch(textSchema("c", len(m.Columns)), rows)
}

// textSchema is the schema of n nullable utf8 columns prefix0, prefix1...
func textSchema(prefix string, n int) *arrow.Schema {
	fields := make([]arrow.Field, n)
	for i := range fields {
		fields[i] = arrow.Field{Name: colName(prefix, i), Type: arrow.BinaryTypes.String, Nullable: true}
	}
	return arrow.NewSchema(fields, nil)
}

// textBatch builds a batch of text rows (nil rows are skipped).
func textBatch(schema *arrow.Schema, rows [][]*string) arrow.RecordBatch {
	fields := schema.Fields()
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	cols := make([]*array.StringBuilder, len(fields))
	for i := range cols {
		cols[i] = b.Field(i).(*array.StringBuilder)
		cols[i].Reserve(len(rows))
	}
	for _, r := range rows {
		if r == nil {
			continue // deleted again before it was written
		}
		for i, v := range r {
			if v == nil {
				cols[i].AppendNull()
			} else {
				cols[i].Append(*v)
			}
		}
	}
	return b.NewRecordBatch()
}

// textSelect is the SELECT list casting the text columns c<i> of an Arrow
// batch to the mirror's column types, named as the mirror's columns (named
// is false) or c<i> (named is true, for the tail).
func (m *Mirror) textSelect(asTail bool) string {
	casts := make([]string, len(m.Columns))
	for i, c := range m.Columns {
		name := QuoteIdent(c.Name)
		if asTail {
			name = colName("c", i)
		}
		casts[i] = c.Type.CastFromText(colName("c", i)) + " AS " + name
	}
	return strings.Join(casts, ", ")
}

var arrowViewSeq atomic.Int64

// registerReader registers rdr as a temporary view of conn for the
// duration of fn, which gets its name. Creating the view writes to DuckDB's
// temporary catalog: conn must not be in a transaction that wrote to
// another database.
func registerReader(conn *gosql.Conn, rdr array.RecordReader, fn func(view string) error) error {
	view := "mooncake_arrow_" + strconv.FormatInt(arrowViewSeq.Add(1), 10)
	release, err := registerView(conn, rdr, view)
	if err != nil {
		return err
	}
	defer func() {
		conn.ExecContext(context.Background(), "DROP VIEW IF EXISTS "+view)
		release()
	}()
	return fn(view)
}

// registerView registers rdr as the temporary view name of conn; release
// frees the stream once the view is no longer scanned.
func registerView(conn *gosql.Conn, rdr array.RecordReader, name string) (release func(), err error) {
	err = conn.Raw(func(dc any) error {
		ar, err := duckdb.NewArrowFromConn(dc.(driver.Conn))
		if err != nil {
			return err
		}
		release, err = ar.RegisterView(rdr, name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("register arrow stream: %w", err)
	}
	return release, nil
}

// chanReader is an Arrow record reader fed batch by batch through a
// channel, for a DuckDB COPY that runs while the batches are produced.
type chanReader struct {
	refs   atomic.Int64
	schema *arrow.Schema
	in     <-chan arrow.RecordBatch
	cur    arrow.RecordBatch
}

func (r *chanReader) Retain() { r.refs.Add(1) }
func (r *chanReader) Release() {
	if r.refs.Add(-1) == 0 && r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
}
func (r *chanReader) Schema() *arrow.Schema { return r.schema }
func (r *chanReader) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	b, ok := <-r.in
	if !ok {
		return false
	}
	r.cur = b
	return true
}
func (r *chanReader) RecordBatch() arrow.RecordBatch { return r.cur }
func (r *chanReader) Record() arrow.RecordBatch      { return r.cur }
func (r *chanReader) Err() error                     { return nil }

// spillFile is a spill file being written.
type spillFile struct {
	path string
	in   chan arrow.RecordBatch
	done chan error // the COPY's outcome, once in is closed (or it failed)
	rows int64
	keys map[uint64]struct{} // hashes of the keys of its rows
}

var keySeed = maphash.MakeSeed()

func keyHash(key []*string) uint64 { return maphash.String(keySeed, keyString(key)) }

// startSpill starts writing a spill file of m on a connection of db.
func startSpill(ctx context.Context, db *gosql.DB, m *Mirror) (*spillFile, error) {
	path := m.newDataPath("data")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	sf := &spillFile{path: path, in: make(chan arrow.RecordBatch, 2), done: make(chan error, 1), keys: map[uint64]struct{}{}}
	rdr := &chanReader{schema: textSchema("c", len(m.Columns)), in: sf.in}
	rdr.refs.Store(1)
	copySQL := func(view string) string {
		return "COPY (SELECT " + m.textSelect(false) + " FROM " + view + ") TO " + QuoteLiteral(path) +
			" (" + parquetOptions + ", FIELD_IDS " + m.fieldIDs() + ")"
	}
	go func() {
		defer conn.Close()
		err := registerReader(conn, rdr, func(view string) error {
			_, err := conn.ExecContext(context.Background(), copySQL(view))
			return err
		})
		if err != nil {
			os.Remove(path)
			err = fmt.Errorf("write spill file: %w", err)
		}
		// Drain what the producer may still send before it sees done.
		sf.done <- err
		for b := range sf.in {
			b.Release()
		}
	}()
	return sf, nil
}

// add sends rows to the file.
func (sf *spillFile) add(m *Mirror, rows [][]*string) error {
	batch := arrowText(m, rows)
	n := batch.NumRows()
	if n == 0 {
		batch.Release()
		return nil
	}
	for _, r := range rows {
		if r != nil && len(m.Key) > 0 {
			sf.keys[keyHash(m.KeyOf(r))] = struct{}{}
		}
	}
	select {
	case sf.in <- batch:
	case err := <-sf.done:
		batch.Release()
		sf.done <- err // keep it for finish
		if err == nil {
			err = fmt.Errorf("spill file %s ended early", sf.path)
		}
		return err
	}
	sf.rows += n
	return nil
}

// mayHold reports whether the file may hold a row with one of the keys.
func (sf *spillFile) mayHold(keys [][]*string) bool {
	for _, k := range keys {
		if _, ok := sf.keys[keyHash(k)]; ok {
			return true
		}
	}
	return false
}

// finish ends the file and waits until DuckDB has written it.
func (sf *spillFile) finish() error {
	close(sf.in)
	return <-sf.done
}

// abandon ends the file and removes it.
func (sf *spillFile) abandon() {
	sf.finish()
	os.Remove(sf.path)
}

// A feed is an Arrow view registered once on the writer's connection, over a
// stream that yields the batches queued since the last scan and then ends:
// each INSERT ... SELECT FROM the view takes the rows queued for it.
type feed struct {
	view    string
	r       *queueReader
	release func()
}

// queueReader is an Arrow record reader over a queue of batches, which a
// scan drains; the next scan sees the batches queued after it.
type queueReader struct {
	chanReader
	q []arrow.RecordBatch
}

func (r *queueReader) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if len(r.q) == 0 {
		return false
	}
	r.cur, r.q = r.q[0], r.q[1:]
	return true
}

// reset drops batches a failed scan left.
func (r *queueReader) reset() {
	for _, b := range r.q {
		b.Release()
	}
	r.q = r.q[:0]
}

func newFeed(conn *gosql.Conn, schema *arrow.Schema) (*feed, error) {
	f := &feed{view: "mooncake_feed_" + strconv.FormatInt(arrowViewSeq.Add(1), 10), r: &queueReader{}}
	f.r.schema = schema
	f.r.refs.Store(1)
	var err error
	if f.release, err = registerView(conn, f.r, f.view); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *feed) close(conn *gosql.Conn) {
	conn.ExecContext(context.Background(), "DROP VIEW IF EXISTS "+f.view)
	f.release()
}
