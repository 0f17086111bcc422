package flight

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Authentication is PostgreSQL's: a Handshake with Basic credentials opens
// a connection to PostgreSQL as that role, with that password, over TCP to
// the server's own address, so pg_hba.conf decides (a trust cluster trusts,
// a scram cluster checks the password). The answer is a bearer token; the
// session behind it is one PostgreSQL connection as the role (so a SET
// lasts for the session; after a failure it reconnects), and every
// statement runs on it, with the role's privileges. A token expires after
// TokenTTL without use, and its connection closes.

// The header a client names its database with; without it, the database
// is defaultDatabase.
const (
	databaseHeader  = "database"
	defaultDatabase = "postgres"
)

// session is an authenticated client.
type session struct {
	token    string
	role     string
	database string
	pool     *pgxpool.Pool

	mu       sync.Mutex
	lastUsed time.Time
	prepared map[string]*prepared // handle → statement
	running  map[string]context.CancelCauseFunc
}

type sessionKey struct{}

func sessionOf(ctx context.Context) *session {
	s, _ := ctx.Value(sessionKey{}).(*session)
	return s
}

// sessions are the live tokens.
type sessions struct {
	ttl     time.Duration
	connect func(ctx context.Context, role, password, database string) (*pgxpool.Pool, error)

	mu     sync.Mutex
	byTok  map[string]*session
	closed bool
}

func (ss *sessions) login(ctx context.Context, role, password, database string) (*session, error) {
	if role == "" {
		return nil, status.Error(codes.Unauthenticated, "a role name is required")
	}
	if database == "" {
		database = defaultDatabase
	}
	pool, err := ss.connect(ctx, role, password, database)
	if err != nil {
		return nil, authError(err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		pool.Close()
		return nil, err
	}
	s := &session{token: base64.RawURLEncoding.EncodeToString(raw[:]), role: role, database: database, pool: pool,
		lastUsed: time.Now(), prepared: map[string]*prepared{}, running: map[string]context.CancelCauseFunc{}}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		pool.Close()
		return nil, status.Error(codes.Unavailable, "the Flight service is shutting down")
	}
	ss.byTok[s.token] = s
	return s, nil
}

// authError is a failed connection as the client sees it: authentication
// failures (SQLSTATE class 28, a database that does not exist or may not be
// connected to) are UNAUTHENTICATED; others UNAVAILABLE.
func authError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "28"), pgErr.Code == "3D000", pgErr.Code == "42501":
			return withSQLState(codes.Unauthenticated, pgErr)
		}
		return withSQLState(codes.Unavailable, pgErr)
	}
	return status.Errorf(codes.Unavailable, "could not connect to PostgreSQL: %v", err)
}

func (ss *sessions) get(token string) (*session, error) {
	ss.mu.Lock()
	s := ss.byTok[token]
	ss.mu.Unlock()
	if s == nil {
		return nil, status.Error(codes.Unauthenticated, "invalid or expired token: authenticate again")
	}
	s.mu.Lock()
	expired := time.Since(s.lastUsed) > ss.ttl
	s.lastUsed = time.Now()
	s.mu.Unlock()
	if expired {
		ss.drop(s)
		return nil, status.Error(codes.Unauthenticated, "the token has expired: authenticate again")
	}
	return s, nil
}

func (ss *sessions) drop(s *session) {
	ss.mu.Lock()
	delete(ss.byTok, s.token)
	ss.mu.Unlock()
	s.pool.Close()
}

// sweep closes expired sessions until ctx ends.
func (ss *sessions) sweep(ctx context.Context) {
	t := time.NewTicker(min(ss.ttl/2, time.Minute))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			ss.mu.Lock()
			ss.closed = true
			all := ss.byTok
			ss.byTok = map[string]*session{}
			ss.mu.Unlock()
			for _, s := range all {
				s.pool.Close()
			}
			return
		case <-t.C:
		}
		var old []*session
		ss.mu.Lock()
		for _, s := range ss.byTok {
			s.mu.Lock()
			if time.Since(s.lastUsed) > ss.ttl {
				old = append(old, s)
			}
			s.mu.Unlock()
		}
		ss.mu.Unlock()
		for _, s := range old {
			ss.drop(s)
		}
	}
}

