package catalog_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmooncake/mooncake/catalog"
	"github.com/pgmooncake/mooncake/sql"
	"github.com/pgmooncake/mooncake/sql/lake"
)

// csCols are the columns of the test's columnstore table, as the backend
// describes them: name, type OID, typmod, format_type, NOT NULL.
var csCols = []struct {
	name    string
	oid     uint32
	typmod  int32
	typ     string
	notNull bool
}{
	{"id", catalog.OIDInt4, -1, "integer", true},
	{"b", catalog.OIDInt8, -1, "bigint", false},
	{"n", catalog.OIDNumeric, (12<<16 | 2) + 4, "numeric(12,2)", false},
	{"t", catalog.OIDText, -1, "text", false},
	{"v", catalog.OIDVarchar, 10 + 4, "character varying(10)", false},
	{"ok", catalog.OIDBool, -1, "boolean", false},
	{"d", catalog.OIDDate, -1, "date", false},
	{"ts", catalog.OIDTimestamp, -1, "timestamp without time zone", false},
	{"tz", catalog.OIDTimestampTZ, -1, "timestamp with time zone", false},
	{"f", catalog.OIDFloat8, -1, "double precision", false},
	{"u", catalog.OIDUUID, -1, "uuid", false},
	{"j", 3802, -1, "jsonb", false},
	{"a", 1007, -1, "integer[]", false},
}

func s(v string) *string { return &v }

