package iceberg

import (
	"context"
	gosql "database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	duckdb "github.com/duckdb/duckdb-go/v2"

	mcsql "github.com/pgmooncake/mooncake/sql"
	"github.com/pgmooncake/mooncake/test/pgtest"
)

// pyModules are what testdata/make_tables.py imports (make deps-python).
const pyModules = "pyiceberg.catalog.sql, pyiceberg_core, pyarrow, sqlalchemy"

// expected is what make_tables.py prints.
type expected struct {
	PyIceberg string `json:"pyiceberg"`
	Tables    []struct {
		Name          string `json:"name"`
		Location      string `json:"location"`
		Metadata      string `json:"metadata"`
		FormatVersion int    `json:"format_version"`
		Snapshots     []struct {
			ID      *int64      `json:"id"`
			Note    string      `json:"note"`
			Oracle  string      `json:"oracle"`
			Columns []string    `json:"columns"`
			Rows    [][]*string `json:"rows"`
		} `json:"snapshots"`
	} `json:"tables"`
}

// makeTables runs make_tables.py into a new warehouse, or skips the test
// (fails it with MOONCAKE_REQUIRE_PG set) when python3 or its modules are
// missing.
func makeTables(t *testing.T) (string, *expected) {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		skipOrFail(t, "python3 not found: %v", err)
	}
	if out, err := exec.Command(python, "-c", "import "+pyModules).CombinedOutput(); err != nil {
		skipOrFail(t, "pyiceberg is not installed (make deps-python): %v\n%s", err, out)
	}
	wh := filepath.Join(t.TempDir(), "warehouse")
	cmd := exec.Command(python, filepath.Join("testdata", "make_tables.py"), wh)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make_tables.py: %v\n%s", err, stderr.String())
	}
	var exp expected
	if err := json.Unmarshal(out, &exp); err != nil {
		t.Fatalf("make_tables.py output: %v", err)
	}
	return wh, &exp
}

func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv(pgtest.RequireEnv) != "" {
		t.Fatalf(format+" ("+pgtest.RequireEnv+" is set, so this is a failure)", args...)
	}
	t.Skipf(format+" (set "+pgtest.RequireEnv+"=1 to fail instead)", args...)
}

