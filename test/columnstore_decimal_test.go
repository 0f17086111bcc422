package test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// A columnstore table stores numeric(p,s) as Iceberg decimal(p,s): other
// engines read decimals, DuckDB sums them at its speed. NaN, which
// numeric(p,s) accepts and no decimal holds, makes the column text for
// good, in the transaction that brings it (a rollback keeps decimals), by
// INSERT, UPDATE, COPY FROM and INSERT ... SELECT alike; the rows are
// those of a heap table that took the same statements.
func TestColumnstoreNumericNaN(t *testing.T) {
	_, conn := startMooncake(t)
	ctx := context.Background()
	const cols = "id int, n numeric(12,2), z numeric(5,5), w numeric(38,10), u numeric"
	exec(t, conn, "CREATE TABLE h ("+cols+")")
	exec(t, conn, "CREATE TABLE cs ("+cols+") USING columnstore")
	both := func(q string) {
		t.Helper()
		for _, tbl := range []string{"h", "cs"} {
			exec(t, conn, strings.ReplaceAll(q, "TBL", tbl))
		}
	}
	same := func(when string) {
		t.Helper()
		for _, q := range []string{
			"SELECT count(*) FROM (SELECT * FROM h EXCEPT ALL SELECT * FROM cs) d",
			"SELECT count(*) FROM (SELECT * FROM cs EXCEPT ALL SELECT * FROM h) d",
		} {
			if n := queryString(t, conn, q); n != "0" {
				t.Fatalf("%s: %s rows differ (%s)", when, n, q)
			}
		}
		// aggregates pushed down to DuckDB, against the heap's
		for _, a := range []string{"sum(n)::text || '|' || sum(z)::text || '|' || sum(w)::text || '|' || count(u)::text",
			"max(n)::text || '|' || min(z)::text || '|' || avg(w)::text"} {
			h, c := queryString(t, conn, "SELECT "+a+" FROM h"), queryString(t, conn, "SELECT "+a+" FROM cs")
			if h != c {
				t.Fatalf("%s: %s is %s on the columnstore table, %s on the heap", when, a, c, h)
			}
		}
	}
	kinds := func(when string, want ...string) {
		t.Helper()
		types := icebergTypes(t, conn, "cs")
		var got []string
		for _, c := range []string{"n", "z", "w", "u"} {
			got = append(got, strings.ReplaceAll(types[c], " ", ""))
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("%s: the columns are stored as %v, want %v", when, got, want)
		}
	}

	both(`INSERT INTO TBL SELECT g, g * 1.25 - 100, (g % 100) / 1000.0, g * 1234567.0123456789, g / 3.0 FROM generate_series(1, 2000) g`)
	kinds("created", "decimal(12,2)", "decimal(5,5)", "decimal(38,10)", "string")
	same("created")
	var plan []string
	rs, err := conn.Query(ctx, "EXPLAIN (VERBOSE, COSTS OFF) SELECT sum(n) FROM cs")
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var line string
		rs.Scan(&line)
		plan = append(plan, line)
	}
	if p := strings.Join(plan, "\n"); !strings.HasPrefix(p, "Foreign Scan") || !strings.Contains(p, "sum(CAST(r1.\"n\" AS DECIMAL(12,2)))") {
		t.Fatalf("sum(n) is not computed by DuckDB:\n%s", p)
	}

	// NaN rolled back: still decimals.
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO cs VALUES (0, 'NaN', NULL, NULL, NULL)"); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, tx, "SELECT n::text FROM cs WHERE id = 0"); got != "NaN" {
		t.Fatalf("the transaction reads %q, want NaN", got)
	}
	tx.Rollback(ctx)
	kinds("NaN rolled back", "decimal(12,2)", "decimal(5,5)", "decimal(38,10)", "string")
	same("NaN rolled back")

	// UPDATE to NaN, with rows deleted in the same statement.
	both("UPDATE TBL SET n = CASE WHEN id = 7 THEN 'NaN' ELSE n + 1 END WHERE id % 7 = 0")
	kinds("UPDATE to NaN", "string", "decimal(5,5)", "decimal(38,10)", "string")
	same("UPDATE to NaN")

	// COPY FROM STDIN (through the load) brings NaN into z.
	rows := [][]any{{int32(5001), "1.50", "0.00001", nil, "NaN"}, {int32(5002), nil, "NaN", "-1.5", nil}}
	for _, tbl := range []string{"h", "cs"} {
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{tbl}, []string{"id", "n", "z", "w", "u"}, pgx.CopyFromRows(rows)); err != nil {
			t.Fatalf("COPY %s: %v", tbl, err)
		}
	}
	kinds("COPY with NaN", "string", "string", "decimal(38,10)", "string")
	same("COPY with NaN")

	// INSERT ... SELECT of many rows bringing NaN into w halfway.
	both(`INSERT INTO TBL SELECT g, NULL, NULL, CASE WHEN g = 9000 THEN 'NaN'::numeric ELSE g END, NULL FROM generate_series(6000, 12000) g`)
	kinds("INSERT ... SELECT with NaN", "string", "string", "string", "string")
	same("INSERT ... SELECT with NaN")

	// ALTER of a text column back to a typmod keeps text; a new column is a decimal.
	both("ALTER TABLE TBL ADD COLUMN v numeric(8,3)")
	both("UPDATE TBL SET v = id / 8.0 WHERE id < 100")
	if got := strings.ReplaceAll(icebergTypes(t, conn, "cs")["v"], " ", ""); got != "decimal(8,3)" {
		t.Fatalf("an added numeric(8,3) column is stored as %s", got)
	}
	same("ADD COLUMN")
}
