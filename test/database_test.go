package test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmooncake/mooncake/test/pgtest"
)

// TestDatabaseStatements runs, on databases with a mirror and a
// columnstore table, the statements PostgreSQL runs only when nobody else
// is connected, as a DBA does (the sidecar is connected to each such
// database):
//
//   - CREATE DATABASE ... TEMPLATE is refused (0A000): the copy would
//     share the original's Iceberg files;
//   - ALTER DATABASE ... RENAME TO works, the mirror follows its source
//     under the new name, and a new database of the old name gets a
//     warehouse directory of its own (dropping its extension leaves the
//     renamed database's files alone);
//   - DROP DATABASE fails as PostgreSQL's does while a user is connected,
//     after which the mirror still follows; once it succeeds the slot and
//     the warehouse directory are gone;
//   - a copy made while the sidecar was not running (no preload) forgets
//     the original's tables when the sidecar opens it: its foreign tables
//     say so, and dropping them, or its extension, leaves the original's
//     tables whole.
func TestDatabaseStatements(t *testing.T) {
	pgtest.RequireExtension(t)
	ctx := context.Background()
	c, conn := startMooncake(t)
	warehouse := filepath.Join(c.DataDir(), "pg_mooncake", "warehouse")
	in := func(db string) *pgx.Conn {
		t.Helper()
		cn := c.Conn(t, db)
		t.Cleanup(func() { cn.Close(ctx) })
		return cn
	}
	exec := func(cn *pgx.Conn, sql string) {
		t.Helper()
		if _, err := cn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	count := func(cn *pgx.Conn, table string) int64 {
		t.Helper()
		return pgtest.QueryInt(t, cn, "SELECT count(*) FROM "+table)
	}
	populate := func(cn *pgx.Conn) {
		t.Helper()
		exec(cn, "CREATE EXTENSION pg_mooncake")
		exec(cn, "CREATE TABLE src (id int PRIMARY KEY, v text)")
		exec(cn, "INSERT INTO src SELECT g, 'v' || g FROM generate_series(1, 200) g")
		exec(cn, "CALL mooncake.create_table('src_m', 'src')")
		exec(cn, "CREATE TABLE cs (a int, b text) USING columnstore")
		exec(cn, "INSERT INTO cs SELECT g, 'b' || g FROM generate_series(1, 50) g")
		waitConverged(t, cn, "src", "src_m", 30*time.Second)
	}

	exec(conn, `CREATE DATABASE "Sales db"`)
	sales := in("Sales db")
	populate(sales)
	dirOf := func(cn *pgx.Conn) string {
		return pgtest.QueryText(t, cn, "SELECT directory FROM mooncake.database_identity")
	}
	salesDir := dirOf(sales)
	if _, err := os.Stat(filepath.Join(warehouse, salesDir)); err != nil {
		t.Fatalf("the warehouse directory %q of the database: %v", salesDir, err)
	}

	// CREATE DATABASE ... TEMPLATE of a database with tables: refused.
	sales.Close(ctx)
	_, err := conn.Exec(ctx, `CREATE DATABASE sales_copy TEMPLATE "Sales db"`)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "0A000" || !strings.Contains(pgErr.Hint, "pg_dump") {
		t.Fatalf("CREATE DATABASE ... TEMPLATE of a database with tables: %v, want 0A000 with the pg_dump hint", err)
	}

	// RENAME: works, and the mirror follows under the new name.
	exec(conn, `ALTER DATABASE "Sales db" RENAME TO sales_renamed`)
	renamed := in("sales_renamed")
	exec(renamed, "INSERT INTO src SELECT g, 'w' || g FROM generate_series(201, 300) g")
	exec(renamed, "UPDATE src SET v = 'u' WHERE id % 10 = 0")
	exec(renamed, "INSERT INTO cs VALUES (51, 'after the rename')")
	waitConverged(t, renamed, "src", "src_m", 30*time.Second)
	if n := count(renamed, "cs"); n != 51 {
		t.Fatalf("columnstore table after the rename: %d rows, want 51", n)
	}
	if d := dirOf(renamed); d != salesDir {
		t.Fatalf("the renamed database's directory: %q, want %q (kept)", d, salesDir)
	}
	// A new database of the old name: a directory of its own.
	exec(conn, `CREATE DATABASE "Sales db"`)
	again := in("Sales db")
	exec(again, "CREATE EXTENSION pg_mooncake")
	exec(again, "CREATE TABLE cs2 (a int) USING columnstore")
	exec(again, "INSERT INTO cs2 VALUES (1)")
	if d := dirOf(again); d == salesDir {
		t.Fatalf("a new database of the old name shares the directory %q", d)
	}
	exec(again, "DROP EXTENSION pg_mooncake CASCADE")
	again.Close(ctx)
	exec(conn, `DROP DATABASE "Sales db"`)
	time.Sleep(2 * time.Second) // the sidecar removes the dropped extension's files
	if n := count(renamed, "src_m"); n != 300 {
		t.Fatalf("the renamed database's mirror after the other's drop: %d rows, want 300", n)
	}
	if n := count(renamed, "cs"); n != 51 {
		t.Fatalf("the renamed database's columnstore table after the other's drop: %d rows, want 51", n)
	}

	// DROP DATABASE while a user is connected: PostgreSQL's error; the
	// mirror follows afterwards.
	_, err = conn.Exec(ctx, "DROP DATABASE sales_renamed")
	if sqlState(err) != "55006" {
		t.Fatalf("DROP DATABASE of a database in use: %v, want 55006", err)
	}
	exec(renamed, "DELETE FROM src WHERE id > 250")
	waitConverged(t, renamed, "src", "src_m", 30*time.Second)
	renamed.Close(ctx)

	// DROP DATABASE: works; the slot and the files go with it.
	var oid uint32
	if err := conn.QueryRow(ctx, "SELECT oid FROM pg_database WHERE datname = 'sales_renamed'").Scan(&oid); err != nil {
		t.Fatal(err)
	}
	exec(conn, "DROP DATABASE sales_renamed")
	if n := pgtest.QueryInt(t, conn, "SELECT count(*) FROM pg_replication_slots WHERE database = 'sales_renamed'"); n != 0 {
		t.Fatalf("%d replication slots of the dropped database remain", n)
	}
	if _, ok := waitFor(10*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(warehouse, salesDir))
		return os.IsNotExist(err)
	}); !ok {
		t.Fatalf("the dropped database's warehouse directory %q remains", salesDir)
	}

	// A copy made while the sidecar was not running.
	exec(conn, "CREATE DATABASE orig")
	orig := in("orig")
	populate(orig)
	orig.Close(ctx)
	auto := filepath.Join(c.DataDir(), "postgresql.auto.conf")
	setPreload := func(off bool) {
		t.Helper()
		b, err := os.ReadFile(auto)
		if err != nil {
			t.Fatal(err)
		}
		var keep []string
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(l, "shared_preload_libraries") {
				keep = append(keep, l)
			}
		}
		if off {
			keep = append(keep, "shared_preload_libraries = ''")
		}
		if err := os.WriteFile(auto, []byte(strings.Join(keep, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	setPreload(true)
	conn.Close(ctx)
	c.Restart(t, "fast")
	conn = c.Conn(t, "postgres")
	exec(conn, "CREATE DATABASE copied TEMPLATE orig")
	setPreload(false)
	conn.Close(ctx)
	c.Restart(t, "fast")
	c.WaitSidecar(t)
	conn = c.Conn(t, "postgres")
	defer conn.Close(ctx)
	orig = in("orig")
	copied := in("copied")
	_, err = copied.Exec(ctx, "SELECT count(*) FROM src_m")
	if sqlState(err) != "42P01" {
		t.Fatalf("the copy's mirror: %v, want 42P01", err)
	}
	_, err = copied.Exec(ctx, "INSERT INTO cs VALUES (99, 'copy')")
	if sqlState(err) != "42704" || !strings.Contains(err.Error(), "no Iceberg table") {
		t.Fatalf("the copy's columnstore table: %v, want 42704", err)
	}
	if d := dirOf(copied); d == dirOf(orig) {
		t.Fatalf("the copy shares the directory %q", d)
	}
	exec(copied, "INSERT INTO src VALUES (1000, 'copy')")
	exec(copied, "DROP TABLE cs")
	exec(copied, "DROP FOREIGN TABLE src_m")
	exec(copied, "DROP EXTENSION pg_mooncake CASCADE")
	exec(orig, "INSERT INTO src VALUES (2000, 'orig')")
	exec(orig, "INSERT INTO cs VALUES (52, 'orig')")
	waitConverged(t, orig, "src", "src_m", 30*time.Second)
	time.Sleep(2 * time.Second)
	if n := count(orig, "src_m"); n != 201 {
		t.Fatalf("the original's mirror: %d rows, want 201", n)
	}
	if n := count(orig, "cs"); n != 51 {
		t.Fatalf("the original's columnstore table: %d rows, want 51", n)
	}
	if n := pgtest.QueryInt(t, orig, "SELECT count(*) FROM mooncake.columnstore_tables WHERE error IS NOT NULL"); n != 0 {
		t.Fatalf("%d of the original's tables report errors", n)
	}
}

// TestDropRemovesLocatedTables drops the extension, then a whole
// database, holding a mirror created with location => and a columnstore
// table created WITH (location = ...), both outside the warehouse
// directory: their files go too, and a file of the user's in the
// columnstore table's location stays.
func TestDropRemovesLocatedTables(t *testing.T) {
	pgtest.RequireExtension(t)
	ctx := context.Background()
	c, conn := startMooncake(t)
	defer conn.Close(ctx)
	elsewhere := filepath.Join(c.DataDir(), "elsewhere")
	files := func(dir string) []string {
		var out []string
		filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
			if err == nil && !e.IsDir() {
				out = append(out, p)
			}
			return nil
		})
		return out
	}
	for _, how := range []string{"DROP EXTENSION", "DROP DATABASE"} {
		t.Run(how, func(t *testing.T) {
			db := strings.ToLower(strings.ReplaceAll(how, " ", "_"))
			if _, err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
				t.Fatal(err)
			}
			mirrors := filepath.Join(elsewhere, db, "mirrors")
			tables := filepath.Join(elsewhere, db, "events")
			cn := c.Conn(t, db)
			for _, q := range []string{
				"CREATE EXTENSION pg_mooncake",
				"CREATE TABLE src (id int PRIMARY KEY, v text)",
				"INSERT INTO src SELECT g, 'v' || g FROM generate_series(1, 100) g",
				"CALL mooncake.create_table('src_m', 'src', location => '" + mirrors + "')",
				"CREATE TABLE events (a int, b text) USING columnstore WITH (location = '" + tables + "')",
				"INSERT INTO events SELECT g, 'b' || g FROM generate_series(1, 100) g",
				"UPDATE events SET b = 'u' WHERE a < 10",
				"INSERT INTO src VALUES (101, 'later')",
			} {
				if _, err := cn.Exec(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			waitConverged(t, cn, "src", "src_m", 30*time.Second)
			mine := filepath.Join(tables, "README.txt")
			if err := os.WriteFile(mine, []byte("the user's"), 0o644); err != nil {
				t.Fatal(err)
			}
			if len(files(mirrors)) == 0 || len(files(tables)) < 3 {
				t.Fatalf("files before the drop: mirrors %v, table %v", files(mirrors), files(tables))
			}
			if how == "DROP EXTENSION" {
				if _, err := cn.Exec(ctx, "DROP EXTENSION pg_mooncake CASCADE"); err != nil {
					t.Fatal(err)
				}
				cn.Close(ctx)
			} else {
				cn.Close(ctx)
				if _, err := conn.Exec(ctx, "DROP DATABASE "+db); err != nil {
					t.Fatal(err)
				}
			}
			var left []string
			if _, ok := waitFor(15*time.Second, func() bool {
				left = append(files(mirrors), files(tables)...)
				return len(left) == 1 && left[0] == mine
			}); !ok {
				t.Fatalf("after %s, these files remain (want only %s): %v", how, mine, left)
			}
		})
	}
}

// TestDatabaseSettingsSpareTheSidecar: timeouts and defaults a DBA gives
// the database and the role for their users (statement_timeout,
// lock_timeout, idle_in_transaction_session_timeout, idle_session_timeout,
// default_transaction_read_only, SERIALIZABLE by default, and
// transaction_timeout where the server has it) do not reach the
// sidecar's own sessions: a copy longer than every timeout, the stream,
// flushes, resync_table and a columnstore table's writes all work, from a
// session that sets its own settings back.
func TestDatabaseSettingsSpareTheSidecar(t *testing.T) {
	pgtest.RequireExtension(t)
	ctx := context.Background()
	c, conn := startMooncake(t)
	exec(t, conn, `CREATE TABLE big (id bigint PRIMARY KEY, v text)`)
	exec(t, conn, `INSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, 1500000) g`)
	exec(t, conn, `CREATE TABLE cs (id int, v text) USING columnstore`)
	settings := []string{"statement_timeout = '150ms'", "lock_timeout = '150ms'",
		"idle_in_transaction_session_timeout = '150ms'", "idle_session_timeout = '1s'",
		"default_transaction_read_only = on", "default_transaction_isolation = 'serializable'"}
	if queryInt(t, conn, "SELECT current_setting('server_version_num')::int") >= 170000 {
		settings = append(settings, "transaction_timeout = '300ms'")
	}
	for _, s := range settings {
		exec(t, conn, "ALTER DATABASE postgres SET "+s)
		exec(t, conn, "ALTER ROLE postgres SET "+s)
	}
	// The sidecar connects again under them.
	c.KillSidecar(t)
	c.WaitSidecar(t)

	user := c.Conn(t, "postgres")
	t.Cleanup(func() { user.Close(ctx) })
	for _, s := range []string{"statement_timeout = 0", "lock_timeout = 0", "idle_in_transaction_session_timeout = 0",
		"idle_session_timeout = 0", "default_transaction_read_only = off", "default_transaction_isolation = 'read committed'"} {
		exec(t, user, "SET "+s)
	}
	if queryInt(t, user, "SELECT current_setting('server_version_num')::int") >= 170000 {
		exec(t, user, "SET transaction_timeout = 0")
	}
	start := time.Now()
	exec(t, user, `CALL mooncake.create_table('big_m', 'big')`)
	t.Logf("create_table of 1,500,000 rows took %v under a 150 ms statement_timeout of the database", time.Since(start).Round(time.Millisecond))
	exec(t, user, `UPDATE big SET v = 'changed' WHERE id % 1000 = 0`)
	exec(t, user, `DELETE FROM big WHERE id % 999 = 0`)
	exec(t, user, `INSERT INTO cs SELECT g, 'r' || g FROM generate_series(1, 1000) g`)
	exec(t, user, `UPDATE cs SET v = 'u' WHERE id % 3 = 0`)
	if n := queryInt(t, user, `SELECT count(*) FROM cs WHERE v = 'u'`); n != 333 {
		t.Fatalf("cs has %d updated rows, want 333", n)
	}
	// Through flushes (every 2 s here).
	time.Sleep(5 * time.Second)
	waitConverged(t, user, "big", "big_m", 60*time.Second)
	if n := queryInt(t, user, `SELECT count(*) FROM mooncake.columnstore_tables WHERE table_name = 'big_m' AND state = 'ready'`); n != 1 {
		t.Fatalf("big_m is not ready: %s", c.LogTail(40))
	}
	exec(t, user, `CALL mooncake.resync_table('big_m')`)
	exec(t, user, `INSERT INTO big SELECT g, 'new' FROM generate_series(2000001, 2000100) g`)
	waitConverged(t, user, "big", "big_m", 60*time.Second)
	if strings.Contains(c.LogTail(400), "statement timeout") {
		t.Fatalf("a sidecar session hit a timeout:\n%s", c.LogTail(100))
	}
}
