package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parse scrapes h and parses the text exposition format.
func parse(t *testing.T, h http.Handler) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	p := expfmt.NewTextParser(model.UTF8Validation)
	f, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, body)
	}
	return f, body
}

// value is the sample of name with exactly the labels want: a counter's or
// gauge's value, a histogram's count.
func value(f map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	fam := f[name]
	if fam == nil {
		return 0, false
	}
	for _, m := range fam.GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		match := true
		for _, l := range m.GetLabel() {
			if want[l.GetName()] != l.GetValue() {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func TestCountersAndHistograms(t *testing.T) {
	r := New()
	a := r.AppliedFor("db1")
	for range 3 {
		a.Insert.Inc()
	}
	a.Update.Inc()
	a.Delete.Add(2)
	r.Flushed("db1", "public", "t", 30*time.Millisecond)
	r.Flushed("db1", "public", "t", 2*time.Second)
	r.Compacted("db1", "public", "t", time.Second)
	r.Query(FDW, OK, time.Millisecond)
	r.Query(Flight, Cancelled, time.Second)
	r.Error(ErrReplication)

	f, body := parse(t, r.Handler())
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"mooncake_applied_changes_total", map[string]string{"database": "db1", "op": "insert"}, 3},
		{"mooncake_applied_changes_total", map[string]string{"database": "db1", "op": "update"}, 1},
		{"mooncake_applied_changes_total", map[string]string{"database": "db1", "op": "delete"}, 2},
		{"mooncake_applied_changes_total", map[string]string{"database": "db1", "op": "truncate"}, 0},
		{"mooncake_flush_duration_seconds", map[string]string{"database": "db1", "schema": "public", "table": "t"}, 2},
		{"mooncake_compaction_duration_seconds", map[string]string{"database": "db1", "schema": "public", "table": "t"}, 1},
		{"mooncake_queries_total", map[string]string{"frontend": "fdw", "outcome": "ok"}, 1},
		{"mooncake_queries_total", map[string]string{"frontend": "flight", "outcome": "cancelled"}, 1},
		{"mooncake_queries_total", map[string]string{"frontend": "flight", "outcome": "error"}, 0},
		{"mooncake_query_duration_seconds", map[string]string{"frontend": "fdw"}, 1},
		{"mooncake_errors_total", map[string]string{"kind": "replication"}, 1},
		{"mooncake_errors_total", map[string]string{"kind": "flush"}, 0},
	}
	for _, c := range checks {
		if got, ok := value(f, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v); want %v\n%s", c.name, c.labels, got, ok, c.want, body)
		}
	}
	// The flush histogram's sum is the seconds observed.
	for _, m := range f["mooncake_flush_duration_seconds"].GetMetric() {
		if s := m.GetHistogram().GetSampleSum(); s < 2.029 || s > 2.031 {
			t.Errorf("flush duration sum %v; want 2.03", s)
		}
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes"} {
		if f[name] == nil {
			t.Errorf("no %s", name)
		}
	}

	r.ForgetMirror("db1", "public", "t")
	r.ForgetDatabase("db1")
	f, _ = parse(t, r.Handler())
	if _, ok := value(f, "mooncake_flush_duration_seconds", map[string]string{"database": "db1", "schema": "public", "table": "t"}); ok {
		t.Error("a forgotten mirror's flushes remain")
	}
	if _, ok := value(f, "mooncake_applied_changes_total", map[string]string{"database": "db1", "op": "insert"}); ok {
		t.Error("a forgotten database's counters remain")
	}
}