// authorization reads the authorization header: its scheme and value.
func authorization(ctx context.Context) (scheme, value string) {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		scheme, value, _ = strings.Cut(strings.TrimSpace(v), " ")
		return scheme, strings.TrimLeft(value, " ")
	}
	return "", ""
}

func firstHeader(ctx context.Context, name string) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// handshake authenticates Basic credentials and answers with the token in
// the authorization header (and trailer, where some clients look).
func (ss *sessions) handshake(ctx context.Context, stream grpc.ServerStream) error {
	scheme, value := authorization(ctx)
	if !strings.EqualFold(scheme, "Basic") {
		return status.Error(codes.Unauthenticated, "authenticate with Basic credentials (a PostgreSQL role and its password)")
	}
	raw, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		if raw, err = base64.RawStdEncoding.DecodeString(value); err != nil {
			return status.Error(codes.Unauthenticated, "malformed Basic credentials")
		}
	}
	role, password, ok := strings.Cut(string(raw), ":")
	if !ok {
		return status.Error(codes.Unauthenticated, "malformed Basic credentials")
	}
	s, err := ss.login(ctx, role, password, firstHeader(ctx, databaseHeader))
	if err != nil {
		return err
	}
	md := metadata.Pairs("authorization", "Bearer "+s.token)
	stream.SetHeader(md)
	stream.SetTrailer(md)
	return nil
}

// middleware serves Handshake and requires a valid bearer token on every
// other call.
func (ss *sessions) middleware() flight.ServerMiddleware {
	return flight.ServerMiddleware{
		Unary: func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			s, err := ss.authenticated(ctx)
			if err != nil {
				return nil, err
			}
			return handler(context.WithValue(ctx, sessionKey{}, s), req)
		},
		Stream: func(srv any, stream grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			if strings.HasSuffix(info.FullMethod, "/Handshake") {
				if err := ss.handshake(stream.Context(), stream); err != nil {
					return err
				}
				return handler(srv, stream)
			}
			s, err := ss.authenticated(stream.Context())
			if err != nil {
				return err
			}
			return handler(srv, &sessionStream{ServerStream: stream, ctx: context.WithValue(stream.Context(), sessionKey{}, s)})
		},
	}
}

func (ss *sessions) authenticated(ctx context.Context) (*session, error) {
	scheme, value := authorization(ctx)
	if !strings.EqualFold(scheme, "Bearer") || value == "" {
		return nil, status.Error(codes.Unauthenticated, "authenticate first: Handshake with Basic credentials, then send the bearer token")
	}
	return ss.get(value)
}

type sessionStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *sessionStream) Context() context.Context { return s.ctx }

// poolConfig is the pool of a session's connections as role.
func poolConfig(host string, port uint16, role, password, database string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig("")
	if err != nil {
		return nil, err
	}
	cc := cfg.ConnConfig
	cc.Host, cc.Port, cc.User, cc.Password, cc.Database = host, port, role, password, database
	cc.TLSConfig = nil
	cc.Fallbacks = nil
	cc.ConnectTimeout = 10 * time.Second
	cc.RuntimeParams = map[string]string{
		"application_name": "mooncake-flight",
		// Values are read back from their text: fixed formats.
		"DateStyle":     "ISO, MDY",
		"IntervalStyle": "postgres",
		"bytea_output":  "hex",
		// EXPLAIN shows a mirror scan's request (see query.go).
		"mooncake.explain_scan_request": "on",
	}
	cc.DefaultQueryExecMode = pgx.QueryExecModeExec
	// One connection: a token is one PostgreSQL session, whose SET lasts.
	cfg.MaxConns = 1
	cfg.MinConns = 0
	cfg.MaxConnIdleTime = 5 * time.Minute
	return cfg, nil
}

func connectPool(ctx context.Context, host string, port uint16, role, password, database string) (*pgxpool.Pool, error) {
	cfg, err := poolConfig(host, port, role, password, database)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	// Connect now, so that a wrong password fails the handshake.
	c, err := pool.Acquire(ctx)
	if err != nil {
		pool.Close()
		return nil, err
	}
	c.Release()
	return pool, nil
}
