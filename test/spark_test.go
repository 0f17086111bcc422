package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmooncake/mooncake/test/s3test"
)

// sparkJars are the jars spark_read.py needs (make deps-spark puts them in
// $MOONCAKE_HOME/spark/jars), as glob patterns.
var sparkJars = []string{
	"iceberg-spark-runtime-3.5_2.12-*.jar",
	"iceberg-aws-bundle-*.jar",
	"postgresql-*.jar",
}

// sparkEnv is how to run testdata/spark_read.py.
type sparkEnv struct {
	python string
	env    []string // os.Environ() plus PYTHONPATH and the jars
}

// requireSpark finds Java, PySpark and the jars that make deps-spark
// installs under $MOONCAKE_HOME/spark (default: .mooncake/spark in the
// repository), or skips the test (fails it with MOONCAKE_REQUIRE_PG=1).
func requireSpark(t *testing.T) sparkEnv {
	t.Helper()
	python, err := osexec.LookPath("python3")
	if err != nil {
		skipOrFailPy(t, "python3 not found: %v", err)
	}
	java, err := osexec.LookPath("java")
	if err != nil {
		skipOrFailPy(t, "java not found (make deps-spark): %v", err)
	}
	if out, err := osexec.Command(java, "-version").CombinedOutput(); err != nil {
		skipOrFailPy(t, "java -version: %v\n%s", err, out)
	}
	home := os.Getenv("MOONCAKE_HOME")
	if home == "" {
		home = filepath.Join("..", ".mooncake")
	}
	dir, err := filepath.Abs(filepath.Join(home, "spark"))
	if err != nil {
		t.Fatal(err)
	}
	var jars []string
	for _, pattern := range sparkJars {
		found, _ := filepath.Glob(filepath.Join(dir, "jars", pattern))
		if len(found) == 0 {
			skipOrFailPy(t, "no %s in %s (make deps-spark)", pattern, filepath.Join(dir, "jars"))
		}
		jars = append(jars, found[len(found)-1])
	}
	pythonPath := filepath.Join(dir, "python")
	if p := os.Getenv("PYTHONPATH"); p != "" {
		pythonPath += string(os.PathListSeparator) + p
	}
	env := append(os.Environ(), "PYTHONPATH="+pythonPath, "MOONCAKE_SPARK_JARS="+strings.Join(jars, ","))
	check := osexec.Command(python, "-c", "import pyspark")
	check.Env = env
	if out, err := check.CombinedOutput(); err != nil {
		skipOrFailPy(t, "PySpark is not installed in %s (make deps-spark): %v\n%s", pythonPath, err, out)
	}
	return sparkEnv{python: python, env: env}
}

// sparkTable is what spark_read.py printed for one table.
type sparkTable struct {
	Table       string   `json:"table"`
	Columns     []string `json:"columns"`
	Types       []string `json:"types"`
	Rows        int      `json:"rows"`
	DataFiles   int      `json:"data_files"`
	DeleteFiles int      `json:"delete_files"`
	rows        [][]*string
}

