package test

import (
	"context"
	"encoding/json"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmooncake/mooncake/test/pgtest"
)

// icebergTypes reads the current schema of a mirror's Iceberg table from
// its metadata file: column name to Iceberg type ("decimal(12, 2)",
// "string", ...).
func icebergTypes(t *testing.T, conn *pgx.Conn, table string) map[string]string {
	t.Helper()
	loc := pgtest.QueryText(t, conn, "SELECT metadata_location FROM mooncake.columnstore_tables WHERE table_name = '"+table+"'")
	raw, err := os.ReadFile(strings.TrimPrefix(loc, "file://"))
	if err != nil {
		t.Fatalf("metadata of %s: %v", table, err)
	}
	var meta struct {
		Current int `json:"current-schema-id"`
		Schemas []struct {
			ID     int `json:"schema-id"`
			Fields []struct {
				Name string `json:"name"`
				Type any    `json:"type"`
			} `json:"fields"`
		} `json:"schemas"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatalf("metadata of %s: %v", table, err)
	}
	out := map[string]string{}
	for _, s := range meta.Schemas {
		if s.ID != meta.Current {
			continue
		}
		for _, f := range s.Fields {
			if ty, ok := f.Type.(string); ok {
				out[f.Name] = ty
			}
		}
	}
	return out
}

// checkIcebergTypes fails unless the mirror's columns have the given
// Iceberg types.
func checkIcebergTypes(t *testing.T, conn *pgx.Conn, table string, want map[string]string) {
	t.Helper()
	got := icebergTypes(t, conn, table)
	for col, ty := range want {
		if got[col] != ty {
			t.Errorf("%s.%s is Iceberg %q; want %q", table, col, got[col], ty)
		}
	}
}

// resyncs counts the snapshots of a mirror made by new copies of its
// source (resync_table, a schema change, NaN in a DECIMAL column).
func resyncs(t *testing.T, conn *pgx.Conn, table string) int {
	t.Helper()
	loc := pgtest.QueryText(t, conn, "SELECT metadata_location FROM mooncake.columnstore_tables WHERE table_name = '"+table+"'")
	raw, err := os.ReadFile(strings.TrimPrefix(loc, "file://"))
	if err != nil {
		t.Fatalf("metadata of %s: %v", table, err)
	}
	return strings.Count(string(raw), `"mooncake.operation":"resync"`)
}

// checkResyncs fails unless the mirror's source was copied again want
// times (resyncs) after what happened.
func checkResyncs(t *testing.T, conn *pgx.Conn, table string, want int, after string) {
	t.Helper()
	if n := resyncs(t, conn, table); n != want {
		t.Errorf("%d copies of the source of %s after %s; want %d", n, table, after, want)
	}
}

// TestNumericAsDecimal: mirrors store numeric(p,s) with 0 <= s <= p <= 38
// as Iceberg decimal(p,s), other numerics as text, and stay exact when a
// NaN turns up: found by the initial copy, the column is stored as text
// from the start; arriving by the stream (an insert, an update, a column
// added), the source is copied again with the column as text. Every step
// compares the mirror with its source row by row, and aggregates with
// PostgreSQL's; a restart copies nothing again.
func TestNumericAsDecimal(t *testing.T) {
	pgtest.RequireExtension(t)
	c, conn := startMooncake(t)
	ctx := context.Background()
	for _, s := range []string{
		`CREATE TABLE dec_src (id int PRIMARY KEY, price numeric(12,2), rate numeric(38,10), frac numeric(5,5),
		   whole numeric(10,0), free numeric, wide numeric(40,2), has_nan numeric(8,3))`,
		`INSERT INTO dec_src SELECT g, (g * 37 % 100000) / 100.0 - 400, g / 7.0, (g % 99999) / 100000.0,
		   g * 1000 - 500000, g / 3.0, g * 1.5, g / 8.0 FROM generate_series(1, 5000) g`,
		`INSERT INTO dec_src VALUES (0, -9999999999.99, 9999999999999999999999999999.9999999999, -0.99999, 9999999999,
		   'NaN', 12345678901234567890123456789012345678.99, 'NaN'), (-1, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
		`CALL mooncake.create_table('dec_m', 'dec_src')`,
	} {
		exec(t, conn, s)
	}
	waitConverged(t, conn, "dec_src", "dec_m", 30*time.Second)
	checkIcebergTypes(t, conn, "dec_m", map[string]string{
		"price": "decimal(12, 2)", "rate": "decimal(38, 10)", "frac": "decimal(5, 5)", "whole": "decimal(10, 0)",
		"free": "string", "wide": "string", "has_nan": "string",
	})
	sameAggregates := func(what string) {
		t.Helper()
		q := `SELECT id % 7, count(*), sum(price), avg(price), min(price), max(price), sum(rate), max(frac), sum(whole),
			count(DISTINCT price), min(has_nan), max(has_nan) FROM %s GROUP BY 1 ORDER BY 1`
		var mirror, heap []string
		for _, side := range []struct {
			table string
			out   *[]string
		}{{"dec_m", &mirror}, {"dec_src", &heap}} {
			rows, err := conn.Query(ctx, "SELECT r::text FROM ("+strings.Replace(q, "%s", side.table, 1)+") r")
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			got, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatalf("%s on %s: %v", what, side.table, err)
			}
			*side.out = got
		}
		if strings.Join(mirror, "\n") != strings.Join(heap, "\n") {
			t.Errorf("%s: aggregates differ\nmirror:\n%s\nheap:\n%s", what, strings.Join(mirror, "\n"), strings.Join(heap, "\n"))
		}
	}
	sameAggregates("after the copy")
	// The aggregation is pushed down (one foreign scan, no aggregate in
	// PostgreSQL): DuckDB sums the DECIMALs.
	if plan := pgtest.QueryText(t, conn, "EXPLAIN (VERBOSE, COSTS OFF) SELECT id % 7, sum(price) FROM dec_m GROUP BY 1"); !strings.Contains(plan, "Foreign Scan") ||
		strings.Contains(plan, "HashAggregate") || strings.Contains(plan, "GroupAggregate") {
		t.Errorf("sum(price) on the mirror is not pushed down:\n%s", plan)
	}

	// Changes that fit: the columns stay decimals.
	exec(t, conn, "UPDATE dec_src SET price = price + 0.01, rate = -rate WHERE id % 10 = 0")
	exec(t, conn, "DELETE FROM dec_src WHERE id % 13 = 0")
	exec(t, conn, "INSERT INTO dec_src VALUES (6001, 1.5, 0, 0, 0, 1, 1, 'NaN')")
	waitConverged(t, conn, "dec_src", "dec_m", 30*time.Second)
	checkIcebergTypes(t, conn, "dec_m", map[string]string{"price": "decimal(12, 2)", "rate": "decimal(38, 10)"})
	checkResyncs(t, conn, "dec_m", 0, "changes that fit the decimals")

	// NaN arrives in a DECIMAL column, in a transaction with other
	// changes: the source is copied again, the column stored as text.
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"INSERT INTO dec_src VALUES (7001, 2.25, 1, 0.5, 3, 4, 5, 6)",
		"UPDATE dec_src SET price = 'NaN' WHERE id = 5",
		"INSERT INTO dec_src VALUES (7002, 3.75, 1, 0.5, 3, 4, 5, 6)",
	} {
		if _, err := tx.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// Read your writes: the query waits for the new copy.
	if got := pgtest.QueryText(t, conn, "SELECT price::text FROM dec_m WHERE id = 5"); got != "NaN" {
		t.Errorf("price of row 5 is %q after it was set to NaN; want NaN", got)
	}
	waitConverged(t, conn, "dec_src", "dec_m", 30*time.Second)
	checkIcebergTypes(t, conn, "dec_m", map[string]string{"price": "string", "rate": "decimal(38, 10)", "frac": "decimal(5, 5)"})
	checkResyncs(t, conn, "dec_m", 1, "NaN arrived")
	sameAggregates("after NaN arrived")
	exec(t, conn, "UPDATE dec_src SET price = 'NaN', has_nan = 'NaN' WHERE id BETWEEN 100 AND 120")
	waitConverged(t, conn, "dec_src", "dec_m", 30*time.Second)
	checkResyncs(t, conn, "dec_m", 1, "more NaN in text columns")

	// More digits of the same scale: the schema evolves in place (no
	// copy), old files read through the wider type.
	exec(t, conn, "ALTER TABLE dec_src ALTER COLUMN whole TYPE numeric(18,0)")
	exec(t, conn, "UPDATE dec_src SET whole = 123456789012345678 WHERE id = 6")
	waitConverged(t, conn, "dec_src", "dec_m", 30*time.Second)
	checkIcebergTypes(t, conn, "dec_m", map[string]string{"whole": "decimal(18, 0)"})
	checkResyncs(t, conn, "dec_m", 1, "widening numeric(10,0) to numeric(18,0)")
	if got, want := pgtest.QueryText(t, conn, "SELECT sum(whole)::text FROM dec_m"), pgtest.QueryText(t, conn, "SELECT sum(whole)::text FROM dec_src"); got != want {
		t.Errorf("sum(whole) after widening: mirror %s, source %s", got, want)
	}
	// pyiceberg reads files of both types through the wider one.
	python := requirePyIceberg(t)
	waitFlushed(t, conn, 30*time.Second)
	pyicebergMatchesSource(t, python, c, conn, wlTable{"dec_src", "dec_m", []string{"id"}})

	// A column added by ALTER TABLE is a decimal, until NaN comes.
	exec(t, conn, "ALTER TABLE dec_src ADD COLUMN extra numeric(6,1)")
	exec(t, conn, "UPDATE dec_src SET extra = id % 1000 / 10.0 WHERE id < 50")
	waitConverged(t, conn, "dec_src", "dec_m", 30*time.Second)
	checkIcebergTypes(t, conn, "dec_m", map[string]string{"extra": "decimal(6, 1)"})
	exec(t, conn, "DELETE FROM dec_src WHERE id = 3")
	exec(t, conn, "UPDATE dec_src SET extra = 'NaN' WHERE id = 4")
	waitConverged(t, conn, "dec_src", "dec_m", 30*time.Second)
	checkIcebergTypes(t, conn, "dec_m", map[string]string{"extra": "string", "rate": "decimal(38, 10)"})
	checkResyncs(t, conn, "dec_m", 2, "NaN in the added column")

	// A source with NaN from the start: that column is text at once, the
	// others decimals.
	exec(t, conn, "CREATE TABLE dec_src2 (id int PRIMARY KEY, a numeric(10,2), b numeric(10,2))")
	exec(t, conn, "INSERT INTO dec_src2 SELECT g, g / 4.0, CASE WHEN g = 77 THEN 'NaN'::numeric ELSE g END FROM generate_series(1, 1000) g")
	exec(t, conn, "CALL mooncake.create_table('dec_m2', 'dec_src2')")
	checkIcebergTypes(t, conn, "dec_m2", map[string]string{"a": "decimal(10, 2)", "b": "string"})
	waitConverged(t, conn, "dec_src2", "dec_m2", 30*time.Second)
	if got := pgtest.QueryText(t, conn, "SELECT sum(a)::text || ' ' || max(b)::text || ' ' || count(*) FILTER (WHERE b = 'NaN') FROM dec_m2"); got != "125125.00 NaN 1" {
		t.Errorf("aggregates of dec_m2: %q; want 125125.00 NaN 1", got)
	}
	exec(t, conn, "INSERT INTO dec_src2 VALUES (1001, 'NaN', 'NaN')")
	waitConverged(t, conn, "dec_src2", "dec_m2", 30*time.Second)
	checkIcebergTypes(t, conn, "dec_m2", map[string]string{"a": "string", "b": "string"})

	// resync_table keeps text columns that hold NaN as text.
	exec(t, conn, "CALL mooncake.resync_table('dec_m2')")
	checkIcebergTypes(t, conn, "dec_m2", map[string]string{"a": "string", "b": "string"})
	waitConverged(t, conn, "dec_src2", "dec_m2", 30*time.Second)

	// NaN committed while the source is being copied (create_table, then
	// resync_table): whether the copy holds it or the changes applied
	// after the copy bring it, the column ends as text and the mirror
	// converges.
	exec(t, conn, "CREATE TABLE dec_src3 (id int PRIMARY KEY, a numeric(10,2), pad text)")
	exec(t, conn, "INSERT INTO dec_src3 SELECT g, g / 4.0, repeat('x', 200) FROM generate_series(1, 300000) g")
	for i, call := range []string{"CALL mooncake.create_table('dec_m3', 'dec_src3')", "CALL mooncake.resync_table('dec_m3')"} {
		other := c.Conn(t, "postgres")
		done := make(chan error, 1)
		go func() {
			_, err := other.Exec(ctx, call)
			done <- err
		}()
		time.Sleep(300 * time.Millisecond)
		exec(t, conn, "UPDATE dec_src3 SET a = 'NaN' WHERE id = $1", 10+i)
		exec(t, conn, "INSERT INTO dec_src3 VALUES ($1, 1.25, 'after')", 400000+i)
		if err := <-done; err != nil {
			t.Fatalf("%s: %v", call, err)
		}
		other.Close(ctx)
		waitConverged(t, conn, "dec_src3", "dec_m3", 60*time.Second)
		checkIcebergTypes(t, conn, "dec_m3", map[string]string{"a": "string"})
		exec(t, conn, "UPDATE dec_src3 SET a = 1 WHERE a = 'NaN'")
		exec(t, conn, "CALL mooncake.resync_table('dec_m3')")
		checkIcebergTypes(t, conn, "dec_m3", map[string]string{"a": "decimal(10, 2)"})
	}

	// A restart copies nothing again: the text columns hold NaN.
	before := resyncs(t, conn, "dec_m") + resyncs(t, conn, "dec_m2")
	conn.Close(ctx)
	c.Restart(t, "fast")
	c.WaitSidecar(t)
	conn = c.Conn(t, "postgres")
	exec(t, conn, "INSERT INTO dec_src (id, price, rate) VALUES (9001, 9.99, 1.5)")
	waitConverged(t, conn, "dec_src", "dec_m", 30*time.Second)
	waitConverged(t, conn, "dec_src2", "dec_m2", 30*time.Second)
	time.Sleep(2 * time.Second)
	if after := resyncs(t, conn, "dec_m") + resyncs(t, conn, "dec_m2"); after != before {
		t.Errorf("%d copies of the sources after a restart; want %d", after, before)
	}
	sameAggregates("after a restart")

	// pyiceberg reads the decimals (and the widened column's older files)
	// and the text columns, equal to the source row for row.
	waitFlushed(t, conn, 30*time.Second)
	for _, tb := range []wlTable{{"dec_src", "dec_m", []string{"id"}}, {"dec_src2", "dec_m2", []string{"id"}}} {
		pyicebergMatchesSource(t, python, c, conn, tb)
	}
}

