package test

import (
	"fmt"
	"testing"
	"time"
)

// TestUnchangedToast checks the values an UPDATE leaves unchanged in the
// TOAST table, which the replication stream does not carry and the sidecar
// reads back from the mirror: in rows of the data files, in rows changed
// earlier in the same transaction (twice, with the key changed, deleted and
// inserted again), in rows of the unflushed tail, in a mirror with
// REPLICA IDENTITY FULL, and across flushes. After each step the mirror
// must hold exactly its source's rows.
func TestUnchangedToast(t *testing.T) {
	c, conn := startMooncake(t)
	// big is stored out of line and uncompressed once over ~2 kB: 6,400
	// characters of md5 digests, distinct per row and per version.
	const bigOf = `(SELECT string_agg(md5(%s || ':' || j), '') FROM generate_series(1, 200) j)`
	big := func(seed string) string { return fmt.Sprintf(bigOf, seed) }
	for _, tbl := range []string{"tk", "tf"} {
		exec(t, conn, `CREATE TABLE `+tbl+` (id int NOT NULL, n int NOT NULL, note text, big text, doc text)`)
		exec(t, conn, `ALTER TABLE `+tbl+` ALTER COLUMN big SET STORAGE EXTERNAL, ALTER COLUMN doc SET STORAGE EXTERNAL`)
		// Most rows have a large value; some NULL, some short (inline).
		exec(t, conn, `INSERT INTO `+tbl+` SELECT g, 0, 'row ' || g,
			CASE WHEN g % 10 = 0 THEN NULL WHEN g % 10 = 5 THEN 'short ' || g ELSE `+big("'v1:' || g")+` END,
			`+big("'s:' || g")+` FROM generate_series(1, 200) g`)
	}
	// More rows than the sidecar buffers at once (8,192 changes), with
	// smaller values (2,560 characters, still out of line).
	exec(t, conn, `INSERT INTO tk SELECT g, 0, 'many', (SELECT string_agg(md5(g || ':' || j), '') FROM generate_series(1, 80) j), NULL
		FROM generate_series(10001, 15000) g`)
	exec(t, conn, `ALTER TABLE tk ADD PRIMARY KEY (id)`)
	// Rows may repeat in tf, whose rows are told apart by all their values.
	exec(t, conn, `INSERT INTO tf SELECT * FROM tf WHERE id % 7 = 0`)
	exec(t, conn, `CALL mooncake.create_table('tk_m', 'tk')`)
	exec(t, conn, `CALL mooncake.create_table('tf_m', 'tf', replica_identity_full => true)`)

	check := func(step string) {
		t.Helper()
		for _, p := range [][2]string{{"tk", "tk_m"}, {"tf", "tf_m"}} {
			// Reads wait for this session's last commit.
			if missing, extra := differences(t, conn, p[0], p[1]); missing != 0 || extra != 0 {
				t.Fatalf("%s: %s has %d rows missing and %d extra (of %s)", step, p[1], missing, extra, p[0])
			}
		}
	}
	check("initial copy")
	if n := queryInt(t, conn, `SELECT count(*) FROM pg_class
		WHERE relname IN ('tk', 'tf') AND pg_relation_size(reltoastrelid) > 0`); n != 2 {
		t.Fatal("the large values are not stored out of line")
	}

	steps := []struct {
		name string
		sql  []string
	}{
		{"single-row updates of rows in data files", []string{
			`UPDATE tk SET n = n + 1 WHERE id = 1`,
			`UPDATE tk SET n = n + 1 WHERE id = 2`,
			`UPDATE tf SET n = n + 1 WHERE id = 1`,
			`UPDATE tk SET n = n + 1, note = 'three' WHERE id = 3`,
			`UPDATE tk SET n = n + 1 WHERE id = 10`, // big is NULL
			`UPDATE tk SET n = n + 1 WHERE id = 15`, // big is short
		}},
		{"one transaction updating many rows of data files", []string{
			`UPDATE tk SET n = n + 1 WHERE id % 3 = 0`,
			`UPDATE tf SET n = n + 1 WHERE id % 3 = 0`,
		}},
		{"rows updated twice and more in one transaction", []string{
			`BEGIN`,
			`UPDATE tk SET n = n + 1 WHERE id BETWEEN 20 AND 40`,
			`UPDATE tk SET note = 'twice' WHERE id BETWEEN 30 AND 50`,
			`UPDATE tk SET n = n + 1 WHERE id BETWEEN 35 AND 45`,
			`UPDATE tk SET big = ` + big("'v2:' || id") + ` WHERE id = 36`,
			`UPDATE tk SET n = n + 1 WHERE id = 36`,
			`UPDATE tf SET n = n + 1 WHERE id BETWEEN 20 AND 40`,
			`UPDATE tf SET note = 'twice' WHERE id BETWEEN 30 AND 50`,
			`COMMIT`,
		}},
		{"a transaction updating more rows than a batch holds", []string{
			`BEGIN`,
			`UPDATE tk SET n = n + 1 WHERE id > 10000`,
			`UPDATE tk SET note = 'many again' WHERE id > 12000`,
			`COMMIT`,
		}},
		{"key changes, deletes and inserts again in one transaction", []string{
			`BEGIN`,
			`UPDATE tk SET id = id + 1000 WHERE id BETWEEN 60 AND 64`,
			`UPDATE tk SET n = n + 1 WHERE id BETWEEN 1060 AND 1064`,
			`UPDATE tk SET id = id - 1000, n = n + 1 WHERE id = 1061`,
			`UPDATE tk SET note = 'back' WHERE id = 61`,
			`DELETE FROM tk WHERE id = 70`,
			`INSERT INTO tk VALUES (70, 0, 'again', ` + big("'v3:70'") + `, 'short')`,
			`UPDATE tk SET n = n + 1 WHERE id = 70`,
			`UPDATE tk SET n = n + 1 WHERE id = 71`,
			`DELETE FROM tk WHERE id = 71`,
			`INSERT INTO tk VALUES (71, 0, 'again', NULL, ` + big("'v3:71'") + `)`,
			`UPDATE tk SET n = n + 1 WHERE id = 71`,
			`UPDATE tf SET id = id + 1000 WHERE id BETWEEN 60 AND 64`,
			`UPDATE tf SET n = n + 1 WHERE id BETWEEN 1060 AND 1064`,
			`COMMIT`,
		}},
		{"rows of the unflushed tail", []string{
			`INSERT INTO tk SELECT g, 0, 'new', ` + big("'v4:' || g") + `, NULL FROM generate_series(300, 310) g`,
			`UPDATE tk SET n = n + 1 WHERE id BETWEEN 300 AND 305`,
			`UPDATE tk SET n = n + 1 WHERE id BETWEEN 303 AND 308`,
			`UPDATE tk SET n = n + 1 WHERE id BETWEEN 20 AND 25`, // updated before, now in the tail
			`INSERT INTO tf SELECT g, 0, 'new', ` + big("'v4:' || g") + `, NULL FROM generate_series(300, 310) g`,
			`UPDATE tf SET n = n + 1 WHERE id BETWEEN 300 AND 305`,
			`UPDATE tf SET n = n + 1 WHERE id BETWEEN 20 AND 25`,
		}},
	}
	for _, st := range steps {
		for _, q := range st.sql {
			exec(t, conn, q)
		}
		check(st.name)
	}

	// Flushed: the same changes again hit rows the steps changed, now in
	// data files written by flushes, and after a restart of the sidecar.
	for round := 0; round < 2; round++ {
		waitFlushed(t, conn, 30*time.Second)
		if round == 1 {
			c.KillSidecar(t)
			c.WaitSidecar(t)
		}
		for _, st := range steps[:3] {
			for _, q := range st.sql {
				exec(t, conn, q)
			}
			check(fmt.Sprintf("%s, after a flush (round %d)", st.name, round))
		}
	}
}
