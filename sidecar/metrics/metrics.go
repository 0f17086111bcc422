// Package metrics holds the sidecar's Prometheus metrics and serves them in
// the text exposition format on /metrics.
//
// Counters and histograms are updated where the work happens (the apply
// loop, flushes and compactions, queries); gauges that describe state (lag,
// admission, DuckDB's memory) are read when a scrape asks for them, from a
// Snapshot the service provides. No metric carries row data: labels are
// database, schema and table names and fixed words.
package metrics

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Kinds of errors counted by mooncake_errors_total.
const (
	ErrQuery        = "query"         // a query failed (cancellations excepted)
	ErrOutOfMemory  = "out_of_memory" // a query ran out of DuckDB's memory_limit
	ErrReplication  = "replication"   // a replication stream stopped and reconnects
	ErrMirrorBroken = "mirror_broken" // a mirror was marked broken
	ErrFlush        = "flush"         // a flush to Iceberg failed (it is retried)
	ErrCompaction   = "compaction"    // a compaction failed
)

// Outcomes of queries, mooncake_queries_total's outcome label.
const (
	OK        = "ok"
	Failed    = "error"
	Cancelled = "cancelled"
)

// Front ends of queries, the frontend label.
const (
	FDW    = "fdw"
	Flight = "flight"
)

// Registry holds the sidecar's metrics.
type Registry struct {
	reg *prometheus.Registry

	applied      *prometheus.CounterVec
	flushSeconds *prometheus.HistogramVec
	compactSecs  *prometheus.HistogramVec
	queries      *prometheus.CounterVec
	querySeconds *prometheus.HistogramVec
	errors       *prometheus.CounterVec

	mu       sync.Mutex
	snapshot func(context.Context) *Snapshot
}

// maintenanceBuckets are the upper bounds (seconds) of the flush and
// compaction histograms: a flush of a few rows takes milliseconds, a
// compaction of a large mirror minutes.
var maintenanceBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}

// queryBuckets are the upper bounds (seconds) of the query latency
// histogram.
var queryBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// New makes a registry with every metric of the sidecar, Go's runtime
// metrics and the process's (CPU, memory, descriptors).
func New() *Registry {
	r := &Registry{reg: prometheus.NewRegistry()}
	mirror := []string{"database", "schema", "table"}
	r.applied = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mooncake_applied_changes_total",
		Help: "Row changes from logical replication applied to mirrors, by database and operation (insert, update, delete; truncate counts statements). A change to a source with two mirrors counts twice.",
	}, []string{"database", "op"})
	r.flushSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mooncake_flush_duration_seconds",
		Help:    "Time taken by flushes of a mirror's changes to an Iceberg snapshot (successful ones).",
		Buckets: maintenanceBuckets,
	}, mirror)
	r.compactSecs = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mooncake_compaction_duration_seconds",
		Help:    "Time taken by compactions of a mirror's data files (successful ones that rewrote files).",
		Buckets: maintenanceBuckets,
	}, mirror)
	r.queries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mooncake_queries_total",
		Help: "Queries run in DuckDB, by front end (fdw: PostgreSQL scans, flight: Arrow Flight SQL) and outcome (ok, error, cancelled).",
	}, []string{"frontend", "outcome"})
	r.querySeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mooncake_query_duration_seconds",
		Help:    "Time from a query's arrival to the end of its result stream, queueing for admission included, by front end.",
		Buckets: queryBuckets,
	}, []string{"frontend"})
	r.errors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mooncake_errors_total",
		Help: "Errors by kind: query, out_of_memory, replication, mirror_broken, flush, compaction.",
	}, []string{"kind"})
	for _, k := range []string{ErrQuery, ErrOutOfMemory, ErrReplication, ErrMirrorBroken, ErrFlush, ErrCompaction} {
		r.errors.WithLabelValues(k)
	}
	for _, f := range []string{FDW, Flight} {
		for _, o := range []string{OK, Failed, Cancelled} {
			r.queries.WithLabelValues(f, o)
		}
	}
	r.reg.MustRegister(r.applied, r.flushSeconds, r.compactSecs, r.queries, r.querySeconds, r.errors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&stateCollector{r: r})
	return r
}

// Default is the registry the sidecar serves. It is made in init, after
// the package's descriptors (state.go) exist.
var Default *Registry

func init() { Default = New() }

// Applied is the set of counters of the changes applied to one database's
// mirrors; the apply loop keeps it to count without looking labels up.
type Applied struct {
	Insert, Update, Delete, Truncate prometheus.Counter
}

// AppliedFor returns the applied-changes counters of database.
func (r *Registry) AppliedFor(database string) *Applied {
	return &Applied{
		Insert:   r.applied.WithLabelValues(database, "insert"),
		Update:   r.applied.WithLabelValues(database, "update"),
		Delete:   r.applied.WithLabelValues(database, "delete"),
		Truncate: r.applied.WithLabelValues(database, "truncate"),
	}
}

// Flushed records a successful flush of a mirror.
func (r *Registry) Flushed(database, schema, table string, d time.Duration) {
	r.flushSeconds.WithLabelValues(database, schema, table).Observe(d.Seconds())
}

// Compacted records a compaction of a mirror that rewrote its files.
func (r *Registry) Compacted(database, schema, table string, d time.Duration) {
	r.compactSecs.WithLabelValues(database, schema, table).Observe(d.Seconds())
}

// ForgetMirror drops the series of a dropped mirror.
func (r *Registry) ForgetMirror(database, schema, table string) {
	r.flushSeconds.DeleteLabelValues(database, schema, table)
	r.compactSecs.DeleteLabelValues(database, schema, table)
}

// ForgetDatabase drops the series of a database the sidecar no longer
// serves (its extension was dropped).
func (r *Registry) ForgetDatabase(database string) {
	r.applied.DeletePartialMatch(prometheus.Labels{"database": database})
	r.flushSeconds.DeletePartialMatch(prometheus.Labels{"database": database})
	r.compactSecs.DeletePartialMatch(prometheus.Labels{"database": database})
}

// Query records a query that ended with outcome (OK, Failed, Cancelled)
// after d.
func (r *Registry) Query(frontend, outcome string, d time.Duration) {
	r.queries.WithLabelValues(frontend, outcome).Inc()
	r.querySeconds.WithLabelValues(frontend).Observe(d.Seconds())
}

// Error counts an error of kind (one of the Err constants).
func (r *Registry) Error(kind string) { r.errors.WithLabelValues(kind).Inc() }

// SetSnapshot sets the function a scrape calls for the gauges of the
// sidecar's state; it gets a context that ends with the scrape.
func (r *Registry) SetSnapshot(fn func(context.Context) *Snapshot) {
	r.mu.Lock()
	r.snapshot = fn
	r.mu.Unlock()
}

// Register adds a collector of the caller's own.
func (r *Registry) Register(c prometheus.Collector) error { return r.reg.Register(c) }

// Handler serves the registry in the exposition formats Prometheus asks
// for (text by default).
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
