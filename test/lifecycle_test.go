package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgmooncake/mooncake/test/pgtest"
)

// TestMirrorLifecycle covers several mirrors of one source, TRUNCATE (also
// multi-table and CASCADE), drop_table, DROP FOREIGN TABLE and DROP
// EXTENSION ... CASCADE, which must leave no slot or publication behind.
func TestMirrorLifecycle(t *testing.T) {
	_, conn := startMooncake(t)
	exec(t, conn, `CREATE TABLE parent (id int PRIMARY KEY, v text)`)
	exec(t, conn, `CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent(id), n numeric(10,2))`)
	exec(t, conn, `INSERT INTO parent SELECT g, 'p' || g FROM generate_series(1, 1000) g`)
	exec(t, conn, `INSERT INTO child SELECT g, g, g / 3.0 FROM generate_series(1, 1000) g`)
	exec(t, conn, `CALL mooncake.create_table('parent_a', 'parent')`)
	exec(t, conn, `CALL mooncake.create_table('parent_b', 'parent')`)
	exec(t, conn, `CALL mooncake.create_table('child_m', 'child')`)
	// create_table's temporary slot (its consistent copy) goes away with
	// its walsender, which may outlive the call by a moment.
	if n := queryInt(t, conn, `SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'mooncake%' AND NOT temporary`); n != 1 {
		t.Errorf("%d mooncake slots; want 1 shared by all mirrors", n)
	}

	exec(t, conn, `UPDATE parent SET v = v || '!' WHERE id % 10 = 0`)
	for _, m := range []string{"parent_a", "parent_b"} {
		waitConverged(t, conn, "parent", m, 10*time.Second)
	}
	time.Sleep(3 * time.Second) // flushed to Iceberg
	exec(t, conn, `TRUNCATE parent CASCADE`)
	for _, m := range []string{"parent_a", "parent_b"} {
		waitConverged(t, conn, "parent", m, 10*time.Second)
	}
	waitConverged(t, conn, "child", "child_m", 10*time.Second)
	exec(t, conn, `INSERT INTO parent VALUES (1, 'again')`)
	exec(t, conn, `INSERT INTO child VALUES (1, 1, 1.5)`)
	time.Sleep(3 * time.Second)
	exec(t, conn, `TRUNCATE parent, child`)
	exec(t, conn, `INSERT INTO parent VALUES (2, 'after truncate')`)
	for _, m := range []string{"parent_a", "parent_b"} {
		waitConverged(t, conn, "parent", m, 10*time.Second)
	}
	waitConverged(t, conn, "child", "child_m", 10*time.Second)

	// Dropping one mirror leaves the other following the source.
	exec(t, conn, `CALL mooncake.drop_table('parent_a')`)
	exec(t, conn, `INSERT INTO parent VALUES (3, 'b only')`)
	waitConverged(t, conn, "parent", "parent_b", 10*time.Second)
	if n := queryInt(t, conn, `SELECT count(*) FROM mooncake.columnstore_tables`); n != 2 {
		t.Errorf("columnstore_tables lists %d mirrors after drop_table; want 2", n)
	}
	exec(t, conn, `DROP FOREIGN TABLE child_m`)
	if n := queryInt(t, conn, `SELECT count(*) FROM pg_publication_tables WHERE pubname = 'mooncake_pub' AND tablename = 'child'`); n != 0 {
		t.Errorf("child is still published after its only mirror was dropped")
	}

	exec(t, conn, `DROP EXTENSION pg_mooncake CASCADE`)
	if _, ok := waitFor(10*time.Second, func() bool {
		return queryInt(t, conn, `SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'mooncake%'`) == 0 &&
			queryInt(t, conn, `SELECT count(*) FROM pg_publication WHERE pubname = 'mooncake_pub'`) == 0
	}); !ok {
		t.Error("DROP EXTENSION pg_mooncake CASCADE left a replication slot or the publication behind")
	}
}

