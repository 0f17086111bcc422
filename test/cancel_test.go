package test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// sidecarQueries is the "queries" object of the sidecar's status answer.
type sidecarQueries struct {
	MaxRunning  int    `json:"max_running"`
	MemoryLimit string `json:"memory_limit"`
	Queued      int64  `json:"queued"`
	Running     int64  `json:"running"`
	Open        int64  `json:"open"`
	Completed   int64  `json:"completed"`
	Cancelled   int64  `json:"cancelled"`
	Failed      int64  `json:"failed"`
	OutOfMemory int64  `json:"out_of_memory"`
	ReadPins    int    `json:"read_pins"`
	LastCancel  *struct {
		HangupUnixMicros  int64 `json:"hangup_unix_us"`
		StoppedUnixMicros int64 `json:"stopped_unix_us"`
		StopMicros        int64 `json:"stop_us"`
		Executing         bool  `json:"executing"`
	} `json:"last_cancel"`
	Connections struct {
		Open  int `json:"open"`
		InUse int `json:"in_use"`
	} `json:"duckdb_connections"`
}

// queryStatus asks the sidecar for its query figures.
func queryStatus(t *testing.T, conn *pgx.Conn) sidecarQueries {
	t.Helper()
	q, err := tryQueryStatus(conn)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func tryQueryStatus(conn *pgx.Conn) (sidecarQueries, error) {
	var text string
	if err := conn.QueryRow(context.Background(), `SELECT mooncake.sidecar_request('{"op":"status"}')::text`).Scan(&text); err != nil {
		return sidecarQueries{}, err
	}
	var status struct {
		Queries *sidecarQueries `json:"queries"`
	}
	if err := json.Unmarshal([]byte(text), &status); err != nil || status.Queries == nil {
		return sidecarQueries{}, fmt.Errorf("status answer %s: no queries object (%v)", text, err)
	}
	return *status.Queries, nil
}

// pushedDown fails the test unless DuckDB runs the whole of query,
// aggregation included.
func pushedDown(t *testing.T, conn *pgx.Conn, query string) {
	t.Helper()
	r, err := conn.Query(context.Background(), "EXPLAIN (VERBOSE, COSTS OFF) "+query)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(r, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	plan := strings.Join(lines, "\n")
	if !strings.HasPrefix(plan, "Foreign Scan") || !strings.Contains(plan, "DuckDB SQL") || strings.Contains(plan, "Aggregate") {
		t.Fatalf("%s does not run in DuckDB:\n%s", query, plan)
	}
}

// Rows of the mirror the long query reads, and the query: a join of the
// mirror with itself on a key of 10 values (4 * 10^11 pairs), grouped,
// which DuckDB would run for hours, however fast the machine, and which
// returns no row.
const (
	cancelRows = 2_000_000
	longQuery  = `SELECT a.k, count(*) FROM big_m a JOIN big_m b ON a.k = b.k GROUP BY a.k HAVING count(*) < 0`
)

// cancelTiming is one cancelled run of the long query.
type cancelTiming struct {
	err     error
	backend time.Duration // cancel -> the backend's error at the client
	sidecar time.Duration // cancel -> DuckDB stopped
	stop    time.Duration // the sidecar saw the backend hang up -> DuckDB stopped
}

// runCancelled runs longQuery on conn and cancels it once DuckDB runs it:
// with statement_timeout when timeout > 0, else with pg_cancel_backend
// from ctl. It waits for the sidecar to report the query's end. During
// the query, other (if not nil) runs.
func runCancelled(t *testing.T, conn, ctl *pgx.Conn, timeout time.Duration, other func()) cancelTiming {
	t.Helper()
	ctx := context.Background()
	before := queryStatus(t, ctl)
	var cancelAt time.Time
	var res cancelTiming
	if timeout > 0 {
		exec(t, conn, fmt.Sprintf("SET statement_timeout = %d", timeout.Milliseconds()))
		start := time.Now()
		_, res.err = conn.Exec(ctx, longQuery)
		res.backend = time.Since(start) - timeout
		// The backend's timer starts a little after start: the figures
		// are upper bounds.
		cancelAt = start.Add(timeout)
		exec(t, conn, "RESET statement_timeout")
	} else {
		done := make(chan error, 1)
		var errAt atomic.Int64
		go func() {
			_, err := conn.Exec(ctx, longQuery)
			errAt.Store(time.Now().UnixNano())
			done <- err
		}()
		// Cancel once DuckDB executes the query, not before.
		if _, ok := waitFor(30*time.Second, func() bool { return queryStatus(t, ctl).Running > before.Running }); !ok {
			t.Fatal("the sidecar never reported the long query running")
		}
		if other != nil {
			other()
		}
		cancelAt = time.Now()
		var ok bool
		if err := ctl.QueryRow(ctx, "SELECT pg_cancel_backend($1)", conn.PgConn().PID()).Scan(&ok); err != nil || !ok {
			t.Fatalf("pg_cancel_backend: %v, %v", ok, err)
		}
		res.err = <-done
		res.backend = time.Unix(0, errAt.Load()).Sub(cancelAt)
	}
	var after sidecarQueries
	if _, ok := waitFor(10*time.Second, func() bool {
		after = queryStatus(t, ctl)
		return after.Cancelled > before.Cancelled
	}); !ok {
		t.Fatalf("the sidecar never reported the cancelled query's end (err %v; status %+v)", res.err, after)
	}
	lc := after.LastCancel
	if !lc.Executing {
		t.Errorf("the cancellation did not find the query executing in DuckDB (too short to measure an interruption?)")
	}
	res.sidecar = time.UnixMicro(lc.StoppedUnixMicros).Sub(cancelAt)
	res.stop = time.Duration(lc.StopMicros) * time.Microsecond
	return res
}

// checkCancelled checks a cancelled run and that the session and the
// sidecar are fine after it.
func checkCancelled(t *testing.T, how string, res cancelTiming, conn, ctl *pgx.Conn, baseline sidecarQueries) {
	t.Helper()
	t.Logf("%s: the backend's error %v after the cancel; DuckDB stopped %v after the cancel, %v after the sidecar saw the backend hang up",
		how, res.backend.Round(100*time.Microsecond), res.sidecar.Round(100*time.Microsecond), res.stop.Round(100*time.Microsecond))
	if st := sqlState(res.err); st != "57014" {
		t.Errorf("%s: %v (SQLSTATE %q); want 57014", how, res.err, st)
	}
	// The goal is 100 ms; the bound leaves room for a busy machine.
	const bound = time.Second
	if res.backend > bound {
		t.Errorf("%s: the backend's error came %v after the cancel; want < %v", how, res.backend, bound)
	}
	if res.sidecar > bound {
		t.Errorf("%s: DuckDB stopped %v after the cancel; want < %v", how, res.sidecar, bound)
	}
	// The same session queries the mirror right after.
	if n := queryInt(t, conn, "SELECT count(*) FROM big_m WHERE k = 3"); n != cancelRows/10 {
		t.Errorf("after the cancel, the same session counts %d rows; want %d", n, cancelRows/10)
	}
	// Nothing is left running or held: no slot, no result, no connection.
	var st sidecarQueries
	if _, ok := waitFor(5*time.Second, func() bool {
		st = queryStatus(t, ctl)
		return st.Running == 0 && st.Open == 0 && st.Queued == 0 && st.Connections.InUse <= baseline.Connections.InUse
	}); !ok {
		t.Errorf("after the cancel the sidecar holds %d running queries, %d results, %d queued, %d DuckDB connections in use (%d before)",
			st.Running, st.Open, st.Queued, st.Connections.InUse, baseline.Connections.InUse)
	}
}

// TestCancel cancels a long query on a mirror with statement_timeout and
// with pg_cancel_backend: the backend fails with 57014 at once, the
// sidecar interrupts DuckDB within the bound (the figures are logged), the
// session's next query works, and other sessions are served meanwhile.
func TestCancel(t *testing.T) {
	c, conn := startMooncake(t)
	exec(t, conn, `CREATE TABLE big (id bigint PRIMARY KEY, k int, v text)`)
	exec(t, conn, fmt.Sprintf(`INSERT INTO big SELECT g, g %% 10, md5(g::text) FROM generate_series(1, %d) g`, cancelRows))
	exec(t, conn, `CALL mooncake.create_table('big_m', 'big')`)
	exec(t, conn, `CREATE TABLE small (id int PRIMARY KEY)`)
	exec(t, conn, `INSERT INTO small SELECT generate_series(1, 1000)`)
	exec(t, conn, `CALL mooncake.create_table('small_m', 'small')`)
	ctl := c.Conn(t, "postgres")
	pushedDown(t, conn, longQuery)
	pid := c.SidecarPID(t)
	baseline := queryStatus(t, ctl)

	t.Run("StatementTimeout", func(t *testing.T) {
		res := runCancelled(t, conn, ctl, 300*time.Millisecond, nil)
		checkCancelled(t, "statement_timeout", res, conn, ctl, baseline)
	})
	t.Run("PgCancelBackend", func(t *testing.T) {
		other := c.Conn(t, "postgres")
		res := runCancelled(t, conn, ctl, 0, func() {
			// Another session is served while the long query runs.
			if n := queryInt(t, other, "SELECT count(*) FROM small_m"); n != 1000 {
				t.Errorf("another session counts %d rows in small_m during the long query; want 1000", n)
			}
		})
		checkCancelled(t, "pg_cancel_backend", res, conn, ctl, baseline)
	})
	t.Run("Repeated", func(t *testing.T) {
		// Cancel at different points of the query.
		var worst time.Duration
		for i, d := range []time.Duration{250, 500, 800} {
			res := runCancelled(t, conn, ctl, d*time.Millisecond, nil)
			checkCancelled(t, fmt.Sprintf("statement_timeout %d", i+1), res, conn, ctl, baseline)
			worst = max(worst, res.sidecar)
		}
		t.Logf("worst time from a cancel to DuckDB stopping: %v", worst.Round(100*time.Microsecond))
	})
	if got := c.SidecarPID(t); got != pid {
		t.Errorf("the sidecar restarted (pid %d, then %d)", pid, got)
	}
}

// TestConcurrentMirrorQueries runs aggregations on a mirror from 24
// sessions at once; each result must equal the heap's. The sidecar runs at
// most its limit of queries at once and queues the others.
func TestConcurrentMirrorQueries(t *testing.T) {
	const sessions, rows = 24, 300_000
	c, conn := startMooncake(t)
	exec(t, conn, `CREATE TABLE facts (id bigint PRIMARY KEY, g int, n int, s text)`)
	exec(t, conn, fmt.Sprintf(`INSERT INTO facts SELECT i, i %% 97, (i * 7) %% 1000, 's' || (i %% 1013) FROM generate_series(1, %d) i`, rows))
	exec(t, conn, `CALL mooncake.create_table('facts_m', 'facts')`)
	queries := []string{
		`SELECT g, count(*), sum(n), min(s), max(id) FROM %s WHERE id %% 24 = %d GROUP BY g ORDER BY g`,
		`SELECT s, count(*), sum(id), max(n) FROM %s WHERE n > %d GROUP BY s ORDER BY s`,
		`SELECT count(*), count(DISTINCT s), sum(n), min(id) FROM %s WHERE g <> %d`,
	}
	for _, q := range queries {
		pushedDown(t, conn, fmt.Sprintf(q, "facts_m", 1))
	}
	ctl := c.Conn(t, "postgres")
	before := queryStatus(t, ctl)

	conns := make([]*pgx.Conn, sessions)
	for i := range conns {
		conns[i] = c.Conn(t, "postgres")
	}
	collect := func(conn *pgx.Conn, sql string) ([][]any, error) {
		r, err := conn.Query(context.Background(), sql)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(r, func(row pgx.CollectableRow) ([]any, error) { return row.Values() })
	}

	// Sample the sidecar's figures while the sessions run.
	stop := make(chan struct{})
	var maxRunning, maxQueued int64
	var sampled sync.WaitGroup
	sampled.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			st, err := tryQueryStatus(ctl)
			if err != nil {
				t.Error(err)
				return
			}
			maxRunning = max(maxRunning, st.Running)
			maxQueued = max(maxQueued, st.Queued)
			time.Sleep(5 * time.Millisecond)
		}
	})

	var wg sync.WaitGroup
	errs := make(chan error, sessions*len(queries))
	start := make(chan struct{})
	began := time.Now()
	for i, conn := range conns {
		wg.Go(func() {
			<-start
			for j, q := range queries {
				arg := (i + j) % 24
				got, err := collect(conn, fmt.Sprintf(q, "facts_m", arg))
				if err != nil {
					errs <- fmt.Errorf("session %d, mirror: %s: %w", i, q, err)
					continue
				}
				want, err := collect(conn, fmt.Sprintf(q, "facts", arg))
				if err != nil {
					errs <- fmt.Errorf("session %d, heap: %s: %w", i, q, err)
					continue
				}
				if len(got) == 0 || !reflect.DeepEqual(got, want) {
					errs <- fmt.Errorf("session %d: %s: the mirror gives %d rows, the heap %d, or they differ", i, fmt.Sprintf(q, "facts_m", arg), len(got), len(want))
				}
			}
		})
	}
	close(start)
	wg.Wait()
	took := time.Since(began)
	close(stop)
	sampled.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	after := queryStatus(t, ctl)
	t.Logf("%d sessions x %d queries in %v; at most %d queries ran at once in DuckDB (limit %d), %d waited",
		sessions, len(queries), took.Round(time.Millisecond), maxRunning, after.MaxRunning, maxQueued)
	if n := after.Completed - before.Completed; n < sessions*int64(len(queries)) {
		t.Errorf("the sidecar completed %d queries; want at least %d", n, sessions*len(queries))
	}
	if maxRunning > int64(after.MaxRunning) {
		t.Errorf("%d queries ran at once; the limit is %d", maxRunning, after.MaxRunning)
	}
	if after.Running != 0 || after.Open != 0 || after.Queued != 0 || after.Failed != before.Failed {
		t.Errorf("after the sessions: %+v", after)
	}
}

