package test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmooncake/mooncake/test/pgtest"
)

// progressRow is one row of mooncake.copy_progress.
type progressRow struct {
	pid       *int32
	command   string
	phase     string
	rows      int64
	estimated *int64
	bytes     int64
}

// watchProgress polls mooncake.copy_progress for the copy into mirror from
// conn until stop is closed, and returns what it saw.
func watchProgress(t *testing.T, conn *pgx.Conn, mirror string, stop <-chan struct{}) []progressRow {
	var seen []progressRow
	for {
		select {
		case <-stop:
			return seen
		case <-time.After(100 * time.Millisecond):
		}
		rows, err := conn.Query(context.Background(), `SELECT pid, command, phase, rows_copied, rows_estimated, bytes_copied
			FROM mooncake.copy_progress WHERE table_name = $1`, mirror)
		if err != nil {
			t.Errorf("copy_progress: %v", err)
			return seen
		}
		for rows.Next() {
			var r progressRow
			if err := rows.Scan(&r.pid, &r.command, &r.phase, &r.rows, &r.estimated, &r.bytes); err != nil {
				t.Errorf("copy_progress: %v", err)
			}
			seen = append(seen, r)
		}
		rows.Close()
	}
}

// runWatched runs sql on a connection that collects its NOTICEs while
// another connection polls copy_progress for mirror.
func runWatched(t *testing.T, c *pgtest.Cluster, watcher *pgx.Conn, mirror, sql string) (notices []string, seen []progressRow, pid uint32) {
	t.Helper()
	cfg, err := pgx.ParseConfig(c.ConnString("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		notices = append(notices, n.Message)
		mu.Unlock()
	}
	caller, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer caller.Close(context.Background())
	pid = caller.PgConn().PID()
	stop := make(chan struct{})
	done := make(chan []progressRow)
	go func() { done <- watchProgress(t, watcher, mirror, stop) }()
	start := time.Now()
	_, err = caller.Exec(context.Background(), sql)
	close(stop)
	seen = <-done
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%s: %.1f s, %d NOTICEs, %d progress rows seen", sql, time.Since(start).Seconds(), len(notices), len(seen))
	for _, n := range notices {
		t.Logf("NOTICE: %s", n)
	}
	return notices, seen, pid
}

// checkProgress checks what copy_progress showed of one copy: the asking
// backend, the command, rows_copied growing towards the estimate.
func checkProgress(t *testing.T, seen []progressRow, pid uint32, command string, total int64) {
	t.Helper()
	var copying []int64
	for _, r := range seen {
		if r.pid == nil || uint32(*r.pid) != pid {
			t.Errorf("copy_progress shows pid %v; want the calling backend %d", r.pid, pid)
			return
		}
		if r.command != command {
			t.Errorf("copy_progress shows command %q; want %q", r.command, command)
		}
		if r.phase == "copying" {
			copying = append(copying, r.rows)
			if r.estimated == nil || *r.estimated < total/2 || *r.estimated > total*2 {
				t.Errorf("rows_estimated %v; want about %d", r.estimated, total)
			}
			if r.rows > 0 && r.bytes < r.rows {
				t.Errorf("bytes_copied %d for %d rows", r.bytes, r.rows)
			}
		}
	}
	grew := 0
	for i := 1; i < len(copying); i++ {
		if copying[i] < copying[i-1] {
			t.Errorf("rows_copied went back: %v", copying)
		}
		if copying[i] > copying[i-1] {
			grew++
		}
	}
	if grew < 2 {
		t.Errorf("rows_copied seen while copying: %v; want it seen growing", copying)
	}
}

// checkNotices checks the NOTICEs of a long copy: some, not a flood, each
// naming the copy.
func checkNotices(t *testing.T, notices []string, source string) {
	t.Helper()
	copied := 0
	for _, n := range notices {
		if !strings.Contains(n, source) {
			t.Errorf("NOTICE %q does not name the source", n)
		}
		if strings.Contains(n, "copied") {
			copied++
		}
	}
	if copied == 0 {
		t.Errorf("no progress NOTICE: %q", notices)
	}
	if len(notices) > 20 {
		t.Errorf("%d NOTICEs: too many", len(notices))
	}
}

// TestCopyProgress: create_table's initial copy and resync_table's copy of
// a 2,000,000-row table show in mooncake.copy_progress, polled from another
// connection, with rows_copied growing towards the estimate, and as
// NOTICEs at a bounded rate on the calling connection; a small
// create_table prints none.
func TestCopyProgress(t *testing.T) {
	const total = 2000000
	c, conn := startMooncake(t)
	exec(t, conn, `CREATE TABLE big (id bigint PRIMARY KEY, v text, n int)`)
	exec(t, conn, `INSERT INTO big SELECT g, md5(g::text), g % 1000 FROM generate_series(1, $1::int) g`, total)
	exec(t, conn, `CREATE TABLE small (id int PRIMARY KEY)`)
	exec(t, conn, `INSERT INTO small VALUES (1), (2)`)

	notices, _, _ := runWatched(t, c, conn, "small_m", `CALL mooncake.create_table('small_m', 'small')`)
	if len(notices) != 0 {
		t.Errorf("a small create_table printed NOTICEs: %q", notices)
	}

	began := time.Now()
	notices, seen, pid := runWatched(t, c, conn, "big_m", `CALL mooncake.create_table('big_m', 'big')`)
	took := time.Since(began)
	checkProgress(t, seen, pid, "create_table", total)
	checkNotices(t, notices, "public.big")
	if n := queryInt(t, conn, `SELECT count(*) FROM mooncake.copy_progress`); n != 0 {
		t.Errorf("copy_progress lists %d copies after create_table returned", n)
	}
	if n := queryInt(t, conn, `SELECT count(*) FROM big_m`); n != total {
		t.Fatalf("big_m has %d rows; want %d", n, total)
	}

	notices, seen, pid = runWatched(t, c, conn, "big_m", `CALL mooncake.resync_table('big_m')`)
	checkProgress(t, seen, pid, "resync_table", total)
	checkNotices(t, notices, "big")
	if n := queryInt(t, conn, `SELECT count(*) FROM mooncake.copy_progress`); n != 0 {
		t.Errorf("copy_progress lists %d copies after resync_table returned", n)
	}
	if n := queryInt(t, conn, `SELECT count(*) FROM big_m`); n != total {
		t.Errorf("big_m has %d rows after resync_table; want %d", n, total)
	}

	// A cancelled create_table (statement_timeout while the copy reports
	// its progress: a quarter of the time the copy took above) stops at
	// once and leaves nothing.
	canceller := c.Conn(t, "postgres")
	exec(t, canceller, fmt.Sprintf(`SET statement_timeout = '%dms'`, max(20, took.Milliseconds()/4)))
	start := time.Now()
	_, err := canceller.Exec(context.Background(), `CALL mooncake.create_table('big_c', 'big')`)
	if sqlState(err) != "57014" || time.Since(start) > 3*time.Second {
		t.Errorf("create_table under statement_timeout: %v after %s; want 57014 at once", err, time.Since(start))
	}
	if _, ok := waitFor(10*time.Second, func() bool {
		return queryInt(t, conn, `SELECT count(*) FROM mooncake.copy_progress`) == 0 &&
			queryInt(t, conn, `SELECT count(*) FROM mooncake.columnstore_tables WHERE table_name = 'big_c'`) == 0
	}); !ok {
		t.Errorf("a cancelled create_table left its copy or mirror behind")
	}

	// A schema change the mirror cannot follow in place copies the source
	// again online, with no backend waiting: the view shows it too.
	exec(t, conn, `ALTER TABLE big ADD COLUMN d int DEFAULT 5`)
	var phase string
	if _, ok := waitFor(10*time.Second, func() bool {
		err := conn.QueryRow(context.Background(), `SELECT phase FROM mooncake.copy_progress
			WHERE table_name = 'big_m' AND command = 'resync' AND pid IS NULL AND source = 'public.big'`).Scan(&phase)
		return err == nil
	}); !ok {
		t.Errorf("copy_progress never showed the copy a schema change started")
	}
	if _, ok := waitFor(30*time.Second, func() bool {
		return queryInt(t, conn, `SELECT count(*) FROM mooncake.copy_progress`) == 0 &&
			queryInt(t, conn, `SELECT count(*) FROM big_m WHERE d = 5`) == total
	}); !ok {
		t.Errorf("the copy a schema change started never finished")
	}
}

// TestOrphanSlots: list_orphan_slots() shows the slots of this database
// named like pg_mooncake's that the sidecar does not use, not the live
// slot of its mirrors, temporary slots nor other databases' slots;
// drop_orphan_slots() drops the inactive ones and never an active one;
// both are for superusers only.
func TestOrphanSlots(t *testing.T) {
	c, conn := startMooncake(t)
	exec(t, conn, `CREATE TABLE src (id int PRIMARY KEY, v text)`)
	exec(t, conn, `CALL mooncake.create_table('src_m', 'src')`)
	live := "mooncake_" + c.MustQueryString(t, `SELECT oid FROM pg_database WHERE datname = 'postgres'`)
	if n := queryInt(t, conn, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, live); n != 1 {
		t.Fatalf("the mirrors' slot %s is missing", live)
	}

	// Strays: one named like another database's slot, one like a copy's,
	// one a replication connection streams from (active), and a temporary
	// one held by another session (never an orphan: it goes with it).
	exec(t, conn, `SELECT pg_create_logical_replication_slot('mooncake_4000000000', 'pgoutput')`)
	exec(t, conn, `SELECT pg_create_logical_replication_slot('mooncake_sync_1_stray', 'pgoutput')`)
	exec(t, conn, `SELECT pg_create_logical_replication_slot('mooncake_sync_2_active', 'pgoutput')`)
	exec(t, conn, `SELECT pg_create_logical_replication_slot('not_ours', 'pgoutput')`)
	holder := c.Conn(t, "postgres")
	exec(t, holder, `SELECT pg_create_logical_replication_slot('mooncake_sync_3_temporary', 'pgoutput', true)`)
	ctx := context.Background()
	repl, err := pgconn.Connect(ctx, c.ConnString("postgres")+" replication=database")
	if err != nil {
		t.Fatal(err)
	}
	defer repl.Close(ctx)
	if err := pglogrepl.StartReplication(ctx, repl, "mooncake_sync_2_active", 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names 'mooncake_pub'"}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := waitFor(5*time.Second, func() bool {
		return queryInt(t, conn, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'mooncake_sync_2_active' AND active`) == 1
	}); !ok {
		t.Fatal("the streamed slot never became active")
	}
	// Another database's stray is that database's business.
	exec(t, conn, `CREATE DATABASE other`)
	otherConn := c.Conn(t, "other")
	exec(t, otherConn, `SELECT pg_create_logical_replication_slot('mooncake_4000000001', 'pgoutput')`)

	listed := func() string {
		var s string
		if err := conn.QueryRow(context.Background(),
			`SELECT coalesce(string_agg(slot_name || ':' || (active_pid IS NOT NULL), ',' ORDER BY slot_name), '')
			   FROM mooncake.list_orphan_slots()`).Scan(&s); err != nil {
			t.Fatalf("list_orphan_slots: %v", err)
		}
		return s
	}
	if got, want := listed(), "mooncake_4000000000:false,mooncake_sync_1_stray:false,mooncake_sync_2_active:true"; got != want {
		t.Errorf("list_orphan_slots: %s; want %s", got, want)
	}

	var dropped string
	if err := conn.QueryRow(context.Background(),
		`SELECT coalesce(string_agg(slot_name, ',' ORDER BY slot_name), '') FROM mooncake.drop_orphan_slots()`).Scan(&dropped); err != nil {
		t.Fatalf("drop_orphan_slots: %v", err)
	}
	if want := "mooncake_4000000000,mooncake_sync_1_stray"; dropped != want {
		t.Errorf("drop_orphan_slots dropped %s; want %s", dropped, want)
	}
	if got, want := listed(), "mooncake_sync_2_active:true"; got != want {
		t.Errorf("list_orphan_slots after drop_orphan_slots: %s; want %s", got, want)
	}
	for _, s := range []string{live, "not_ours", "mooncake_sync_2_active", "mooncake_sync_3_temporary", "mooncake_4000000001"} {
		if n := queryInt(t, conn, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, s); n != 1 {
			t.Errorf("slot %s was dropped", s)
		}
	}
	// The mirror still follows its source.
	exec(t, conn, `INSERT INTO src SELECT g, 'v' || g FROM generate_series(1, 100) g`)
	waitConverged(t, conn, "src", "src_m", 10*time.Second)

	// Superusers only.
	exec(t, conn, `CREATE ROLE alice LOGIN`)
	exec(t, conn, `GRANT USAGE ON SCHEMA mooncake TO alice`)
	exec(t, conn, `GRANT EXECUTE ON FUNCTION mooncake.list_orphan_slots() TO alice`)
	exec(t, conn, `SET ROLE alice`)
	for _, f := range []string{"list_orphan_slots", "drop_orphan_slots"} {
		_, err := conn.Exec(context.Background(), `SELECT * FROM mooncake.`+f+`()`)
		if sqlState(err) != "42501" {
			t.Errorf("%s as a non-superuser: %v; want 42501", f, err)
		}
	}
	exec(t, conn, `RESET ROLE`)
	repl.Close(ctx)
	exec(t, holder, `SELECT pg_drop_replication_slot('mooncake_sync_3_temporary')`)
	exec(t, otherConn, `SELECT pg_drop_replication_slot('mooncake_4000000001')`)
	exec(t, conn, `SELECT pg_drop_replication_slot('not_ours')`)
}

// TestSimplifiedEdition: with pg_mooncake.enable_bgworker = off and
// wal_level = replica, CREATE EXTENSION works, columnstore tables and the
// data lake functions work, and create_table is refused with 55000 and a
// hint, before it changes anything.
func TestSimplifiedEdition(t *testing.T) {
	c, conn := startMooncake(t,
		pgtest.WithSetting("wal_level", "replica"),
		pgtest.WithSetting("pg_mooncake.enable_bgworker", "off"))
	var status string
	if err := conn.QueryRow(context.Background(), `SELECT mooncake.bgworker_status()::text`).Scan(&status); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(status, `"guc_enabled": false`) || !strings.Contains(status, `"socket_listening": true`) {
		t.Errorf("bgworker_status: %s", status)
	}

	// Columnstore tables.
	exec(t, conn, `CREATE TABLE cs (id int, v text) USING columnstore`)
	exec(t, conn, `INSERT INTO cs SELECT g, 'v' || g FROM generate_series(1, 1000) g`)
	exec(t, conn, `UPDATE cs SET v = 'changed' WHERE id <= 10`)
	exec(t, conn, `DELETE FROM cs WHERE id > 900`)
	if n := queryInt(t, conn, `SELECT count(*) FROM cs WHERE v = 'changed'`); n != 10 {
		t.Errorf("%d updated rows; want 10", n)
	}
	if n := queryInt(t, conn, `SELECT sum(id) FROM cs`); n != 900*901/2 {
		t.Errorf("sum(id) %d; want %d", n, 900*901/2)
	}
	if n := queryInt(t, conn, `SELECT rows FROM mooncake.columnstore_tables WHERE table_name = 'cs'`); n != 900 {
		t.Errorf("columnstore_tables: %d rows; want 900", n)
	}

	// The data lake: the columnstore table's own Iceberg table and its
	// Parquet files read as files of the lake, and a CSV file.
	var meta string
	if err := conn.QueryRow(context.Background(), `SELECT metadata_location FROM mooncake.columnstore_tables WHERE table_name = 'cs'`).Scan(&meta); err != nil {
		t.Fatal(err)
	}
	if n := queryInt(t, conn, `SELECT count(*) FROM iceberg_scan('`+meta+`') AS (id int, v text)`); n != 900 {
		t.Errorf("iceberg_scan: %d rows; want 900", n)
	}
	dataGlob := filepath.Join(filepath.Dir(filepath.Dir(meta)), "data", "*.parquet")
	if n := queryInt(t, conn, `SELECT count(*) FROM mooncake.read_parquet('`+dataGlob+`') AS (id int, v text)`); n < 1000 {
		t.Errorf("read_parquet of the data files: %d rows; want the 1000 inserted and more", n)
	}
	csv := filepath.Join(c.DataDir(), "lake.csv")
	exec(t, conn, `COPY (SELECT g AS id, 'x' || g AS name FROM generate_series(1, 50) g) TO '`+csv+`' WITH (FORMAT csv, HEADER)`)
	if n := queryInt(t, conn, `SELECT count(*) FROM mooncake.read_csv('`+csv+`') r WHERE r['name'] LIKE 'x%'`); n != 50 {
		t.Errorf("read_csv: %d rows; want 50", n)
	}

	// No mirrors: refused before anything changes, with a hint.
	exec(t, conn, `CREATE TABLE src (id int PRIMARY KEY, v text)`)
	exec(t, conn, `CREATE TABLE nokey (code text NOT NULL UNIQUE)`)
	for _, call := range []string{
		`CALL mooncake.create_table('src_m', 'src')`,
		`CALL mooncake.create_table('nokey_m', 'nokey', replica_identity_full => true)`,
	} {
		_, err := conn.Exec(context.Background(), call)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "55000" || !strings.Contains(pe.Message, "wal_level = logical") ||
			!strings.Contains(pe.Hint, "wal_level = logical") || !strings.Contains(pe.Hint, "restart") {
			t.Errorf("%s: %v (hint %q); want 55000 naming wal_level = logical, with a hint", call, err, hintOf(err))
		}
	}
	if n := queryInt(t, conn, `SELECT count(*) FROM pg_class WHERE relname IN ('src_m', 'nokey_m')`); n != 0 {
		t.Errorf("a refused create_table left a relation")
	}
	if id := c.MustQueryString(t, `SELECT relreplident FROM pg_class WHERE relname = 'nokey'`); id != "d" {
		t.Errorf("a refused create_table changed the replica identity to %q", id)
	}
	// The sidecar, run without change data capture, refuses mirrors too.
	_, err := conn.Exec(context.Background(), `SELECT mooncake.sidecar_request('{"op":"create_table","database":"postgres",
		"mirror_schema":"public","mirror_name":"src_m","source_schema":"public","source_name":"src"}')`)
	if sqlState(err) != "55000" || !strings.Contains(hintOf(err), "enable_bgworker = on") {
		t.Errorf("create_table request to the sidecar: %v (hint %q); want 55000 with a hint", err, hintOf(err))
	}
	if n := queryInt(t, conn, `SELECT count(*) FROM pg_replication_slots`); n != 0 {
		t.Errorf("%d replication slots in the simplified edition", n)
	}
	if n := queryInt(t, conn, `SELECT count(*) FROM mooncake.list_orphan_slots()`); n != 0 {
		t.Errorf("list_orphan_slots: %d rows", n)
	}
}

func hintOf(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Hint
	}
	return ""
}

// TestMirrorsWithoutCDC: a mirror whose sidecar stops following sources
// (pg_mooncake.enable_bgworker turned off, the manual's first step to
// uninstall) answers no query, rather than stale rows: 55000 with a hint,
// state 'stopped' in columnstore_tables; optimize_table still runs; turned
// back on, the mirror catches up with what the source took meanwhile.
func TestMirrorsWithoutCDC(t *testing.T) {
	c, conn := startMooncake(t)
	ctx := context.Background()
	exec(t, conn, `CREATE TABLE src (id int PRIMARY KEY, v text)`)
	exec(t, conn, `INSERT INTO src SELECT g, 'v' || g FROM generate_series(1, 100) g`)
	exec(t, conn, `CALL mooncake.create_table('src_m', 'src')`)
	if n := queryInt(t, conn, `SELECT count(*) FROM src_m`); n != 100 {
		t.Fatalf("%d rows; want 100", n)
	}
	exec(t, conn, `ALTER SYSTEM SET pg_mooncake.enable_bgworker = off`)
	c.Restart(t, "fast")
	c.WaitSidecar(t)
	conn = c.Conn(t, "postgres")
	exec(t, conn, `INSERT INTO src VALUES (101, 'while off')`)
	for _, q := range []string{`SELECT count(*) FROM src_m`, `SELECT v FROM src_m WHERE id = 101`, `EXPLAIN SELECT * FROM src_m`} {
		_, err := conn.Exec(ctx, q)
		if sqlState(err) != "55000" || !strings.Contains(hintOf(err), "enable_bgworker = on") {
			t.Errorf("%s without change data capture: %v (hint %q); want 55000 with a hint", q, err, hintOf(err))
		}
	}
	var state string
	if err := conn.QueryRow(ctx, `SELECT state FROM mooncake.columnstore_tables WHERE table_name = 'src_m'`).Scan(&state); err != nil || state != "stopped" {
		t.Errorf("columnstore_tables state %q (%v); want stopped", state, err)
	}
	exec(t, conn, `CALL mooncake.optimize_table('src_m')`)

	exec(t, conn, `ALTER SYSTEM RESET pg_mooncake.enable_bgworker`)
	c.Restart(t, "fast")
	c.WaitSidecar(t)
	conn = c.Conn(t, "postgres")
	waitConverged(t, conn, "src", "src_m", 30*time.Second)
	if err := conn.QueryRow(ctx, `SELECT state FROM mooncake.columnstore_tables WHERE table_name = 'src_m'`).Scan(&state); err != nil || state != "ready" {
		t.Errorf("columnstore_tables state %q (%v) once following again; want ready", state, err)
	}
}