// readWithSpark reads the tables (identifiers "<schema>.<table>") in one
// Spark session through the catalog of database postgres; with srv, the
// objects on S3 are read from that server.
func readWithSpark(t *testing.T, sp sparkEnv, port int, warehouse string, srv *s3test.Server, idents ...string) map[string]*sparkTable {
	t.Helper()
	uri := fmt.Sprintf("jdbc:postgresql://127.0.0.1:%d/postgres?user=postgres&currentSchema=mooncake", port)
	cmd := osexec.Command(sp.python, append([]string{"testdata/spark_read.py", uri, warehouse}, idents...)...)
	cmd.Env = sp.env
	if srv != nil {
		// Through the counting proxy: the test sees what Spark fetched.
		cmd.Env = append(cmd.Env, "MOONCAKE_S3_ENDPOINT="+srv.Endpoint, "MOONCAKE_S3_KEY_ID="+s3test.KeyID,
			"MOONCAKE_S3_SECRET="+s3test.Secret)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("spark_read.py: %v\n%s", err, stderr.String())
	}
	tables := map[string]*sparkTable{}
	var cur *sparkTable
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) > 0 && line[0] == '{' {
			cur = &sparkTable{}
			if err := json.Unmarshal(line, cur); err != nil {
				t.Fatalf("spark_read.py header %q: %v", line, err)
			}
			tables[cur.Table] = cur
			continue
		}
		if cur == nil {
			t.Fatalf("spark_read.py printed a row before any table: %q", line)
		}
		var row []*string
		if err := json.Unmarshal(line, &row); err != nil {
			t.Fatalf("spark_read.py row %q: %v", line, err)
		}
		if len(row) != len(cur.Columns) {
			t.Fatalf("spark_read.py: a row of %d values in %s of %d columns", len(row), cur.Table, len(cur.Columns))
		}
		cur.rows = append(cur.rows, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, id := range idents {
		tb := tables[id]
		if tb == nil {
			t.Fatalf("spark_read.py printed nothing for %s\n%s", id, stderr.String())
		}
		if len(tb.rows) != tb.Rows {
			t.Fatalf("spark_read.py announced %d rows of %s and printed %d", tb.Rows, id, len(tb.rows))
		}
	}
	return tables
}

// canonicalExprs returns source's column names and, for each, SQL giving
// its value in spark_read.py's canonical text form.
func canonicalExprs(t *testing.T, conn *pgx.Conn, source string) (names, exprs []string) {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT attname, format_type(atttypid, NULL) FROM pg_attribute
		WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, source)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			t.Fatal(err)
		}
		col := pgx.Identifier{name}.Sanitize()
		var e string
		switch typ {
		case "real":
			e = "encode(float4send(" + col + "), 'hex')"
		case "double precision":
			e = "encode(float8send(" + col + "), 'hex')"
		case "date":
			e = "(" + col + " - date '1970-01-01')::text"
		case "timestamp without time zone", "timestamp with time zone":
			e = "(extract(epoch FROM " + col + ") * 1000000)::bigint::text"
		case "bigint", "integer", "smallint", "numeric", "text", "character varying", "boolean":
			e = col + "::text"
		default:
			t.Fatalf("%s.%s: no canonical form for type %s", source, name, typ)
		}
		names = append(names, name)
		exprs = append(exprs, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return names, exprs
}

// compareWithSource checks that Spark read exactly the rows of source (a
// heap table, or any relation PostgreSQL reads), as multisets: the rows
// go into a temporary table and EXCEPT ALL runs both ways against the
// source's canonical form.
func compareWithSource(t *testing.T, conn *pgx.Conn, got *sparkTable, source string) {
	t.Helper()
	ctx := context.Background()
	names, exprs := canonicalExprs(t, conn, source)
	if strings.Join(got.Columns, ",") != strings.Join(names, ",") {
		t.Fatalf("Spark reads the columns %v of %s; %s has %v", got.Columns, got.Table, source, names)
	}
	tmpName := "spark_" + strings.ReplaceAll(got.Table, ".", "_")
	tmp := pgx.Identifier{tmpName}.Sanitize()
	cols := make([]string, len(names))
	for i := range names {
		cols[i] = fmt.Sprintf("c%d", i)
	}
	exec(t, conn, "CREATE TEMP TABLE "+tmp+" ("+strings.Join(cols, " text, ")+" text)")
	data := make([][]any, len(got.rows))
	for i, r := range got.rows {
		data[i] = make([]any, len(r))
		for j, v := range r {
			if v != nil {
				data[i][j] = *v
			}
		}
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{tmpName}, cols, pgx.CopyFromRows(data)); err != nil {
		t.Fatalf("copying Spark's rows of %s: %v", got.Table, err)
	}
	want := "SELECT " + strings.Join(exprs, ", ") + " FROM " + source
	examples := func(q string) string {
		rows, err := conn.Query(ctx, "SELECT d::text FROM ("+q+") d LIMIT 3")
		if err != nil {
			return err.Error()
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			rows.Scan(&s)
			if len(s) > 200 {
				s = s[:200] + "..."
			}
			out = append(out, "    "+s)
		}
		return strings.Join(out, "\n")
	}
	missingQ := want + " EXCEPT ALL SELECT * FROM " + tmp
	extraQ := "SELECT * FROM " + tmp + " EXCEPT ALL " + want
	missing := queryInt(t, conn, "SELECT count(*) FROM ("+missingQ+") d")
	extra := queryInt(t, conn, "SELECT count(*) FROM ("+extraQ+") d")
	n := queryInt(t, conn, "SELECT count(*) FROM "+source)
	if missing != 0 || extra != 0 || n != int64(len(got.rows)) {
		t.Errorf("Spark read %d rows of %s, %s has %d: %d of its rows missing, %d rows extra\n  missing (PostgreSQL's):\n%s\n  extra (Spark's):\n%s",
			len(got.rows), got.Table, source, n, missing, extra, examples(missingQ), examples(extraQ))
	}
	exec(t, conn, "DROP TABLE "+tmp)
}