// TestMemoryLimitExceeded gives the sidecar's DuckDB a small memory_limit:
// a query needing more fails with SQLSTATE 53200 naming the limit, and the
// sidecar serves the next query.
func TestMemoryLimitExceeded(t *testing.T) {
	// The background worker starts the sidecar with the server's
	// environment.
	t.Setenv("MOONCAKE_MEMORY_LIMIT", "128MB")
	c, conn := startMooncake(t)
	exec(t, conn, `CREATE TABLE wide (id bigint PRIMARY KEY, v text, x float8)`)
	exec(t, conn, `INSERT INTO wide SELECT g, md5(g::text), g * 0.618 % 1 FROM generate_series(1, 1000000) g`)
	exec(t, conn, `CALL mooncake.create_table('wide_m', 'wide')`)
	ctl := c.Conn(t, "postgres")
	if st := queryStatus(t, ctl); st.MemoryLimit != "128MB" {
		t.Fatalf("the sidecar's memory_limit is %q; want 128MB", st.MemoryLimit)
	}
	pid := c.SidecarPID(t)

	// One string of every row, over 200 MB, cannot spill.
	q := `SELECT length(string_agg(v, '` + strings.Repeat("-", 200) + `' ORDER BY x)) FROM wide_m`
	pushedDown(t, conn, q)
	_, err := conn.Exec(context.Background(), q)
	if st := sqlState(err); st != "53200" || !strings.Contains(err.Error(), "memory_limit") {
		t.Fatalf("%s: %v (SQLSTATE %q); want 53200 naming memory_limit", q, err, st)
	}
	t.Logf("the error: %v", err)

	if n := queryInt(t, conn, `SELECT count(*) FROM wide_m WHERE id % 2 = 0`); n != 500_000 {
		t.Errorf("after the error the session counts %d rows; want 500000", n)
	}
	st := queryStatus(t, ctl)
	if st.OutOfMemory < 1 || st.Running != 0 || st.Open != 0 {
		t.Errorf("after the error: %+v", st)
	}
	if got := c.SidecarPID(t); got != pid {
		t.Errorf("the sidecar restarted (pid %d, then %d)", pid, got)
	}
}
