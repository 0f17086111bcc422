package delta

import (
	"context"
	gosql "database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// requireEnv makes a missing python3 or deltalake a failure instead of a
// skip (as for the project's other tests that need outside tools).
const requireEnv = "MOONCAKE_REQUIRE_PG"

type expectedTable struct {
	Version  int64                 `json:"version"`
	Reader   string                `json:"reader"`
	Columns  []string              `json:"columns"`
	Rows     [][]string            `json:"rows"`
	Versions map[string][][]string `json:"versions"`
}

// deltaRSTables runs testdata/make_tables.py once per test binary.
var deltaRSTables struct {
	dir      string
	expected map[string]expectedTable
	err      error
	skip     string
	done     bool
}

func tablesByDeltaRS(t *testing.T) (string, map[string]expectedTable) {
	t.Helper()
	d := &deltaRSTables
	if !d.done {
		d.done = true
		python, err := osexec.LookPath("python3")
		if err != nil {
			d.skip = fmt.Sprintf("python3 not found: %v", err)
		} else if out, err := osexec.Command(python, "-c", "import deltalake, pyarrow").CombinedOutput(); err != nil {
			d.skip = fmt.Sprintf("the deltalake package (delta-rs) is not installed (pip install deltalake): %v\n%s", err, out)
		} else {
			dir, err := os.MkdirTemp("", "delta-tables-")
			if err != nil {
				d.err = err
			} else {
				d.dir = dir
				cmd := osexec.Command(python, "testdata/make_tables.py", dir)
				cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
				var stderr strings.Builder
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				if err != nil {
					d.err = fmt.Errorf("make_tables.py: %v\n%s", err, stderr.String())
				} else if err := json.Unmarshal(out, &d.expected); err != nil {
					d.err = fmt.Errorf("make_tables.py output: %v", err)
				}
			}
		}
	}
	if d.skip != "" {
		if os.Getenv(requireEnv) == "1" {
			t.Fatalf("%s (%s=1, so this is a failure)", d.skip, requireEnv)
		}
		t.Skipf("%s (set %s=1 to fail instead)", d.skip, requireEnv)
	}
	if d.err != nil {
		t.Fatal(d.err)
	}
	return d.dir, d.expected
}

func TestMain(m *testing.M) {
	code := m.Run()
	if deltaRSTables.dir != "" {
		os.RemoveAll(deltaRSTables.dir)
	}
	os.Exit(code)
}

func openDuckDB(t *testing.T) *gosql.DB {
	t.Helper()
	connector, err := duckdb.NewConnector("", func(execer driver.ExecerContext) error {
		_, err := execer.ExecContext(context.Background(), "SET TimeZone = 'UTC'", nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	db := gosql.OpenDB(connector)
	t.Cleanup(func() { db.Close() })
	return db
}

// readRows reads the snapshot through DuckDB: deletion vectors decoded,
// ReadSQL run, every value in its canonical text, rows sorted.
func readRows(t *testing.T, db *gosql.DB, s *Snapshot, root string) ([]string, [][]string) {
	t.Helper()
	ctx := context.Background()
	deleted := map[string][]uint64{}
	for _, f := range s.Files {
		if f.DeletionVector == nil {
			continue
		}
		pos, err := f.DeletionVector.Positions(ctx, LocalFS(), root)
		if err != nil {
			t.Fatalf("positions of %s: %v", f.Path, err)
		}
		deleted[f.Path] = pos
	}
	q, err := s.ReadSQL(deleted)
	if err != nil {
		t.Fatalf("ReadSQL: %v", err)
	}
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		t.Fatalf("query: %v\n%s", err, q)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	types, _ := rows.ColumnTypes()
	var out [][]string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = canon(v, types[i].DatabaseTypeName())
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("query: %v\n%s", err, q)
	}
	sortRows(out)
	return cols, out
}

func sortRows(rows [][]string) {
	sort.Slice(rows, func(i, j int) bool { return slices.Compare(rows[i], rows[j]) < 0 })
}

// canon renders a value scanned from DuckDB as testdata/canon.py renders
// Python's.
func canon(v any, typ string) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case bool:
		return strconv.FormatBool(v)
	case int8, int16, int32, int64, uint8, uint16, uint32, uint64:
		return fmt.Sprint(v)
	case *big.Int:
		return v.String()
	case float32:
		return fmt.Sprintf("%.17g", float64(v))
	case float64:
		return fmt.Sprintf("%.17g", v)
	case duckdb.Decimal:
		s := new(big.Int).Abs(v.Value).String()
		if sc := int(v.Scale); sc > 0 {
			if len(s) <= sc {
				s = strings.Repeat("0", sc-len(s)+1) + s
			}
			s = s[:len(s)-sc] + "." + s[len(s)-sc:]
		}
		if v.Value.Sign() < 0 {
			s = "-" + s
		}
		return s
	case string:
		return v
	case []byte:
		return fmt.Sprintf(`\x%x`, v)
	case time.Time:
		if typ == "DATE" {
			return v.Format("2006-01-02")
		}
		return v.UTC().Format("2006-01-02 15:04:05.000000")
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ": " + canon(v[k], "")
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = canon(e, "")
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case duckdb.Map:
		parts := make([]string, 0, len(v))
		for k, e := range v {
			parts = append(parts, canon(k, "")+"="+canon(e, ""))
		}
		sort.Strings(parts)
		return "map{" + strings.Join(parts, ", ") + "}"
	case duckdb.OrderedMap:
		return canon(&v, typ)
	case *duckdb.OrderedMap:
		keys, vals := v.Keys(), v.Values()
		parts := make([]string, len(keys))
		for i := range keys {
			parts[i] = canon(keys[i], "") + "=" + canon(vals[i], "")
		}
		sort.Strings(parts)
		return "map{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprintf("%T(%v)", v, v)
}

func compareRows(t *testing.T, what string, got, want [][]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d rows, want %d", what, len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("%s: row %d differs:\n got  %q\n want %q", what, i, got[i], want[i])
			return
		}
	}
}

