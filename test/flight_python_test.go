package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	osexec "os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmooncake/mooncake/test/pgtest"
)

// pyFlightModules are what testdata/flight_clients.py imports (make
// deps-python).
const pyFlightModules = "adbc_driver_flightsql.dbapi, adbc_driver_manager, pyarrow.flight, pandas, polars"

// requirePyFlight returns the python3 to run, or skips the test (fails it
// with MOONCAKE_REQUIRE_PG=1) when python3 or the client packages are
// missing.
func requirePyFlight(t *testing.T) string {
	t.Helper()
	python, err := osexec.LookPath("python3")
	if err != nil {
		skipOrFailPy(t, "python3 not found: %v", err)
	}
	if out, err := osexec.Command(python, "-c", "import "+pyFlightModules).CombinedOutput(); err != nil {
		skipOrFailPy(t, "the Python Flight clients (ADBC's Flight SQL driver, pyarrow, pandas, polars) are not installed (make deps-python): %v\n%s", err, out)
	}
	return python
}

// flightPythonHBA trusts postgres over TCP and checks everyone else's
// password with SCRAM.
const flightPythonHBA = "local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n"

// setupFlightPython makes the tables testdata/flight_clients.py reads: a
// mirror of many types that the role analyst may read, a mirror it may
// not, a heap table it may update, and a second database.
func setupFlightPython(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	exec(t, conn, `SET password_encryption = 'scram-sha-256'`)
	exec(t, conn, `CREATE ROLE analyst LOGIN PASSWORD 'analyst-pw'`)
	exec(t, conn, `CREATE DATABASE py_other`)
	exec(t, conn, `CREATE TABLE py_types (id int PRIMARY KEY, big bigint, amount numeric(12,2), name text,
		at timestamptz, day date, ok bool, ratio float8, uid uuid, doc jsonb, nums int[])`)
	exec(t, conn, `INSERT INTO py_types SELECT g, g * 1000000007::bigint, (g * 1.25 - 100)::numeric(12,2),
		'name ' || g || CASE WHEN g % 5 = 0 THEN ' ünï "q"' ELSE '' END,
		'2024-01-01 00:00:00+00'::timestamptz + g * interval '1 hour 1.123457 second', '2023-12-30'::date + g,
		g % 3 = 0, g / 7.0, md5(g::text)::uuid, jsonb_build_object('g', g, 'tags', jsonb_build_array('a', g)),
		CASE WHEN g % 4 = 0 THEN ARRAY[]::int[] ELSE ARRAY[g, -g, NULL] END
		FROM generate_series(1, 300) g`)
	exec(t, conn, `INSERT INTO py_types (id) VALUES (0)`)
	exec(t, conn, `CALL mooncake.create_table('py_types_m', 'py_types')`)
	exec(t, conn, `CREATE TABLE py_hidden (id int PRIMARY KEY, v text)`)
	exec(t, conn, `INSERT INTO py_hidden VALUES (1, 'secret')`)
	exec(t, conn, `CALL mooncake.create_table('py_hidden_m', 'py_hidden')`)
	exec(t, conn, `CREATE TABLE py_counter (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)`)
	exec(t, conn, `INSERT INTO py_counter (id) SELECT generate_series(1, 10)`)
	exec(t, conn, `GRANT SELECT ON py_types_m TO analyst`)
	// Its id column only: listed by GetTables with that column, not by
	// ListFlights (its flight reads every column), and not readable whole.
	exec(t, conn, `GRANT SELECT (id) ON py_hidden_m TO analyst`)
	exec(t, conn, `GRANT SELECT, UPDATE ON py_counter TO analyst`)
	waitMirror(t, conn, "py_types_m", 301)
	waitMirror(t, conn, "py_hidden_m", 1)
}

// pyCheck is one line of flight_clients.py's output.
type pyCheck map[string]json.RawMessage

// runFlightClients runs flight_clients.py as role and returns its checks
// by name.
func runFlightClients(t *testing.T, python, addr, role, password string) map[string]pyCheck {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := osexec.CommandContext(ctx, python, "testdata/flight_clients.py", addr, role, password)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("flight_clients.py as %s: %v\n%s", role, err, stderr.String())
	}
	checks := map[string]pyCheck{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var c pyCheck
		var name string
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil || json.Unmarshal(c["check"], &name) != nil {
			t.Fatalf("flight_clients.py line %.200q: %v", sc.Text(), err)
		}
		checks[name] = c
	}
	if _, ok := checks["done"]; !ok {
		t.Fatalf("flight_clients.py as %s did not finish:\n%s\n%s", role, out, stderr.String())
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("flight_clients.py as %s: stderr:\n%s", role, stderr.String())
	}
	return checks
}

// pyCheckError is the error a check reports, or "".
func pyCheckError(c pyCheck) string {
	var msg string
	if raw, ok := c["error"]; ok {
		json.Unmarshal(raw, &msg)
	}
	return msg
}