// TestPyIcebergTables reads the tables make_tables.py writes and compares
// every snapshot's rows with pyiceberg's.
func TestPyIcebergTables(t *testing.T) {
	wh, exp := makeTables(t)
	t.Logf("pyiceberg %s, warehouse %s", exp.PyIceberg, wh)
	eng, err := mcsql.Open(mcsql.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ctx := context.Background()

	compared := 0
	for _, tab := range exp.Tables {
		t.Run(tab.Name, func(t *testing.T) {
			byDir, err := Open(ctx, tab.Location)
			if err != nil {
				t.Fatalf("open %s: %v", tab.Location, err)
			}
			if byDir.MetadataFile != tab.Metadata {
				t.Errorf("by directory: metadata file %s, want %s", byDir.MetadataFile, tab.Metadata)
			}
			byFile, err := Open(ctx, tab.Metadata)
			if err != nil {
				t.Fatalf("open %s: %v", tab.Metadata, err)
			}
			byURI, err := Open(ctx, "file://"+tab.Metadata)
			if err != nil {
				t.Fatalf("open file://%s: %v", tab.Metadata, err)
			}
			for _, tbl := range []*Table{byDir, byFile, byURI} {
				if tbl.FormatVersion != tab.FormatVersion {
					t.Errorf("format version %d, want %d", tbl.FormatVersion, tab.FormatVersion)
				}
			}
			checkSnapshots(t, byDir, tab.Snapshots[len(tab.Snapshots)-1].ID, len(tab.Snapshots))
			for i, snap := range tab.Snapshots {
				tbl := []*Table{byDir, byFile}[i%2]
				id := snap.ID
				if i == len(tab.Snapshots)-1 {
					id = nil // the current snapshot
				}
				sc, err := tbl.Plan(ctx, id)
				if err != nil {
					t.Fatalf("plan %s: %v", idText(snap.ID), err)
				}
				if !equalID(sc.SnapshotID, snap.ID) {
					t.Fatalf("planned snapshot %s, want %s", idText(sc.SnapshotID), idText(snap.ID))
				}
				checkMetadata(t, ctx, tbl, sc)
				if snap.ID != nil {
					var ts time.Time
					for _, info := range tbl.Snapshots() {
						if info.ID == *snap.ID {
							ts = info.Timestamp
						}
					}
					// (Snapshots committed in one millisecond resolve to
					// the last of them.)
					if at, err := tbl.PlanAt(ctx, ts); err != nil || !equalID(at.SnapshotID, tbl.SnapshotAt(ts)) {
						t.Errorf("plan at %v: %v", ts, err)
					}
				}
				names := make([]string, len(sc.Schema))
				for i, f := range sc.Schema {
					names[i] = f.Name
				}
				if !slices.Equal(names, snap.Columns) {
					t.Errorf("snapshot %s (%s): columns %v, want %v", idText(snap.ID), snap.Note, names, snap.Columns)
				}
				q, err := sc.ReadSQL()
				if err != nil {
					t.Fatalf("snapshot %s (%s): ReadSQL: %v", idText(snap.ID), snap.Note, err)
				}
				cols, got := query(t, eng.DB, q)
				if !slices.Equal(cols, snap.Columns) {
					t.Errorf("snapshot %s (%s): query columns %v, want %v", idText(snap.ID), snap.Note, cols, snap.Columns)
				}
				compareRows(t, fmt.Sprintf("%s snapshot %s (%s, %s)", tab.Name, idText(snap.ID), snap.Note, snap.Oracle), got, snap.Rows, q)
				compared++
			}
		})
	}
	t.Logf("%d snapshots of %d tables compared", compared, len(exp.Tables))
	t.Run("open rules", func(t *testing.T) { testOpenRules(t, exp) })
	t.Run("initial defaults", func(t *testing.T) { testInitialDefaults(t, eng.DB, exp) })

	// The whole warehouse moved: the metadata still names the old paths.
	moved := wh + "-moved"
	if err := os.Rename(wh, moved); err != nil {
		t.Fatal(err)
	}
	for _, tab := range exp.Tables {
		last := tab.Snapshots[len(tab.Snapshots)-1]
		dir := filepath.Join(moved, strings.TrimPrefix(tab.Location, wh))
		tbl, err := Open(ctx, dir)
		if err != nil {
			t.Fatalf("%s moved: %v", tab.Name, err)
		}
		sc, err := tbl.Plan(ctx, nil)
		if err != nil {
			t.Fatalf("%s moved: plan: %v", tab.Name, err)
		}
		q, err := sc.ReadSQL()
		if err != nil {
			t.Fatalf("%s moved: ReadSQL: %v", tab.Name, err)
		}
		_, got := query(t, eng.DB, q)
		compareRows(t, tab.Name+" moved", got, last.Rows, q)
	}
}

// testOpenRules copies the metadata files of the appends table into new
// table directories, named as Hadoop tables name them (vN.metadata.json)
// and as catalogs do (NNNNN-<uuid>.metadata.json), and checks which one
// Open picks.
func testOpenRules(t *testing.T, exp *expected) {
	ctx := context.Background()
	var loc string
	for _, tab := range exp.Tables {
		if tab.Name == "appends" {
			loc = tab.Location
		}
	}
	src, err := filepath.Glob(filepath.Join(loc, "metadata", "*.metadata.json"))
	if err != nil || len(src) < 4 {
		t.Fatalf("metadata files of %s: %v %v", loc, src, err)
	}
	sort.Strings(src) // 00000-..., 00001-...: commit order
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// layout writes the metadata files under the given names into a new
	// table directory.
	layout := func(names map[string]string, hint string) string {
		dir := t.TempDir()
		md := filepath.Join(dir, "metadata")
		if err := os.Mkdir(md, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, from := range names {
			if err := os.WriteFile(filepath.Join(md, name), read(from), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if hint != "" {
			if err := os.WriteFile(filepath.Join(md, "version-hint.text"), []byte(hint), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	// v10 is the newest: numbers, not names, are compared.
	hadoop := map[string]string{"v1.metadata.json": src[0], "v2.metadata.json": src[1], "v3.metadata.json": src[2], "v10.metadata.json": src[3]}
	check := func(what, dir, wantFile string) {
		t.Helper()
		tbl, err := Open(ctx, dir)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if filepath.Base(tbl.MetadataFile) != wantFile {
			t.Errorf("%s: opened %s, want %s", what, filepath.Base(tbl.MetadataFile), wantFile)
		}
		if tbl.Dir != localPath(tbl.Location) {
			t.Errorf("%s: reads under %s, not the recorded location %s, which exists", what, tbl.Dir, tbl.Location)
		}
	}
	check("highest version", layout(hadoop, ""), "v10.metadata.json")
	check("hint 2", layout(hadoop, "2\n"), "v2.metadata.json")
	check("hint naming a file", layout(hadoop, "v3.metadata.json"), "v3.metadata.json")
	check("the metadata directory itself", filepath.Join(layout(hadoop, ""), "metadata"), "v10.metadata.json")
	if _, err := Open(ctx, layout(hadoop, "7")); err == nil {
		t.Errorf("a hint naming no file opened")
	}
	if _, err := Open(ctx, t.TempDir()); err == nil {
		t.Errorf("a directory without metadata opened")
	}
	// Two files of one version: the one updated last wins, whatever its name.
	check("same version", layout(map[string]string{
		"00001-aaaa.metadata.json": src[2], "00001-bbbb.metadata.json": src[1], "00000-cccc.metadata.json": src[3],
	}, ""), "00001-aaaa.metadata.json")
	check("hint with catalog names", layout(map[string]string{
		"00001-aaaa.metadata.json": src[1], "00002-bbbb.metadata.json": src[2],
	}, "1"), "00001-aaaa.metadata.json")
}

// testInitialDefaults adds columns with initial defaults (format v3) to a
// plan of the v1 table, as the JSON metadata decodes them, and reads them
// from files written without them. (pyiceberg 0.12 writes no v3 tables.)
func testInitialDefaults(t *testing.T, db *gosql.DB, exp *expected) {
	ctx := context.Background()
	var loc string
	var want int
	for _, tab := range exp.Tables {
		if tab.Name == "v1" {
			loc, want = tab.Location, len(tab.Snapshots[len(tab.Snapshots)-1].Rows)
		}
	}
	tbl, err := Open(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := tbl.Plan(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	dec := iceberg.DecimalTypeOf(9, 2)
	cases := []struct {
		typ  iceberg.Type
		json any
		want string
	}{
		{iceberg.PrimitiveTypes.Int64, float64(42), "42"},
		{iceberg.PrimitiveTypes.Int32, float64(-7), "-7"},
		{iceberg.PrimitiveTypes.Float64, 2.5, "2.5"},
		{iceberg.PrimitiveTypes.Bool, true, "true"},
		{iceberg.PrimitiveTypes.String, "it's", "it's"},
		{dec, "1.50", "1.50"},
		{iceberg.PrimitiveTypes.Date, "2024-05-06", "2024-05-06"},
		{iceberg.PrimitiveTypes.Timestamp, "2024-01-02T03:04:05.123456", "2024-01-02 03:04:05.123456"},
		{iceberg.PrimitiveTypes.TimestampTz, "2024-01-02T03:04:05.123456+01:00", "2024-01-02 02:04:05.123456"},
		{iceberg.PrimitiveTypes.Binary, "01ff", `\x01ff`},
	}
	var wantRow []string
	for i, c := range cases {
		duck, err := DuckDBType(c.typ)
		if err != nil {
			t.Fatal(err)
		}
		lit, err := defaultLiteral(c.typ, duck, c.json)
		if err != nil {
			t.Fatalf("%s %v: %v", c.typ, c.json, err)
		}
		sc.Schema = append(sc.Schema, Field{ID: 900 + i, Name: "d" + strconv.Itoa(i), Type: c.typ.String(), DuckDB: duck,
			InitialDefault: c.json, typ: c.typ, dflt: lit})
		wantRow = append(wantRow, c.want)
	}
	if _, err := defaultLiteral(iceberg.PrimitiveTypes.Int64, "BIGINT", float64(1<<60)); err == nil {
		t.Errorf("an inexact long default accepted")
	}
	q, err := sc.ReadSQL()
	if err != nil {
		t.Fatal(err)
	}
	_, rows := query(t, db, q)
	if len(rows) != want {
		t.Fatalf("%d rows, want %d", len(rows), want)
	}
	for _, r := range rows {
		var got []string
		for _, v := range r[2:] {
			if v == nil {
				got = append(got, "NULL")
			} else {
				got = append(got, *v)
			}
		}
		if !slices.Equal(got, wantRow) {
			t.Fatalf("defaults read as %q, want %q\n%s", got, wantRow, q)
		}
	}
}

func idText(id *int64) string {
	if id == nil {
		return "none"
	}
	return strconv.FormatInt(*id, 10)
}

func equalID(a, b *int64) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// checkSnapshots checks the snapshot list: the recorded current snapshot,
// parents chained in order, sequence numbers rising (v2) and timestamps
// that PlanAt resolves to the same snapshot.
func checkSnapshots(t *testing.T, tbl *Table, current *int64, recorded int) {
	t.Helper()
	snaps := tbl.Snapshots()
	if !equalID(tbl.CurrentSnapshotID(), current) {
		t.Errorf("current snapshot %s, want %s", idText(tbl.CurrentSnapshotID()), idText(current))
	}
	if current == nil {
		if len(snaps) != 0 {
			t.Errorf("%d snapshots, want none", len(snaps))
		}
		return
	}
	if len(snaps) < recorded {
		t.Errorf("%d snapshots, fewer than the %d recorded", len(snaps), recorded)
	}
	for i, s := range snaps {
		if i == 0 && s.ParentID != nil || i > 0 && (s.ParentID == nil || *s.ParentID != snaps[i-1].ID) {
			t.Errorf("snapshot %d: parent %v, want the one before", s.ID, s.ParentID)
		}
		if tbl.FormatVersion >= 2 && s.SequenceNumber != int64(i+1) {
			t.Errorf("snapshot %d: sequence number %d, want %d", s.ID, s.SequenceNumber, i+1)
		}
		if s.Operation == "" || s.Timestamp.IsZero() {
			t.Errorf("snapshot %d: operation %q, timestamp %v", s.ID, s.Operation, s.Timestamp)
		}
		if s.Current != (i == len(snaps)-1) {
			t.Errorf("snapshot %d: current %v", s.ID, s.Current)
		}
		// Snapshots committed within one millisecond resolve to the last.
		if at := tbl.SnapshotAt(s.Timestamp); at == nil || (*at != s.ID && (i+1 == len(snaps) || !snaps[i+1].Timestamp.Equal(s.Timestamp))) {
			t.Errorf("snapshot at %v: %v, want %d", s.Timestamp, at, s.ID)
		}
	}
	if tbl.SnapshotAt(snaps[0].Timestamp.Add(-time.Second)) != nil {
		t.Errorf("a snapshot before the first")
	}
}

// checkMetadata checks the manifest entries against the scan: its data
// files are the live data entries, its delete files the live delete
// entries, with the same record counts.
func checkMetadata(t *testing.T, ctx context.Context, tbl *Table, sc *Scan) {
	t.Helper()
	entries, err := tbl.Metadata(ctx, sc.SnapshotID)
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	live := map[string]ManifestEntry{}
	deleted := map[string]bool{}
	var deletes []string
	for _, e := range entries {
		if e.Status == "DELETED" {
			// A manifest written by a delete keeps its DELETED entries
			// while later snapshots carry it over.
			deleted[e.Path] = true
			continue
		}
		if _, dup := live[e.Path]; dup {
			t.Errorf("%s listed twice", e.Path)
		}
		live[e.Path] = e
		if e.Format != "PARQUET" || e.FileSizeBytes <= 0 || e.RecordCount <= 0 && e.Content != ContentData {
			t.Errorf("entry %+v", e)
		}
		switch e.Content {
		case ContentData:
			if e.ManifestContent != "data" {
				t.Errorf("%s: data file in a %s manifest", e.Path, e.ManifestContent)
			}
		case ContentPositionDeletes, ContentEqualityDeletes:
			if e.ManifestContent != "deletes" {
				t.Errorf("%s: delete file in a %s manifest", e.Path, e.ManifestContent)
			}
			if (e.Content == ContentEqualityDeletes) != (len(e.EqualityIDs) > 0) {
				t.Errorf("%s: %s with equality IDs %v", e.Path, e.Content, e.EqualityIDs)
			}
			deletes = append(deletes, e.Path)
		default:
			t.Errorf("%s: content %s", e.Path, e.Content)
		}
		if e.SequenceNumber > sc.SequenceNumber {
			t.Errorf("%s: sequence number %d after the snapshot's %d", e.Path, e.SequenceNumber, sc.SequenceNumber)
		}
		// Partition values as the path shows them (pyiceberg writes
		// name=value directories).
		for _, p := range e.Partition {
			if seg := "/" + p.Name + "=" + p.Text + "/"; e.Content == ContentData && !strings.Contains(e.Path, seg) {
				t.Errorf("%s: partition %s=%s (%v) not in the path", e.Path, p.Name, p.Text, p.Value)
			}
		}
	}
	used := map[string]bool{}
	nData := 0
	for _, f := range sc.Files {
		e, ok := live[f.Path]
		if !ok || e.Content != ContentData {
			t.Errorf("scan file %s is no live data entry", f.Path)
			continue
		}
		nData++
		if e.RecordCount != f.Records || e.SequenceNumber != f.SequenceNumber || e.SpecID != f.SpecID {
			t.Errorf("%s: scan says %d rows, seq %d, spec %d; manifest %d, %d, %d", f.Path, f.Records, f.SequenceNumber, f.SpecID,
				e.RecordCount, e.SequenceNumber, e.SpecID)
		}
		for _, p := range f.PositionDeletes {
			used[p] = true
			if live[p].Content != ContentPositionDeletes || live[p].SequenceNumber < f.SequenceNumber {
				t.Errorf("%s: position delete %s is %+v", f.Path, p, live[p])
			}
		}
		for _, q := range f.EqualityDeletes {
			used[q.Path] = true
			if d := live[q.Path]; d.Content != ContentEqualityDeletes || d.SequenceNumber <= f.SequenceNumber ||
				!slices.Equal(d.EqualityIDs, q.FieldIDs) {
				t.Errorf("%s: equality delete %s is %+v", f.Path, q.Path, d)
			}
		}
	}
	for p, e := range live {
		if e.Content == ContentData {
			nData--
		}
		if deleted[p] {
			t.Errorf("%s: both live and deleted", p)
		}
	}
	if nData != 0 {
		t.Errorf("scan has %d data files more than the manifests", nData)
	}
	for _, d := range deletes {
		if !used[d] {
			t.Errorf("delete file %s applies to no data file", d)
		}
	}
}

// query runs q and returns its column names and rows in canonical text.
func query(t *testing.T, db *gosql.DB, q string) ([]string, [][]*string) {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	types, err := rows.ColumnTypes()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]*string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]*string, len(cols))
		for i, v := range vals {
			if v != nil {
				s := canon(v, types[i].DatabaseTypeName())
				row[i] = &s
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	return cols, out
}

// canon is make_tables.py's canon() for the values DuckDB returns.
func canon(v any, typ string) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case bool:
		return strconv.FormatBool(v)
	case int8, int16, int32, int64, uint8, uint16, uint32, uint64:
		return fmt.Sprint(v)
	case float32:
		return canonFloat(float64(v))
	case float64:
		return canonFloat(v)
	case string:
		return v
	case []byte:
		return `\x` + hex.EncodeToString(v)
	case duckdb.UUID:
		return v.String()
	case *duckdb.UUID:
		return v.String()
	case duckdb.Decimal:
		return canonDecimal(v.Value, int(v.Scale))
	case time.Time:
		v = v.UTC()
		switch typ {
		case "DATE":
			return v.Format("2006-01-02")
		case "TIME":
			return v.Format("15:04:05.000000")
		}
		return v.Format("2006-01-02 15:04:05.000000")
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = canon(x, "")
		}
		return "[" + strings.Join(parts, ", ") + "]"
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
	}
	return fmt.Sprintf("<%T %v>", v, v)
}

func canonFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return strconv.FormatFloat(f, 'g', 17, 64)
}

func canonDecimal(unscaled *big.Int, scale int) string {
	s := new(big.Int).Abs(unscaled).String()
	if scale > 0 {
		if len(s) <= scale {
			s = strings.Repeat("0", scale-len(s)+1) + s
		}
		s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	}
	if unscaled.Sign() < 0 {
		s = "-" + s
	}
	return s
}

func rowText(r []*string) string {
	parts := make([]string, len(r))
	for i, v := range r {
		if v == nil {
			parts[i] = "NULL"
		} else {
			parts[i] = strconv.Quote(*v)
		}
	}
	return strings.Join(parts, " | ")
}

// compareRows compares rows as sorted text.
func compareRows(t *testing.T, what string, got, want [][]*string, q string) {
	t.Helper()
	g := make([]string, len(got))
	for i, r := range got {
		g[i] = rowText(r)
	}
	w := make([]string, len(want))
	for i, r := range want {
		w[i] = rowText(r)
	}
	sort.Strings(g)
	sort.Strings(w)
	if slices.Equal(g, w) {
		return
	}
	var diff []string
	for _, s := range g {
		if !slices.Contains(w, s) {
			diff = append(diff, "+ "+s)
		}
	}
	for _, s := range w {
		if !slices.Contains(g, s) {
			diff = append(diff, "- "+s)
		}
	}
	if len(diff) > 20 {
		diff = append(diff[:20], "...")
	}
	t.Errorf("%s: %d rows, want %d (+ DuckDB only, - pyiceberg only):\n%s\nSQL: %s", what, len(got), len(want), strings.Join(diff, "\n"), q)
}
