package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmooncake/mooncake/catalog"
	"github.com/pgmooncake/mooncake/cdc"
	"github.com/pgmooncake/mooncake/sidecar/metrics"
	"github.com/pgmooncake/mooncake/sql"
	"github.com/pgmooncake/mooncake/sql/lake"
)

// Request is a decoded Q frame; fields are used by the ops that need them.
type Request struct {
	Op           string          `json:"op"`
	Database     string          `json:"database"`
	Namespace    string          `json:"namespace"`
	Table        string          `json:"table"`
	Columns      []sql.Column    `json:"columns"`
	MirrorSchema string          `json:"mirror_schema"`
	MirrorName   string          `json:"mirror_name"`
	SourceSchema string          `json:"source_schema"`
	SourceName   string          `json:"source_name"`
	KeyIndex     uint32          `json:"key_index"`         // create_table: OID of the index that identifies rows
	ForeignOID   uint32          `json:"foreign_table_oid"` // create_table, drop_table, resync_table: the mirror's foreign table
	CreatorPID   int             `json:"creator_pid"`       // create_table: the calling backend
	CreatorStart string          `json:"creator_start"`     // create_table: its transaction's start, now()
	CreatorXID   string          `json:"creator_xid"`       // attach: the transaction creating the foreign table
	Location     string          `json:"location"`          // create_table: where the Iceberg table goes (empty: the warehouse)
	Extension    uint32          `json:"extension"`         // OID of the pg_mooncake extension sending the request, when given
	CommitLSN    uint64          `json:"commit_lsn"`        // the session's last commit, to wait for
	NowLSN       uint64          `json:"now_lsn"`           // the server's WAL position when the query started
	WaitMs       int             `json:"wait_ms"`           // how long to wait for it
	Query        *sql.Query      `json:"query"`             // plan, scan, explain: the query's pieces
	Params       []sql.Param     `json:"params"`            // scan: values of the query's exec-time parameters
	TimeZone     string          `json:"timezone"`          // the session's TimeZone
	Files        json.RawMessage `json:"files"`             // describe_files, iceberg_metadata: a sql/lake.Spec
	Notices      bool            `json:"notices"`           // create_table, resync_table: report the copy's progress in N frames
	PID          int             `json:"pid"`               // resync_table, release_database, scan: the calling backend
	PinXact      int64           `json:"pin_xact"`          // scan: the start of the backend's REPEATABLE READ transaction, or of a READ COMMITTED statement's (pins.go)
	PinStmt      int64           `json:"pin_stmt"`          // scan: the READ COMMITTED statement's number in the backend, 0 for a transaction
	PinLive      []int64         `json:"pin_live"`          // scan: the numbers of the backend's statements still running
	PinAgain     bool            `json:"pin_again"`         // scan: an earlier scan of the transaction or statement read on its pin
	What         string          `json:"what"`              // iceberg_metadata: "snapshots" or "entries"; release_database: the statement
	// Arrow is set by Flight (never on the wire): the scan's numeric(p,s)
	// columns stored as DECIMAL come as DECIMALs (sql.PlanOptions.Arrow).
	Arrow bool `json:"-"`

	raw []byte // the frame's JSON, for ops that decode fields of their own (columnstore_*)
}

// describeFiles lists the columns of files of the lake, with the
// PostgreSQL types that hold them, as a column list for CREATE FOREIGN
// TABLE (IMPORT FOREIGN SCHEMA).
func (s *server) describeFiles(ctx context.Context, req *Request) (any, error) {
	if len(req.Files) == 0 {
		return nil, userError("08P01", "describe_files needs files")
	}
	spec, err := s.parseSpec(req.Files, req.Database)
	if err != nil {
		return nil, err
	}
	cols, err := lake.Describe(ctx, s.dbs.engine, spec)
	if err != nil {
		return nil, err
	}
	defs := make([]string, len(cols))
	for i, c := range cols {
		defs[i] = catalog.QuoteIdent(c.Name) + " " + c.PGType
	}
	return map[string]any{"columns": cols, "columns_sql": strings.Join(defs, ", ")}, nil
}

// icebergMetadata answers iceberg_snapshots(path) ("what":"snapshots")
// and iceberg_metadata(path) ("what":"entries") from the table's
// metadata, read with sql/lake/iceberg: {"rows":[...]}, each row an object
// keyed by the SQL function's column names.
func (s *server) icebergMetadata(ctx context.Context, req *Request) (any, error) {
	if len(req.Files) == 0 {
		return nil, userError("08P01", "iceberg_metadata needs files")
	}
	spec, err := s.parseSpec(req.Files, req.Database)
	if err != nil {
		return nil, err
	}
	switch req.What {
	case "snapshots":
		rows, err := lake.IcebergSnapshots(ctx, spec)
		if err != nil {
			return nil, err
		}
		return map[string]any{"rows": rows}, nil
	case "entries":
		rows, err := lake.IcebergMetadata(ctx, spec)
		if err != nil {
			return nil, err
		}
		return map[string]any{"rows": rows}, nil
	}
	return nil, userError("08P01", "iceberg_metadata: \"what\" is snapshots or entries, not %q", req.What)
}

