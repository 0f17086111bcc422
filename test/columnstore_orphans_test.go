package test

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// tableFiles lists the files under a columnstore table's directory dir
// (its data/ and metadata/ subdirectories), as "data/<name>" and
// "metadata/<name>", sorted.
func tableFiles(t *testing.T, conn *pgx.Conn, dir string) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"data", "metadata"} {
		rows, err := conn.Query(context.Background(), "SELECT f FROM pg_ls_dir($1, true, false) f ORDER BY 1", dir+"/"+sub)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var f string
			if err := rows.Scan(&f); err != nil {
				t.Fatal(err)
			}
			out = append(out, sub+"/"+f)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(out)
	return out
}

// TestColumnstoreOrphanFiles checks that the files of columnstore writes
// that are never committed do not stay: a rolled back transaction (writes
// of every kind, a savepoint, an ALTER TABLE) and a rolled back savepoint
// leave exactly the committed files, a CREATE TABLE rolled back leaves no
// directory, and the files of a transaction cut by an immediate shutdown
// are removed by mooncake.remove_orphan_files (given a grace period of
// zero: with the default hour it keeps them), after which the table reads
// as before.
func TestColumnstoreOrphanFiles(t *testing.T) {
	c, conn := startMooncake(t)
	ctx := context.Background()
	exec(t, conn, "CREATE TABLE t (id int NOT NULL, s text) USING columnstore")
	exec(t, conn, "INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 1000) g")
	exec(t, conn, "DELETE FROM t WHERE id % 10 = 0")
	var loc string
	if err := conn.QueryRow(ctx, "SELECT metadata_location FROM mooncake.columnstore_tables WHERE table_name = 't'").Scan(&loc); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(filepath.Dir(loc))
	files := func(conn *pgx.Conn) []string { return tableFiles(t, conn, dir) }
	same := func(when string, got, want []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			var extra, missing []string
			for _, f := range got {
				if !slices.Contains(want, f) {
					extra = append(extra, f)
				}
			}
			for _, f := range want {
				if !slices.Contains(got, f) {
					missing = append(missing, f)
				}
			}
			t.Fatalf("%s: files left: %v; files missing: %v", when, extra, missing)
		}
	}
	count := func(conn *pgx.Conn) int64 {
		t.Helper()
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	committed := files(conn)
	rows := count(conn)

	// a rolled back transaction: every kind of write
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"INSERT INTO t SELECT g, 'new' FROM generate_series(2000, 2500) g",
		"UPDATE t SET s = s || '!' WHERE id % 3 = 0",
		"DELETE FROM t WHERE id % 7 = 0",
		"ALTER TABLE t ADD COLUMN extra int DEFAULT 5",
		"SAVEPOINT s",
		"INSERT INTO t (id) VALUES (-1)",
		"ROLLBACK TO s",
		"TRUNCATE t",
		"INSERT INTO t (id) VALUES (-2)",
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if len(files(conn)) <= len(committed) {
		t.Fatalf("the transaction wrote no files")
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	same("after a rollback", files(conn), committed)

	// a statement failing in a transaction block
	tx, err = conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO t SELECT g, 'x' FROM generate_series(1, 10) g"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO t (s) VALUES ('no id')"); err == nil {
		t.Fatal("a NULL id was taken")
	}
	tx.Rollback(ctx)
	same("after a failed transaction", files(conn), committed)

	// a rolled back savepoint: the files of the committed writes only
	exec(t, conn, "BEGIN")
	exec(t, conn, "INSERT INTO t VALUES (5000, 'kept')")
	mid := files(conn)
	exec(t, conn, "SAVEPOINT s")
	exec(t, conn, "INSERT INTO t SELECT g, 'gone' FROM generate_series(6000, 6100) g")
	exec(t, conn, "UPDATE t SET s = 'gone too' WHERE id < 50")
	exec(t, conn, "ROLLBACK TO s")
	same("after ROLLBACK TO SAVEPOINT", files(conn), mid)
	exec(t, conn, "COMMIT")
	committed = files(conn)
	rows++
	var removed int64
	if err := conn.QueryRow(ctx, "SELECT mooncake.remove_orphan_files('t', '0')").Scan(&removed); err != nil || removed != 0 {
		t.Fatalf("remove_orphan_files after clean rollbacks removed %d (%v)", removed, err)
	}
	same("after remove_orphan_files", files(conn), committed)
	if n := count(conn); n != rows {
		t.Fatalf("%d rows, want %d", n, rows)
	}

	// CREATE TABLE rolled back: no directory stays
	exec(t, conn, "BEGIN")
	exec(t, conn, "CREATE TABLE gone (id int) USING columnstore")
	exec(t, conn, "INSERT INTO gone VALUES (1)")
	var goneLoc string
	if err := conn.QueryRow(ctx, "SELECT metadata_location FROM mooncake.columnstore_tables WHERE table_name = 'gone'").Scan(&goneLoc); err != nil {
		t.Fatal(err)
	}
	exec(t, conn, "ROLLBACK")
	goneDir := filepath.Dir(filepath.Dir(goneLoc))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT count(*) > 0 FROM pg_ls_dir($1, true, false)", filepath.Dir(goneDir)).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	var left []string
	lrows, err := conn.Query(ctx, "SELECT f FROM pg_ls_dir($1, true, false) f", filepath.Dir(goneDir))
	if err != nil {
		t.Fatal(err)
	}
	for lrows.Next() {
		var f string
		lrows.Scan(&f)
		if strings.HasPrefix(f, filepath.Base(goneDir)) {
			left = append(left, f)
		}
	}
	lrows.Close()
	if len(left) > 0 {
		t.Fatalf("the directory of a table whose CREATE TABLE rolled back stays: %v", left)
	}

	// a transaction cut by an immediate shutdown: its files stay until the sweep
	tx, err = conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"INSERT INTO t SELECT g, 'crash' FROM generate_series(7000, 8000) g",
		"DELETE FROM t WHERE id < 100",
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	c.Restart(t, "immediate")
	c.WaitSidecar(t)
	conn = c.Conn(t, "postgres")
	// and the directory of a load by DuckDB (COPY FROM a file, INSERT ...
	// SELECT) that a killed sidecar left
	leftover := filepath.Join(strings.TrimPrefix(dir, "file://"), "data", "load-0123456789abcdef")
	if err := os.MkdirAll(leftover, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(leftover, "part_0.parquet"), []byte("cut short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if u, err := user.Lookup("postgres"); err == nil {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		os.Chown(leftover, uid, gid)
		os.Chown(filepath.Join(leftover, "part_0.parquet"), uid, gid)
	}
	old := time.Now().Add(-time.Minute)
	os.Chtimes(leftover, old, old)
	if len(files(conn)) <= len(committed) {
		t.Fatalf("the cut transaction left no files to sweep")
	}
	if err := conn.QueryRow(ctx, "SELECT mooncake.remove_orphan_files('t')").Scan(&removed); err != nil || removed != 0 {
		t.Fatalf("remove_orphan_files with the default grace period removed %d (%v)", removed, err)
	}
	if err := conn.QueryRow(ctx, "SELECT mooncake.remove_orphan_files('t', '0 seconds')").Scan(&removed); err != nil || removed == 0 {
		t.Fatalf("remove_orphan_files removed %d (%v)", removed, err)
	}
	same("after the sweep", files(conn), committed)
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Fatalf("the sweep left a load's directory: %v", err)
	}
	if n := count(conn); n != rows {
		t.Fatalf("%d rows after the sweep, want %d", n, rows)
	}
	exec(t, conn, "INSERT INTO t VALUES (9999, 'after')")
	if n := count(conn); n != rows+1 {
		t.Fatalf("%d rows after an insert, want %d", n, rows+1)
	}
	// optimize_table sweeps columnstore tables too (with the default grace period)
	exec(t, conn, "CALL mooncake.optimize_table('t')")
}

