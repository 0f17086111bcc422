package test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// mirroredType is one column type TestTypes mirrors, with values that probe
// its edges. Values are SQL expressions; each appears once in the initial
// copy and once through replication.
type mirroredType struct {
	name   string   // subtest and table name suffix
	decl   string   // the column's type
	values []string // SQL expressions of the type (NULL is added)
	noEq   bool     // the type has no equality operator: compare its text only
}

// incompressible builds n kilobytes of text pglz cannot shrink below the
// TOAST threshold, so the value is stored out of line and an UPDATE that
// leaves it alone replicates it as "unchanged".
func incompressible(kb int) string {
	return fmt.Sprintf("(SELECT string_agg(md5(i::text || 'x'), '') FROM generate_series(1, %d) i)", kb*32)
}

var thousandDigitNumeric = "9" + strings.Repeat("1234567890", 99) + "123456789"

var mirroredTypes = []mirroredType{
	{name: "smallint", decl: "smallint", values: []string{"0", "-32768", "32767"}},
	{name: "integer", decl: "integer", values: []string{"0", "-2147483648", "2147483647"}},
	{name: "bigint", decl: "bigint", values: []string{"0", "-9223372036854775808", "9223372036854775807"}},
	{name: "real", decl: "real", values: []string{"0", "'-0'", "'NaN'", "'Infinity'", "'-Infinity'", "3.4028235e38", "1e-45", "0.1", "-1.17549435e-38"}},
	{name: "double", decl: "double precision", values: []string{"0", "'-0'", "'NaN'", "'Infinity'", "'-Infinity'",
		"1.7976931348623157e308", "5e-324", "0.30000000000000004", "-2.2250738585072014e-308"}},
	{name: "numeric_p_s", decl: "numeric(12,3)", values: []string{"0", "'-0.0'", "1.5", "-999999999.999", "0.001", "'NaN'"}},
	{name: "numeric_neg_scale", decl: "numeric(5,-2)", values: []string{"1234567", "-50", "'NaN'"}},
	{name: "numeric", decl: "numeric", values: []string{"0", "'-0.0'", "1.50", "'1e-1000'", "'-1e-1000'", thousandDigitNumeric,
		"'-" + thousandDigitNumeric + "." + thousandDigitNumeric + "'", "'NaN'", "'Infinity'", "'-Infinity'", "'0.000000000000000000000000000000000000001'"}},
	{name: "text", decl: "text", values: []string{"''", `'it''s "quoted"'`, `E'back\\slash\\'`, `E'new\nline\r\ttab'`, "'ünïcode ✓ 𝄞'",
		"'NULL'", "'ends in BC'", "'a,b;c|d'", incompressible(200)}},
	{name: "varchar", decl: "varchar(10)", values: []string{"''", "'abc'", "'ten chars!'", "'  spaces  '"}},
	{name: "char", decl: "char(5)", values: []string{"''", "'ab'", "'abcde'", "' x'"}},
	{name: "boolean", decl: "boolean", values: []string{"true", "false"}},
	{name: "date", decl: "date", values: []string{"'2024-06-05'", "'2000-02-29'", "'0044-03-15 BC'", "'4713-11-24 BC'", "'0001-01-01'",
		"'5874897-12-31'", "'200000-06-01'", "'infinity'", "'-infinity'"}},
	{name: "timestamp", decl: "timestamp", values: []string{"'2024-06-05 10:00:00.123456'", "'1999-12-31 23:59:59.999999'",
		"'0044-03-15 10:00:00 BC'", "'4713-11-24 00:00:00 BC'", "'200000-01-01 00:00:00.000001'",
		"'294247-01-10 04:00:54.775806'", "'294247-01-10 04:00:54.775807'", "'294276-12-31 23:59:59.999999'",
		"'infinity'", "'-infinity'"}},
	{name: "timestamp3", decl: "timestamp(3)", values: []string{"'2024-06-05 10:00:00.123'", "'294276-12-31 23:59:59.999'"}},
	{name: "timestamptz", decl: "timestamptz", values: []string{"'2024-06-05 10:00:00.5+05:30'", "'1970-01-01 00:00:00+00'",
		"'0044-03-15 10:00:00+00 BC'", "'4713-11-24 00:00:00+00 BC'", "'200000-01-01 00:00:00+00'",
		"'294276-12-31 23:59:59.999999+00'", "'infinity'", "'-infinity'"}},
	{name: "time", decl: "time", values: []string{"'00:00:00'", "'23:59:59.999999'", "'24:00:00'", "'12:34:56.5'"}},
	{name: "time2", decl: "time(2)", values: []string{"'12:34:56.78'"}},
	{name: "timetz", decl: "timetz", values: []string{"'00:00:00+00'", "'10:00:00.123456+05:30:15'", "'24:00:00-15:59'"}},
	{name: "interval", decl: "interval", values: []string{"'0'", "'1 year 2 mons 3 days 04:05:06.789'", "'-1 day +00:00:00.000001'",
		"'1 mon -1 day'", "'178000000 years'", "'-178000000 years'", "'-2562047788:00:54.775807'"}},
	{name: "interval_hm", decl: "interval hour to minute", values: []string{"'5 days 03:04'"}},
	{name: "uuid", decl: "uuid", values: []string{"'00000000-0000-0000-0000-000000000000'", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
		"'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF'"}},
	{name: "json", decl: "json", noEq: true, values: []string{`'{"a" : 1,  "a": [2, 2.50]}'`, "'[]'", "'null'", `'"\u00e9 ✓"'`, "' 1e400 '"}},
	{name: "jsonb", decl: "jsonb", values: []string{`'{"b": [1, 2.50, null], "a": {"x": "y"}}'`, "'null'", "'{}'", "'1e400'", `'"\u00e9"'`}},
	{name: "bytea", decl: "bytea", values: []string{`'\x'`, `'\x00ff5c27'`, `'quote''s'::bytea`, "decode(" + incompressible(100) + ", 'hex')"}},
	{name: "money", decl: "money", values: []string{"0", "'-92233720368547758.08'", "'92233720368547758.07'", "1234.56", "-0.01"}},
	{name: "inet", decl: "inet", values: []string{"'192.168.1.1'", "'10.0.0.1/8'", "'::1'", "'2001:db8::1/64'"}},
	{name: "cidr", decl: "cidr", values: []string{"'10.0.0.0/8'", "'2001:db8::/32'"}},
	{name: "macaddr", decl: "macaddr", values: []string{"'08:00:2b:01:02:03'"}},
	{name: "enum", decl: "mood", values: []string{"'sad'", "'happy'", `'with "quote'`}},
	{name: "domain_numeric", decl: "positive_price", values: []string{"0.01", "99999999.99", "1.5"}},
	{name: "domain_int", decl: "small_count", values: []string{"0", "100"}},
	{name: "domain_timestamp", decl: "event_time", values: []string{"'2024-06-05 10:00:00'", "'294276-12-31 23:59:59'", "'4713-11-24 00:00:00 BC'"}},
	{name: "domain_of_domain", decl: "cheap_price", values: []string{"0.5", "9.99"}},
	{name: "int_array", decl: "integer[]", values: []string{"'{}'", "'{1,NULL,3}'", "'{{1,2},{3,4}}'", "'[2:3]={7,8}'", "'{NULL}'"}},
	{name: "text_array", decl: "text[]", values: []string{"'{}'", `'{"a\"b",NULL,"","NULL","x,y","{}","back\\slash"," sp "}'`,
		"ARRAY[" + incompressible(50) + ", 'b']"}},
	{name: "numeric_array", decl: "numeric(10,2)[]", values: []string{"'{NaN,1.50,-3}'"}},
	{name: "float_array", decl: "float8[]", values: []string{"'{NaN,-Infinity,-0,0.1}'"}},
	{name: "timestamptz_array", decl: "timestamptz[]", values: []string{`'{"2024-06-05 10:00:00+00",infinity,"0044-03-15 10:00:00+00 BC"}'`}},
	{name: "bytea_array", decl: "bytea[]", values: []string{`ARRAY['\x00'::bytea, NULL, '\x'::bytea]`}},
	{name: "uuid_array", decl: "uuid[]", values: []string{"'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,NULL}'"}},
	{name: "enum_array", decl: "mood[]", values: []string{`'{sad,"with \"quote"}'`}},
	{name: "composite", decl: "pair", values: []string{`ROW(1, 'x y')::pair`, `ROW(NULL, NULL)::pair`, `ROW(2, '(,)"')::pair`}},
	{name: "range", decl: "int4range", values: []string{"'[1,10)'", "'empty'", "'(,5]'"}},
	{name: "tstzrange", decl: "tstzrange", values: []string{"'[2024-06-05 10:00:00+00,infinity)'"}},
	{name: "point", decl: "point", noEq: true, values: []string{"'(1.5,-2)'", "'(NaN,Infinity)'"}},
	{name: "bit", decl: "bit(4)", values: []string{"'1010'"}},
	{name: "varbit", decl: "varbit", values: []string{"''", "'10101'"}},
	{name: "xml", decl: "xml", noEq: true, values: []string{"'<a x=\"1\">text &amp; more</a>'", "'plain content'"}},
	{name: "tsvector", decl: "tsvector", values: []string{"'a fat:1A cat'"}},
	{name: "name", decl: "name", values: []string{"'a name'"}},
	{name: "qchar", decl: `"char"`, values: []string{"'x'"}},
	{name: "oid", decl: "oid", values: []string{"4294967295"}},
	{name: "pg_lsn", decl: "pg_lsn", values: []string{"'16/B374D848'"}},
	// Types of extensions travel as their text.
	{name: "hstore", decl: "hstore", values: []string{`'"a"=>"1", "b"=>NULL, "c d"=>"e\"f"'`, "''"}},
	{name: "ltree", decl: "ltree", values: []string{"'Top.Science.Astronomy'", "''"}},
	{name: "citext", decl: "citext", values: []string{"'MiXeD Case'", "'mixed case'"}},
}

