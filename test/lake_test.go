package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// lakeFixtures writes the files of test/testdata/lake_files.py (pyarrow)
// into a directory the server can read, and returns it with what the
// writer's own reader reads back.
func lakeFixtures(t *testing.T) (string, map[string]json.RawMessage) {
	t.Helper()
	if _, err := osexec.LookPath("python3"); err != nil {
		if os.Getenv("MOONCAKE_REQUIRE_PG") != "" {
			t.Fatal("python3 is required")
		}
		t.Skip("no python3")
	}
	dir, err := os.MkdirTemp("", "lake-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	out, err := osexec.Command("python3", "testdata/lake_files.py", dir).Output()
	if err != nil {
		if ee, ok := err.(*osexec.ExitError); ok && strings.Contains(string(ee.Stderr), "No module named") && os.Getenv("MOONCAKE_REQUIRE_PG") == "" {
			t.Skipf("pyarrow missing: %s", ee.Stderr)
		}
		t.Fatalf("lake_files.py: %v", err)
	}
	var want map[string]json.RawMessage
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	return dir, want
}

func textRows(t *testing.T, conn *pgx.Conn, query string) [][]*string {
	t.Helper()
	return pgRows(t, conn, query)
}

func explainVerbose(t *testing.T, conn *pgx.Conn, query string) string {
	t.Helper()
	var b strings.Builder
	for _, r := range pgRows(t, conn, "EXPLAIN (VERBOSE, COSTS OFF) "+query) {
		b.WriteString(*r[0])
		b.WriteByte('\n')
	}
	return b.String()
}

// TestLakeForeignTables reads files written by pyarrow through foreign
// tables on server mooncake, with the work in DuckDB.
func TestLakeForeignTables(t *testing.T) {
	dir, want := lakeFixtures(t)
	_, conn := startMooncake(t)
	ft := func(name, cols, path string, opts string) {
		exec(t, conn, fmt.Sprintf(`CREATE FOREIGN TABLE %s (%s) SERVER mooncake OPTIONS (path '%s'%s)`, name, cols, filepath.Join(dir, path), opts))
	}
	ft("events", "id bigint, name text, amount numeric(12,2), at timestamptz, day date, ok boolean, score float8, tags text[], meta jsonb",
		"events.parquet", ", format 'parquet'")

	var wantRows [][]*string
	json.Unmarshal(want["events"], &wantRows)
	got := textRows(t, conn, `SELECT id, name, amount, ok, day FROM events ORDER BY id`)
	if rowsText(got) != rowsText(wantRows) {
		t.Errorf("events differ from pyarrow's:\n%.500s\nwant\n%.500s", rowsText(got), rowsText(wantRows))
	}
	var sum string
	json.Unmarshal(want["sum_amount"], &sum)
	if got := queryString(t, conn, `SELECT sum(amount)::text FROM events`); got != sum {
		t.Errorf("sum(amount) = %s; want %s", got, sum)
	}
	plan := explainVerbose(t, conn, `SELECT name, count(*), sum(amount) FROM events WHERE ok GROUP BY name ORDER BY name LIMIT 3`)
	if !strings.Contains(plan, "read_parquet") || !strings.Contains(plan, "GROUP BY") || strings.Contains(plan, "HashAggregate") {
		t.Errorf("the aggregate is not pushed down:\n%s", plan)
	}
	if got := rowsText(textRows(t, conn, `SELECT tags, meta->>'v' FROM events WHERE id IN (1, 2) ORDER BY id`)); got != "{t1,NULL}|v1\n{}|v2\n" {
		t.Errorf("lists and structs = %q", got)
	}

	// a glob, a hive partitioned directory
	ft("many", "id bigint, score float8", "many_*.parquet", ", format 'parquet'")
	if n := queryInt(t, conn, `SELECT count(*) FROM many`); n != 900 {
		t.Errorf("glob: %d rows; want 900", n)
	}
	ft("parts", "id bigint, amount numeric(12,2), year int", "parts/*/*.parquet", ", format 'parquet', hive_partitioning 'true'")
	var hive int64
	json.Unmarshal(want["hive_2025"], &hive)
	if n := queryInt(t, conn, `SELECT count(*) FROM parts WHERE year = 2025`); n != hive {
		t.Errorf("hive partition 2025: %d rows; want %d", n, hive)
	}

	// CSV with a header; CSV without one, another delimiter, a NULL string
	ft("cities", "id bigint, city text, price float8", "cities.csv", ", format 'csv', header 'true'")
	var wantCities [][]*string
	json.Unmarshal(want["cities"], &wantCities)
	if got := textRows(t, conn, `SELECT id, city FROM cities ORDER BY id`); rowsText(got) != rowsText(wantCities) {
		t.Errorf("cities differ: %s", lineDiff(rowsText(got), rowsText(wantCities)))
	}
	ft("plain", "n int, label text", "plain.csv", ", format 'csv', header 'false', delimiter ';', nullstr 'NA'")
	if got := queryString(t, conn, `SELECT count(*) || '/' || count(label) FROM plain`); got != "50/43" {
		t.Errorf("plain.csv count/labels = %s; want 50/43", got)
	}
	// JSON lines
	ft("clicks", "id int, kind text, props jsonb", "events.json", ", format 'json'")
	if got := queryString(t, conn, `SELECT count(*) || ' ' || max(props->>'page') FROM clicks WHERE kind = 'click'`); got != "100 /p/8" {
		t.Errorf("json: %s; want 100 /p/8", got)
	}

	// files joined with a mirror (pushed), and with a heap table
	exec(t, conn, `CREATE TABLE names (name text PRIMARY KEY, label text)`)
	exec(t, conn, `INSERT INTO names SELECT 'name ' || g, 'label ' || g FROM generate_series(0, 12) g`)
	exec(t, conn, `CALL mooncake.create_table('names_m', 'names')`)
	waitMirror(t, conn, "names_m", 13)
	q := `SELECT n.label, count(*) FROM events e JOIN names_m n ON n.name = e.name GROUP BY 1 ORDER BY 1`
	if plan := explainVerbose(t, conn, q); strings.Count(plan, "Foreign Scan") != 1 || !strings.Contains(plan, "JOIN") {
		t.Errorf("the join of files and a mirror is not pushed:\n%s", plan)
	}
	heapQ := strings.Replace(q, "names_m", "names", 1)
	if a, b := rowsText(textRows(t, conn, q)), rowsText(textRows(t, conn, heapQ)); a != b || a == "" {
		t.Errorf("join with the mirror and with the heap table differ:\n%s\n%s", a, b)
	}

	// IMPORT FOREIGN SCHEMA infers the columns
	exec(t, conn, `CREATE SCHEMA imported`)
	exec(t, conn, fmt.Sprintf(`IMPORT FOREIGN SCHEMA files FROM SERVER mooncake INTO imported OPTIONS (path '%s', format 'parquet')`, filepath.Join(dir, "events.parquet")))
	if got := queryString(t, conn, `SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'imported.events'::regclass AND attnum > 0`); got != "id bigint, name text, amount numeric(12,2), at timestamp with time zone, day date, ok boolean, score double precision, tags text[], meta jsonb" {
		t.Errorf("imported columns: %s", got)
	}
	if got := queryString(t, conn, `SELECT count(*) || ' ' || sum(amount) || ' ' || max(meta->>'k') FROM imported.events`); got != "1000 "+sum+" 6" {
		t.Errorf("imported table: %s", got)
	}
	exec(t, conn, fmt.Sprintf(`IMPORT FOREIGN SCHEMA files FROM SERVER mooncake INTO imported OPTIONS (path '%s', format 'csv', header 'true', table 'towns')`, filepath.Join(dir, "cities.csv")))
	if n := queryInt(t, conn, `SELECT count(city) FROM imported.towns`); n != 90 {
		t.Errorf("imported csv: %d cities; want 90", n)
	}

	// errors: a missing file, a missing column, a column of another type
	ft("missing", "id int", "nope.parquet", ", format 'parquet'")
	if _, err := conn.Exec(context.Background(), `SELECT * FROM missing`); sqlState(err) != "58P01" {
		t.Errorf("missing file: %v; want 58P01", err)
	}
	ft("badcol", "id bigint, nosuch text", "events.parquet", ", format 'parquet'")
	if _, err := conn.Exec(context.Background(), `SELECT * FROM badcol`); sqlState(err) != "42703" || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("missing column: %v; want 42703 naming it", err)
	}
	ft("badtype", "id bigint, meta int", "events.parquet", ", format 'parquet'")
	if _, err := conn.Exec(context.Background(), `SELECT * FROM badtype`); sqlState(err) != "42804" || !strings.Contains(err.Error(), "meta") {
		t.Errorf("column of another type: %v; want 42804 naming it", err)
	}
	if _, err := conn.Exec(context.Background(), `CREATE FOREIGN TABLE bad (a int) SERVER mooncake OPTIONS (path '/x', format 'orc')`); sqlState(err) != "22023" {
		t.Errorf("unknown format: %v; want 22023", err)
	}
	// still healthy
	if n := queryInt(t, conn, `SELECT count(*) FROM events`); n != 1000 {
		t.Errorf("after the errors: %d rows", n)
	}

	// only trusted roles name server files
	exec(t, conn, `CREATE ROLE lakeuser LOGIN`)
	exec(t, conn, `GRANT USAGE ON FOREIGN SERVER mooncake TO lakeuser`)
	exec(t, conn, `GRANT CREATE ON SCHEMA public TO lakeuser`)
	exec(t, conn, `SET ROLE lakeuser`)
	_, err := conn.Exec(context.Background(), fmt.Sprintf(`CREATE FOREIGN TABLE sneaky (id int) SERVER mooncake OPTIONS (path '%s', format 'parquet')`, filepath.Join(dir, "events.parquet")))
	exec(t, conn, `RESET ROLE`)
	if sqlState(err) != "42501" {
		t.Errorf("a role without pg_read_server_files: %v; want 42501", err)
	}
}

