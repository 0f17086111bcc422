package test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmooncake/mooncake/catalog"
)

// csSeedEnv chooses the random sequence of TestColumnstoreDifferential.
const csSeedEnv = "MOONCAKE_CS_SEED"

// TestColumnstoreDifferential applies one random sequence of writes to a
// heap table and to a columnstore table of the same columns, inside and
// outside transactions, with commits, rollbacks and savepoints, INSERT
// ... VALUES, INSERT ... SELECT, COPY FROM STDIN (binary, as pgx sends
// it), COPY FROM a CSV file (read by DuckDB, or by PostgreSQL for a value
// in a form only it reads), INSERT ... SELECT from the table itself (run
// by DuckDB for the columnstore table), UPDATE and DELETE (of rows in data files of earlier transactions
// and of this one), now and then a NaN in the numeric(10,2) column (stored
// as DECIMAL until the first, text after), TRUNCATE (of both tables in one statement) and a heap table
// written in the same transactions; after every step
// the two hold the same rows (EXCEPT ALL both ways), also seen from a
// second session. Halfway a transaction is cut by an immediate shutdown,
// later the sidecar is killed under one: the committed rows stay, the
// others never appear. At the end mooncake.remove_orphan_files removes
// the files the cut transactions left (the rows stay), and pyiceberg reads
// the columnstore table through the catalog and finds the heap table's rows.
func TestColumnstoreDifferential(t *testing.T) {
	seed := time.Now().UnixNano()
	if v := os.Getenv(csSeedEnv); v != "" {
		seed, _ = strconv.ParseInt(v, 10, 64)
	}
	t.Logf("%s=%d", csSeedEnv, seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	c, conn := startMooncake(t)
	ctx := context.Background()
	const cols = "id bigint NOT NULL, k int, s text, n numeric(10,2), at timestamptz, ok boolean"
	exec(t, conn, "CREATE TABLE h ("+cols+")")
	exec(t, conn, "CREATE TABLE cs ("+cols+") USING columnstore")
	exec(t, conn, "CREATE TABLE h_log (step int)")
	other := c.Conn(t, "postgres")

	next := int64(1)
	values := func(n int) string {
		var rows []string
		for range n {
			id := next
			next++
			s := "NULL"
			if rng.IntN(5) > 0 {
				s = fmt.Sprintf("'s%d %s'", rng.IntN(100), []string{"", "é", "\"q\"", "tab\there", "''"}[rng.IntN(5)])
			}
			n := "NULL"
			if rng.IntN(4) > 0 {
				n = fmt.Sprintf("%d.%02d", rng.IntN(100000)-50000, rng.IntN(100))
			}
			if rng.IntN(60) == 0 {
				n = "'NaN'" // the column, a DECIMAL until then, becomes text
			}
			rows = append(rows, fmt.Sprintf("(%d, %d, %s, %s, '2024-01-01 00:00+00'::timestamptz + %d * interval '1 minute', %v)",
				id, rng.IntN(1000), s, n, rng.IntN(100000), rng.IntN(2) == 0))
		}
		return strings.Join(rows, ", ")
	}
	type op func(tx pgx.Tx) error
	insertValues := func(tx pgx.Tx) error {
		v := values(1 + rng.IntN(5))
		if _, err := tx.Exec(ctx, "INSERT INTO h VALUES "+v); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO cs VALUES "+v)
		return err
	}
	insertSelect := func(tx pgx.Tx) error {
		n := 100 + rng.IntN(3000)
		q := fmt.Sprintf(`SELECT g, g %% 97, CASE WHEN g %% 5 = 0 THEN NULL ELSE 'gen ' || g END, (g %% 1000) / 7.0,
			'2024-06-01 00:00+00'::timestamptz + g * interval '1 second', g %% 2 = 0 FROM generate_series(%d, %d) g`, next, next+int64(n)-1)
		next += int64(n)
		if _, err := tx.Exec(ctx, "INSERT INTO h "+q); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO cs "+q)
		return err
	}
	copyRows := func(tx pgx.Tx) error {
		n := 1 + rng.IntN(500)
		rows := make([][]any, n)
		for i := range rows {
			var s any
			if rng.IntN(6) > 0 {
				s = fmt.Sprintf("copied %d\n%d", next, rng.IntN(10))
			}
			rows[i] = []any{next, int32(rng.IntN(1000)), s, nil, time.Unix(1700000000+int64(rng.IntN(1e6)), 0).UTC(), rng.IntN(3) == 0}
			next++
		}
		for _, tbl := range []string{"h", "cs"} {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{tbl}, []string{"id", "k", "s", "n", "at", "ok"}, pgx.CopyFromRows(rows)); err != nil {
				return fmt.Errorf("COPY %s: %w", tbl, err)
			}
		}
		return nil
	}
	// COPY FROM a server CSV file, read by DuckDB when its values are in
	// the forms it reads (now and then one is not: PostgreSQL reads it)
	csvDir, err := os.MkdirTemp("", "cs-diff-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(csvDir) })
	os.Chmod(csvDir, 0o777)
	copyFile := func(tx pgx.Tx) error {
		var b strings.Builder
		for range 1 + rng.IntN(2000) {
			s := ""
			switch rng.IntN(5) {
			case 0: // NULL
			case 1:
				s = `""`
			case 2:
				s = fmt.Sprintf(`"file, ""%d""%sé"`, next, []string{"", "\n"}[rng.IntN(2)])
			default:
				s = fmt.Sprintf("f%d", rng.IntN(100))
			}
			n := ""
			if rng.IntN(4) > 0 {
				n = fmt.Sprintf("%d.%02d", rng.IntN(100000)-50000, rng.IntN(100))
			}
			k := fmt.Sprint(rng.IntN(1000))
			if rng.IntN(500) == 0 {
				k = "+" + k // PostgreSQL's form only
			}
			fmt.Fprintf(&b, "%d,%s,%s,%s,2024-03-%02d %02d:%02d:%02d.%d+%02d,%s\n", next, k, s, n,
				1+rng.IntN(28), rng.IntN(24), rng.IntN(60), rng.IntN(60), rng.IntN(1000), rng.IntN(14), []string{"t", "f", ""}[rng.IntN(3)])
			next++
		}
		p := filepath.Join(csvDir, fmt.Sprintf("rows-to-%d.csv", next))
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			return err
		}
		for _, tbl := range []string{"h", "cs"} {
			if _, err := tx.Exec(ctx, "COPY "+tbl+" FROM "+catalog.QuoteLiteral(p)+" (FORMAT csv)"); err != nil {
				return fmt.Errorf("COPY %s FROM a file: %w", tbl, err)
			}
		}
		return nil
	}
	// INSERT ... SELECT from the table itself: run by DuckDB for the
	// columnstore table (its own rows, this transaction's writes included)
	insertSelf := func(tx pgx.Tx) error {
		m := 20 + rng.IntN(30)
		q := fmt.Sprintf("INSERT INTO TBL SELECT * FROM TBL WHERE id %% %d = %d", m, rng.IntN(m))
		for _, tbl := range []string{"h", "cs"} {
			if _, err := tx.Exec(ctx, strings.ReplaceAll(q, "TBL", tbl)); err != nil {
				return err
			}
		}
		return nil
	}
	truncate := func(tx pgx.Tx) error {
		if rng.IntN(3) > 0 {
			return insertValues(tx) // rarely: the table would stay small
		}
		_, err := tx.Exec(ctx, "TRUNCATE h, cs")
		return err
	}
	update := func(tx pgx.Tx) error {
		m := 2 + rng.IntN(9)
		q := fmt.Sprintf("UPDATE TBL SET k = k + 1, s = CASE WHEN s IS NULL THEN 'was null' ELSE s || '!' END, n = n * 2 WHERE id %% %d = %d", m, rng.IntN(m))
		if _, err := tx.Exec(ctx, strings.Replace(q, "TBL", "h", 1)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, strings.Replace(q, "TBL", "cs", 1))
		return err
	}
	del := func(tx pgx.Tx) error {
		m := 3 + rng.IntN(20)
		q := fmt.Sprintf("DELETE FROM TBL WHERE id %% %d = %d OR k = %d", m, rng.IntN(m), rng.IntN(1000))
		if _, err := tx.Exec(ctx, strings.Replace(q, "TBL", "h", 1)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, strings.Replace(q, "TBL", "cs", 1))
		return err
	}
	ops := []op{insertValues, insertValues, insertSelect, insertSelf, copyRows, copyFile, truncate, update, del}

	compare := func(when string) {
		t.Helper()
		for _, q := range []string{"SELECT count(*) FROM (SELECT * FROM h EXCEPT ALL SELECT * FROM cs) x",
			"SELECT count(*) FROM (SELECT * FROM cs EXCEPT ALL SELECT * FROM h) x"} {
			for _, cn := range []*pgx.Conn{conn, other} {
				var n int64
				if err := cn.QueryRow(ctx, q).Scan(&n); err != nil {
					t.Fatalf("%s: %s: %v", when, q, err)
				}
				if n != 0 {
					t.Fatalf("%s: %s: %d rows differ", when, q, n)
				}
			}
		}
	}
	step := 0
	runTx := func(tx pgx.Tx) error {
		for range 1 + rng.IntN(4) {
			if err := ops[rng.IntN(len(ops))](tx); err != nil {
				return err
			}
			if rng.IntN(4) == 0 {
				// a savepoint, rolled back or kept
				sp, err := tx.Begin(ctx)
				if err != nil {
					return err
				}
				if err := ops[rng.IntN(len(ops))](sp); err != nil {
					return err
				}
				if rng.IntN(2) == 0 {
					if err := sp.Rollback(ctx); err != nil {
						return err
					}
				} else if err := sp.Commit(ctx); err != nil {
					return err
				}
			}
		}
		_, err := tx.Exec(ctx, "INSERT INTO h_log VALUES ($1)", step)
		return err
	}
	for step = 0; step < 40; step++ {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := runTx(tx); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if rng.IntN(3) == 0 {
			err = tx.Rollback(ctx)
		} else {
			err = tx.Commit(ctx)
		}
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		compare(fmt.Sprintf("step %d", step))

		switch step {
		case 15:
			// an immediate shutdown in the middle of a transaction
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := runTx(tx); err != nil {
				t.Fatal(err)
			}
			c.Restart(t, "immediate")
			c.WaitSidecar(t)
			conn = c.Conn(t, "postgres")
			other = c.Conn(t, "postgres")
			compare("after an immediate shutdown")
		case 28:
			// the sidecar killed during a transaction: it fails, nothing of it stays
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := runTx(tx); err != nil {
				t.Fatal(err)
			}
			c.KillSidecar(t)
			c.WaitSidecar(t)
			_ = insertSelect(tx) // may fail or not: the sidecar was restarted
			tx.Rollback(ctx)
			compare("after the sidecar was killed")
		}
	}
	// one last committed INSERT ... SELECT: the random sequence may end on a
	// TRUNCATE, and the sweep and pyiceberg below must have rows to check
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := insertSelect(tx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	compare("after the last insert")
	var n int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM cs").Scan(&n); err != nil || n == 0 {
		t.Fatalf("the columnstore table has %d rows (%v): the test wrote nothing", n, err)
	}
	t.Logf("%d rows after %d steps", n, step)
	// the sweep removes what the cut transactions left, nothing the table reads
	var removed int64
	if err := conn.QueryRow(ctx, "SELECT mooncake.remove_orphan_files('cs', '0')").Scan(&removed); err != nil {
		t.Fatal(err)
	}
	t.Logf("remove_orphan_files removed %d files", removed)
	compare("after remove_orphan_files")

	// pyiceberg reads the committed table through the catalog
	readWithPyIceberg(t, c, conn, nil, "public.cs", wlTable{source: "h", key: []string{"id"}})
}

