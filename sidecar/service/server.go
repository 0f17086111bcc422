package service

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgmooncake/mooncake/catalog"
	"github.com/pgmooncake/mooncake/sql/lake/remote"
)

// server answers the FDW's requests on a socket.
type server struct {
	dbs     *databases
	queries *queries      // bounds and counts the scans running in DuckDB
	remote  *remote.Store // cache of remote objects; nil: s3:// paths refused
	secrets *secrets      // the databases' secrets for object stores

	flightAddr  atomic.Pointer[string] // the Flight service's address, for status
	metricsAddr atomic.Pointer[string] // the metrics endpoint's address, for status
}

// serve answers on ln; with a secret (the TCP listener), each client's
// first frame must hold it.
func (s *server) serve(ctx context.Context, ln net.Listener, secret string) {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	// A connection goes to an idle worker, or to a new one: a worker's
	// goroutine keeps the stack its requests grew, and goes after a
	// minute without one.
	conns := make(chan net.Conn)
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			slog.Error("accept", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		select {
		case conns <- c:
		default:
			go s.worker(ctx, c, conns, secret)
		}
	}
}

// worker serves c, then the connections serve hands it.
func (s *server) worker(ctx context.Context, c net.Conn, conns <-chan net.Conn, secret string) {
	idle := time.NewTimer(time.Minute)
	defer idle.Stop()
	for {
		s.handle(ctx, c, secret)
		idle.Reset(time.Minute)
		select {
		case c = <-conns:
		case <-idle.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// The buffers of connections, kept for the next ones.
var (
	readers = sync.Pool{New: func() any { return bufio.NewReader(nil) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}
)

// handle serves one connection: one request, one response. When the client
// goes away the request's context is cancelled, which stops its query.
func (s *server) handle(parent context.Context, c net.Conn, secret string) {
	defer c.Close()
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	r := readers.Get().(*bufio.Reader)
	r.Reset(c)
	defer func() {
		r.Reset(nil)
		readers.Put(r)
	}()
	typ, payload, err := readFrame(r)
	if err != nil {
		return
	}
	if secret != "" {
		if err := authenticate(typ, payload, secret); err != nil {
			slog.Warn("refused an unauthenticated TCP connection", "from", c.RemoteAddr().String())
			w := bufio.NewWriter(c)
			writeFrame(w, frameError, errorPayload(err))
			w.Flush()
			return
		}
		if typ, payload, err = readFrame(r); err != nil {
			return
		}
	}
	if typ == frameQuery {
		// A columnstore_load streams its rows after the request.
		var op struct {
			Op string `json:"op"`
		}
		if json.Unmarshal(payload, &op) == nil && op.Op == "columnstore_load" {
			var req Request
			if err := json.Unmarshal(payload, &req); err == nil {
				req.raw = payload
				w := writers.Get().(*bufio.Writer)
				w.Reset(c)
				s.columnstoreLoad(catalog.WithDatabase(ctx, req.Database), &req, r, w)
				w.Flush()
				w.Reset(nil)
				writers.Put(w)
				return
			}
		}
	}
	go func() {
		// The client sends nothing more; a read returning means it closed
		// (or the request is over and the connection is being closed). The
		// cause records when, for the scan's cancellation figures.
		var b [1]byte
		c.Read(b[:])
		cancel(&clientGone{at: time.Now()})
	}()
	w := writers.Get().(*bufio.Writer)
	w.Reset(c)
	defer func() {
		w.Flush()
		w.Reset(nil)
		writers.Put(w)
	}()
	if typ != frameQuery {
		writeFrame(w, frameError, errorPayload(userError("08P01", "expected a request frame, got %q", typ)))
		return
	}
	var req Request
	if err := json.Unmarshal(payload, &req); err != nil {
		writeFrame(w, frameError, errorPayload(userError("08P01", "malformed request: %v", err)))
		return
	}
	req.raw = payload
	if err := s.dispatch(ctx, &req, w); err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return
		}
		if !errors.Is(err, io.ErrClosedPipe) {
			slog.Debug("request failed", "op", req.Op, "err", err)
		}
		writeFrame(w, frameError, errorPayload(err))
	}
}

func (s *server) dispatch(ctx context.Context, req *Request, w io.Writer) error {
	var result any
	var err error
	// Files of tables on object stores move with the database's secrets.
	ctx = catalog.WithDatabase(ctx, req.Database)
	switch req.Op {
	case "status":
		result, err = s.status()
	case "progress":
		result, err = s.progress()
	case "slots":
		result, err = s.slots(ctx, req)
	case "lake_cache":
		if s.remote == nil {
			return userError("55000", "the sidecar reads no remote objects")
		}
		result = s.remote.Stats()
	case "scan":
		return s.scan(ctx, req, w)
	case "plan":
		result, err = s.plan(ctx, req)
	case "explain":
		result, err = s.explain(ctx, req)
	case "estimate":
		result, err = s.estimate(ctx, req)
	case "create_table":
		result, err = s.createTable(ctx, req, w)
	case "optimize":
		result, err = s.optimize(ctx, req)
	case "list":
		result, err = s.list(ctx, req)
	case "drop_table":
		result, err = s.dropTable(ctx, req)
	case "resync_table":
		result, err = s.resyncTable(ctx, req, w)
	case "describe_files":
		result, err = s.describeFiles(ctx, req)
	case "iceberg_metadata":
		result, err = s.icebergMetadata(ctx, req)
	case "attach":
		result, err = s.attach(ctx, req)
	case "columnstore_create":
		result, err = s.columnstoreCreate(ctx, req)
	case "columnstore_append":
		result, err = s.columnstoreAppend(ctx, req)
	case "columnstore_truncate":
		result, err = s.columnstoreTruncate(ctx, req)
	case "columnstore_load_file":
		result, err = s.columnstoreLoadFile(ctx, req)
	case "columnstore_insert_scan":
		result, err = s.columnstoreInsertScan(ctx, req)
	case "columnstore_modify":
		result, err = s.columnstoreModify(ctx, req)
	case "columnstore_alter":
		result, err = s.columnstoreAlter(ctx, req)
	case "columnstore_stats":
		result, err = s.columnstoreStats(ctx, req)
	case "columnstore_sweep":
		result, err = s.columnstoreSweep(ctx, req)
	case "columnstore_purge":
		result, err = s.columnstorePurge(ctx, req)
	case "release_database":
		result, err = s.releaseDatabase(ctx, req)
	case "before_drop_extension":
		result, err = s.beforeDropExtension(ctx, req)
	default:
		return userError("08P01", "unknown request %q", req.Op)
	}
	if err != nil {
		return err
	}
	b, err := json.Marshal(result)
	if err != nil {
		return err
	}
	return writeFrame(w, frameJSON, b)
}
