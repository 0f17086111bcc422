package test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmooncake/mooncake/test/pgtest"
	"github.com/pgmooncake/mooncake/test/s3test"
)

// tableDirOf is the directory of the table whose metadata file is loc.
func tableDirOf(loc string) string { return filepath.Dir(filepath.Dir(loc)) }

// csMetadata is the committed metadata file of columnstore table name.
func csMetadata(t *testing.T, conn *pgx.Conn, name string) string {
	t.Helper()
	var loc string
	if err := conn.QueryRow(context.Background(),
		"SELECT metadata_location FROM mooncake.columnstore_tables WHERE table_name = $1", name).Scan(&loc); err != nil {
		t.Fatalf("metadata of %s: %v", name, err)
	}
	return loc
}

// waitGone waits until none of paths exists (the sidecar removes the
// files of a drop in the background, after its commit).
func waitGone(t *testing.T, what string, paths ...string) {
	t.Helper()
	if _, ok := waitFor(20*time.Second, func() bool {
		for _, p := range paths {
			if _, err := os.Stat(p); err == nil {
				return false
			}
		}
		return true
	}); !ok {
		for _, p := range paths {
			if _, err := os.Stat(p); err == nil {
				t.Fatalf("%s: %s is still there", what, p)
			}
		}
	}
}

// statOwner is the uid and gid owning path.
func statOwner(path string) ([2]int, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return [2]int{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return [2]int{}, false
	}
	return [2]int{int(st.Uid), int(st.Gid)}, true
}

func mustExist(t *testing.T, what string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
}