// TestColumnstoreConcurrentWriters has several sessions write one
// columnstore table at once, in transactions that commit or roll back:
// writers wait for each other (the catalog row's lock) and no committed
// row is lost or doubled; a reader never waits for a writer.
func TestColumnstoreConcurrentWriters(t *testing.T) {
	c, conn := startMooncake(t)
	ctx := context.Background()
	exec(t, conn, "CREATE TABLE cw (writer int, n int) USING columnstore")
	exec(t, conn, "CREATE TABLE cw_heap (writer int, n int)")
	const writers, rounds = 4, 8
	errs := make(chan error, writers)
	for w := range writers {
		cn := c.Conn(t, "postgres")
		go func() {
			for r := range rounds {
				tx, err := cn.Begin(ctx)
				if err != nil {
					errs <- err
					return
				}
				q := fmt.Sprintf("SELECT %d, g FROM generate_series(%d, %d) g", w, r*100, r*100+99)
				if _, err := tx.Exec(ctx, "INSERT INTO cw "+q); err != nil {
					errs <- err
					return
				}
				if _, err := tx.Exec(ctx, "INSERT INTO cw_heap "+q); err != nil {
					errs <- err
					return
				}
				if r%3 == 2 {
					err = tx.Rollback(ctx)
				} else {
					err = tx.Commit(ctx)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	// A reader meanwhile: it never waits for the writers' locks.
	reader := c.Conn(t, "postgres")
	readerDone := time.Now().Add(3 * time.Second)
	for time.Now().Before(readerDone) {
		start := time.Now()
		var n int64
		if err := reader.QueryRow(ctx, "SELECT count(*) FROM cw").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("a read took %s: it waited for a writer", d)
		}
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatalf("a writer failed: %v", err)
		}
	}
	for _, q := range []string{"SELECT count(*) FROM (SELECT * FROM cw EXCEPT ALL SELECT * FROM cw_heap) x",
		"SELECT count(*) FROM (SELECT * FROM cw_heap EXCEPT ALL SELECT * FROM cw) x"} {
		var n int64
		if err := conn.QueryRow(ctx, q).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%s: %d (%v)", q, n, err)
		}
	}
	var n int64
	conn.QueryRow(ctx, "SELECT count(*) FROM cw").Scan(&n)
	if want := int64(writers * (rounds - rounds/3) * 100); n != want {
		t.Errorf("%d rows, want %d", n, want)
	}
}

// TestColumnstoreLocation places a columnstore table's files in a
// directory of its own, and pyiceberg finds them through the catalog.
func TestColumnstoreLocation(t *testing.T) {
	c, conn := startMooncake(t)
	ctx := context.Background()
	dir := c.DataDir() + "/placed_tables/t1"
	exec(t, conn, fmt.Sprintf("CREATE TABLE placed (id int, s text) USING columnstore WITH (location = '%s')", dir))
	exec(t, conn, "INSERT INTO placed SELECT g, 'row ' || g FROM generate_series(1, 500) g")
	var n int64
	var loc string
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM placed").Scan(&n); err != nil || n != 500 {
		t.Fatalf("%d rows (%v)", n, err)
	}
	if err := conn.QueryRow(ctx, "SELECT metadata_location FROM mooncake.columnstore_tables WHERE table_name = 'placed'").Scan(&loc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(loc, dir+"/metadata/") {
		t.Errorf("metadata at %s, not under %s", loc, dir)
	}
	if _, err := os.Stat(loc); err != nil && !os.IsPermission(err) {
		t.Errorf("the metadata file: %v", err)
	}
	// a directory shared with another table: the sweep refuses it
	exec(t, conn, fmt.Sprintf("CREATE TABLE placed2 (id int) USING columnstore WITH (location = '%s')", dir))
	exec(t, conn, "INSERT INTO placed2 VALUES (1)")
	_, err := conn.Exec(ctx, "SELECT mooncake.remove_orphan_files('placed', '0')")
	if err == nil || !strings.Contains(err.Error(), "55000") {
		t.Errorf("remove_orphan_files of a shared directory: %v", err)
	}
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM placed").Scan(&n); err != nil || n != 500 {
		t.Fatalf("%d rows (%v)", n, err)
	}
}
