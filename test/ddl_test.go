package test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	osexec "os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmooncake/mooncake/test/pgtest"
)

// TestRandomSchemaChanges runs concurrent single-row DML on several
// sources of mixed types while a random sequence of schema changes
// (ADD COLUMN with no, a constant and a volatile default, DROP and RENAME
// COLUMN, widenings and rewriting type changes, table renames, TRUNCATE)
// and sidecar kills hits them. At every checkpoint each mirror has exactly
// its source's columns (names, types, order) and rows.
// MOONCAKE_DDL_SEED replays a sequence; MOONCAKE_DDL_STEPS sets its length.
func TestRandomSchemaChanges(t *testing.T) {
	c, conn := startMooncake(t)
	ctx := context.Background()
	seed := uint64(20261204)
	if v := os.Getenv("MOONCAKE_DDL_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	steps := 60
	if v := os.Getenv("MOONCAKE_DDL_STEPS"); v != "" {
		steps, _ = strconv.Atoi(v)
	}
	t.Logf("seed %d, %d steps", seed, steps)
	rng := rand.New(rand.NewPCG(seed, 1))

	const nsrc = 3
	names := make([]string, nsrc) // current source names
	for i := range names {
		names[i] = fmt.Sprintf("src%d", i)
		c.MustExec(t, fmt.Sprintf(`CREATE TABLE %s (id bigint PRIMARY KEY, t text, n numeric(10,2), f float8, d date, v varchar(8))`, names[i]))
		c.MustExec(t, fmt.Sprintf(`INSERT INTO %s SELECT g, 't'||g, g*1.5, g/3.0, date '2024-01-01' + g, 'v'||(g%%100) FROM generate_series(1, 200) g`, names[i]))
		c.MustExec(t, fmt.Sprintf(`CALL mooncake.create_table('m%d', '%s')`, i, names[i]))
	}
	var mu sync.Mutex // guards names against the writers
	var stop atomic.Bool
	var nextID atomic.Int64
	nextID.Store(1000)
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wc := c.Conn(t, "postgres")
			r := rand.New(rand.NewPCG(seed, uint64(w+2)))
			for !stop.Load() {
				mu.Lock()
				src := names[r.IntN(nsrc)]
				mu.Unlock()
				var q string
				switch r.IntN(3) {
				case 0:
					q = fmt.Sprintf("INSERT INTO %s (id) VALUES (%d)", src, nextID.Add(1))
				case 1:
					if r.IntN(2) == 0 {
						q = fmt.Sprintf("UPDATE %s SET id = id WHERE id = %d", src, 1+r.IntN(300))
					} else {
						q = fmt.Sprintf("UPDATE %s SET id = %d WHERE id = %d", src, nextID.Add(1), 1+r.IntN(300))
					}
				case 2:
					q = fmt.Sprintf("DELETE FROM %s WHERE id = %d", src, 1+r.IntN(300))
				}
				// Errors are expected while a column or table is renamed
				// under the statement.
				wc.Exec(ctx, q)
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	colSeq := 0
	for step := range steps {
		i := rng.IntN(nsrc)
		mu.Lock()
		src := names[i]
		mu.Unlock()
		cols := columnsOf(t, conn, src)
		var stmt string
		switch op := rng.IntN(12); op {
		case 0:
			colSeq++
			stmt = fmt.Sprintf("ALTER TABLE %s ADD COLUMN a%d int", src, colSeq)
		case 1:
			colSeq++
			stmt = fmt.Sprintf("ALTER TABLE %s ADD COLUMN a%d text DEFAULT 'k%d'", src, colSeq, colSeq)
		case 2:
			colSeq++
			stmt = fmt.Sprintf("ALTER TABLE %s ADD COLUMN a%d float8 DEFAULT random()", src, colSeq)
		case 3:
			if col := pickNonKey(rng, cols); col != "" && len(cols) > 2 {
				stmt = fmt.Sprintf("ALTER TABLE %s DROP COLUMN %q", src, col)
			}
		case 4:
			if col := pickNonKey(rng, cols); col != "" {
				colSeq++
				stmt = fmt.Sprintf("ALTER TABLE %s RENAME COLUMN %q TO %q", src, col, fmt.Sprintf("r%d %s", colSeq, "x"))
			}
		case 5:
			if col := pickNonKey(rng, cols); col != "" {
				stmt = fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %q TYPE text", src, col)
			}
		case 6:
			if col := pickNonKey(rng, cols); col != "" {
				stmt = fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %q TYPE text USING md5(%q::text)", src, col, col)
			}
		case 7:
			newName := fmt.Sprintf("src%d_%d", i, step)
			mu.Lock()
			_, err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s RENAME TO %s", src, newName))
			if err == nil {
				names[i] = newName
			}
			mu.Unlock()
			if err != nil {
				t.Fatalf("rename %s: %v", src, err)
			}
		case 8:
			stmt = fmt.Sprintf("TRUNCATE %s", src)
		case 9:
			if rng.IntN(3) == 0 {
				c.KillSidecar(t)
				c.WaitSidecar(t)
			}
		case 10:
			stmt = fmt.Sprintf("INSERT INTO %s (id) SELECT g FROM generate_series(%d, %d) g", src, nextID.Add(500)-499, nextID.Load())
		case 11:
			// Rows before and after a schema change in one transaction.
			colSeq++
			stmt = fmt.Sprintf("BEGIN; INSERT INTO %[1]s (id) VALUES (%[2]d); ALTER TABLE %[1]s ADD COLUMN a%[4]d int; "+
				"INSERT INTO %[1]s (id, a%[4]d) VALUES (%[3]d, 1); COMMIT", src, nextID.Add(1), nextID.Add(1), colSeq)
		}
		if stmt != "" {
			if _, err := conn.Exec(ctx, stmt); err != nil {
				t.Fatalf("step %d: %s: %v", step, stmt, err)
			}
		}
		if step%8 == 7 || step == steps-1 {
			stop.Store(true)
			wg.Wait()
			mu.Lock()
			for j, s := range names {
				checkMirrorShape(t, conn, s, fmt.Sprintf("m%d", j))
			}
			mu.Unlock()
			stop.Store(false)
			if step != steps-1 {
				// Writers again.
				for w := range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						wc := c.Conn(t, "postgres")
						r := rand.New(rand.NewPCG(seed, uint64(step*10+w)))
						for !stop.Load() {
							mu.Lock()
							src := names[r.IntN(nsrc)]
							mu.Unlock()
							wc.Exec(ctx, fmt.Sprintf("INSERT INTO %s (id) VALUES (%d)", src, nextID.Add(1)))
							wc.Exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE id = %d", src, 1+r.IntN(300)))
							time.Sleep(2 * time.Millisecond)
						}
					}()
				}
			}
		}
	}
	stop.Store(true)
	wg.Wait()

	// Everything flushed to Iceberg.
	if _, ok := waitFor(30*time.Second, func() bool {
		return queryInt(t, conn, `SELECT count(*) FROM mooncake.columnstore_tables WHERE flushed_lsn < applied_lsn OR unflushed_rows > 0`) == 0
	}); !ok {
		t.Fatal("the mirrors were not flushed within 30 s")
	}
	// pyiceberg reads the newest snapshot with the new schema, and the
	// oldest one (the initial copy) with the columns the source had then.
	python := requirePyIceberg(t)
	uri := fmt.Sprintf("postgresql+psycopg2://postgres@127.0.0.1:%d/postgres?options=-csearch_path%%3Dmooncake", c.Port())
	for j := range nsrc {
		out, err := osexec.Command(python, "testdata/snapshot_schemas.py", uri, fmt.Sprintf("public.m%d", j)).Output()
		if err != nil {
			t.Fatalf("snapshot_schemas.py m%d: %v", j, err)
		}
		var got struct {
			Current     []string `json:"current"`
			CurrentRows int64    `json:"current_rows"`
			Oldest      []string `json:"oldest"`
			OldestRows  int64    `json:"oldest_rows"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("snapshot_schemas.py m%d: %v: %s", j, err, out)
		}
		var want []string
		for _, col := range columnsOf(t, conn, fmt.Sprintf("m%d", j)) {
			want = append(want, col[:strings.Index(col, "\x01")])
		}
		if strings.Join(got.Current, ",") != strings.Join(want, ",") {
			t.Errorf("pyiceberg: current schema of m%d = %v; want %v", j, got.Current, want)
		}
		if n := queryInt(t, conn, fmt.Sprintf("SELECT count(*) FROM m%d", j)); got.CurrentRows != n {
			t.Errorf("pyiceberg: m%d has %d rows; want %d", j, got.CurrentRows, n)
		}
		if initial := "id,t,n,f,d,v"; strings.Join(got.Oldest, ",") != initial || got.OldestRows != 200 {
			t.Errorf("pyiceberg: oldest snapshot of m%d reads columns %v, %d rows; want %s, 200 rows", j, got.Oldest, got.OldestRows, initial)
		}
	}
}

// columnsOf lists a table's columns in order, as name, chr(1), type.
func columnsOf(t *testing.T, conn *pgx.Conn, rel string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT attname || chr(1) || format_type(atttypid, atttypmod) FROM pg_attribute
		WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, rel)
	if err != nil {
		t.Fatalf("columns of %s: %v", rel, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("columns of %s: %v", rel, err)
	}
	return out
}

// pickNonKey picks a column of cols ("name type") other than the key id.
func pickNonKey(rng *rand.Rand, cols []string) string {
	var cands []string
	for _, c := range cols {
		if name := c[:strings.Index(c, "\x01")]; name != "id" {
			cands = append(cands, name)
		}
	}
	if len(cands) == 0 {
		return ""
	}
	return cands[rng.IntN(len(cands))]
}

// checkMirrorShape checks that a mirror has its source's columns and rows.
func checkMirrorShape(t *testing.T, conn *pgx.Conn, source, mirror string) {
	t.Helper()
	want := columnsOf(t, conn, source)
	if got := columnsOf(t, conn, mirror); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("columns of %s = %v; want %v (of %s)", mirror, got, want, source)
	}
	waitConverged(t, conn, source, mirror, 30*time.Second)
	var state string
	if err := conn.QueryRow(context.Background(), "SELECT state FROM mooncake.columnstore_tables WHERE table_name = $1", mirror).Scan(&state); err != nil || state != "ready" {
		t.Fatalf("state of %s = %q (%v); want ready", mirror, state, err)
	}
}

// TestBrokenMirrorSurvivesRestart breaks one mirror (its source gains a
// generated column, whose values logical replication does not carry: a
// stored one before PostgreSQL 18, a virtual one on 18),
// then checks that reading it fails at once with its reason, that it stays
// broken after a sidecar kill and a server restart, that the other mirror
// and the slot went on meanwhile, and that resync_table repairs it.
func TestBrokenMirrorSurvivesRestart(t *testing.T) {
	c, conn := startMooncake(t)
	ctx := context.Background()
	exec(t, conn, `CREATE TABLE a (id int PRIMARY KEY, x int)`)
	exec(t, conn, `CREATE TABLE b (id int PRIMARY KEY, x int)`)
	exec(t, conn, `INSERT INTO a SELECT g, g FROM generate_series(1, 100) g`)
	exec(t, conn, `INSERT INTO b SELECT g, g FROM generate_series(1, 100) g`)
	exec(t, conn, `CALL mooncake.create_table('ma', 'a')`)
	exec(t, conn, `CALL mooncake.create_table('mb', 'b')`)

	kind := "STORED"
	if queryInt(t, conn, "SELECT current_setting('server_version_num')::int") >= 180000 {
		kind = "VIRTUAL" // 18 replicates stored generated columns
	}
	exec(t, conn, `ALTER TABLE a ADD COLUMN g int GENERATED ALWAYS AS (x * 2) `+kind)
	state := func(m string) (string, string) {
		var st string
		var reason *string
		if err := conn.QueryRow(ctx, `SELECT state, error FROM mooncake.columnstore_tables WHERE table_name = $1`, m).Scan(&st, &reason); err != nil {
			t.Fatalf("state of %s: %v", m, err)
		}
		if reason == nil {
			return st, ""
		}
		return st, *reason
	}
	if _, ok := waitFor(10*time.Second, func() bool { s, _ := state("ma"); return s == "broken" }); !ok {
		s, r := state("ma")
		t.Fatalf("ma is %s (%s); want broken", s, r)
	}
	_, reason := state("ma")
	if !strings.Contains(reason, `"g"`) {
		t.Errorf("reason = %q; want it to name the generated column", reason)
	}
	checkBroken := func() {
		t.Helper()
		start := time.Now()
		_, err := conn.Exec(ctx, `SELECT count(*) FROM ma`)
		if sqlState(err) != "XX001" || !strings.Contains(err.Error(), "broken") {
			t.Fatalf("read of a broken mirror: %v; want XX001", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("read of a broken mirror took %v; want an error at once", d)
		}
	}
	checkBroken()

	slotLSN := func() string {
		return c.MustQueryString(t, `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name LIKE 'mooncake\_%' AND NOT temporary`)
	}
	before := slotLSN()
	c.KillSidecar(t)
	c.WaitSidecar(t)
	c.Restart(t, "fast")
	conn = c.Conn(t, "postgres")
	c.WaitSidecar(t)
	if s, r := state("ma"); s != "broken" || r != reason {
		t.Fatalf("after restarts ma is %s (%q); want broken (%q)", s, r, reason)
	}
	checkBroken()

	// The other mirror and the slot go on.
	exec(t, conn, `INSERT INTO a SELECT g, g FROM generate_series(101, 200) g`)
	exec(t, conn, `UPDATE b SET x = x + 1`)
	waitConverged(t, conn, "b", "mb", 10*time.Second)
	if _, ok := waitFor(30*time.Second, func() bool { return slotLSN() != before }); !ok {
		t.Fatalf("confirmed_flush_lsn stayed at %s with a broken mirror", before)
	}

	exec(t, conn, `ALTER TABLE a DROP COLUMN g`)
	exec(t, conn, `CALL mooncake.resync_table('ma')`)
	if s, r := state("ma"); s != "ready" {
		t.Fatalf("after resync_table ma is %s (%q); want ready", s, r)
	}
	exec(t, conn, `UPDATE a SET x = -x WHERE id % 2 = 0`)
	waitConverged(t, conn, "a", "ma", 10*time.Second)
}

// TestCopyAgainOnline rewrites a large source under a steady write load:
// its mirror copies the source again while the replication stream goes on,
// so another mirror of the database shows new rows during the copy, and
// the changes made during the copy reach the copied mirror after it.
func TestCopyAgainOnline(t *testing.T) {
	c, conn := startMooncake(t)
	ctx := context.Background()
	createBig(t, conn)
	exec(t, conn, `CALL mooncake.create_table('big_m', 'big')`)
	exec(t, conn, `CALL mooncake.create_table('small_m', 'small')`)
	stopWrites := writeBig(t, c)
	time.Sleep(200 * time.Millisecond)
	exec(t, conn, `ALTER TABLE big ALTER COLUMN x TYPE text USING 'x' || x`)

	// Rows of another source become visible while big_m copies.
	sawCopying := false
	for i := 1; i <= 20; i++ {
		exec(t, conn, `INSERT INTO small VALUES ($1)`, i)
		if n := queryInt(t, conn, `SELECT count(*) FROM small_m WHERE id = `+strconv.Itoa(i)); n != 1 {
			t.Fatalf("small_m does not show row %d right after its commit", i)
		}
		var state string
		if err := conn.QueryRow(ctx, `SELECT state FROM mooncake.columnstore_tables WHERE table_name = 'big_m'`).Scan(&state); err != nil {
			t.Fatal(err)
		}
		if state == "resyncing" {
			sawCopying = true
		} else if sawCopying {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !sawCopying {
		t.Errorf("big_m was never seen copying its source while small_m followed (the copy was too fast to see, or blocked the stream)")
	}
	time.Sleep(500 * time.Millisecond)
	stopWrites()
	waitConverged(t, conn, "big", "big_m", 60*time.Second)
	for _, line := range strings.Split(c.LogTail(400), "\n") {
		if strings.Contains(line, "copied its source again") {
			t.Log(strings.TrimSpace(line)) // rows copied, and changes applied after the copy
		}
	}
	if got := columnsOf(t, conn, "big_m"); !strings.Contains(strings.Join(got, ","), "x\x01text") {
		t.Errorf("big_m columns = %q; want x of type text", got)
	}
}

// TestSchemaChangeSeenByOtherSessions has one session change the source's
// columns and another read the new columns of the mirror right after the
// commit: the second session plans on the new foreign table, and the
// sidecar, not knowing the column yet, waits for the stream to apply the
// change instead of failing.
func TestSchemaChangeSeenByOtherSessions(t *testing.T) {
	c, conn := startMooncake(t)
	ctx := context.Background()
	exec(t, conn, `CREATE TABLE s (id int PRIMARY KEY)`)
	exec(t, conn, `INSERT INTO s SELECT g FROM generate_series(1, 1000) g`)
	exec(t, conn, `CALL mooncake.create_table('s_m', 's')`)
	reader := c.Conn(t, "postgres")
	for i := range 20 {
		col := fmt.Sprintf("c%d", i)
		exec(t, conn, fmt.Sprintf(`ALTER TABLE s ADD COLUMN %s int`, col))
		if _, err := reader.Exec(ctx, fmt.Sprintf(`SELECT count(%s) FROM s_m`, col)); err != nil {
			t.Fatalf("read of column %s just added by another session: %v", col, err)
		}
		exec(t, conn, fmt.Sprintf(`ALTER TABLE s RENAME COLUMN %s TO r%d`, col, i))
		if _, err := reader.Exec(ctx, fmt.Sprintf(`SELECT id, r%d FROM s_m WHERE id < 3`, i)); err != nil {
			t.Fatalf("read of column r%d just renamed by another session: %v", i, err)
		}
	}
}

// TestCreateTableOnline creates a mirror of a large source under a write
// load: while its initial copy runs, the database's other mirrors keep
// following their sources, and the writes made during the copy reach the
// new mirror after it.
func TestCreateTableOnline(t *testing.T) {
	c, conn := startMooncake(t)
	ctx := context.Background()
	createBig(t, conn)
	exec(t, conn, `CALL mooncake.create_table('small_m', 'small')`)
	stopWrites := writeBig(t, c)
	created := make(chan error, 1)
	go func() {
		cc := c.Conn(t, "postgres")
		_, err := cc.Exec(ctx, `CALL mooncake.create_table('big_m', 'big')`)
		created <- err
	}()
	time.Sleep(300 * time.Millisecond) // the copy is under way
	during := 0
	for i := 1; ; i++ {
		exec(t, conn, `INSERT INTO small VALUES ($1)`, i)
		if n := queryInt(t, conn, `SELECT count(*) FROM small_m WHERE id = `+strconv.Itoa(i)); n != 1 {
			t.Fatalf("small_m does not show row %d right after its commit", i)
		}
		select {
		case err := <-created:
			if err != nil {
				t.Fatalf("create_table: %v", err)
			}
		default:
			during++
			time.Sleep(20 * time.Millisecond)
			continue
		}
		break
	}
	if during == 0 {
		t.Errorf("create_table ended before small_m could be read once (the copy was too fast to see the stream go on)")
	}
	t.Logf("small_m followed its source %d times while big_m took its initial copy", during)
	time.Sleep(500 * time.Millisecond)
	stopWrites()
	waitConverged(t, conn, "big", "big_m", 60*time.Second)
	for _, line := range strings.Split(c.LogTail(400), "\n") {
		if strings.Contains(line, "during its initial copy") {
			t.Log(strings.TrimSpace(line))
		}
	}
}

// createBig creates big, a million rows that take seconds to copy, and
// small, an empty table.
func createBig(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	exec(t, conn, `CREATE TABLE big (id bigint PRIMARY KEY, x int, pad text)`)
	exec(t, conn, `INSERT INTO big SELECT g, g, repeat(md5(g::text), 4) FROM generate_series(1, 1000000) g`)
	exec(t, conn, `CREATE TABLE small (id int PRIMARY KEY)`)
}

// writeBig inserts, updates and deletes rows of big from another session
// until the returned function is called.
func writeBig(t *testing.T, c *pgtest.Cluster) (stop func()) {
	t.Helper()
	ctx := context.Background()
	wc := c.Conn(t, "postgres")
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := int64(0); !done.Load(); i++ {
			// Errors while a schema change holds its lock are fine: the
			// rows that commit are what the mirror must show.
			wc.Exec(ctx, `INSERT INTO big (id, x) VALUES ($1, 1)`, 2000000+i)
			wc.Exec(ctx, `UPDATE big SET pad = 'u' WHERE id = $1`, 1+i*7%1000000)
			wc.Exec(ctx, `DELETE FROM big WHERE id = $1`, 2+i*13%1000000)
		}
	}()
	return func() {
		done.Store(true)
		wg.Wait()
	}
}

// TestSchemaChangesInOneTransaction: several ALTER TABLEs of a source in
// one transaction (an explicit block, or statements sent together) reach
// its mirror each in its turn, also column names swapped through a third
// name and copied again afterwards; ALTER TYPE that changes how values of
// a column's type print (an enum value renamed, a composite's attributes)
// copies the source again; inheritance children of a mirrored table are
// refused, as is create_table of a table that has some.
func TestSchemaChangesInOneTransaction(t *testing.T) {
	c, conn := startMooncake(t)
	ctx := context.Background()
	columnsOf := func(rel string) string {
		t.Helper()
		var s string
		if err := conn.QueryRow(ctx, `SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
			FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`, rel).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	same := func(src, mirror string) {
		t.Helper()
		waitConverged(t, conn, src, mirror, 30*time.Second)
		if a, b := columnsOf(src), columnsOf(mirror); a != b {
			t.Fatalf("%s has columns %s; its source %s", mirror, b, a)
		}
	}

	// two ADD COLUMNs sent together (one implicit transaction)
	exec(t, conn, `CREATE TABLE mg (id int PRIMARY KEY, a int)`)
	exec(t, conn, `INSERT INTO mg VALUES (1, 1)`)
	exec(t, conn, `CALL mooncake.create_table('mg_m', 'mg')`)
	if _, err := conn.PgConn().Exec(ctx, `ALTER TABLE mg ADD COLUMN x int; ALTER TABLE mg ADD COLUMN y int`).ReadAll(); err != nil {
		t.Fatal(err)
	}
	exec(t, conn, `INSERT INTO mg VALUES (2, 2, 2, 2)`)
	same("mg", "mg_m")
	// a block: rename, add, drop, rename again
	exec(t, conn, `BEGIN`)
	exec(t, conn, `ALTER TABLE mg RENAME COLUMN a TO a2`)
	exec(t, conn, `ALTER TABLE mg ADD COLUMN z text`)
	exec(t, conn, `ALTER TABLE mg DROP COLUMN x`)
	exec(t, conn, `ALTER TABLE mg RENAME COLUMN y TO x`)
	exec(t, conn, `COMMIT`)
	exec(t, conn, `INSERT INTO mg VALUES (3, 3, 3, 'three')`)
	exec(t, conn, `UPDATE mg SET z = 'one' WHERE id = 1`)
	same("mg", "mg_m")

	// two columns swap names through a third, then a change that copies
	// the source again (the copy's schema swaps the names in Iceberg)
	exec(t, conn, `CREATE TABLE sw (id int PRIMARY KEY, a int, c int)`)
	exec(t, conn, `INSERT INTO sw VALUES (1, 10, 20)`)
	exec(t, conn, `CALL mooncake.create_table('sw_m', 'sw')`)
	exec(t, conn, `BEGIN`)
	exec(t, conn, `ALTER TABLE sw RENAME COLUMN a TO tmp`)
	exec(t, conn, `ALTER TABLE sw RENAME COLUMN c TO a`)
	exec(t, conn, `ALTER TABLE sw RENAME COLUMN tmp TO c`)
	exec(t, conn, `COMMIT`)
	exec(t, conn, `INSERT INTO sw VALUES (2, 30, 40)`)
	same("sw", "sw_m")
	exec(t, conn, `ALTER TABLE sw ADD COLUMN w int`)
	same("sw", "sw_m")
	exec(t, conn, `BEGIN`)
	exec(t, conn, `ALTER TABLE sw RENAME COLUMN a TO tmp`)
	exec(t, conn, `ALTER TABLE sw RENAME COLUMN c TO a`)
	exec(t, conn, `ALTER TABLE sw RENAME COLUMN tmp TO c`)
	exec(t, conn, `ALTER TABLE sw ALTER COLUMN w TYPE text USING w::text || '!'`)
	exec(t, conn, `COMMIT`)
	exec(t, conn, `INSERT INTO sw VALUES (3, 50, 60, 'w')`)
	same("sw", "sw_m")
	exec(t, conn, `CALL mooncake.resync_table('sw_m')`)
	same("sw", "sw_m")

	// create_table and schema changes in one block
	exec(t, conn, `CREATE TABLE t3 (id int PRIMARY KEY, b text, c int)`)
	exec(t, conn, `INSERT INTO t3 VALUES (1, 'b', 1)`)
	exec(t, conn, `BEGIN`)
	exec(t, conn, `CALL mooncake.create_table('t3_m', 't3')`)
	exec(t, conn, `ALTER TABLE t3 DROP COLUMN b`)
	exec(t, conn, `ALTER TABLE t3 ADD COLUMN b2 int`)
	exec(t, conn, `COMMIT`)
	exec(t, conn, `INSERT INTO t3 VALUES (2, 2, 2)`)
	same("t3", "t3_m")

	// the sidecar killed, then more changes: each applied once
	c.KillSidecar(t)
	c.WaitSidecar(t)
	conn = c.Conn(t, "postgres")
	exec(t, conn, `INSERT INTO mg VALUES (4, 4, 4, 'four')`)
	same("mg", "mg_m")
	same("sw", "sw_m")

	// ALTER TYPE of a column's type
	exec(t, conn, `CREATE TYPE c2 AS (x int, y text)`)
	exec(t, conn, `CREATE TYPE e2 AS ENUM ('red', 'green')`)
	exec(t, conn, `CREATE TABLE t7 (id int PRIMARY KEY, c c2, e e2, ea e2[])`)
	exec(t, conn, `INSERT INTO t7 VALUES (1, '(1,abc)', 'red', '{red,green}'), (2, '(2,def)', 'green', '{green}')`)
	exec(t, conn, `CALL mooncake.create_table('t7_m', 't7')`)
	same("t7", "t7_m")
	exec(t, conn, `ALTER TYPE e2 ADD VALUE 'blue'`)
	exec(t, conn, `INSERT INTO t7 VALUES (3, '(3,ghi)', 'blue', '{blue}')`)
	same("t7", "t7_m")
	exec(t, conn, `ALTER TYPE c2 DROP ATTRIBUTE y, ADD ATTRIBUTE w text`)
	same("t7", "t7_m")
	exec(t, conn, `ALTER TYPE e2 RENAME VALUE 'red' TO 'crimson'`)
	exec(t, conn, `ALTER TYPE e2 RENAME VALUE 'green' TO 'red'`)
	same("t7", "t7_m")
	exec(t, conn, `UPDATE t7 SET c = '(9,nine)' WHERE id = 2`)
	same("t7", "t7_m")

	// inheritance
	exec(t, conn, `CREATE TABLE inh (id int PRIMARY KEY, v int)`)
	exec(t, conn, `CALL mooncake.create_table('inh_m', 'inh')`)
	for _, q := range []string{
		`CREATE TABLE inh_c (extra int) INHERITS (inh)`,
		`CREATE TABLE inh2 (id int PRIMARY KEY, v int); ALTER TABLE inh2 INHERIT inh`,
	} {
		if _, err := conn.PgConn().Exec(ctx, q).ReadAll(); sqlState(err) != "0A000" {
			t.Errorf("%s: %v; want 0A000", q, err)
		}
	}
	exec(t, conn, `CREATE TABLE par (id int PRIMARY KEY)`)
	exec(t, conn, `CREATE TABLE kid (extra int) INHERITS (par)`)
	if _, err := conn.Exec(ctx, `CALL mooncake.create_table('par_m', 'par')`); sqlState(err) != "0A000" {
		t.Errorf("create_table of a table with inheritance children: %v; want 0A000", err)
	}
}