// sparkCols are the columns of the tables this test makes itself.
const sparkCols = `id bigint, k integer, s text, n numeric(12,3), at timestamptz, d date, ok boolean, f double precision`

// sparkRowsSQL selects rows for sparkCols with ids lo..hi: NULLs in every
// column but id, empty and non-ASCII text, negative numbers, dates before
// 1970.
func sparkRowsSQL(lo, hi int) string {
	return fmt.Sprintf(`SELECT g, CASE WHEN g %% 7 = 0 THEN NULL ELSE (g * 37) %% 1000 - 500 END,
		CASE g %% 5 WHEN 0 THEN NULL WHEN 1 THEN '' WHEN 2 THEN 'ünïcødé ✓ ' || g ELSE 'row ' || g END,
		CASE WHEN g %% 6 = 0 THEN NULL ELSE round((g - 1500) / 7.0, 3) END,
		CASE WHEN g %% 9 = 0 THEN NULL ELSE timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute 0.123457 seconds' END,
		CASE WHEN g %% 8 = 0 THEN NULL ELSE date '1970-01-01' + (g * 13 %% 40000) - 20000 END,
		CASE WHEN g %% 3 = 0 THEN NULL ELSE g %% 2 = 0 END,
		CASE WHEN g %% 10 = 0 THEN NULL ELSE g / 3.0 END
		FROM generate_series(%d, %d) g`, lo, hi)
}

