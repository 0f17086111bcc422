package test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgmooncake/mooncake/test/pgtest"
	"github.com/pgmooncake/mooncake/test/s3test"
)

// objectKeys lists the keys under prefix of bucket on the S3 server.
func objectKeys(t *testing.T, srv *s3test.Server, bucket, prefix string) []string {
	t.Helper()
	var keys []string
	pg := s3.NewListObjectsV2Paginator(srv.Client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for pg.HasMorePages() {
		page, err := pg.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

// countSuffix counts the names ending in suffix.
func countSuffix(names []string, suffix string) int {
	n := 0
	for _, k := range names {
		if strings.HasSuffix(k, suffix) {
			n++
		}
	}
	return n
}

// localParquet lists the Parquet files under dir.
func localParquet(t *testing.T, dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".parquet") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestWarehouseS3 keeps the warehouse on moto's S3 server
// (pg_mooncake.warehouse = 's3://...'): the randomized mirror workload
// runs as on local disk, every mirror compared with its source after each
// round; the sidecar is killed under it, and once restarted with its local
// copies of the files wiped, so that it reads the tables back from S3.
// pyiceberg then reads the mirrors through the catalog from S3 alone.
// Columnstore tables go to the warehouse on S3 too, or to a location of
// their own (WITH (location = 's3://...')), and create_table takes
// location => too; a role without the privileges gets 42501; DROP
// removes a table's objects.
func TestWarehouseS3(t *testing.T) {
	srv := s3test.Start(t)
	srv.Bucket(t, "mooncake-wh")
	seed, scale := workloadSeed(t), workloadScale(t)
	t.Logf("%s=%d %s=%d", seedEnv, seed, scaleEnv, scale)
	c, conn := startMooncake(t, pgtest.WithSetting("pg_mooncake.warehouse", "s3://mooncake-wh/warehouse"))
	ctx := context.Background()
	exec(t, conn, srv.SecretSQL("mooncake-wh", ""))

	w := setupWorkload(t, conn, seed, false) // no infinite timestamps: pyiceberg reads the mirrors
	keys := objectKeys(t, srv, "mooncake-wh", "warehouse/postgres/public/")
	if countSuffix(keys, ".metadata.json") < len(wlTables) || countSuffix(keys, ".parquet") < len(wlTables) {
		t.Fatalf("after the initial copies the bucket holds %d metadata files and %d Parquet files: %v",
			countSuffix(keys, ".metadata.json"), countSuffix(keys, ".parquet"), keys)
	}
	var loc string
	if err := conn.QueryRow(ctx, "SELECT metadata_location FROM mooncake.iceberg_tables WHERE table_name = 'wl_types_m'").Scan(&loc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(loc, "s3://mooncake-wh/warehouse/postgres/public/wl_types_m-") {
		t.Fatalf("metadata_location %q is not in the warehouse on S3", loc)
	}
	copies := filepath.Join(c.DataDir(), "pg_mooncake", "s3_tables")
	if n := len(localParquet(t, filepath.Join(c.DataDir(), "pg_mooncake", "warehouse"))); n != 0 {
		t.Fatalf("%d Parquet files in the local warehouse directory", n)
	}

	workers := []*wlWorker{w.newWorker(t, c, 0), w.newWorker(t, c, 1)}
	keepTrace(t, w, workers)
	rounds := 4 * scale
	for round := range rounds {
		extra := map[int][]txPlan{0: {workers[0].planBig(round % 6)}}
		if round == 1 {
			extra[1] = append(extra[1], workers[1].planTruncate(0))
		}
		if err := runRound(ctx, workers, 30, extra); err != nil {
			t.Fatalf("round %d: %v (%s)", round, err, w.summary())
		}
		label := fmt.Sprintf("round %d", round)
		switch round % 4 {
		case 1:
			time.Sleep(3 * time.Second)
			label += " after a flush"
			logFileCounts(t, conn, label)
		case 2:
			c.KillSidecar(t)
			c.WaitSidecar(t)
			label += " after the sidecar was killed"
		case 3:
			// The sidecar starts again with no local copies: it reads
			// every mirror's files back from S3.
			waitFlushed(t, conn, 30*time.Second)
			pid := c.KillSidecar(t)
			if err := os.RemoveAll(copies); err != nil {
				t.Fatal(err)
			}
			c.WaitSidecar(t)
			label += fmt.Sprintf(" after sidecar %d was killed and its local copies removed", pid)
		}
		checkMirrors(t, conn, w, label, 60*time.Second)
	}
	waitFlushed(t, conn, 30*time.Second)
	checkMirrors(t, conn, w, "final", 30*time.Second)
	if n := len(localParquet(t, copies)); n == 0 {
		t.Fatalf("no local copies of the mirrors' files under %s", copies)
	}

	// pyiceberg, through the catalog, reading S3 only.
	for _, tb := range wlTables {
		n := readWithPyIceberg(t, c, conn, srv, "public."+tb.mirror, tb)
		t.Logf("pyiceberg read %d rows of %s from S3", n, tb.mirror)
	}

	// Columnstore tables: in the warehouse on S3, and at a location of
	// their own.
	exec(t, conn, `CREATE TABLE cs_h (id bigint, s text, n numeric(10,2))`)
	exec(t, conn, `CREATE TABLE cs_w (id bigint, s text, n numeric(10,2)) USING columnstore`)
	exec(t, conn, `CREATE TABLE cs_o (id bigint, s text, n numeric(10,2)) USING columnstore WITH (location = 's3://mooncake-wh/own/cs_o')`)
	for _, tbl := range []string{"cs_h", "cs_w", "cs_o"} {
		exec(t, conn, `INSERT INTO `+tbl+` SELECT g, 'row ' || g, g / 7.0 FROM generate_series(1, 5000) g`)
		exec(t, conn, `BEGIN`)
		exec(t, conn, `UPDATE `+tbl+` SET s = s || '!', n = n * 2 WHERE id % 5 = 0`)
		exec(t, conn, `DELETE FROM `+tbl+` WHERE id % 7 = 0`)
		exec(t, conn, `COMMIT`)
		exec(t, conn, `BEGIN`)
		exec(t, conn, `INSERT INTO `+tbl+` VALUES (-1, 'rolled back', 0)`)
		exec(t, conn, `ROLLBACK`)
		// COPY FROM STDIN in CSV, read by DuckDB into the table's files on S3
		var csv strings.Builder
		for g := 7001; g <= 9000; g++ {
			fmt.Fprintf(&csv, "%d,\"copied, %d\",%d.%02d\n", g, g, g%1000, g%100)
		}
		if _, err := conn.PgConn().CopyFrom(ctx, strings.NewReader(csv.String()), "COPY "+tbl+" FROM STDIN (FORMAT csv)"); err != nil {
			t.Fatalf("COPY %s FROM STDIN: %v", tbl, err)
		}
		// NaN halfway through a load: the column, a decimal on S3 until
		// then, is stored as its text, the table's objects written again
		exec(t, conn, `INSERT INTO `+tbl+` SELECT g, 'nan ' || g, CASE WHEN g = 6003 THEN 'NaN'::numeric ELSE g / 3.0 END FROM generate_series(6001, 6005) g`)
	}
	for _, tbl := range []string{"cs_w", "cs_o"} {
		missing, extra := differences(t, conn, "cs_h", tbl)
		if missing != 0 || extra != 0 {
			t.Fatalf("%s differs from the heap table: %d rows missing, %d extra", tbl, missing, extra)
		}
		var meta string
		if err := conn.QueryRow(ctx, "SELECT metadata_location FROM mooncake.columnstore_tables WHERE table_name = $1", tbl).Scan(&meta); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(meta, "s3://mooncake-wh/") {
			t.Fatalf("%s: metadata_location %q is not on S3", tbl, meta)
		}
		readWithPyIceberg(t, c, conn, srv, "public."+tbl, wlTable{source: "cs_h", mirror: tbl, key: []string{"id"}})
	}
	keys = objectKeys(t, srv, "mooncake-wh", "own/cs_o/")
	if countSuffix(keys, ".parquet") == 0 {
		t.Fatalf("no Parquet objects under s3://mooncake-wh/own/cs_o: %v", keys)
	}
	// The objects of the rolled back insert stay until the sweep removes
	// them; the table reads the same after it.
	var swept int64
	if err := conn.QueryRow(ctx, `SELECT mooncake.remove_orphan_files('cs_o', '0 seconds')`).Scan(&swept); err != nil {
		t.Fatal(err)
	}
	after := objectKeys(t, srv, "mooncake-wh", "own/cs_o/")
	if swept == 0 || len(after) != len(keys)-int(swept) {
		t.Fatalf("the sweep removed %d objects; %d before, %d after", swept, len(keys), len(after))
	}
	if missing, extra := differences(t, conn, "cs_h", "cs_o"); missing != 0 || extra != 0 {
		t.Fatalf("cs_o after the sweep: %d rows missing, %d extra", missing, extra)
	}
	readWithPyIceberg(t, c, conn, srv, "public.cs_o", wlTable{source: "cs_h", mirror: "cs_o", key: []string{"id"}})

	// create_table with a location of its own.
	exec(t, conn, `CREATE TABLE src2 (id int PRIMARY KEY, v text)`)
	exec(t, conn, `INSERT INTO src2 SELECT g, 'v' || g FROM generate_series(1, 1000) g`)
	exec(t, conn, `CALL mooncake.create_table('src2_m', 'src2', location => 's3://mooncake-wh/mirrors/')`)
	exec(t, conn, `UPDATE src2 SET v = v || '?' WHERE id % 3 = 0`)
	exec(t, conn, `DELETE FROM src2 WHERE id % 11 = 0`)
	waitConverged(t, conn, "src2", "src2_m", 30*time.Second)
	waitFlushed(t, conn, 30*time.Second)
	if keys := objectKeys(t, srv, "mooncake-wh", "mirrors/src2_m-"); countSuffix(keys, ".parquet") == 0 {
		t.Fatalf("no Parquet objects of src2_m under s3://mooncake-wh/mirrors: %v", keys)
	}

	// Privileges: a plain role may not choose where files go.
	exec(t, conn, `CREATE ROLE plain LOGIN`)
	exec(t, conn, `GRANT CREATE ON SCHEMA public TO plain`)
	plain := connAs(t, c, "plain")
	_, err := plain.Exec(ctx, `CREATE TABLE p_cs (id int) USING columnstore WITH (location = 's3://mooncake-wh/p')`)
	if sqlState(err) != "42501" {
		t.Fatalf("a plain role's columnstore table on S3: %v; want 42501", err)
	}
	exec(t, conn, `GRANT mooncake_user TO plain`)
	if _, err := plain.Exec(ctx, `CREATE TABLE p_cs (id int) USING columnstore WITH (location = 's3://mooncake-wh/p')`); err != nil {
		t.Fatalf("a member of mooncake_user: %v", err)
	}
	if _, err := plain.Exec(ctx, `CREATE TABLE p_cs2 (id int) USING columnstore WITH (location = '/mooncake-files/p')`); sqlState(err) != "42501" {
		t.Fatalf("a member of mooncake_user choosing a directory of the server: %v; want 42501", err)
	}
	// Reading a table on S3 takes the table's privileges, nothing else.
	exec(t, conn, `CREATE ROLE reader LOGIN`)
	reader := connAs(t, c, "reader")
	if _, err := reader.Exec(ctx, `SELECT count(*) FROM cs_w`); sqlState(err) != "42501" {
		t.Fatalf("a role without SELECT on cs_w: %v; want 42501", err)
	}
	exec(t, conn, `GRANT SELECT ON cs_w, src2_m TO reader`)
	var n1, n2 int64
	if err := reader.QueryRow(ctx, `SELECT (SELECT count(*) FROM cs_w), (SELECT count(*) FROM src2_m)`).Scan(&n1, &n2); err != nil || n1 == 0 || n2 == 0 {
		t.Fatalf("a role with SELECT reads the tables on S3: %d, %d rows, %v", n1, n2, err)
	}
	// ... not the privileges of mooncake_user: its members read objects of
	// S3, but not the files of the catalog's tables, however named, nor
	// put a table of theirs in another's directory.
	var src2Loc, csLoc string
	if err := conn.QueryRow(ctx, `SELECT (SELECT metadata_location FROM mooncake.iceberg_tables WHERE table_name = 'src2_m'),
		(SELECT metadata_location FROM mooncake.iceberg_tables WHERE table_name = 'cs_w')`).Scan(&src2Loc, &csLoc); err != nil {
		t.Fatal(err)
	}
	src2Dir := strings.TrimSuffix(src2Loc[:strings.LastIndex(src2Loc, "/metadata/")], "/")
	csDir := csLoc[:strings.LastIndex(csLoc, "/metadata/")]
	for _, q := range []string{
		`SELECT count(*) FROM mooncake.read_parquet('s3://mooncake-wh/mirrors/**/*.parquet') AS (id int, v text)`,
		`SELECT count(*) FROM mooncake.read_parquet('s3://mooncake-wh/**/*.parquet') AS (id int)`,
		`SELECT count(*) FROM mooncake.read_parquet('s3://*/**/*.parquet') AS (id int)`,
		`SELECT count(*) FROM mooncake.read_parquet('s3://mooncake-wh/mirrors/src2*/data/*.parquet') AS (id int, v text)`,
		`SELECT count(*) FROM mooncake.read_parquet('` + strings.Replace(src2Dir, "s3://", "s3a://", 1) + `/data/*.parquet') AS (id int, v text)`,
		`SELECT count(*) FROM mooncake.read_parquet('` + strings.Replace(src2Dir, "/mirrors/", "/./mirrors//", 1) + `/data/*.parquet') AS (id int, v text)`,
		`SELECT count(*) FROM mooncake.read_parquet('` + strings.Replace(src2Dir, "/mirrors/", "/mirr%6Frs/", 1) + `/data/*.parquet') AS (id int, v text)`,
		`SELECT count(*) FROM mooncake.read_parquet('` + csDir + `/data/*.parquet') AS (id int)`,
		`SELECT count(*) FROM iceberg_scan('` + src2Dir + `') AS (id int, v text)`,
		`SELECT count(*) FROM iceberg_scan('` + src2Loc + `') AS (id int, v text)`,
		`SELECT count(*) FROM iceberg_snapshots('` + src2Dir + `')`,
		`SELECT count(*) FROM iceberg_metadata('` + csLoc + `')`,
	} {
		if _, err := plain.Exec(ctx, q); sqlState(err) != "42501" {
			t.Errorf("a member of mooncake_user reading a table's objects: %s: %v; want 42501", q, err)
		}
	}
	var direct int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM mooncake.read_parquet('`+src2Dir+`/data/*.parquet') AS (id int, v text)`).Scan(&direct); err != nil || direct == 0 {
		t.Fatalf("a superuser reads a mirror's objects: %d rows, %v", direct, err)
	}
	for _, loc := range []string{src2Dir, src2Dir + "/data", csDir + "/x"} {
		if _, err := plain.Exec(ctx, `CREATE TABLE squat (id int) USING columnstore WITH (location = '`+loc+`')`); sqlState(err) != "22023" {
			t.Errorf("a columnstore table located in another role's table's directory %s: %v; want 22023", loc, err)
		}
	}
	if _, err := plain.Exec(ctx, `CREATE TABLE p_cs3 (id int) USING columnstore WITH (location = 's3://mooncake-wh/p')`); err != nil {
		t.Errorf("a role's table sharing the location of its own table: %v", err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE bad (id int) USING columnstore WITH (location = 'gs://x/y')`); sqlState(err) != "0A000" {
		t.Fatalf("a gs:// location: %v; want 0A000", err)
	}

	// DROP removes the mirror's objects.
	exec(t, conn, `CALL mooncake.drop_table('src2_m')`)
	if _, ok := waitFor(30*time.Second, func() bool {
		return len(objectKeys(t, srv, "mooncake-wh", "mirrors/src2_m-")) == 0
	}); !ok {
		t.Fatalf("objects of the dropped mirror remain: %v", objectKeys(t, srv, "mooncake-wh", "mirrors/src2_m-"))
	}
	if errs := sidecarErrors(c); len(errs) > 0 {
		t.Logf("sidecar errors in the server log (kills are expected):\n%s", strings.Join(errs[max(0, len(errs)-10):], "\n"))
	}
}
