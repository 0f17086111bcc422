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

	"github.com/pgmooncake/mooncake/catalog"
	"github.com/pgmooncake/mooncake/sidecar/metrics"
	"github.com/pgmooncake/mooncake/sql"
	"github.com/pgmooncake/mooncake/sql/lake/remote"
)

// Version is the sidecar's version, reported by status.
var Version = "0.2.0"

// Options configure a Service.
type Options struct {
	Base      *pgx.ConnConfig // the cluster, as its superuser; database left empty
	Engine    *sql.Engine
	Warehouse string        // Iceberg warehouse directory
	CDC       bool          // apply logical replication (false: reads only)
	Flush     time.Duration // how often changes are committed to Iceberg
	// OrphanSweep is how often the files of columnstore tables that no
	// committed version references (left by crashes) are removed; 0: never.
	OrphanSweep time.Duration
	TmpDir      string // spools of changes and DuckDB spill files
	MaxQueries  int    // scans DuckDB runs at once
	MemoryLimit string // DuckDB's, for out-of-memory errors
	Threads     int
	Fatal       func(error) // ends the process when memory and Iceberg disagree
	// LakeCache holds what queries fetch of remote objects (s3:// paths);
	// nil: remote paths are refused.
	LakeCache *remote.Store
	// TableCopies holds the local copies of the files of Iceberg tables
	// on object stores (with LakeCache's client and the secrets).
	TableCopies string
}

// Service serves the mirrors of one PostgreSQL cluster.
type Service struct {
	srv *server
}

// New makes a Service; Discover and the Serve functions start its work.
func New(ctx context.Context, o Options) *Service {
	sec := &secrets{by: map[string]secretsRead{}}
	dbs := &databases{base: o.Base, engine: o.Engine, warehouse: o.Warehouse, cdc: o.CDC, flush: o.Flush, sweep: o.OrphanSweep,
		ctx: ctx, byName: map[string]*database{}, spoolDir: o.TmpDir, fatal: o.Fatal}
	sec.dbs = dbs
	dbs.secrets = sec
	if o.LakeCache != nil && o.TableCopies != "" {
		catalog.SetObjectStore(tableObjects{st: o.LakeCache, secrets: sec}, o.TableCopies)
	}
	srv := &server{dbs: dbs, queries: newQueries(o.MaxQueries, o.MemoryLimit, o.Threads),
		remote: o.LakeCache, secrets: sec}
	dbs.pins.backends = srv.backendXacts
	return &Service{srv: srv}
}

// Discover opens the databases that have mirrors and keeps watching for
// new ones, until ctx ends.
func (s *Service) Discover(ctx context.Context) { s.srv.dbs.discover(ctx) }

// ServeFDW answers the extension's requests on ln (the Unix socket) until
// ctx ends.
func (s *Service) ServeFDW(ctx context.Context, ln net.Listener) { s.srv.serve(ctx, ln, "") }

// ServeFDWTCP is ServeFDW for the TCP listener: each connection first
// proves it knows secret.
func (s *Service) ServeFDWTCP(ctx context.Context, ln net.Listener, secret string) {
	s.srv.serve(ctx, ln, secret)
}

// Engine is the DuckDB engine queries run in.
func (s *Service) Engine() *sql.Engine { return s.srv.dbs.engine }

// ScanArrow runs a scan request, as the FDW sends it, and returns DuckDB's
// result for the caller to stream. The caller closes it with the error
// the streaming ended with (nil for success), for the queries' figures.
// When ctx ends (the client went away) DuckDB stops the query.
func (s *Service) ScanArrow(ctx context.Context, req *Request) (*ArrowScan, error) {
	start := time.Now()
	// The query's context ends only through cancel, with the cause that
	// tells the figures the client went away.
	qctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	stop := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			cancel(&clientGone{at: time.Now()})
		case <-stop:
		}
	}()
	var interrupted time.Time
	rs, err := s.srv.openScan(qctx, req, &interrupted)
	if err != nil {
		s.srv.queries.finish(qctx, metrics.Flight, start, err, interrupted)
		close(stop)
		cancel(nil)
		return nil, err
	}
	return &ArrowScan{RunningScan: rs, done: func(err error) {
		rs.Close()
		s.srv.queries.finish(qctx, metrics.Flight, start, err, time.Time{})
		close(stop)
		cancel(nil)
	}}, nil
}

// ArrowScan is a scan run for a front end other than the FDW.
type ArrowScan struct {
	*RunningScan
	done func(error)
}

// Finish ends the scan; err is how its streaming ended.
func (a *ArrowScan) Finish(err error) {
	if a.done != nil {
		a.done(err)
		a.done = nil
	}
}

// QueryError maps an error of reading a scan's batches to a SQLSTATE.
func (s *Service) QueryError(err error) error { return s.srv.queries.queryError(err) }

// SetFlightAddress records the Arrow Flight SQL service's address for
// status ("" when it does not listen).
func (s *Service) SetFlightAddress(addr string) { s.srv.flightAddr.Store(&addr) }

// DatabaseConfig is the superuser connection to database name.
func (s *Service) DatabaseConfig(name string) *pgx.ConnConfig { return s.srv.dbs.config(name) }
