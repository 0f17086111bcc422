package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgmooncake/mooncake/test/pgtest"
	"github.com/pgmooncake/mooncake/test/s3test"
)

// TestLakeS3 reads files written by pyarrow from a real S3-compatible
// server (moto), through the manual's functions and foreign tables: the
// answers equal those of the same files read locally; a narrow query of a
// wide Parquet object fetches only the column chunks it reads (bytes
// counted by a proxy in front of the server) and a repeated query
// fetches nothing; secrets choose by scope; errors.
func TestLakeS3(t *testing.T) {
	dir, _ := lakeFixtures(t)
	s3 := s3test.Start(t)
	s3.Bucket(t, "lake")
	s3.Bucket(t, "other")
	s3.Upload(t, dir, "lake", "files")

	wideDir := t.TempDir()
	out, err := osexec.Command("python3", "testdata/lake_s3_files.py", wideDir, "100000").Output()
	if err != nil {
		t.Fatalf("lake_s3_files.py: %v", err)
	}
	var wide struct {
		Size  int64  `json:"size"`
		Rows  int64  `json:"rows"`
		Limit int64  `json:"limit"`
		Sum   string `json:"sum_c3"`
		Count int64  `json:"count"`
	}
	if err := json.Unmarshal(out, &wide); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(wideDir, "wide.parquet"))
	s3.Put(t, "lake", "wide/wide.parquet", data)

	ctx := context.Background()
	c, conn := startMooncake(t, pgtest.WithSetting("pg_mooncake.lake_cache_size", "'64MB'"))
	exec(t, conn, s3.SecretSQL("lake_secret", "s3://lake/"))
	exec(t, conn, s3.SecretSQL("catch_all", ""))
	// A secret of another bucket, pointing nowhere: the scope chooses.
	exec(t, conn, `SELECT mooncake.create_secret('nowhere', 'S3', 'k', 's', '{"ENDPOINT": "127.0.0.1:1", "URL_STYLE": "path", "USE_SSL": "false", "SCOPE": "s3://other"}')`)

	same := func(remoteQ, localQ string) {
		t.Helper()
		got := rowsText(textRows(t, conn, remoteQ))
		want := rowsText(textRows(t, conn, localQ))
		if got != want {
			t.Errorf("%s\ndiffers from the local files':\n%s", remoteQ, lineDiff(got, want))
		}
		if strings.Count(want, "\n") < 1 {
			t.Errorf("%s: no rows", localQ)
		}
	}
	local := func(q string) string { return strings.ReplaceAll(q, "s3://lake/files", dir) }
	check := func(q string) {
		t.Helper()
		same(q, local(q))
	}

	// The manual's examples, on S3.
	check(`SELECT id, name, amount, day FROM mooncake.read_parquet('s3://lake/files/events.parquet') AS (id bigint, name text, amount numeric(12,2), day date)
		WHERE day > '2024-06-01' ORDER BY id`)
	check(`SELECT count(*), sum(score) FROM mooncake.read_parquet('s3://lake/files/many_*.parquet') AS (id bigint, score float8)`)
	check(`SELECT year, count(*), sum(amount) FROM mooncake.read_parquet('s3://lake/files/parts', hive_partitioning => true) AS (id bigint, amount numeric(12,2), year int)
		GROUP BY year ORDER BY year`)
	check(`SELECT json_extract_path_text(data, 'id')::int AS id, json_extract_path_text(data, 'kind') AS kind
		FROM mooncake.read_json('s3://lake/files/events.json') AS (data jsonb) ORDER BY 1 LIMIT 20`)
	check(`SELECT r['id']::int AS id, r['city'] FROM mooncake.read_csv('s3://lake/files/cities.csv', auto_detect => true) r
		WHERE r['price']::float8 > 10 ORDER BY 1`)
	// SELECT * of read_csv's rows: the file's own columns (in any order of rows).
	csvAll := `SELECT * FROM mooncake.read_csv('s3://lake/files/cities.csv', header => true, delimiter => ',', auto_detect => true)`
	gotAll, wantAll := textRows(t, conn, csvAll), textRows(t, conn, local(csvAll))
	sortRows(gotAll)
	sortRows(wantAll)
	if rowsText(gotAll) != rowsText(wantAll) || len(wantAll) != 100 || len(wantAll[0]) != 3 {
		t.Errorf("%s:\n%s", csvAll, lineDiff(rowsText(gotAll), rowsText(wantAll)))
	}
	check(`SELECT count(*), sum(score) FROM mooncake.read_parquet(ARRAY['s3://lake/files/many_0.parquet', 's3://lake/files/many_2.parquet']) AS (id bigint, score float8)`)
	exec(t, conn, `CREATE FOREIGN TABLE cities (id bigint, city text, price float8) SERVER mooncake OPTIONS (path 's3://lake/files/cities.csv', format 'csv', header 'true')`)
	exec(t, conn, fmt.Sprintf(`CREATE FOREIGN TABLE cities_local (id bigint, city text, price float8) SERVER mooncake OPTIONS (path '%s/cities.csv', format 'csv', header 'true')`, dir))
	same(`SELECT * FROM cities WHERE price > 10 ORDER BY id`, `SELECT * FROM cities_local WHERE price > 10 ORDER BY id`)
	exec(t, conn, `IMPORT FOREIGN SCHEMA files FROM SERVER mooncake INTO public OPTIONS (path 's3://lake/files/events.parquet', format 'parquet')`)
	same(`SELECT id, name, ok FROM events WHERE ok ORDER BY id`, local(`SELECT id, name, ok FROM mooncake.read_parquet('s3://lake/files/events.parquet') AS (id bigint, name text, ok boolean) WHERE ok ORDER BY id`))
	// Joins with heap tables, pushed work in EXPLAIN.
	exec(t, conn, `CREATE TABLE users (id bigint PRIMARY KEY, email text)`)
	exec(t, conn, `INSERT INTO users SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 50) g`)
	check(`SELECT u.email, e.name FROM users u JOIN mooncake.read_parquet('s3://lake/files/events.parquet') AS e (id bigint, name text) ON u.id = e.id ORDER BY u.id`)
	plan := explainVerbose(t, conn, `SELECT name, count(*) FROM mooncake.read_parquet('s3://lake/files/events.parquet') AS (id bigint, name text) WHERE id > 10 GROUP BY name`)
	if !strings.Contains(plan, "GROUP BY") || !strings.Contains(plan, "s3://lake/files/events.parquet") {
		t.Errorf("the aggregate is not pushed down, or the plan does not name the object:\n%s", plan)
	}

	// Range reads: 2 of 31 columns of a wide object.
	before := s3.Sent()
	var sum string
	var count int64
	q := fmt.Sprintf(`SELECT sum(c3)::text, count(*) FROM mooncake.read_parquet('s3://lake/wide/wide.parquet') AS (c3 bigint, c7 bigint) WHERE c7 > %d`, wide.Limit)
	if err := conn.QueryRow(ctx, q).Scan(&sum, &count); err != nil {
		t.Fatal(err)
	}
	if sum != wide.Sum || count != wide.Count {
		t.Errorf("wide: sum %s count %d, pyarrow says %s and %d", sum, count, wide.Sum, wide.Count)
	}
	narrow := s3.Sent() - before
	t.Logf("2 of 31 columns of a %d-byte Parquet object on S3: %d bytes transferred (%.1f%%)", wide.Size, narrow, 100*float64(narrow)/float64(wide.Size))
	if narrow*4 >= wide.Size {
		t.Errorf("a query of 2 of 31 columns transferred %d of %d bytes", narrow, wide.Size)
	}
	before = s3.Sent()
	if err := conn.QueryRow(ctx, q).Scan(&sum, &count); err != nil {
		t.Fatal(err)
	}
	if again := s3.Sent() - before; again != 0 || sum != wide.Sum {
		t.Errorf("the repeated query transferred %d bytes (want 0 from the cache), sum %s", again, sum)
	}
	// Another column: only its chunks come.
	before = s3.Sent()
	var maxS string
	if err := conn.QueryRow(ctx, `SELECT max(s) FROM mooncake.read_parquet('s3://lake/wide/wide.parquet') AS (s text)`).Scan(&maxS); err != nil {
		t.Fatal(err)
	}
	if maxS != "value 999" {
		t.Errorf("max(s) = %q", maxS)
	}
	t.Logf("one more column: %d bytes", s3.Sent()-before)
	var fetched, served, cached int64
	if err := conn.QueryRow(ctx, `SELECT fetched_bytes, served_from_cache_bytes, cached_bytes FROM mooncake.lake_cache_status()`).Scan(&fetched, &served, &cached); err != nil {
		t.Fatal(err)
	}
	if fetched <= 0 || served <= 0 || cached <= 0 || cached > 64<<20 {
		t.Errorf("lake_cache_status: fetched %d, served %d, cached %d", fetched, served, cached)
	}

	// The whole object through the cache equals pyarrow's answer too.
	var all int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM mooncake.read_parquet('s3://lake/wide/wide.parquet') AS (c0 bigint, c29 bigint, s text) WHERE c29 >= 0 AND s <> ''`).Scan(&all); err != nil || all != wide.Rows {
		t.Errorf("rows of wide: %d (%v), want %d", all, err, wide.Rows)
	}

	// Errors, each leaving the sidecar healthy.
	wantErr := func(code, q string) {
		t.Helper()
		_, err := conn.Exec(ctx, q)
		if sqlState(err) != code {
			t.Errorf("%s: got %v, want SQLSTATE %s", q, err, code)
		}
	}
	wantErr("58P01", `SELECT * FROM mooncake.read_parquet('s3://lake/files/nope.parquet') AS (id bigint)`)
	wantErr("58P01", `SELECT * FROM mooncake.read_parquet('s3://lake/files/nope_*.parquet') AS (id bigint)`)
	wantErr("58P01", `SELECT * FROM mooncake.read_parquet('s3://nobucket/x.parquet') AS (id bigint)`)
	wantErr("42703", `SELECT * FROM mooncake.read_parquet('s3://lake/files/events.parquet') AS (nope bigint)`)
	wantErr("22P04", `SELECT * FROM mooncake.read_parquet('s3://lake/files/cities.csv') AS (id bigint)`)
	wantErr("0A000", `SELECT * FROM mooncake.read_parquet('gs://lake/files/events.parquet') AS (id bigint)`)
	wantErr("58030", `SELECT * FROM mooncake.read_parquet('s3://other/x.parquet') AS (id bigint)`) // the scoped secret's endpoint refuses
	wantErr("42710", s3.SecretSQL("lake_secret", ""))
	wantErr("22023", `SELECT mooncake.create_secret('bad', 'S3', 'k', 's', '{"SCOPE": "gs://x"}')`)
	wantErr("22023", `SELECT mooncake.create_secret('bad', 'GCS', 'k', 's')`)
	wantErr("22023", `SELECT mooncake.create_secret('bad', 'S3', 'k', 's', '{"ENDPONT": "x"}')`)
	wantErr("42704", `SELECT mooncake.drop_secret('nope')`)
	var one int
	if err := conn.QueryRow(ctx, `SELECT 1 FROM mooncake.read_parquet('s3://lake/files/events.parquet') AS (id bigint) WHERE id = 1`).Scan(&one); err != nil {
		t.Errorf("after the errors: %v", err)
	}

	// Privileges: secrets are for superusers; reading s3:// paths takes
	// mooncake_user (or pg_read_server_files).
	exec(t, conn, `CREATE ROLE plain LOGIN; CREATE ROLE lake_reader LOGIN IN ROLE mooncake_user`)
	plain := connAs(t, c, "plain")
	for _, q := range []string{
		`SELECT * FROM mooncake.secrets`,
		s3.SecretSQL("mine", ""),
		`SELECT mooncake.drop_secret('lake_secret')`,
		`SELECT count(*) FROM mooncake.read_parquet('s3://lake/files/events.parquet') AS (id bigint)`,
	} {
		if _, err := plain.Exec(ctx, q); sqlState(err) != "42501" {
			t.Errorf("as a plain role, %s: %v, want 42501", q, err)
		}
	}
	reader := connAs(t, c, "lake_reader")
	var n int64
	if err := reader.QueryRow(ctx, `SELECT count(*) FROM mooncake.read_parquet('s3://lake/files/events.parquet') AS (id bigint)`).Scan(&n); err != nil || n != 1000 {
		t.Errorf("as a member of mooncake_user: %d, %v", n, err)
	}
	if _, err := reader.Exec(ctx, `SELECT * FROM mooncake.read_parquet('/etc/passwd') AS (id bigint)`); sqlState(err) != "42501" {
		t.Errorf("a member of mooncake_user read a server file: %v", err)
	}

	// A dropped secret is no longer used (after the sidecar's brief cache).
	exec(t, conn, `SELECT mooncake.drop_secret('lake_secret')`)
	exec(t, conn, `SELECT mooncake.create_secret('lake_secret', 'S3', 'k', 's', '{"ENDPOINT": "127.0.0.1:1", "URL_STYLE": "path", "USE_SSL": "false", "SCOPE": "s3://lake"}')`)
	if _, ok := waitFor(10e9, func() bool {
		_, err := conn.Exec(ctx, `SELECT * FROM mooncake.read_parquet('s3://lake/files/many_0.parquet') AS (id bigint)`)
		return sqlState(err) == "58030"
	}); !ok {
		t.Errorf("the replaced secret is still used")
	}
}

func sortRows(rows [][]*string) {
	key := func(r []*string) string {
		var b strings.Builder
		for _, v := range r {
			if v == nil {
				b.WriteString("\x00NULL")
			} else {
				b.WriteString(*v)
			}
			b.WriteByte('\x01')
		}
		return b.String()
	}
	slices.SortFunc(rows, func(a, b []*string) int { return strings.Compare(key(a), key(b)) })
}

// connAs connects to database postgres as role user.
func connAs(t *testing.T, c *pgtest.Cluster, user string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), strings.Replace(c.ConnString("postgres"), "user=postgres", "user="+user, 1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestLakeS3Tables reads an Iceberg table written by pyiceberg and a Delta
// table written by delta-rs straight to S3 (deletes, a schema change, an
// update), through iceberg_scan and delta_scan as the manual writes them,
// and compares with what pyiceberg and deltalake read.
func TestLakeS3Tables(t *testing.T) {
	s3 := s3test.Start(t)
	s3.Bucket(t, "warehouse")
	work := t.TempDir()
	out, err := osexec.Command("python3", "testdata/lake_s3_tables.py", "http://"+s3.Direct, "warehouse", s3test.KeyID, s3test.Secret, work).Output()
	if err != nil {
		if ee, ok := err.(*osexec.ExitError); ok {
			t.Fatalf("lake_s3_tables.py: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var want struct {
		DeltaURL   string      `json:"delta_url"`
		Delta      [][]*string `json:"delta"`
		IcebergURL string      `json:"iceberg_url"`
		IcebergMD  string      `json:"iceberg_metadata"`
		Iceberg    [][]*string `json:"iceberg"`
		Snapshots  []string    `json:"iceberg_snapshots"`
		WideIce    string      `json:"wide_iceberg_url"`
		WideIceSum string      `json:"wide_iceberg_sum"`
		WideIceB   int64       `json:"wide_iceberg_bytes"`
		WideDelta  string      `json:"wide_delta_url"`
		WideDSum   string      `json:"wide_delta_sum"`
		WideDB     int64       `json:"wide_delta_bytes"`
	}
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	_, conn := startMooncake(t)
	exec(t, conn, s3.SecretSQL("warehouse", "s3://warehouse"))
	ctx := context.Background()

	for _, q := range []struct {
		sql  string
		want [][]*string
	}{
		{fmt.Sprintf(`SELECT id, region, qty FROM delta_scan('%s') AS (id bigint, region text, qty int) ORDER BY id`, want.DeltaURL), want.Delta},
		{fmt.Sprintf(`SELECT id, label, price FROM iceberg_scan('%s') AS (id bigint, label text, price float8) ORDER BY id`, want.IcebergURL), want.Iceberg},
		{fmt.Sprintf(`SELECT id, label, price FROM iceberg_scan('%s') AS (id bigint, label text, price float8) ORDER BY id`, want.IcebergMD), want.Iceberg},
	} {
		got := textRows(t, conn, q.sql)
		if rowsText(got) != rowsText(q.want) || len(q.want) == 0 {
			t.Errorf("%s:\n%s", q.sql, lineDiff(rowsText(got), rowsText(q.want)))
		}
	}
	// The table's snapshots, as pyiceberg lists them, and the first one's rows.
	var snaps string
	if err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT string_agg(snapshot_id::text, ',' ORDER BY sequence_number) FROM iceberg_snapshots('%s')`, want.IcebergURL)).Scan(&snaps); err != nil {
		t.Fatal(err)
	}
	if snaps != strings.Join(want.Snapshots, ",") {
		t.Errorf("iceberg_snapshots on S3: %s, pyiceberg lists %s", snaps, strings.Join(want.Snapshots, ","))
	}
	var first int64
	if err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM iceberg_scan('%s', snapshot_id => %s) AS (id bigint)`, want.IcebergURL, want.Snapshots[0])).Scan(&first); err != nil || first != 30 {
		t.Errorf("the first snapshot on S3: %d rows (%v), want 30", first, err)
	}
	var entries int64
	if err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM iceberg_metadata('%s') WHERE content = 'DATA'`, want.IcebergURL)).Scan(&entries); err != nil || entries == 0 {
		t.Errorf("iceberg_metadata on S3: %d data files (%v)", entries, err)
	}
	// The manual's form: a filter and an aggregate pushed down.
	var n int64
	if err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM delta_scan('%s') AS (id bigint, region text) WHERE region = 'EU'`, want.DeltaURL)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	var wantEU int64
	for _, r := range want.Delta {
		if r[1] != nil && *r[1] == "EU" {
			wantEU++
		}
	}
	if n != wantEU {
		t.Errorf("EU rows: %d, deltalake says %d", n, wantEU)
	}
	// Narrow queries of wide tables fetch the column chunks they read of
	// the data files (by field id: a renamed column is found in files
	// written before the rename).
	for _, w := range []struct {
		what, sql, want string
		bytes           int64
	}{
		{"iceberg", fmt.Sprintf(`SELECT sum(renamed3 + c9)::text FROM iceberg_scan('%s') AS (renamed3 bigint, c9 bigint)`, want.WideIce), want.WideIceSum, want.WideIceB},
		{"delta", fmt.Sprintf(`SELECT sum(c3 + c9)::text FROM delta_scan('%s') AS (c3 bigint, c9 bigint)`, want.WideDelta), want.WideDSum, want.WideDB},
	} {
		before := s3.Sent()
		var sum string
		if err := conn.QueryRow(ctx, w.sql).Scan(&sum); err != nil {
			t.Fatalf("%s: %v", w.sql, err)
		}
		if sum != w.want {
			t.Errorf("%s: %s, the writer's reader says %s", w.sql, sum, w.want)
		}
		sent := s3.Sent() - before
		t.Logf("%s: 2 of 20 columns: %d bytes transferred, data files %d bytes (%.1f%%)", w.what, sent, w.bytes, 100*float64(sent)/float64(w.bytes))
		if sent*4 >= w.bytes {
			t.Errorf("%s: a query of 2 of 20 columns transferred %d bytes of data files of %d", w.what, sent, w.bytes)
		}
	}
	for _, q := range []string{
		`SELECT * FROM delta_scan('s3://warehouse/delta/nope') AS (id bigint)`,
		`SELECT * FROM iceberg_scan('s3://warehouse/iceberg/nope') AS (id bigint)`,
	} {
		if _, err := conn.Exec(ctx, q); sqlState(err) != "58P01" {
			t.Errorf("%s: %v, want 58P01", q, err)
		}
	}
}
