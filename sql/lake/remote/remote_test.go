package remote

import (
	"context"
	gosql "database/sql"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/pgmooncake/mooncake/test/s3test"
)

func TestMatchGlob(t *testing.T) {
	for _, c := range []struct {
		glob, key string
		want      bool
	}{
		{"a/*.parquet", "a/x.parquet", true},
		{"a/*.parquet", "a/b/x.parquet", false},
		{"a/**/*.parquet", "a/b/c/x.parquet", true},
		{"a/**/*.parquet", "a/x.parquet", true},
		{"a/x?.csv", "a/x1.csv", true},
		{"a/[ab].csv", "a/c.csv", false},
	} {
		if got := matchGlob(c.glob, c.key); got != c.want {
			t.Errorf("matchGlob(%q, %q) = %v", c.glob, c.key, got)
		}
	}
	if p := globPrefix("events/2024/*/x.parquet"); p != "events/2024/" {
		t.Errorf("globPrefix: %q", p)
	}
}

func TestPick(t *testing.T) {
	all := []*Secret{{Name: "any"}, {Name: "bucket", Scope: []string{"s3://b"}}, {Name: "deep", Scope: []string{"s3://b/deep/"}}}
	for url, want := range map[string]string{"s3://b/deep/x": "deep", "s3a://b/x": "bucket", "s3://c/x": "any"} {
		if got := Pick(all, url); got == nil || got.Name != want {
			t.Errorf("Pick(%s) = %v, want %s", url, got, want)
		}
	}
	if Pick(all[1:], "s3://c/x") != nil {
		t.Error("a scoped secret was picked for another bucket")
	}
}

// TestColumnsOnly fetches of Parquet objects written by pyarrow (row
// groups, dictionaries, NULLs, lists, structs) only what a query's
// columns need into local copies whose other bytes are 0xFF, and has
// DuckDB answer queries on them: the answers equal those on the whole
// files, so DuckDB never reads a byte that was not fetched.
func TestColumnsOnly(t *testing.T) {
	dir := t.TempDir()
	for _, script := range []string{"lake_files.py", "lake_s3_files.py"} {
		if out, err := osexec.Command("python3", filepath.Join("..", "..", "..", "test", "testdata", script), dir).CombinedOutput(); err != nil {
			if os.Getenv("MOONCAKE_REQUIRE_PG") == "" {
				t.Skipf("%s: %v %s", script, err, out)
			}
			t.Fatalf("%s: %v %s", script, err, out)
		}
	}
	srv := s3test.Start(t)
	srv.Bucket(t, "bucket")
	srv.Upload(t, dir, "bucket", "")

	st, err := NewStore(t.TempDir(), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	st.poison = true
	sess := st.Session([]*Secret{{Name: "s", KeyID: s3test.KeyID, Secret: s3test.Secret, Region: "us-east-1",
		Endpoint: srv.Endpoint, URLStyle: "path"}})
	db, err := gosql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	answer := func(q, file string) string {
		t.Helper()
		rows, err := db.QueryContext(ctx, strings.ReplaceAll(q, "FILE", "'"+file+"'"))
		if err != nil {
			return "error: " + err.Error()
		}
		defer rows.Close()
		var b strings.Builder
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			rows.Scan(ptrs...)
			fmt.Fprintln(&b, vals...)
		}
		if err := rows.Err(); err != nil {
			return "error: " + err.Error()
		}
		return b.String()
	}
	for _, c := range []struct {
		object string
		cols   []string
		query  string
	}{
		{"events.parquet", []string{"id", "name"}, "SELECT id, name FROM read_parquet(FILE) WHERE name IS NOT NULL ORDER BY id"},
		{"events.parquet", []string{"tags", "meta", "id"}, "SELECT id, tags, meta.v FROM read_parquet(FILE) WHERE meta.k = 3 ORDER BY id"},
		{"events.parquet", []string{"amount", "day"}, "SELECT sum(amount), min(day), max(day) FROM read_parquet(FILE)"},
		{"events.parquet", []string{}, "SELECT count(*) FROM read_parquet(FILE)"},
		{"wide.parquet", []string{"c3", "c7"}, "SELECT sum(c3), count(*) FROM read_parquet(FILE) WHERE c7 > 500000"},
		{"wide.parquet", []string{"s"}, "SELECT s, count(*) FROM read_parquet(FILE) GROUP BY s ORDER BY s LIMIT 5"},
		{"wide.parquet", []string{"c29", "s"}, "SELECT c29 FROM read_parquet(FILE) WHERE s = 'value 7' ORDER BY c29 LIMIT 3"},
	} {
		objs, err := sess.Expand(ctx, "s3://bucket/"+c.object)
		if err != nil {
			t.Fatal(err)
		}
		o := objs[0]
		if err := st.Columns(ctx, o, c.cols); err != nil {
			t.Fatal(err)
		}
		got, want := answer(c.query, o.Local), answer(c.query, filepath.Join(dir, c.object))
		if got != want || strings.HasPrefix(want, "error") {
			t.Errorf("%s on %s with %v fetched:\n%s\nwant\n%s", c.query, c.object, c.cols, got, want)
		}
	}
	// The control: a column not fetched reads as junk, so the comparisons
	// above could fail. (Columns of small files come along: ranges close
	// to each other are fetched in one request.)
	objs, err := sess.Expand(ctx, "s3://bucket/wide.parquet")
	if err != nil {
		t.Fatal(err)
	}
	objs[0].Local += ".control"
	if err := st.Columns(ctx, objs[0], []string{"c3"}); err != nil {
		t.Fatal(err)
	}
	q := "SELECT sum(c20) FROM read_parquet(FILE)"
	if got, want := answer(q, objs[0].Local), answer(q, filepath.Join(dir, "wide.parquet")); got == want {
		t.Errorf("a column never fetched gave the right answer %s: the junk does not show", got)
	}
	s := st.Stats()
	t.Logf("cache: %+v", s)
	if s.Fetched == 0 || s.Served == 0 {
		t.Errorf("stats: %+v", s)
	}
}