// lineDiff shows the lines of got and want that differ, in order.
func lineDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	var b strings.Builder
	fmt.Fprintf(&b, "%d lines, want %d", len(g), len(w))
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			fmt.Fprintf(&b, "\nline %d: got %q, want %q", i+1, gl, wl)
			if b.Len() > 2000 {
				break
			}
		}
	}
	return b.String()
}

// TestLakeTables reads an Iceberg table written by pyiceberg and a Delta
// table written by delta-rs through foreign tables, and compares with
// their writers' readers.
func TestLakeTables(t *testing.T) {
	if _, err := osexec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	dir, err := os.MkdirTemp("", "lake-tables-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	out, err := osexec.Command("python3", "testdata/lake_tables.py", dir).Output()
	if err != nil {
		if ee, ok := err.(*osexec.ExitError); ok && strings.Contains(string(ee.Stderr), "No module named") && os.Getenv("MOONCAKE_REQUIRE_PG") == "" {
			t.Skipf("deltalake or pyiceberg missing: %s", ee.Stderr)
		}
		t.Fatalf("lake_tables.py: %v", err)
	}
	var want struct {
		DeltaPath   string      `json:"delta_path"`
		Delta       [][]*string `json:"delta"`
		IcebergPath string      `json:"iceberg_path"`
		IcebergDir  string      `json:"iceberg_dir"`
		Iceberg     [][]*string `json:"iceberg"`
		Snapshots   []struct {
			ID           string `json:"snapshot_id"`
			Sequence     int64  `json:"sequence_number"`
			TimestampMs  int64  `json:"timestamp_ms"`
			ManifestList string `json:"manifest_list"`
			Operation    string `json:"operation"`
			Count        int64  `json:"count"`
		} `json:"iceberg_snapshots"`
		Entries []struct {
			Status      string `json:"status"`
			Content     string `json:"content"`
			FilePath    string `json:"file_path"`
			RecordCount int64  `json:"record_count"`
		} `json:"iceberg_entries"`
	}
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	_, conn := startMooncake(t)
	exec(t, conn, fmt.Sprintf(`CREATE FOREIGN TABLE orders (id bigint, region text, qty int) SERVER mooncake OPTIONS (path '%s', format 'delta')`, want.DeltaPath))
	if got := textRows(t, conn, `SELECT id, region, qty FROM orders ORDER BY id`); rowsText(got) != rowsText(want.Delta) {
		t.Errorf("delta table: %s", lineDiff(rowsText(got), rowsText(want.Delta)))
	}
	if plan := explainVerbose(t, conn, `SELECT region, sum(qty) FROM orders GROUP BY region`); !strings.Contains(plan, "read_parquet") || strings.Contains(plan, "HashAggregate") {
		t.Errorf("the delta aggregate is not pushed:\n%s", plan)
	}
	exec(t, conn, `CREATE FOREIGN TABLE orders_v1 (id bigint, qty int) SERVER mooncake OPTIONS (path '`+want.DeltaPath+`', format 'delta', version '0')`)
	if n := queryInt(t, conn, `SELECT count(*) FROM orders_v1`); n != 50 {
		t.Errorf("delta version 0: %d rows; want 50", n)
	}
	for _, path := range []string{want.IcebergPath, want.IcebergDir} {
		exec(t, conn, `DROP FOREIGN TABLE IF EXISTS items`)
		exec(t, conn, fmt.Sprintf(`CREATE FOREIGN TABLE items (id bigint, label text, price float8) SERVER mooncake OPTIONS (path '%s', format 'iceberg')`, path))
		if got := textRows(t, conn, `SELECT id, label, price FROM items ORDER BY id`); rowsText(got) != rowsText(want.Iceberg) {
			t.Errorf("iceberg table at %s: %s", path, lineDiff(rowsText(got), rowsText(want.Iceberg)))
		}
	}
	// the same through the scan functions, unqualified as the manual writes them
	if got := textRows(t, conn, fmt.Sprintf(`SELECT id, region, qty FROM delta_scan('%s') AS (id bigint, region text, qty int) ORDER BY id`, want.DeltaPath)); rowsText(got) != rowsText(want.Delta) {
		t.Errorf("delta_scan: %s", lineDiff(rowsText(got), rowsText(want.Delta)))
	}
	if n := queryInt(t, conn, fmt.Sprintf(`SELECT count(*) FROM delta_scan('%s', version => 0) AS (id bigint)`, want.DeltaPath)); n != 50 {
		t.Errorf("delta_scan version 0: %d rows; want 50", n)
	}
	if got := textRows(t, conn, fmt.Sprintf(`SELECT id, label, price FROM iceberg_scan('%s') AS (id bigint, label text, price float8) ORDER BY id`, want.IcebergDir)); rowsText(got) != rowsText(want.Iceberg) {
		t.Errorf("iceberg_scan: %s", lineDiff(rowsText(got), rowsText(want.Iceberg)))
	}
	exec(t, conn, `CREATE FOREIGN TABLE nothing (id int) SERVER mooncake OPTIONS (path '/nonexistent/table', format 'delta')`)
	if _, err := conn.Exec(context.Background(), `SELECT * FROM nothing`); sqlState(err) != "58P01" {
		t.Errorf("a missing delta table: %v; want 58P01", err)
	}

	// iceberg_snapshots: what pyiceberg reports, in commit order
	var wantSnaps strings.Builder
	for _, s := range want.Snapshots {
		fmt.Fprintf(&wantSnaps, "%d|%s|%d|%s|%s\n", s.Sequence, s.ID, s.TimestampMs, s.ManifestList, s.Operation)
	}
	for _, path := range []string{want.IcebergDir, want.IcebergPath} {
		got := rowsText(textRows(t, conn, fmt.Sprintf(`SELECT sequence_number, snapshot_id, (extract(epoch FROM timestamp_ms) * 1000)::bigint,
			manifest_list, operation FROM iceberg_snapshots('%s')`, path)))
		if got != wantSnaps.String() {
			t.Errorf("iceberg_snapshots(%s): %s", path, lineDiff(got, wantSnaps.String()))
		}
	}
	// iceberg_scan of each snapshot, by the id iceberg_snapshots gives, has
	// that snapshot's rows
	for i, s := range want.Snapshots {
		id := queryString(t, conn, fmt.Sprintf(`SELECT snapshot_id::text FROM iceberg_snapshots('%s') ORDER BY sequence_number OFFSET %d LIMIT 1`, want.IcebergDir, i))
		if id != s.ID {
			t.Errorf("snapshot %d: id %s; pyiceberg %s", i+1, id, s.ID)
		}
		if n := queryInt(t, conn, fmt.Sprintf(`SELECT count(*) FROM iceberg_scan('%s', snapshot_id => %s) AS (id bigint)`, want.IcebergDir, id)); n != s.Count {
			t.Errorf("iceberg_scan of snapshot %s (sequence number %d): %d rows; pyiceberg reads %d", id, s.Sequence, n, s.Count)
		}
	}
	// iceberg_metadata: the current snapshot's manifest entries, as pyiceberg's inspect.entries()
	var wantEntries []string
	for _, e := range want.Entries {
		wantEntries = append(wantEntries, fmt.Sprintf("%s|%s|%s|%s|%d", e.FilePath, e.Status, e.Content, "PARQUET", e.RecordCount))
	}
	slices.Sort(wantEntries)
	got := rowsText(textRows(t, conn, fmt.Sprintf(`SELECT file_path, status, content, file_format, record_count FROM iceberg_metadata('%s') ORDER BY 1, 2`, want.IcebergDir)))
	if w := strings.Join(wantEntries, "\n") + "\n"; got != w {
		t.Errorf("iceberg_metadata: %s", lineDiff(got, w))
	}
	last := want.Snapshots[len(want.Snapshots)-1]
	if got := queryString(t, conn, fmt.Sprintf(`SELECT string_agg(DISTINCT manifest_content || ' ' || (manifest_sequence_number <= %d) || ' ' || (data_sequence_number <= %d), ',')
		FROM iceberg_metadata('%s')`, last.Sequence, last.Sequence, want.IcebergDir)); got != "DATA true true" {
		t.Errorf("iceberg_metadata manifest columns: %s", got)
	}
	// of the first snapshot: its one data file, added, live
	first := want.Snapshots[0]
	if got := queryString(t, conn, fmt.Sprintf(`SELECT count(*) || ' ' || string_agg(status || ' ' || record_count, ',') || ' ' || max(manifest_sequence_number)
		FROM iceberg_metadata('%s', snapshot_id => %s)`, want.IcebergPath, first.ID)); got != "1 ADDED 30 1" {
		t.Errorf("iceberg_metadata of the first snapshot: %s", got)
	}
	// errors: a missing table, a malformed one, a snapshot it lacks, a role without pg_read_server_files
	if _, err := conn.Exec(context.Background(), `SELECT * FROM iceberg_snapshots('/nonexistent/iceberg')`); sqlState(err) != "58P01" || !strings.Contains(err.Error(), "iceberg") {
		t.Errorf("iceberg_snapshots of a missing table: %v; want 58P01 naming it", err)
	}
	bad := filepath.Join(dir, "bad_iceberg")
	os.MkdirAll(filepath.Join(bad, "metadata"), 0o755)
	os.WriteFile(filepath.Join(bad, "metadata", "v1.metadata.json"), []byte(`{"format-version": 2, "oops"`), 0o644)
	for _, q := range []string{`SELECT * FROM iceberg_snapshots('%s')`, `SELECT * FROM iceberg_metadata('%s')`} {
		if _, err := conn.Exec(context.Background(), fmt.Sprintf(q, bad)); sqlState(err) != "22P04" || !strings.Contains(err.Error(), `"bad_iceberg"`) {
			t.Errorf("%s of a malformed table: %v; want 22P04 naming it", q, err)
		}
	}
	if _, err := conn.Exec(context.Background(), fmt.Sprintf(`SELECT * FROM iceberg_metadata('%s', 42)`, want.IcebergDir)); sqlState(err) != "22023" {
		t.Errorf("iceberg_metadata of a snapshot the table lacks: %v; want 22023", err)
	}
	// the same error for the scans, and an empty directory is no table
	for _, q := range []string{
		fmt.Sprintf(`SELECT count(*) FROM iceberg_scan('%s', snapshot_id => 42) AS (id bigint)`, want.IcebergDir),
		fmt.Sprintf(`SELECT count(*) FROM delta_scan('%s', version => 4242) AS (id bigint)`, want.DeltaPath),
	} {
		if _, err := conn.Exec(context.Background(), q); sqlState(err) != "22023" {
			t.Errorf("%s: %v; want 22023", q, err)
		}
	}
	empty := filepath.Join(dir, "empty_iceberg")
	os.MkdirAll(filepath.Join(empty, "metadata"), 0o755)
	if _, err := conn.Exec(context.Background(), fmt.Sprintf(`SELECT count(*) FROM iceberg_scan('%s') AS (id bigint)`, empty)); sqlState(err) != "58P01" {
		t.Errorf("iceberg_scan of a directory without metadata: %v; want 58P01", err)
	}
	exec(t, conn, `CREATE ROLE icebergmeta LOGIN`)
	exec(t, conn, `SET ROLE icebergmeta`)
	_, err1 := conn.Exec(context.Background(), fmt.Sprintf(`SELECT * FROM iceberg_snapshots('%s')`, want.IcebergDir))
	_, err2 := conn.Exec(context.Background(), fmt.Sprintf(`SELECT * FROM iceberg_metadata('%s')`, want.IcebergDir))
	exec(t, conn, `RESET ROLE`)
	if sqlState(err1) != "42501" || sqlState(err2) != "42501" {
		t.Errorf("a role without pg_read_server_files: %v, %v; want 42501", err1, err2)
	}
	exec(t, conn, `GRANT pg_read_server_files TO icebergmeta`)
	exec(t, conn, `SET ROLE icebergmeta`)
	n := queryInt(t, conn, fmt.Sprintf(`SELECT count(*) FROM iceberg_snapshots('%s')`, want.IcebergDir))
	exec(t, conn, `RESET ROLE`)
	if n != int64(len(want.Snapshots)) {
		t.Errorf("a member of pg_read_server_files: %d snapshots; want %d", n, len(want.Snapshots))
	}
}

// TestLakeFunctions runs the manual's data lake functions in FROM, with
// the work pushed to DuckDB.
func TestLakeFunctions(t *testing.T) {
	dir, want := lakeFixtures(t)
	_, conn := startMooncake(t)
	p := func(name string) string { return filepath.Join(dir, name) }

	var wantRows [][]*string
	json.Unmarshal(want["events"], &wantRows)
	q := fmt.Sprintf(`SELECT id, name, amount, ok, day FROM mooncake.read_parquet('%s') AS (id bigint, name text, amount numeric(12,2), ok boolean, day date) ORDER BY id`, p("events.parquet"))
	if got := textRows(t, conn, q); rowsText(got) != rowsText(wantRows) {
		t.Errorf("read_parquet: %s", lineDiff(rowsText(got), rowsText(wantRows)))
	}
	agg := fmt.Sprintf(`SELECT name, count(*) FROM mooncake.read_parquet('%s') AS (name text, ok boolean) WHERE ok GROUP BY name ORDER BY name LIMIT 3`, p("events.parquet"))
	if plan := explainVerbose(t, conn, agg); !strings.Contains(plan, "read_parquet") || strings.Contains(plan, "HashAggregate") || strings.Contains(plan, "Function Scan") {
		t.Errorf("read_parquet's aggregate is not pushed down:\n%s", plan)
	}
	// a glob; CSV with named options; JSON whole objects with the manual's json_extract_path_text
	if n := queryInt(t, conn, fmt.Sprintf(`SELECT count(*) FROM mooncake.read_parquet('%s') AS (id bigint)`, p("many_*.parquet"))); n != 900 {
		t.Errorf("glob: %d rows", n)
	}
	// read_csv without a header: DuckDB names the columns column0, column1...
	if got := queryString(t, conn, fmt.Sprintf(`SELECT count(*) || '/' || count(r['column1']) FROM mooncake.read_csv('%s', header => false, delimiter => ';', nullstr => 'NA') r`, p("plain.csv"))); got != "50/43" {
		t.Errorf("read_csv: %s; want 50/43", got)
	}
	jq := fmt.Sprintf(`SELECT json_extract_path_text(data, 'id')::int AS id, json_extract_path_text(data, 'kind') AS kind
		FROM mooncake.read_json('%s') AS (data jsonb) WHERE json_extract_path_text(data, 'kind') = 'view' ORDER BY 1 LIMIT 2`, p("events.json"))
	if got := rowsText(textRows(t, conn, jq)); got != "2|view\n4|view\n" {
		t.Errorf("read_json whole objects: %q", got)
	}
	// the manual's join with a heap table (PostgreSQL puts the alias before the
	// column definition list: AS e (...), not AS (...) e as the manual writes)
	exec(t, conn, `CREATE TABLE users (id bigint PRIMARY KEY, email text)`)
	exec(t, conn, `INSERT INTO users SELECT g, 'u' || g || '@x' FROM generate_series(1, 20) g`)
	jq = fmt.Sprintf(`SELECT u.email, e.name FROM users u JOIN mooncake.read_parquet('%s') AS e (id bigint, name text) ON u.id = e.id WHERE e.id < 4 ORDER BY 1`, p("events.parquet"))
	if got := rowsText(textRows(t, conn, jq)); got != "u1@x|name 1\nu2@x|name 2\nu3@x|name 3\n" {
		t.Errorf("join with a heap table: %q", got)
	}
	// the same call twice in a session reads through one table
	before := queryInt(t, conn, `SELECT count(*) FROM pg_class WHERE relname LIKE 'mooncake_lake_%'`)
	queryInt(t, conn, fmt.Sprintf(`SELECT count(*) FROM mooncake.read_parquet('%s') AS (id bigint)`, p("many_*.parquet")))
	if after := queryInt(t, conn, `SELECT count(*) FROM pg_class WHERE relname LIKE 'mooncake_lake_%'`); after != before {
		t.Errorf("a repeated call made a new table (%d, then %d)", before, after)
	}
	// arrays of paths
	var many []int64
	json.Unmarshal(want["many_rows"], &many)
	// a file added to the glob's directory, or removed, is seen by the
	// next query: the glob is listed again for each
	data, err := os.ReadFile(p("many_0.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p("many_9.parquet"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	globQ := fmt.Sprintf(`SELECT count(*) FROM mooncake.read_parquet('%s') AS (id bigint)`, p("many_*.parquet"))
	if n := queryInt(t, conn, globQ); n != 900+many[0] {
		t.Errorf("glob after a file was added: %d rows; want %d", n, 900+many[0])
	}
	os.Remove(p("many_9.parquet"))
	if n := queryInt(t, conn, globQ); n != 900 {
		t.Errorf("glob after a file was removed: %d rows; want 900", n)
	}
	q = fmt.Sprintf(`SELECT count(*) FROM mooncake.read_parquet(ARRAY['%s', '%s']) AS (id bigint, score float8)`, p("many_0.parquet"), p("many_2.parquet"))
	if n := queryInt(t, conn, q); n != many[0]+many[2] {
		t.Errorf("read_parquet of two paths: %d rows; want %d", n, many[0]+many[2])
	}
	if plan := explainVerbose(t, conn, q); !strings.Contains(plan, "many_0.parquet', '") || !strings.Contains(plan, "count(*)") {
		t.Errorf("read_parquet of two paths is not one pushed scan:\n%s", plan)
	}
	if n := queryInt(t, conn, fmt.Sprintf(`SELECT count(*) FROM mooncake.read_json(path => ARRAY['%s', '%s']) AS (id int)`, p("events.json"), p("events.json"))); n != 400 {
		t.Errorf("read_json of the same file twice: %d rows; want 400", n)
	}
	for _, c := range []struct{ arg, state string }{
		{`ARRAY[]::text[]`, "22023"},
		{fmt.Sprintf(`ARRAY['%s', NULL]`, p("events.parquet")), "22004"},
		{fmt.Sprintf(`ARRAY['%s', '']`, p("events.parquet")), "22023"},
	} {
		if _, err := conn.Exec(context.Background(), `SELECT * FROM mooncake.read_parquet(`+c.arg+`) AS (id int)`); sqlState(err) != c.state {
			t.Errorf("read_parquet(%s): %v; want %s", c.arg, err, c.state)
		}
	}

	// errors
	if _, err := conn.Exec(context.Background(), fmt.Sprintf(`SELECT * FROM mooncake.read_parquet('%s') AS (id int)`, p("nope.parquet"))); sqlState(err) != "58P01" {
		t.Errorf("missing file: %v; want 58P01", err)
	}
	if _, err := conn.Exec(context.Background(), `SELECT mooncake.read_parquet('/x')`); sqlState(err) == "" {
		t.Errorf("a call outside FROM: %v; want an error", err)
	}
	exec(t, conn, `CREATE ROLE lakefn LOGIN`)
	exec(t, conn, `SET ROLE lakefn`)
	for _, q := range []string{
		fmt.Sprintf(`SELECT * FROM mooncake.read_parquet('%s') AS (id int)`, p("events.parquet")),
		fmt.Sprintf(`SELECT * FROM mooncake.read_parquet(ARRAY['%s']) AS (id int)`, p("events.parquet")),
		fmt.Sprintf(`SELECT r['id'] FROM mooncake.read_csv('%s') r`, p("cities.csv")),
	} {
		if _, err := conn.Exec(context.Background(), q); sqlState(err) != "42501" {
			t.Errorf("a role without pg_read_server_files: %s: %v; want 42501", q, err)
		}
	}
	exec(t, conn, `RESET ROLE`)
}

// TestLakeCSVRows reads CSV files through mooncake.read_csv without a
// column list: each row a mooncake.row, r['column'] its column (text, or
// cast), SELECT * the file's own columns; compared with pyarrow's reading.
func TestLakeCSVRows(t *testing.T) {
	dir, want := lakeFixtures(t)
	_, conn := startMooncake(t)
	ctx := context.Background()
	cities := filepath.Join(dir, "cities.csv")

	var wantCities [][]*string
	json.Unmarshal(want["cities"], &wantCities)
	q := fmt.Sprintf(`SELECT r['id'], r['city'] FROM mooncake.read_csv('%s') r ORDER BY r['id']::int`, cities)
	if got := textRows(t, conn, q); rowsText(got) != rowsText(wantCities) {
		t.Errorf("r['id'], r['city']: %s", lineDiff(rowsText(got), rowsText(wantCities)))
	}
	// the manual's form: casts, a filter on a cast column, in DuckDB
	q = fmt.Sprintf(`SELECT r['id']::INT, r['city'], r['price']::float8 FROM mooncake.read_csv('%s', auto_detect => true) r WHERE r['price']::float8 > 60`, cities)
	plan := explainVerbose(t, conn, q)
	if !strings.Contains(plan, "read_csv(") || !strings.Contains(plan, `WHERE (r1."price" > `) || strings.Contains(plan, "Filter:") {
		t.Errorf("the filter on r['price'] is not pushed:\n%s", plan)
	}
	var over60, over120 int64
	json.Unmarshal(want["cities_price_over_60"], &over60)
	json.Unmarshal(want["cities_price_over_120"], &over120)
	if n := int64(len(textRows(t, conn, q))); n != over60 {
		t.Errorf("price > 60: %d rows; want %d", n, over60)
	}

	// A malformed file (an unterminated quote, rows of other widths) is an
	// error, not the few rows that fit; lines above the data are read with
	// skip => N, which the hint gives.
	for name, content := range map[string]string{
		"malformed.csv": "a,b,c\n1,2,3\n4,\"unterminated,6\n7,8\n9,10,11,12\n",
		"titled.csv":    "a title line\n\na,b,c\n1,2,3\n4,5,6\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for file, skip := range map[string]string{"malformed.csv": "skip => 4", "titled.csv": "skip => 2"} {
		for _, q := range []string{
			`SELECT * FROM mooncake.read_csv('` + filepath.Join(dir, file) + `')`,
			`SELECT count(*) FROM mooncake.read_csv('` + filepath.Join(dir, file) + `') r`,
			`SELECT * FROM mooncake.read_csv('` + filepath.Join(dir, file) + `', header => true) r`,
		} {
			_, err := conn.Exec(ctx, q)
			if sqlState(err) != "22P04" || !strings.Contains(hintOf(err), skip) {
				t.Errorf("%s: %v (hint %q); want 22P04 with a hint to pass %s", q, err, hintOf(err), skip)
			}
		}
	}
	if got := textRows(t, conn, `SELECT r['a'], r['c'] FROM mooncake.read_csv('`+filepath.Join(dir, "titled.csv")+`', skip => 2) r ORDER BY 1`); rowsText(got) != "1|3\n4|6\n" {
		t.Errorf("titled.csv with skip => 2: %q", rowsText(got))
	}

	// SELECT *: the file's names and types
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT * FROM mooncake.read_csv('%s', header => true, delimiter => ',', auto_detect => true)`, cities))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var types []uint32
	for _, f := range rows.FieldDescriptions() {
		names = append(names, f.Name)
		types = append(types, f.DataTypeOID)
	}
	n := 0
	for rows.Next() {
		n++
	}
	rows.Close()
	var wantCols []string
	json.Unmarshal(want["cities_columns"], &wantCols)
	if strings.Join(names, ",") != strings.Join(wantCols, ",") || n != len(wantCities) {
		t.Errorf("SELECT *: columns %v, %d rows; want %v, %d", names, n, wantCols, len(wantCities))
	}
	if fmt.Sprint(types) != "[20 25 701]" { // bigint, text, double precision, as pyarrow wrote them
		t.Errorf("SELECT *: types %v", types)
	}

	// a prepared statement, run more than once (pgx prepares it)
	pq := fmt.Sprintf(`SELECT count(*) FROM mooncake.read_csv('%s') r WHERE r['price']::float8 > $1`, cities)
	for i, c := range []struct {
		min  float64
		want int64
	}{{60, over60}, {120, over120}, {60, over60}} {
		var got int64
		if err := conn.QueryRow(ctx, pq, c.min).Scan(&got); err != nil || got != c.want {
			t.Errorf("prepared, run %d: %d, %v; want %d", i, got, err, c.want)
		}
	}

	// grouped, in DuckDB; a CTE and a sublink
	q = fmt.Sprintf(`SELECT r['city'] AS city, count(*), max(r['price']::float8) FROM mooncake.read_csv('%s') r GROUP BY r['city'] ORDER BY 1 NULLS FIRST`, cities)
	if plan := explainVerbose(t, conn, q); !strings.Contains(plan, "GROUP BY") || strings.Contains(plan, "HashAggregate") || strings.Contains(plan, "GroupAggregate") {
		t.Errorf("the aggregate is not pushed:\n%s", plan)
	}
	groups := textRows(t, conn, q)
	if len(groups) != 5 || groups[0][0] != nil {
		t.Errorf("groups: %s", rowsText(groups))
	}
	q = fmt.Sprintf(`WITH c AS (SELECT r['id']::bigint AS id FROM mooncake.read_csv('%[1]s') r WHERE r['city'] IS NULL)
		SELECT count(*) FROM c WHERE id IN (SELECT s['id']::bigint FROM mooncake.read_csv('%[1]s') s WHERE s['price']::float8 > 60)`, cities)
	var nullOver60 int64
	json.Unmarshal(want["cities_null_over_60"], &nullOver60)
	if n := queryInt(t, conn, q); n != nullOver60 {
		t.Errorf("CTE and sublink: %d; want %d", n, nullOver60)
	}
	nulls := 0
	for _, r := range wantCities {
		if r[1] == nil {
			nulls++
		}
	}

	// joins: with a heap table, and with a mirror (pushed to DuckDB)
	exec(t, conn, `CREATE TABLE labels (id bigint PRIMARY KEY, label text)`)
	exec(t, conn, `INSERT INTO labels SELECT g, 'label ' || (g % 4) FROM generate_series(1, 60) g`)
	exec(t, conn, `CALL mooncake.create_table('labels_m', 'labels')`)
	waitMirror(t, conn, "labels_m", 60)
	jq := fmt.Sprintf(`SELECT l.label, count(*), max(c['city']) FROM mooncake.read_csv('%s') c JOIN labels_m l ON l.id = c['id']::bigint GROUP BY 1 ORDER BY 1`, cities)
	if plan := explainVerbose(t, conn, jq); strings.Count(plan, "Foreign Scan") != 1 || !strings.Contains(plan, "JOIN") {
		t.Errorf("the join of read_csv and a mirror is not pushed:\n%s", plan)
	}
	heapQ := strings.Replace(jq, "labels_m", "labels", 1)
	if a, b := rowsText(textRows(t, conn, jq)), rowsText(textRows(t, conn, heapQ)); a != b || a == "" {
		t.Errorf("join with the mirror and with the heap table differ:\n%s\n%s", a, b)
	}

	// several files
	if n := queryInt(t, conn, fmt.Sprintf(`SELECT count(*) FROM mooncake.read_csv(ARRAY['%[1]s', '%[1]s']) r WHERE r['city'] IS NOT NULL`, cities)); n != 2*int64(len(wantCities)-nulls) {
		t.Errorf("read_csv of two paths: %d", n)
	}

	// errors: a column the file lacks, the row as a value, a NULL path, a missing file
	for _, c := range []struct{ q, state, has string }{
		{fmt.Sprintf(`SELECT r['nope'] FROM mooncake.read_csv('%s') r`, cities), "42703", `"nope"`},
		{fmt.Sprintf(`SELECT count(r) FROM mooncake.read_csv('%s') r`, cities), "0A000", "r['column']"},
		{fmt.Sprintf(`SELECT * FROM mooncake.read_csv(ARRAY['%s', NULL]) r`, cities), "22004", ""},
		{fmt.Sprintf(`SELECT * FROM mooncake.read_csv('%s') r`, filepath.Join(dir, "nope.csv")), "58P01", ""},
	} {
		_, err := conn.Exec(ctx, c.q)
		if sqlState(err) != c.state || !strings.Contains(errorText(err), c.has) {
			t.Errorf("%s: %v; want %s naming %s", c.q, err, c.state, c.has)
		}
	}
	if n := queryInt(t, conn, fmt.Sprintf(`SELECT count(*) FROM mooncake.read_csv('%s') r`, cities)); n != int64(len(wantCities)) {
		t.Errorf("after the errors: %d rows", n)
	}
}

// errorText is an error's message and hint.
func errorText(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Message + " " + pe.Hint
	}
	if err == nil {
		return ""
	}
	return err.Error()
}