// The rows as PostgreSQL prints them; nil is NULL.
var (
	csBatch1 = [][]*string{
		{s("1"), s("9223372036854775807"), s("123.45"), s("hello"), s("abc"), s("t"), s("2024-02-29"),
			s("2024-01-02 03:04:05.123456"), s("2024-01-02 03:04:05.5+00"), s("1.5"),
			s("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), s(`{"a": 1, "b": "x'y"}`), s("{1,2,3}")},
		{s("2"), nil, s("NaN"), s(""), s(`it's "q"`), s("f"), nil, nil, nil, s("NaN"), nil, s(`"é"`), s("{}")},
		{s("3"), s("-9223372036854775808"), s("-0.01"), s("héllo ✓ 日本 \\ \t"), s(""), nil, s("1970-01-01"),
			s("1999-12-31 23:59:59"), s("2000-01-01 00:00:00+00"), s("Infinity"), s("00000000-0000-0000-0000-000000000000"),
			s("[]"), s("{NULL,-1}")},
	}
	csBatch2Cols = []string{"t", "id", "f"}
	csBatch2     = [][]*string{
		{s("second"), s("4"), s("-Infinity")},
		{nil, s("5"), s("1e+20")},
	}
)

// csExpected is every row of the table, all columns, in id order.
func csExpected(batches int) [][]*string {
	out := append([][]*string(nil), csBatch1...)
	if batches > 1 {
		for _, r := range csBatch2 {
			full := make([]*string, len(csCols))
			for j, name := range csBatch2Cols {
				for i, c := range csCols {
					if c.name == name {
						full[i] = r[j]
					}
				}
			}
			out = append(out, full)
		}
	}
	return out
}

func createColumnstore(t *testing.T, dir string) string {
	t.Helper()
	cols := make([]catalog.Column, len(csCols))
	for i, c := range csCols {
		ct, err := catalog.ResolveType(c.oid, c.typmod, c.typ)
		if err != nil {
			t.Fatal(err)
		}
		cols[i] = catalog.Column{Name: c.name, Type: ct, NotNull: c.notNull}
	}
	loc, err := catalog.CreateColumnstore(context.Background(), cols, filepath.Join(dir, "tbl"))
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if !strings.HasPrefix(loc, filepath.Join(dir, "tbl", "metadata", "00000-")) || !strings.HasSuffix(loc, ".metadata.json") {
		t.Fatalf("metadata location %s", loc)
	}
	return loc
}

func allNames() []string {
	names := make([]string, len(csCols))
	for i, c := range csCols {
		names[i] = c.name
	}
	return names
}

func TestColumnstoreAppend(t *testing.T) {
	ctx := context.Background()
	eng, err := sql.Open(sql.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.DB.Close()
	dir := t.TempDir()
	v0 := createColumnstore(t, dir)
	before, _ := os.ReadFile(v0)

	// An empty table reads as no rows.
	checkLake(t, eng, v0, nil)

	a1, err := catalog.AppendColumnstore(ctx, eng.DB, v0, allNames(), csBatch1)
	if err != nil {
		t.Fatalf("append 1: %v", err)
	}
	if a1.Rows != 3 || a1.DataFiles != 1 || !strings.Contains(a1.MetadataLocation, "/metadata/00001-") {
		t.Fatalf("append 1: %+v", a1)
	}
	a2, err := catalog.AppendColumnstore(ctx, eng.DB, a1.MetadataLocation, csBatch2Cols, csBatch2)
	if err != nil {
		t.Fatalf("append 2: %v", err)
	}
	if a2.Rows != 2 || a2.DataFiles != 1 || !strings.Contains(a2.MetadataLocation, "/metadata/00002-") {
		t.Fatalf("append 2: %+v", a2)
	}
	if after, _ := os.ReadFile(v0); string(after) != string(before) {
		t.Fatalf("the base metadata file changed")
	}
	// No rows: the base comes back.
	if a, err := catalog.AppendColumnstore(ctx, eng.DB, a2.MetadataLocation, csBatch2Cols, nil); err != nil || a.MetadataLocation != a2.MetadataLocation || a.Rows != 0 {
		t.Fatalf("empty append: %+v, %v", a, err)
	}

	checkLake(t, eng, a2.MetadataLocation, csExpected(2))
	checkLake(t, eng, a1.MetadataLocation, csExpected(1)) // the first version is still whole

	// Errors.
	n := len(csCols)
	bad := make([]*string, n)
	copy(bad, csBatch1[0])
	bad[0] = s("6")
	bad[1] = s("12x34 secret")
	_, err = catalog.AppendColumnstore(ctx, eng.DB, a2.MetadataLocation, allNames(), [][]*string{bad})
	wantCode(t, err, "22P02", `column "b"`)
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("the error shows the value: %v", err)
	}
	copy(bad, csBatch1[0])
	bad[0], bad[6] = s("6"), s("2024-13-45")
	_, err = catalog.AppendColumnstore(ctx, eng.DB, a2.MetadataLocation, allNames(), [][]*string{bad})
	wantCode(t, err, "22P02", `column "d"`)
	_, err = catalog.AppendColumnstore(ctx, eng.DB, a2.MetadataLocation, []string{"id", "nope"}, [][]*string{{s("7"), s("x")}})
	wantCode(t, err, "42703", `"nope"`)
	_, err = catalog.AppendColumnstore(ctx, eng.DB, a2.MetadataLocation, []string{"t"}, [][]*string{{s("x")}})
	wantCode(t, err, "23502", `"id"`)
	_, err = catalog.AppendColumnstore(ctx, eng.DB, a2.MetadataLocation, []string{"id"}, [][]*string{{nil}})
	wantCode(t, err, "23502", `"id"`)
	_, err = catalog.AppendColumnstore(ctx, eng.DB, filepath.Join(dir, "tbl", "metadata", "00009-0a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1.metadata.json"), []string{"id"}, [][]*string{{s("1")}})
	wantCode(t, err, "58P01", "does not exist")
	// The failed appends left the table as it was.
	checkLake(t, eng, a2.MetadataLocation, csExpected(2))

	checkPyIceberg(t, a2.MetadataLocation, csExpected(2))
}

func TestColumnstoreCreateErrors(t *testing.T) {
	ctx := context.Background()
	it, _ := catalog.ResolveType(catalog.OIDInt4, -1, "integer")
	_, err := catalog.CreateColumnstore(ctx, []catalog.Column{{Name: "a", Type: it}, {Name: "A", Type: it}}, filepath.Join(t.TempDir(), "x"))
	wantCode(t, err, "42701", "differ only in case")
	_, err = catalog.CreateColumnstore(ctx, []catalog.Column{{Name: "a", Type: it}}, "s3://bucket/x")
	wantCode(t, err, "0A000", "object stores")
}

func wantCode(t *testing.T, err error, code, text string) {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != code || !strings.Contains(pe.Message, text) {
		t.Fatalf("want SQLSTATE %s mentioning %s, got %v", code, text, err)
	}
}

// checkLake reads the table with the data lake reader and compares every
// value with what PostgreSQL prints.
func checkLake(t *testing.T, eng *sql.Engine, metadata string, want [][]*string) {
	t.Helper()
	ctx := context.Background()
	spec, err := lake.ParseSpec([]byte(`{"format":"iceberg","paths":[`+strconv.Quote(metadata)+`]}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := lake.Open(ctx, eng, spec)
	if err != nil {
		t.Fatalf("open %s: %v", metadata, err)
	}
	var sel []string
	for _, c := range f.Cols() {
		e := catalog.QuoteIdent(c.Name)
		if c.Type.Kind == catalog.KindFloat64 {
			sel = append(sel, "CAST("+e+" AS DOUBLE)") // formatted below, as PostgreSQL does
		} else {
			sel = append(sel, "CAST("+c.Type.CastToText(e)+" AS VARCHAR)")
		}
	}
	if len(f.Cols()) != len(csCols) {
		t.Fatalf("lake reader sees %d columns, want %d", len(f.Cols()), len(csCols))
	}
	rows, err := eng.DB.QueryContext(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM "+f.View()+" ORDER BY id")
	if err != nil {
		t.Fatalf("query %s: %v", metadata, err)
	}
	defer rows.Close()
	var got [][]*string
	for rows.Next() {
		vals := make([]any, len(csCols))
		for i := range vals {
			vals[i] = new(any)
		}
		if err := rows.Scan(vals...); err != nil {
			t.Fatal(err)
		}
		row := make([]*string, len(vals))
		for i, v := range vals {
			switch x := (*v.(*any)).(type) {
			case nil:
			case float64:
				row[i] = s(pgFloat(x))
			case string:
				row[i] = s(x)
			default:
				t.Fatalf("column %s: unexpected %T", csCols[i].name, x)
			}
		}
		got = append(got, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	compareRows(t, "lake reader "+filepath.Base(metadata), got, want)
}

func pgFloat(x float64) string {
	switch {
	case math.IsNaN(x):
		return "NaN"
	case math.IsInf(x, 1):
		return "Infinity"
	case math.IsInf(x, -1):
		return "-Infinity"
	}
	return strconv.FormatFloat(x, 'g', -1, 64)
}

func compareRows(t *testing.T, what string, got, want [][]*string) {
	t.Helper()
	str := func(v *string) string {
		if v == nil {
			return "NULL"
		}
		return strconv.Quote(*v)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
	}
	for r := range want {
		for i := range want[r] {
			if str(got[r][i]) != str(want[r][i]) {
				t.Errorf("%s: row %d column %s: got %s, want %s", what, r+1, csCols[i].name, str(got[r][i]), str(want[r][i]))
			}
		}
	}
}

// checkPyIceberg has pyiceberg read the metadata file.
func checkPyIceberg(t *testing.T, metadata string, want [][]*string) {
	t.Helper()
	python, err := osexec.LookPath("python3")
	if err != nil {
		t.Skipf("python3 not found: %v", err)
	}
	if out, err := osexec.Command(python, "-c", "import pyiceberg.table, pyarrow").CombinedOutput(); err != nil {
		t.Skipf("pyiceberg is not installed: %v\n%s", err, out)
	}
	out, err := osexec.Command(python, "testdata/read_columnstore.py", metadata).Output()
	if err != nil {
		var ee *osexec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("pyiceberg: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var got [][]*string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var row []*string
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatalf("pyiceberg output %q: %v", line, err)
		}
		got = append(got, row)
	}
	compareRows(t, "pyiceberg", got, want)
}

// TestColumnstoreAppendLarge appends more rows than one Arrow batch holds.
func TestColumnstoreAppendLarge(t *testing.T) {
	ctx := context.Background()
	eng, err := sql.Open(sql.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.DB.Close()
	v0 := createColumnstore(t, t.TempDir())
	const n = 20000
	rows := make([][]*string, n)
	for i := range rows {
		rows[i] = []*string{s(strconv.Itoa(i + 1)), s(strings.Repeat("x", i%50))}
	}
	a, err := catalog.AppendColumnstore(ctx, eng.DB, v0, []string{"id", "t"}, rows)
	if err != nil || a.Rows != n || a.DataFiles != 1 {
		t.Fatalf("append: %+v, %v", a, err)
	}
	spec, err := lake.ParseSpec([]byte(`{"format":"iceberg","paths":[`+strconv.Quote(a.MetadataLocation)+`]}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := lake.Open(ctx, eng, spec)
	if err != nil {
		t.Fatal(err)
	}
	var count, sum, length int64
	if err := eng.DB.QueryRowContext(ctx, "SELECT count(*), sum(id), sum(length(t)) FROM "+f.View()).Scan(&count, &sum, &length); err != nil {
		t.Fatal(err)
	}
	var wantLen int64
	for i := range n {
		wantLen += int64(i % 50)
	}
	if count != n || sum != n*(n+1)/2 || length != wantLen {
		t.Fatalf("read %d rows, sum %d, length %d", count, sum, length)
	}
}

// TestStoredKinds reads how a columnstore table's columns are stored back
// from its properties, by field ID (money as its integer among them), and
// records whether the location was made for the table.
func TestStoredKinds(t *testing.T) {
	ctx := context.Background()
	money, _ := catalog.ResolveType(catalog.OIDMoney, -1, "money")
	num, _ := catalog.ResolveType(catalog.OIDNumeric, -1, "numeric")
	cols := []catalog.Column{{Name: "m", Type: money}, {Name: "n", Type: num}}
	for _, owned := range []bool{true, false} {
		loc, err := catalog.CreateColumnstoreIn(ctx, cols, filepath.Join(t.TempDir(), "tbl"), owned)
		if err != nil {
			t.Fatal(err)
		}
		tbl, _, err := catalog.LoadColumnstore(ctx, loc)
		if err != nil {
			t.Fatal(err)
		}
		kinds := catalog.StoredKinds(tbl.Properties())
		if kinds[1] != catalog.KindMoney || kinds[2] != catalog.KindText || len(kinds) != 2 {
			t.Fatalf("stored kinds %v, want money and text", kinds)
		}
		want := map[bool]string{true: "1", false: "0"}[owned]
		if got := tbl.Properties()[catalog.PropLocationOwned]; got != want {
			t.Fatalf("%s = %q, want %q", catalog.PropLocationOwned, got, want)
		}
	}
	if catalog.StoredKinds(map[string]string{"other": "x"}) != nil {
		t.Fatal("a table without mooncake.columns has stored kinds")
	}
}