// TestOptimizeTable compacts a mirror's data and delete files into one
// file, without changing its rows, also across a sidecar restart.
func TestOptimizeTable(t *testing.T) {
	c, conn := startMooncake(t)
	exec(t, conn, `CREATE TABLE src (id int PRIMARY KEY, v text, n numeric(10,2))`)
	exec(t, conn, `CALL mooncake.create_table('src_m', 'src')`)
	for i := 1; i <= 3; i++ {
		exec(t, conn, `INSERT INTO src SELECT g, 'v' || g, g / 7.0 FROM generate_series($1::int * 1000, $1::int * 1000 + 499) g`, i)
		exec(t, conn, `DELETE FROM src WHERE id % 7 = $1`, i)
		exec(t, conn, `UPDATE src SET n = n + 1 WHERE id % 5 = 0`)
		time.Sleep(2500 * time.Millisecond) // one flush each
	}
	if n := queryInt(t, conn, `SELECT data_files FROM mooncake.columnstore_tables WHERE table_name = 'src_m'`); n < 2 {
		t.Fatalf("src_m has %d data files before optimize; want several", n)
	}
	exec(t, conn, `CALL mooncake.optimize_table('src_m')`)
	files := queryInt(t, conn, `SELECT data_files FROM mooncake.columnstore_tables WHERE table_name = 'src_m'`)
	deletes := queryInt(t, conn, `SELECT delete_files FROM mooncake.columnstore_tables WHERE table_name = 'src_m'`)
	if files != 1 || deletes != 0 {
		t.Errorf("after optimize_table: %d data files, %d delete files; want 1 and 0", files, deletes)
	}
	waitConverged(t, conn, "src", "src_m", 10*time.Second)
	exec(t, conn, `UPDATE src SET v = 'after' WHERE id % 3 = 0`)
	time.Sleep(2500 * time.Millisecond)
	c.KillSidecar(t)
	c.WaitSidecar(t)
	waitConverged(t, conn, "src", "src_m", 10*time.Second)
	if _, err := conn.Exec(context.Background(), `CALL mooncake.optimize_table('no_such')`); sqlState(err) != "42P01" {
		t.Errorf("optimize_table of a missing table: %v; want SQLSTATE 42P01", err)
	}
}

