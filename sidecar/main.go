// Command mooncake-sidecar serves a PostgreSQL cluster's columnstore
// mirrors: it applies logical replication to Iceberg tables and answers the
// pg_mooncake extension's queries with DuckDB. The extension's background
// worker starts it; see README.md for its flags.
package main

import (
	"context"
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
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmooncake/mooncake/sql"
)

const version = "0.1.0"

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
		tcp         = flag.String("tcp", "", "also listen on this TCP address, e.g. 127.0.0.1:7433")
		warehouse   = flag.String("warehouse", "", "Iceberg warehouse directory (default <data-dir>/pg_mooncake/warehouse)")
		memoryLimit = flag.String("memory-limit", "4GB", "DuckDB memory_limit")
		threads     = flag.Int("threads", runtime.NumCPU(), "DuckDB threads")
		flushEvery  = flag.Duration("flush-interval", 10*time.Second, "how often replicated changes are committed to Iceberg")
		showVersion = flag.Bool("version", false, "print the version and exit")
	)
	flag.Parse()
	if *showVersion {
		fmt.Println(version)
		return nil
	}
	if *dataDir == "" {
		return fmt.Errorf("--data-dir is required")
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
	tmp := tmpDirOf(*dataDir)
	for _, d := range []string{base, *warehouse, tmp} {
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
	cfg.RuntimeParams = map[string]string{"application_name": "mooncake-sidecar", "TimeZone": "UTC", "DateStyle": "ISO, YMD"}

	engine, err := sql.Open(sql.Options{MemoryLimit: *memoryLimit, Threads: *threads, TempDir: filepath.Join(tmp, "duckdb")})
	if err != nil {
		return err
	}
	defer engine.Close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	quit := make(chan os.Signal, 1)
	// PostgreSQL's immediate shutdown sends SIGQUIT to the process group: exit
	// at once, without the Go runtime's goroutine dump.
	signal.Notify(quit, syscall.SIGQUIT)
	go func() { <-quit; os.Exit(2) }()
	defer stop()

	dbs := &databases{base: cfg, engine: engine, warehouse: *warehouse, cdc: !*noCDC, flush: *flushEvery, ctx: ctx, byName: map[string]*database{}, spoolDir: tmp,
		fatal: func(err error) {
			// In-memory state no longer matches Iceberg: start over from it.
			slog.Error("restarting to reload mirrors from Iceberg", "err", err)
			os.Exit(3)
		}}
	srv := &server{dbs: dbs, tmpDir: tmp}

	os.Remove(*socket)
	ln, err := net.Listen("unix", *socket)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *socket, err)
	}
	os.Chmod(*socket, 0o600)
	if *tcp != "" {
		tl, err := net.Listen("tcp", *tcp)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", *tcp, err)
		}
		go srv.serve(ctx, tl)
	}
	if addr := os.Getenv("MOONCAKE_PPROF"); addr != "" {
		// Profiling endpoint for benchmarks; never on by default.
		go http.ListenAndServe(addr, nil)
	}
	slog.Info("sidecar ready", "version", version, "pid", os.Getpid(), "socket", *socket, "cdc", !*noCDC)
	go dbs.discover(ctx)
	srv.serve(ctx, ln)
	os.Remove(*socket)
	slog.Info("sidecar stopped")
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
