package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// RequireEnv is the environment variable that turns skips into failures:
// with RequireEnv=1, a missing PostgreSQL or extension fails the test.
const RequireEnv = "MOONCAKE_REQUIRE_PG"

// sidecarWait bounds how long CreateExtension and WaitSidecar wait for the
// background worker to report the sidecar's socket listening.
const sidecarWait = 30 * time.Second

// Option changes how Start configures a cluster.
type Option func(*config)

type config struct {
	settings []setting // postgresql.conf entries, later ones win
	files    []file    // written into the data directory before the start
	pgConfig string    // pg_config of the installation to run; "" for $PG_CONFIG's
}

type file struct {
	name    string
	content []byte
	mode    os.FileMode
}

type setting struct {
	name  string
	value string
}

// WithSetting sets a postgresql.conf parameter, overriding the harness's
// default for the same name.
func WithSetting(name, value string) Option {
	return func(c *config) { c.settings = append(c.settings, setting{name, value}) }
}

// WithFile writes a file (a path relative to the data directory) owned by
// the server's OS user before the server starts, e.g. a certificate.
func WithFile(name string, content []byte, mode os.FileMode) Option {
	return func(c *config) { c.files = append(c.files, file{name, content, mode}) }
}

// WithPGConfig runs the cluster from the PostgreSQL installation whose
// pg_config is path rather than $PG_CONFIG's: a private copy of it with
// another build of pg_mooncake installed (test/upgrade_test.go).
func WithPGConfig(path string) Option {
	return func(c *config) { c.pgConfig = path }
}

// WithHBA replaces pg_hba.conf (which otherwise trusts every local
// connection), e.g. to check passwords over TCP.
func WithHBA(content string) Option {
	return WithFile("pg_hba.conf", []byte(content), 0o600)
}

// Cluster is a running throwaway PostgreSQL cluster.
type Cluster struct {
	inst    installation
	dir     string     // temporary directory holding everything below
	dataDir string     // PGDATA
	sockDir string     // unix_socket_directories
	logFile string     // server log (pg_ctl -l)
	port    int        // TCP port on 127.0.0.1
	pgUser  *user.User // OS user the server runs as when the test runs as root; nil otherwise

	mu    sync.Mutex
	extDB string // database of the last CreateExtension, where bgworker_status() exists
}

// installation is where PostgreSQL's programs and extension files live.
type installation struct {
	bindir    string
	pkglibdir string
	sharedir  string
}

var (
	instOnce sync.Once
	inst     installation
	instErr  error
)

func findInstallation() (installation, error) {
	instOnce.Do(func() {
		pgConfig := os.Getenv("PG_CONFIG")
		if pgConfig == "" {
			pgConfig = "pg_config"
		}
		inst, instErr = lookupInstallation(pgConfig)
	})
	return inst, instErr
}

// lookupInstallation asks pg_config where the installation's programs,
// libraries and shared files are.
func lookupInstallation(pgConfig string) (installation, error) {
	path, err := exec.LookPath(pgConfig)
	if err != nil {
		return installation{}, fmt.Errorf("pg_config not found (install postgresql-15 and postgresql-server-dev-15, or set PG_CONFIG): %w", err)
	}
	out, err := exec.Command(path, "--bindir", "--pkglibdir", "--sharedir").Output()
	if err != nil {
		return installation{}, fmt.Errorf("%s: %w", path, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 {
		return installation{}, fmt.Errorf("%s printed %q; want three lines", path, out)
	}
	in := installation{bindir: lines[0], pkglibdir: lines[1], sharedir: lines[2]}
	if _, err := os.Stat(filepath.Join(in.bindir, "initdb")); err != nil {
		return installation{}, fmt.Errorf("PostgreSQL server programs not installed: %w", err)
	}
	return in, nil
}

// extensionInstalled reports whether pg_mooncake's control file and library
// are installed.
func (i installation) extensionInstalled() bool {
	_, errControl := os.Stat(filepath.Join(i.sharedir, "extension", "pg_mooncake.control"))
	_, errLib := os.Stat(filepath.Join(i.pkglibdir, "pg_mooncake.so"))
	return errControl == nil && errLib == nil
}

// skipOrFail skips the test, or fails it when RequireEnv is set.
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf(format+" ("+RequireEnv+"=1, so this is a failure)", args...)
	}
	t.Skipf(format+" (set "+RequireEnv+"=1 to fail instead)", args...)
}

