package flight

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pgmooncake/mooncake/sidecar/service"
	"github.com/pgmooncake/mooncake/sql"
)

// How a statement runs. PostgreSQL plans it, as the client's role, with
// EXPLAIN: when the whole plan is one scan of mirrors whose output columns
// are the scan's columns as they are (the FDW pushed everything down:
// filters, joins of mirrors, aggregates, ORDER BY, LIMIT), the FDW shows
// the scan's request (mooncake.explain_scan_request) and the statement
// runs in DuckDB with that request, its Arrow batches going to the client
// with only the conversions the column types need. PostgreSQL checked the
// privileges while planning. Any other statement runs in PostgreSQL, its
// rows read in text form and built into Arrow. Either way the answer is
// PostgreSQL's, with its types (types.go).

// batchRows is how many rows of PostgreSQL's answer make one batch, and
// the most rows of a mirror scan's batch.
const batchRows = 65536

// scanBatchBytes is the size a mirror scan's batches are made up to.
// DuckDB gives a scan's result in chunks of 2,048 rows, about 100 kB for a
// few columns: sent as they come, each costs a message's fixed work on
// both sides, and gRPC takes a 1 MiB buffer for any message over 32 kB and
// clears it whole. The chunks are sent together in batches of at least
// this many bytes of Arrow buffers (or batchRows rows), which keeps the
// messages well under the 4 MiB that gRPC clients accept by default.
const scanBatchBytes = 1 << 20

// statement is what a ticket carries: the SQL, its parameters' text values
// (nil for NULL) and an id for cancellation.
type statement struct {
	Query     string    `json:"q"`
	Params    []*string `json:"p,omitempty"`
	ParamOIDs []uint32  `json:"o,omitempty"`
	ID        string    `json:"id"`
}

// prepared is a prepared statement of a session.
type prepared struct {
	query  string
	desc   *pgconn.StatementDescription
	params []*string
}

// describe has PostgreSQL parse and describe a statement as the session's
// role: its parameters' types and its result columns.
func (s *Server) describe(ctx context.Context, sess *session, query string) (*pgconn.StatementDescription, error) {
	c, err := sess.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Release()
	return c.Conn().PgConn().Prepare(ctx, "", query, nil)
}

// resultSchema is the Arrow schema of a statement's result columns. Each
// field's metadata names its PostgreSQL type (FieldType).
func resultSchema(sd *pgconn.StatementDescription) *arrow.Schema {
	fields := make([]arrow.Field, len(sd.Fields))
	for i, f := range sd.Fields {
		fields[i] = field(f.Name, f.DataTypeOID, f.TypeModifier)
	}
	return arrow.NewSchema(fields, nil)
}

// Field metadata keys of the PostgreSQL type of a column.
const (
	metaTypeOID = "postgresql.type_oid"
	metaTypmod  = "postgresql.typmod"
)

func field(name string, oid uint32, typmod int32) arrow.Field {
	md := arrow.NewMetadata([]string{metaTypeOID, metaTypmod},
		[]string{strconv.FormatUint(uint64(oid), 10), strconv.FormatInt(int64(typmod), 10)})
	return arrow.Field{Name: name, Type: ArrowType(oid, typmod), Nullable: true, Metadata: md}
}