// TestSparkReadsCatalog has Apache Spark (PySpark with Iceberg's Spark
// runtime) read pg_mooncake's tables through Iceberg's JdbcCatalog on the
// catalog tables in the database: the mirrors of the randomized workload,
// after updates and deletes of flushed rows left position delete files; a
// columnstore table written with INSERT, UPDATE and DELETE (a rolled back
// insert too); and, from moto's S3 server through S3FileIO, a mirror and a
// columnstore table kept there. One Spark session reads them all; every
// table's rows are compared with its source (EXCEPT ALL both ways, and
// the row count): integers, text, numeric, real and double (by their
// bits), timestamp and timestamptz (microseconds), dates (BC ones too),
// booleans and NULLs.
func TestSparkReadsCatalog(t *testing.T) {
	sp := requireSpark(t)
	srv := s3test.Start(t)
	srv.Bucket(t, "spark-wh")
	seed := workloadSeed(t)
	t.Logf("%s=%d", seedEnv, seed)
	c, conn := startMooncake(t)
	ctx := context.Background()
	exec(t, conn, srv.SecretSQL("spark", ""))
	start := time.Now()

	// Mirrors of the workload: a random round, the rows flushed, then
	// updates and deletes of rows in data files and another round.
	w := setupWorkload(t, conn, seed, false) // no infinities: Iceberg has no agreed form for them
	w.truncateOdds = 0                       // keep rows in the files, so that deletes hit them
	workers := []*wlWorker{w.newWorker(t, c, 0), w.newWorker(t, c, 1)}
	keepTrace(t, w, workers)
	if err := runRound(ctx, workers, 20, nil); err != nil {
		t.Fatalf("first round: %v (%s)", err, w.summary())
	}
	waitFlushed(t, conn, 30*time.Second)
	exec(t, conn, `UPDATE wl_types SET i = coalesce(i, 0) + 1 WHERE id % 10 = 3`)
	exec(t, conn, `DELETE FROM wl_types WHERE id % 10 = 7`)
	exec(t, conn, `UPDATE wl_comp SET qty = qty + 1 WHERE a % 10 = 3`)
	exec(t, conn, `DELETE FROM wl_comp WHERE a % 10 = 7`)
	exec(t, conn, `UPDATE wl_toast SET counter = counter + 1 WHERE id % 4 = 1`)
	exec(t, conn, `DELETE FROM wl_toast WHERE id % 4 = 3`)
	if err := runRound(ctx, workers, 20, nil); err != nil {
		t.Fatalf("second round: %v (%s)", err, w.summary())
	}
	checkMirrors(t, conn, w, "after the rounds", 30*time.Second)

	// A mirror on S3: its initial copy, then updates and deletes of the
	// copied rows and new rows.
	exec(t, conn, `CREATE TABLE sp_src (`+strings.Replace(sparkCols, "id bigint", "id bigint PRIMARY KEY", 1)+`)`)
	exec(t, conn, `INSERT INTO sp_src `+sparkRowsSQL(1, 3000))
	exec(t, conn, `CALL mooncake.create_table('sp_src_m', 'sp_src', location => 's3://spark-wh/mirrors')`)
	exec(t, conn, `UPDATE sp_src SET k = coalesce(k, 0) + 1, s = s || '!', n = n * 2 WHERE id % 5 = 0`)
	exec(t, conn, `DELETE FROM sp_src WHERE id % 7 = 0`)
	exec(t, conn, `INSERT INTO sp_src `+sparkRowsSQL(3001, 3500))
	waitConverged(t, conn, "sp_src", "sp_src_m", 30*time.Second)

	// Columnstore tables, on local disk and on S3, written as a heap
	// table is: the heap table is what Spark must read.
	exec(t, conn, `CREATE TABLE sp_heap (`+sparkCols+`)`)
	exec(t, conn, `CREATE TABLE sp_cs (`+sparkCols+`) USING columnstore`)
	exec(t, conn, `CREATE TABLE sp_cs_s3 (`+sparkCols+`) USING columnstore WITH (location = 's3://spark-wh/own/sp_cs_s3')`)
	for _, tbl := range []string{"sp_heap", "sp_cs", "sp_cs_s3"} {
		exec(t, conn, `INSERT INTO `+tbl+` `+sparkRowsSQL(1, 3000))
		exec(t, conn, `INSERT INTO `+tbl+` `+sparkRowsSQL(3001, 4000))
		exec(t, conn, `UPDATE `+tbl+` SET k = coalesce(k, 0) + 1, s = s || '!', n = n * 2, ok = NOT ok WHERE id % 5 = 0`)
		exec(t, conn, `DELETE FROM `+tbl+` WHERE id % 7 = 0`)
		exec(t, conn, `BEGIN`)
		exec(t, conn, `INSERT INTO `+tbl+` `+sparkRowsSQL(4001, 4500))
		exec(t, conn, `UPDATE `+tbl+` SET at = at + interval '1 day', d = d - 1 WHERE id > 4400`)
		exec(t, conn, `DELETE FROM `+tbl+` WHERE id > 4000 AND id % 11 = 0`)
		exec(t, conn, `COMMIT`)
		exec(t, conn, `BEGIN`)
		exec(t, conn, `INSERT INTO `+tbl+` VALUES (-1, 0, 'rolled back', 0, now(), current_date, true, 0)`)
		exec(t, conn, `ROLLBACK`)
	}
	for _, tbl := range []string{"sp_cs", "sp_cs_s3"} {
		if missing, extra := differences(t, conn, "sp_heap", tbl); missing != 0 || extra != 0 {
			t.Fatalf("%s differs from the heap table: %d rows missing, %d extra", tbl, missing, extra)
		}
	}
	var csMeta string
	if err := conn.QueryRow(ctx, `SELECT metadata_location FROM mooncake.iceberg_tables WHERE table_name = 'sp_cs_s3'`).Scan(&csMeta); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(csMeta, "s3://spark-wh/own/sp_cs_s3/") {
		t.Fatalf("sp_cs_s3's metadata %q is not on S3", csMeta)
	}
	waitFlushed(t, conn, 30*time.Second)
	var mMeta string
	if err := conn.QueryRow(ctx, `SELECT metadata_location FROM mooncake.iceberg_tables WHERE table_name = 'sp_src_m'`).Scan(&mMeta); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(mMeta, "s3://spark-wh/mirrors/sp_src_m-") {
		t.Fatalf("sp_src_m's metadata %q is not on S3", mMeta)
	}
	logFileCounts(t, conn, "before Spark reads")
	t.Logf("tables written in %v", time.Since(start).Round(time.Millisecond))

	var warehouse string
	if err := conn.QueryRow(ctx, `SHOW pg_mooncake.warehouse`).Scan(&warehouse); err != nil {
		t.Fatal(err)
	}
	if warehouse == "" {
		warehouse = filepath.Join(c.DataDir(), "pg_mooncake", "warehouse")
	}
	warehouse += "/postgres"

	// The warehouse belongs to the server's OS user, in 0700 directories:
	// as root (CI) Spark reads it anyway; as any other user the server
	// runs as that user.
	sources := map[string]string{"public.sp_src_m": "sp_src", "public.sp_cs": "sp_heap", "public.sp_cs_s3": "sp_heap"}
	idents := []string{"public.sp_src_m", "public.sp_cs", "public.sp_cs_s3"}
	for _, tb := range wlTables {
		sources["public."+tb.mirror] = tb.source
		idents = append(idents, "public."+tb.mirror)
	}
	sparkStart, gets := time.Now(), srv.Gets()
	got := readWithSpark(t, sp, c.Port(), warehouse, srv, idents...)
	gets = srv.Gets() - gets
	t.Logf("Spark read %d tables in %v, %d objects from S3", len(idents), time.Since(sparkStart).Round(time.Millisecond), gets)
	// At least the data and delete files of the tables on S3 came from
	// the server (the sidecar has nothing to fetch meanwhile).
	var onS3 int
	for _, id := range []string{"public.sp_src_m", "public.sp_cs_s3"} {
		onS3 += got[id].DataFiles + got[id].DeleteFiles
	}
	if gets < int64(onS3) {
		t.Errorf("Spark fetched %d objects from the S3 server; the tables there have %d data and delete files", gets, onS3)
	}
	mirrorDeletes := 0
	for _, id := range idents {
		tb := got[id]
		t.Logf("%s: %d rows, %d data files, %d delete files; Spark types %s", id, tb.Rows, tb.DataFiles, tb.DeleteFiles,
			strings.Join(tb.Types, ", "))
		compareWithSource(t, conn, tb, sources[id])
		if strings.HasPrefix(id, "public.wl_") {
			mirrorDeletes += tb.DeleteFiles
		} else if tb.DeleteFiles == 0 {
			t.Errorf("%s has no delete files: the test would not exercise them", id)
		}
	}
	if mirrorDeletes == 0 {
		t.Errorf("the workload's mirrors have no delete files: the test would not exercise them")
	}
	if errs := sidecarErrors(c); len(errs) > 0 {
		t.Logf("sidecar errors in the server log:\n%s", strings.Join(errs[max(0, len(errs)-10):], "\n"))
	}
}
