package catalog

import (
	"context"
	gosql "database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5/pgconn"
)

// numericSend builds numeric's binary send format.
func numericSend(sign uint16, weight, dscale int16, digits ...uint16) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(digits)))
	b = binary.BigEndian.AppendUint16(b, uint16(weight))
	b = binary.BigEndian.AppendUint16(b, sign)
	b = binary.BigEndian.AppendUint16(b, uint16(dscale))
	for _, d := range digits {
		b = binary.BigEndian.AppendUint16(b, d)
	}
	return b
}

func TestNumericText(t *testing.T) {
	for _, c := range []struct {
		v    []byte
		want string
	}{
		{numericSend(0, 0, 0), "0"},
		{numericSend(0, 0, 2), "0.00"},
		{numericSend(0xC000, 0, 0), "NaN"},
		{numericSend(0xD000, 0, 0), "Infinity"},
		{numericSend(0xF000, 0, 0), "-Infinity"},
		{numericSend(0, 0, 2, 1234, 5000), "1234.50"},
		{numericSend(0x4000, 1, 0, 12, 3456), "-123456"},
		{numericSend(0, 2, 0, 1), "100000000"},            // trailing zero digits not stored
		{numericSend(0, -1, 4, 5), "0.0005"},              // 0.0005
		{numericSend(0, -2, 10, 12), "0.0000001200"},      // weight -2: the second fraction group
		{numericSend(0x4000, -1, 1, 5000), "-0.5"},        // dscale shorter than the digits
		{numericSend(0, 0, 6, 1, 2345, 6700), "1.234567"}, // cut inside a group
		{numericSend(0, 3, 1, 9999, 9999, 9999, 9999, 9000), "9999999999999999.9"},
	} {
		got, ok := numericText(nil, c.v)
		if !ok || string(got) != c.want {
			t.Errorf("numericText(%x) = %q, %v; want %q", c.v, got, ok, c.want)
		}
	}
	for _, bad := range [][]byte{nil, {0, 1}, numericSend(0x1234, 0, 0), numericSend(0, 0, 0, 10000), append(numericSend(0, 0, 0, 1), 0)} {
		if _, ok := numericText(nil, bad); ok {
			t.Errorf("numericText(%x) accepted a malformed value", bad)
		}
	}
}

func TestTimestampFromPG(t *testing.T) {
	for _, c := range []struct{ pg, want int64 }{
		{0, pgEpochMicros},
		{-pgEpochMicros, 0},
		{math.MaxInt64, math.MaxInt64},
		{math.MinInt64, -math.MaxInt64},
		// PostgreSQL's last timestamp, 294276-12-31 23:59:59.999999: past int64 once
		// counted from 1970, stored shifted (as timestampFromText stores it)
	} {
		if got := timestampFromPG(c.pg); got != c.want {
			t.Errorf("timestampFromPG(%d) = %d, want %d", c.pg, got, c.want)
		}
	}
	// PostgreSQL's last timestamp, 294276-12-31 23:59:59.999999: past int64
	// once counted from 1970, stored shifted (as timestampFromText stores
	// it), and shifting back gives it
	last := int64(9223371331199999999)
	got := timestampFromPG(last)
	if got >= TimestampShiftedBelow || uint64(got)+TimestampShift != uint64(last)+uint64(pgEpochMicros) {
		t.Errorf("the last timestamp is stored as %d", got)
	}
	if dateFromPG(0) != pgEpochDays || dateFromPG(math.MaxInt32) != math.MaxInt32 || dateFromPG(math.MinInt32) != -math.MaxInt32 {
		t.Error("dateFromPG")
	}
}

// loadChunk encodes rows of (int8 id, bytes t, numeric n) as a chunk; a nil
// field is NULL.
func loadChunk(ids []*int64, ts []*string, ns [][]byte) []byte {
	n := len(ids)
	b := binary.BigEndian.AppendUint32(nil, uint32(n))
	section := func(valid func(int) bool, val func(int) []byte) {
		sec := make([]byte, (n+7)/8)
		for r := 0; r < n; r++ {
			if valid(r) {
				sec[r/8] |= 1 << (r % 8)
				sec = append(sec, val(r)...)
			}
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(sec)))
		b = append(b, sec...)
	}
	section(func(r int) bool { return ids[r] != nil }, func(r int) []byte { return binary.BigEndian.AppendUint64(nil, uint64(*ids[r])) })
	section(func(r int) bool { return ts[r] != nil }, func(r int) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(*ts[r]))), *ts[r]...)
	})
	section(func(r int) bool { return ns[r] != nil }, func(r int) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(ns[r]))), ns[r]...)
	})
	return b
}