// TestSnapshotExpiry compacts a mirror again and again with flushes in
// between, its replaced snapshots expiring after a second
// (MOONCAKE_SNAPSHOT_RETENTION; five minutes by default): every
// optimize_table succeeds (the expiry after a compaction lists again the
// files an earlier expiry removed, which failed it); a REPEATABLE READ
// transaction that outlives the retention reads the same rows to its end
// (the expiry keeps the snapshot it reads; its files were removed under
// it: an IO error); and in the end the table's directory holds exactly the
// files of its current snapshot.
func TestSnapshotExpiry(t *testing.T) {
	t.Setenv("MOONCAKE_SNAPSHOT_RETENTION", "1s")
	c, conn := startMooncake(t)
	exec(t, conn, `CREATE TABLE src (id int PRIMARY KEY, v text)`)
	exec(t, conn, `INSERT INTO src SELECT g, 'v' || g FROM generate_series(1, 2000) g`)
	exec(t, conn, `CALL mooncake.create_table('src_m', 'src')`)
	ctx := context.Background()
	rr := c.Conn(t, "postgres")
	const sums = `SELECT count(*)::text || ' ' || sum(length(v))::text FROM src_m`
	exec(t, rr, `BEGIN ISOLATION LEVEL REPEATABLE READ`)
	var first string
	if err := rr.QueryRow(ctx, sums).Scan(&first); err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 4; round++ {
		if round == 3 {
			var again string
			if err := rr.QueryRow(ctx, sums).Scan(&again); err != nil || again != first {
				t.Fatalf("a REPEATABLE READ transaction read %q (%v) after two compactions; its first read: %q", again, err, first)
			}
			exec(t, rr, `COMMIT`)
		}
		for step := 0; step < 2; step++ {
			exec(t, conn, `UPDATE src SET v = v || 'x' WHERE id % 9 = $1`, round*2+step)
			exec(t, conn, `INSERT INTO src VALUES ($1, 'new')`, 10000+round*10+step)
			exec(t, conn, `DELETE FROM src WHERE id = $1`, round*100+step)
			time.Sleep(2500 * time.Millisecond) // one flush each
		}
		if _, err := conn.Exec(ctx, `CALL mooncake.optimize_table('src_m')`); err != nil {
			t.Fatalf("optimize_table, round %d: %v", round, err)
		}
		waitConverged(t, conn, "src", "src_m", 10*time.Second)
	}
	time.Sleep(1500 * time.Millisecond)
	exec(t, conn, `CALL mooncake.optimize_table('src_m')`)
	files := queryInt(t, conn, `SELECT data_files + delete_files FROM mooncake.columnstore_tables WHERE table_name = 'src_m'`)
	var loc string
	if err := conn.QueryRow(ctx, `SELECT metadata_location FROM mooncake.columnstore_tables WHERE table_name = 'src_m'`).Scan(&loc); err != nil {
		t.Fatal(err)
	}
	onDisk, err := filepath.Glob(filepath.Join(tableDirOf(loc), "data", "*.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	if files != 1 || len(onDisk) != 1 {
		t.Errorf("after the last optimize_table: %d files in the current snapshot, %d on disk (%v); want 1 and 1", files, len(onDisk), onDisk)
	}
	if log := c.LogTail(2000); strings.Contains(log, "compaction failed") {
		t.Errorf("a compaction failed:\n%s", log)
	}
	waitConverged(t, conn, "src", "src_m", 10*time.Second)
}

// TestTieredCompaction follows a mirror's background compactions: a
// mirror taking inserts has its small files merged while its large initial
// copy stays as it is (a row is not rewritten at every compaction), and one
// whose large file gets rows deleted has that file rewritten too, its delete
// files gone; the mirror equals its source all along.
func TestTieredCompaction(t *testing.T) {
	t.Setenv("MOONCAKE_SNAPSHOT_RETENTION", "1s")
	_, conn := startMooncake(t, pgtest.WithSetting("pg_mooncake.flush_interval", "200ms"))
	ctx := context.Background()
	exec(t, conn, `CREATE TABLE src (id int PRIMARY KEY, v text)`)
	exec(t, conn, `INSERT INTO src SELECT g, repeat('v', 20) || g FROM generate_series(1, 200000) g`)
	exec(t, conn, `CALL mooncake.create_table('src_m', 'src')`)
	var loc string
	if err := conn.QueryRow(ctx, `SELECT metadata_location FROM mooncake.columnstore_tables WHERE table_name = 'src_m'`).Scan(&loc); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(tableDirOf(loc), "data")
	initial, err := filepath.Glob(filepath.Join(dataDir, "*.parquet"))
	if err != nil || len(initial) == 0 {
		t.Fatalf("the initial copy's files: %v, %v", initial, err)
	}
	counts := func() (data, deletes int64) {
		if err := conn.QueryRow(ctx, `SELECT data_files, delete_files FROM mooncake.columnstore_tables WHERE table_name = 'src_m'`).Scan(&data, &deletes); err != nil {
			t.Fatal(err)
		}
		return data, deletes
	}
	// Inserts: one small file per flush, merged once there are 16; twice,
	// so that the second compaction's expiry removes the files the first
	// one replaced.
	most, merged := int64(0), false
	for i := range 44 {
		exec(t, conn, `INSERT INTO src SELECT g, 'new' FROM generate_series($1::int, $1::int + 99) g`, 1000000+i*100)
		time.Sleep(300 * time.Millisecond)
		data, _ := counts()
		merged = merged || data < most
		most = max(most, data)
	}
	waitConverged(t, conn, "src", "src_m", 10*time.Second)
	if most < 8 || !merged {
		t.Errorf("data files: at most %d while inserts came, never fewer after; want compactions that merged them", most)
	}
	for _, f := range initial {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("the initial copy's file %s was rewritten by a compaction of small files: %v", filepath.Base(f), err)
		}
	}
	// Updates of the initial copy's rows: delete files naming its file,
	// which the compaction they bring (at 8 delete files) rewrites.
	gone := func() bool {
		for _, f := range initial {
			if _, err := os.Stat(f); err == nil {
				return false
			}
		}
		return true
	}
	for i := 0; !gone(); i++ {
		if i == 40 {
			data, deletes := counts()
			t.Fatalf("after 40 updates of the large file's rows: %d data files, %d delete files, the large file still there", data, deletes)
		}
		exec(t, conn, `UPDATE src SET v = v || 'u' WHERE id % 1000 = $1`, i)
		time.Sleep(400 * time.Millisecond)
	}
	waitConverged(t, conn, "src", "src_m", 10*time.Second)
}

