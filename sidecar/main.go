// Command mooncake-sidecar serves a PostgreSQL cluster's columnstore
// mirrors: it applies logical replication to Iceberg tables and answers the
// pg_mooncake extension's queries with DuckDB. The extension's background
// worker starts it; see README.md for its flags.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmooncake/mooncake/catalog"
	"github.com/pgmooncake/mooncake/cdc"
	"github.com/pgmooncake/mooncake/flight"
	"github.com/pgmooncake/mooncake/sidecar/metrics"
	"github.com/pgmooncake/mooncake/sidecar/service"
	"github.com/pgmooncake/mooncake/sql"
	"github.com/pgmooncake/mooncake/sql/lake/remote"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mooncake-sidecar:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		socket      = flag.String("socket", "", "Unix socket to listen on (default <data-dir>/pg_mooncake/sidecar.sock)")
		dataDir     = flag.String("data-dir", "", "the PostgreSQL data directory (required)")
		pgHost      = flag.String("pg-host", "127.0.0.1", "PostgreSQL host or socket directory")
		pgPort      = flag.Int("pg-port", 5432, "PostgreSQL port")
		pgUser      = flag.String("pg-user", "postgres", "PostgreSQL superuser to connect as")
		noCDC       = flag.Bool("no-cdc", false, "serve reads only: no replication, no new mirrors")
		tcp         = flag.String("tcp", "", "also listen on this TCP address, e.g. 127.0.0.1:7433 (clients authenticate with the secret file's secret)")
		secretFile  = flag.String("tcp-secret-file", "", "the TCP listener's secret (default <data-dir>/pg_mooncake/sidecar.secret, created if missing)")
		tcpInsecure = flag.Bool("tcp-insecure", false, "allow --tcp and --flight on an address other hosts can reach, without TLS")
		tlsCert     = flag.String("tls-cert", "", "certificate (PEM) of the TCP listener: with --tls-key, --tcp speaks TLS")
		tlsKey      = flag.String("tls-key", "", "private key (PEM, mode 0600) of --tls-cert")
		flightAddr  = flag.String("flight", "", "serve Arrow Flight SQL on this TCP address, e.g. 127.0.0.1:8815")
		flightCert  = flag.String("flight-tls-cert", "", "certificate (PEM) of the Flight service: with --flight-tls-key, it speaks TLS")
		flightKey   = flag.String("flight-tls-key", "", "private key (PEM, mode 0600) of --flight-tls-cert")
		flightPG    = flag.String("flight-pg-host", "127.0.0.1", "TCP host where Flight sessions connect to PostgreSQL as their role")
		flightTTL   = flag.Duration("flight-token-ttl", time.Hour, "a Flight bearer token expires after this long unused")
		warehouse   = flag.String("warehouse", "", "Iceberg warehouse: a directory or an s3:// prefix (default <data-dir>/pg_mooncake/warehouse)")
		memoryLimit = flag.String("memory-limit", envString("MOONCAKE_MEMORY_LIMIT", defaultMemoryLimit()), "DuckDB memory_limit, shared by all queries (env MOONCAKE_MEMORY_LIMIT)")
		threads     = flag.Int("threads", envInt("MOONCAKE_THREADS", runtime.NumCPU()), "DuckDB threads (env MOONCAKE_THREADS)")
		maxQueries  = flag.Int("max-queries", envInt("MOONCAKE_MAX_QUERIES", 0), "queries DuckDB runs at once, others wait (default twice the threads, at least 4; env MOONCAKE_MAX_QUERIES)")
		resultCache = flag.Int("result-cache-mb", envInt("MOONCAKE_RESULT_CACHE_MB", sql.DefaultResultCacheBytes>>20), "MiB of small answers kept for repeated queries on mirrors that took no change since (0: none; env MOONCAKE_RESULT_CACHE_MB)")
		copyWorkers = flag.Int("copy-workers", envInt("MOONCAKE_COPY_WORKERS", cdc.CopyWorkers), "sessions that copy one large source at once (initial copy, resync; env MOONCAKE_COPY_WORKERS)")
		flushEvery  = flag.Duration("flush-interval", 10*time.Second, "how often replicated changes are committed to Iceberg")
		orphanSweep = flag.Duration("orphan-sweep-interval", envDuration("MOONCAKE_ORPHAN_SWEEP_INTERVAL", time.Hour), "how often the files of columnstore tables left by crashed transactions (older than an hour) are removed; 0: never (env MOONCAKE_ORPHAN_SWEEP_INTERVAL)")
		retention   = flag.Duration("snapshot-retention", envDuration("MOONCAKE_SNAPSHOT_RETENTION", catalog.SnapshotRetention), "how long a mirror's or columnstore table's replaced snapshots and their files are kept for the queries reading them (env MOONCAKE_SNAPSHOT_RETENTION)")
		metricsAt   = flag.String("metrics", "", "serve Prometheus metrics on http://<address>/metrics, e.g. 127.0.0.1:9187 (no authentication: keep it on loopback or a private network)")
		lakeCache   = flag.String("lake-cache-size", "1GB", "size limit of the local cache of remote objects (s3:// paths), e.g. 512MB, 20GB")
		showVersion = flag.Bool("version", false, "print the version and exit")
	)
	flag.Parse()
	if *showVersion {
		fmt.Println(service.Version)
		return nil
	}
	if *dataDir == "" {
		return fmt.Errorf("--data-dir is required")
	}
	if envErr != nil {
		return envErr
	}
	if *copyWorkers < 1 {
		return fmt.Errorf("--copy-workers must be at least 1")
	}
	cdc.CopyWorkers = *copyWorkers
	if *retention < 0 {
		return fmt.Errorf("--snapshot-retention must not be negative")
	}
	catalog.SnapshotRetention = *retention
	if *threads < 1 {
		*threads = runtime.NumCPU()
	}
	if *maxQueries < 1 {
		*maxQueries = max(4, 2**threads)
	}
	tuneGC()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("component", "mooncake-sidecar"))
	base := filepath.Join(*dataDir, "pg_mooncake")
	if *socket == "" {
		*socket = filepath.Join(base, "sidecar.sock")
	}
	if *warehouse == "" {
		*warehouse = filepath.Join(base, "warehouse")
	}
	tmp := service.TmpDirOf(*dataDir)
	dirs := []string{base, tmp}
	if !catalog.IsRemote(*warehouse) {
		dirs = append(dirs, *warehouse)
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	// Leftovers of a previous run (copies, DuckDB spill files) are garbage.
	if entries, err := os.ReadDir(tmp); err == nil {
		for _, e := range entries {
			os.RemoveAll(filepath.Join(tmp, e.Name()))
		}
	}

	cfg, err := pgx.ParseConfig("")
	if err != nil {
		return err
	}
	cfg.Host, cfg.Port, cfg.User, cfg.Database = *pgHost, uint16(*pgPort), *pgUser, "postgres"
	cfg.Password = os.Getenv("PGPASSWORD")
	cfg.TLSConfig = nil
	cfg.Fallbacks = nil
	// search_path: the sidecar's queries name every object they use by its
	// schema, and resolve operators in pg_catalog alone, never in a schema
	// other roles may create in.
	cfg.RuntimeParams = map[string]string{"application_name": "mooncake-sidecar", "TimeZone": "UTC", "DateStyle": "ISO, YMD",
		"search_path": "pg_catalog, pg_temp"}
	// No statement_timeout or such of the database's or role's settings.
	cdc.ServiceConfig(cfg)

	cacheBytes := int64(*resultCache) << 20
	if cacheBytes <= 0 {
		cacheBytes = -1
	}
	engine, err := sql.Open(sql.Options{MemoryLimit: *memoryLimit, Threads: *threads, TempDir: filepath.Join(tmp, "duckdb"), ResultCacheBytes: cacheBytes})
	if err != nil {
		return err
	}
	defer engine.Close()
	// Keep the connections of the queries running at once open between
	// queries rather than opening one per query.
	engine.DB.SetMaxIdleConns(*maxQueries + 2)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	quit := make(chan os.Signal, 1)
	// PostgreSQL's immediate shutdown sends SIGQUIT to the process group: exit
	// at once, without the Go runtime's goroutine dump.
	signal.Notify(quit, syscall.SIGQUIT)
	go func() { <-quit; os.Exit(2) }()
	defer stop()

	cacheLimit, err := parseSize(*lakeCache)
	if err != nil {
		return fmt.Errorf("--lake-cache-size: %w", err)
	}
	lakeStore, err := remote.NewStore(filepath.Join(base, "lake_cache"), cacheLimit)
	if err != nil {
		return err
	}

	if *orphanSweep < 0 {
		return fmt.Errorf("--orphan-sweep-interval must not be negative")
	}
	svc := service.New(ctx, service.Options{Base: cfg, Engine: engine, Warehouse: *warehouse, CDC: !*noCDC, Flush: *flushEvery,
		OrphanSweep: *orphanSweep,
		TmpDir:      tmp, MaxQueries: *maxQueries, MemoryLimit: *memoryLimit, Threads: *threads, LakeCache: lakeStore,
		TableCopies: filepath.Join(base, "s3_tables"),
		Fatal: func(err error) {
			// In-memory state no longer matches Iceberg: start over from it.
			slog.Error("restarting to reload mirrors from Iceberg", "err", err)
			os.Exit(3)
		}})

	os.Remove(*socket)
	ln, err := net.Listen("unix", *socket)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *socket, err)
	}
	os.Chmod(*socket, 0o600)
	if *tcp != "" {
		tlsConfig, err := service.LoadTLS(*tlsCert, *tlsKey)
		if err != nil {
			return err
		}
		if err := service.CheckListenAddress(*tcp, tlsConfig != nil, *tcpInsecure); err != nil {
			return err
		}
		path := *secretFile
		if path == "" {
			path = service.SecretPath(*dataDir)
		}
		secret, err := service.LoadSecret(path)
		if err != nil {
			return err
		}
		tl, err := net.Listen("tcp", *tcp)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", *tcp, err)
		}
		if tlsConfig != nil {
			tl = tls.NewListener(tl, tlsConfig)
		}
		slog.Info("listening on TCP", "address", *tcp, "tls", tlsConfig != nil)
		go svc.ServeFDWTCP(ctx, tl, secret)
	}
	if *flightAddr != "" {
		// The sidecar serves the mirrors without Flight rather than not at
		// all: a Flight address that cannot be used is logged.
		if err := serveFlight(ctx, svc, *flightAddr, *flightCert, *flightKey, *tcpInsecure, *flightPG, uint16(*pgPort), *flightTTL); err != nil {
			slog.Error("the Arrow Flight SQL service is off", "err", err)
		}
	}
	if *metricsAt != "" {
		// Like Flight: the sidecar serves the mirrors without metrics
		// rather than not at all.
		metrics.Default.SetSnapshot(svc.MetricsSnapshot)
		if bound, err := metrics.Serve(ctx, *metricsAt, metrics.Default); err != nil {
			slog.Error("the metrics endpoint is off", "address", *metricsAt, "err", err)
		} else {
			svc.SetMetricsAddress(bound)
			slog.Info("serving Prometheus metrics", "address", bound)
			if !metrics.Loopback(bound) {
				slog.Warn("the metrics endpoint has no authentication and other hosts can reach it: keep it on a private network", "address", bound)
			}
		}
	}
	if addr := os.Getenv("MOONCAKE_PPROF"); addr != "" {
		// Profiling endpoint for benchmarks; never on by default.
		go http.ListenAndServe(addr, nil)
	}
	slog.Info("sidecar ready", "version", service.Version, "pid", os.Getpid(), "socket", *socket, "cdc", !*noCDC,
		"memory_limit", *memoryLimit, "threads", *threads, "max_queries", *maxQueries)
	go svc.Discover(ctx)
	svc.ServeFDW(ctx, ln)
	os.Remove(*socket)
	slog.Info("sidecar stopped")
	return nil
}

