package sql

import (
	"bufio"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	bindings "github.com/duckdb/duckdb-go-bindings"
	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/pgmooncake/mooncake/catalog"
)

// A streaming query: DuckDB produces the result while it is read, with a
// bounded buffer between its worker threads and the reader, instead of
// materializing all of it before the first batch (what database/sql and
// the driver's Arrow interface do). The first batch of a big scan leaves
// after a chunk's work instead of the whole query's, producing and sending
// overlap, and a scan's memory stays bounded however many rows it has.
//
// The driver offers no streaming results, so the query runs on the
// connection's DuckDB handle through the C API's bindings (the same module
// the driver is built on, at the version go.mod pins). connHandle reaches
// the handle; if a driver upgrade moves it, streamQuery says so and the
// caller runs the query the driver's way.

// errNoHandle means the driver's connection does not expose the handle
// streamQuery needs.
var errNoHandle = errors.New("the DuckDB driver's connection has no handle field of the expected type")

// connHandle is the DuckDB connection handle inside the driver's
// connection.
func connHandle(dc driver.Conn) (bindings.Connection, error) {
	c, ok := dc.(*duckdb.Conn)
	if !ok || c == nil {
		return bindings.Connection{}, errNoHandle
	}
	f := reflect.ValueOf(c).Elem().FieldByName("conn")
	if !f.IsValid() || f.Type() != reflect.TypeFor[bindings.Connection]() {
		return bindings.Connection{}, errNoHandle
	}
	return *(*bindings.Connection)(unsafe.Pointer(f.UnsafeAddr())), nil
}

// streamReader is an array.RecordReader over a streaming DuckDB result.
// A goroutine of its own fetches the chunks ahead of the reader (a few at
// most), so that DuckDB computes the next chunk while the reader converts
// and sends the last one.
type streamReader struct {
	conn    bindings.Connection
	res     bindings.Result
	opts    bindings.ArrowOptions
	schema  *arrow.Schema
	current arrow.RecordBatch
	first   arrow.RecordBatch // read by streamQuery
	err     error

	chunks    chan fetched  // from the fetching goroutine; closed at the end
	quit      chan struct{} // tells the fetching goroutine to stop
	fetching  sync.WaitGroup
	exhausted atomic.Bool // the fetching goroutine saw the end

	ctx       context.Context
	stopWatch func() bool    // stops the interrupt (context.AfterFunc)
	watching  sync.WaitGroup // an interrupt under way
	refs      int64
	watched   bool // watch is on: unwatch before the connection's next query

	// Finish: the rest of the result read at once into a spill file, so
	// that the connection may run another query while this reader reads
	// the file (see Finish).
	spillDir  string
	endMu     sync.Mutex    // Finish and Release, one at a time
	released  bool          // Release has ended the query
	finishReq chan struct{} // closed by Finish
	spill     *os.File      // written by the fetching goroutine before it closes chunks
	spillErr  error         // the error that ended the result while spilling
	spillRdr  *ipc.Reader   // reads spill, from Next
}

// fetched is a chunk read ahead, or the error that ended the result.
type fetched struct {
	rec arrow.RecordBatch
	err error
}

// prefetch is how many chunks the fetching goroutine reads ahead.
const prefetch = 4

