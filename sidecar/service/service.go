// Package service is the sidecar's runtime: the databases it serves, their
// mirrors and replication streams, the read-your-writes wait, admission of
// queries into DuckDB and the mapping of its failures to SQLSTATEs. The
// FDW's socket protocol (server.go, PROTOCOL.md) and the Arrow Flight SQL
// service (package flight) are two front ends of one Service.
package service

import (
	"context"
	"net"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmooncake/mooncake/sql"
)

// Version is the sidecar's version, reported by status.
var Version = "0.1.0"

// Options configure a Service.
type Options struct {
	Base        *pgx.ConnConfig // the cluster, as its superuser; database left empty
	Engine      *sql.Engine
	Warehouse   string        // Iceberg warehouse directory
	CDC         bool          // apply logical replication (false: reads only)
	Flush       time.Duration // how often changes are committed to Iceberg
	TmpDir      string        // spools and copies
	MaxQueries  int           // scans DuckDB runs at once
	MemoryLimit string        // DuckDB's, for out-of-memory errors
	Threads     int
	Fatal       func(error) // ends the process when memory and Iceberg disagree
}

// Service serves the mirrors of one PostgreSQL cluster.
type Service struct {
	srv *server
}

// New makes a Service; Discover and the Serve functions start its work.
func New(ctx context.Context, o Options) *Service {
	dbs := &databases{base: o.Base, engine: o.Engine, warehouse: o.Warehouse, cdc: o.CDC, flush: o.Flush,
		ctx: ctx, byName: map[string]*database{}, spoolDir: o.TmpDir, fatal: o.Fatal}
	return &Service{srv: &server{dbs: dbs, tmpDir: o.TmpDir, queries: newQueries(o.MaxQueries, o.MemoryLimit, o.Threads)}}
}

// Discover opens the databases that have mirrors and keeps watching for
// new ones, until ctx ends.
func (s *Service) Discover(ctx context.Context) { s.srv.dbs.discover(ctx) }

// ServeFDW answers the extension's requests on ln (the Unix socket) until
// ctx ends.
func (s *Service) ServeFDW(ctx context.Context, ln net.Listener) { s.srv.serve(ctx, ln) }

// ServeFDWTCP is ServeFDW for the TCP listener: each connection first
// proves it knows secret.
func (s *Service) ServeFDWTCP(ctx context.Context, ln net.Listener, secret string) {
	t := *s.srv
	t.secret = secret
	t.serve(ctx, ln)
}

// Engine is the DuckDB engine queries run in.
func (s *Service) Engine() *sql.Engine { return s.srv.dbs.engine }
