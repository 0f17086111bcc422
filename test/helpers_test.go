package test

import (
	"errors"
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

// waitConverged waits until mirror holds exactly the rows of source.
func waitConverged(t *testing.T, conn *pgx.Conn, source, mirror string, timeout time.Duration) {
	t.Helper()
	var missing, extra int64
	if _, ok := waitFor(timeout, func() bool {
		missing, extra = differences(t, conn, source, mirror)
		return missing == 0 && extra == 0
	}); !ok {
		t.Fatalf("%s never converged to %s: %d rows missing, %d rows extra", mirror, source, missing, extra)
	}
}

// Shorthands for the harness's query helpers.
var (
	exec     = pgtest.Exec
	queryInt = pgtest.QueryInt
)
