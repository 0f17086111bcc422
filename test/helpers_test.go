package test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmooncake/mooncake/test/pgtest"
)

// startMooncake starts a throwaway cluster with the extension created in
// database postgres and the sidecar listening, and returns a connection.
// Mirrors commit to Iceberg every 2 s rather than 10 s, so that the tests
// go through many flushes (and wait less for them).
func startMooncake(t *testing.T, opts ...pgtest.Option) (*pgtest.Cluster, *pgx.Conn) {
	t.Helper()
	opts = append([]pgtest.Option{pgtest.WithSetting("pg_mooncake.flush_interval", "2s")}, opts...)
	c := pgtest.Start(t, opts...)
	c.CreateExtension(t, "postgres")
	return c, c.Conn(t, "postgres")
}

// sqlState returns the SQLSTATE of a PostgreSQL error, or "".
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// waitFor polls cond until it returns true or the timeout passes; it
// returns how long that took and whether cond became true.
func waitFor(timeout time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > timeout {
			return time.Since(start), false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// differences counts the rows of source not in mirror and of mirror not in
// source, as multisets.
func differences(t *testing.T, conn *pgx.Conn, source, mirror string) (missing, extra int64) {
	t.Helper()
	missing = queryInt(t, conn, "SELECT count(*) FROM (SELECT * FROM "+source+" EXCEPT ALL SELECT * FROM "+mirror+") d")
	extra = queryInt(t, conn, "SELECT count(*) FROM (SELECT * FROM "+mirror+" EXCEPT ALL SELECT * FROM "+source+") d")
	return missing, extra
}

// waitConverged waits until mirror holds exactly the rows of source. A
// read that gave up waiting for the mirrors to reach the session's last
// commit (57014 after mooncake.read_wait_timeout: a sidecar catching up on
// a long backlog) is tried again until timeout.
func waitConverged(t *testing.T, conn *pgx.Conn, source, mirror string, timeout time.Duration) {
	t.Helper()
	var missing, extra int64
	var lastErr error
	count := func(sql string) (int64, error) {
		var n int64
		err := conn.QueryRow(context.Background(), sql).Scan(&n)
		return n, err
	}
	if _, ok := waitFor(timeout, func() bool {
		var err error
		if missing, err = count("SELECT count(*) FROM (SELECT * FROM " + source + " EXCEPT ALL SELECT * FROM " + mirror + ") d"); err == nil {
			extra, err = count("SELECT count(*) FROM (SELECT * FROM " + mirror + " EXCEPT ALL SELECT * FROM " + source + ") d")
		}
		if err != nil {
			if sqlState(err) != "57014" {
				t.Fatalf("comparing %s with %s: %v", mirror, source, err)
			}
			lastErr = err
			return false
		}
		lastErr = nil
		return missing == 0 && extra == 0
	}); !ok {
		t.Fatalf("%s never converged to %s: %d rows missing, %d rows extra (%v)", mirror, source, missing, extra, lastErr)
	}
}

// debugConn opens a connection with client_min_messages = debug1 and
// returns it with a function giving the DEBUG messages received since its
// last call that contain one of marks, each reduced to the first mark it
// contains, with the last such message whole.
func debugConn(t *testing.T, c *pgtest.Cluster, marks ...string) (*pgx.Conn, func() (string, string)) {
	t.Helper()
	cfg, err := pgx.ParseConfig(c.ConnString("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var notices []string
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		notices = append(notices, n.Message)
		mu.Unlock()
	}
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	exec(t, conn, "SET client_min_messages = debug1")
	// last is the last mark seen since the previous call, and its message
	last := func() (mark, msg string) {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range notices {
			for _, m := range marks {
				if strings.Contains(n, m) {
					mark, msg = m, n
				}
			}
		}
		notices = nil
		return mark, msg
	}
	return conn, last
}

// Shorthands for the harness's query helpers.
var (
	exec     = pgtest.Exec
	queryInt = pgtest.QueryInt
)