// RequirePostgres skips the test (or fails it, see RequireEnv) unless
// PostgreSQL's server programs are installed.
func RequirePostgres(t testing.TB) {
	t.Helper()
	if _, err := findInstallation(); err != nil {
		skipOrFail(t, "pgtest: %v", err)
	}
}

// RequireExtension skips the test (or fails it, see RequireEnv) unless
// PostgreSQL, the pg_mooncake extension and the mooncake-sidecar binary are
// installed.
func RequireExtension(t testing.TB) {
	t.Helper()
	RequirePostgres(t)
	in, _ := findInstallation()
	if !in.extensionInstalled() {
		skipOrFail(t, "pgtest: extension pg_mooncake is not installed in %s (run make install)", in.pkglibdir)
	}
	if _, err := os.Stat(filepath.Join(in.bindir, "mooncake-sidecar")); err != nil {
		skipOrFail(t, "pgtest: mooncake-sidecar is not installed in %s (run make install)", in.bindir)
	}
}

// Start creates, configures and starts a cluster on a free port. It is
// stopped and its directory removed when the test ends; if the test failed,
// the directory is kept and the server log's tail is logged.
func Start(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	RequirePostgres(t)
	in, _ := findInstallation()
	cfg := config{}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.pgConfig != "" {
		var err error
		if in, err = lookupInstallation(cfg.pgConfig); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
	}

	c := &Cluster{inst: in, extDB: "postgres"}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("pgtest: running as root needs the OS user postgres (PostgreSQL refuses to run as root): %v", err)
		}
		if _, err := exec.LookPath("runuser"); err != nil {
			t.Fatalf("pgtest: running as root needs runuser: %v", err)
		}
		c.pgUser = u
	}

	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	c.dir = dir
	c.dataDir = filepath.Join(dir, "data")
	c.sockDir = filepath.Join(dir, "run")
	c.logFile = filepath.Join(dir, "postgres.log")
	t.Cleanup(func() { c.cleanup(t) })

	if err := os.Mkdir(c.sockDir, 0o755); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	c.own(t, dir, c.sockDir)

	if out, err := c.pgCommand("initdb", "-D", c.dataDir, "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--locale=C").CombinedOutput(); err != nil {
		t.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	c.appendFile(t, filepath.Join(c.dataDir, "postgresql.conf"),
		"include_if_exists = 'mooncake.conf'\t# written by pgtest\n")

	for _, f := range cfg.files {
		path := filepath.Join(c.dataDir, f.name)
		if err := os.WriteFile(path, f.content, f.mode); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		c.own(t, path)
	}

	// The free port can be taken between our probe and the postmaster's
	// bind, by a cluster of a test running in parallel; then try another.
	const attempts = 3
	for i := 1; ; i++ {
		c.port = freePort(t)
		c.writeSettings(t, cfg)
		out, err := c.pgCommand("pg_ctl", "-D", c.dataDir, "-l", c.logFile, "-w", "-t", "60", "start").CombinedOutput()
		if err == nil {
			break
		}
		if i < attempts && strings.Contains(c.LogTail(20), "could not bind") {
			continue
		}
		t.Fatalf("pgtest: pg_ctl start: %v\n%s\nlast lines of %s:\n%s", err, out, c.logFile, c.LogTail(30))
	}
	return c
}

