package test

import (
	"context"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgmooncake/mooncake/test/pgtest"
)

// TestDumpRestore takes a database with a columnstore table and a mirror
// through pg_dump --include-foreign-data=mooncake into a new database of
// the same cluster, as a DBA copies a database:
//
//   - the columnstore table comes back as a columnstore table of its own,
//     with its rows, in the new database's warehouse directory;
//   - the mirror's foreign table comes back without the mirror (the dump
//     holds no Iceberg catalog rows): reading it says so (42P01, with the
//     way to create it again), and creating it again works;
//   - the original database's tables and files are untouched, also after
//     the sidecar has looked at the new database and both took writes.
func TestDumpRestore(t *testing.T) {
	pgtest.RequireExtension(t)
	ctx := context.Background()
	c, conn := startMooncake(t)
	mustExec := func(db, sql string) {
		t.Helper()
		cn := conn
		if db != "postgres" {
			cn = c.Conn(t, db)
			defer cn.Close(ctx)
		}
		if _, err := cn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %s: %v", db, sql, err)
		}
	}
	mustExec("postgres", `CREATE TABLE events (id bigint NOT NULL, kind text DEFAULT 'view', amount numeric(10,2), at timestamptz) USING columnstore`)
	mustExec("postgres", `INSERT INTO events SELECT g, CASE WHEN g % 3 = 0 THEN NULL ELSE 'k' || g % 7 END,
		CASE WHEN g = 5 THEN 'NaN' ELSE g / 4.0 END, timestamptz '2024-01-01 00:00+00' + g * interval '1 hour'
		FROM generate_series(1, 5000) g`)
	mustExec("postgres", `CREATE VIEW big_events AS SELECT * FROM events WHERE amount > 100`)
	mustExec("postgres", `CREATE TABLE src (id int PRIMARY KEY, v text)`)
	mustExec("postgres", `INSERT INTO src SELECT g, 'v' || g FROM generate_series(1, 100) g`)
	mustExec("postgres", `CALL mooncake.create_table('src_m', 'src')`)
	waitConverged(t, conn, "src", "src_m", 30*time.Second)
	origLoc := csMetadata(t, conn, "events")

	dump, err := osexec.Command(filepath.Join(c.BinDir(), "pg_dump"), "--include-foreign-data=mooncake",
		"--dbname", c.ConnString("postgres")).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	if strings.Contains(string(dump), "COPY mooncake.iceberg_tables") && strings.Contains(string(dump), origLoc) {
		t.Fatalf("the dump holds the Iceberg catalog's rows (%s)", origLoc)
	}
	mustExec("postgres", "CREATE DATABASE restored")
	psql := osexec.Command(filepath.Join(c.BinDir(), "psql"), "--no-psqlrc", "--quiet", "--dbname", c.ConnString("restored"))
	psql.Stdin = strings.NewReader(string(dump))
	out, err := psql.CombinedOutput()
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, out)
	}
	// The one error: the mirror's rows, which its foreign table does not take.
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "ERROR") && !strings.Contains(l, `foreign table "src_m" does not allow inserts`) {
			t.Errorf("restore: %s", l)
		}
	}

	rc := c.Conn(t, "restored")
	defer rc.Close(ctx)
	// the columnstore table: a table of its own, with the same rows
	var own bool
	var loc string
	if err := rc.QueryRow(ctx, `SELECT source IS NULL, metadata_location FROM mooncake.columnstore_tables WHERE table_name = 'events'`).Scan(&own, &loc); err != nil {
		t.Fatalf("the restored columnstore table: %v", err)
	}
	if !own {
		t.Fatalf("the restored events is not a columnstore table of its own")
	}
	if loc == origLoc || tableDirOf(loc) == tableDirOf(origLoc) {
		t.Fatalf("the restored table uses the original's files: %s", loc)
	}
	want := pgtest.QueryText(t, conn, `SELECT string_agg(e::text, ';' ORDER BY id) FROM events e`)
	if got := pgtest.QueryText(t, rc, `SELECT string_agg(e::text, ';' ORDER BY id) FROM events e`); got != want {
		t.Fatalf("the restored table's rows differ:\n got %.300s\nwant %.300s", got, want)
	}
	if n := pgtest.QueryInt(t, rc, `SELECT count(*) FROM big_events`); n != pgtest.QueryInt(t, conn, `SELECT count(*) FROM big_events`) {
		t.Fatalf("the restored view gives %d rows", n)
	}
	// its writes stay its own
	pgtest.Exec(t, rc, `INSERT INTO events (id) VALUES (-1)`)
	pgtest.Exec(t, rc, `DELETE FROM events WHERE id <= 10`)

	// the mirror: its foreign table, without the mirror
	_, err = rc.Exec(ctx, "SELECT count(*) FROM src_m")
	if code := sqlState(err); code != "42P01" || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("reading the restored mirror's foreign table: %v (SQLSTATE %s); want 42P01", err, code)
	}
	pgtest.Exec(t, rc, "DROP FOREIGN TABLE src_m")
	pgtest.Exec(t, rc, "CALL mooncake.create_table('src_m', 'src')")
	pgtest.Exec(t, rc, "UPDATE src SET v = 'restored' WHERE id = 1")
	waitConverged(t, rc, "src", "src_m", 30*time.Second)

	// the original: untouched, after the sidecar has taken the new
	// database in and both took writes
	time.Sleep(3 * time.Second)
	mustExec("postgres", "UPDATE src SET v = 'original' WHERE id = 2")
	waitConverged(t, conn, "src", "src_m", 30*time.Second)
	if got := pgtest.QueryText(t, conn, `SELECT string_agg(e::text, ';' ORDER BY id) FROM events e`); got != want {
		t.Fatalf("the original table's rows changed:\n got %.300s\nwant %.300s", got, want)
	}
	if loc := csMetadata(t, conn, "events"); loc != origLoc {
		t.Fatalf("the original table's metadata changed: %s, was %s", loc, origLoc)
	}
	if v := pgtest.QueryText(t, conn, "SELECT v FROM src_m WHERE id = 1"); v != "v1" {
		t.Fatalf("the original mirror took the restored database's update: %q", v)
	}
}