// serveFlight starts the Arrow Flight SQL service.
func serveFlight(ctx context.Context, svc *service.Service, addr, cert, key string, insecure bool, pgHost string, pgPort uint16, ttl time.Duration) error {
	tlsConfig, err := service.LoadTLS(cert, key)
	if err != nil {
		return err
	}
	if err := service.CheckListenAddress(addr, tlsConfig != nil, insecure); err != nil {
		return err
	}
	bound, err := flight.Serve(ctx, svc, flight.Options{Addr: addr, TLS: tlsConfig, PGHost: pgHost, PGPort: pgPort, TokenTTL: ttl})
	if err != nil {
		return err
	}
	svc.SetFlightAddress(bound)
	slog.Info("serving Arrow Flight SQL", "address", bound, "tls", tlsConfig != nil)
	return nil
}

// tuneGC makes the Go collector run less often than its default: the apply
// path allocates many short-lived values while its live heap stays small
// (rows live in DuckDB), so the default GOGC=100 spends a large share of a
// core on collections. A soft memory limit keeps the heap in bounds. The
// GOGC and GOMEMLIMIT environment variables, when set, win.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(256 << 20)
	}
}

// envErr is the first malformed setting read by envInt.
var envErr error

// envString is the value of the environment variable name, or def when it
// is unset or empty. The background worker starts the sidecar with the
// server's environment, so these variables are how its DuckDB is tuned.
func envString(name, def string) string {
	if v := strings.TrimSpace(os.Getenv(name)); v != "" {
		return v
	}
	return def
}

