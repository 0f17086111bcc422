package test

import (
	"context"
	"os"
	osexec "os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmooncake/mooncake/test/pgtest"
)

// TestSlotLost drops the database's replication slot under the sidecar
// (as a DBA cleaning slots by hand, a failover or an upgrade that keeps no
// slots would), with changes to the source while no slot exists: the
// sidecar makes the slot again and copies every mirror again, so that the
// mirrors converge to their sources instead of silently missing those
// changes. Once with the sidecar running, once with it killed first (it
// then finds the slot gone when it opens the database).
func TestSlotLost(t *testing.T) {
	pgtest.RequireExtension(t)
	ctx := context.Background()
	c, conn := startMooncake(t)
	defer conn.Close(ctx)
	exec(t, conn, "CREATE TABLE src (id int PRIMARY KEY, v text)")
	exec(t, conn, "INSERT INTO src SELECT g, 'v' || g FROM generate_series(1, 1000) g")
	exec(t, conn, "CALL mooncake.create_table('src_m', 'src')")
	exec(t, conn, "CREATE TABLE other (id bigint PRIMARY KEY, n numeric)")
	exec(t, conn, "INSERT INTO other SELECT g, g / 3.0 FROM generate_series(1, 500) g")
	exec(t, conn, "CALL mooncake.create_table('other_m', 'other')")
	waitConverged(t, conn, "src", "src_m", 30*time.Second)
	waitConverged(t, conn, "other", "other_m", 30*time.Second)
	slot := pgtest.QueryText(t, conn, "SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'mooncake\\_%' AND NOT temporary AND database = 'postgres'")

	for round, kill := range []bool{false, true} {
		if kill {
			c.KillSidecar(t)
		}
		// The sidecar reconnects within a second: end its walsender and
		// drop the slot in one go, until the drop wins.
		if _, ok := waitFor(20*time.Second, func() bool {
			_, err := conn.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`, slot)
			if err != nil {
				return false
			}
			_, err = conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", slot)
			return err == nil
		}); !ok {
			t.Fatalf("round %d: could not drop slot %s", round, slot)
		}
		// Changes no slot holds.
		exec(t, conn, "INSERT INTO src SELECT g, 'gap' || g FROM generate_series(2001 + 100 * "+strconv.Itoa(round)+", 2050 + 100 * "+strconv.Itoa(round)+") g")
		exec(t, conn, "UPDATE src SET v = v || ' changed' WHERE id % 7 = "+strconv.Itoa(round))
		exec(t, conn, "DELETE FROM src WHERE id % 11 = "+strconv.Itoa(round))
		exec(t, conn, "UPDATE other SET n = n * 2 WHERE id % 5 = "+strconv.Itoa(round))
		if kill {
			c.WaitSidecar(t)
		}
		waitConverged(t, conn, "src", "src_m", 60*time.Second)
		waitConverged(t, conn, "other", "other_m", 60*time.Second)
		// and the stream follows again
		exec(t, conn, "INSERT INTO src VALUES (9000 + "+strconv.Itoa(round)+", 'after')")
		exec(t, conn, "DELETE FROM other WHERE id = 1 + "+strconv.Itoa(round))
		waitConverged(t, conn, "src", "src_m", 30*time.Second)
		waitConverged(t, conn, "other", "other_m", 30*time.Second)
		if n := pgtest.QueryInt(t, conn, "SELECT count(*) FROM mooncake.columnstore_tables WHERE state <> 'ready'"); n != 0 {
			t.Fatalf("round %d: %d mirrors not ready: %s", round, n, pgtest.QueryText(t, conn, "SELECT string_agg(table_name || ' ' || state || ' ' || coalesce(error, ''), '; ') FROM mooncake.columnstore_tables"))
		}
	}
	if !strings.Contains(c.LogTail(400), "copying the source again: the replication slot was lost") {
		t.Errorf("the server log does not say the mirrors were copied again")
	}
}

// throughTampering mirrors a table src, runs tamper (statements a DBA
// might run on the publication), then inserts, updates and deletes rows
// of the table, named table by then, and waits for the mirror to hold
// them: the changes reached it only if the sidecar repaired what tamper
// did and copied the mirror again.
func throughTampering(t *testing.T, table string, tamper ...string) *pgx.Conn {
	t.Helper()
	return throughTamperingWith(t, nil, table, tamper...)
}

// throughTamperingWith is throughTampering on a cluster with opts.
func throughTamperingWith(t *testing.T, opts []pgtest.Option, table string, tamper ...string) *pgx.Conn {
	t.Helper()
	pgtest.RequireExtension(t)
	_, conn := startMooncake(t, opts...)
	t.Cleanup(func() { conn.Close(context.Background()) })
	exec(t, conn, "CREATE TABLE src (id int PRIMARY KEY, v text)")
	exec(t, conn, "INSERT INTO src SELECT g, 'v' || g FROM generate_series(1, 500) g")
	exec(t, conn, "CALL mooncake.create_table('src_m', 'src')")
	waitConverged(t, conn, "src", "src_m", 30*time.Second)
	for _, q := range tamper {
		exec(t, conn, q)
	}
	exec(t, conn, "INSERT INTO "+table+" SELECT g, 'gap' || g FROM generate_series(501, 600) g")
	exec(t, conn, "UPDATE "+table+" SET v = 'changed' WHERE id % 3 = 0")
	exec(t, conn, "DELETE FROM "+table+" WHERE id % 5 = 0")
	waitConverged(t, conn, table, "src_m", 60*time.Second)
	return conn
}

// TestSourceLeftPublication takes a mirrored table out of the publication
// by hand (ALTER PUBLICATION ... DROP TABLE) and changes it: the sidecar
// puts it back and copies the mirror again, which converges to its source
// and follows on.
func TestSourceLeftPublication(t *testing.T) {
	conn := throughTampering(t, "src_renamed",
		"ALTER TABLE src RENAME TO src_renamed", "ALTER PUBLICATION mooncake_pub DROP TABLE src_renamed")
	exec(t, conn, "INSERT INTO src_renamed VALUES (1000, 'after')")
	waitConverged(t, conn, "src_renamed", "src_m", 30*time.Second)
	if n := pgtest.QueryInt(t, conn, "SELECT count(*) FROM pg_publication_tables WHERE pubname = 'mooncake_pub' AND tablename = 'src_renamed'"); n != 1 {
		t.Fatalf("the source is not in the publication again")
	}
}

// TestPublicationDropped drops the publication mooncake_pub by hand and
// changes the sources: the sidecar makes it again (with a new slot, the
// old one cannot be read past the drop) and copies the mirrors again.
func TestPublicationDropped(t *testing.T) {
	conn := throughTampering(t, "src", "DROP PUBLICATION mooncake_pub")
	exec(t, conn, "INSERT INTO src VALUES (1000, 'after')")
	exec(t, conn, "DELETE FROM src WHERE id = 1")
	waitConverged(t, conn, "src", "src_m", 30*time.Second)
	if n := pgtest.QueryInt(t, conn, "SELECT count(*) FROM mooncake.columnstore_tables WHERE state <> 'ready'"); n != 0 {
		t.Fatalf("%d mirrors not ready", n)
	}
}

// TestPublicationDroppedLocalized is TestPublicationDropped on a server
// whose messages are in German (lc_messages = 'de_DE.UTF-8', as initdb
// sets it on a German system): the stream recognizes the walsender's
// messages by their text, which its sessions ask for in English (C).
// Needs the de_DE.UTF-8 locale (make deps generates it).
func TestPublicationDroppedLocalized(t *testing.T) {
	out, _ := osexec.Command("locale", "-a").Output()
	if !strings.Contains(strings.ToLower(string(out)), "de_de.utf8") {
		if os.Getenv("MOONCAKE_REQUIRE_PG") != "" {
			t.Fatal("the de_DE.UTF-8 locale is missing: run make deps (localedef -i de_DE -f UTF-8 de_DE.UTF-8)")
		}
		t.Skip("no de_DE.UTF-8 locale")
	}
	conn := throughTamperingWith(t, []pgtest.Option{pgtest.WithSetting("lc_messages", "de_DE.UTF-8")},
		"src", "DROP PUBLICATION mooncake_pub")
	// The server does speak German to other sessions.
	var msg string
	if _, err := conn.Exec(context.Background(), "SELECT * FROM no_such_table"); err != nil {
		msg = err.Error()
	}
	if !strings.Contains(msg, "existiert nicht") {
		// PyPI's PostgreSQL 18 is built without translations: the
		// same test, in English.
		t.Logf("this server has no translations of its messages: %q", msg)
	}
	exec(t, conn, "INSERT INTO src VALUES (1000, 'after')")
	waitConverged(t, conn, "src", "src_m", 30*time.Second)
}