// FieldType is the PostgreSQL type (OID and typmod) of a result field.
func FieldType(f arrow.Field) (oid uint32, typmod int32, ok bool) {
	ov, _ := f.Metadata.GetValue(metaTypeOID)
	mv, _ := f.Metadata.GetValue(metaTypmod)
	o, err1 := strconv.ParseUint(ov, 10, 32)
	m, err2 := strconv.ParseInt(mv, 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return uint32(o), int32(m), true
}

// paramSchema is the Arrow schema of a statement's parameters.
func paramSchema(sd *pgconn.StatementDescription) *arrow.Schema {
	fields := make([]arrow.Field, len(sd.ParamOIDs))
	for i, oid := range sd.ParamOIDs {
		fields[i] = arrow.Field{Name: "$" + strconv.Itoa(i+1), Type: ArrowType(oid, -1), Nullable: true}
	}
	return arrow.NewSchema(fields, nil)
}

func textParams(params []*string) [][]byte {
	out := make([][]byte, len(params))
	for i, p := range params {
		if p != nil {
			out[i] = []byte(*p)
		}
	}
	return out
}

// execute runs a statement and streams its result.
func (s *Server) execute(ctx context.Context, sess *session, st statement) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	if !sess.startRunning(st.ID, cancel) {
		cancel(nil)
		return nil, nil, status.Error(codes.Canceled, "the query was cancelled")
	}
	fail := func(err error) (*arrow.Schema, <-chan flight.StreamChunk, error) {
		sess.stopRunning(st.ID)
		cancel(nil)
		return nil, nil, toStatus(err)
	}
	c, err := sess.pool.Acquire(ctx)
	if err != nil {
		return fail(err)
	}
	pc := c.Conn().PgConn()
	sd, err := pc.Prepare(ctx, "", st.Query, nil)
	if err != nil {
		c.Release()
		return fail(err)
	}
	if len(sd.Fields) == 0 {
		c.Release()
		return fail(status.Error(codes.InvalidArgument, "the statement returns no rows: run it as an update (ExecuteUpdate)"))
	}
	if len(st.Params) != len(sd.ParamOIDs) {
		c.Release()
		return fail(status.Errorf(codes.InvalidArgument, "the statement has %d parameters, %d were given", len(sd.ParamOIDs), len(st.Params)))
	}
	schema := resultSchema(sd)
	params := textParams(st.Params)

	if req, cols := s.mirrorScan(ctx, pc, st.Query, params, sd); req != nil {
		c.Release()
		scan, err := s.svc.ScanArrow(ctx, req)
		if err != nil {
			return fail(err)
		}
		ch := make(chan flight.StreamChunk, 2)
		go func() {
			defer close(ch)
			defer sess.stopRunning(st.ID)
			defer cancel(nil)
			err := s.streamScan(ctx, scan, schema, sd, cols, ch)
			scan.Finish(err)
			if err != nil {
				send(ctx, ch, flight.StreamChunk{Err: toStatus(err)})
			}
		}()
		return schema, ch, nil
	}

	rr := pc.ExecParams(ctx, st.Query, params, sd.ParamOIDs, nil, nil)
	ch := make(chan flight.StreamChunk, 2)
	go func() {
		defer close(ch)
		defer sess.stopRunning(st.ID)
		defer cancel(nil)
		err := s.streamRows(ctx, rr, schema, sd, ch)
		if _, cerr := rr.Close(); err == nil {
			err = cerr
		}
		if ctx.Err() != nil {
			// An interrupted answer leaves the connection mid-protocol.
			c.Conn().Close(context.Background())
		}
		c.Release()
		if err != nil {
			send(ctx, ch, flight.StreamChunk{Err: toStatus(err)})
		}
	}()
	return schema, ch, nil
}

func send(ctx context.Context, ch chan<- flight.StreamChunk, c flight.StreamChunk) bool {
	select {
	case ch <- c:
		return true
	case <-ctx.Done():
		if c.Data != nil {
			c.Data.Release()
		}
		return false
	}
}

// outputColumn is how the FDW says an output column comes from the scan.
type outputColumn struct {
	Col    int    `json:"col"`
	Type   uint32 `json:"type"`
	Typmod int32  `json:"typmod"`
}