// writeSettings (re)writes mooncake.conf, the file postgresql.conf includes.
func (c *Cluster) writeSettings(t testing.TB, cfg config) {
	t.Helper()
	preload := ""
	if c.inst.extensionInstalled() {
		preload = "pg_mooncake"
	}
	settings := []setting{
		{"listen_addresses", "127.0.0.1"},
		{"port", strconv.Itoa(c.port)},
		{"unix_socket_directories", c.sockDir},
		{"wal_level", "logical"},
		{"shared_preload_libraries", preload},
		{"max_replication_slots", "20"},
		{"max_wal_senders", "20"},
		{"max_connections", "100"},
		{"fsync", "off"},
		{"log_min_messages", "warning"},
	}
	if preload != "" {
		// Clusters of tests run side by side: Flight only where a test asks.
		settings = append(settings, setting{"pg_mooncake.flight_listen", ""})
	}
	settings = append(settings, cfg.settings...)

	var b strings.Builder
	b.WriteString("# Written by pgtest. A test cluster: every local connection is trusted.\n")
	for _, s := range settings {
		v := strings.ReplaceAll(s.value, `\`, `\\`)
		v = strings.ReplaceAll(v, `'`, `''`)
		fmt.Fprintf(&b, "%s = '%s'\n", s.name, v)
	}
	path := filepath.Join(c.dataDir, "mooncake.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	c.own(t, path)
}

func (c *Cluster) cleanup(t testing.TB) {
	if _, err := os.Stat(filepath.Join(c.dataDir, "postmaster.pid")); err == nil {
		if out, err := c.pgCommand("pg_ctl", "-D", c.dataDir, "-m", "immediate", "-w", "-t", "60", "stop").CombinedOutput(); err != nil {
			t.Logf("pgtest: pg_ctl stop: %v\n%s", err, out)
		}
	}
	if t.Failed() {
		t.Logf("pgtest: kept %s; last lines of %s:\n%s", c.dir, c.logFile, c.LogTail(40))
		return
	}
	if err := os.RemoveAll(c.dir); err != nil {
		t.Logf("pgtest: %v", err)
	}
}

// pgCommand runs a PostgreSQL server program as the OS user postgres when the
// test runs as root, as the caller otherwise.
func (c *Cluster) pgCommand(prog string, args ...string) *exec.Cmd {
	path := filepath.Join(c.inst.bindir, prog)
	var cmd *exec.Cmd
	if c.pgUser != nil {
		cmd = exec.Command("runuser", append([]string{"-u", c.pgUser.Username, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	// The server's user may not be allowed into the test's working directory.
	cmd.Dir = c.dir
	// pg_ctl's postmaster must not hold our output pipe; if it ever does,
	// do not wait for it forever.
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// own gives paths to the server's OS user (when running as root).
func (c *Cluster) own(t testing.TB, paths ...string) {
	t.Helper()
	if c.pgUser == nil {
		return
	}
	uid, _ := strconv.Atoi(c.pgUser.Uid)
	gid, _ := strconv.Atoi(c.pgUser.Gid)
	for _, p := range paths {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
	}
}

func (c *Cluster) appendFile(t testing.TB, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		t.Fatalf("pgtest: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ConnString returns a libpq key/value connection string for database db.
func (c *Cluster) ConnString(db string) string {
	quoted := strings.ReplaceAll(strings.ReplaceAll(db, `\`, `\\`), `'`, `\'`)
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname='%s' sslmode=disable", c.port, quoted)
}

// Port returns the cluster's TCP port on 127.0.0.1.
func (c *Cluster) Port() int { return c.port }

// DataDir returns the cluster's data directory (PGDATA).
func (c *Cluster) DataDir() string { return c.dataDir }

// BinDir is the directory of the installation's programs (pg_dump, psql).
func (c *Cluster) BinDir() string { return c.inst.bindir }

// LogTail returns the last n lines of the server log.
func (c *Cluster) LogTail(n int) string {
	data, err := os.ReadFile(c.logFile)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", c.logFile, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (c *Cluster) connect(ctx context.Context, db string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return pgx.Connect(ctx, c.ConnString(db))
}

// Conn opens a connection to database db, closed when the test ends.
func (c *Cluster) Conn(t testing.TB, db string) *pgx.Conn {
	t.Helper()
	conn, err := c.connect(context.Background(), db)
	if err != nil {
		t.Fatalf("pgtest: connecting to %s: %v", db, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// MustExec runs sql in database postgres on a connection of its own and fails
// the test on error.
func (c *Cluster) MustExec(t testing.TB, sql string, args ...any) {
	t.Helper()
	c.mustExecIn(t, "postgres", sql, args...)
}

func (c *Cluster) mustExecIn(t testing.TB, db, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := c.connect(ctx, db)
	if err != nil {
		t.Fatalf("pgtest: connecting to %s: %v", db, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
}

// MustQueryString runs sql in database postgres and returns the first column
// of the first row in PostgreSQL's text form ("" for NULL). It fails the test
// on error or when there is no row.
func (c *Cluster) MustQueryString(t testing.TB, sql string, args ...any) string {
	t.Helper()
	s, err := c.queryString(context.Background(), "postgres", sql, args...)
	if err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
	return s
}

// queryString uses the simple protocol so every value arrives as text.
func (c *Cluster) queryString(ctx context.Context, db, sql string, args ...any) (string, error) {
	conn, err := c.connect(ctx, db)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, sql, append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return "", err
		}
		return "", errors.New("query returned no rows")
	}
	vals := rows.RawValues()
	if len(vals) == 0 {
		return "", errors.New("query returned no columns")
	}
	s := string(vals[0])
	rows.Close()
	return s, rows.Err()
}

// CreateExtension runs CREATE EXTENSION pg_mooncake in database db (if it is
// not there yet) and waits until the background worker reports the
// sidecar's socket listening. It skips the test (or fails it, see
// RequireEnv) when the extension is not installed.
func (c *Cluster) CreateExtension(t testing.TB, db string) {
	t.Helper()
	RequireExtension(t)
	c.mustExecIn(t, db, "CREATE EXTENSION IF NOT EXISTS pg_mooncake")
	c.mu.Lock()
	c.extDB = db
	c.mu.Unlock()
	c.WaitSidecar(t)
}

func (c *Cluster) statusDB() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.extDB
}

// WaitSidecar waits until mooncake.bgworker_status() reports
// socket_listening true (after CreateExtension, Restart or KillSidecar),
// and fails the test with the server log's tail if it does not within 30 s.
func (c *Cluster) WaitSidecar(t testing.TB) {
	t.Helper()
	db := c.statusDB()
	deadline := time.Now().Add(sidecarWait)
	var last string
	for {
		s, err := c.queryString(context.Background(), db,
			"select mooncake.bgworker_status()->>'socket_listening'")
		if err == nil && s == "true" {
			return
		}
		if err != nil {
			last = err.Error()
		} else {
			last = "socket_listening = " + s
		}
		if time.Now().After(deadline) {
			status, _ := c.queryString(context.Background(), db, "select mooncake.bgworker_status()::text")
			t.Fatalf("pgtest: the sidecar is not listening after %v (last: %s; bgworker_status: %s)\nlast lines of %s:\n%s",
				sidecarWait, last, status, c.logFile, c.LogTail(40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Restart restarts the cluster with pg_ctl restart -m mode ("smart", "fast"
// or "immediate") and waits until it accepts connections. It does not wait
// for the sidecar: call WaitSidecar for that.
func (c *Cluster) Restart(t testing.TB, mode string) {
	t.Helper()
	out, err := c.pgCommand("pg_ctl", "-D", c.dataDir, "-l", c.logFile, "-m", mode, "-w", "-t", "60", "restart").CombinedOutput()
	if err != nil {
		t.Fatalf("pgtest: pg_ctl restart -m %s: %v\n%s\nlast lines of %s:\n%s", mode, err, out, c.logFile, c.LogTail(30))
	}
}

// Stop stops the cluster (pg_ctl stop -m fast), e.g. to install another
// build of the extension into its installation; StartAgain starts it.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	out, err := c.pgCommand("pg_ctl", "-D", c.dataDir, "-m", "fast", "-w", "-t", "60", "stop").CombinedOutput()
	if err != nil {
		t.Fatalf("pgtest: pg_ctl stop: %v\n%s\nlast lines of %s:\n%s", err, out, c.logFile, c.LogTail(30))
	}
}

// StartAgain starts a cluster Stop stopped, on the same port, and waits
// until it accepts connections (not for the sidecar: see WaitSidecar).
func (c *Cluster) StartAgain(t testing.TB) {
	t.Helper()
	out, err := c.pgCommand("pg_ctl", "-D", c.dataDir, "-l", c.logFile, "-w", "-t", "60", "start").CombinedOutput()
	if err != nil {
		t.Fatalf("pgtest: pg_ctl start: %v\n%s\nlast lines of %s:\n%s", err, out, c.logFile, c.LogTail(30))
	}
}

// SidecarPID returns the sidecar's process id as mooncake.bgworker_status()
// reports it, in the database of the last CreateExtension.
func (c *Cluster) SidecarPID(t testing.TB) int {
	t.Helper()
	s, err := c.queryString(context.Background(), c.statusDB(), "select mooncake.bgworker_status()->>'pid'")
	if err != nil {
		t.Fatalf("pgtest: bgworker_status: %v", err)
	}
	pid, err := strconv.Atoi(s)
	if err != nil || pid <= 0 {
		t.Fatalf("pgtest: bgworker_status reports pid %q: no sidecar running", s)
	}
	return pid
}

// KillSidecar sends SIGKILL to the sidecar and returns the pid it killed.
func (c *Cluster) KillSidecar(t testing.TB) int {
	t.Helper()
	pid := c.SidecarPID(t)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("pgtest: kill -9 %d: %v", pid, err)
	}
	return pid
}

// String describes the cluster for test logs.
func (c *Cluster) String() string {
	return fmt.Sprintf("PostgreSQL on 127.0.0.1:%d (data %s, log %s)", c.port, c.dataDir, c.logFile)
}