func TestSnapshotGauges(t *testing.T) {
	r := New()
	f, _ := parse(t, r.Handler())
	if f["mooncake_queries_running"] != nil {
		t.Error("state gauges without a snapshot function")
	}
	var gotDeadline bool
	r.SetSnapshot(func(ctx context.Context) *Snapshot {
		_, gotDeadline = ctx.Deadline()
		return &Snapshot{
			Mirrors: []Mirror{
				{Database: "db", Schema: "s", Table: "caught_up", State: "ready", LagKnown: true, UnflushedRows: 7, DataFiles: 3, DeleteFiles: 1},
				{Database: "db", Schema: "s", Table: "behind", State: "copying", LagKnown: true, LagBytes: 4096, LagSeconds: 1.5},
				{Database: "db", Schema: "s", Table: "unknown", State: "broken"},
			},
			Admission:         Admission{MaxRunning: 4, Queued: 2, Running: 4, Open: 5, ReadPins: 3, OldestRead: 90 * time.Second},
			DuckDB:            []DuckDBMemory{{Tag: "HASH_TABLE", MemoryBytes: 1 << 20, TemporaryBytes: 10}},
			DuckDBMemoryLimit: 1 << 30,
		}
	})
	f, body := parse(t, r.Handler())
	if !gotDeadline {
		t.Error("the snapshot's context has no deadline")
	}
	m := func(table string) map[string]string {
		return map[string]string{"database": "db", "schema": "s", "table": table}
	}
	withState := func(table, state string) map[string]string {
		l := m(table)
		l["state"] = state
		return l
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"mooncake_mirror_lag_bytes", m("caught_up"), 0},
		{"mooncake_mirror_lag_seconds", m("caught_up"), 0},
		{"mooncake_mirror_unflushed_rows", m("caught_up"), 7},
		{"mooncake_mirror_data_files", m("caught_up"), 3},
		{"mooncake_mirror_delete_files", m("caught_up"), 1},
		{"mooncake_mirror_lag_bytes", m("behind"), 4096},
		{"mooncake_mirror_lag_seconds", m("behind"), 1.5},
		{"mooncake_mirror_state", withState("behind", "copying"), 1},
		{"mooncake_mirror_state", withState("behind", "ready"), 0},
		{"mooncake_mirror_state", withState("unknown", "broken"), 1},
		{"mooncake_queries_max_running", nil, 4},
		{"mooncake_queries_queued", nil, 2},
		{"mooncake_queries_running", nil, 4},
		{"mooncake_queries_open", nil, 5},
		{"mooncake_read_pins", nil, 3},
		{"mooncake_oldest_read_seconds", nil, 90},
		{"mooncake_duckdb_memory_bytes", map[string]string{"tag": "HASH_TABLE"}, 1 << 20},
		{"mooncake_duckdb_temporary_storage_bytes", map[string]string{"tag": "HASH_TABLE"}, 10},
		{"mooncake_duckdb_memory_limit_bytes", nil, 1 << 30},
	}
	for _, c := range checks {
		if got, ok := value(f, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v); want %v\n%s", c.name, c.labels, got, ok, c.want, body)
		}
	}
	// A mirror whose lag is unknown has no lag series (rather than a 0
	// that would read as caught up).
	if _, ok := value(f, "mooncake_mirror_lag_bytes", m("unknown")); ok {
		t.Error("lag reported for a mirror whose lag is unknown")
	}
}

func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := New()
	r.Error(ErrFlush)
	addr, err := Serve(ctx, "127.0.0.1:0", r)
	if err != nil {
		t.Fatal(err)
	}
	if !Loopback(addr) {
		t.Errorf("Loopback(%q) = false", addr)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	if !strings.Contains(string(body), `mooncake_errors_total{kind="flush"} 1`) {
		t.Errorf("scrape:\n%s", body)
	}
	resp, err = http.Get("http://" + addr + "/nothing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/nothing: %s", resp.Status)
	}
	cancel()
	if _, ok := waitClosed(addr); !ok {
		t.Error("the endpoint still answers after its context ended")
	}
}

// waitClosed waits until nothing answers on addr.
func waitClosed(addr string) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < 5*time.Second {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return time.Since(start), true
		}
		resp.Body.Close()
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start), false
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9187": true, "[::1]:9187": true, "localhost:9187": true,
		"0.0.0.0:9187": false, ":9187": false, "[::]:9187": false, "10.0.0.5:9187": false, "nonsense": false,
	} {
		if got := Loopback(addr); got != want {
			t.Errorf("Loopback(%q) = %v; want %v", addr, got, want)
		}
	}
}
