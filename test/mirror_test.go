package test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestTradesExample runs the manual's example: a mirror of trades shows
// rows inserted into trades within a second.
func TestTradesExample(t *testing.T) {
	_, conn := startMooncake(t)
	exec(t, conn, `CREATE TABLE trades(id bigint PRIMARY KEY, symbol text, time timestamp, price real)`)
	exec(t, conn, `CALL mooncake.create_table('trades_iceberg', 'trades')`)
	exec(t, conn, `INSERT INTO trades VALUES
		(1, 'AMD', '2024-06-05 10:00:00', 119),
		(2, 'AMZN', '2024-06-05 10:05:00', 207),
		(3, 'AAPL', '2024-06-05 10:10:00', 203),
		(4, 'AMZN', '2024-06-05 10:15:00', 210)`)
	took, ok := waitFor(time.Second, func() bool {
		return queryInt(t, conn, "SELECT count(*) FROM trades_iceberg") == 4
	})
	if !ok {
		t.Fatalf("trades_iceberg does not show the 4 inserted rows after %v", took)
	}
	t.Logf("inserted rows visible in the mirror after %v", took)

	rows, err := conn.Query(context.Background(), "SELECT id, symbol, time::text, price FROM trades_iceberg ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var id int64
		var sym, ts string
		var price float32
		if err := rows.Scan(&id, &sym, &ts, &price); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d %s %s %g", id, sym, ts, price))
	}
	want := []string{
		"1 AMD 2024-06-05 10:00:00 119",
		"2 AMZN 2024-06-05 10:05:00 207",
		"3 AAPL 2024-06-05 10:10:00 203",
		"4 AMZN 2024-06-05 10:15:00 210",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("SELECT * FROM trades_iceberg ORDER BY id =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The foreign table has the source's columns, and the status function
	// reports a ready sidecar.
	cols := queryInt(t, conn, `SELECT count(*) FROM information_schema.columns WHERE table_name = 'trades_iceberg'`)
	if cols != 4 {
		t.Errorf("trades_iceberg has %d columns; want 4", cols)
	}
	var status string
	if err := conn.QueryRow(context.Background(), `SELECT mooncake.bgworker_status()::text`).Scan(&status); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{`"guc_enabled": true`, `"socket_exists": true`, `"socket_listening": true`} {
		if !strings.Contains(status, f) {
			t.Errorf("bgworker_status() = %s; want %s", status, f)
		}
	}
}

// allTypesDDL is a table with every type the mirrors support natively.
const allTypesDDL = `CREATE TABLE src (
	id bigint PRIMARY KEY, i integer, s smallint, r real, d double precision, n numeric(12,3),
	t text, v varchar(20), b boolean, dt date, ts timestamp, tz timestamptz)`

// allTypesInsert fills src with rows $1..$2, NULLs in every nullable column,
// empty strings, quotes, commas, newlines and backslashes in text.
const allTypesInsert = `INSERT INTO src SELECT g,
	CASE WHEN g % 7 = 0 THEN NULL ELSE (g * 37) % 2000000 - 1000000 END,
	CASE WHEN g % 11 = 0 THEN NULL ELSE (g % 65535) - 32767 END,
	CASE WHEN g % 13 = 0 THEN NULL ELSE (g * 1.37)::real / 7 END,
	CASE WHEN g % 17 = 0 THEN NULL ELSE g * 3.14159265358979 / 11 END,
	CASE WHEN g % 19 = 0 THEN NULL ELSE round((g * 12.3457)::numeric % 999999999, 3) END,
	CASE WHEN g % 23 = 0 THEN NULL WHEN g % 29 = 0 THEN '' ELSE 'text ' || md5(g::text) || E' "q",\n\\' END,
	CASE WHEN g % 31 = 0 THEN NULL ELSE left(md5(g::text), (g % 20)::int) END,
	CASE WHEN g % 3 = 0 THEN NULL ELSE g % 2 = 0 END,
	CASE WHEN g % 37 = 0 THEN NULL ELSE date '2000-01-01' + (g % 20000)::int - 10000 END,
	CASE WHEN g % 41 = 0 THEN NULL ELSE timestamp '1990-01-01' + g * interval '1 minute 7.123456 seconds' END,
	CASE WHEN g % 43 = 0 THEN NULL ELSE timestamptz '1990-01-01 00:00:00+00' + g * interval '3 minutes 1.654321 seconds' END
FROM generate_series($1::bigint, $2::bigint) g`

// TestMillionRowsAllTypes mirrors a 1,000,000-row table with every
// supported type and NULLs, then keeps it in step with inserts, updates and
// deletes, before and after they are flushed to Iceberg; mirror and source
// must be equal as multisets.
func TestMillionRowsAllTypes(t *testing.T) {
	_, conn := startMooncake(t)
	exec(t, conn, allTypesDDL)
	exec(t, conn, allTypesInsert, 1, 1000000)
	start := time.Now()
	exec(t, conn, `CALL mooncake.create_table('mirror', 'src')`)
	t.Logf("create_table of 1,000,000 rows took %v", time.Since(start))
	if missing, extra := differences(t, conn, "src", "mirror"); missing != 0 || extra != 0 {
		t.Fatalf("after create_table: %d source rows missing from the mirror, %d extra rows in it", missing, extra)
	}

	// Changes through replication: updates and deletes hit rows of the
	// initial copy (in Iceberg), and rows still in the unflushed tail.
	exec(t, conn, allTypesInsert, 1000001, 1010000)
	exec(t, conn, `UPDATE src SET t = coalesce(t, '') || ' updated', n = n + 1 WHERE id % 1000 = 1`)
	exec(t, conn, `UPDATE src SET id = id + 2000000 WHERE id BETWEEN 500 AND 520`)
	exec(t, conn, `DELETE FROM src WHERE id % 997 = 0`)
	exec(t, conn, `UPDATE src SET b = NOT b, dt = NULL WHERE id > 1005000`)
	waitConverged(t, conn, "src", "mirror", 10*time.Second)

	// Once more after those changes were flushed (every 2 s by default).
	time.Sleep(3 * time.Second)
	exec(t, conn, `UPDATE src SET r = r * 2 WHERE id % 1000 = 1`)
	exec(t, conn, `DELETE FROM src WHERE id % 1000 = 1 AND id > 900000`)
	waitConverged(t, conn, "src", "mirror", 10*time.Second)
}