// mirrorScan is the scan request of a statement whose whole plan is one
// scan of mirrors, and the scan columns of its output columns; nil when
// the statement must run in PostgreSQL.
func (s *Server) mirrorScan(ctx context.Context, pc *pgconn.PgConn, query string, params [][]byte, sd *pgconn.StatementDescription) (*service.Request, []outputColumn) {
	res := pc.ExecParams(ctx, "EXPLAIN (FORMAT JSON, COSTS OFF) "+query, params, sd.ParamOIDs, nil, nil).Read()
	if res.Err != nil || len(res.Rows) != 1 || len(res.Rows[0]) != 1 {
		return nil, nil
	}
	var plans []struct {
		Plan map[string]any `json:"Plan"`
	}
	if err := json.Unmarshal(res.Rows[0][0], &plans); err != nil || len(plans) != 1 {
		return nil, nil
	}
	p := plans[0].Plan
	if p["Node Type"] != "Foreign Scan" || p["Plans"] != nil {
		return nil, nil
	}
	reqText, _ := p["Mooncake Scan Request"].(string)
	outText, _ := p["Mooncake Output"].(string)
	if reqText == "" || outText == "" {
		return nil, nil
	}
	var req service.Request
	var out []outputColumn
	if json.Unmarshal([]byte(reqText), &req) != nil || json.Unmarshal([]byte(outText), &out) != nil || req.Op != "scan" {
		return nil, nil
	}
	if len(out) != len(sd.Fields) {
		return nil, nil
	}
	for i, o := range out {
		if o.Type != sd.Fields[i].DataTypeOID || o.Typmod != sd.Fields[i].TypeModifier {
			return nil, nil
		}
	}
	// Every change committed before the statement began is visible.
	req.CommitLSN = max(req.CommitLSN, req.NowLSN)
	// The backend that planned the scan does not read it: no pin of its.
	req.PID, req.PinXact, req.PinStmt, req.PinLive = 0, 0, 0, nil
	req.Arrow = true
	if req.WaitMs <= 0 {
		req.WaitMs = 10000
	}
	return &req, out
}