// TestReplicaIdentityOptIn mirrors sources without a primary key: one
// through a named unique index, one with REPLICA IDENTITY FULL and repeated
// rows, where a delete must remove exactly one copy.
func TestReplicaIdentityOptIn(t *testing.T) {
	c, conn := startMooncake(t)
	exec(t, conn, `CREATE TABLE byidx (code text NOT NULL, v int)`)
	exec(t, conn, `CREATE UNIQUE INDEX byidx_code ON byidx (code)`)
	exec(t, conn, `INSERT INTO byidx SELECT 'c' || g, g FROM generate_series(1, 100) g`)
	exec(t, conn, `CALL mooncake.create_table('byidx_m', 'byidx', key_index => 'byidx_code')`)

	exec(t, conn, `CREATE TABLE dup (a int, b text)`)
	exec(t, conn, `INSERT INTO dup SELECT g % 10, CASE WHEN g % 3 = 0 THEN NULL ELSE 'x' END FROM generate_series(1, 200) g`)
	_, err := conn.Exec(context.Background(), `CALL mooncake.create_table('dup_m', 'dup')`)
	if sqlState(err) != "55000" {
		t.Fatalf("create_table of a table without a key: %v; want SQLSTATE 55000", err)
	}
	exec(t, conn, `CALL mooncake.create_table('dup_m', 'dup', replica_identity_full => true)`)

	step := func() {
		exec(t, conn, `UPDATE byidx SET v = v + 1 WHERE v % 3 = 0`)
		exec(t, conn, `UPDATE byidx SET code = code || 'x' WHERE v % 7 = 0`)
		exec(t, conn, `DELETE FROM byidx WHERE v % 11 = 0`)
		exec(t, conn, `DELETE FROM dup WHERE ctid IN (SELECT ctid FROM dup WHERE a = 3 LIMIT 2)`)
		exec(t, conn, `UPDATE dup SET b = 'y' WHERE ctid IN (SELECT ctid FROM dup WHERE b IS NULL LIMIT 3)`)
		exec(t, conn, `INSERT INTO dup VALUES (1, 'x'), (1, 'x'), (NULL, NULL)`)
		// Identical rows inserted and deleted in one transaction, then in
		// the next one: each delete removes exactly one copy.
		exec(t, conn, `BEGIN; INSERT INTO dup VALUES (42, 'z'), (42, 'z'), (42, 'z'); DELETE FROM dup WHERE a = 42 AND ctid IN (SELECT ctid FROM dup WHERE a = 42 LIMIT 2); COMMIT`)
		exec(t, conn, `INSERT INTO dup VALUES (43, 'w'), (43, 'w')`)
		exec(t, conn, `UPDATE dup SET b = 'v' WHERE a = 43`)
		exec(t, conn, `DELETE FROM dup WHERE a IN (42, 43)`)
		// Repeated rows changed twice in one transaction: every copy is
		// deleted and inserted again, twice, in one batch.
		exec(t, conn, `BEGIN`)
		exec(t, conn, `UPDATE dup SET b = b || 'y' WHERE a = 5`)
		exec(t, conn, `UPDATE dup SET b = b || 'z' WHERE a = 5`)
		exec(t, conn, `COMMIT`)
	}
	step()
	waitConverged(t, conn, "byidx", "byidx_m", 10*time.Second)
	waitConverged(t, conn, "dup", "dup_m", 10*time.Second)
	time.Sleep(2500 * time.Millisecond) // flushed: deletes now hit data files
	step()
	waitConverged(t, conn, "byidx", "byidx_m", 10*time.Second)
	waitConverged(t, conn, "dup", "dup_m", 10*time.Second)
	time.Sleep(2500 * time.Millisecond)
	c.KillSidecar(t)
	c.WaitSidecar(t)
	step()
	waitConverged(t, conn, "byidx", "byidx_m", 10*time.Second)
	waitConverged(t, conn, "dup", "dup_m", 10*time.Second)
}

