package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	cancelRows    = 2_000_000 // rows of the mirror the long queries read
	cancelsPerRun = 12        // cancellations per query and way of cancelling
)

// cancelQueries are long analytic queries DuckDB runs on the mirror, each
// returning at most a few rows: DuckDB stops each kind of work at its own
// pace.
var cancelQueries = []struct{ name, sql string }{
	{"grouping", `SELECT v, k, count(*), min(id), max(id), sum(id) FROM cancel_m GROUP BY v, k HAVING count(*) > 1`},
	{"distinct aggregates", `SELECT k, count(DISTINCT v), count(DISTINCT id) FROM cancel_m GROUP BY k`},
	{"ordered aggregates", `SELECT k, length(string_agg(v, ',' ORDER BY v DESC)), percentile_disc(0.5) WITHIN GROUP (ORDER BY id) FROM cancel_m GROUP BY k`},
}

// sidecarCancel is the last cancellation the sidecar's status reports.
type sidecarCancel struct {
	Cancelled  int64 `json:"cancelled"`
	LastCancel *struct {
		HangupUnixMicros  int64 `json:"hangup_unix_us"`
		StoppedUnixMicros int64 `json:"stopped_unix_us"`
		Executing         bool  `json:"executing"`
	} `json:"last_cancel"`
}

func lastCancel(t *testing.T, conn *pgx.Conn) sidecarCancel {
	t.Helper()
	var s struct {
		Queries sidecarCancel `json:"queries"`
	}
	if err := json.Unmarshal([]byte(queryText(t, conn, `SELECT mooncake.sidecar_request('{"op":"status"}')::text`)), &s); err != nil {
		t.Fatal(err)
	}
	return s.Queries
}

// TestCancelLatency measures how fast a cancelled query on a mirror stops:
// each long query is cancelled with pg_cancel_backend, and with
// statement_timeout, at points spread over its run. Reported per query:
// from the cancel to the backend's error at the client, to the sidecar
// seeing the backend hang up, and to DuckDB having stopped the query (the
// sidecar's status records the last two). The goal is DuckDB stopped
// within 100 ms.
func TestCancelLatency(t *testing.T) {
	requireBench(t)
	ctx := context.Background()
	c, conn := startCluster(t)
	mustExec(t, conn, `CREATE TABLE cancel_src (id bigint PRIMARY KEY, k int, v text)`)
	mustExec(t, conn, fmt.Sprintf(`INSERT INTO cancel_src SELECT g, g %% 10, md5(g::text) FROM generate_series(1, %d) g`, cancelRows))
	mustExec(t, conn, `CALL mooncake.create_table('cancel_m', 'cancel_src')`)
	ctl := c.Conn(t, "postgres")

	for _, q := range cancelQueries {
		start := time.Now()
		mustExec(t, conn, q.sql)
		full := time.Since(start)
		figure("cancel, %s: the query runs %s uncancelled", q.name, ms(full))

		for _, how := range []string{"pg_cancel_backend", "statement_timeout"} {
			var backend, hangup, stopped []time.Duration
			for i := 0; i < cancelsPerRun; i++ {
				// From 10% to 70% of the query's run.
				after := full/10 + time.Duration(i)*full*6/10/cancelsPerRun
				before := lastCancel(t, ctl)
				var cancelAt, errAt time.Time
				var err error
				if how == "statement_timeout" {
					mustExec(t, conn, fmt.Sprintf("SET statement_timeout = %d", max(1, after.Milliseconds())))
					start := time.Now()
					_, err = conn.Exec(ctx, q.sql)
					errAt = time.Now()
					cancelAt = start.Add(after)
					mustExec(t, conn, "RESET statement_timeout")
				} else {
					done := make(chan error, 1)
					go func() {
						_, err := conn.Exec(ctx, q.sql)
						errAt = time.Now()
						done <- err
					}()
					time.Sleep(after)
					cancelAt = time.Now()
					var ok bool
					if err := ctl.QueryRow(ctx, "SELECT pg_cancel_backend($1)", conn.PgConn().PID()).Scan(&ok); err != nil || !ok {
						t.Fatalf("pg_cancel_backend: %v, %v", ok, err)
					}
					err = <-done
				}
				if err == nil {
					t.Logf("%s, %s after %v: the query finished first", q.name, how, after)
					continue
				}
				if pgErr := (*pgconn.PgError)(nil); !errors.As(err, &pgErr) || pgErr.Code != "57014" {
					t.Fatalf("%s, %s: %v; want SQLSTATE 57014", q.name, how, err)
				}
				var st sidecarCancel
				deadline := time.Now().Add(30 * time.Second)
				for {
					st = lastCancel(t, ctl)
					if st.Cancelled > before.Cancelled || time.Now().After(deadline) {
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
				if st.Cancelled == before.Cancelled || st.LastCancel == nil {
					t.Fatalf("%s, %s: the sidecar never reported the query's end", q.name, how)
				}
				if !st.LastCancel.Executing {
					continue // cancelled before DuckDB started, or while streaming
				}
				backend = append(backend, errAt.Sub(cancelAt))
				hangup = append(hangup, time.UnixMicro(st.LastCancel.HangupUnixMicros).Sub(cancelAt))
				stopped = append(stopped, time.UnixMicro(st.LastCancel.StoppedUnixMicros).Sub(cancelAt))
			}
			report := func(what string, ds []time.Duration) {
				s := sortedCopy(ds)
				figure("cancel, %s, %s: %s: p50 %s, p90 %s, max %s (%d runs)", q.name, how, what,
					ms(percentile(s, 50)), ms(percentile(s, 90)), ms(percentile(s, 100)), len(s))
			}
			report("cancel -> backend's error", backend)
			report("cancel -> sidecar sees the hang-up", hangup)
			report("cancel -> DuckDB stopped", stopped)
			within := 0
			for _, d := range stopped {
				if d <= 100*time.Millisecond {
					within++
				}
			}
			figure("cancel, %s, %s: DuckDB stopped within 100 ms in %d of %d runs", q.name, how, within, len(stopped))
		}
	}
	// The sidecar is still there and serves queries.
	if n := queryInt(t, conn, "SELECT count(*) FROM cancel_m WHERE k = 1"); n != cancelRows/10 {
		t.Errorf("after the cancellations the mirror counts %d rows; want %d", n, cancelRows/10)
	}
}