const typesSetup = `
CREATE EXTENSION hstore;
CREATE EXTENSION ltree;
CREATE EXTENSION citext;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'with "quote');
CREATE TYPE pair AS (a integer, b text);
CREATE DOMAIN positive_price AS numeric(10,2) CHECK (VALUE > 0);
CREATE DOMAIN cheap_price AS positive_price CHECK (VALUE < 10);
CREATE DOMAIN small_count AS integer CHECK (VALUE BETWEEN 0 AND 100);
CREATE DOMAIN event_time AS timestamp(0);
`

// TestTypes mirrors a table per type, with values at the type's edges,
// NULLs and (for varlena types) values stored out of line, first through
// the initial copy, then through replication (inserts, updates of the
// value, of another column leaving a TOASTed value unchanged, of the key,
// deletes). After each stage, after the changes are flushed to Iceberg and
// after the sidecar restarts from Iceberg, the mirror must hold exactly
// the source's rows: the same text of every value, and equal values where
// the type has equality.
func TestTypes(t *testing.T) {
	c, conn := startMooncake(t)
	ctx := context.Background()
	for _, stmt := range strings.Split(strings.TrimSpace(typesSetup), ";\n") {
		exec(t, conn, stmt)
	}
	// A server built without libxml (PyPI's PostgreSQL 18) has the xml
	// type but takes no values of it.
	types := mirroredTypes
	if _, err := conn.Exec(ctx, "SELECT '<a/>'::xml"); sqlState(err) == "0A000" {
		t.Log("this server has no XML support: the xml type is left out")
		types = slices.DeleteFunc(slices.Clone(types), func(mt mirroredType) bool { return mt.name == "xml" })
	}

	insert := func(mt mirroredType, base int) {
		t.Helper()
		values := append(append([]string(nil), mt.values...), "NULL")
		var rows []string
		for i, v := range values {
			rows = append(rows, fmt.Sprintf("(%d, %s)", base+i, v))
		}
		exec(t, conn, "INSERT INTO t_"+mt.name+" (id, v) VALUES "+strings.Join(rows, ", "))
	}
	for _, mt := range types {
		exec(t, conn, "CREATE TABLE t_"+mt.name+" (id integer PRIMARY KEY, v "+mt.decl+", u integer NOT NULL DEFAULT 0)")
		insert(mt, 1)
	}

	t.Run("copy", func(t *testing.T) {
		for _, mt := range types {
			t.Run(mt.name, func(t *testing.T) {
				if _, err := conn.Exec(ctx, "CALL mooncake.create_table('m_"+mt.name+"', 't_"+mt.name+"')"); err != nil {
					t.Fatalf("create_table: %v", err)
				}
				checkMirror(t, conn, mt)
			})
			if t.Failed() {
				return
			}
		}
	})
	if t.Failed() {
		return
	}

	// Replication: the same values again, then every kind of change: of
	// another column (every row; a TOASTed value arrives as "unchanged"),
	// of the value, of the key, deletes.
	changes := func(mt mirroredType, round int) {
		t.Helper()
		tbl := "t_" + mt.name
		exec(t, conn, "UPDATE "+tbl+" SET u = u + 1")
		exec(t, conn, fmt.Sprintf("UPDATE %s SET v = (SELECT s.v FROM %[1]s s WHERE s.id = %[1]s.id + 1) WHERE id %% 4 = %d", tbl, round%4))
		exec(t, conn, fmt.Sprintf("UPDATE %s SET id = id + 10000 WHERE id %% 5 = %d AND id < 10000", tbl, round%5))
		exec(t, conn, fmt.Sprintf("DELETE FROM %s WHERE id %% 7 = %d", tbl, round%7))
	}
	for _, mt := range types {
		insert(mt, 1001)
		changes(mt, 0)
	}
	t.Run("replicated", func(t *testing.T) {
		for _, mt := range types {
			t.Run(mt.name, func(t *testing.T) { checkMirror(t, conn, mt) })
		}
	})

	// Flushed to Iceberg every 2 s: the rows come from Parquet now, and the
	// next changes update and delete rows in data files.
	time.Sleep(3 * time.Second)
	t.Run("flushed", func(t *testing.T) {
		for _, mt := range types {
			t.Run(mt.name, func(t *testing.T) { checkMirror(t, conn, mt) })
		}
	})
	for _, mt := range types {
		insert(mt, 2001)
		changes(mt, 1)
	}
	time.Sleep(3 * time.Second)
	t.Run("flushed_changes", func(t *testing.T) {
		for _, mt := range types {
			t.Run(mt.name, func(t *testing.T) { checkMirror(t, conn, mt) })
		}
	})

	// A restarted sidecar rebuilds the mirrors from the Iceberg metadata
	// alone, and replays the changes it had not flushed.
	for _, mt := range types {
		changes(mt, 2)
	}
	c.KillSidecar(t)
	c.WaitSidecar(t)
	t.Run("restarted", func(t *testing.T) {
		for _, mt := range types {
			t.Run(mt.name, func(t *testing.T) { checkMirror(t, conn, mt) })
		}
	})
}