// TestCreateTableUnderLoad creates mirrors while writers insert, update and
// delete the source without pause: the initial copy and the replication
// stream must meet exactly, missing and doubling nothing.
func TestCreateTableUnderLoad(t *testing.T) {
	c, conn := startMooncake(t)
	exec(t, conn, `CREATE TABLE hot (id bigint PRIMARY KEY, n int, v text)`)
	exec(t, conn, `INSERT INTO hot SELECT g, 0, 'v' || g FROM generate_series(1, 50000) g`)

	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	for w := 0; w < 2; w++ {
		wc := c.Conn(t, "postgres")
		go func(w int) {
			next := int64(1000000 * (w + 1))
			for ctx.Err() == nil {
				_, err := wc.Exec(ctx, `INSERT INTO hot SELECT g, 1, 'w' FROM generate_series($1::bigint, $1::bigint + 49) g`, next)
				if err == nil {
					_, err = wc.Exec(ctx, `UPDATE hot SET n = n + 1 WHERE id % 101 = $1 % 101`, next)
				}
				if err == nil {
					_, err = wc.Exec(ctx, `DELETE FROM hot WHERE id = $1 - 25`, next)
				}
				if err != nil && ctx.Err() == nil {
					errs <- err
					return
				}
				next += 50
			}
			errs <- nil
		}(w)
	}
	time.Sleep(300 * time.Millisecond)
	exec(t, conn, `CALL mooncake.create_table('hot_a', 'hot')`)
	time.Sleep(300 * time.Millisecond)
	exec(t, conn, `CALL mooncake.create_table('hot_b', 'hot')`)
	time.Sleep(500 * time.Millisecond)
	cancel()
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("writer: %v", err)
		}
	}
	for _, m := range []string{"hot_a", "hot_b"} {
		waitConverged(t, conn, "hot", m, 30*time.Second)
		if n := queryInt(t, conn, `SELECT count(*) - count(DISTINCT id) FROM `+m); n != 0 {
			t.Errorf("%s has %d duplicate ids", m, n)
		}
	}
}

