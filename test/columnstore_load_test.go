package test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// csTypesColumns has a column of every kind of type a columnstore table
// stores (sidecar/PROTOCOL.md, columnstore_load: the binary encodings and
// the types sent as their text), money (stored as its integer, which the
// scan once read as an amount: $1.23 came back as $123.00) and more types
// kept as their text.
const csTypesColumns = `id int NOT NULL, b bool, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8,
  n numeric, n2 numeric(12,2), n38 numeric(38,10), nneg numeric(5,-2),
  t text, vc varchar(8), ch char(5), ba bytea, d date, tm time, ts timestamp, tstz timestamptz,
  u uuid, m numeric(20,2), iv interval, j json, jb jsonb, ai int4[], at text[], ttz timetz, ip inet,
  dom cs_posint, domt cs_code, e cs_mood,
  mo money, bt bit(4), vb varbit, cd cidr, mac macaddr, mac8 macaddr8, xm xml, pt point, rg int4range, am money[]`

// csTypesMore are the columns after e: a row of csTypesRows ends with
// their values.
const csTypesMore = "mo, bt, vb, cd, mac, mac8, xm, pt, rg, am"

// csTypesRows are rows of odd values for csTypesColumns (SQL VALUES), the
// values in forms that do not depend on the session's settings.
var csTypesRows = []string{
	`(1, true, 32767, 2147483647, 9223372036854775807, 'NaN', 'Infinity',
	  'NaN', 9999999999.99, 1234567890123456789012345678.0123456789, 1234500,
	  '', '', '', '\x', 'infinity', '24:00:00', 'infinity', 'infinity',
	  '00000000-0000-0000-0000-000000000000', 1234567.89, '1 year 2 mons -3 days 04:05:06.789', '{"a": [1, 2.50, null]}', '{"b": {"c": 1.10}, "a": "x"}',
	  '{1,NULL,3}', '{"", "a b", NULL, "q\"uote"}', '24:00:00+1459', '::1/128', 1, 'ab', 'happy',
	  '92233720368547758.07', B'1010', B'10101', '192.168.0.0/16', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05', '<a b="1">x &amp; y</a>', '(1.5,-2)', '[1,5)', '{1.23,NULL,-0.01}')`,
	`(2, false, -32768, -2147483648, -9223372036854775808, '-Infinity', '-Infinity',
	  'Infinity', -9999999999.99, -0.0000000001, -99900,
	  'héllo wörld ☃ 𝄞', 'ünï', 'ab', '\x00ff10', '-infinity', '00:00:00', '-infinity', '-infinity',
	  'ffffffff-ffff-ffff-ffff-ffffffffffff', -1234567.89, '-178000000 years', '[]', '[]',
	  '{}', '{}', '00:00:00-1459', '10.1.2.3/8', 2147483647, 'zz', 'sad',
	  '-92233720368547758.08', B'0000', B'', '::/0', 'ff:ff:ff:ff:ff:ff', 'ff:ff:ff:ff:ff:ff:ff:ff', '<a/>', '(0,0)', 'empty', '{}')`,
	`(3, NULL, 0, 0, 0, '-0', '-0',
	  '-Infinity', 0, 0, 0,
	  'tab	and
newline \ backslash "quote" ''apostrophe''', 'x', 'a    ', '\x5c00', '4713-01-01 BC', '12:34:56.789012', '4713-01-01 00:00:00 BC', '4713-01-01 00:00:00+00 BC',
	  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 0, '0', 'null', 'null',
	  '{{1,2},{3,4}}', '{"{}", ","}', '12:00:00+00', '2001:db8::/32', 1, '', 'ok',
	  0, B'1111', B'1', '2001:db8::/32', '00:00:00:00:00:00', '00:00:00:00:00:00:00:00', '', '(1e300,-1e-300)', '(,)', '{0}')`,
	`(4, true, 1, -1, 1, 1.17549435e-38, 2.2250738585072014e-308,
	  0.000000000000000000000000000000000000000000000000000000000001, 0.01, 0.0000000001, -100,
	  ' leading and trailing ', '12345678', ' ', '\xdeadbeef', '5874897-12-31', '23:59:59.999999', '294276-12-31 23:59:59.999999', '294276-12-31 23:59:59.999999+00',
	  '123e4567-e89b-12d3-a456-426614174000', -0.01, '1 day -00:00:00.000001', '"\u00e9"', '"\u00e9"',
	  NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	  '-0.01', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
	`(5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
	`(6, false, 7, 8, 9, 3.4028235e38, 1.7976931348623157e308,
	  123456789012345678901234567890123456789012345678901234567890.123456789012345678901234567890, 1.005, 99999999.99999999995, 1249,
	  repeat('long ', 10000), 'abc', 'é', decode(repeat('00ff', 5000), 'hex'), '2000-01-01', '00:00:00.000001', '2000-01-01 00:00:00', '1999-12-31 23:59:59.999999+00',
	  'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 1000000, '-1 mons +1 days', '{"big": 1e400}', '{"big": 1e400}',
	  '{-2147483648}', '{"é"}', '23:59:59.999999-15:59', '0.0.0.0/0', 42, 'c', 'happy',
	  1.23, B'0101', B'1100110011001100110011', '10.0.0.0/8', '01:02:03:04:05:06', '01:02:03:04:05:06:07:08', 'text &amp; <b>mixed</b>', '(-0,3.5)', '[-2147483648,2147483647)', '{{1,2},{3,4}}')`,
	`(7, true, -7, -8, -9, -1.5e-45, 4.9406564584124654e-324,
	  -0.5, -0.5, -0.5, -50,
	  'a', 'b', 'c', '\x', '1970-01-01', '12:00', '1970-01-01 00:00', '1970-01-01 00:00+00',
	  NULL, -1, '1 second', '{}', '{}',
	  '{}', '{}', '00:00+00', '::', 1, 'x', 'sad',
	  '$1,234.56', B'0001', B'0', '1.2.3.4/32', '0a:0b:0c:0d:0e:0f', '0a:0b:0c:0d:0e:0f:10:11', '<!-- c -->', '(1,1)', '[0,0]', '{NULL}')`,
	`(8, true, 1, 1, 1, 1, 1, -0.000001, -0.001, 5.55555555555, 49.9999,
	  'x', 'y', 'z', '\x01', '0044-03-15 BC', '01:02:03', '0044-03-15 10:00:00 BC', '2024-02-29 12:34:56.5+05:30',
	  NULL, 0.5, '3 days 4 hours', '1', '1', '{1}', '{a}', '01:02:03+01', '1.2.3.4', 7, 'q', 'ok',
	  12.345, B'1000', B'01', '::ffff:1.2.3.0/120', 'AB:CD:EF:01:23:45', 'AB:CD:EF:01:23:45:67:89', '<?pi x?><r/>', '(2,3)', '(5,6]', '{0.01}')`,
}

// csTypesSetup creates the types the columns use, a heap table h and a
// columnstore table of csTypesColumns for each name in cs.
// A server built without libxml (PyPI's PostgreSQL 18) refuses every xml
// value: there the column xm is text, with the same values.
func csTypesSetup(t *testing.T, conn *pgx.Conn, cs ...string) {
	t.Helper()
	exec(t, conn, "CREATE DOMAIN cs_posint AS int CHECK (VALUE > 0)")
	exec(t, conn, "CREATE DOMAIN cs_code AS varchar(3)")
	exec(t, conn, "CREATE TYPE cs_mood AS ENUM ('sad', 'ok', 'happy')")
	exec(t, conn, "CREATE TABLE h ("+csCols(t, conn)+")")
	for _, name := range cs {
		exec(t, conn, "CREATE TABLE "+name+" ("+csCols(t, conn)+") USING columnstore")
	}
}

// csCols is csTypesColumns as the server can hold them (see csTypesSetup).
func csCols(t *testing.T, conn *pgx.Conn) string {
	if csHasXML(t, conn) {
		return csTypesColumns
	}
	return strings.Replace(csTypesColumns, "xm xml", "xm text", 1)
}

// csHasXML reports whether the server takes xml values.
func csHasXML(t *testing.T, conn *pgx.Conn) bool {
	t.Helper()
	_, err := conn.Exec(context.Background(), "SELECT '<a/>'::xml")
	switch sqlState(err) {
	case "":
		return true
	case "0A000":
		return false
	}
	t.Fatalf("SELECT '<a/>'::xml: %v", err)
	return false
}

// csSameRows fails the test unless tables a and b hold the same rows,
// compared as their text (the whole row's, so that types without an
// equality, json, compare too) as multisets both ways.
func csSameRows(t *testing.T, conn *pgx.Conn, a, b string) {
	t.Helper()
	for _, pair := range [][2]string{{a, b}, {b, a}} {
		q := fmt.Sprintf("SELECT x::text FROM %s x EXCEPT ALL SELECT y::text FROM %s y", pair[0], pair[1])
		rows := textRows(t, conn, q)
		if len(rows) > 0 {
			var lines []string
			for _, r := range rows {
				line := "NULL"
				if r[0] != nil {
					line = *r[0]
				}
				if len(line) > 400 {
					line = line[:400] + "..."
				}
				lines = append(lines, line)
			}
			t.Fatalf("rows of %s not in %s:\n%s", pair[0], pair[1], strings.Join(lines, "\n"))
		}
	}
	if na, nb := queryInt(t, conn, "SELECT count(*) FROM "+a+" c"), queryInt(t, conn, "SELECT count(*) FROM "+b+" c"); na != nb {
		t.Fatalf("%s has %d rows, %s %d", a, na, b, nb)
	}
}

// TestColumnstoreLoadTypes loads rows of every kind of column type, with
// odd values (NaN and infinities, the ends of each type's range, BC dates,
// empty and huge strings, unicode, NULLs), into columnstore tables by
// INSERT ... VALUES, INSERT ... SELECT, COPY FROM STDIN in text, CSV and
// binary, under unusual session settings, and compares them with a heap
// table row by row. It also checks that loads fail as the heap's do (NOT
// NULL, a domain's check, numeric overflow) and leave nothing, that a
// cancelled load leaves the session and the table usable, and that a
// rolled back load leaves no rows.
func TestColumnstoreLoadTypes(t *testing.T) {
	_, conn := startMooncake(t)
	ctx := context.Background()
	csTypesSetup(t, conn, "cs_values", "cs_select", "cs_copy", "cs_csv", "cs_binary", "cs_bin")
	// Settings that change how values print: the load must not depend on them.
	exec(t, conn, "SET DateStyle = 'SQL, DMY'")
	exec(t, conn, "SET TimeZone = 'Asia/Kolkata'")
	exec(t, conn, "SET IntervalStyle = 'sql_standard'")
	exec(t, conn, "SET extra_float_digits = -3")
	values := strings.Join(csTypesRows, ",\n")
	exec(t, conn, "INSERT INTO h VALUES "+values)
	exec(t, conn, "INSERT INTO cs_values VALUES "+values)
	// many rows, so that a load takes several chunks
	genRows := `INSERT INTO h SELECT g + 100, g % 2 = 0, g % 1000, g, g::bigint * 1000003, g / 7.0, g / 3.0,
	  g / 9.0, g / 100.0, g / 1000.0, g * 100, 'row ' || g, (g % 1000)::text, 'c' || g % 10, int4send(g),
	  date '2000-01-01' + g, time '00:00' + g * interval '1 second', timestamp '2000-01-01' + g * interval '1 minute',
	  timestamptz '2000-01-01 00:00+00' + g * interval '1 minute', md5(g::text)::uuid, g::numeric, g * interval '1 hour',
	  json_build_object('g', g), jsonb_build_object('g', g), ARRAY[g, g + 1], ARRAY['x' || g], '12:00+02', '10.0.0.1',
	  g % 100 + 1, (g % 100)::text, (ARRAY['sad', 'ok', 'happy'])[1 + g % 3]::cs_mood,
	  (g::bigint * 1000003 - 30000000)::numeric / 100, (g % 16)::bit(4), (g % 1024)::bit(10)::varbit, ('10.' || g % 256 || '.0.0/16')::cidr,
	  ('08:00:2b:01:02:' || lpad(to_hex(g % 256), 2, '0'))::macaddr, ('08:00:2b:01:02:03:04:' || lpad(to_hex(g % 256), 2, '0'))::macaddr8,
	  xmlelement(name r, xmlattributes(g AS g), 'v' || g), point(g, -g / 3.0), int4range(g, g + g % 7), ARRAY[(g * 0.01)::numeric::money]
	  FROM generate_series(1, 60000) g`
	if !csHasXML(t, conn) {
		genRows = strings.Replace(genRows, "xmlelement(name r, xmlattributes(g AS g), 'v' || g)", `'<r g="' || g || '">v' || g || '</r>'`, 1)
	}
	exec(t, conn, genRows)
	exec(t, conn, "INSERT INTO cs_select SELECT * FROM h")
	exec(t, conn, "RESET ALL")
	csSameRows(t, conn, "(SELECT * FROM h WHERE id < 100)", "cs_values")
	csSameRows(t, conn, "h", "cs_select")
	// as the client's own session prints them
	exec(t, conn, "SET DateStyle = 'Postgres, MDY'")
	exec(t, conn, "SET TimeZone = 'America/St_Johns'")
	csSameRows(t, conn, "h", "cs_select")
	exec(t, conn, "RESET ALL")

	// COPY FROM STDIN, text, CSV and binary (written by COPY TO), and binary (pgx)
	for _, f := range []struct{ table, format string }{{"cs_copy", "text"}, {"cs_csv", "csv"}, {"cs_binary", "binary"}} {
		var buf bytes.Buffer
		if _, err := conn.PgConn().CopyTo(ctx, &buf, "COPY h TO STDOUT (FORMAT "+f.format+")"); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.PgConn().CopyFrom(ctx, &buf, "COPY "+f.table+" FROM STDIN (FORMAT "+f.format+")"); err != nil {
			t.Fatalf("COPY %s FROM STDIN (%s): %v", f.table, f.format, err)
		}
		csSameRows(t, conn, "h", f.table)
	}
	// (pgx encodes no infinite dates and timestamps: finite ones only)
	const finite = " WHERE coalesce(isfinite(d) AND isfinite(ts) AND isfinite(tstz), true)"
	rows, err := conn.Query(ctx, "SELECT id, b, i2, i4, i8, f4, f8, t, ba, d, ts, tstz FROM h"+finite)
	if err != nil {
		t.Fatal(err)
	}
	var src [][]any
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		src = append(src, v)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"cs_bin"}, []string{"id", "b", "i2", "i4", "i8", "f4", "f8", "t", "ba", "d", "ts", "tstz"},
		pgx.CopyFromRows(src)); err != nil {
		t.Fatalf("binary COPY: %v", err)
	}
	csSameRows(t, conn, "(SELECT id, b, i2, i4, i8, f4, f8, t, ba, d, ts, tstz FROM h"+finite+")",
		"(SELECT id, b, i2, i4, i8, f4, f8, t, ba, d, ts, tstz FROM cs_bin)")

	// a value of 20 MB: a chunk of its own
	exec(t, conn, "INSERT INTO h (id, t, ba) VALUES (-1, repeat('é', 10000000), decode(repeat('ab', 1000000), 'hex'))")
	exec(t, conn, "INSERT INTO cs_values (id, t, ba) VALUES (-1, repeat('é', 10000000), decode(repeat('ab', 1000000), 'hex'))")
	csSameRows(t, conn, "(SELECT * FROM h WHERE id < 100)", "cs_values")
	exec(t, conn, "INSERT INTO cs_select SELECT * FROM h WHERE id = -1")
	csSameRows(t, conn, "h", "cs_select")

	// failures: as the heap's, and nothing written
	before := queryInt(t, conn, "SELECT count(*) FROM cs_select")
	for _, c := range []struct {
		sql, state string
	}{
		{"INSERT INTO cs_select SELECT * FROM h UNION ALL SELECT NULL, b, i2, i4, i8, f4, f8, n, n2, n38, nneg, t, vc, ch, ba, d, tm, ts, tstz, u, m, iv, j, jb, ai, at, ttz, ip, dom, domt, e, " + csTypesMore + " FROM h WHERE id = 1", "23502"},
		{"INSERT INTO cs_select (id, dom) SELECT g, 10 - g FROM generate_series(1, 20) g", "23514"},
		{"INSERT INTO cs_select (id, n2) VALUES (1, 12345678901.5)", "22003"},
		{"INSERT INTO cs_select (id, vc) VALUES (1, 'too long a value')", "22001"},
		{"INSERT INTO cs_select (id, i4) SELECT g, 1 / (60000 - g) FROM generate_series(1, 60000) g", "22012"},
	} {
		_, err := conn.Exec(ctx, c.sql)
		if got := sqlState(err); got != c.state {
			t.Errorf("%s: got %v (%s), want SQLSTATE %s", c.sql, err, got, c.state)
		}
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM cs_select"); n != before {
		t.Fatalf("failed loads left rows: %d, want %d", n, before)
	}

	// a rolled back load, and one rolled back to a savepoint
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO cs_select SELECT * FROM h"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SAVEPOINT s"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO cs_select SELECT * FROM h"); err != nil {
		t.Fatal(err)
	}
	var inTx int64
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM cs_select").Scan(&inTx); err != nil || inTx != 3*before {
		t.Fatalf("inside the transaction: %d rows (%v), want %d", inTx, err, 3*before)
	}
	if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT s"); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM cs_select").Scan(&inTx); err != nil || inTx != 2*before {
		t.Fatalf("after ROLLBACK TO SAVEPOINT: %d rows (%v), want %d", inTx, err, 2*before)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	csSameRows(t, conn, "h", "cs_select")

	// a load cancelled by statement_timeout while it streams: the session
	// and the table stay usable, the rows never appear
	exec(t, conn, "SET statement_timeout = '300ms'")
	start := time.Now()
	_, err = conn.Exec(ctx, "INSERT INTO cs_select SELECT h.* FROM h, generate_series(1, 1000)")
	if sqlState(err) != "57014" {
		t.Fatalf("a load past statement_timeout: %v after %s, want SQLSTATE 57014", err, time.Since(start))
	}
	exec(t, conn, "RESET statement_timeout")
	csSameRows(t, conn, "h", "cs_select")
	exec(t, conn, "CREATE TABLE cs_after ("+csCols(t, conn)+") USING columnstore")
	exec(t, conn, "INSERT INTO cs_after SELECT * FROM h")
	csSameRows(t, conn, "h", "cs_after")

	// several loads of one table in one statement, and a load that reads
	// the table it writes
	exec(t, conn, "CREATE TABLE cs_twice ("+csCols(t, conn)+") USING columnstore")
	exec(t, conn, "WITH a AS (INSERT INTO cs_twice SELECT * FROM h WHERE id < 50000 RETURNING 1) INSERT INTO cs_twice SELECT * FROM h WHERE id >= 50000")
	csSameRows(t, conn, "h", "cs_twice")
	exec(t, conn, "INSERT INTO cs_twice SELECT * FROM cs_twice")
	csSameRows(t, conn, "(SELECT * FROM h UNION ALL SELECT * FROM h)", "cs_twice")

	// UPDATE rewrites every column of the rows it changes, and RETURNING
	// and DELETE ... RETURNING give the values the heap's give
	exec(t, conn, "CREATE TEMP TABLE ret_h AS WITH u AS (UPDATE h SET i2 = i2 WHERE id % 3 = 0 OR id < 100 RETURNING *) SELECT * FROM u")
	exec(t, conn, "CREATE TEMP TABLE ret_cs AS WITH u AS (UPDATE cs_after SET i2 = i2 WHERE id % 3 = 0 OR id < 100 RETURNING *) SELECT * FROM u")
	csSameRows(t, conn, "ret_h", "ret_cs")
	csSameRows(t, conn, "h", "cs_after")
	exec(t, conn, "UPDATE h SET mo = mo / 3, t = t || '!' WHERE id % 7 = 1")
	exec(t, conn, "UPDATE cs_after SET mo = mo / 3, t = t || '!' WHERE id % 7 = 1")
	csSameRows(t, conn, "h", "cs_after")
	exec(t, conn, "CREATE TEMP TABLE del_cs AS WITH d AS (DELETE FROM cs_after WHERE id % 2 = 0 OR id < 100 RETURNING *) SELECT * FROM d")
	csSameRows(t, conn, "(SELECT * FROM h WHERE id % 2 = 0 OR id < 100)", "del_cs")
	csSameRows(t, conn, "(SELECT * FROM h WHERE NOT (id % 2 = 0 OR id < 100))", "cs_after")
	// money as the client reads it
	var money string
	if err := conn.QueryRow(ctx, "SELECT string_agg(mo::text, ' ' ORDER BY id) FROM cs_values WHERE id < 10").Scan(&money); err != nil {
		t.Fatal(err)
	}
	if want := "$92,233,720,368,547,758.07 -$92,233,720,368,547,758.08 $0.00 -$0.01 $1.23 $1,234.56 $12.35"; money != want {
		t.Fatalf("money read back as %q, want %q", money, want)
	}
}