// envInt is envString for an integer.
func envInt(name string, def int) int {
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil && envErr == nil {
		envErr = fmt.Errorf("environment variable %s=%q is not an integer", name, v)
	}
	if err != nil {
		return def
	}
	return n
}

// envDuration is envString for a duration (Go's syntax: 90s, 30m, 2h).
func envDuration(name string, def time.Duration) time.Duration {
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil && envErr == nil {
		envErr = fmt.Errorf("environment variable %s=%q is not a duration (such as 30m or 2h)", name, v)
	}
	if err != nil {
		return def
	}
	return d
}

// defaultMemoryLimit is DuckDB's memory_limit when none is given: a quarter
// of the memory the sidecar may use (the machine's, or its cgroup's limit
// when lower), at most 4GB and at least 256MB. The rest is PostgreSQL's.
func defaultMemoryLimit() string {
	const mb = 1 << 20
	total := uint64(0)
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				if kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64); err == nil {
					total = kb * 1024
				}
			}
		}
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && (total == 0 || n < total) {
			total = n
		}
	}
	if total == 0 {
		return "4GB"
	}
	limit := min(max(total/4, 256*mb), 4096*mb)
	return fmt.Sprintf("%dMiB", limit/mb)
}

// parseSize reads a size such as 512MB, 20GB or a number of bytes.
func parseSize(v string) (int64, error) {
	s := strings.ToUpper(strings.TrimSpace(v))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size", v)
	}
	return n * mult, nil
}
