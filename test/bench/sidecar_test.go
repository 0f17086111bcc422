package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmooncake/mooncake/test/pgtest"
)

// pgBindir is the directory of PostgreSQL's programs, where `make install`
// puts mooncake-sidecar.
func pgBindir(t *testing.T) string {
	t.Helper()
	pgConfig := os.Getenv("PG_CONFIG")
	if pgConfig == "" {
		pgConfig = "pg_config"
	}
	out, err := exec.Command(pgConfig, "--bindir").Output()
	if err != nil {
		t.Fatalf("%s --bindir: %v", pgConfig, err)
	}
	return strings.TrimSpace(string(out))
}

// gate holds the sidecar back: the cluster's pg_mooncake.sidecar_path is a
// script that waits until the gate file exists, then execs the installed
// sidecar with its arguments. Closing the gate and killing the sidecar
// leaves the background worker's next sidecar waiting, so WAL piles up
// unread until the gate opens.
type gate struct {
	file   string // the gate is open while this file exists
	script string // the wrapper given as pg_mooncake.sidecar_path
	pprof  string // host:port of the sidecar's pprof endpoint, or empty
}

// ProfileEnv names a directory: when set, the apply benchmarks save a CPU
// profile of the sidecar while it catches up there.
const ProfileEnv = "MOONCAKE_BENCH_PROFILE"

// newGate writes the wrapper script, with the gate open. With ProfileEnv
// set, the sidecar it starts serves pprof on a free loopback port.
func newGate(t *testing.T) *gate {
	t.Helper()
	sidecar := filepath.Join(pgBindir(t), "mooncake-sidecar")
	dir, err := os.MkdirTemp("", "mooncake-bench-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// The server may run as another OS user (as root, pgtest runs it as
	// postgres): it must reach both files.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	g := &gate{file: filepath.Join(dir, "open"), script: filepath.Join(dir, "gated-sidecar")}
	env := ""
	if os.Getenv(ProfileEnv) != "" {
		g.pprof = freeAddr(t)
		env = "MOONCAKE_PPROF=" + shellQuote(g.pprof) + " "
	}
	script := fmt.Sprintf("#!/bin/sh\n# Written by test/bench: starts the sidecar once %s exists.\n"+
		"while [ ! -e %s ]; do sleep 0.01; done\n%sexec %s \"$@\"\n",
		shellQuote(g.file), shellQuote(g.file), env, shellQuote(sidecar))
	if err := os.WriteFile(g.script, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	g.open(t)
	return g
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// profile saves a CPU profile of the sidecar over the next d into
// $ProfileEnv/name.pprof. The test's end waits for it. It does nothing
// unless profiling is on.
func (g *gate) profile(t *testing.T, name string, d time.Duration) {
	if g.pprof == "" {
		return
	}
	done := make(chan struct{})
	path := filepath.Join(os.Getenv(ProfileEnv), name+".pprof")
	t.Cleanup(func() { <-done })
	go func() {
		defer close(done)
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", g.pprof, int(d.Seconds()))
		resp, err := http.Get(url)
		if err != nil {
			t.Logf("profile: %v", err)
			return
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		if err == nil {
			err = os.WriteFile(path, data, 0o644)
		}
		if err != nil {
			t.Logf("profile: %v", err)
			return
		}
		t.Logf("sidecar CPU profile: %s", path)
	}()
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// option makes the wrapper the cluster's sidecar.
func (g *gate) option() pgtest.Option {
	return pgtest.WithSetting("pg_mooncake.sidecar_path", g.script)
}

func (g *gate) open(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(g.file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (g *gate) close(t *testing.T) {
	t.Helper()
	if err := os.Remove(g.file); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}

// holdSidecar closes the gate, kills the running sidecar and waits until the
// background worker has started the next one (which waits at the gate) and
// the replication slot is free.
func holdSidecar(t *testing.T, c *pgtest.Cluster, g *gate, conn *pgx.Conn, slot string) {
	t.Helper()
	g.close(t)
	old := c.KillSidecar(t)
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var active bool
		err := conn.QueryRow(ctx, "SELECT coalesce((SELECT active FROM pg_replication_slots WHERE slot_name = $1), false)", slot).Scan(&active)
		if err != nil {
			t.Fatal(err)
		}
		waiting := g.waiting(old)
		if waiting && !active {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sidecar waiting at the gate after killing %d (waiting %v, slot %s active %v)", old, waiting, slot, active)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waiting reports whether a process other than old runs the gate's script.
// The background worker knows the pid of that process, but reports only
// what a listening sidecar says of itself.
func (g *gate) waiting(old int) bool {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == old {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue
		}
		for _, arg := range strings.Split(string(cmdline), "\x00") {
			if arg == g.script {
				return true
			}
		}
	}
	return false
}

// mooncakeSlot is the name of the sidecar's replication slot for the
// connection's database.
func mooncakeSlot(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	return queryText(t, conn, "SELECT 'mooncake_' || oid FROM pg_database WHERE datname = current_database()")
}

// waitSlotActive waits until a walsender streams from slot.
func waitSlotActive(ctx context.Context, conn *pgx.Conn, slot string) error {
	for {
		var active bool
		err := conn.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&active)
		if err != nil {
			return err
		}
		if active {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("slot %s never became active: %w", slot, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// waitApplied waits until mirror public.name has applied the source
// transaction whose commit record starts at or after lsn, polling
// mooncake.columnstore_tables every interval. Errors while the sidecar is
// not answering yet are retried; the last one is returned when ctx ends.
func waitApplied(ctx context.Context, conn *pgx.Conn, name, lsn string, interval time.Duration) error {
	var last error
	for {
		var done bool
		err := conn.QueryRow(ctx, `SELECT coalesce(applied_lsn >= $2::pg_lsn, false)
			FROM mooncake.columnstore_tables WHERE schema_name = 'public' AND table_name = $1`, name, lsn).Scan(&done)
		if err == nil && done {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
			}
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// procStatusKB reads fields (such as VmRSS, VmHWM) of /proc/<pid>/status,
// in kB.
func procStatusKB(pid int, fields ...string) (map[string]int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		for _, want := range fields {
			if name == want {
				v, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				if err != nil {
					return nil, fmt.Errorf("/proc/%d/status %s: %w", pid, name, err)
				}
				out[name] = v
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, want := range fields {
		if _, ok := out[want]; !ok {
			return nil, fmt.Errorf("/proc/%d/status has no %s", pid, want)
		}
	}
	return out, nil
}

// rssSampler samples a process's resident set size at a fixed interval.
type rssSampler struct {
	pid  int
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	peakKB  int64 // largest VmRSS seen
	samples int   // successful samples
	lost    error // why sampling ended early (the process went away), or nil
}

func startRSSSampler(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			v, err := procStatusKB(pid, "VmRSS")
			s.mu.Lock()
			if err != nil {
				s.lost = err
				s.mu.Unlock()
				return
			}
			s.samples++
			s.peakKB = max(s.peakKB, v["VmRSS"])
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// peak is the largest VmRSS seen so far, in kB.
func (s *rssSampler) peak() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peakKB
}

// finish stops sampling and returns the peak VmRSS in kB, the number of
// samples and why sampling ended early, if it did.
func (s *rssSampler) finish() (peakKB int64, samples int, lost error) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peakKB, s.samples, s.lost
}