// textNumericRelease is the last commit whose sidecar stored every numeric
// column of a mirror as its text.
const textNumericRelease = "af6e7bc"

// TestNumericMigration: mirrors made by a sidecar that kept numeric(p,s)
// as text are copied again once by the new sidecar, which stores those
// columns as decimals (those holding NaN stay text), keeping every row
// and following the source on; a second start copies nothing.
func TestNumericMigration(t *testing.T) {
	pgtest.RequireExtension(t)
	root := repoRoot(t)
	if err := osexec.Command("git", "-C", root, "cat-file", "-e", textNumericRelease+"^{commit}").Run(); err != nil {
		skipOrFailUpgrade(t, "commit %s is not in this repository's history (a shallow clone?): git fetch --unshallow", textNumericRelease)
	}
	start := time.Now()
	tree := copyInstallation(t)
	installCurrent(t, tree) // then the old sidecar over the new one
	src := archiveCommit(t, root, textNumericRelease, filepath.Join(tree.dir, "mooncake-text-numeric"))
	build := osexec.Command("go", "build", "-tags=duckdb_arrow", "-o", filepath.Join(tree.bindir, "mooncake-sidecar"), "./sidecar")
	build.Dir = src
	build.Env = append(os.Environ(), "GOFLAGS=-mod=readonly")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the sidecar of %s: %v\n%s", textNumericRelease, err, out)
	}
	t.Logf("the sidecar of %s built in %v", textNumericRelease, time.Since(start).Round(time.Second))

	c := pgtest.Start(t, pgtest.WithPGConfig(tree.pgConfig), pgtest.WithSetting("pg_mooncake.flush_interval", "1s"))
	c.CreateExtension(t, "postgres")
	conn := c.Conn(t, "postgres")
	for _, s := range []string{
		`CREATE TABLE mig_src (id int PRIMARY KEY, price numeric(12,2), nan numeric(8,3), free numeric, label text)`,
		`INSERT INTO mig_src SELECT g, g * 1.25, CASE WHEN g = 7 THEN 'NaN' ELSE g / 8.0 END, g / 3.0, 'row ' || g
		   FROM generate_series(1, 20000) g`,
		`CALL mooncake.create_table('mig_m', 'mig_src')`,
	} {
		exec(t, conn, s)
	}
	waitConverged(t, conn, "mig_src", "mig_m", 30*time.Second)
	checkIcebergTypes(t, conn, "mig_m", map[string]string{"price": "string", "nan": "string", "free": "string"})
	exec(t, conn, "UPDATE mig_src SET price = price + 1 WHERE id % 100 = 0")
	waitConverged(t, conn, "mig_src", "mig_m", 30*time.Second)
	conn = restartWithCurrent(t, c, tree, conn)
	if _, ok := waitFor(60*time.Second, func() bool { return icebergTypes(t, conn, "mig_m")["price"] == "decimal(12, 2)" }); !ok {
		t.Fatalf("mig_m.price is still %q a minute after the new sidecar started", icebergTypes(t, conn, "mig_m")["price"])
	}
	checkIcebergTypes(t, conn, "mig_m", map[string]string{"price": "decimal(12, 2)", "nan": "string", "free": "string", "label": "string"})
	waitConverged(t, conn, "mig_src", "mig_m", 30*time.Second)
	exec(t, conn, "INSERT INTO mig_src VALUES (30001, 3.5, 'NaN', 1, 'new')")
	exec(t, conn, "DELETE FROM mig_src WHERE id % 7 = 0")
	waitConverged(t, conn, "mig_src", "mig_m", 30*time.Second)
	if got, want := pgtest.QueryText(t, conn, "SELECT sum(price)::text FROM mig_m"), pgtest.QueryText(t, conn, "SELECT sum(price)::text FROM mig_src"); got != want {
		t.Errorf("sum(price) on the mirror %s; the source's %s", got, want)
	}
	copies := resyncs(t, conn, "mig_m")
	if copies != 1 {
		t.Errorf("%d copies of the source by the new sidecar; want 1", copies)
	}

	conn.Close(context.Background())
	c.Restart(t, "fast")
	c.WaitSidecar(t)
	conn = c.Conn(t, "postgres")
	exec(t, conn, "INSERT INTO mig_src VALUES (30002, 4.5, 1, 1, 'after a restart')")
	waitConverged(t, conn, "mig_src", "mig_m", 30*time.Second)
	time.Sleep(2 * time.Second)
	checkResyncs(t, conn, "mig_m", copies, "a second start")
}
