package bench

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	loadRate    = 2000                   // single-row insert transactions per second
	loadConns   = 4                      // connections sharing the load
	warmup      = 2 * time.Second        // load before the first probe
	probeFor    = 20 * time.Second       // how long probes run
	probeEvery  = 20 * time.Millisecond  // one probe per period
	probeGiveUp = 5 * time.Second        // a probe not visible by then counts as this long
	pollPause   = 500 * time.Microsecond // between two polls of one probe
)

// TestCommitToVisibleLatency measures how long a committed row takes to
// show in a mirror read by another session, while a steady load of
// single-row insert transactions runs on another table.
//
// The probe rows go to a small table of their own, mirrored through the same
// slot and stream as the load's table: a marker is visible only once every
// transaction before it in the WAL is applied, and polling the small mirror
// costs the same all along the run. Each probe commits a marker, then polls
// for it from a connection that never writes (and with
// mooncake.read_wait_timeout = 0, so no read waits for a commit); the
// latency is from COMMIT returning to the poll that saw the marker
// returning.
func TestCommitToVisibleLatency(t *testing.T) {
	requireBench(t)
	ctx := context.Background()
	c, conn := startCluster(t)
	mustExec(t, conn, "CREATE TABLE load (id bigint PRIMARY KEY, worker int, note text, at timestamptz)")
	mustExec(t, conn, "CREATE TABLE probe (id bigint PRIMARY KEY, at timestamptz)")
	mustExec(t, conn, "CALL mooncake.create_table('load_iceberg', 'load')")
	mustExec(t, conn, "CALL mooncake.create_table('probe_iceberg', 'probe')")

	writer := c.Conn(t, "postgres")
	reader := c.Conn(t, "postgres")
	mustExec(t, reader, "SET mooncake.read_wait_timeout = 0")

	lg := &loadGen{}
	lctx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	for w := 0; w < loadConns; w++ {
		lg.start(lctx, c.Conn(t, "postgres"), w)
	}
	time.Sleep(warmup)

	// lat is up to the return of the poll that saw the marker; lower is up
	// to the start of the last poll that did not: the marker became
	// visible in between.
	var lat, lower, polls []time.Duration
	late := 0
	doneBefore, windowStart := lg.done.Load(), time.Now()
	next := windowStart
	for id := int64(1); time.Since(windowStart) < probeFor; id++ {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		next = next.Add(probeEvery)
		if _, err := writer.Exec(ctx, "INSERT INTO probe VALUES ($1, now())", id); err != nil {
			t.Fatalf("probe %d: %v", id, err)
		}
		committed := time.Now()
		lastMiss := committed
		for {
			pollStart := time.Now()
			seen, err := probeVisible(ctx, reader, id)
			polls = append(polls, time.Since(pollStart))
			if err != nil {
				t.Fatalf("polling for probe %d: %v", id, err)
			}
			if seen {
				lat = append(lat, time.Since(committed))
				lower = append(lower, lastMiss.Sub(committed))
				break
			}
			if time.Since(committed) > probeGiveUp {
				lat = append(lat, probeGiveUp)
				lower = append(lower, probeGiveUp)
				late++
				break
			}
			lastMiss = pollStart
			time.Sleep(pollPause)
		}
	}
	window := time.Since(windowStart)
	doneInWindow := lg.done.Load() - doneBefore
	stopLoad()
	lg.wg.Wait()
	if err := lg.failure(); err != nil {
		t.Fatalf("load: %v", err)
	}

	s, lo := sortedCopy(lat), sortedCopy(lower)
	figure("commit-to-visible: p50 %s, p90 %s, p99 %s, max %s over %d probes (targets p50 <= 10 ms, p99 <= 25 ms)",
		ms(percentile(s, 50)), ms(percentile(s, 90)), ms(percentile(s, 99)), ms(s[len(s)-1]), len(s))
	figure("commit-to-visible: lower bounds (to the last poll that missed): p50 %s, p90 %s, p99 %s, max %s",
		ms(percentile(lo, 50)), ms(percentile(lo, 90)), ms(percentile(lo, 99)), ms(lo[len(lo)-1]))
	commits, ps := sortedCopy(lg.latencies()), sortedCopy(polls)
	figure("commit-to-visible: load %s tx/s achieved of %s tx/s asked, on %d connections (their commits: p50 %s, p99 %s); probes not visible within %v: %d",
		thousands(perSecond(doneInWindow, window)), thousands(loadRate), loadConns,
		ms(percentile(commits, 50)), ms(percentile(commits, 99)), probeGiveUp, late)

	// The mirror must hold the load once it stops: otherwise the probes
	// measured a stream that had fallen behind or skipped rows.
	total := queryInt(t, conn, "SELECT count(*) FROM load")
	caughtUp, ok := waitFor(30*time.Second, func() bool {
		return queryInt(t, reader, "SELECT count(*) FROM load_iceberg") == total
	})
	if !ok {
		t.Errorf("load_iceberg does not hold the %d rows of load %v after the load stopped", total, caughtUp)
	}
	idle := pollCost(t, reader, 50)
	figure("commit-to-visible: one poll of the probe mirror takes p50 %s, p99 %s under the load; p50 %s, p99 %s once it stopped",
		ms(percentile(ps, 50)), ms(percentile(ps, 99)), ms(percentile(idle, 50)), ms(percentile(idle, 99)))
}