// canonicalRows runs query through pgx with every value in
// flight_clients.py's canonical text form.
func canonicalRows(t *testing.T, conn *pgx.Conn, query string) (names []string, rows [][]*string) {
	t.Helper()
	ctx := context.Background()
	sd, err := conn.PgConn().Prepare(ctx, "", query, nil)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	var exprs []string
	for _, f := range sd.Fields {
		names = append(names, f.Name)
		col := "q." + pgx.Identifier{f.Name}.Sanitize()
		switch f.DataTypeOID {
		case 700:
			exprs = append(exprs, "encode(float4send("+col+"), 'hex')")
		case 701:
			exprs = append(exprs, "encode(float8send("+col+"), 'hex')")
		case 1082:
			exprs = append(exprs, "to_char("+col+", 'YYYY-MM-DD')")
		case 1114, 1184:
			exprs = append(exprs, "(extract(epoch FROM "+col+") * 1000000)::bigint::text")
		default: // integers, numeric, bool, text, uuid, jsonb, int[]
			exprs = append(exprs, col+"::text")
		}
	}
	return names, pgRows(t, conn, "SELECT "+strings.Join(exprs, ", ")+" FROM ("+query+") q")
}

// checkRows compares a check's answer with query's through pgx, row by
// row in order.
func checkRows(t *testing.T, conn *pgx.Conn, c pyCheck, name, query string) {
	t.Helper()
	if c == nil {
		t.Errorf("%s: no such check in the output", name)
		return
	}
	if msg := pyCheckError(c); msg != "" {
		t.Errorf("%s: %s", name, msg)
		return
	}
	var cols []string
	var rows [][]*string
	if err := json.Unmarshal(c["columns"], &cols); err != nil {
		t.Errorf("%s: columns: %v", name, err)
		return
	}
	if err := json.Unmarshal(c["rows"], &rows); err != nil {
		t.Errorf("%s: rows: %v", name, err)
		return
	}
	wantCols, want := canonicalRows(t, conn, query)
	if !reflect.DeepEqual(cols, wantCols) {
		t.Errorf("%s: columns %v; want %v", name, cols, wantCols)
	}
	if g, w := rowsText(rows), rowsText(want); g != w {
		t.Errorf("%s: %d rows differ from PostgreSQL's %d for %s\ngot:\n%.3000s\nwant:\n%.3000s", name, len(rows), len(want), query, g, w)
	}
}

// checkJSON compares a field of a check with want, as JSON.
func checkJSON(t *testing.T, c pyCheck, name, field string, want any) {
	t.Helper()
	if msg := pyCheckError(c); msg != "" {
		t.Errorf("%s: %s", name, msg)
		return
	}
	var got any
	if err := json.Unmarshal(c[field], &got); err != nil {
		t.Errorf("%s.%s: %v", name, field, err)
		return
	}
	wb, _ := json.Marshal(want)
	var w any
	json.Unmarshal(wb, &w)
	if !reflect.DeepEqual(got, w) {
		gb, _ := json.Marshal(got)
		t.Errorf("%s.%s = %s; want %s", name, field, gb, wb)
	}
}

// checkFails requires a check to have failed with an error naming sqlstate.
func checkFails(t *testing.T, c pyCheck, name, sqlstate string) {
	t.Helper()
	msg := pyCheckError(c)
	if !strings.Contains(msg, "(SQLSTATE "+sqlstate+")") {
		t.Errorf("%s: error %q; want one naming SQLSTATE %s (answer: %s)", name, msg, sqlstate, c["rows"])
	}
}

