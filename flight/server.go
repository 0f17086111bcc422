package flight

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/pgmooncake/mooncake/sidecar/service"
)

// Options configure the Flight SQL service.
type Options struct {
	Addr     string        // host:port to listen on
	TLS      *tls.Config   // nil: plain TCP
	PGHost   string        // where sessions connect to PostgreSQL (a TCP host)
	PGPort   uint16        //
	TokenTTL time.Duration // a token expires after this long unused (default 1h)
}

// Server is the Arrow Flight SQL service of the sidecar: a thin adapter
// over the sidecar's service, with PostgreSQL's authentication.
type Server struct {
	flightsql.BaseServer
	svc *service.Service
	ss  *sessions
	mem memory.Allocator
}

// Serve listens on o.Addr and serves until ctx ends. It returns once the
// listener is open (or failed), with the address it listens on.
func Serve(ctx context.Context, svc *service.Service, o Options) (string, error) {
	if o.TokenTTL <= 0 {
		o.TokenTTL = time.Hour
	}
	s := &Server{svc: svc, mem: memory.DefaultAllocator}
	s.ss = &sessions{ttl: o.TokenTTL, byTok: map[string]*session{},
		connect: func(ctx context.Context, role, password, database string) (*pgxpool.Pool, error) {
			return connectPool(ctx, o.PGHost, o.PGPort, role, password, database)
		}}
	s.Alloc = s.mem
	s.registerSqlInfo()

	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return "", fmt.Errorf("listen on %s for Flight: %w", o.Addr, err)
	}
	var opts []grpc.ServerOption
	if o.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(o.TLS)))
	}
	gs := flight.NewServerWithMiddleware([]flight.ServerMiddleware{s.ss.middleware()}, opts...)
	gs.InitListener(ln)
	gs.RegisterFlightService(&plainFlight{FlightServer: flightsql.NewFlightServerWithAllocator(s, s.mem), s: s})
	go s.ss.sweep(ctx)
	go func() {
		<-ctx.Done()
		gs.Shutdown()
	}()
	go func() {
		if err := gs.Serve(); err != nil && ctx.Err() == nil {
			slog.Error("Flight service stopped", "err", err)
		}
	}()
	return ln.Addr().String(), nil
}

func (s *Server) session(ctx context.Context) (*session, error) {
	if sess := sessionOf(ctx); sess != nil {
		return sess, nil
	}
	return nil, status.Error(codes.Unauthenticated, "authenticate first")
}

func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// flightInfo is the FlightInfo of a statement: one endpoint, whose ticket
// the client gives back to DoGet.
func (s *Server) flightInfo(desc *flight.FlightDescriptor, schema *arrow.Schema, st statement) (*flight.FlightInfo, error) {
	handle, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	ticket, err := flightsql.CreateStatementQueryTicket(handle)
	if err != nil {
		return nil, err
	}
	return &flight.FlightInfo{
		Schema:           flight.SerializeSchema(schema, s.mem),
		FlightDescriptor: desc,
		Endpoint:         []*flight.FlightEndpoint{{Ticket: &flight.Ticket{Ticket: ticket}}},
		TotalRecords:     -1,
		TotalBytes:       -1,
	}, nil
}

// describeQuery has PostgreSQL describe a statement as the session's
// role; errors are statuses.
func (s *Server) describeQuery(ctx context.Context, query string) (*pgconn.StatementDescription, error) {
	sess, err := s.session(ctx)
	if err != nil {
		return nil, err
	}
	sd, err := s.describe(ctx, sess, query)
	if err != nil {
		return nil, toStatus(err)
	}
	return sd, nil
}

// GetFlightInfoStatement describes a query; its result comes from DoGet.
func (s *Server) GetFlightInfoStatement(ctx context.Context, cmd flightsql.StatementQuery, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	sd, err := s.describeQuery(ctx, cmd.GetQuery())
	if err != nil {
		return nil, err
	}
	if len(sd.ParamOIDs) > 0 {
		return nil, status.Errorf(codes.InvalidArgument, "the query has %d parameters: prepare it and bind them", len(sd.ParamOIDs))
	}
	return s.flightInfo(desc, resultSchema(sd), statement{Query: cmd.GetQuery(), ID: newID()})
}

// GetSchemaStatement is the result schema of a query.
func (s *Server) GetSchemaStatement(ctx context.Context, cmd flightsql.StatementQuery, _ *flight.FlightDescriptor) (*flight.SchemaResult, error) {
	sd, err := s.describeQuery(ctx, cmd.GetQuery())
	if err != nil {
		return nil, err
	}
	return &flight.SchemaResult{Schema: flight.SerializeSchema(resultSchema(sd), s.mem)}, nil
}