// checkMirror compares t_<name> with its mirror m_<name> as multisets of
// rows: by the text of every column, and by value where the type has
// equality. It retries for a while, since a restarted sidecar may still be
// loading its mirrors.
func checkMirror(t *testing.T, conn *pgx.Conn, mt mirroredType) {
	t.Helper()
	src, mirror := "t_"+mt.name, "m_"+mt.name
	queries := []string{
		fmt.Sprintf("SELECT count(*) FROM (SELECT id, v::text, u FROM %s EXCEPT ALL SELECT id, v::text, u FROM %s) d", src, mirror),
		fmt.Sprintf("SELECT count(*) FROM (SELECT id, v::text, u FROM %s EXCEPT ALL SELECT id, v::text, u FROM %s) d", mirror, src),
	}
	if !mt.noEq {
		queries = append(queries,
			fmt.Sprintf("SELECT count(*) FROM (SELECT * FROM %s EXCEPT ALL SELECT * FROM %s) d", src, mirror),
			fmt.Sprintf("SELECT count(*) FROM (SELECT * FROM %s EXCEPT ALL SELECT * FROM %s) d", mirror, src))
	}
	var lastErr error
	var counts []int64
	if _, ok := waitFor(15*time.Second, func() bool {
		counts, lastErr = counts[:0], nil
		for _, q := range queries {
			var n int64
			if err := conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
				lastErr = fmt.Errorf("%s: %w", q, err)
				// A broken mirror stays broken; anything else may be
				// the restarted sidecar still loading.
				return sqlState(err) == "XX001"
			}
			counts = append(counts, n)
		}
		for _, n := range counts {
			if n != 0 {
				return false
			}
		}
		return true
	}); ok && lastErr == nil {
		return
	}
	if lastErr != nil {
		t.Fatalf("%s: %v", mt.decl, lastErr)
	}
	t.Errorf("%s: %s and %s differ: rows of the source missing from the mirror, and extra in it, by text %d, %d; by value %v",
		mt.decl, src, mirror, counts[0], counts[1], counts[2:])
	rows, err := conn.Query(context.Background(), fmt.Sprintf(
		"(SELECT 'source' AS side, id, left(v::text, 120) FROM %[1]s EXCEPT ALL SELECT 'source', id, left(v::text, 120) FROM %[2]s) UNION ALL "+
			"(SELECT 'mirror', id, left(v::text, 120) FROM %[2]s EXCEPT ALL SELECT 'mirror', id, left(v::text, 120) FROM %[1]s) ORDER BY 2, 1 LIMIT 20", src, mirror))
	if err != nil {
		t.Logf("listing the differences: %v", err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var side string
		var id int
		var v *string
		if err := rows.Scan(&side, &id, &v); err != nil {
			t.Logf("listing the differences: %v", err)
			return
		}
		val := "NULL"
		if v != nil {
			val = *v
		}
		t.Logf("  only in %s: id %d, v %s", side, id, val)
	}
}
