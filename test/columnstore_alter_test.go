package test

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestColumnstoreAlter changes the columns of a columnstore table and of a
// heap table of the same columns alike (ADD COLUMN with and without a
// default, RENAME COLUMN, ALTER COLUMN TYPE to wider types, DROP COLUMN,
// SET NOT NULL, some in a rolled back transaction), writing rows between
// the changes; after each step the two tables hold the same rows, and at
// the end pyiceberg reads the evolved Iceberg table through the catalog
// and finds the heap table's rows under the new column names and types.
func TestColumnstoreAlter(t *testing.T) {
	c, conn := startMooncake(t)
	ctx := context.Background()
	const cols = "id int NOT NULL, k smallint, s varchar(20), n numeric(8,2), r real, gone text"
	exec(t, conn, "CREATE TABLE h ("+cols+")")
	exec(t, conn, "CREATE TABLE cs ("+cols+") USING columnstore")
	both := func(q string) {
		t.Helper()
		for _, tbl := range []string{"h", "cs"} {
			exec(t, conn, strings.ReplaceAll(q, "TBL", tbl))
		}
	}
	compare := func(when string) {
		t.Helper()
		for _, q := range []string{"SELECT * FROM h EXCEPT ALL SELECT * FROM cs", "SELECT * FROM cs EXCEPT ALL SELECT * FROM h"} {
			var n int64
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM ("+q+") x").Scan(&n); err != nil {
				t.Fatalf("%s: %s: %v", when, q, err)
			}
			if n != 0 {
				t.Fatalf("%s: %s: %d rows", when, q, n)
			}
		}
	}
	rows := func(from, to int) string {
		return fmt.Sprintf("SELECT g, g %% 100, 'row ' || g, g / 8.0, g / 4.0, 'x' FROM generate_series(%d, %d) g", from, to)
	}
	both("INSERT INTO TBL " + rows(1, 3000))
	both("DELETE FROM TBL WHERE id % 7 = 0")
	compare("before")

	both("ALTER TABLE TBL ADD COLUMN extra int")
	both("INSERT INTO TBL (id, k, s, extra) VALUES (5001, 1, 'with extra', 42)")
	compare("a column added")
	both("ALTER TABLE TBL ADD COLUMN tag text DEFAULT 'old', ADD COLUMN seq int NOT NULL DEFAULT 3")
	compare("columns added with defaults")
	both("ALTER TABLE TBL RENAME COLUMN s TO label")
	both("ALTER TABLE TBL ALTER COLUMN k TYPE bigint, ALTER COLUMN id TYPE bigint, ALTER COLUMN r TYPE double precision, ALTER COLUMN n TYPE numeric(14,2), ALTER COLUMN label TYPE text")
	both("INSERT INTO TBL (id, k, label, n, r) VALUES (9000000000, 9000000000, 'wide', 123456789012.34, 1e200)")
	compare("renamed and widened")
	both("ALTER TABLE TBL DROP COLUMN gone")
	both("UPDATE TBL SET extra = id % 10, tag = 'new' WHERE id % 5 = 0")
	both("DELETE FROM TBL WHERE id % 11 = 0")
	compare("dropped, updated, deleted")

	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "ALTER TABLE cs ADD COLUMN never int"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "ALTER TABLE cs DROP COLUMN extra"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO cs (id, never) VALUES (1, 1)"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	compare("a rolled back change")
	both("UPDATE TBL SET label = coalesce(label, '-')")
	both("ALTER TABLE TBL ALTER COLUMN label SET NOT NULL")
	compare("at the end")

	// pyiceberg reads the evolved table through the catalog
	readWithPyIceberg(t, c, conn, nil, "public.cs", wlTable{source: "h", key: []string{"id"}})
}