// streamQuery starts query on the connection dc as a streaming result and
// reads its first chunk, so that errors of planning, binding and of the
// work before the first row (an aggregate's) come back here, as the
// driver's would. Errors reading later chunks end the reader (Err). A
// cancelled ctx interrupts DuckDB, also while it computes a chunk. ok is
// false when the query could not start this way (the caller runs it the
// driver's way, which reports the same error in the driver's form).
//
// With cs, the connection's cached statements, the statement prepared for
// query is kept under key, and a statement kept under key is executed
// again instead of preparing query (see stmtCache), counted in hits.
func streamQuery(ctx context.Context, dc driver.Conn, query string, cs *connStmts, key string, hits *atomic.Int64) (r *streamReader, ok bool, err error) {
	conn, err := connHandle(dc)
	if err != nil {
		return nil, false, err
	}
	// read before preparing: a change meanwhile makes the next use prepare again
	epoch := catalogEpoch()
	stmt, cached := cs.get(key, epoch)
	if cached {
		hits.Add(1)
		r, ok, err = startStream(ctx, conn, stmt)
		if ok {
			if err != nil {
				cs.drop(key)
			}
			return r, true, err
		}
		// The statement no longer binds (its view changed types or is
		// gone): prepare the query afresh, which reports the query's own
		// error.
		cs.drop(key)
	}
	if bindings.Prepare(conn, query, &stmt) == bindings.StateError {
		bindings.DestroyPrepare(&stmt)
		return nil, false, nil
	}
	if cs != nil {
		cs.put(key, stmt, epoch)
	} else {
		defer bindings.DestroyPrepare(&stmt)
	}
	r, ok, err = startStream(ctx, conn, stmt)
	if cs != nil && (!ok || err != nil) {
		cs.drop(key)
	}
	return r, ok, err
}

// catalogEpoch is catalog.CatalogEpoch (a variable for the tests).
var catalogEpoch = catalog.CatalogEpoch

// startStream executes the prepared statement stmt as a streaming result
// and reads its first chunk (see streamQuery).
func startStream(ctx context.Context, conn bindings.Connection, stmt bindings.PreparedStatement) (r *streamReader, ok bool, err error) {
	var pending bindings.PendingResult
	if bindings.PendingPreparedStreaming(stmt, &pending) == bindings.StateError {
		bindings.DestroyPending(&pending)
		return nil, false, nil
	}
	r = &streamReader{conn: conn, ctx: ctx, refs: 1}
	r.watch()
	r.watched = true
	state := bindings.ExecutePending(pending, &r.res)
	bindings.DestroyPending(&pending)
	if state == bindings.StateError {
		err := r.resultError()
		r.unwatch()
		bindings.DestroyResult(&r.res)
		return nil, true, err
	}
	r.opts = bindings.ResultGetArrowOptions(&r.res)
	n := bindings.ColumnCount(&r.res)
	names := make([]string, n)
	types := make([]bindings.LogicalType, n)
	for i := range n {
		names[i] = bindings.ColumnName(&r.res, i)
		types[i] = bindings.ColumnLogicalType(&r.res, i)
	}
	schema, ed := bindings.NewArrowSchema(r.opts, types, names)
	for i := range types {
		bindings.DestroyLogicalType(&types[i])
	}
	if err := errorData(ed); err != nil {
		r.Release()
		return nil, true, fmt.Errorf("the result's Arrow schema: %w", err)
	}
	r.schema = schema
	first, err, end := r.fetch()
	if err != nil {
		r.Release()
		return nil, true, err
	}
	r.first = first
	r.chunks = make(chan fetched, prefetch)
	r.quit = make(chan struct{})
	r.finishReq = make(chan struct{})
	if !end && first.NumRows() < fullChunk {
		// A first chunk short of a full vector is often the whole result
		// (an aggregate's rows, a point query's): look for the end here
		// rather than start a goroutine that would only find it.
		var next arrow.RecordBatch
		next, err, end = r.fetch()
		switch {
		case next != nil:
			r.chunks <- fetched{rec: next}
		case err != nil:
			r.chunks <- fetched{err: err} // after the first chunk, as the goroutine would
		}
	}
	if end {
		r.exhausted.Store(true)
		close(r.chunks)
		return r, true, nil
	}
	r.fetching.Add(1)
	go r.fetchAhead()
	return r, true, nil
}

// fullChunk is the rows of a full DuckDB data chunk (its vector size).
const fullChunk = 2048

// fetchAhead reads the result's chunks into r.chunks until its end, an
// error or quit; after Finish, into the spill file.
func (r *streamReader) fetchAhead() {
	defer r.fetching.Done()
	defer close(r.chunks)
	for {
		rec, err, end := r.fetch()
		if end {
			r.exhausted.Store(true)
			if err != nil {
				select {
				case r.chunks <- fetched{err: err}:
				case <-r.quit:
				}
			}
			return
		}
		select {
		case r.chunks <- fetched{rec: rec}:
		case <-r.finishReq:
			r.spillRest(rec)
			return
		case <-r.quit:
			rec.Release()
			return
		}
	}
}