// DoGetStatement runs a query of a ticket.
func (s *Server) DoGetStatement(ctx context.Context, ticket flightsql.StatementQueryTicket) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	sess, err := s.session(ctx)
	if err != nil {
		return nil, nil, err
	}
	var st statement
	if err := json.Unmarshal(ticket.GetStatementHandle(), &st); err != nil {
		return nil, nil, status.Error(codes.InvalidArgument, "malformed ticket")
	}
	return s.execute(ctx, sess, st)
}

// DoPutCommandStatementUpdate runs a statement that returns no rows.
func (s *Server) DoPutCommandStatementUpdate(ctx context.Context, cmd flightsql.StatementUpdate) (int64, error) {
	sess, err := s.session(ctx)
	if err != nil {
		return 0, err
	}
	return s.update(ctx, sess, cmd.GetQuery(), nil)
}

// CreatePreparedStatement has PostgreSQL describe the statement: the
// types of its parameters and of its result.
func (s *Server) CreatePreparedStatement(ctx context.Context, req flightsql.ActionCreatePreparedStatementRequest) (flightsql.ActionCreatePreparedStatementResult, error) {
	var res flightsql.ActionCreatePreparedStatementResult
	sess, err := s.session(ctx)
	if err != nil {
		return res, err
	}
	sd, err := s.describe(ctx, sess, req.GetQuery())
	if err != nil {
		return res, toStatus(err)
	}
	handle := newID()
	sess.mu.Lock()
	sess.prepared[handle] = &prepared{query: req.GetQuery(), desc: sd, params: make([]*string, len(sd.ParamOIDs))}
	sess.mu.Unlock()
	isUpdate := len(sd.Fields) == 0
	res.Handle = []byte(handle)
	res.DatasetSchema = resultSchema(sd)
	res.ParameterSchema = paramSchema(sd)
	res.IsUpdate = &isUpdate
	return res, nil
}

// ClosePreparedStatement forgets a prepared statement.
func (s *Server) ClosePreparedStatement(ctx context.Context, req flightsql.ActionClosePreparedStatementRequest) error {
	sess, err := s.session(ctx)
	if err != nil {
		return err
	}
	sess.mu.Lock()
	delete(sess.prepared, string(req.GetPreparedStatementHandle()))
	sess.mu.Unlock()
	return nil
}

func (sess *session) preparedStatement(handle []byte) (*prepared, error) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	p := sess.prepared[string(handle)]
	if p == nil {
		return nil, status.Error(codes.NotFound, "no such prepared statement (closed, or made by another session)")
	}
	return p, nil
}

// DoPutPreparedStatementQuery binds parameter values: the last row of
// the batches the client sends.
func (s *Server) DoPutPreparedStatementQuery(ctx context.Context, cmd flightsql.PreparedStatementQuery, r flight.MessageReader, _ flight.MetadataWriter) ([]byte, error) {
	sess, err := s.session(ctx)
	if err != nil {
		return nil, err
	}
	p, err := sess.preparedStatement(cmd.GetPreparedStatementHandle())
	if err != nil {
		return nil, err
	}
	rows, err := readParams(r, len(p.desc.ParamOIDs))
	if err != nil {
		return nil, err
	}
	if len(rows) > 0 {
		sess.mu.Lock()
		p.params = rows[len(rows)-1]
		sess.mu.Unlock()
	}
	return cmd.GetPreparedStatementHandle(), nil
}