func userError(code, format string, args ...any) *pgconn.PgError {
	return &pgconn.PgError{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (s *server) status() (any, error) {
	q := s.queries.status()
	q["statements_reused"] = s.dbs.engine.StatementsReused()
	q["results_reused"] = s.dbs.engine.ResultsReused()
	q["read_pins"] = s.dbs.pins.count()
	st := s.dbs.engine.DB.Stats()
	q["duckdb_connections"] = map[string]int{"open": st.OpenConnections, "in_use": st.InUse}
	flight := ""
	if a := s.flightAddr.Load(); a != nil {
		flight = *a
	}
	metricsAddr := ""
	if a := s.metricsAddr.Load(); a != nil {
		metricsAddr = *a
	}
	return map[string]any{"pid": os.Getpid(), "version": Version, "cdc": s.dbs.cdc, "queries": q, "flight": flight,
		"metrics": metricsAddr}, nil
}

// errNoCDCDetail says why mirrors are not followed when the sidecar runs
// without change data capture (the simplified edition).
const errNoCDCDetail = "pg_mooncake.enable_bgworker is off or wal_level is not logical: the mirror shows its source as of the last time the sidecar followed it."

// mirror finds the mirror a scan-like request names.
func (s *server) mirror(ctx context.Context, req *Request) (*catalog.Mirror, error) {
	if req.Database == "" || req.Namespace == "" || req.Table == "" {
		return nil, userError("08P01", "request %q needs database, namespace and table", req.Op)
	}
	d, err := s.dbs.getExt(ctx, req.Database, req.Extension)
	if err != nil {
		return nil, err
	}
	// A broken mirror fails at once, whatever the stream's position.
	if m := d.mirrors.Get(req.Namespace, req.Table); m != nil && m.Broken() != "" {
		return nil, m.Err()
	}
	if err := d.waitVisible(ctx, req.CommitLSN, req.WaitMs); err != nil {
		return nil, err
	}
	m := d.mirrors.Get(req.Namespace, req.Table)
	if m == nil {
		e := userError("42P01", "mirror %s.%s does not exist", req.Namespace, req.Table)
		e.Detail = "The foreign table names no mirror of this database: a restored dump, or a database copied from another, keeps a mirror's foreign table but not the mirror."
		e.Hint = fmt.Sprintf("Drop the foreign table and create the mirror again: DROP FOREIGN TABLE %s; CALL mooncake.create_table('%s', 'source table').",
			catalog.QuoteIdent(req.Namespace)+"."+catalog.QuoteIdent(req.Table), catalog.QuoteIdent(req.Namespace)+"."+catalog.QuoteIdent(req.Table))
		return nil, e
	}
	// Without change data capture a mirror holds its source as it was when
	// the sidecar last followed it: an answer from it could be silently
	// stale, so there is none (optimize_table still compacts it).
	if !s.dbs.cdc && req.Op != "optimize" {
		e := userError("55000", "mirror %s.%s is not kept up to date: the sidecar runs without change data capture", req.Namespace, req.Table)
		e.Detail = errNoCDCDetail
		e.Hint = "Set pg_mooncake.enable_bgworker = on (and wal_level = logical) and restart the server, or query the source table."
		return nil, e
	}
	// A mirror is read through its own foreign table, whose privileges
	// PostgreSQL checked, never through another one naming its Iceberg
	// table in its options.
	if m.ForeignOID != 0 && req.ForeignOID != m.ForeignOID {
		e := userError("42501", "permission denied for mirror %s.%s", req.Namespace, req.Table)
		e.Detail = "A mirror can only be read through the foreign table mooncake.create_table made for it."
		return nil, e
	}
	select {
	case <-m.Ready():
		if err := m.Err(); err != nil {
			return nil, err
		}
	default:
		return nil, userError("55000", "mirror %s.%s is still taking its initial copy", req.Namespace, req.Table)
	}
	// A mirror copying its source again is behind the stream from the
	// change that made the copy necessary: a session that committed since
	// waits for it (read-your-writes); others read its rows as they were.
	if from, ch := m.CatchUp(); ch != nil && req.CommitLSN >= from && req.WaitMs > 0 {
		t := time.NewTimer(time.Duration(req.WaitMs) * time.Millisecond)
		defer t.Stop()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
			return nil, &pgconn.PgError{Code: "57014", Message: fmt.Sprintf("mirror %s.%s is still copying its source again after a change this session committed", req.Namespace, req.Table),
				Hint: "Retry, or raise mooncake.read_wait_timeout."}
		}
		if err := m.Err(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// waitVisible waits until the database's mirrors hold every transaction
// that ended at or before lsn (read-your-writes), for at most waitMs.
func (d *database) waitVisible(ctx context.Context, lsn uint64, waitMs int) error {
	d.mu.Lock()
	stream := d.stream
	d.mu.Unlock()
	if lsn == 0 || waitMs <= 0 || stream == nil {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, time.Duration(waitMs)*time.Millisecond)
	defer cancel()
	err := stream.WaitVisible(wctx, lsn)
	if err == nil || ctx.Err() != nil {
		return err
	}
	vis := stream.VisibleLSN()
	return &pgconn.PgError{Code: "57014",
		Message: fmt.Sprintf("mirrors are %d bytes behind this session's last commit", lsn-min(vis, lsn)),
		Detail: fmt.Sprintf("The session committed at %s; the mirrors have applied up to %s, %s ago.",
			pglogrepl.LSN(lsn), pglogrepl.LSN(vis), time.Since(stream.LastCommitTime()).Round(time.Millisecond)),
		Hint: "Retry, or raise mooncake.read_wait_timeout; if the lag persists, check the sidecar's log."}
}

func (s *server) estimate(ctx context.Context, req *Request) (any, error) {
	m, err := s.mirror(ctx, req)
	if err != nil {
		return nil, err
	}
	return map[string]any{"rows": m.EstimatedRows()}, nil
}

func (s *server) explain(ctx context.Context, req *Request) (any, error) {
	if req.Query != nil {
		p, err := s.planQuery(ctx, req, nil, false)
		if err != nil {
			return nil, err
		}
		return map[string]any{"sql": p.Scan.SQL}, nil
	}
	m, err := s.mirror(ctx, req)
	if err != nil {
		return nil, err
	}
	scan, err := sql.PlanScan(m, req.Columns, req.Arrow)
	if err != nil {
		return nil, err
	}
	return map[string]any{"sql": scan.SQL}, nil
}

// planQuery resolves the mirrors of a query request and plans it; params
// are the exec-time parameter values, nil when planning. A column the
// mirrors do not know may come from a schema change committed before the
// query began that the stream has not applied yet: then it waits for the
// stream to reach the query's start (req.NowLSN) and plans again.
func (s *server) planQuery(ctx context.Context, req *Request, params []sql.Param, wide bool) (*sql.Plan, error) {
	p, err := s.planQueryOnce(ctx, req, params, wide)
	if sqlState(err) != "42703" || req.NowLSN == 0 || req.WaitMs <= 0 {
		return p, err
	}
	d, derr := s.dbs.getExt(ctx, req.Database, req.Extension)
	if derr != nil {
		return p, err
	}
	if werr := d.waitVisible(ctx, req.NowLSN, req.WaitMs); werr != nil {
		return p, err
	}
	retry := *req
	retry.CommitLSN = req.NowLSN // also waits for mirrors copying their source since
	return s.planQueryOnce(ctx, &retry, params, wide)
}

func (s *server) planQueryOnce(ctx context.Context, req *Request, params []sql.Param, wide bool) (*sql.Plan, error) {
	rels := map[int]sql.Relation{}
	waited := false
	for _, r := range req.Query.Rels {
		if len(r.Files) > 0 {
			spec, err := s.parseSpec(r.Files, req.Database)
			if err != nil {
				return nil, err
			}
			f, err := lake.Open(ctx, s.dbs.engine, spec)
			if err != nil {
				return nil, err
			}
			rels[r.ID] = f
			continue
		}
		sub := *req
		sub.Namespace, sub.Table, sub.ForeignOID = r.Namespace, r.Table, r.OID
		if waited {
			sub.CommitLSN = 0 // waited for already
		}
		waited = true
		m, err := s.mirror(ctx, &sub)
		if err != nil {
			return nil, err
		}
		rels[r.ID] = m
	}
	tz := req.TimeZone == "" || req.TimeZone == "UTC" || s.dbs.engine.KnowsTimeZone(ctx, req.TimeZone)
	return sql.PlanQuery(req.Query, rels, sql.PlanOptions{Params: params, TZPushed: tz, UTC: sql.IsUTC(req.TimeZone), Wide: wide, Arrow: req.Arrow})
}

// plan answers which pieces of a query DuckDB runs (PROTOCOL.md, "plan").
func (s *server) plan(ctx context.Context, req *Request) (any, error) {
	if req.Query == nil {
		return nil, userError("08P01", "plan needs a query")
	}
	s.queries.planned.Add(1)
	p, err := s.planQuery(ctx, req, nil, false)
	if err != nil {
		return nil, err
	}
	flags := func(b []bool) string {
		out := make([]byte, len(b))
		for i, v := range b {
			out[i] = '0'
			if v {
				out[i] = '1'
			}
		}
		return string(out)
	}
	sels := make([]string, len(p.WhereSel))
	for i, v := range p.WhereSel {
		sels[i] = strconv.FormatFloat(v, 'g', 6, 64)
	}
	return map[string]any{"ok": p.OK, "where": flags(p.Where), "targets": flags(p.Targets), "having": flags(p.Having),
		"sql": p.Scan.SQL, "rows": p.Rows, "where_sel": strings.Join(sels, ","), "reason": p.Reason}, nil
}

// scan streams the requested columns of a mirror as T, D..., C frames.
func (s *server) scan(ctx context.Context, req *Request, w io.Writer) (err error) {
	start := time.Now()
	var interrupted time.Time // when DuckDB stopped executing the query for a cancellation
	defer func() { s.queries.finish(ctx, metrics.FDW, start, err, interrupted) }()
	rs, err := s.openScan(ctx, req, &interrupted)
	if err != nil {
		return err
	}
	defer rs.Close()
	enc := &rowEncoder{scan: rs.Scan}
	if err := writeFrame(w, frameRowDesc, enc.rowDescription()); err != nil {
		return err
	}
	for rs.Reader.Next() {
		if err := enc.encode(w, rs.Reader.RecordBatch()); err != nil {
			return err
		}
	}
	if err := rs.Reader.Err(); err != nil {
		return s.queries.queryError(err)
	}
	if err := enc.flush(w); err != nil {
		return err
	}
	done, _ := json.Marshal(map[string]int64{"rows": enc.rows})
	return writeFrame(w, frameComplete, done)
}

// RunningScan is a scan DuckDB has executed: its Arrow batches, and how
// their columns make the scan's output columns (sql.Scan: formats, split
// sums, averages finished in the sidecar).
type RunningScan struct {
	Reader  array.RecordReader
	Scan    *sql.Scan
	release func()
	open    *atomic.Int64
}

// Close ends the scan and frees its DuckDB result.
func (r *RunningScan) Close() {
	if r.release != nil {
		r.release()
		r.release = nil
		r.open.Add(-1)
	}
}

// openScan plans a scan request and has DuckDB execute it; interrupted
// records when DuckDB stopped for a cancellation.
func (s *server) openScan(ctx context.Context, req *Request, interrupted *time.Time) (*RunningScan, error) {
	var scan *sql.Scan
	tz := ""
	retry := false
	params := req.Params
	if params == nil {
		params = []sql.Param{}
	}
	d, err := s.dbs.getExt(ctx, req.Database, req.Extension)
	if err != nil {
		return nil, err
	}
	shape := d.mirrors.ShapeVersion()
	if req.Query != nil {
		p, err := s.planQuery(ctx, req, params, false)
		if err != nil {
			return nil, err
		}
		if !p.OK {
			return nil, &pgconn.PgError{Code: "0A000", Message: "the sidecar cannot run this query: " + p.Reason}
		}
		scan, retry = p.Scan, p.Retry
		if p.TimeZone && !sql.IsUTC(req.TimeZone) {
			tz = req.TimeZone // the connections' own zone is UTC
		}
		// Remote objects: what the query reads is fetched into the
		// cache, and kept there until DuckDB has run it.
		done, err := p.Prepare(ctx)
		if err != nil {
			return nil, err
		}
		defer done()
	} else {
		m, err := s.mirror(ctx, req)
		if err != nil {
			return nil, err
		}
		if scan, err = sql.PlanScan(m, req.Columns, req.Arrow); err != nil {
			return nil, err
		}
	}
	slot, err := s.queries.acquire(ctx)
	if err != nil {
		return nil, err
	}
	pinned := req.PinXact != 0 && req.PID != 0 && req.Query != nil
	key := pinKey{database: req.Database, pid: req.PID, xact: req.PinXact, stmt: req.PinStmt}
	query := func(sc *sql.Scan) (array.RecordReader, func(), error) {
		if !pinned {
			return s.dbs.engine.QueryWith(ctx, sc.SQL, sql.QueryOptions{TimeZone: tz, ReuseKey: sc.ReuseKey, Cacheable: sc.Cacheable})
		}
		// A REPEATABLE READ transaction's scan, or one of a READ COMMITTED
		// statement that reads the mirrors more than once: on its pin (a
		// first scan again on a new one if the pin's DuckDB transaction
		// failed; pins.go).
		for try := 0; ; try++ {
			p, err := s.dbs.pins.take(ctx, s.dbs.engine, key, req.PinAgain)
			if err != nil {
				return nil, nil, err
			}
			rdr, release, err := s.dbs.engine.QueryWith(ctx, sc.SQL, sql.QueryOptions{TimeZone: tz, Conn: p.conn})
			p.started(rdr)
			if err != nil {
				s.dbs.pins.done(p, nil, true)
				if try == 0 && ctx.Err() == nil && !req.PinAgain {
					continue // the first scan: on a new pin
				}
				if req.PinAgain && sql.IsBinderError(err) {
					// The query names a column (or a mirror) that the
					// mirrors did not have at the pin's moment.
					return nil, nil, errPinGone(key, "A mirror's columns changed since that read: "+err.Error())
				}
				return nil, nil, err
			}
			return rdr, func() {
				failed := rdr.Err() != nil
				release()
				s.dbs.pins.done(p, rdr, failed)
			}, nil
		}
	}
	if req.PID != 0 {
		if pinned {
			s.dbs.pins.settle(req.Database, req.PID, key, req.PinLive)
		} else {
			s.dbs.pins.settle(req.Database, req.PID, pinKey{}, req.PinLive)
		}
	}
	// The files the query reads stay until it ends (see catalog.BeginRead).
	endRead := catalog.BeginRead()
	rdr, release, err := query(scan)
	if err != nil && ctx.Err() == nil && (shape%2 == 1 || d.mirrors.ShapeVersion() != shape) {
		// A mirror's columns and view changed while the query was planned
		// (a schema change of its source): plan it again on the new shape.
		for d.mirrors.ShapeVersion()%2 == 1 && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		if again, perr := s.planScan(ctx, req, params); perr == nil {
			scan = again
			rdr, release, err = query(scan)
		}
	}
	if err != nil && retry && sql.IsOverflow(err) {
		// An optimistic sum overflowed its DECIMAL(38): the same query
		// with exact split sums (Plan.Retry).
		if scan, err = s.wideScan(ctx, req, params); err == nil {
			rdr, release, err = query(scan)
		}
	}
	// DuckDB has done the work before the query's first row (an
	// aggregate's, a sort's) or stopped: the rest streams without holding
	// a slot, through a bounded buffer (sql.streamQuery).
	slot()
	if err != nil {
		endRead()
		if ctx.Err() != nil {
			*interrupted = time.Now()
		}
		return nil, s.queries.queryError(err)
	}
	s.queries.open.Add(1)
	return &RunningScan{Reader: rdr, Scan: scan, open: &s.queries.open,
		release: func() { release(); endRead() }}, nil
}

// planScan plans a scan request again (see scan).
func (s *server) planScan(ctx context.Context, req *Request, params []sql.Param) (*sql.Scan, error) {
	if req.Query == nil {
		m, err := s.mirror(ctx, req)
		if err != nil {
			return nil, err
		}
		return sql.PlanScan(m, req.Columns, req.Arrow)
	}
	p, err := s.planQuery(ctx, req, params, false)
	if err != nil {
		return nil, err
	}
	if !p.OK {
		return nil, &pgconn.PgError{Code: "0A000", Message: "the sidecar cannot run this query: " + p.Reason}
	}
	return p.Scan, nil
}

// wideScan plans a query again with exact sums of any size.
func (s *server) wideScan(ctx context.Context, req *Request, params []sql.Param) (*sql.Scan, error) {
	p, err := s.planQuery(ctx, req, params, true)
	if err != nil {
		return nil, err
	}
	if !p.OK {
		return nil, fmt.Errorf("the query's exact form is not pushed down: %s", p.Reason)
	}
	return p.Scan, nil
}

// createTable creates a mirror: validates the source, creates the Iceberg
// table, publishes the source, copies its rows consistently with the
// replication stream and starts applying the stream to it.
func (s *server) createTable(ctx context.Context, req *Request, w io.Writer) (any, error) {
	if req.Database == "" || req.MirrorSchema == "" || req.MirrorName == "" || req.SourceSchema == "" || req.SourceName == "" {
		return nil, userError("08P01", "create_table needs database, mirror_schema, mirror_name, source_schema and source_name")
	}
	if !s.dbs.cdc {
		e := userError("55000", "mirrors need change data capture, which is off (pg_mooncake.enable_bgworker = off)")
		e.Hint = "Set pg_mooncake.enable_bgworker = on and wal_level = logical, then restart the server."
		return nil, e
	}
	d, err := s.dbs.getExt(ctx, req.Database, req.Extension)
	if err != nil {
		return nil, err
	}
	var walLevel string
	conn, err := pgx.ConnectConfig(ctx, d.cfg)
	if err != nil {
		return nil, err
	}
	err = conn.QueryRow(ctx, "SHOW wal_level").Scan(&walLevel)
	conn.Close(ctx)
	if err != nil {
		return nil, err
	}
	if walLevel != "logical" {
		e := userError("55000", "wal_level is %s; mirrors need wal_level = logical", walLevel)
		e.Hint = "Set wal_level = logical in postgresql.conf and restart the server."
		return nil, e
	}
	conn, err = pgx.ConnectConfig(ctx, d.cfg)
	if err != nil {
		return nil, err
	}
	src, err := cdc.LookupSource(ctx, conn, req.SourceSchema, req.SourceName, req.KeyIndex)
	var relatives []cdc.Relative
	if err == nil {
		relatives, err = cdc.PublishedRelatives(ctx, conn, src.OID)
	}
	conn.Close(context.Background())
	if err != nil {
		return nil, err
	}
	if err := s.checkRelatives(ctx, d, src, relatives); err != nil {
		return nil, err
	}
	if err := s.dbs.startStream(ctx, d); err != nil {
		return nil, fmt.Errorf("start replication: %w", err)
	}
	if old := d.mirrors.Get(req.MirrorSchema, req.MirrorName); old != nil {
		// PostgreSQL has no relation of that name (create_table checked).
		// Either the mirror's foreign table was renamed or moved (the
		// Iceberg table keeps its name): the name is taken; or the mirror
		// lost its foreign table, e.g. dropped while the sidecar was down:
		// replace it.
		if name := foreignTableName(ctx, d, old); name != "" {
			e := userError("42P07", "the columnstore table %s.%s is in use by the mirror %s", req.MirrorSchema, req.MirrorName, name)
			e.Detail = "A mirror keeps the Iceberg table name it was created with when its foreign table is renamed or moved."
			e.Hint = "Choose another name for the columnstore table."
			return nil, e
		}
		slog.Warn("replacing a mirror that has no foreign table", "mirror", req.MirrorSchema+"."+req.MirrorName)
		if err := s.dbs.dropMirror(ctx, d, old); err != nil {
			return nil, err
		}
	}
	if err := cdc.Publish(ctx, d.cfg, src.Qualified, src.OID); err != nil {
		return nil, fmt.Errorf("publish %s: %w", src.Qualified, err)
	}
	pending := ""
	if req.CreatorPID != 0 && req.CreatorStart != "" {
		// Until attach names the transaction that creates the foreign
		// table, a mirror whose creating transaction has ended is dropped
		// (see reconcile).
		pending = fmt.Sprintf("pid:%d:%s", req.CreatorPID, req.CreatorStart)
	}
	m, err := d.mirrors.Create(ctx, req.MirrorSchema, req.MirrorName, src.Columns, src.Key, src.Full, src.Qualified, src.OID, req.ForeignOID, pending, req.Location)
	if err != nil {
		if len(d.mirrors.BySource(src.OID)) == 0 {
			cdc.Unpublish(context.Background(), d.cfg, src.OID, time.Second)
		}
		return nil, err
	}
	p := cdc.StartProgress(&cdc.Progress{Database: req.Database, Namespace: m.Namespace, Table: m.Name,
		Source: src.Qualified, Command: cdc.CommandCreate}, req.CreatorPID)
	defer p.Done()
	stop := noticeProgress(ctx, req, w, func() *cdc.Progress { return p })
	defer stop()
	var rows int64
	err = cdc.CopyTable(cdc.WithProgress(ctx, p), d.cfg, src.Qualified, src.Partitioned, func(fill cdc.Fill, lsn uint64) (err error) {
		rows, err = d.mirrors.CompleteSync(ctx, m, lsn, fill)
		return err
	})
	stop()
	if err == nil {
		return map[string]any{
			"namespace": m.Namespace, "table": m.Name, "rows": rows,
			"metadata_location": m.MetadataLocation(),
		}, nil
	}
	// Nothing of a failed create_table remains: the mirror, its files,
	// the source's place in the publication.
	s.dbs.dropMirror(context.Background(), d, m)
	return nil, err
}

// foreignTableName is the current name of a mirror's foreign table, or ""
// when it has none.
// missingRelations returns those of oids that name no relation, as the
// committed catalog has it.
func missingRelations(ctx context.Context, conn *pgx.Conn, oids []uint32) ([]uint32, error) {
	rows, err := conn.Query(ctx, "SELECT o FROM unnest($1::oid[]) o WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = o)", oids)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[uint32])
}

func foreignTableName(ctx context.Context, d *database, m *catalog.Mirror) string {
	if m.ForeignOID == 0 {
		return ""
	}
	conn, err := pgx.ConnectConfig(ctx, d.cfg)
	if err != nil {
		return ""
	}
	defer conn.Close(context.Background())
	var name string
	if err := conn.QueryRow(ctx, "SELECT oid::regclass::text FROM pg_class WHERE oid = $1", m.ForeignOID).Scan(&name); err != nil {
		return ""
	}
	return name
}

// checkRelatives refuses a source whose partitioned table, or one of whose
// partitions, is mirrored: the changes of a partition reach only the
// mirrors of its topmost published ancestor (publish_via_partition_root).
// A relative left in the publication by a dropped mirror (its removal
// waits for a lock in the background) is removed now.
func (s *server) checkRelatives(ctx context.Context, d *database, src *cdc.Source, relatives []cdc.Relative) error {
	for _, r := range relatives {
		ms := d.mirrors.BySource(r.OID)
		if len(ms) == 0 {
			if err := cdc.Unpublish(ctx, d.cfg, r.OID, 0); err != nil {
				return fmt.Errorf("remove %s from the publication: %w", r.Qualified, err)
			}
			continue
		}
		what := "its partition"
		if r.Ancestor {
			what = "its partitioned table"
		}
		return &pgconn.PgError{Code: "0A000",
			Message: fmt.Sprintf("cannot mirror %s: %s %s is mirrored by %s.%s", src.Qualified, what, r.Qualified, ms[0].Namespace, ms[0].Name),
			Detail:  "The changes of a partition reach only the mirrors of its topmost mirrored partitioned table.",
			Hint:    fmt.Sprintf("Mirror one of %s and %s, not both.", src.Qualified, r.Qualified)}
	}
	return nil
}

// list describes the database's mirrors for mooncake.columnstore_tables.
func (s *server) list(ctx context.Context, req *Request) (any, error) {
	d, err := s.dbs.getExt(ctx, req.Database, req.Extension)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	stream := d.stream
	d.mu.Unlock()
	var visible uint64
	var lastCommit string
	if stream != nil {
		visible = stream.VisibleLSN()
		if t := stream.LastCommitTime(); !t.IsZero() {
			lastCommit = t.UTC().Format(time.RFC3339Nano)
		}
	}
	type row struct {
		ForeignOID       uint32 `json:"foreign_table_oid"`
		Schema           string `json:"schema_name"`
		Table            string `json:"table_name"`
		Source           string `json:"source"`
		MetadataLocation string `json:"metadata_location"`
		AppliedLSN       string `json:"applied_lsn"`
		FlushedLSN       string `json:"flushed_lsn"`
		VisibleLSN       string `json:"visible_lsn"`
		LastCommit       string `json:"last_commit_time,omitempty"`
		Rows             int64  `json:"rows"`
		DataFiles        int    `json:"data_files"`
		DeleteFiles      int    `json:"delete_files"`
		UnflushedRows    int64  `json:"unflushed_rows"`
		State            string `json:"state"`
		Error            string `json:"error,omitempty"`
	}
	rows := []row{}
	for _, m := range d.mirrors.All() {
		state, reason := mirrorState(m)
		if !s.dbs.cdc && state == "ready" {
			state, reason = "stopped", errNoCDCDetail
		}
		files, dels := m.FileCounts()
		rows = append(rows, row{
			ForeignOID: m.ForeignOID, Schema: m.Namespace, Table: m.Name, Source: m.Source,
			MetadataLocation: m.MetadataLocation(),
			AppliedLSN:       pglogrepl.LSN(m.AppliedLSN()).String(),
			FlushedLSN:       pglogrepl.LSN(m.FlushedLSN()).String(),
			VisibleLSN:       pglogrepl.LSN(visible).String(),
			LastCommit:       lastCommit,
			Rows:             s.liveRows(ctx, m), DataFiles: files, DeleteFiles: dels,
			UnflushedRows: m.TailRows(), State: state, Error: reason,
		})
	}
	return map[string]any{"tables": rows}, nil
}

// mirrorState is the mirror's state as mooncake.columnstore_tables shows
// it (ready, copying, resyncing, broken, failed), and the reason of the
// last two.
func mirrorState(m *catalog.Mirror) (state, reason string) {
	select {
	case <-m.Ready():
		if reason = m.Broken(); reason != "" {
			return "broken", reason
		} else if err := m.Err(); err != nil {
			return "failed", err.Error()
		} else if _, ch := m.CatchUp(); ch != nil {
			return "resyncing", ""
		}
		return "ready", ""
	default:
		return "copying", ""
	}
}

// liveRows counts the mirror's rows as a query sees them (deleted rows not
// counted); the estimate from Iceberg metadata when DuckDB cannot answer.
func (s *server) liveRows(ctx context.Context, m *catalog.Mirror) int64 {
	if m.Err() != nil {
		return m.EstimatedRows()
	}
	end := catalog.BeginRead()
	defer end()
	var n int64
	if err := s.dbs.engine.DB.QueryRowContext(ctx, "SELECT count(*) FROM "+m.View()).Scan(&n); err != nil {
		return m.EstimatedRows()
	}
	return n
}

// optimize compacts a mirror now, expires its old snapshots and removes
// orphaned files.
func (s *server) optimize(ctx context.Context, req *Request) (any, error) {
	m, err := s.mirror(ctx, req)
	if err != nil {
		return nil, err
	}
	for {
		done, err := m.Compact(ctx, s.dbs.engine.DB, true)
		if err != nil {
			return nil, err
		}
		if done || !m.Busy() {
			break
		}
		// A background compaction holds the mirror: wait for it, then
		// compact what arrived since.
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	files, deletes := m.FileCounts()
	return map[string]any{"data_files": files, "delete_files": deletes}, nil
}

// dropTable drops a mirror whose foreign table a committed transaction
// dropped: the backend asks once its transaction has committed (and
// reconcile finds the ones it could not ask for). A foreign table that
// still exists (its drop rolled back, to a savepoint or whole, or is not
// committed yet) keeps its mirror.
func (s *server) dropTable(ctx context.Context, req *Request) (any, error) {
	if req.Database == "" || (req.ForeignOID == 0 && (req.Namespace == "" || req.Table == "")) {
		return nil, userError("08P01", "drop_table needs database and foreign_table_oid")
	}
	d, err := s.dbs.getExt(ctx, req.Database, req.Extension)
	if err != nil {
		return nil, err
	}
	m := s.byForeignTable(d, req)
	if m == nil {
		return map[string]any{"dropped": false}, nil
	}
	if m.ForeignOID != 0 {
		conn, err := pgx.ConnectConfig(ctx, d.cfg)
		if err != nil {
			return nil, err
		}
		gone, err := missingRelations(ctx, conn, []uint32{m.ForeignOID})
		conn.Close(context.Background())
		if err != nil {
			return nil, err
		}
		if len(gone) == 0 {
			return map[string]any{"dropped": false}, nil
		}
		if err := s.dbs.dropGone(ctx, d, m); err != nil {
			return nil, err
		}
		return map[string]any{"dropped": true}, nil
	}
	if err := s.dbs.dropMirror(ctx, d, m); err != nil {
		return nil, err
	}
	return map[string]any{"dropped": true}, nil
}

// byForeignTable finds the mirror of a foreign table: by its OID, or for
// mirrors that do not know theirs (made by an older version), by name.
func (s *server) byForeignTable(d *database, req *Request) *catalog.Mirror {
	if req.ForeignOID != 0 {
		if m := d.mirrors.ByForeignTable(req.ForeignOID); m != nil {
			return m
		}
	}
	if m := d.mirrors.Get(req.Namespace, req.Table); m != nil && m.ForeignOID == 0 {
		return m
	}
	return nil
}

// attach records the foreign table create_table made for a new mirror.
func (s *server) attach(ctx context.Context, req *Request) (any, error) {
	if req.Database == "" || req.ForeignOID == 0 || req.Namespace == "" || req.Table == "" {
		return nil, userError("08P01", "attach needs database, namespace, table and foreign_table_oid")
	}
	d, err := s.dbs.getExt(ctx, req.Database, req.Extension)
	if err != nil {
		return nil, err
	}
	m := d.mirrors.Get(req.Namespace, req.Table)
	if m == nil {
		return nil, userError("42P01", "mirror %s.%s does not exist", req.Namespace, req.Table)
	}
	// Only the transaction that created the mirror attaches its foreign
	// table: no other foreign table naming the same Iceberg table can
	// take the mirror over.
	if m.Pending() != fmt.Sprintf("pid:%d:%s", req.CreatorPID, req.CreatorStart) {
		e := userError("42501", "permission denied to attach a foreign table to mirror %s.%s", req.Namespace, req.Table)
		e.Detail = "Only the transaction that created the mirror attaches its foreign table."
		return nil, e
	}
	pending := ""
	if req.CreatorXID != "" {
		pending = "xid:" + req.CreatorXID
	}
	if err := d.mirrors.SetForeignTable(ctx, m, req.ForeignOID, pending); err != nil {
		return nil, err
	}
	return map[string]any{"attached": true}, nil
}

// resyncTable copies a mirror's source again (mooncake.resync_table).
func (s *server) resyncTable(ctx context.Context, req *Request, w io.Writer) (any, error) {
	if req.Database == "" || req.ForeignOID == 0 {
		return nil, userError("08P01", "resync_table needs database and foreign_table_oid")
	}
	d, err := s.dbs.getExt(ctx, req.Database, req.Extension)
	if err != nil {
		return nil, err
	}
	m := s.byForeignTable(d, req)
	if m == nil {
		return nil, userError("42P01", "%s.%s is not a mirror the sidecar knows", req.Namespace, req.Table)
	}
	d.mu.Lock()
	stream := d.stream
	d.mu.Unlock()
	if stream == nil {
		return nil, userError("55000", "mirrors need change data capture, which is off")
	}
	stop := noticeProgress(ctx, req, w, func() *cdc.Progress { return cdc.FindProgress(d.name, m.Namespace, m.Name) })
	err = stream.Resync(ctx, m, req.PID)
	stop()
	if err != nil {
		return nil, err
	}
	if err := m.Err(); err != nil {
		return nil, err
	}
	return map[string]any{"rows": m.EstimatedRows(), "metadata_location": m.MetadataLocation()}, nil
}

// drop removes a mirror, and its source from the publication when no other
// mirror follows that source. The publication changes in the background:
// when the source itself is being dropped (DROP TABLE ... CASCADE), the
// dropping transaction holds its lock until this request returns.
func (r *databases) dropMirror(ctx context.Context, d *database, m *catalog.Mirror) error {
	if err := d.mirrors.Drop(ctx, m); err != nil {
		return fmt.Errorf("drop mirror %s.%s: %w", m.Namespace, m.Name, err)
	}
	if len(d.mirrors.BySource(m.SourceOID)) == 0 {
		err := cdc.Unpublish(ctx, d.cfg, m.SourceOID, time.Second)
		if sqlState(err) != "55P03" { // not a lock timeout
			if err != nil {
				slog.Warn("cannot remove the source from the publication", "source", m.Source, "err", err)
			}
			slog.Info("mirror dropped", "database", d.name, "mirror", m.Namespace+"."+m.Name)
			return nil
		}
		go func() {
			ctx, cancel := context.WithTimeout(d.ctx, 5*time.Minute)
			defer cancel()
			if len(d.mirrors.BySource(m.SourceOID)) > 0 {
				return // mirrored again meanwhile
			}
			if err := cdc.Unpublish(ctx, d.cfg, m.SourceOID, 0); err != nil {
				slog.Warn("cannot remove the source from the publication", "source", m.Source, "err", err)
			}
		}()
	}
	slog.Info("mirror dropped", "database", d.name, "mirror", m.Namespace+"."+m.Name)
	return nil
}

func sqlState(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// TmpDirOf is the directory of spools of changes and DuckDB spill files.
func TmpDirOf(dataDir string) string { return filepath.Join(dataDir, "pg_mooncake", "tmp") }
