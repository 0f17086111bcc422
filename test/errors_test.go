package test

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestCreateTableErrors checks that unfit sources are refused with the
// right SQLSTATE and a message naming the problem, and leave nothing behind.
func TestCreateTableErrors(t *testing.T) {
	_, conn := startMooncake(t)
	exec(t, conn, `CREATE TABLE ok_src (id int PRIMARY KEY, v text)`)
	exec(t, conn, `CREATE TABLE taken (x int)`)
	exec(t, conn, `CREATE TABLE no_pk (id int, v text)`)
	exec(t, conn, `CREATE TABLE nothing_ident (id int PRIMARY KEY)`)
	exec(t, conn, `ALTER TABLE nothing_ident REPLICA IDENTITY NOTHING`)
	exec(t, conn, `CREATE VIEW a_view AS SELECT 1 AS x`)

	cases := []struct {
		name, call, state, contains string
	}{
		{"missing source", `CALL mooncake.create_table('m1', 'does_not_exist')`, "42P01", "does_not_exist"},
		{"target taken", `CALL mooncake.create_table('taken', 'ok_src')`, "42P07", "taken"},
		{"no primary key", `CALL mooncake.create_table('m2', 'no_pk')`, "55000", "primary key"},
		{"replica identity nothing", `CALL mooncake.create_table('m4', 'nothing_ident')`, "55000", "REPLICA IDENTITY NOTHING"},
		{"not a table", `CALL mooncake.create_table('m5', 'a_view')`, "42809", "a_view"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := conn.Exec(context.Background(), tc.call)
			if err == nil {
				t.Fatalf("%s succeeded; want SQLSTATE %s", tc.call, tc.state)
			}
			if got := sqlState(err); got != tc.state {
				t.Errorf("%s: SQLSTATE %s (%v); want %s", tc.call, got, err, tc.state)
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("%s: error %q does not mention %s", tc.call, err, tc.contains)
			}
		})
	}
	// Nothing was created by the failed calls, and the good source still works.
	if n := queryInt(t, conn, `SELECT count(*) FROM pg_foreign_table`); n != 0 {
		t.Errorf("failed create_table calls left %d foreign tables", n)
	}
	exec(t, conn, `CALL mooncake.create_table('ok_mirror', 'ok_src')`)
	exec(t, conn, `INSERT INTO ok_src VALUES (1, 'one')`)
	if _, ok := waitFor(time.Second, func() bool { return queryInt(t, conn, `SELECT count(*) FROM ok_mirror`) == 1 }); !ok {
		t.Error("ok_mirror does not show the inserted row")
	}

	// Bad options on the foreign data wrapper's objects.
	_, err := conn.Exec(context.Background(), `CREATE FOREIGN TABLE bad_opt (id int) SERVER mooncake OPTIONS (tabel 'x')`)
	if sqlState(err) != "HV00D" {
		t.Errorf("unknown table option: %v; want SQLSTATE HV00D", err)
	}
	// A foreign table naming no mirror fails clearly.
	exec(t, conn, `CREATE FOREIGN TABLE ghost (id int) SERVER mooncake`)
	_, err = conn.Exec(context.Background(), `SELECT * FROM ghost`)
	if sqlState(err) != "42P01" || !strings.Contains(err.Error(), "ghost") {
		t.Errorf("SELECT from a foreign table without a mirror: %v; want SQLSTATE 42P01 naming it", err)
	}
}

// TestSidecarDown checks that with the sidecar dead a query fails at once
// with a connection error, and works again once the background worker has
// restarted it.
func TestSidecarDown(t *testing.T) {
	c, conn := startMooncake(t)
	exec(t, conn, `CREATE TABLE t (id int PRIMARY KEY, v text)`)
	exec(t, conn, `INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g`)
	exec(t, conn, `CALL mooncake.create_table('t_mirror', 't')`)

	// Stop the worker from restarting it at once: kill it, then query
	// immediately, before the first restart (200 ms) completes.
	old := c.KillSidecar(t)
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	_, err := conn.Exec(context.Background(), `SELECT count(*) FROM t_mirror`)
	took := time.Since(start)
	if err == nil {
		t.Log("the sidecar was already back; the failure path was not exercised this time")
	} else {
		if st := sqlState(err); st != "08006" && st != "08000" && st != "08001" {
			t.Errorf("query with the sidecar down: %v (SQLSTATE %s); want a connection error", err, st)
		}
		if took > time.Second {
			t.Errorf("query with the sidecar down took %v to fail; want at once", took)
		}
	}
	c.WaitSidecar(t)
	if pid := c.SidecarPID(t); pid == old {
		t.Errorf("sidecar pid %d unchanged after kill -9", pid)
	}
	exec(t, conn, `INSERT INTO t VALUES (101, 'after restart')`)
	waitConverged(t, conn, "t", "t_mirror", 10*time.Second)
}

// TestSidecarKilledMidStream kills the sidecar repeatedly while a writer
// inserts, updates and deletes, then restarts PostgreSQL immediately; the
// mirror must converge to exactly its source, without loss or duplicates.
func TestSidecarKilledMidStream(t *testing.T) {
	c, conn := startMooncake(t)
	exec(t, conn, `CREATE TABLE events (id bigint PRIMARY KEY, kind text, amount numeric(10,2), at timestamptz)`)
	exec(t, conn, `INSERT INTO events SELECT g, 'k' || (g % 5), g * 1.5, now() FROM generate_series(1, 5000) g`)
	exec(t, conn, `CALL mooncake.create_table('events_mirror', 'events')`)

	writer := c.Conn(t, "postgres")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		next := int64(5001)
		for ctx.Err() == nil {
			if _, err := writer.Exec(ctx, `INSERT INTO events SELECT g, 'w', g, now() FROM generate_series($1::bigint, $1::bigint + 99) g`, next); err != nil {
				done <- err
				return
			}
			if _, err := writer.Exec(ctx, `UPDATE events SET amount = amount + 1 WHERE id % 97 = $1 % 97`, next); err != nil {
				done <- err
				return
			}
			if _, err := writer.Exec(ctx, `DELETE FROM events WHERE id = $1 - 50`, next); err != nil {
				done <- err
				return
			}
			next += 100
			time.Sleep(10 * time.Millisecond)
		}
		done <- nil
	}()
	for i := 0; i < 5; i++ {
		time.Sleep(700 * time.Millisecond)
		c.KillSidecar(t)
		c.WaitSidecar(t)
	}
	cancel()
	if err := <-done; err != nil && ctx.Err() == nil {
		t.Fatalf("writer: %v", err)
	}
	waitConverged(t, conn, "events", "events_mirror", 60*time.Second)

	c.Restart(t, "immediate")
	c.WaitSidecar(t)
	conn2 := c.Conn(t, "postgres")
	exec(t, conn2, `INSERT INTO events VALUES (99999999, 'after crash', 1, now())`)
	waitConverged(t, conn2, "events", "events_mirror", 60*time.Second)
	if n := queryInt(t, conn2, `SELECT count(*) - count(DISTINCT id) FROM events_mirror`); n != 0 {
		t.Errorf("events_mirror has %d duplicate ids", n)
	}
}