// TestColumnstoreDrop checks that dropping columnstore tables removes
// their files once the drop commits, and only theirs: DROP TABLE (also of
// a table written or created in the same transaction), DROP SCHEMA ...
// CASCADE, DROP OWNED; a drop rolled back (or rolled back to a savepoint)
// keeps the table whole; a table at a location the user gave loses its
// own files only (a file of the user's and another table at the same
// location stay); a drop whose sidecar cannot be reached after the commit
// leaves a row in mooncake.dropped_columnstore, which the sidecar acts on
// when it starts. Mirrors lose their files with mooncake.drop_table and
// DROP FOREIGN TABLE.
func TestColumnstoreDrop(t *testing.T) {
	c, conn := startMooncake(t)
	ctx := context.Background()
	for _, name := range []string{"keep", "d_plain", "d_rollback", "d_savepoint", "d_written"} {
		exec(t, conn, "CREATE TABLE "+name+" (id int, s text) USING columnstore")
		exec(t, conn, "INSERT INTO "+name+" SELECT g, 'v' || g FROM generate_series(1, 100) g")
		exec(t, conn, "DELETE FROM "+name+" WHERE id % 10 = 0")
	}
	dir := func(name string) string { return tableDirOf(csMetadata(t, conn, name)) }
	keep, plain, rolled, sp, written := dir("keep"), dir("d_plain"), dir("d_rollback"), dir("d_savepoint"), dir("d_written")

	exec(t, conn, "DROP TABLE d_plain")
	waitGone(t, "DROP TABLE", plain)

	// rolled back: the table and its files stay
	exec(t, conn, "BEGIN")
	exec(t, conn, "DROP TABLE d_rollback")
	exec(t, conn, "ROLLBACK")
	exec(t, conn, "BEGIN")
	exec(t, conn, "SAVEPOINT s")
	exec(t, conn, "DROP TABLE d_savepoint")
	exec(t, conn, "ROLLBACK TO SAVEPOINT s")
	exec(t, conn, "INSERT INTO d_savepoint VALUES (1000, 'after')")
	exec(t, conn, "COMMIT")
	time.Sleep(time.Second)
	mustExist(t, "a rolled back drop", rolled, sp)
	if n := queryInt(t, conn, "SELECT count(*) FROM d_rollback"); n != 90 {
		t.Fatalf("d_rollback has %d rows after a rolled back drop, want 90", n)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM d_savepoint"); n != 91 {
		t.Fatalf("d_savepoint has %d rows, want 91", n)
	}

	// written, and created, in the transaction that drops them
	exec(t, conn, "BEGIN")
	exec(t, conn, "INSERT INTO d_written VALUES (1, 'x')")
	exec(t, conn, "UPDATE d_written SET s = 'y' WHERE id < 5")
	exec(t, conn, "DROP TABLE d_written")
	exec(t, conn, "COMMIT")
	waitGone(t, "DROP TABLE of a table written in the same transaction", written)
	exec(t, conn, "BEGIN")
	exec(t, conn, "CREATE TABLE d_new (id int) USING columnstore")
	exec(t, conn, "INSERT INTO d_new VALUES (1)")
	newDir := tableDirOf(csMetadata(t, conn, "d_new"))
	exec(t, conn, "DROP TABLE d_new")
	exec(t, conn, "COMMIT")
	waitGone(t, "a table created and dropped in one transaction", newDir)

	// DROP SCHEMA ... CASCADE and DROP OWNED
	exec(t, conn, "CREATE SCHEMA sc")
	exec(t, conn, "CREATE TABLE sc.a (id int) USING columnstore")
	exec(t, conn, "CREATE TABLE sc.b (id int) USING columnstore")
	exec(t, conn, "INSERT INTO sc.a VALUES (1)")
	exec(t, conn, "INSERT INTO sc.b VALUES (2)")
	scA, scB := dir("a"), dir("b")
	exec(t, conn, "CREATE ROLE cs_owner")
	exec(t, conn, "GRANT CREATE ON SCHEMA public TO cs_owner")
	exec(t, conn, "GRANT USAGE ON FOREIGN SERVER mooncake TO cs_owner")
	exec(t, conn, "SET ROLE cs_owner")
	exec(t, conn, "CREATE TABLE owned_cs (id int) USING columnstore")
	exec(t, conn, "INSERT INTO owned_cs VALUES (1)")
	exec(t, conn, "RESET ROLE")
	owned := dir("owned_cs")
	exec(t, conn, "BEGIN")
	exec(t, conn, "DROP SCHEMA sc CASCADE")
	exec(t, conn, "ROLLBACK")
	time.Sleep(time.Second)
	mustExist(t, "a rolled back DROP SCHEMA", scA, scB)
	exec(t, conn, "DROP SCHEMA sc CASCADE")
	exec(t, conn, "DROP OWNED BY cs_owner")
	waitGone(t, "DROP SCHEMA ... CASCADE and DROP OWNED", scA, scB, owned)

	// a location of the user's: the table's own files only
	place := filepath.Join(filepath.Dir(c.DataDir()), "placed")
	if err := os.MkdirAll(place, 0o755); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(place, "notes.txt")
	if err := os.WriteFile(mine, []byte("the user's"), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, ok := statOwner(c.DataDir()); ok { // the server's OS user writes there
		os.Chown(place, st[0], st[1])
		os.Chown(mine, st[0], st[1])
	}
	for _, name := range []string{"placed1", "placed2"} {
		exec(t, conn, "CREATE TABLE "+name+" (id int) USING columnstore WITH (location = '"+place+"')")
		exec(t, conn, "INSERT INTO "+name+" SELECT generate_series(1, 10)")
		exec(t, conn, "UPDATE "+name+" SET id = id + 1 WHERE id < 3")
	}
	p1, p2 := csMetadata(t, conn, "placed1"), csMetadata(t, conn, "placed2")
	exec(t, conn, "DROP TABLE placed1")
	waitGone(t, "DROP TABLE at a location of the user's", p1)
	mustExist(t, "the other table and the user's file", p2, mine)
	if n := queryInt(t, conn, "SELECT count(*) FROM placed2"); n != 10 {
		t.Fatalf("placed2 has %d rows after placed1 was dropped, want 10", n)
	}
	exec(t, conn, "DROP TABLE placed2")
	waitGone(t, "DROP TABLE of the last table at the location", p2, filepath.Join(place, "data"), filepath.Join(place, "metadata"))
	mustExist(t, "the user's file", mine)

	// the sidecar unreachable after the commit: the drop is remembered,
	// and done when the sidecar starts
	exec(t, conn, "CREATE TABLE d_crash (id int) USING columnstore")
	exec(t, conn, "INSERT INTO d_crash VALUES (1)")
	crash := dir("d_crash")
	exec(t, conn, "ALTER SERVER mooncake OPTIONS (ADD host '127.0.0.1', ADD port '1')")
	exec(t, conn, "DROP TABLE d_crash")
	exec(t, conn, "ALTER SERVER mooncake OPTIONS (DROP host, DROP port)")
	time.Sleep(time.Second)
	mustExist(t, "a drop the sidecar was not told of", crash)
	if n := queryInt(t, conn, "SELECT count(*) FROM mooncake.dropped_columnstore"); n != 1 {
		t.Fatalf("%d rows in mooncake.dropped_columnstore, want 1", n)
	}
	c.KillSidecar(t)
	c.WaitSidecar(t)
	waitGone(t, "a drop done when the sidecar starts", crash)
	if _, ok := waitFor(10*time.Second, func() bool {
		return queryInt(t, conn, "SELECT count(*) FROM mooncake.dropped_columnstore") == 0
	}); !ok {
		t.Fatal("mooncake.dropped_columnstore keeps the row of a table whose files are gone")
	}
	mustExist(t, "a table never dropped", keep, rolled, sp)
	if n := queryInt(t, conn, "SELECT count(*) FROM keep"); n != 90 {
		t.Fatalf("keep has %d rows, want 90", n)
	}

	// mirrors
	for _, name := range []string{"src1", "src2"} {
		exec(t, conn, "CREATE TABLE "+name+" (id int PRIMARY KEY, s text)")
		exec(t, conn, "INSERT INTO "+name+" SELECT g, 'v' || g FROM generate_series(1, 100) g")
		exec(t, conn, "CALL mooncake.create_table('"+name+"_m', '"+name+"')")
	}
	var m1, m2 string
	if err := conn.QueryRow(ctx, "SELECT metadata_location FROM mooncake.iceberg_tables WHERE table_name = 'src1_m'").Scan(&m1); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT metadata_location FROM mooncake.iceberg_tables WHERE table_name = 'src2_m'").Scan(&m2); err != nil {
		t.Fatal(err)
	}
	exec(t, conn, "CALL mooncake.drop_table('src1_m')")
	exec(t, conn, "DROP FOREIGN TABLE src2_m")
	waitGone(t, "dropped mirrors", tableDirOf(m1), tableDirOf(m2))
}