// streamScan sends a mirror scan's batches, converted to the statement's
// column types.
func (s *Server) streamScan(ctx context.Context, scan *service.ArrowScan, schema *arrow.Schema, sd *pgconn.StatementDescription, out []outputColumn, ch chan<- flight.StreamChunk) error {
	sc := scan.Scan
	// The first result column of each scan column.
	first := make([]int, len(sc.Formats)+1)
	for c := range sc.Formats {
		w := 1
		switch {
		case len(sc.Spread) > c && sc.Spread[c] != "":
			w = sql.SpreadWidth(sc.Spread[c])
		case len(sc.AvgInt) > c && sc.AvgInt[c]:
			w = 2
		}
		first[c+1] = first[c] + w
	}
	b := &batcher{mem: s.mem, schema: schema, cols: make([][]arrow.Array, len(out))}
	defer b.release()
	flush := func() error {
		batch, err := b.take()
		if err != nil {
			return err
		}
		if !send(ctx, ch, flight.StreamChunk{Data: batch}) {
			return ctx.Err()
		}
		return nil
	}
	for scan.Reader.Next() {
		rec := scan.Reader.RecordBatch()
		if rec.NumRows() == 0 {
			continue
		}
		cols := rec.Columns()
		arrs := make([]arrow.Array, len(out))
		release := func() {
			for _, a := range arrs {
				if a != nil {
					a.Release()
				}
			}
		}
		for j, o := range out {
			if o.Col >= len(sc.Formats) || first[o.Col+1] > len(cols) {
				release()
				return fmt.Errorf("scan column %d is not in the scan's result", o.Col)
			}
			a, err := s.scanColumn(sc, o, cols[first[o.Col]:first[o.Col+1]], sd.Fields[j])
			if err != nil {
				release()
				return err
			}
			arrs[j] = a
		}
		b.add(arrs, rec.NumRows())
		if b.full() {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := scan.Reader.Err(); err != nil {
		return s.svc.QueryError(err)
	}
	if b.rows > 0 {
		return flush()
	}
	return nil
}

// batcher gathers a scan's converted chunks into batches of about
// scanBatchBytes.
type batcher struct {
	mem    memory.Allocator
	schema *arrow.Schema
	cols   [][]arrow.Array // per column, the chunks' arrays
	rows   int64
	bytes  int64
}

// add takes a chunk's columns (and their references).
func (b *batcher) add(arrs []arrow.Array, rows int64) {
	for j, a := range arrs {
		b.cols[j] = append(b.cols[j], a)
		b.bytes += bufferBytes(a.Data())
	}
	b.rows += rows
}

func (b *batcher) full() bool { return b.bytes >= scanBatchBytes || b.rows >= batchRows }

// take is the batch of the chunks gathered so far; it starts a new one.
// A single chunk is sent as it is, more are concatenated.
func (b *batcher) take() (arrow.RecordBatch, error) {
	defer b.release()
	arrs := make([]arrow.Array, len(b.cols))
	defer func() {
		for _, a := range arrs {
			if a != nil {
				a.Release()
			}
		}
	}()
	for j, chunks := range b.cols {
		if len(chunks) == 1 {
			chunks[0].Retain()
			arrs[j] = chunks[0]
			continue
		}
		a, err := array.Concatenate(chunks, b.mem)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", b.schema.Field(j).Name, err)
		}
		arrs[j] = a
	}
	return array.NewRecordBatch(b.schema, arrs, b.rows), nil
}

// release drops the chunks gathered.
func (b *batcher) release() {
	for j, chunks := range b.cols {
		for _, a := range chunks {
			a.Release()
		}
		b.cols[j] = b.cols[j][:0]
	}
	b.rows, b.bytes = 0, 0
}

// bufferBytes is the size of an array's buffers, its children's included.
func bufferBytes(d arrow.ArrayData) int64 {
	var n int64
	for _, buf := range d.Buffers() {
		if buf != nil {
			n += int64(buf.Len())
		}
	}
	for _, c := range d.Children() {
		n += bufferBytes(c)
	}
	return n
}

// scanColumn is one output column of a scan's batch.
func (s *Server) scanColumn(sc *sql.Scan, o outputColumn, cols []arrow.Array, f pgconn.FieldDescription) (arrow.Array, error) {
	c := o.Col
	switch {
	case len(sc.Spread) > c && sc.Spread[c] != "":
		vals := make([]*string, len(cols))
		return s.textColumn(cols[0].Len(), f, func(i int) (string, bool, error) {
			for k, col := range cols {
				vals[k] = nil
				if col.IsNull(i) {
					continue
				}
				v, ok := stringValue(col, i)
				if !ok {
					return "", false, fmt.Errorf("%s from arrow type %s", sc.Spread[c], col.DataType())
				}
				vals[k] = &v
			}
			return sql.FinishSpread(sc.Spread[c], vals)
		})
	case len(sc.AvgInt) > c && sc.AvgInt[c]:
		n, ok := cols[1].(*array.Int64)
		if !ok {
			return nil, fmt.Errorf("avg count of arrow type %s", cols[1].DataType())
		}
		return s.textColumn(n.Len(), f, func(i int) (string, bool, error) {
			if cols[0].IsNull(i) || n.IsNull(i) || n.Value(i) == 0 {
				return "", true, nil
			}
			sum, ok := stringValue(cols[0], i)
			if !ok {
				return "", false, fmt.Errorf("avg sum of arrow type %s", cols[0].DataType())
			}
			v, err := sql.AvgText(sum, n.Value(i))
			return v, false, err
		})
	case f.DataTypeOID == oidInterval:
		return s.textColumn(cols[0].Len(), f, func(i int) (string, bool, error) {
			if cols[0].IsNull(i) {
				return "", true, nil
			}
			v, ok := stringValue(cols[0], i)
			if !ok {
				return "", false, fmt.Errorf("interval from arrow type %s", cols[0].DataType())
			}
			v, err := postgresInterval(v)
			return v, false, err
		})
	}
	return ConvertColumn(s.mem, cols[0], f.DataTypeOID, f.TypeModifier)
}

// textColumn builds a column of n values that value gives as PostgreSQL
// text (or NULL), finished in the sidecar.
func (s *Server) textColumn(n int, f pgconn.FieldDescription, value func(i int) (v string, null bool, err error)) (arrow.Array, error) {
	b := NewTextBuilder(s.mem, f.DataTypeOID, f.TypeModifier)
	defer b.Release()
	for i := 0; i < n; i++ {
		v, null, err := value(i)
		switch {
		case err != nil:
			return nil, err
		case null:
			b.AppendNull()
		default:
			if err := b.Append(v); err != nil {
				return nil, err
			}
		}
	}
	return b.NewArray(), nil
}

const oidInterval = 1186

// stringValue is the value at row i of a string column, or of an int64
// column as its text.
func stringValue(col arrow.Array, i int) (string, bool) {
	switch a := col.(type) {
	case *array.String:
		return a.Value(i), true
	case *array.LargeString:
		return a.Value(i), true
	case *array.StringView:
		return a.Value(i), true
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10), true
	}
	return "", false
}