// TestLoadFiles loads chunks into a columnstore table, a new data file
// every loadFileRows rows, and reads the rows back; a NULL in a NOT NULL
// column and a malformed chunk fail and leave no file.
func TestLoadFiles(t *testing.T) {
	ctx := context.Background()
	duck, err := gosql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer duck.Close()
	dir := t.TempDir()
	typ := func(oid uint32, typmod int32) ColumnType {
		ct, _ := ResolveType(oid, typmod, "")
		return ct
	}
	base, err := CreateColumnstore(ctx, []Column{
		{Name: "id", Type: typ(OIDInt8, -1), NotNull: true},
		{Name: "t", Type: typ(OIDText, -1)},
		{Name: "n", Type: typ(OIDNumeric, -1)},
	}, filepath.Join(dir, "tbl"))
	if err != nil {
		t.Fatal(err)
	}
	sent := []LoadColumn{{"id", EncInt8}, {"t", EncBytes}, {"n", EncNumeric}}
	defer func(n int64) { loadFileRows = n }(loadFileRows)
	loadFileRows = 5
	l, err := StartLoad(ctx, duck, base, sent)
	if err != nil {
		t.Fatal(err)
	}
	i64 := func(v int64) *int64 { return &v }
	str := func(v string) *string { return &v }
	var want []string
	id := int64(0)
	for _, size := range []int{3, 3, 1, 4} { // files of 3, 4 and 4 rows
		var ids []*int64
		var ts []*string
		var ns [][]byte
		for range size {
			id++
			ids = append(ids, i64(id))
			if id%2 == 0 {
				ts = append(ts, nil)
				ns = append(ns, nil)
				want = append(want, fmt.Sprintf("%d||", id))
				continue
			}
			ts = append(ts, str(fmt.Sprintf("é%d", id)))
			ns = append(ns, numericSend(0x4000, 0, 1, uint16(id), 0))
			want = append(want, fmt.Sprintf("%d|é%d|-%d.0", id, id, id))
		}
		if err := l.Add(loadChunk(ids, ts, ns)); err != nil {
			t.Fatal(err)
		}
	}
	res, err := l.Finish(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 11 || res.DataFiles != 3 {
		t.Fatalf("finish: %+v, want 11 rows in 3 files", res)
	}
	rows, err := duck.QueryContext(ctx, "SELECT id || '|' || coalesce(t, '') || '|' || coalesce(n, '') FROM read_parquet("+
		QuoteLiteral(filepath.Join(dir, "tbl", "data", "*.parquet"))+") ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var v string
		rows.Scan(&v)
		got = append(got, v)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	files, _ := filepath.Glob(filepath.Join(dir, "tbl", "data", "*.parquet"))

	// failures leave no file behind
	for _, c := range []struct {
		chunk []byte
		code  string
	}{
		{loadChunk([]*int64{i64(1), nil}, []*string{nil, nil}, [][]byte{nil, nil}), "23502"},
		{loadChunk([]*int64{i64(1)}, []*string{nil}, [][]byte{nil})[:10], "08P01"},
		{loadChunk([]*int64{i64(1)}, []*string{nil}, [][]byte{{0, 1}}), "08P01"},
	} {
		l, err := StartLoad(ctx, duck, base, sent)
		if err != nil {
			t.Fatal(err)
		}
		l.Add(loadChunk([]*int64{i64(1)}, []*string{nil}, [][]byte{nil}))
		err = l.Add(c.chunk)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != c.code {
			t.Errorf("got %v, want SQLSTATE %s", err, c.code)
		}
		if _, err := l.Finish(ctx, base); err == nil {
			t.Error("a failed load finished")
		}
	}
	if after, _ := filepath.Glob(filepath.Join(dir, "tbl", "data", "*.parquet")); len(after) != len(files) {
		t.Errorf("failed loads left files: %d, before %d", len(after), len(files))
	}
}

// A load bringing NaN into a numeric(p,s) column stored as DECIMAL: the
// files written before are written again with the column as text, the
// table the load began with gets a version storing it as text, and the
// load appends to that version. A table changed meanwhile fails (40001).
func TestLoadNaN(t *testing.T) {
	ctx := context.Background()
	duck, err := gosql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer duck.Close()
	i8, _ := ResolveType(OIDInt8, -1, "bigint")
	txt, _ := ResolveType(OIDText, -1, "text")
	n, _ := ResolveType(OIDNumeric, (12<<16|2)+4, "numeric(12,2)")
	dir := filepath.Join(t.TempDir(), "tbl")
	base, err := CreateColumnstore(ctx, []Column{{Name: "id", Type: i8, NotNull: true}, {Name: "t", Type: txt}, {Name: "n", Type: DecimalType(n)}}, dir)
	if err != nil {
		t.Fatal(err)
	}
	sent := []LoadColumn{{"id", EncInt8}, {"t", EncBytes}, {"n", EncNumeric}}
	defer func(n int64) { loadFileRows = n }(loadFileRows)
	loadFileRows = 2
	i64 := func(v int64) *int64 { return &v }
	str := func(v string) *string { return &v }
	chunks := [][]byte{
		loadChunk([]*int64{i64(1), i64(2)}, []*string{str("a"), nil}, [][]byte{numericSend(0, 0, 2, 5, 2500), nil}), // 5.25, NULL
		loadChunk([]*int64{i64(3)}, []*string{str("c")}, [][]byte{numericSend(0x4000, -1, 2, 100)}),                 // -0.01
		loadChunk([]*int64{i64(4), i64(5)}, []*string{nil, str("e")}, [][]byte{numericSend(0xC000, 0, 0), numericSend(0, 0, 2, 7)}),
	}
	load := func() *Loader {
		l, err := StartLoad(ctx, duck, base, sent)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range chunks {
			if err := l.Add(c); err != nil {
				t.Fatal(err)
			}
		}
		return l
	}
	res, err := load().Finish(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 5 {
		t.Fatalf("finish: %+v", res)
	}
	tbl, cols, err := LoadColumnstore(ctx, res.MetadataLocation)
	if err != nil {
		t.Fatal(err)
	}
	if cols[2].Type.Kind != KindText {
		t.Fatalf("n is stored as %v after NaN", cols[2].Type.Kind)
	}
	data, deletes, err := currentFiles(ctx, tbl)
	if err != nil || len(deletes) != 0 {
		t.Fatal(err, deletes)
	}
	var paths []string
	for _, f := range data {
		paths = append(paths, f.FilePath())
	}
	m := newMirror("", "", "", cols, nil)
	rows, err := duck.QueryContext(ctx, "SELECT concat_ws('|', "+m.fileCol(0)+", coalesce("+m.fileCol(1)+", 'null'), coalesce("+m.fileCol(2)+", 'null')) FROM "+
		m.readFiles(paths)+" ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var v string
		rows.Scan(&v)
		got = append(got, v)
	}
	if want := "1|a|5.25,2|null|null,3|c|-0.01,4|null|NaN,5|e|7.00"; strings.Join(got, ",") != want {
		t.Fatalf("rows %s, want %s", strings.Join(got, ","), want)
	}

	// The table changed while the load ran: the load cannot append to it.
	other, err := AppendColumnstore(ctx, duck, base, []string{"id"}, [][]*string{{str("9")}})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := filepath.Glob(filepath.Join(dir, "data", "*.parquet"))
	_, err = load().Finish(ctx, other.MetadataLocation)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "40001" {
		t.Fatalf("finish on a changed table: %v, want 40001", err)
	}
	// What that load wrote is gone (the version it made of base, which had
	// no rows, has no data file; one of a table with rows would be an
	// orphan the sweep removes).
	after, _ := filepath.Glob(filepath.Join(dir, "data", "*.parquet"))
	if len(after) != len(before) {
		t.Fatalf("%d data files after the failed load, %d before", len(after), len(before))
	}
}