// TestDropRolledBack drops mirrors' foreign tables in transactions that
// roll back, whole or to a savepoint (DROP FOREIGN TABLE, drop_table, DROP
// TABLE of the source, DROP SCHEMA and DROP EXTENSION with CASCADE): each
// mirror stays and keeps following its source. A drop that commits removes the mirror at
// once; one committed through PREPARE TRANSACTION (the committing backend
// cannot tell the sidecar) soon after.
func TestDropRolledBack(t *testing.T) {
	_, conn := startMooncake(t, pgtest.WithSetting("max_prepared_transactions", "2"))
	exec(t, conn, `CREATE SCHEMA s`)
	exec(t, conn, `CREATE TABLE s.src (id int PRIMARY KEY, v text)`)
	exec(t, conn, `INSERT INTO s.src SELECT g, 'v' || g FROM generate_series(1, 100) g`)
	exec(t, conn, `CALL mooncake.create_table('m', 's.src')`)
	exec(t, conn, `CALL mooncake.create_table('s.m2', 's.src')`)
	next := 101
	follows := func(when string) {
		t.Helper()
		exec(t, conn, fmt.Sprintf(`INSERT INTO s.src VALUES (%d, 'after')`, next))
		next++
		for _, m := range []string{"m", "s.m2"} {
			waitConverged(t, conn, "s.src", m, 10*time.Second)
		}
		if n := queryInt(t, conn, `SELECT count(*) FROM mooncake.columnstore_tables WHERE state = 'ready'`); n != 2 {
			t.Fatalf("%s: %d mirrors ready; want 2", when, n)
		}
	}
	for _, tx := range [][]string{
		{"BEGIN", "DROP FOREIGN TABLE m", "ROLLBACK"},
		{"BEGIN", "CALL mooncake.drop_table('m')", "ROLLBACK"},
		{"BEGIN", "SAVEPOINT a", "DROP FOREIGN TABLE m, s.m2", "ROLLBACK TO a", "COMMIT"},
		{"BEGIN", "DROP TABLE s.src CASCADE", "ROLLBACK"},
		{"BEGIN", "DROP SCHEMA s CASCADE", "ROLLBACK"},
		{"BEGIN", "DROP EXTENSION pg_mooncake CASCADE", "SELECT pg_sleep(2)", "ROLLBACK"},
		{"BEGIN", "DROP FOREIGN TABLE m", "SELECT 1/0"},
	} {
		for _, q := range tx {
			if _, err := conn.Exec(context.Background(), q); err != nil && q != "SELECT 1/0" {
				t.Fatalf("%s: %v", q, err)
			}
		}
		exec(t, conn, "ROLLBACK") // ends the failed transaction; a warning otherwise
		follows(strings.Join(tx, "; "))
	}

	// committed: gone at once, and the source stays published for the other
	exec(t, conn, `DROP FOREIGN TABLE m`)
	if n := queryInt(t, conn, `SELECT count(*) FROM mooncake.columnstore_tables`); n != 1 {
		t.Fatalf("columnstore_tables lists %d mirrors after DROP FOREIGN TABLE; want 1", n)
	}
	exec(t, conn, `INSERT INTO s.src VALUES (1000, 'm2 only')`)
	waitConverged(t, conn, "s.src", "s.m2", 10*time.Second)
	exec(t, conn, `CALL mooncake.create_table('m', 's.src')`) // the name is free again
	waitConverged(t, conn, "s.src", "m", 10*time.Second)

	// committed by COMMIT PREPARED: the sidecar finds the mirror gone
	exec(t, conn, `BEGIN`)
	exec(t, conn, `DROP FOREIGN TABLE s.m2`)
	exec(t, conn, `PREPARE TRANSACTION 'drop_m2'`)
	if n := queryInt(t, conn, `SELECT count(*) FROM mooncake.columnstore_tables`); n != 2 {
		t.Fatalf("columnstore_tables lists %d mirrors while the drop is prepared; want 2", n)
	}
	exec(t, conn, `COMMIT PREPARED 'drop_m2'`)
	if _, ok := waitFor(10*time.Second, func() bool {
		return queryInt(t, conn, `SELECT count(*) FROM mooncake.columnstore_tables`) == 1
	}); !ok {
		t.Fatal("the mirror of a foreign table dropped by COMMIT PREPARED stays")
	}
	follows2 := queryInt(t, conn, `SELECT count(*) FROM s.src`)
	exec(t, conn, `DROP TABLE s.src CASCADE`)
	if n := queryInt(t, conn, `SELECT count(*) FROM mooncake.columnstore_tables`); n != 0 {
		t.Fatalf("columnstore_tables lists %d mirrors after DROP TABLE ... CASCADE of the source (%d rows); want 0", n, follows2)
	}
}
