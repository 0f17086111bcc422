package test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pgmooncake/mooncake/test/pgtest"
)

// scrape reads the sidecar's metrics endpoint and parses the text
// exposition format; it returns the body too.
func scrape(t *testing.T, addr string) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s\n%s", resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("scrape: Content-Type %q; want the text format", ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse the exposition: %v\n%s", err, body)
	}
	return families, string(body)
}

// metricValue finds the sample of family name whose labels include want:
// a counter's or gauge's value, a histogram's sample count. ok is false
// when there is none.
func metricValue(families map[string]*dto.MetricFamily, name string, want map[string]string) (v float64, ok bool) {
	f := families[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// TestMetrics scrapes the sidecar's Prometheus endpoint around writes,
// queries and flushes of a mirror.
func TestMetrics(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	c, conn, flightAddr := startFlight(t, pgtest.WithSetting("pg_mooncake.metrics_listen", addr))
	if _, ok := waitFor(10*time.Second, func() bool {
		return queryString(t, conn, `SELECT mooncake.bgworker_status()->>'metrics_listening'`) == "true"
	}); !ok {
		t.Fatalf("the metrics endpoint does not listen on %s:\n%s", addr, c.LogTail(20))
	}
	if got := queryString(t, conn, `SELECT mooncake.bgworker_status()->>'metrics_address'`); got != addr {
		t.Fatalf("metrics_address = %q; want %q", got, addr)
	}

	mirror := map[string]string{"database": "postgres", "schema": "public", "table": "items_iceberg"}
	applied := func(f map[string]*dto.MetricFamily, op string) float64 {
		v, _ := metricValue(f, "mooncake_applied_changes_total", map[string]string{"database": "postgres", "op": op})
		return v
	}

	exec(t, conn, `CREATE TABLE items (id int PRIMARY KEY, note text)`)
	exec(t, conn, `INSERT INTO items VALUES (0, 'copied')`)
	exec(t, conn, `CALL mooncake.create_table('items_iceberg', 'items')`)
	before, _ := scrape(t, addr)

	// A distinctive value: no metric may carry row data.
	const secret = "metrics-must-not-show-this-7f3a"
	exec(t, conn, `INSERT INTO items SELECT g, $1 FROM generate_series(1, 1000) g`, secret)
	exec(t, conn, `UPDATE items SET note = 'updated' WHERE id BETWEEN 1 AND 10`)
	exec(t, conn, `DELETE FROM items WHERE id > 995`)
	waitConverged(t, conn, "items", "items_iceberg", 30*time.Second)

	after, body := scrape(t, addr)
	for op, want := range map[string]float64{"insert": 1000, "update": 10, "delete": 5} {
		if got := applied(after, op) - applied(before, op); got != want {
			t.Errorf("mooncake_applied_changes_total{op=%q} grew by %v; want %v", op, got, want)
		}
	}
	if strings.Contains(body, secret) {
		t.Errorf("the metrics show a row's value")
	}
	for _, name := range []string{"mooncake_mirror_lag_bytes", "mooncake_mirror_lag_seconds", "mooncake_mirror_unflushed_rows"} {
		v, ok := metricValue(after, name, mirror)
		if !ok {
			t.Errorf("no %s for the mirror:\n%s", name, body)
		} else if v < 0 {
			t.Errorf("%s = %v", name, v)
		}
	}
	if v, ok := metricValue(after, "mooncake_mirror_state", map[string]string{"table": "items_iceberg", "state": "ready"}); !ok || v != 1 {
		t.Errorf("mooncake_mirror_state{state=ready} = %v, %v; want 1", v, ok)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "mooncake_duckdb_memory_bytes",
		"mooncake_duckdb_memory_limit_bytes", "mooncake_queries_max_running", "mooncake_errors_total"} {
		if _, ok := after[name]; !ok {
			t.Errorf("no %s in the scrape", name)
		}
	}

	// A query through the FDW counts, and its latency is observed.
	fdwOK := map[string]string{"frontend": "fdw", "outcome": "ok"}
	q0, _ := metricValue(after, "mooncake_queries_total", fdwOK)
	h0, _ := metricValue(after, "mooncake_query_duration_seconds", map[string]string{"frontend": "fdw"})
	if n := queryInt(t, conn, `SELECT count(*) FROM items_iceberg`); n != 996 {
		t.Fatalf("count(*) = %d; want 996", n)
	}
	afterQuery, _ := scrape(t, addr)
	q1, _ := metricValue(afterQuery, "mooncake_queries_total", fdwOK)
	h1, _ := metricValue(afterQuery, "mooncake_query_duration_seconds", map[string]string{"frontend": "fdw"})
	if q1 < q0+1 || h1 < h0+1 {
		t.Errorf("a query moved mooncake_queries_total from %v to %v and the latency count from %v to %v; want +1 each", q0, q1, h0, h1)
	}

	// So does a query through Arrow Flight SQL.
	flightOK := map[string]string{"frontend": "flight", "outcome": "ok"}
	f0, _ := metricValue(afterQuery, "mooncake_queries_total", flightOK)
	cl, ctx := flightClient(t, flightAddr, "postgres", "")
	if _, rows, err := flightRows(ctx, cl, `SELECT id, note FROM items_iceberg`); err != nil || len(rows) != 996 {
		t.Fatalf("Flight query: %d rows, %v", len(rows), err)
	}
	afterFlight, _ := scrape(t, addr)
	if f1, _ := metricValue(afterFlight, "mooncake_queries_total", flightOK); f1 < f0+1 {
		t.Errorf("a Flight query moved mooncake_queries_total{frontend=flight} from %v to %v; want +1", f0, f1)
	}

	// The flush every 2 s commits the changes to Iceberg and is timed.
	var flushes float64
	if _, ok := waitFor(20*time.Second, func() bool {
		f, _ := scrape(t, addr)
		flushes, _ = metricValue(f, "mooncake_flush_duration_seconds", mirror)
		return flushes >= 1
	}); !ok {
		t.Fatalf("no flush of the mirror observed in mooncake_flush_duration_seconds:\n%s", c.LogTail(20))
	}

	// A REPEATABLE READ transaction that read the mirror holds its read
	// pin, and the snapshot files it may read, until it ends: the age of
	// the oldest read says so; none once it has ended.
	rr := c.Conn(t, "postgres")
	exec(t, rr, `BEGIN ISOLATION LEVEL REPEATABLE READ`)
	if n := queryInt(t, rr, `SELECT count(*) FROM items_iceberg`); n != 996 {
		t.Fatalf("count(*) in the transaction = %d; want 996", n)
	}
	time.Sleep(1500 * time.Millisecond)
	held, _ := scrape(t, addr)
	if age, ok := metricValue(held, "mooncake_oldest_read_seconds", nil); !ok || age < 1 {
		t.Errorf("mooncake_oldest_read_seconds = %v (%v) while a REPEATABLE READ transaction reads the mirror since 1.5 s; want at least 1", age, ok)
	}
	exec(t, rr, `COMMIT`)
	if _, ok := waitFor(10*time.Second, func() bool {
		f, _ := scrape(t, addr)
		age, ok := metricValue(f, "mooncake_oldest_read_seconds", nil)
		return ok && age == 0
	}); !ok {
		t.Errorf("mooncake_oldest_read_seconds stays above 0 after the transaction ended")
	}

	// A dropped mirror leaves no series behind.
	exec(t, conn, `DROP FOREIGN TABLE items_iceberg`)
	if _, ok := waitFor(10*time.Second, func() bool {
		f, _ := scrape(t, addr)
		_, lag := metricValue(f, "mooncake_mirror_lag_bytes", mirror)
		_, flush := metricValue(f, "mooncake_flush_duration_seconds", mirror)
		return !lag && !flush
	}); !ok {
		t.Errorf("the dropped mirror's series remain")
	}
}