// checkTable loads a table at its newest version and at the older
// versions the expectation lists, and compares the rows with it.
func checkTable(t *testing.T, db *gosql.DB, root string, exp expectedTable) *Snapshot {
	t.Helper()
	ctx := context.Background()
	s, err := Load(ctx, LocalFS(), root, nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if s.Version != exp.Version {
		t.Errorf("version %d, want %d", s.Version, exp.Version)
	}
	var names []string
	for _, f := range s.Schema {
		names = append(names, f.Name)
	}
	if !slices.Equal(names, exp.Columns) {
		t.Errorf("columns %q, want %q", names, exp.Columns)
	}
	cols, rows := readRows(t, db, s, root)
	if !slices.Equal(cols, exp.Columns) {
		t.Errorf("DuckDB columns %q, want %q", cols, exp.Columns)
	}
	compareRows(t, fmt.Sprintf("version %d", s.Version), rows, exp.Rows)
	for vs, want := range exp.Versions {
		v, _ := strconv.ParseInt(vs, 10, 64)
		old, err := Load(ctx, LocalFS(), root, &v)
		if err != nil {
			t.Fatalf("Load version %d: %v", v, err)
		}
		if old.Version != v {
			t.Errorf("Load(%d).Version = %d", v, old.Version)
		}
		_, rows := readRows(t, db, old, root)
		compareRows(t, "version "+vs, rows, want)
	}
	return s
}

func field(t *testing.T, s *Snapshot, name string) Field {
	t.Helper()
	for _, f := range s.Schema {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("no column %q in %+v", name, s.Schema)
	return Field{}
}

func TestDeltaRSTables(t *testing.T) {
	dir, expected := tablesByDeltaRS(t)
	db := openDuckDB(t)
	names := make([]string, 0, len(expected))
	for n := range expected {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			s := checkTable(t, db, filepath.Join(dir, name), expected[name])
			t.Logf("version %d, %d files, %d rows", s.Version, len(s.Files), len(expected[name].Rows))
		})
	}
}

