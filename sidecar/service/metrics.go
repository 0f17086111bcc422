package service

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/pgmooncake/mooncake/catalog"
	"github.com/pgmooncake/mooncake/cdc"
	"github.com/pgmooncake/mooncake/sidecar/metrics"
)

// SetMetricsAddress records the metrics endpoint's address for status (""
// when it does not listen).
func (s *Service) SetMetricsAddress(addr string) { s.srv.metricsAddr.Store(&addr) }

// MetricsSnapshot is the state a metrics scrape reports: every mirror's
// lag (the figures of mooncake.columnstore_tables), admission into DuckDB
// and DuckDB's memory.
func (s *Service) MetricsSnapshot(ctx context.Context) *metrics.Snapshot {
	r := s.srv.dbs
	r.mu.Lock()
	dbs := make([]*database, 0, len(r.byName))
	for _, d := range r.byName {
		dbs = append(dbs, d)
	}
	r.mu.Unlock()

	snap := &metrics.Snapshot{}
	var walLSN uint64
	walKnown := false
	if len(dbs) > 0 {
		lsn, err := s.walPosition(ctx, dbs[0].name)
		if err != nil {
			slog.Warn("metrics: cannot read the server's WAL position; lag is left out", "err", err)
		} else {
			walLSN, walKnown = lsn, true
		}
	}
	now := time.Now()
	for _, d := range dbs {
		d.mu.Lock()
		stream := d.stream
		d.mu.Unlock()
		var visible uint64
		var lastCommit time.Time
		if stream != nil {
			visible, lastCommit = stream.VisibleLSN(), stream.LastCommitTime()
		}
		for _, m := range d.mirrors.All() {
			state, _ := mirrorState(m)
			files, dels := m.FileCounts()
			mm := metrics.Mirror{Database: d.name, Schema: m.Namespace, Table: m.Name, State: state,
				UnflushedRows: m.TailRows(), DataFiles: files, DeleteFiles: dels}
			if walKnown && stream != nil {
				mm.LagKnown = true
				// As mooncake.columnstore_tables computes lag_bytes and
				// lag_seconds.
				if walLSN > visible {
					mm.LagBytes = int64(walLSN - visible)
					if !lastCommit.IsZero() {
						mm.LagSeconds = max(now.Sub(lastCommit).Seconds(), 0)
					}
				}
			}
			snap.Mirrors = append(snap.Mirrors, mm)
		}
	}

	q := s.srv.queries
	snap.Admission = metrics.Admission{MaxRunning: int64(cap(q.slots)), Queued: q.queued.Load(),
		Running: q.running.Load(), Open: q.open.Load(), ReadPins: int64(s.srv.dbs.pins.count())}
	if at, ok := catalog.OldestRead(); ok {
		snap.Admission.OldestRead = time.Since(at)
	}
	s.duckdbMemory(ctx, snap)
	return snap
}

// duckdbMemory fills in DuckDB's memory by component and its limit.
func (s *Service) duckdbMemory(ctx context.Context, snap *metrics.Snapshot) {
	db := s.srv.dbs.engine.DB
	rows, err := db.QueryContext(ctx, "SELECT tag, memory_usage_bytes, temporary_storage_bytes FROM duckdb_memory()")
	if err != nil {
		slog.Warn("metrics: cannot read duckdb_memory()", "err", err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var m metrics.DuckDBMemory
		if err := rows.Scan(&m.Tag, &m.MemoryBytes, &m.TemporaryBytes); err != nil {
			slog.Warn("metrics: cannot read duckdb_memory()", "err", err)
			return
		}
		snap.DuckDB = append(snap.DuckDB, m)
	}
	var limit string
	if err := db.QueryRowContext(ctx, "SELECT current_setting('memory_limit')").Scan(&limit); err == nil {
		snap.DuckDBMemoryLimit, _ = parseDuckDBSize(limit)
	}
}

// parseDuckDBSize reads a size as DuckDB prints its settings ("1.5 GiB",
// "512.0 MiB", "4.0 GB", "1000 bytes").
func parseDuckDBSize(v string) (int64, bool) {
	num, unit, _ := strings.Cut(strings.TrimSpace(v), " ")
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, false
	}
	mult := map[string]float64{"": 1, "bytes": 1, "B": 1,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
		"KB": 1e3, "kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}[strings.TrimSpace(unit)]
	if mult == 0 {
		return 0, false
	}
	return int64(f * mult), true
}

// walPosition is pg_current_wal_lsn() of the cluster, read in database
// (one the sidecar serves, so that the scrape's short connection goes where
// the sidecar's catalog connects anyway: a connection to template1 would
// make CREATE DATABASE fail meanwhile).
func (s *Service) walPosition(ctx context.Context, database string) (uint64, error) {
	cfg := s.srv.dbs.config(database)
	cfg.RuntimeParams = map[string]string{"application_name": "mooncake-sidecar metrics", "search_path": "pg_catalog, pg_temp"}
	cdc.ServiceConfig(cfg)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var text string
	if err := conn.QueryRow(ctx, "SELECT pg_catalog.pg_current_wal_lsn()::text").Scan(&text); err != nil {
		return 0, err
	}
	lsn, err := pglogrepl.ParseLSN(text)
	return uint64(lsn), err
}
