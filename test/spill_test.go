package test

import (
	"testing"
	"time"
)

// TestLargeTransactions drives source transactions large enough that the
// sidecar writes them straight to Parquet (spill files) instead of its
// in-memory tail, and checks that every way of changing such rows later in
// the same transaction, in the next ones, across a flush and across a
// sidecar crash keeps the mirror equal to its source.
func TestLargeTransactions(t *testing.T) {
	c, conn := startMooncake(t)
	// Reads wait for the mirror to apply this session's large transactions:
	// give a loaded machine time.
	exec(t, conn, `SET mooncake.read_wait_timeout = '120s'`)
	exec(t, conn, `CREATE TABLE big (id bigint PRIMARY KEY, v int, note text, doc text)`)
	exec(t, conn, `ALTER TABLE big ALTER COLUMN doc SET STORAGE EXTERNAL`)
	exec(t, conn, `INSERT INTO big SELECT g, g % 7, 'before ' || g, NULL FROM generate_series(1, 1000) g`)
	exec(t, conn, `CALL mooncake.create_table('big_mirror', 'big')`)
	const src, mirror = "big", "big_mirror"
	waitConverged(t, conn, src, mirror, 30*time.Second)

	steps := []struct {
		name string
		sql  []string
	}{
		{"one transaction: inserts past the spill threshold, then changes to rows in the tail and in the spill file", []string{
			`BEGIN`,
			// Rows with a TOASTed value that later updates leave unchanged.
			`INSERT INTO big SELECT g, g % 7, 'toast ' || g, repeat(md5(g::text), 400) FROM generate_series(1001, 1100) g`,
			`INSERT INTO big SELECT g, g % 7, 'row ' || g, NULL FROM generate_series(1101, 289999) g`,
			`INSERT INTO big SELECT g, g % 7, 'toast ' || g, repeat(md5(g::text), 400) FROM generate_series(290000, 290050) g`,
			`INSERT INTO big SELECT g, g % 7, 'row ' || g, NULL FROM generate_series(290051, 300000) g`,
			// Rows written before the transaction, early rows (in the tail)
			// and late ones (spilled), updated once, twice, with their key
			// changed, and deleted.
			`UPDATE big SET v = v + 100 WHERE id % 1000 = 3`,
			`UPDATE big SET v = v + 100 WHERE id % 5000 = 3`,
			`UPDATE big SET id = -id WHERE id BETWEEN 250001 AND 250100`,
			`DELETE FROM big WHERE id BETWEEN 200001 AND 200500 OR id BETWEEN 501 AND 600`,
			`UPDATE big SET note = 'unchanged toast' WHERE id BETWEEN 1001 AND 1100 OR id BETWEEN 290000 AND 290050`,
			`INSERT INTO big SELECT g, -1, 'again ' || g, NULL FROM generate_series(200001, 200100) g`,
			`COMMIT`,
		}},
		{"small changes to spilled rows before the flush", []string{
			`UPDATE big SET v = v - 1 WHERE id % 997 = 0`,
			`DELETE FROM big WHERE id BETWEEN 299001 AND 299010`,
			`UPDATE big SET note = 'toast again' WHERE id BETWEEN 1050 AND 1060 OR id BETWEEN 290010 AND 290020`,
		}},
		{"a large update of every row", []string{
			`UPDATE big SET v = v + 1`,
		}},
		{"truncate then a large insert in one transaction", []string{
			`BEGIN`,
			`INSERT INTO big SELECT g, 0, 'gone', NULL FROM generate_series(400001, 480000) g`,
			`TRUNCATE big`,
			`INSERT INTO big SELECT g, g % 3, 'after truncate ' || g, NULL FROM generate_series(1, 150000) g`,
			`DELETE FROM big WHERE id % 10000 = 1`,
			`COMMIT`,
		}},
	}
	for _, st := range steps {
		for _, q := range st.sql {
			exec(t, conn, q)
		}
		waitConverged(t, conn, src, mirror, 60*time.Second)
		// Once more after the changes reached Iceberg.
		waitFlushed(t, conn, 60*time.Second)
		if missing, extra := differences(t, conn, src, mirror); missing != 0 || extra != 0 {
			t.Fatalf("after %q and a flush: %d rows missing, %d extra", st.name, missing, extra)
		}
	}

	// A crash while a large transaction is applied: the restarted sidecar
	// replays it from the slot, without duplicates.
	exec(t, conn, `INSERT INTO big SELECT g, 1, 'crash ' || g, NULL FROM generate_series(500001, 900000) g`)
	time.Sleep(300 * time.Millisecond)
	c.KillSidecar(t)
	c.WaitSidecar(t)
	waitConverged(t, conn, src, mirror, 90*time.Second)
	if dups := queryInt(t, conn, `SELECT count(*) FROM (SELECT id FROM big_mirror GROUP BY id HAVING count(*) > 1) d`); dups != 0 {
		t.Fatalf("%d keys appear more than once in the mirror after the crash", dups)
	}
}