// DoPutPreparedStatementUpdate runs a prepared statement once per row of
// parameters the client sends.
func (s *Server) DoPutPreparedStatementUpdate(ctx context.Context, cmd flightsql.PreparedStatementUpdate, r flight.MessageReader) (int64, error) {
	sess, err := s.session(ctx)
	if err != nil {
		return 0, err
	}
	p, err := sess.preparedStatement(cmd.GetPreparedStatementHandle())
	if err != nil {
		return 0, err
	}
	rows, err := readParams(r, len(p.desc.ParamOIDs))
	if err != nil {
		return 0, err
	}
	if len(rows) == 0 {
		sess.mu.Lock()
		rows = [][]*string{p.params}
		sess.mu.Unlock()
	}
	var total int64
	for _, row := range rows {
		n, err := s.update(ctx, sess, p.query, row)
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// readParams reads the parameter rows of a DoPut as PostgreSQL text.
func readParams(r flight.MessageReader, n int) ([][]*string, error) {
	var rows [][]*string
	for r.Next() {
		rec := r.RecordBatch()
		if int(rec.NumCols()) != n {
			return nil, status.Errorf(codes.InvalidArgument, "the statement has %d parameters, the batch %d columns", n, rec.NumCols())
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			row := make([]*string, n)
			for j, col := range rec.Columns() {
				// A column of Arrow's null type (what ADBC binds Python's
				// None as) has no validity bitmap: IsNull is false there.
				if col.IsNull(i) || col.DataType().ID() == arrow.NULL {
					continue
				}
				v, err := paramText(col, i)
				if err != nil {
					return nil, status.Errorf(codes.InvalidArgument, "parameter $%d: %v", j+1, err)
				}
				row[j] = &v
			}
			rows = append(rows, row)
		}
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	return rows, nil
}

// GetFlightInfoPreparedStatement describes a prepared query with its bound
// parameters.
func (s *Server) GetFlightInfoPreparedStatement(ctx context.Context, cmd flightsql.PreparedStatementQuery, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	sess, err := s.session(ctx)
	if err != nil {
		return nil, err
	}
	p, err := sess.preparedStatement(cmd.GetPreparedStatementHandle())
	if err != nil {
		return nil, err
	}
	sess.mu.Lock()
	params := append([]*string(nil), p.params...)
	sess.mu.Unlock()
	return s.flightInfo(desc, resultSchema(p.desc), statement{Query: p.query, Params: params, ID: newID()})
}

// GetSchemaPreparedStatement is a prepared query's result schema.
func (s *Server) GetSchemaPreparedStatement(ctx context.Context, cmd flightsql.PreparedStatementQuery, _ *flight.FlightDescriptor) (*flight.SchemaResult, error) {
	sess, err := s.session(ctx)
	if err != nil {
		return nil, err
	}
	p, err := sess.preparedStatement(cmd.GetPreparedStatementHandle())
	if err != nil {
		return nil, err
	}
	return &flight.SchemaResult{Schema: flight.SerializeSchema(resultSchema(p.desc), s.mem)}, nil
}

// DoGetPreparedStatement runs a prepared query (clients that skip
// GetFlightInfo).
func (s *Server) DoGetPreparedStatement(ctx context.Context, cmd flightsql.PreparedStatementQuery) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	sess, err := s.session(ctx)
	if err != nil {
		return nil, nil, err
	}
	p, err := sess.preparedStatement(cmd.GetPreparedStatementHandle())
	if err != nil {
		return nil, nil, err
	}
	sess.mu.Lock()
	params := append([]*string(nil), p.params...)
	sess.mu.Unlock()
	return s.execute(ctx, sess, statement{Query: p.query, Params: params})
}

// CancelFlightInfo stops the query of a FlightInfo: DuckDB (or
// PostgreSQL) stops executing it, and a DoGet not yet begun fails.
func (s *Server) CancelFlightInfo(ctx context.Context, req *flight.CancelFlightInfoRequest) (flight.CancelFlightInfoResult, error) {
	notCancellable := flight.CancelStatusNotCancellable
	sess, err := s.session(ctx)
	if err != nil {
		return flight.CancelFlightInfoResult{Status: notCancellable}, err
	}
	info := req.GetInfo()
	if info == nil || len(info.Endpoint) == 0 || info.Endpoint[0].Ticket == nil {
		return flight.CancelFlightInfoResult{Status: notCancellable}, status.Error(codes.InvalidArgument, "the FlightInfo has no ticket")
	}
	var st statement
	tk, err := flightsql.GetStatementQueryTicket(info.Endpoint[0].Ticket)
	if err == nil {
		err = json.Unmarshal(tk.GetStatementHandle(), &st)
	}
	if err != nil || st.ID == "" {
		return flight.CancelFlightInfoResult{Status: notCancellable}, status.Error(codes.InvalidArgument, "not a ticket of this service")
	}
	sess.cancel(st.ID)
	return flight.CancelFlightInfoResult{Status: flight.CancelStatusCancelled}, nil
}

// a batch of one record, for the metadata answers.
func oneBatch(rec arrow.RecordBatch) <-chan flight.StreamChunk {
	ch := make(chan flight.StreamChunk, 1)
	ch <- flight.StreamChunk{Data: rec}
	close(ch)
	return ch
}