// TestFlightPythonClients queries the Flight SQL service with ADBC's
// Flight SQL driver (into Arrow, pandas and polars) and pyarrow.flight, as
// a superuser and as a role with a SCRAM password and few privileges, and
// compares every answer with PostgreSQL's.
func TestFlightPythonClients(t *testing.T) {
	python := requirePyFlight(t)
	_, conn, addr := startFlight(t, pgtest.WithHBA(flightPythonHBA))
	setupFlightPython(t, conn)

	const all = `SELECT * FROM py_types_m ORDER BY id`
	arrowTypes := []string{"int32", "int64", "decimal128(12, 2)", "string", "timestamp[us, tz=UTC]", "date32[day]",
		"bool", "double", "extension<arrow.uuid>", "extension<arrow.json>", "list<item: int32>"}
	typesCols := []string{"id", "big", "amount", "name", "at", "day", "ok", "ratio", "uid", "doc", "nums"}
	for _, r := range []struct {
		role, password string
		superuser      bool
	}{{"postgres", "", true}, {"analyst", "analyst-pw", false}} {
		t.Run(r.role, func(t *testing.T) {
			checks := runFlightClients(t, python, addr, r.role, r.password)

			// Queries: into Arrow, pandas and polars, with parameters, a
			// prepared statement bound five times.
			for _, name := range []string{"adbc_arrow", "adbc_pandas", "adbc_polars"} {
				checkRows(t, conn, checks[name], name, all)
			}
			checkJSON(t, checks["adbc_arrow"], "adbc_arrow", "types", arrowTypes)
			checkRows(t, conn, checks["adbc_param"], "adbc_param", `SELECT * FROM py_types_m WHERE id = 5`)
			checkRows(t, conn, checks["adbc_prepared"], "adbc_prepared",
				`SELECT * FROM py_types_m WHERE id IN (3, 7, 11, 0, 299) ORDER BY array_position(ARRAY[3, 7, 11, 0, 299], id)`)
			checkRows(t, conn, checks["adbc_typed_params"], "adbc_typed_params",
				`SELECT count(*) AS n FROM py_types_m WHERE day >= '2024-03-01' AND ok AND amount > 0.5`)
			checkRows(t, conn, checks["adbc_null_param"], "adbc_null_param", `SELECT count(*) AS n FROM py_types_m WHERE big IS NULL`)

			// DML: execute() and executemany() report the rows changed.
			checkJSON(t, checks["adbc_update"], "adbc_update", "rowcount", 3)
			checkJSON(t, checks["adbc_executemany"], "adbc_executemany", "rowcount", 2)

			// Errors carry PostgreSQL's SQLSTATE in their text.
			checkFails(t, checks["adbc_unknown_column"], "adbc_unknown_column", "42703")
			if r.superuser {
				checkRows(t, conn, checks["adbc_hidden"], "adbc_hidden", `SELECT * FROM py_hidden_m ORDER BY id`)
				checkRows(t, conn, checks["flight_hidden"], "flight_hidden", `SELECT * FROM py_hidden_m`)
				checkJSON(t, checks["flight_wrong_password"], "flight_wrong_password", "authenticated", true) // trusted
			} else {
				checkFails(t, checks["adbc_hidden"], "adbc_hidden", "42501")
				checkFails(t, checks["flight_hidden"], "flight_hidden", "42501")
				checkFails(t, checks["flight_wrong_password"], "flight_wrong_password", "28P01")
			}

			// Metadata.
			checkJSON(t, checks["adbc_info"], "adbc_info", "vendor_name", "pg_mooncake")
			checkJSON(t, checks["adbc_table_types"], "adbc_table_types", "types",
				[]string{"FOREIGN TABLE", "MATERIALIZED VIEW", "TABLE", "VIEW"})
			checkJSON(t, checks["adbc_table_schema"], "adbc_table_schema", "columns", typesCols)
			checkJSON(t, checks["adbc_table_schema"], "adbc_table_schema", "types", arrowTypes)
			readable := map[string][]string{"py_counter": {"id", "n"}, "py_hidden_m": {"id"}, "py_types_m": typesCols}
			if r.superuser {
				readable["py_hidden"] = []string{"id", "v"}
				readable["py_hidden_m"] = []string{"id", "v"}
				readable["py_types"] = typesCols
			}
			var tables []any
			for _, name := range []string{"py_counter", "py_hidden", "py_hidden_m", "py_types", "py_types_m"} {
				if cols, ok := readable[name]; ok {
					tables = append(tables, []any{"postgres", "public", name, "TABLE", cols})
				}
			}
			checkJSON(t, checks["adbc_objects"], "adbc_objects", "tables", tables)

			// The database header.
			for _, name := range []string{"adbc_database", "flight_database"} {
				checkRows(t, conn, checks[name], name, fmt.Sprintf(`SELECT 'py_other'::text AS db, '%s'::text AS role`, r.role))
			}

			// Plain Flight: the mirrors the role may read, a path, SQL text.
			flights := []any{[]any{"public", "py_types_m", 11}}
			if r.superuser {
				flights = []any{[]any{"public", "py_hidden_m", 2}, []any{"public", "py_types_m", 11}}
			}
			checkJSON(t, checks["flight_list"], "flight_list", "flights", flights)
			checkRows(t, conn, checks["flight_path"], "flight_path", all)
			checkRows(t, conn, checks["flight_command"], "flight_command",
				`SELECT count(*) AS n, sum(amount) AS total, sum(big) AS big_sum, min(at) AS first_at,
				max(day) AS last_day, count(DISTINCT uid) AS uids, avg(ratio) AS mean FROM py_types_m`)
		})
	}

	// Each run added 1 to rows 1-3, 10 to row 4 and 100 to row 5.
	if got := queryString(t, conn, `SELECT string_agg(n::text, ',' ORDER BY id) FROM py_counter`); got != "2,2,2,20,200,0,0,0,0,0" {
		t.Errorf("py_counter after both runs: %s; want 2,2,2,20,200,0,0,0,0,0", got)
	}
}