func TestDeltaRSSnapshots(t *testing.T) {
	dir, _ := tablesByDeltaRS(t)
	ctx := context.Background()
	load := func(t *testing.T, name string) *Snapshot {
		t.Helper()
		s, err := Load(ctx, LocalFS(), filepath.Join(dir, name), nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	t.Run("types", func(t *testing.T) {
		s := load(t, "appends")
		want := map[string]string{
			"id": "long", "i": "integer", "sh": "short", "by": "byte", "f": "float", "d": "double",
			"flag": "boolean", "s": "string", "bin": "binary", "dt": "date", "ts": "timestamp",
			"ntz": "timestamp_ntz", "dec": "decimal(10,2)",
		}
		for name, typ := range want {
			if f := field(t, s, name); f.Type != typ || f.PhysicalName != name || !f.Nullable {
				t.Errorf("column %s: %+v, want type %s", name, f, typ)
			}
		}
		if f := field(t, s, "st"); !strings.HasPrefix(f.Type, `{"type":"struct","fields":[{"name":"a","type":"integer"`) {
			t.Errorf("st: %s", f.Type)
		}
		if f := field(t, s, "arr"); !strings.Contains(f.Type, `"type":"array"`) || !strings.Contains(f.Type, `"elementType":"long"`) {
			t.Errorf("arr: %s", f.Type)
		}
		if f := field(t, s, "m"); !strings.Contains(f.Type, `"type":"map"`) || !strings.Contains(f.Type, `"keyType":"string"`) {
			t.Errorf("m: %s", f.Type)
		}
		if s.ColumnMapping != "none" || len(s.PartitionColumns) != 0 || len(s.Files) != 3 {
			t.Errorf("mapping %q, partitions %v, %d files", s.ColumnMapping, s.PartitionColumns, len(s.Files))
		}
		for _, f := range s.Files {
			if f.NumRecords != 10 || f.Size <= 0 || !filepath.IsAbs(f.Path) || f.DeletionVector != nil {
				t.Errorf("file %+v", f)
			}
			if _, err := os.Stat(f.Path); err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("partitions", func(t *testing.T) {
		s := load(t, "partitioned")
		if !slices.Equal(s.PartitionColumns, []string{"ps", "pi", "pd"}) {
			t.Fatalf("partition columns %v", s.PartitionColumns)
		}
		seen := map[string]bool{}
		for _, f := range s.Files {
			if _, err := os.Stat(f.Path); err != nil {
				t.Errorf("file path not decoded: %v", err)
			}
			if len(f.PartitionValues) != 3 {
				t.Errorf("%s: partition values %v", f.Path, f.PartitionValues)
			}
			ps := f.PartitionValues["ps"]
			switch {
			case ps == nil:
				seen["NULL"] = true
			case *ps == "a b/c":
				seen["a b/c"] = true
				if !strings.Contains(f.Path, "/ps=a%20b%2Fc/") {
					t.Errorf("path %s: the log's encoding was not undone once", f.Path)
				}
			default:
				seen[*ps] = true
			}
			if f.PartitionValues["pi"] == nil {
				seen["pi NULL"] = true
			}
		}
		for _, want := range []string{"NULL", "a b/c", "x=y%z", "ü", "a", "pi NULL"} {
			if !seen[want] {
				t.Errorf("no file with partition value %q", want)
			}
		}
	})

	t.Run("column mapping", func(t *testing.T) {
		s := load(t, "colmap")
		if s.ColumnMapping != "name" {
			t.Fatalf("mapping %q", s.ColumnMapping)
		}
		for _, f := range s.Schema {
			if !strings.HasPrefix(f.PhysicalName, "col-") || f.FieldID == 0 {
				t.Errorf("column %+v: no physical name or id", f)
			}
		}
		if f := field(t, s, "st"); !strings.Contains(f.Type, "delta.columnMapping.physicalName") {
			t.Errorf("st keeps no nested physical names: %s", f.Type)
		}
		for _, f := range s.Files {
			if _, ok := f.PartitionValues["flag"]; !ok || len(f.PartitionValues) != 1 {
				t.Errorf("partition values by logical name: %v", f.PartitionValues)
			}
		}
	})

	t.Run("checkpoint", func(t *testing.T) {
		root := filepath.Join(dir, "checkpointed")
		if _, err := os.Stat(filepath.Join(root, "_delta_log", "00000000000000000002.checkpoint.parquet")); err != nil {
			t.Fatal(err)
		}
		full := load(t, "checkpointed")
		// Without the commits the checkpoint covers, the checkpoint alone
		// gives the same state; versions before it are gone.
		cp := t.TempDir()
		copyDir(t, root, cp)
		for _, v := range []string{"00000000000000000000.json", "00000000000000000001.json"} {
			os.Remove(filepath.Join(cp, "_delta_log", v))
		}
		s, err := Load(ctx, LocalFS(), cp, nil)
		if err != nil {
			t.Fatal(err)
		}
		if s.Version != full.Version || len(s.Files) != len(full.Files) {
			t.Errorf("from the checkpoint: version %d, %d files; want %d, %d", s.Version, len(s.Files), full.Version, len(full.Files))
		}
		for i := range s.Files {
			a, b := s.Files[i], full.Files[i]
			if strings.TrimPrefix(a.Path, cp) != strings.TrimPrefix(b.Path, root) || a.Size != b.Size || a.NumRecords != b.NumRecords ||
				fmt.Sprint(deref(a.PartitionValues)) != fmt.Sprint(deref(b.PartitionValues)) {
				t.Errorf("file %d: %+v, want %+v", i, a, b)
			}
		}
		v := int64(1)
		if _, err := Load(ctx, LocalFS(), cp, &v); err == nil || !strings.Contains(err.Error(), "commit 0") {
			t.Errorf("version 1 without its commits: %v", err)
		}
		v = 2
		if s, err := Load(ctx, LocalFS(), cp, &v); err != nil || s.Version != 2 {
			t.Errorf("version 2 from its checkpoint: %v", err)
		}
	})

	t.Run("evolution", func(t *testing.T) {
		s := load(t, "evolved")
		if got := fmt.Sprintf("%d %s %s", len(s.Schema), field(t, s, "b").Type, field(t, s, "c").Type); got != "4 double date" {
			t.Errorf("schema: %s", got)
		}
	})

	t.Run("empty", func(t *testing.T) {
		s := load(t, "empty")
		if len(s.Files) != 0 || !slices.Equal(s.PartitionColumns, []string{"p"}) {
			t.Fatalf("%+v", s)
		}
		q, err := s.ReadSQL(nil)
		if err != nil {
			t.Fatal(err)
		}
		db := openDuckDB(t)
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		types, _ := rows.ColumnTypes()
		var got []string
		for _, ct := range types {
			got = append(got, ct.Name()+" "+ct.DatabaseTypeName())
		}
		if want := []string{"id BIGINT", "ts TIMESTAMPTZ", "p VARCHAR"}; !slices.Equal(got, want) {
			t.Errorf("columns %q, want %q", got, want)
		}
		if rows.Next() {
			t.Error("a row from an empty table")
		}
	})

	t.Run("missing commit", func(t *testing.T) {
		cp := t.TempDir()
		copyDir(t, filepath.Join(dir, "appends"), cp)
		os.Remove(filepath.Join(cp, "_delta_log", "00000000000000000001.json"))
		if _, err := Load(ctx, LocalFS(), cp, nil); err == nil || !strings.Contains(err.Error(), "commit 1 is missing") {
			t.Errorf("got %v", err)
		}
	})

	t.Run("malformed commit", func(t *testing.T) {
		cp := t.TempDir()
		copyDir(t, filepath.Join(dir, "appends"), cp)
		name := filepath.Join(cp, "_delta_log", "00000000000000000002.json")
		data, _ := os.ReadFile(name)
		os.WriteFile(name, append(data, []byte("{\"add\": {\"path\": 12}\n")...), 0o644)
		_, err := Load(ctx, LocalFS(), cp, nil)
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "malformed") {
			t.Errorf("got %v", err)
		}
		os.WriteFile(name, []byte("not json\n"), 0o644)
		if _, err := Load(ctx, LocalFS(), cp, nil); err == nil || !strings.Contains(err.Error(), name+", line 1") {
			t.Errorf("got %v", err)
		}
	})
}

func deref(m map[string]*string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if v == nil {
			out[k] = "<nil>"
		} else {
			out[k] = *v
		}
	}
	return out
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		target := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSparkTables reads the tables Spark wrote (testdata/spark, made by
// testdata/make_spark_tables.py): deletion vectors, a multi-part
// checkpoint, column mapping by id with renamed and dropped columns, v2
// checkpoints with sidecars.
func TestSparkTables(t *testing.T) {
	data, err := os.ReadFile("testdata/spark/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var expected map[string]expectedTable
	if err := json.Unmarshal(data, &expected); err != nil {
		t.Fatal(err)
	}
	db := openDuckDB(t)
	for _, name := range []string{"dv", "multipart", "colmap_id", "v2checkpoint"} {
		t.Run(name, func(t *testing.T) {
			exp, ok := expected[name]
			if !ok {
				t.Fatalf("no expectation for %s", name)
			}
			root, err := filepath.Abs(filepath.Join("testdata", "spark", name))
			if err != nil {
				t.Fatal(err)
			}
			s := checkTable(t, db, root, exp)
			dvs := 0
			for _, f := range s.Files {
				if f.DeletionVector != nil {
					dvs++
					if f.NumRecords < 0 {
						t.Errorf("%s: a deletion vector without numRecords", f.Path)
					}
				}
			}
			t.Logf("version %d, %d files (%d with deletion vectors), %d rows, expected rows by %s",
				s.Version, len(s.Files), dvs, len(exp.Rows), exp.Reader)
			switch name {
			case "dv", "multipart":
				if dvs == 0 {
					t.Error("no deletion vector: the test does not exercise them")
				}
			case "colmap_id":
				if s.ColumnMapping != "id" {
					t.Errorf("mapping %q", s.ColumnMapping)
				}
			}
			if name == "multipart" || name == "v2checkpoint" {
				// The checkpoint at version 4 alone (its commits removed)
				// gives the same rows.
				cp := t.TempDir()
				copyDir(t, root, cp)
				for v := range 5 {
					if err := os.Remove(filepath.Join(cp, "_delta_log", fmt.Sprintf("%020d.json", v))); err != nil {
						t.Fatal(err)
					}
				}
				s, err := Load(context.Background(), LocalFS(), cp, nil)
				if err != nil {
					t.Fatal(err)
				}
				if s.Version != exp.Version {
					t.Errorf("from the checkpoint: version %d", s.Version)
				}
				_, rows := readRows(t, db, s, cp)
				compareRows(t, "from the checkpoint", rows, exp.Rows)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := Load(ctx, LocalFS(), filepath.Join(dir, "nothing"), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing table: %v", err)
	}
	os.MkdirAll(filepath.Join(dir, "empty", "_delta_log"), 0o755)
	if _, err := Load(ctx, LocalFS(), filepath.Join(dir, "empty"), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("empty log: %v", err)
	}

	write := func(name string, lines ...string) string {
		root := filepath.Join(dir, name)
		os.MkdirAll(filepath.Join(root, "_delta_log"), 0o755)
		for i, l := range lines {
			os.WriteFile(filepath.Join(root, "_delta_log", fmt.Sprintf("%020d.json", i)), []byte(l+"\n"), 0o644)
		}
		return root
	}
	meta := `{"metaData":{"id":"x","format":{"provider":"parquet","options":{}},"schemaString":"{\"type\":\"struct\",\"fields\":[{\"name\":\"a\",\"type\":\"long\",\"nullable\":true,\"metadata\":{}}]}","partitionColumns":[],"configuration":{}}}`
	cases := []struct {
		name, protocol, want string
	}{
		{"features", `{"protocol":{"minReaderVersion":3,"minWriterVersion":7,"readerFeatures":["deletionVectors","typeWidening","catalogManaged"],"writerFeatures":[]}}`,
			"reader features that are not supported: typeWidening, catalogManaged"},
		{"version", `{"protocol":{"minReaderVersion":4,"minWriterVersion":7}}`, "reader version 4"},
		{"ok", `{"protocol":{"minReaderVersion":3,"minWriterVersion":7,"readerFeatures":["deletionVectors","columnMapping","timestampNtz","v2Checkpoint","vacuumProtocolCheck"],"writerFeatures":[]}}`, ""},
	}
	for _, c := range cases {
		root := write(c.name, c.protocol+"\n"+meta)
		s, err := Load(ctx, LocalFS(), root, nil)
		if c.want == "" {
			if err != nil || s.Version != 0 || len(s.Files) != 0 {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
	root := write("later", `{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}`+"\n"+meta)
	v := int64(5)
	if _, err := Load(ctx, LocalFS(), root, &v); err == nil || !strings.Contains(err.Error(), "no version 5") {
		t.Errorf("version past the end: %v", err)
	}
	root = write("nometa", `{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}`)
	if _, err := Load(ctx, LocalFS(), root, nil); err == nil || !strings.Contains(err.Error(), "no metaData") {
		t.Errorf("no metaData: %v", err)
	}
}