// TestEviction keeps the cache under its limit: objects no query reads
// leave it, least recently used first, and come back when read again.
func TestEviction(t *testing.T) {
	dir := t.TempDir()
	if out, err := osexec.Command("python3", filepath.Join("..", "..", "..", "test", "testdata", "lake_s3_files.py"), dir, "20000").CombinedOutput(); err != nil {
		if os.Getenv("MOONCAKE_REQUIRE_PG") == "" {
			t.Skipf("%v %s", err, out)
		}
		t.Fatalf("%v %s", err, out)
	}
	srv := s3test.Start(t)
	srv.Bucket(t, "bucket")
	data, _ := os.ReadFile(filepath.Join(dir, "wide.parquet"))
	for i := 0; i < 4; i++ {
		srv.Put(t, "bucket", fmt.Sprintf("w%d.parquet", i), data)
	}
	limit := int64(len(data)) * 3 / 2
	st, err := NewStore(t.TempDir(), limit)
	if err != nil {
		t.Fatal(err)
	}
	sess := st.Session([]*Secret{{Name: "s", KeyID: s3test.KeyID, Secret: s3test.Secret, Region: "us-east-1", Endpoint: srv.Endpoint, URLStyle: "path"}})
	ctx := context.Background()
	objs, err := sess.Expand(ctx, "s3://bucket/w*.parquet")
	if err != nil || len(objs) != 4 {
		t.Fatalf("%d objects, %v", len(objs), err)
	}
	for round := 0; round < 2; round++ {
		for _, o := range objs {
			release := st.Pin([]*Object{o})
			if err := st.Whole(ctx, o); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(o.Local)
			if err != nil || string(got) != string(data) {
				t.Fatalf("local copy of %s differs (%v)", o.URL, err)
			}
			release()
			if s := st.Stats(); s.Cached > limit {
				t.Errorf("cached %d bytes, limit %d", s.Cached, limit)
			}
		}
	}
	s := st.Stats()
	if s.Evicted < 6 || s.Fetched < 8*int64(len(data)) {
		t.Errorf("stats after reading 4 objects twice through a cache holding one: %+v", s)
	}
}
