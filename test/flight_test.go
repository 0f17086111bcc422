package test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	aflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/pgmooncake/mooncake/flight"
	"github.com/pgmooncake/mooncake/test/pgtest"
)

// startFlight starts a cluster whose sidecar serves Flight SQL on a free
// port, and returns the cluster, a superuser connection and the address.
func startFlight(t *testing.T, opts ...pgtest.Option) (*pgtest.Cluster, *pgx.Conn, string) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	c, conn := startMooncake(t, append([]pgtest.Option{pgtest.WithSetting("pg_mooncake.flight_listen", addr)}, opts...)...)
	if _, ok := waitFor(10*time.Second, func() bool {
		return queryString(t, conn, `SELECT mooncake.bgworker_status()->>'flight_listening'`) == "true"
	}); !ok {
		t.Fatalf("the Flight service does not listen on %s:\n%s", addr, c.LogTail(20))
	}
	if got := queryString(t, conn, `SELECT mooncake.bgworker_status()->>'flight_address'`); got != addr {
		t.Fatalf("flight_address = %q; want %q", got, addr)
	}
	return c, conn, addr
}

// flightClient connects and authenticates as role.
func flightClient(t *testing.T, addr, role, password string, dialOpts ...grpc.DialOption) (*flightsql.Client, context.Context) {
	t.Helper()
	if len(dialOpts) == 0 {
		dialOpts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	cl, err := flightsql.NewClient(addr, nil, nil, dialOpts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	ctx, err := cl.Client.AuthenticateBasicToken(context.Background(), role, password)
	if err != nil {
		t.Fatalf("authenticate as %s: %v", role, err)
	}
	return cl, ctx
}

// flightRows runs a query through Flight and returns its schema and rows
// as PostgreSQL text (nil for NULL).
func flightRows(ctx context.Context, cl *flightsql.Client, query string) (*arrow.Schema, [][]*string, error) {
	info, err := cl.Execute(ctx, query)
	if err != nil {
		return nil, nil, err
	}
	return readInfo(ctx, cl, info)
}

func readInfo(ctx context.Context, cl *flightsql.Client, info *aflight.FlightInfo) (*arrow.Schema, [][]*string, error) {
	infoSchema, err := aflight.DeserializeSchema(info.Schema, memory.DefaultAllocator)
	if err != nil {
		return nil, nil, err
	}
	rdr, err := cl.DoGet(ctx, info.Endpoint[0].Ticket)
	if err != nil {
		return nil, nil, err
	}
	defer rdr.Release()
	if !rdr.Schema().Equal(infoSchema) {
		return nil, nil, fmt.Errorf("the batches' schema %s differs from GetFlightInfo's %s", rdr.Schema(), infoSchema)
	}
	var rows [][]*string
	for rdr.Next() {
		rec := rdr.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			row := make([]*string, rec.NumCols())
			for j, col := range rec.Columns() {
				if v, null := formatArrow(col, i, rec.Schema().Field(j)); !null {
					row[j] = &v
				}
			}
			rows = append(rows, row)
		}
	}
	return rdr.Schema(), rows, rdr.Err()
}

func formatArrow(col arrow.Array, i int, f arrow.Field) (string, bool) {
	oid, typmod, ok := flight.FieldType(f)
	if !ok {
		return col.ValueStr(i), false // the catalog calls' fixed schemas
	}
	return flight.FormatText(col, i, oid, typmod)
}

// queryString is the one value query returns on conn (a connection or a
// transaction), "" for NULL.
func queryString(t *testing.T, conn interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, query string) string {
	t.Helper()
	var s *string
	if err := conn.QueryRow(context.Background(), query).Scan(&s); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	if s == nil {
		return ""
	}
	return *s
}

// pgRows runs a query through pgx, rows in text.
func pgRows(t *testing.T, conn *pgx.Conn, query string) [][]*string {
	t.Helper()
	res := conn.PgConn().ExecParams(context.Background(), query, nil, nil, nil, nil).Read()
	if res.Err != nil {
		t.Fatalf("%s: %v", query, res.Err)
	}
	out := make([][]*string, len(res.Rows))
	for i, row := range res.Rows {
		out[i] = make([]*string, len(row))
		for j, v := range row {
			if v != nil {
				s := string(v)
				out[i][j] = &s
			}
		}
	}
	return out
}

func rowsText(rows [][]*string) string {
	var b strings.Builder
	for _, r := range rows {
		for j, v := range r {
			if j > 0 {
				b.WriteByte('|')
			}
			if v == nil {
				b.WriteString("∅")
			} else {
				b.WriteString(*v)
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func sqlStateOf(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return ""
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.Domain == "postgresql" {
			return info.Reason
		}
	}
	return ""
}

func scansCompleted(t *testing.T, conn *pgx.Conn) int64 {
	t.Helper()
	return queryInt(t, conn, `SELECT (mooncake.sidecar_request('{"op":"status"}')->'queries'->>'completed')::int`)
}

// TestFlightQueries compares answers through Flight with psql's for
// queries that run in DuckDB and queries that run in PostgreSQL.
func TestFlightQueries(t *testing.T) {
	_, conn, addr := startFlight(t)
	exec(t, conn, `CREATE TABLE trades (id bigint PRIMARY KEY, sym text, qty int, px numeric(12,2), at timestamptz,
		day date, ok bool, w double precision, u uuid, doc jsonb, tags text[], note varchar(20), small smallint, t time, blob bytea)`)
	exec(t, conn, `INSERT INTO trades SELECT g, 'S' || (g % 7), g % 100, (g * 1.25)::numeric(12,2),
		'2024-01-01 00:00:00+00'::timestamptz + g * interval '1 minute', '2024-01-01'::date + g % 30, g % 3 = 0,
		g / 7.0, md5(g::text)::uuid, jsonb_build_object('g', g), ARRAY['a' || g, NULL], 'n' || g, (g % 300)::smallint,
		'12:00'::time + g * interval '1 second', decode(lpad(to_hex(g), 8, '0'), 'hex')
		FROM generate_series(1, 5000) g`)
	exec(t, conn, `INSERT INTO trades (id) VALUES (0)`)
	exec(t, conn, `CALL mooncake.create_table('trades_m', 'trades')`)
	exec(t, conn, `CREATE TABLE syms (sym text PRIMARY KEY, name text)`)
	exec(t, conn, `INSERT INTO syms SELECT 'S' || g, 'name ' || g FROM generate_series(0, 6) g`)
	waitMirror(t, conn, "trades_m", 5001)

	cl, ctx := flightClient(t, addr, "postgres", "")
	for _, tc := range []struct {
		query  string
		duckdb bool // runs in DuckDB (a mirror scan with everything pushed)
	}{
		{`SELECT * FROM trades_m ORDER BY id`, true},
		{`SELECT id, px, at FROM trades_m WHERE qty > 50 ORDER BY id LIMIT 100`, true},
		{`SELECT sym, count(*), sum(px), avg(qty), min(at), max(day) FROM trades_m GROUP BY sym ORDER BY sym NULLS FIRST`, true},
		{`SELECT sum(w), stddev(qty), count(DISTINCT sym) FROM trades_m`, true},
		{`SELECT t.sym, s.name, count(*) FROM trades_m t JOIN syms s USING (sym) GROUP BY 1, 2 ORDER BY 1`, false},
		{`SELECT * FROM syms ORDER BY sym`, false},
		{`SELECT 1 AS one, 'x'::text AS x, NULL::int AS n, 2.50::numeric(4,2) AS d`, false},
		{`SELECT id, upper(sym) || '!' AS s FROM trades_m WHERE id < 10 ORDER BY id`, false},
	} {
		before := scansCompleted(t, conn)
		_, got, err := flightRows(ctx, cl, tc.query)
		if err != nil {
			t.Errorf("%s: %v", tc.query, err)
			continue
		}
		want := pgRows(t, conn, tc.query)
		if g, w := rowsText(got), rowsText(want); g != w {
			t.Errorf("%s: Flight and psql differ\nflight (%d rows):\n%.2000s\npsql (%d rows):\n%.2000s", tc.query, len(got), g, len(want), w)
		}
		// A DuckDB query is one scan; through PostgreSQL it would be one
		// too, so count the scans psql's run added as well.
		after := scansCompleted(t, conn)
		if tc.duckdb && after-before < 2 {
			t.Errorf("%s: %d scans for Flight and psql; want the Flight query to run in DuckDB", tc.query, after-before)
		}
	}

	// Errors carry their SQLSTATE.
	_, _, err := flightRows(ctx, cl, `SELECT nope FROM trades_m`)
	if sqlStateOf(err) != "42703" || status.Code(err) != codes.InvalidArgument {
		t.Errorf("unknown column: %v; want InvalidArgument with SQLSTATE 42703", err)
	}
	_, _, err = flightRows(ctx, cl, `SELECT 1/0`)
	if sqlStateOf(err) != "22012" {
		t.Errorf("division by zero: %v; want SQLSTATE 22012", err)
	}

	// Prepared statements with parameters.
	prep, err := cl.Prepare(ctx, `SELECT id, sym, px FROM trades_m WHERE qty = $1 AND sym = $2 ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer prep.Close(ctx)
	if n := len(prep.ParameterSchema().Fields()); n != 2 {
		t.Fatalf("parameter schema has %d fields; want 2", n)
	}
	for _, p := range []struct {
		qty int32
		sym string
	}{{7, "S0"}, {42, "S0"}, {1, "S1"}} {
		b := array.NewRecordBuilder(memory.DefaultAllocator, prep.ParameterSchema())
		b.Field(0).(*array.Int32Builder).Append(p.qty)
		b.Field(1).(*array.StringBuilder).Append(p.sym)
		rec := b.NewRecordBatch()
		prep.SetParameters(rec)
		info, err := prep.Execute(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, got, err := readInfo(ctx, cl, info)
		if err != nil {
			t.Fatal(err)
		}
		want := pgRows(t, conn, fmt.Sprintf(`SELECT id, sym, px FROM trades_m WHERE qty = %d AND sym = '%s' ORDER BY id`, p.qty, p.sym))
		if rowsText(got) != rowsText(want) {
			t.Errorf("prepared with (%d, %s): got\n%s\nwant\n%s", p.qty, p.sym, rowsText(got), rowsText(want))
		}
		rec.Release()
		b.Release()
	}

	// A query sees what another session committed just before it began.
	for i := 0; i < 20; i++ {
		exec(t, conn, fmt.Sprintf(`INSERT INTO trades (id, qty) VALUES (%d, 1)`, 100000+i))
		_, got, err := flightRows(ctx, cl, `SELECT count(*) FROM trades_m`)
		if want := fmt.Sprint(5002 + i); err != nil || len(got) != 1 || got[0][0] == nil || *got[0][0] != want {
			t.Fatalf("count right after insert %d = %v, %v; want %s", i, rowsText(got), err, want)
		}
	}
	exec(t, conn, `DELETE FROM trades WHERE id >= 100000`)

	// Updates.
	n, err := cl.ExecuteUpdate(ctx, `UPDATE trades SET qty = qty + 1 WHERE id BETWEEN 1 AND 10`)
	if err != nil || n != 10 {
		t.Errorf("ExecuteUpdate = %d, %v; want 10 rows", n, err)
	}
	// The next query sees that commit (it waits for the mirror).
	_, got, err := flightRows(ctx, cl, `SELECT sum(qty) FROM trades_m WHERE id <= 10`)
	if err != nil || len(got) != 1 || got[0][0] == nil || *got[0][0] != "65" {
		t.Errorf("sum after the update = %v, %v; want 65", rowsText(got), err)
	}
}

// waitMirror waits until a mirror is ready with n rows.
func waitMirror(t *testing.T, conn *pgx.Conn, name string, n int) {
	t.Helper()
	if _, ok := waitFor(60*time.Second, func() bool {
		return queryString(t, conn, fmt.Sprintf(`SELECT coalesce((SELECT state FROM mooncake.columnstore_tables WHERE table_name = '%s'), '')`, name)) == "ready"
	}); !ok {
		t.Fatalf("mirror %s is not ready", name)
	}
	if got := queryInt(t, conn, fmt.Sprintf(`SELECT count(*) FROM %s`, name)); got != int64(n) {
		t.Fatalf("mirror %s has %d rows; want %d", name, got, n)
	}
}

// TestFlightMetadata checks the catalog calls.
func TestFlightMetadata(t *testing.T) {
	_, conn, addr := startFlight(t)
	exec(t, conn, `CREATE SCHEMA sales`)
	exec(t, conn, `CREATE TABLE sales.orders (region text, id int, amount numeric(10,2), PRIMARY KEY (region, id))`)
	exec(t, conn, `CALL mooncake.create_table('sales.orders_m', 'sales.orders')`)
	cl, ctx := flightClient(t, addr, "postgres", "")

	read := func(info *aflight.FlightInfo, err error) [][]*string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		_, rows, err := readInfo(ctx, cl, info)
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	if rows := read(cl.GetCatalogs(ctx)); rowsText(rows) != "postgres\n" {
		t.Errorf("catalogs = %q", rowsText(rows))
	}
	pattern := "sal%"
	if rows := read(cl.GetDBSchemas(ctx, &flightsql.GetDBSchemasOpts{DbSchemaFilterPattern: &pattern})); rowsText(rows) != "postgres|sales\n" {
		t.Errorf("schemas = %q", rowsText(rows))
	}
	schema := "sales"
	info, err := cl.GetTables(ctx, &flightsql.GetTablesOpts{DbSchemaFilterPattern: &schema, IncludeSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	rdr, err := cl.DoGet(ctx, info.Endpoint[0].Ticket)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rdr.Next() {
		rec := rdr.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			name := rec.Column(2).(*array.String).Value(i)
			typ := rec.Column(3).(*array.String).Value(i)
			s, err := aflight.DeserializeSchema(rec.Column(4).(*array.Binary).Value(i), memory.DefaultAllocator)
			if err != nil {
				t.Fatal(err)
			}
			tables = append(tables, fmt.Sprintf("%s %s %s", name, typ, s.Field(2).Type))
		}
	}
	rdr.Release()
	sort.Strings(tables)
	if got := strings.Join(tables, "; "); got != "orders TABLE decimal(10, 2); orders_m TABLE decimal(10, 2)" {
		t.Errorf("tables = %s", got)
	}
	if rows := read(cl.GetTableTypes(ctx)); len(rows) != 4 {
		t.Errorf("table types = %q", rowsText(rows))
	}
	if rows := read(cl.GetPrimaryKeys(ctx, flightsql.TableRef{DBSchema: &schema, Table: "orders_m"})); rowsText(rows) != "postgres|sales|orders_m|region|1|orders_pkey\npostgres|sales|orders_m|id|2|orders_pkey\n" {
		t.Errorf("primary key of the mirror = %q", rowsText(rows))
	}
	if rows := read(cl.GetXdbcTypeInfo(ctx, nil)); len(rows) < 10 {
		t.Errorf("type info has %d rows", len(rows))
	}
	if rows := read(cl.GetSqlInfo(ctx, []flightsql.SqlInfo{flightsql.SqlInfoFlightSqlServerName})); len(rows) != 1 {
		t.Errorf("sql info = %q", rowsText(rows))
	}
}

// TestFlightPrivileges checks that Flight serves only authenticated
// clients, with PostgreSQL's authentication and privileges.
func TestFlightPrivileges(t *testing.T) {
	_, conn, addr := startFlight(t, pgtest.WithHBA(
		"local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n"))
	exec(t, conn, `SET password_encryption = 'scram-sha-256'`)
	exec(t, conn, `CREATE ROLE alice LOGIN PASSWORD 'alice-pw'`)
	exec(t, conn, `CREATE ROLE bob LOGIN PASSWORD 'bob-pw'`)
	exec(t, conn, `CREATE TABLE secret (id int PRIMARY KEY, v text)`)
	exec(t, conn, `INSERT INTO secret VALUES (1, 'x'), (2, 'y')`)
	exec(t, conn, `CALL mooncake.create_table('secret_m', 'secret')`)
	exec(t, conn, `GRANT SELECT ON secret_m TO alice`)
	waitMirror(t, conn, "secret_m", 2)

	// No token, a made-up token, a wrong password, an unknown role.
	cl, err := flightsql.NewClient(addr, nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Execute(context.Background(), `SELECT 1`); status.Code(err) != codes.Unauthenticated {
		t.Errorf("without a token: %v; want Unauthenticated", err)
	}
	if _, err := cl.Client.AuthenticateBasicToken(context.Background(), "alice", "wrong"); status.Code(err) != codes.Unauthenticated || sqlStateOf(err) != "28P01" {
		t.Errorf("wrong password: %v; want Unauthenticated with 28P01", err)
	}
	if _, err := cl.Client.AuthenticateBasicToken(context.Background(), "nobody", "x"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("unknown role: %v; want Unauthenticated", err)
	}

	alice, actx := flightClient(t, addr, "alice", "alice-pw")
	if _, rows, err := flightRows(actx, alice, `SELECT v FROM secret_m ORDER BY id`); err != nil || rowsText(rows) != "x\ny\n" {
		t.Errorf("alice reads the mirror: %q, %v", rowsText(rows), err)
	}
	if _, _, err := flightRows(actx, alice, `SELECT * FROM secret`); status.Code(err) != codes.PermissionDenied || sqlStateOf(err) != "42501" {
		t.Errorf("alice reads the source: %v; want PermissionDenied with 42501", err)
	}
	bob, bctx := flightClient(t, addr, "bob", "bob-pw")
	if _, _, err := flightRows(bctx, bob, `SELECT * FROM secret_m`); status.Code(err) != codes.PermissionDenied || sqlStateOf(err) != "42501" {
		t.Errorf("bob reads the mirror: %v; want PermissionDenied with 42501", err)
	}
	// bob sees no mirror in the listings.
	info, err := bob.GetTables(bctx, &flightsql.GetTablesOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if _, rows, err := readInfo(bctx, bob, info); err != nil || strings.Contains(rowsText(rows), "secret") {
		t.Errorf("bob's tables: %q, %v", rowsText(rows), err)
	}
	if _, err := bob.ExecuteUpdate(bctx, `DROP FOREIGN TABLE secret_m`); sqlStateOf(err) != "42501" {
		t.Errorf("bob drops the mirror: %v; want 42501", err)
	}
}

// TestFlightConcurrentClients runs 16 clients at once.
func TestFlightConcurrentClients(t *testing.T) {
	_, conn, addr := startFlight(t)
	exec(t, conn, `CREATE TABLE c (id int PRIMARY KEY, g int)`)
	exec(t, conn, `INSERT INTO c SELECT i, i % 16 FROM generate_series(1, 100000) i`)
	exec(t, conn, `CALL mooncake.create_table('c_m', 'c')`)
	waitMirror(t, conn, "c_m", 100000)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for k := 0; k < 16; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			cl, err := flightsql.NewClient(addr, nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				errs <- err
				return
			}
			defer cl.Close()
			ctx, err := cl.Client.AuthenticateBasicToken(context.Background(), "postgres", "")
			if err != nil {
				errs <- err
				return
			}
			for r := 0; r < 5; r++ {
				_, rows, err := flightRows(ctx, cl, fmt.Sprintf(`SELECT id FROM c_m WHERE g = %d`, k))
				if err != nil {
					errs <- err
					return
				}
				if len(rows) != 6250 {
					errs <- fmt.Errorf("client %d: %d rows; want 6250", k, len(rows))
					return
				}
			}
		}(k)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestFlightCancel cancels a long query: DuckDB stops within 100 ms.
func TestFlightCancel(t *testing.T) {
	_, conn, addr := startFlight(t)
	exec(t, conn, `CREATE TABLE big (id int PRIMARY KEY)`)
	exec(t, conn, `INSERT INTO big SELECT generate_series(1, 20000)`)
	exec(t, conn, `CALL mooncake.create_table('big_m', 'big')`)
	waitMirror(t, conn, "big_m", 20000)
	cl, ctx := flightClient(t, addr, "postgres", "")
	// A cross join DuckDB takes minutes over.
	query := `SELECT count(*) FROM big_m a, big_m b, big_m c WHERE a.id + b.id + c.id = 7`
	for _, how := range []string{"disconnect", "CancelFlightInfo"} {
		info, err := cl.Execute(ctx, query)
		if err != nil {
			t.Fatal(err)
		}
		qctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			rdr, err := cl.DoGet(qctx, info.Endpoint[0].Ticket)
			if err == nil {
				for rdr.Next() {
				}
				err = rdr.Err()
				rdr.Release()
			}
			done <- err
		}()
		time.Sleep(1500 * time.Millisecond)
		before := queryInt(t, conn, `SELECT (mooncake.sidecar_request('{"op":"status"}')->'queries'->>'cancelled')::int`)
		if how == "disconnect" {
			cancel()
		} else {
			if _, err := cl.CancelFlightInfo(ctx, &aflight.CancelFlightInfoRequest{Info: info}); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case err := <-done:
			t.Logf("%s: DoGet ended with %v", how, err)
			if err == nil {
				t.Errorf("%s: the query finished", how)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the query did not stop", how)
		}
		cancel()
		var stopMs float64
		if _, ok := waitFor(5*time.Second, func() bool {
			st := queryString(t, conn, `SELECT mooncake.sidecar_request('{"op":"status"}')->'queries'`)
			var n int64
			fmt.Sscanf(queryString(t, conn, `SELECT (mooncake.sidecar_request('{"op":"status"}')->'queries'->>'cancelled')`), "%d", &n)
			_ = st
			return n > before
		}); !ok {
			t.Fatalf("%s: the sidecar counted no cancelled query: %s", how, queryString(t, conn, `SELECT mooncake.sidecar_request('{"op":"status"}')->>'queries'`))
		}
		stopMs = float64(queryInt(t, conn, `SELECT (mooncake.sidecar_request('{"op":"status"}')->'queries'->'last_cancel'->>'stop_us')::int`)) / 1000
		executing := queryString(t, conn, `SELECT mooncake.sidecar_request('{"op":"status"}')->'queries'->'last_cancel'->>'executing'`)
		t.Logf("%s: DuckDB stopped %.1f ms after the cancellation (executing: %s)", how, stopMs, executing)
		if executing != "true" {
			t.Errorf("%s: the query was not executing in DuckDB when cancelled", how)
		}
		if stopMs > 100 {
			t.Errorf("%s: DuckDB stopped %.1f ms after the cancellation; want ≤ 100 ms", how, stopMs)
		}
	}
}

// TestFlightDifferential runs the random analytic queries of
// TestDifferential on the mirrors through Flight and through psql's
// protocol, and requires the same answers (MOONCAKE_DIFF_FLIGHT_QUERIES,
// default 500; the seed is TestDifferential's).
func TestFlightDifferential(t *testing.T) {
	seed, count := diffSeed(t), 500
	if s := os.Getenv("MOONCAKE_DIFF_FLIGHT_QUERIES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("MOONCAKE_DIFF_FLIGHT_QUERIES=%q: want a positive integer", s)
		}
		count = n
	}
	t.Logf("seed %d, %d queries", seed, count)
	_, conn, addr := startFlight(t)
	ctx := context.Background()
	for _, s := range diffSetup(icuCollation(t, conn)) {
		exec(t, conn, s)
	}
	for _, m := range diffMirrors {
		exec(t, conn, fmt.Sprintf(`CALL mooncake.create_table('%s', '%s')`, m.mirror, m.source))
	}
	for _, s := range diffChanges {
		exec(t, conn, s)
	}
	for _, m := range diffMirrors {
		waitConverged(t, conn, m.source, m.mirror, 30*time.Second)
	}
	exec(t, conn, `ANALYZE diff_fact, diff_cust, diff_prod, diff_region`)
	exec(t, conn, `SET statement_timeout = '30s'`)
	cl, fctx := flightClient(t, addr, "postgres", "")
	if _, err := cl.ExecuteUpdate(fctx, `SET statement_timeout = '30s'`); err != nil {
		t.Fatal(err)
	}

	g := &qgen{r: rand.New(rand.NewPCG(seed, 0x6d6f6f6e))}
	tz := ""
	failures, nErr, nDuck := 0, 0, 0
	start := time.Now()
	for i := range count {
		q := g.query()
		if q.tz != tz {
			exec(t, conn, "SET TimeZone = '"+q.tz+"'")
			if _, err := cl.ExecuteUpdate(fctx, "SET TimeZone = '"+q.tz+"'"); err != nil {
				t.Fatal(err)
			}
			tz = q.tz
		}
		sqlText := diffSubstitute(q.sql, true)
		before := scansCompleted(t, conn)
		fl := flightDiff(fctx, cl, sqlText, q.params)
		if scansCompleted(t, conn) > before && fl.state == "" {
			nDuck++
		}
		ps := runDiff(ctx, conn, sqlText, q.params, "diff_flight")
		utcTimestamps(&ps, fl.tzCols)
		if (ps.state == "") != (fl.state == "") && strings.Contains(q.sql, " LIMIT ") {
			full := q
			full.sql = q.sql[:strings.LastIndex(q.sql, " LIMIT ")]
			sqlText = diffSubstitute(full.sql, true)
			fl = flightDiff(fctx, cl, sqlText, q.params)
			ps = runDiff(ctx, conn, sqlText, q.params, "diff_flight")
			utcTimestamps(&ps, fl.tzCols)
			q = full
		}
		if ps.state != "" {
			nErr++
		}
		if d := compareDiff(q, ps, fl.diffResult); d != "" {
			failures++
			t.Errorf("query %d of seed %d: %s\nTimeZone %s, parameters %q\n%s\npsql (timestamptz in UTC): %s\nflight: %s",
				i+1, seed, d, q.tz, q.params, sqlText, ps.show(10), fl.show(10))
			if failures >= 10 {
				t.Fatalf("stopping after %d differences", failures)
			}
		}
	}
	t.Logf("%d queries in %v: %d failed alike, %d answered by DuckDB scans through Flight, %d differences",
		count, time.Since(start).Round(time.Millisecond), nErr, nDuck, failures)
}

// flightAnswer is a Flight answer, with the columns of type timestamptz
// (Arrow timestamps in UTC, which FormatText shows in UTC).
type flightAnswer struct {
	diffResult
	tzCols []int
}

// utcTimestamps shows psql's timestamptz values of cols in UTC, as the
// Arrow answer has them: the same instants.
func utcTimestamps(r *diffResult, cols []int) {
	for _, row := range r.rows {
		for _, c := range cols {
			if c >= len(row) || row[c] == nil {
				continue
			}
			for _, layout := range []string{"2006-01-02 15:04:05.999999-07:00:00", "2006-01-02 15:04:05.999999-07:00", "2006-01-02 15:04:05.999999-07"} {
				if ts, err := time.Parse(layout, *row[c]); err == nil {
					v := ts.UTC().Format("2006-01-02 15:04:05.999999") + "+00"
					row[c] = &v
					break
				}
			}
		}
	}
}

// flightDiff runs a query through Flight (a prepared statement when it has
// parameters, bound as text), rows as PostgreSQL text.
func flightDiff(ctx context.Context, cl *flightsql.Client, sqlText string, params []string) flightAnswer {
	var info *aflight.FlightInfo
	var err error
	if params == nil {
		info, err = cl.Execute(ctx, sqlText)
	} else {
		var prep *flightsql.PreparedStatement
		prep, err = cl.Prepare(ctx, sqlText)
		if err == nil {
			defer prep.Close(ctx)
			fields := make([]arrow.Field, len(params))
			for i := range params {
				fields[i] = arrow.Field{Name: fmt.Sprintf("p%d", i+1), Type: arrow.BinaryTypes.String}
			}
			b := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema(fields, nil))
			for i, p := range params {
				b.Field(i).(*array.StringBuilder).Append(p)
			}
			rec := b.NewRecordBatch()
			b.Release()
			prep.SetParameters(rec)
			rec.Release()
			info, err = prep.Execute(ctx)
		}
	}
	if err != nil {
		return flightErr(err)
	}
	schema, rows, err := readInfo(ctx, cl, info)
	if err != nil {
		return flightErr(err)
	}
	var tz []int
	for i, f := range schema.Fields() {
		if oid, _, _ := flight.FieldType(f); oid == 1184 {
			tz = append(tz, i)
		}
	}
	return flightAnswer{diffResult{rows: rows}, tz}
}

func flightErr(err error) flightAnswer {
	st := sqlStateOf(err)
	if st == "" {
		st = "(no SQLSTATE)"
	}
	return flightAnswer{diffResult: diffResult{state: st, err: err.Error()}}
}

// TestFlightTLSAndTokens checks the service with a certificate (only TLS
// clients that trust it get in) and that tokens expire.
func TestFlightTLSAndTokens(t *testing.T) {
	ca := newTestCA(t, "mooncake test CA")
	certPEM, keyPEM := ca.issue(t, "localhost")
	_, conn, addr := startFlight(t,
		pgtest.WithFile("flight.crt", certPEM, 0o644),
		pgtest.WithFile("flight.key", keyPEM, 0o600),
		pgtest.WithSetting("pg_mooncake.flight_tls_cert", "flight.crt"),
		pgtest.WithSetting("pg_mooncake.flight_tls_key", "flight.key"),
		pgtest.WithSetting("pg_mooncake.flight_token_ttl", "2s"))
	exec(t, conn, `CREATE TABLE t (id int PRIMARY KEY)`)
	exec(t, conn, `INSERT INTO t SELECT generate_series(1, 10)`)
	exec(t, conn, `CALL mooncake.create_table('t_m', 't')`)
	waitMirror(t, conn, "t_m", 10)

	// Without TLS the handshake fails.
	plain, err := flightsql.NewClient(addr, nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	hctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := plain.Client.AuthenticateBasicToken(hctx, "postgres", ""); err == nil {
		t.Error("a client without TLS authenticated")
	}
	// A client that does not trust the certificate fails too.
	other := newTestCA(t, "other CA")
	untrusted := x509.NewCertPool()
	untrusted.AppendCertsFromPEM(other.pem)
	bad, err := flightsql.NewClient(addr, nil, nil, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: untrusted, ServerName: "localhost"})))
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if _, err := bad.Client.AuthenticateBasicToken(hctx, "postgres", ""); err == nil {
		t.Error("a client that does not trust the certificate authenticated")
	}

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)
	cl, ctx := flightClient(t, addr, "postgres", "",
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "localhost"})))
	if _, rows, err := flightRows(ctx, cl, `SELECT count(*) FROM t_m`); err != nil || rowsText(rows) != "10\n" {
		t.Fatalf("over TLS: %q, %v", rowsText(rows), err)
	}
	// A token unused for longer than pg_mooncake.flight_token_ttl expires.
	time.Sleep(3 * time.Second)
	if _, _, err := flightRows(ctx, cl, `SELECT 1`); status.Code(err) != codes.Unauthenticated {
		t.Errorf("with an expired token: %v; want Unauthenticated", err)
	}
	ctx, err = cl.Client.AuthenticateBasicToken(context.Background(), "postgres", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, rows, err := flightRows(ctx, cl, `SELECT count(*) FROM t_m`); err != nil || rowsText(rows) != "10\n" {
		t.Errorf("after authenticating again: %q, %v", rowsText(rows), err)
	}
}

// TestFlightListenInsecure checks that a Flight address other hosts can
// reach needs TLS or pg_mooncake.sidecar_listen_insecure, which works
// without the FDW's TCP listener (pg_mooncake.sidecar_listen) too.
func TestFlightListenInsecure(t *testing.T) {
	port := freePort(t)
	wildcard := fmt.Sprintf("0.0.0.0:%d", port)
	c, conn := startMooncake(t, pgtest.WithSetting("pg_mooncake.flight_listen", wildcard))
	// The sidecar decides about Flight before it answers the socket.
	if got := queryString(t, conn, `SELECT mooncake.bgworker_status()->>'flight_listening'`); got != "false" {
		t.Fatalf("flight_listening = %s on %s without TLS; want false:\n%s", got, wildcard, c.LogTail(20))
	}

	c, conn = startMooncake(t, pgtest.WithSetting("pg_mooncake.flight_listen", wildcard),
		pgtest.WithSetting("pg_mooncake.sidecar_listen_insecure", "on"))
	if _, ok := waitFor(10*time.Second, func() bool {
		return queryString(t, conn, `SELECT mooncake.bgworker_status()->>'flight_listening'`) == "true"
	}); !ok {
		t.Fatalf("the Flight service does not listen on %s with sidecar_listen_insecure:\n%s", wildcard, c.LogTail(20))
	}
	cl, ctx := flightClient(t, fmt.Sprintf("127.0.0.1:%d", port), "postgres", "")
	if _, rows, err := flightRows(ctx, cl, `SELECT 1 AS one`); err != nil || rowsText(rows) != "1\n" {
		t.Errorf("SELECT 1 = %q, %v", rowsText(rows), err)
	}
}
