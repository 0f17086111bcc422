package catalog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadCSV reads CSV files into a columnstore table with DuckDB: the
// values of every type read here, NULLs and quoted fields, the files split
// at loadFileRows, and the files and values it leaves to PostgreSQL.
func TestLoadCSV(t *testing.T) {
	ctx := context.Background()
	duck := loadTestDuck(t)
	typ := loadTestType
	num := DecimalType(loadTestType(OIDNumeric, (12<<16|2)+4))
	cols := []Column{
		{Name: "id", Type: typ(OIDInt8, -1), NotNull: true},
		{Name: "i", Type: typ(OIDInt4, -1)},
		{Name: "s", Type: typ(OIDInt2, -1)},
		{Name: "b", Type: typ(OIDBool, -1)},
		{Name: "f", Type: typ(OIDFloat8, -1)},
		{Name: "n", Type: num},
		{Name: "t", Type: typ(OIDText, -1)},
		{Name: "v", Type: typ(OIDVarchar, 5+4)},
		{Name: "u", Type: typ(OIDUUID, -1)},
		{Name: "d", Type: typ(OIDDate, -1)},
		{Name: "ts", Type: typ(OIDTimestamp, -1)},
		{Name: "tz", Type: typ(OIDTimestampTZ, -1)},
		{Name: "unsent", Type: typ(OIDText, -1)},
	}
	base, err := CreateColumnstore(ctx, cols, filepath.Join(t.TempDir(), "tbl"))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"id", "i", "s", "b", "f", "n", "t", "v", "u", "d", "ts", "tz"}
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	spec := func(path string) CSVSpec {
		return CSVSpec{Path: path, Delimiter: ",", Quote: `"`, Escape: `"`, Null: "", Columns: names}
	}
	good := "1,-7,12,t,1.5,-12.30,\"a, \"\"quoted\"\"\nline\",hé,0a1b2c3d-0000-4000-8000-00000000abcd,2024-02-29,2024-02-29 23:59:59.123456,2024-02-29 23:59:59+05:30\n" +
		"2,,,OFF,NaN,0,\"\",,,,,,\n" +
		"3,123456789,-9999,Yes,-1.25e-07,9999999999.99, x ,abcde,,0001-01-01,1999-12-31 00:00:00,1999-12-31 00:00:00.5-08\n"
	res, err := LoadCSV(ctx, duck, base, spec(write("good.csv", good)))
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 3 || res.DataFiles != 1 {
		t.Fatalf("loaded %+v", res)
	}
	got := loadedRows(t, duck, res.MetadataLocation, "concat_ws('|', id, coalesce(i::VARCHAR, 'null'), coalesce(s::VARCHAR, 'null'), b, f, n, "+
		"coalesce(t, 'null'), coalesce(v, 'null'), coalesce(u::VARCHAR, 'null'), coalesce(d::VARCHAR, 'null'), coalesce(ts::VARCHAR, 'null'), "+
		"coalesce(tz::VARCHAR, 'null'), coalesce(unsent, 'null'))", "", 1)
	want := []string{
		"1|-7|12|true|1.5|-12.30|a, \"quoted\"\nline|hé|0a1b2c3d-0000-4000-8000-00000000abcd|2024-02-29|2024-02-29 23:59:59.123456|2024-02-29 18:29:59+00|null",
		"2|null|null|false|nan|0.00||null|null|null|null|null|null",
		"3|123456789|-9999|true|-1.25e-07|9999999999.99| x |abcde|null|0001-01-01|1999-12-31 00:00:00|1999-12-31 08:00:00.5+00|null",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A header line is skipped; files split at loadFileRows rows.
	defer func(n int64) { loadFileRows = n }(loadFileRows)
	loadFileRows = parquetRowGroup
	var big strings.Builder
	big.WriteString("whatever,the,header,says\n")
	for i := range 300000 {
		fmt.Fprintf(&big, "%d,%d\n", i, i%1000)
	}
	sp := spec(write("big.csv", big.String()))
	sp.Columns, sp.Header = []string{"id", "i"}, true
	res2, err := LoadCSV(ctx, duck, res.MetadataLocation, sp)
	if err != nil {
		t.Fatal(err)
	}
	if res2.Rows != 300000 || res2.DataFiles < 3 {
		t.Fatalf("big load: %+v", res2)
	}
	if got := loadedRows(t, duck, res2.MetadataLocation, "concat_ws('|', count(*), sum(i))", "", 0); len(got) != 1 ||
		got[0] != fmt.Sprintf("300003|%d", 300*499500+123456789-7) {
		t.Fatalf("after the big load: %v", got)
	}

	// Text format: no quoting, \N the null string, an empty field ''.
	tx := CSVSpec{Path: write("text.txt", "700007\t\\N\t\"q\" x\n700008\t\t\\N\n"), Text: true, Delimiter: "\t", Null: `\N`, Columns: []string{"id", "v", "t"}}
	res3, err := LoadCSV(ctx, duck, res2.MetadataLocation, tx)
	if err != nil {
		t.Fatal(err)
	}
	text := loadedRows(t, duck, res3.MetadataLocation, "concat_ws('|', id, coalesce(v, 'null'), coalesce(t, 'null'))", "id > 700000", 0)
	if got := strings.Join(text, ","); got != `700007|null|"q" x,700008||null` {
		t.Fatalf("text format: %s", got)
	}
	for name, content := range map[string]string{
		"escape":      "1\tab\\tc\n",
		"backslash":   "1\ta\\\\b\n",
		"null inside": "1\ta\\N\n",
		"null prefix": "1\t\\Nb\n",
		"octal":       "1\t\\101\n",
		"marker":      "1\ta\n\\.\n",
		"last escape": "1\ta\\",
	} {
		sp := CSVSpec{Path: write("text_"+strings.ReplaceAll(name, " ", "_")+".txt", content), Text: true, Delimiter: "\t", Null: `\N`, Columns: []string{"id", "t"}}
		var fb *CSVFallback
		if _, err := LoadCSV(ctx, duck, res3.MetadataLocation, sp); !errors.As(err, &fb) {
			t.Errorf("text %s: %v, want a fallback", name, err)
		}
	}
	// a backslash at the end of the scan's first block of 4 MiB (which
	// holds a "\n" before the file's first bytes) and just after it
	for off := (4 << 20) - 6; off < (4<<20)+2; off++ {
		sp := CSVSpec{Text: true, Delimiter: "\t", Null: `\N`, Columns: []string{"t", "id"}}
		sp.Path = write("text_good.txt", strings.Repeat("x", off)+"\t\\N\n")
		if err := scanCSV(sp); err != nil {
			t.Errorf("scan, a null at %d: %v", off, err)
		}
		sp.Path = write("text_bad.txt", strings.Repeat("x", off)+"\\t1\n")
		if err := scanCSV(sp); err == nil {
			t.Errorf("scan, an escape at %d not seen", off)
		}
		sp.Path = write("text_bad2.txt", strings.Repeat("x", off)+"\t\\Nx\n")
		if err := scanCSV(sp); err == nil {
			t.Errorf("scan, \\Nx at %d not seen", off)
		}
	}

	// quotes across the scan's first block of 4 MiB: a doubled quote,
	// an opening and a closing quote just before, at and after its end
	for off := (4 << 20) - 8; off < (4<<20)+3; off++ {
		sp := CSVSpec{Delimiter: ",", Quote: `"`, Escape: `"`, Columns: []string{"t", "id"}}
		sp.Path = write("quote_good.csv", "\""+strings.Repeat("x", off)+"\"\"y\",1\n\"z\",2\n")
		if err := scanCSV(sp); err != nil {
			t.Errorf("scan, a doubled quote at %d: %v", off, err)
		}
		sp.Path = write("quote_bad.csv", "\""+strings.Repeat("x", off)+"\"y\",1\n")
		if err := scanCSV(sp); err == nil {
			t.Errorf("scan, a quote inside a field at %d not seen", off)
		}
		sp.Path = write("quote_bad2.csv", strings.Repeat("x", off)+"\"y\",1\n")
		if err := scanCSV(sp); err == nil {
			t.Errorf("scan, a quote after a field's start at %d not seen", off)
		}
	}

	// What PostgreSQL reads instead: nothing is written.
	tbl, _, err := LoadColumnstore(ctx, res3.MetadataLocation)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadDir(filepath.Join(localPath(tbl.Location()), "data"))
	for name, content := range map[string]string{
		"crlf":         "1,2\r\n",
		"empty line":   "1,2\n\n3,4\n",
		"first empty":  "\n1,2\n",
		"marker":       "1,2\n\\.\n",
		"nul":          "1,\"a\x00\"\n",
		"spaces":       "1, 2\n",
		"plus":         "+1,2\n",
		"int4 range":   "1,2147483648\n",
		"bool":         "1,,,maybe\n",
		"float exp":    "1,,,,1e400\n",
		"float form":   "1,,,,.5\n",
		"rounding":     "1,,,,,1.005\n",
		"too big":      "1,,,,,12345678901\n",
		"too long":     "1,,,,,,,abcdef\n",
		"upper uuid":   "1,,,,,,,,0A1B2C3D-0000-4000-8000-00000000ABCD\n",
		"year 0":       "1,,,,,,,,,0000-01-01\n",
		"no offset":    "1,,,,,,,,,,,2024-01-01 00:00:00\n",
		"24:00":        "1,,,,,,,,,,2024-01-01 24:00:00\n",
		"not null":     ",1\n",
		"columns":      "1,2,3,4,5,6,7,8,9,10,11,12,13\n",
		"few columns":  "1,2\n",
		"bad quote":    "1,\"a\"b\n",
		"unterminated": "1,\"a\n",
		"bom":          "\xef\xbb\xbf1,2\n",
		"mid quote":    "1,a\"b\n",
		"space before": "1, \"a\"\n",
		"space after":  "1,\"a\" \n",
		"open at eof":  "1,\"a\"\"",
		"invalid utf8": "1,,,,,,\"\xff\"\n",
	} {
		sp := spec(write(strings.ReplaceAll(name, " ", "_")+".csv", content))
		// the columns the line's fields fill, so that the value is what
		// falls back
		if k := strings.Count(strings.TrimRight(content, "\r\n"), ",") + 1; k <= len(names) && name != "few columns" {
			sp.Columns = names[:k]
		}
		if name == "few columns" {
			sp.Columns = []string{"id", "i", "s"}
		}
		_, err := LoadCSV(ctx, duck, res2.MetadataLocation, sp)
		var fb *CSVFallback
		if !errors.As(err, &fb) {
			t.Errorf("%s: %v, want a fallback", name, err)
		} else {
			t.Logf("%s: %s", name, fb.Reason)
		}
	}
	for _, sp := range []CSVSpec{
		{Path: "rel.csv", Delimiter: ",", Quote: `"`, Escape: `"`, Columns: names},
		{Path: filepath.Join(dir, "good.csv"), Delimiter: ",", Quote: `"`, Escape: `\`, Columns: names},
		{Path: filepath.Join(dir, "good.csv"), Delimiter: ",", Quote: `"`, Escape: `"`, Null: ",", Columns: names},
		{Path: filepath.Join(dir, "missing.csv"), Delimiter: ",", Quote: `"`, Escape: `"`, Columns: names},
		{Path: dir, Delimiter: ",", Quote: `"`, Escape: `"`, Columns: names},
	} {
		var fb *CSVFallback
		if _, err := LoadCSV(ctx, duck, res2.MetadataLocation, sp); !errors.As(err, &fb) {
			t.Errorf("%+v: %v, want a fallback", sp, err)
		}
	}
	after, _ := os.ReadDir(filepath.Join(localPath(tbl.Location()), "data"))
	if len(after) != len(before) {
		t.Errorf("the fallbacks left files: %d before, %d after", len(before), len(after))
	}
}
