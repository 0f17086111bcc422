package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmooncake/mooncake/sidecar/metrics"
	"github.com/pgmooncake/mooncake/sql"
)

// queries bounds how many scans run in DuckDB at once and keeps the
// figures the status request reports about them.
//
// A scan holds one of the slots while DuckDB executes its query; the
// result is then materialized, and streaming it to the backend needs no
// slot. Scans beyond the limit wait for a slot (and stop waiting when
// their client hangs up). DuckDB's memory_limit is shared by every query:
// the limit keeps each running query a usable share of it.
type queries struct {
	slots       chan struct{}
	memoryLimit string // as given to DuckDB
	threads     int

	queued    atomic.Int64 // waiting for a slot
	running   atomic.Int64 // executing in DuckDB
	open      atomic.Int64 // results held on a DuckDB connection (executing or streaming)
	completed atomic.Int64
	cancelled atomic.Int64 // ended because the client hung up
	failed    atomic.Int64 // ended with an error, cancellations excepted
	oom       atomic.Int64 // of which out of memory
	planned   atomic.Int64 // "plan" requests answered (a backend's planning)

	mu         sync.Mutex
	lastCancel *cancelTiming
}

// cancelTiming is when the sidecar learnt that a scan's client had hung up
// and when the scan's DuckDB work had stopped.
type cancelTiming struct {
	HangupUnixMicros  int64 `json:"hangup_unix_us"`
	StoppedUnixMicros int64 `json:"stopped_unix_us"`
	StopMicros        int64 `json:"stop_us"`   // stopped - hangup
	Executing         bool  `json:"executing"` // the query was still executing in DuckDB (not streaming its result)
}

func newQueries(maxRunning int, memoryLimit string, threads int) *queries {
	if maxRunning < 1 {
		maxRunning = 1
	}
	return &queries{slots: make(chan struct{}, maxRunning), memoryLimit: memoryLimit, threads: threads}
}

// acquire waits for a slot; release must be called once the query has
// executed.
func (q *queries) acquire(ctx context.Context) (release func(), err error) {
	select {
	case q.slots <- struct{}{}:
	default:
		q.queued.Add(1)
		select {
		case q.slots <- struct{}{}:
			q.queued.Add(-1)
		case <-ctx.Done():
			q.queued.Add(-1)
			return nil, ctx.Err()
		}
	}
	q.running.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			q.running.Add(-1)
			<-q.slots
		})
	}, nil
}

// finish counts a scan of frontend (metrics.FDW, metrics.Flight) that
// started at start and has ended with err (nil for success), and records
// how long it took to stop after its client hung up: until interrupted,
// when DuckDB stopped executing the query, or until now when the
// cancellation found the query queued or streaming its result.
func (q *queries) finish(ctx context.Context, frontend string, start time.Time, err error, interrupted time.Time) {
	var gone *clientGone
	outcome := metrics.OK
	defer func() { metrics.Default.Query(frontend, outcome, time.Since(start)) }()
	switch {
	case ctx.Err() != nil && errors.As(context.Cause(ctx), &gone):
		stopped, executing := interrupted, true
		if stopped.IsZero() {
			stopped, executing = time.Now(), false
		}
		t := &cancelTiming{HangupUnixMicros: gone.at.UnixMicro(), StoppedUnixMicros: stopped.UnixMicro(),
			StopMicros: stopped.Sub(gone.at).Microseconds(), Executing: executing}
		q.mu.Lock()
		q.lastCancel = t
		q.mu.Unlock()
		q.cancelled.Add(1)
		outcome = metrics.Cancelled
		slog.Info("scan cancelled: the client hung up", "stop_ms", float64(t.StopMicros)/1000, "executing", executing)
	case err != nil:
		q.failed.Add(1)
		outcome = metrics.Failed
		metrics.Default.Error(metrics.ErrQuery)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "53200" {
			q.oom.Add(1)
			metrics.Default.Error(metrics.ErrOutOfMemory)
		}
	default:
		q.completed.Add(1)
	}
}

// status is the "queries" object of the status answer.
func (q *queries) status() map[string]any {
	q.mu.Lock()
	last := q.lastCancel
	q.mu.Unlock()
	return map[string]any{
		"max_running": cap(q.slots), "memory_limit": q.memoryLimit, "threads": q.threads,
		"queued": q.queued.Load(), "running": q.running.Load(), "open": q.open.Load(),
		"completed": q.completed.Load(), "cancelled": q.cancelled.Load(),
		"failed": q.failed.Load(), "out_of_memory": q.oom.Load(),
		"planned": q.planned.Load(), "last_cancel": last,
	}
}

// clientGone is the cause of a request's cancellation when its client
// closed the connection.
type clientGone struct{ at time.Time }

func (g *clientGone) Error() string { return "the client closed the connection" }

// queryError is sql.QueryError, with DuckDB running out of memory reported
// as PostgreSQL's out_of_memory (53200) naming the limit.
func (q *queries) queryError(err error) error {
	var de *duckdb.Error
	if errors.As(err, &de) && de.Type == duckdb.ErrorTypeOutOfMemory {
		msg, _, _ := strings.Cut(de.Msg, "\n")
		return &pgconn.PgError{Code: "53200", Message: "out of memory in the mooncake sidecar: the query needs more than DuckDB's memory_limit",
			Detail: fmt.Sprintf("memory_limit is %s, shared by the queries running at once (at most %d). DuckDB: %s", q.memoryLimit, cap(q.slots), msg),
			Hint:   "Raise the sidecar's memory limit (MOONCAKE_MEMORY_LIMIT in the server's environment), or make the query need less memory."}
	}
	return sql.QueryError(err)
}