// TestColumnstoreDropS3 is TestColumnstoreDrop's main cases with the
// warehouse on moto's S3 server: a dropped table's objects go from the
// bucket (and its local copies), a rolled back drop keeps them, a table
// at a location of its own loses its objects only, and a mirror's go with
// drop_table.
func TestColumnstoreDropS3(t *testing.T) {
	srv := s3test.Start(t)
	srv.Bucket(t, "mooncake-wh")
	c, conn := startMooncake(t, pgtest.WithSetting("pg_mooncake.warehouse", "s3://mooncake-wh/warehouse"))
	exec(t, conn, srv.SecretSQL("mooncake-wh", ""))
	keysUnder := func(loc string) []string {
		rest := strings.TrimPrefix(loc, "s3://mooncake-wh/")
		return objectKeys(t, srv, "mooncake-wh", strings.TrimRight(rest, "/")+"/")
	}
	waitNoKeys := func(what, loc string) {
		t.Helper()
		if _, ok := waitFor(20*time.Second, func() bool { return len(keysUnder(loc)) == 0 }); !ok {
			t.Fatalf("%s: objects left under %s: %v", what, loc, keysUnder(loc))
		}
	}
	for _, name := range []string{"keep", "gone", "rolled"} {
		exec(t, conn, "CREATE TABLE "+name+" (id int, s text) USING columnstore")
		exec(t, conn, "INSERT INTO "+name+" SELECT g, 'v' || g FROM generate_series(1, 100) g")
		exec(t, conn, "DELETE FROM "+name+" WHERE id % 10 = 0")
	}
	exec(t, conn, "CREATE TABLE own1 (id int) USING columnstore WITH (location = 's3://mooncake-wh/own')")
	exec(t, conn, "CREATE TABLE own2 (id int) USING columnstore WITH (location = 's3://mooncake-wh/own')")
	exec(t, conn, "INSERT INTO own1 SELECT generate_series(1, 10)")
	exec(t, conn, "INSERT INTO own2 SELECT generate_series(1, 10)")
	dir := func(name string) string {
		m := csMetadata(t, conn, name)
		return m[:strings.LastIndex(m[:strings.LastIndex(m, "/")], "/")]
	}
	keep, gone, rolled := dir("keep"), dir("gone"), dir("rolled")
	for _, d := range []string{keep, gone, rolled} {
		if len(keysUnder(d)) == 0 {
			t.Fatalf("no objects under %s", d)
		}
	}
	local := filepath.Join(c.DataDir(), "pg_mooncake", "s3_tables", "mooncake-wh", strings.TrimPrefix(gone, "s3://mooncake-wh/"))
	mustExist(t, "the local copies", local)

	exec(t, conn, "DROP TABLE gone")
	waitNoKeys("DROP TABLE", gone)
	waitGone(t, "the local copies of a dropped table", local)
	exec(t, conn, "BEGIN")
	exec(t, conn, "DROP TABLE rolled")
	exec(t, conn, "ROLLBACK")
	time.Sleep(time.Second)
	if len(keysUnder(rolled)) == 0 {
		t.Fatal("a rolled back drop removed the table's objects")
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM rolled"); n != 90 {
		t.Fatalf("rolled has %d rows, want 90", n)
	}
	before := len(keysUnder("s3://mooncake-wh/own"))
	exec(t, conn, "DROP TABLE own1")
	if _, ok := waitFor(20*time.Second, func() bool { return len(keysUnder("s3://mooncake-wh/own")) < before }); !ok {
		t.Fatal("DROP TABLE at a location of its own removed no object")
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM own2"); n != 10 {
		t.Fatalf("own2 has %d rows after own1 was dropped, want 10", n)
	}
	exec(t, conn, "DROP TABLE own2")
	waitNoKeys("DROP TABLE of both tables at a location", "s3://mooncake-wh/own")

	exec(t, conn, "CREATE TABLE src (id int PRIMARY KEY, s text)")
	exec(t, conn, "INSERT INTO src SELECT g, 'v' || g FROM generate_series(1, 100) g")
	exec(t, conn, "CALL mooncake.create_table('src_m', 'src')")
	var m string
	if err := conn.QueryRow(context.Background(), "SELECT metadata_location FROM mooncake.iceberg_tables WHERE table_name = 'src_m'").Scan(&m); err != nil {
		t.Fatal(err)
	}
	mdir := m[:strings.LastIndex(m[:strings.LastIndex(m, "/")], "/")]
	if len(keysUnder(mdir)) == 0 {
		t.Fatalf("no objects of the mirror under %s", mdir)
	}
	exec(t, conn, "CALL mooncake.drop_table('src_m')")
	waitNoKeys("mooncake.drop_table", mdir)
	if len(keysUnder(keep)) == 0 {
		t.Fatal("the objects of a table never dropped are gone")
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM keep"); n != 90 {
		t.Fatalf("keep has %d rows, want 90", n)
	}

	// DROP EXTENSION, and DROP DATABASE, of other databases: their tables'
	// objects go (each table's: a database's prefix may be shared), this
	// database's stay.
	for _, how := range []string{"DROP EXTENSION", "DROP DATABASE"} {
		db := strings.ToLower(strings.ReplaceAll(how, " ", "_"))
		exec(t, conn, "CREATE DATABASE "+db)
		cn := c.Conn(t, db)
		for _, q := range []string{"CREATE EXTENSION pg_mooncake", srv.SecretSQL("mooncake-wh", ""),
			"CREATE TABLE cs (id int, s text) USING columnstore",
			"INSERT INTO cs SELECT g, 'v' || g FROM generate_series(1, 100) g",
			"CREATE TABLE src (id int PRIMARY KEY, s text)",
			"INSERT INTO src SELECT g, 'v' || g FROM generate_series(1, 100) g",
			"CALL mooncake.create_table('src_m', 'src')"} {
			exec(t, cn, q)
		}
		prefix := "s3://mooncake-wh/warehouse/" + db
		if len(keysUnder(prefix)) == 0 {
			t.Fatalf("%s: no objects under %s", how, prefix)
		}
		// past the 2 s the sidecar keeps secrets it read: the drop's
		// removal needs them read before the secrets table goes
		time.Sleep(3 * time.Second)
		if how == "DROP EXTENSION" {
			exec(t, cn, "DROP EXTENSION pg_mooncake CASCADE")
			cn.Close(context.Background())
		} else {
			cn.Close(context.Background())
			exec(t, conn, "DROP DATABASE "+db)
		}
		waitNoKeys(how, prefix)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM keep"); n != 90 || len(keysUnder(keep)) == 0 {
		t.Fatalf("keep has %d rows after the other databases' drops, want 90", n)
	}
}
