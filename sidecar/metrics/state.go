package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Snapshot is the sidecar's state as a scrape reports it.
type Snapshot struct {
	Mirrors   []Mirror
	Admission Admission
	// DuckDB is DuckDB's memory by component (duckdb_memory()); nil when
	// it could not be read.
	DuckDB            []DuckDBMemory
	DuckDBMemoryLimit int64 // bytes; 0 if unknown
}

// Mirror is the state of one mirror.
type Mirror struct {
	Database, Schema, Table string
	State                   string // ready, copying, resyncing, broken, failed
	// LagKnown says whether the lag could be computed (the server's WAL
	// position was read); LagBytes and LagSeconds are then what
	// mooncake.columnstore_tables shows as lag_bytes and lag_seconds.
	LagKnown      bool
	LagBytes      int64
	LagSeconds    float64
	UnflushedRows int64
	DataFiles     int
	DeleteFiles   int
}

// Admission is the state of the queries admitted into DuckDB.
type Admission struct {
	MaxRunning int64 // queries DuckDB runs at once
	Queued     int64 // waiting for a slot
	Running    int64 // executing in DuckDB
	Open       int64 // results held (executing or streaming)
	ReadPins   int64 // REPEATABLE READ transactions and statements holding a view of the mirrors
	// OldestRead is how long the oldest query or read pin still reading
	// the mirrors has been (0: none).
	OldestRead time.Duration
}

// DuckDBMemory is one row of duckdb_memory().
type DuckDBMemory struct {
	Tag            string
	MemoryBytes    int64
	TemporaryBytes int64
}

// States a mirror can be in, mooncake_mirror_state's state label.
var States = []string{"ready", "copying", "resyncing", "broken", "failed"}

var (
	mirrorLabels  = []string{"database", "schema", "table"}
	descLagBytes  = prometheus.NewDesc("mooncake_mirror_lag_bytes", "WAL written since the last change the mirror shows (lag_bytes of mooncake.columnstore_tables).", mirrorLabels, nil)
	descLagSecs   = prometheus.NewDesc("mooncake_mirror_lag_seconds", "Age of the newest applied commit while WAL is pending, else 0 (lag_seconds of mooncake.columnstore_tables).", mirrorLabels, nil)
	descUnflushed = prometheus.NewDesc("mooncake_mirror_unflushed_rows", "Rows applied to the mirror and not yet flushed to Iceberg (approximate).", mirrorLabels, nil)
	descDataFiles = prometheus.NewDesc("mooncake_mirror_data_files", "Data files of the mirror's current Iceberg snapshot.", mirrorLabels, nil)
	descDelFiles  = prometheus.NewDesc("mooncake_mirror_delete_files", "Position delete files of the mirror's current Iceberg snapshot.", mirrorLabels, nil)
	descState     = prometheus.NewDesc("mooncake_mirror_state", "1 for the mirror's current state (ready, copying, resyncing, broken, failed), 0 for the others.", append(mirrorLabels[:3:3], "state"), nil)
	descMax       = prometheus.NewDesc("mooncake_queries_max_running", "Queries DuckDB runs at once (MOONCAKE_MAX_QUERIES).", nil, nil)
	descQueued    = prometheus.NewDesc("mooncake_queries_queued", "Queries waiting for a DuckDB slot.", nil, nil)
	descRunning   = prometheus.NewDesc("mooncake_queries_running", "Queries executing in DuckDB.", nil, nil)
	descOpen      = prometheus.NewDesc("mooncake_queries_open", "Query results held on a DuckDB connection (executing or streaming).", nil, nil)
	descReadPins  = prometheus.NewDesc("mooncake_read_pins", "REPEATABLE READ or SERIALIZABLE transactions, and statements reading the mirrors more than once, holding a DuckDB transaction that keeps the mirrors as they first read them.", nil, nil)
	descOldest    = prometheus.NewDesc("mooncake_oldest_read_seconds", "Age of the oldest query or read pin (REPEATABLE READ transaction) still reading the mirrors, 0 when none: the files of the snapshots it may read are kept past the snapshot retention until it ends.", nil, nil)
	descDuckMem   = prometheus.NewDesc("mooncake_duckdb_memory_bytes", "DuckDB's memory in use by component (duckdb_memory()).", []string{"tag"}, nil)
	descDuckTemp  = prometheus.NewDesc("mooncake_duckdb_temporary_storage_bytes", "DuckDB's temporary storage (spilled to disk) by component (duckdb_memory()).", []string{"tag"}, nil)
	descDuckLimit = prometheus.NewDesc("mooncake_duckdb_memory_limit_bytes", "DuckDB's memory_limit, shared by all queries.", nil, nil)
)

// stateCollector reports the gauges of a Snapshot taken at each scrape.
type stateCollector struct{ r *Registry }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLagBytes, descLagSecs, descUnflushed, descDataFiles, descDelFiles, descState,
		descMax, descQueued, descRunning, descOpen, descReadPins, descOldest, descDuckMem, descDuckTemp, descDuckLimit} {
		ch <- d
	}
}

// snapshotTimeout bounds the work of one scrape.
const snapshotTimeout = 5 * time.Second

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.r.mu.Lock()
	fn := c.r.snapshot
	c.r.mu.Unlock()
	if fn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), snapshotTimeout)
	defer cancel()
	s := fn(ctx)
	if s == nil {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, m := range s.Mirrors {
		l := []string{m.Database, m.Schema, m.Table}
		if m.LagKnown {
			gauge(descLagBytes, float64(m.LagBytes), l...)
			gauge(descLagSecs, m.LagSeconds, l...)
		}
		gauge(descUnflushed, float64(m.UnflushedRows), l...)
		gauge(descDataFiles, float64(m.DataFiles), l...)
		gauge(descDelFiles, float64(m.DeleteFiles), l...)
		for _, st := range States {
			v := 0.0
			if st == m.State {
				v = 1
			}
			gauge(descState, v, m.Database, m.Schema, m.Table, st)
		}
	}
	a := s.Admission
	gauge(descMax, float64(a.MaxRunning))
	gauge(descQueued, float64(a.Queued))
	gauge(descRunning, float64(a.Running))
	gauge(descOpen, float64(a.Open))
	gauge(descReadPins, float64(a.ReadPins))
	gauge(descOldest, a.OldestRead.Seconds())
	for _, d := range s.DuckDB {
		gauge(descDuckMem, float64(d.MemoryBytes), d.Tag)
		gauge(descDuckTemp, float64(d.TemporaryBytes), d.Tag)
	}
	if s.DuckDBMemoryLimit > 0 {
		gauge(descDuckLimit, float64(s.DuckDBMemoryLimit))
	}
}