// probeVisible polls the probe mirror for marker id once.
func probeVisible(ctx context.Context, reader *pgx.Conn, id int64) (bool, error) {
	var one int
	err := reader.QueryRow(ctx, "SELECT 1 FROM probe_iceberg WHERE id = $1", id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// pollCost times n polls of the probe mirror and returns them sorted.
func pollCost(t *testing.T, reader *pgx.Conn, n int) []time.Duration {
	t.Helper()
	var ds []time.Duration
	for i := 0; i < n; i++ {
		start := time.Now()
		if _, err := probeVisible(context.Background(), reader, -1); err != nil {
			t.Fatalf("polling the probe mirror: %v", err)
		}
		ds = append(ds, time.Since(start))
	}
	return sortedCopy(ds)
}

// loadGen runs single-row insert transactions at a fixed total rate, spread
// over connections that each keep to their own schedule.
type loadGen struct {
	wg     sync.WaitGroup
	nextID atomic.Int64
	done   atomic.Int64 // committed transactions

	mu   sync.Mutex
	err  error
	lats []time.Duration // commit latencies, every connection's
}

// start runs connection w's share of the load until ctx ends. A connection
// that falls more than maxLag behind its schedule skips the missed slots
// rather than bursting, so the achieved rate shows the shortfall.
func (lg *loadGen) start(ctx context.Context, conn *pgx.Conn, w int) {
	const maxLag = 50 * time.Millisecond
	every := time.Duration(loadConns) * time.Second / loadRate
	lg.wg.Add(1)
	go func() {
		defer lg.wg.Done()
		var lats []time.Duration
		defer func() {
			lg.mu.Lock()
			lg.lats = append(lg.lats, lats...)
			lg.mu.Unlock()
		}()
		next := time.Now().Add(every * time.Duration(w) / loadConns)
		for ctx.Err() == nil {
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			} else if -d > maxLag {
				next = time.Now()
			}
			next = next.Add(every)
			id := lg.nextID.Add(1)
			start := time.Now()
			_, err := conn.Exec(ctx, "INSERT INTO load VALUES ($1, $2, 'steady load', now())", id, w)
			if err != nil {
				if ctx.Err() == nil {
					lg.mu.Lock()
					lg.err = errors.Join(lg.err, err)
					lg.mu.Unlock()
				}
				return
			}
			lats = append(lats, time.Since(start))
			lg.done.Add(1)
		}
	}()
}

func (lg *loadGen) failure() error {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	return lg.err
}

func (lg *loadGen) latencies() []time.Duration {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	return lg.lats
}

// waitFor polls cond every 100 ms until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			return time.Since(start), false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start), true
}