// spillRest writes rec and the rest of the result to a spill file, which
// Next reads once the chunks already fetched are read.
func (r *streamReader) spillRest(rec arrow.RecordBatch) {
	if r.spillDir != "" {
		os.MkdirAll(r.spillDir, 0o700) // DuckDB makes its temp_directory only when it spills
	}
	f, err := os.CreateTemp(r.spillDir, "mooncake-result-*.arrows")
	if err != nil {
		rec.Release()
		r.spillErr = fmt.Errorf("spilling a query's result: %w", err)
		r.drain()
		return
	}
	os.Remove(f.Name()) // gone with the last descriptor
	r.spill = f
	buf := bufio.NewWriterSize(f, 1<<20)
	w := ipc.NewWriter(buf, ipc.WithSchema(r.schema))
	for rec != nil {
		err = w.Write(rec)
		rec.Release()
		if err != nil {
			r.spillErr = fmt.Errorf("spilling a query's result: %w", err)
			r.drain()
			break
		}
		select {
		case <-r.quit:
			r.drain()
			rec = nil
			continue
		default:
		}
		var end bool
		rec, err, end = r.fetch()
		if end {
			r.exhausted.Store(true)
			if err != nil {
				r.spillErr = err
			}
		}
	}
	if err := errors.Join(w.Close(), buf.Flush()); err != nil && r.spillErr == nil {
		r.spillErr = fmt.Errorf("spilling a query's result: %w", err)
	}
}

// drain reads the result to its end, dropping the chunks (DuckDB then
// leaves the connection to the next query).
func (r *streamReader) drain() {
	for {
		rec, _, end := r.fetch()
		if end {
			r.exhausted.Store(true)
			return
		}
		rec.Release()
	}
}

// Finish reads the rest of the result now, into a file, and returns once
// DuckDB has produced all of it: the connection may then run another
// query (in the same DuckDB transaction: a read pin's next scan) while
// this reader reads what was kept. A result already read to its end, or
// released, needs nothing.
func (r *streamReader) Finish() {
	r.endMu.Lock()
	defer r.endMu.Unlock()
	if r.released || r.quit == nil || r.exhausted.Load() {
		return
	}
	close(r.finishReq)
	r.fetching.Wait()
	r.unwatch() // the connection is another query's now
	r.watched = false
}

// watch interrupts DuckDB when ctx ends, until unwatch. No goroutine
// waits meanwhile (a small query's cost): the interrupt runs from ctx's
// own cancellation.
func (r *streamReader) watch() {
	r.watching.Add(1) // done by the interrupt, or by unwatch stopping it
	r.stopWatch = context.AfterFunc(r.ctx, func() {
		defer r.watching.Done()
		bindings.Interrupt(r.conn)
	})
}

// unwatch stops the watch and waits for an interrupt already under way,
// so that none reaches the connection's next query.
func (r *streamReader) unwatch() {
	if r.stopWatch() {
		r.watching.Done() // the interrupt will not run
	}
	r.watching.Wait()
}

// resultError is the result's error as the driver reports it (its type
// maps to a SQLSTATE in QueryError).
func (r *streamReader) resultError() error {
	if err := r.ctx.Err(); err != nil {
		return errors.Join(err, &duckdb.Error{Type: duckdb.ErrorTypeInterrupt, Msg: "INTERRUPT Error: Interrupted!"})
	}
	msg := bindings.ResultError(&r.res)
	if msg == "" {
		msg = "the query failed"
	}
	return &duckdb.Error{Type: duckdb.ErrorType(bindings.ResultErrorType(&r.res)), Msg: msg}
}

// errorData is the driver's error for an ErrorData (nil without an error).
func errorData(ed bindings.ErrorData) error {
	defer bindings.DestroyErrorData(&ed)
	if !bindings.ErrorDataHasError(ed) {
		return nil
	}
	return &duckdb.Error{Type: duckdb.ErrorType(bindings.ErrorDataErrorType(ed)), Msg: bindings.ErrorDataMessage(ed)}
}

