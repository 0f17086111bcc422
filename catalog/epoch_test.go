package catalog

import (
	"context"
	gosql "database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// The apply loop keeps its statements prepared (Writer.prepare), but
// DuckDB binds a kept statement again on every execution once a catalog
// it reads has changed after it was prepared (here: another view of the
// same database replaced, as a flush of another mirror does). The writer
// prepares a statement again when the catalog epoch has moved, and the
// statement prepared again is planned once, not at each execution.
// DuckDB's profiler tells whether an execution planned the statement.
func TestWriterStatementsFollowTheCatalog(t *testing.T) {
	connector, err := duckdb.NewConnector("", nil)
	if err != nil {
		t.Fatal(err)
	}
	db := gosql.OpenDB(connector)
	defer db.Close()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	profile := filepath.Join(t.TempDir(), "profile.json")
	for _, s := range []string{
		"ATTACH ':memory:' AS pg_epoch",
		"CREATE TABLE pg_epoch.main.t (a INTEGER)",
		"CREATE VIEW pg_epoch.main.other AS SELECT 1 AS x",
		"SET enable_profiling = 'json'",
		"SET profiling_mode = 'detailed'",
		"SET profiling_output = " + QuoteLiteral(profile),
	} {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	// planned executes st and reports whether DuckDB bound and planned it
	// for that execution.
	planned := func(st *gosql.Stmt) bool {
		t.Helper()
		if _, err := st.ExecContext(ctx); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(profile)
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			Planner float64 `json:"planner"`
		}
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("profile %s: %v", b, err)
		}
		return p.Planner > 0
	}
	const insert = "INSERT INTO pg_epoch.main.t SELECT 1"
	replaceOther := func() {
		t.Helper()
		if _, err := conn.ExecContext(ctx, "CREATE OR REPLACE VIEW pg_epoch.main.other AS SELECT 2 AS x"); err != nil {
			t.Fatal(err)
		}
	}

	// DuckDB: a kept statement, once the catalog changed, is planned at
	// every execution.
	st, err := conn.PrepareContext(ctx, insert)
	if err != nil {
		t.Fatal(err)
	}
	planned(st) // the first execution may bind once more
	if planned(st) {
		t.Fatal("a kept statement was planned again without a change of the catalog")
	}
	replaceOther()
	for i := 0; i < 3; i++ {
		if !planned(st) {
			t.Fatalf("execution %d after the catalog changed reused the plan: DuckDB now keeps the new binding, and preparing again on a new epoch is no longer needed", i+1)
		}
	}
	st.Close()

	// The writer: the same statement while the epoch stays, a new one once
	// it moved, which is not planned again.
	w := NewWriter(db, conn)
	a, err := w.prepare(ctx, insert)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := w.prepare(ctx, insert); b != a {
		t.Fatal("the writer prepared its statement again without a change of the catalog")
	}
	replaceOther()
	catalogChanged() // what viewChanging does around the replacement
	c, err := w.prepare(ctx, insert)
	if err != nil {
		t.Fatal(err)
	}
	if c == a {
		t.Fatal("the writer kept its statement across a change of the catalog")
	}
	planned(c)
	for i := 0; i < 3; i++ {
		if planned(c) {
			t.Fatalf("execution %d of the statement prepared again was planned again", i+1)
		}
	}
	w.closeStmts()
}