// streamRows sends PostgreSQL's answer, read in text form, as batches.
func (s *Server) streamRows(ctx context.Context, rr *pgconn.ResultReader, schema *arrow.Schema, sd *pgconn.StatementDescription, ch chan<- flight.StreamChunk) error {
	bs := make([]*TextBuilder, len(sd.Fields))
	for i, f := range sd.Fields {
		bs[i] = NewTextBuilder(s.mem, f.DataTypeOID, f.TypeModifier)
	}
	defer func() {
		for _, b := range bs {
			b.Release()
		}
	}()
	rows := 0
	flush := func() bool {
		arrs := make([]arrow.Array, len(bs))
		for i, b := range bs {
			arrs[i] = b.NewArray()
		}
		batch := array.NewRecordBatch(schema, arrs, int64(rows))
		for _, a := range arrs {
			a.Release()
		}
		rows = 0
		return send(ctx, ch, flight.StreamChunk{Data: batch})
	}
	sent := false
	for rr.NextRow() {
		for i, v := range rr.Values() {
			if v == nil {
				bs[i].AppendNull()
			} else if err := bs[i].Append(string(v)); err != nil {
				return fmt.Errorf("column %q: %w", sd.Fields[i].Name, err)
			}
		}
		rows++
		if rows == batchRows {
			if !flush() {
				return ctx.Err()
			}
			sent = true
		}
	}
	if _, err := rr.Close(); err != nil {
		return err
	}
	if rows > 0 || !sent {
		if !flush() {
			return ctx.Err()
		}
	}
	return nil
}

// update runs a statement that returns no rows and reports how many rows
// it changed.
func (s *Server) update(ctx context.Context, sess *session, query string, params []*string) (int64, error) {
	c, err := sess.pool.Acquire(ctx)
	if err != nil {
		return 0, toStatus(err)
	}
	defer c.Release()
	pc := c.Conn().PgConn()
	sd, err := pc.Prepare(ctx, "", query, nil)
	if err != nil {
		return 0, toStatus(err)
	}
	if len(params) != len(sd.ParamOIDs) {
		return 0, status.Errorf(codes.InvalidArgument, "the statement has %d parameters, %d were given", len(sd.ParamOIDs), len(params))
	}
	tag, err := pc.ExecParams(ctx, query, textParams(params), sd.ParamOIDs, nil, nil).Close()
	if err != nil {
		return 0, toStatus(err)
	}
	return tag.RowsAffected(), nil
}

// startRunning registers a running statement's cancel function; false if
// the statement was cancelled before it began.
func (sess *session) startRunning(id string, cancel context.CancelCauseFunc) bool {
	if id == "" {
		return true
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if c, ok := sess.running[id]; ok && c == nil {
		delete(sess.running, id) // cancelled before DoGet
		return false
	}
	sess.running[id] = cancel
	return true
}

func (sess *session) stopRunning(id string) {
	if id == "" {
		return
	}
	sess.mu.Lock()
	delete(sess.running, id)
	sess.mu.Unlock()
}

// cancel stops a running statement, or marks it so that it never starts.
func (sess *session) cancel(id string) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if c := sess.running[id]; c != nil {
		c(context.Canceled)
		delete(sess.running, id)
		return
	}
	sess.running[id] = nil
}