// fetch reads the next chunk as a record batch; end is true at the
// result's end or an error (err).
func (r *streamReader) fetch() (rec arrow.RecordBatch, err error, end bool) {
	for {
		chunk := bindings.FetchChunk(r.res)
		if chunk.Ptr == nil {
			if msg := bindings.ResultError(&r.res); msg != "" || r.ctx.Err() != nil {
				return nil, r.resultError(), true
			}
			return nil, nil, true
		}
		if bindings.DataChunkGetSize(chunk) == 0 {
			bindings.DestroyDataChunk(&chunk)
			continue
		}
		rec, ed := bindings.DataChunkToArrowArray(r.opts, r.schema, chunk)
		bindings.DestroyDataChunk(&chunk)
		if err := errorData(ed); err != nil {
			return nil, fmt.Errorf("converting a chunk to Arrow: %w", err), true
		}
		return rec, nil, false
	}
}

func (r *streamReader) Schema() *arrow.Schema { return r.schema }

func (r *streamReader) Next() bool {
	if r.current != nil {
		r.current.Release()
		r.current = nil
	}
	if r.first != nil {
		r.current, r.first = r.first, nil
		return true
	}
	if r.err != nil {
		return false
	}
	f, ok := <-r.chunks
	if !ok && r.spill != nil {
		return r.nextSpilled()
	}
	switch {
	case !ok:
		if r.spillErr != nil {
			r.err = r.spillErr
		}
		return false
	case f.err != nil:
		r.err = f.err
		return false
	}
	r.current = f.rec
	return true
}

// nextSpilled reads the next batch of the spill file (after Finish).
func (r *streamReader) nextSpilled() bool {
	if r.spillRdr == nil {
		if _, err := r.spill.Seek(0, io.SeekStart); err != nil {
			r.err = fmt.Errorf("reading a query's spilled result: %w", err)
			return false
		}
		rdr, err := ipc.NewReader(bufio.NewReaderSize(r.spill, 1<<20), ipc.WithSchema(r.schema))
		if err != nil {
			r.err = fmt.Errorf("reading a query's spilled result: %w", err)
			return false
		}
		r.spillRdr = rdr
	}
	if !r.spillRdr.Next() {
		switch {
		case r.spillRdr.Err() != nil && r.spillRdr.Err() != io.EOF:
			r.err = fmt.Errorf("reading a query's spilled result: %w", r.spillRdr.Err())
		case r.spillErr != nil:
			r.err = r.spillErr
		}
		return false
	}
	r.current = r.spillRdr.RecordBatch()
	r.current.Retain()
	return true
}

func (r *streamReader) RecordBatch() arrow.RecordBatch { return r.current }

// Record is RecordBatch (the older name of array.RecordReader).
func (r *streamReader) Record() arrow.RecordBatch { return r.current }

func (r *streamReader) Err() error { return r.err }

func (r *streamReader) Retain() { r.refs++ }

// Release ends the query (DuckDB stops producing) once the last
// reference goes.
func (r *streamReader) Release() {
	if r.refs--; r.refs > 0 {
		return
	}
	r.endMu.Lock()
	defer r.endMu.Unlock()
	r.released = true
	for _, b := range []arrow.RecordBatch{r.current, r.first} {
		if b != nil {
			b.Release()
		}
	}
	r.current, r.first = nil, nil
	if r.quit != nil {
		close(r.quit)
		if !r.exhausted.Load() {
			// Stop DuckDB in the middle of a chunk the reader will not take.
			bindings.Interrupt(r.conn)
		}
		r.fetching.Wait()
		for f := range r.chunks {
			if f.rec != nil {
				f.rec.Release()
			}
		}
	}
	if r.watched {
		r.unwatch()
	}
	if r.spillRdr != nil {
		r.spillRdr.Release()
	}
	if r.spill != nil {
		r.spill.Close()
	}
	bindings.DestroyArrowOptions(&r.opts)
	bindings.DestroyResult(&r.res)
}