// TestColumnstoreOrphanSweep checks the sidecar's periodic removal of the
// files that transactions cut by an immediate shutdown left behind
// (MOONCAKE_ORPHAN_SWEEP_INTERVAL, an hour by default, a second here):
// the files older than the grace period (an hour: the test ages them) go,
// the younger ones stay, the committed files and rows stay, a table whose
// writer holds it is left alone until the writer ends, and the tables read
// as before.
func TestColumnstoreOrphanSweep(t *testing.T) {
	t.Setenv("MOONCAKE_ORPHAN_SWEEP_INTERVAL", "1s")
	c, conn := startMooncake(t)
	ctx := context.Background()
	dirs := map[string]string{}
	committed := map[string][]string{}
	for _, tbl := range []string{"t", "u"} {
		exec(t, conn, "CREATE TABLE "+tbl+" (id int NOT NULL, s text) USING columnstore")
		exec(t, conn, "INSERT INTO "+tbl+" SELECT g, 'row ' || g FROM generate_series(1, 1000) g")
		exec(t, conn, "DELETE FROM "+tbl+" WHERE id % 10 = 0")
		var loc string
		if err := conn.QueryRow(ctx, "SELECT metadata_location FROM mooncake.columnstore_tables WHERE table_name = $1", tbl).Scan(&loc); err != nil {
			t.Fatal(err)
		}
		dirs[tbl] = filepath.Dir(filepath.Dir(loc))
		committed[tbl] = tableFiles(t, conn, dirs[tbl])
	}

	// a transaction writing both tables, cut by an immediate shutdown
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"INSERT INTO t SELECT g, 'crash' FROM generate_series(7000, 8000) g",
		"DELETE FROM t WHERE id < 100",
		"INSERT INTO u SELECT g, 'crash' FROM generate_series(7000, 8000) g",
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	c.Restart(t, "immediate")
	c.WaitSidecar(t)
	conn = c.Conn(t, "postgres")

	// age the cut transaction's data files past the grace period; its
	// metadata files stay young
	orphans := map[string][]string{}
	old := time.Now().Add(-2 * time.Hour)
	for tbl, dir := range dirs {
		for _, f := range tableFiles(t, conn, dir) {
			if slices.Contains(committed[tbl], f) {
				continue
			}
			if strings.HasPrefix(f, "data/") {
				if err := os.Chtimes(filepath.Join(dir, f), old, old); err != nil {
					t.Fatal(err)
				}
				orphans[tbl] = append(orphans[tbl], f)
			}
		}
		if len(orphans[tbl]) == 0 {
			t.Fatalf("the cut transaction left no data file of %s", tbl)
		}
	}

	// a writer of u holds it: the sweeps pass it by
	writer := c.Conn(t, "postgres")
	wtx, err := writer.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wtx.Exec(ctx, "INSERT INTO u VALUES (-1, 'held')"); err != nil {
		t.Fatal(err)
	}

	gone := func(tbl string) bool {
		left := tableFiles(t, conn, dirs[tbl])
		for _, f := range orphans[tbl] {
			if slices.Contains(left, f) {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(90 * time.Second)
	for !gone("t") {
		if time.Now().After(deadline) {
			t.Fatalf("the aged orphans of t stay: %v", tableFiles(t, conn, dirs["t"]))
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // a few more sweeps while u is held
	if gone("u") {
		t.Fatal("the sweep removed files of a table whose writer holds it")
	}
	for tbl, dir := range dirs {
		left := tableFiles(t, conn, dir)
		for _, f := range committed[tbl] {
			if !slices.Contains(left, f) {
				t.Fatalf("the sweep removed %s of %s, a committed file", f, tbl)
			}
		}
		young := 0
		for _, f := range left {
			if !slices.Contains(committed[tbl], f) && !slices.Contains(orphans[tbl], f) {
				young++
			}
		}
		if tbl == "t" && young == 0 {
			t.Fatalf("the sweep removed the young metadata files of the cut transaction too")
		}
	}

	// the writer commits: its files are referenced; u's aged orphans go
	if err := wtx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for !gone("u") {
		if time.Now().After(deadline) {
			t.Fatalf("the aged orphans of u stay after its writer ended: %v", tableFiles(t, conn, dirs["u"]))
		}
		time.Sleep(200 * time.Millisecond)
	}
	for tbl, want := range map[string]int64{"t": 900, "u": 901} {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+tbl).Scan(&n); err != nil || n != want {
			t.Fatalf("%s has %d rows (%v), want %d", tbl, n, err, want)
		}
	}
	var held string
	if err := conn.QueryRow(ctx, "SELECT s FROM u WHERE id = -1").Scan(&held); err != nil || held != "held" {
		t.Fatalf("the writer's row: %q (%v)", held, err)
	}
}
