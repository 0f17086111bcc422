package catalog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// pgNumeric is numeric's binary send form of a decimal literal (or NaN),
// as PostgreSQL builds it: base-10000 digits aligned on the decimal
// point, leading and trailing zero digits stripped, dscale the literal's
// fraction digits.
func pgNumeric(s string) []byte {
	var sign uint16
	switch {
	case s == "NaN":
		return []byte{0, 0, 0, 0, numericNaN >> 8, 0, 0, 0}
	case strings.HasPrefix(s, "-"):
		sign, s = numericNeg, s[1:]
	}
	ip, fp, _ := strings.Cut(s, ".")
	dscale := len(fp)
	ip = strings.Repeat("0", (4-len(ip)%4)%4) + ip
	fp += strings.Repeat("0", (4-len(fp)%4)%4)
	var digits []uint16
	for d := ip + fp; len(d) > 0; d = d[4:] {
		var v uint16
		for _, c := range d[:4] {
			v = v*10 + uint16(c-'0')
		}
		digits = append(digits, v)
	}
	weight := len(ip)/4 - 1
	for len(digits) > 0 && digits[0] == 0 {
		digits, weight = digits[1:], weight-1
	}
	for len(digits) > 0 && digits[len(digits)-1] == 0 {
		digits = digits[:len(digits)-1]
	}
	if len(digits) == 0 {
		weight = 0
	}
	return numericSend(sign, int16(weight), int16(dscale), digits...)
}

func TestNumericDecimal(t *testing.T) {
	for _, tc := range []struct {
		in    string
		scale int
		want  string // the unscaled integer; "" for an error
	}{
		{"0", 2, "0"}, {"0.00", 2, "0"}, {"1.5", 2, "150"}, {"-1.50", 2, "-150"}, {"12345.67", 2, "1234567"},
		{"0.01", 2, "1"}, {"10000", 0, "10000"}, {"100000000", 3, "100000000000"}, {"0.0001", 4, "1"},
		{"99999999999999999999999999999999999999", 0, "99999999999999999999999999999999999999"},
		{"-9999999999999999999999999999.9999999999", 10, "-99999999999999999999999999999999999999"},
		{"1.234", 2, ""}, // more fraction digits than the scale
		{"999999999999999999999999999999999999999", 0, ""}, // 39 digits
		{"NaN", 2, ""},
	} {
		n, err := numericDecimal(pgNumeric(tc.in), tc.scale)
		got := ""
		if err == nil {
			got = n.BigInt().String()
		}
		if got != tc.want {
			t.Errorf("numericDecimal(%s, scale %d) = %q, %v; want %q", tc.in, tc.scale, got, err, tc.want)
		}
		if tc.in == "NaN" && !errors.Is(err, errDecimalNaN) {
			t.Errorf("numericDecimal(NaN) = %v; want errDecimalNaN", err)
		}
	}
	if _, err := numericDecimal([]byte{0, 1, 0, 0, 0, 0, 0, 0, 0x27, 0x10}, 0); err == nil {
		t.Errorf("numericDecimal of a digit of 10000: no error")
	}
}

// copyStream is a binary COPY stream of rows (nil fields are NULL).
func copyStream(rows [][][]byte) []byte {
	out := append([]byte(nil), copySignature...)
	out = append(out, 0, 0, 0, 0, 0, 0, 0, 0)
	for _, r := range rows {
		out = binary.BigEndian.AppendUint16(out, uint16(len(r)))
		for _, f := range r {
			if f == nil {
				out = binary.BigEndian.AppendUint32(out, math.MaxUint32)
				continue
			}
			out = binary.BigEndian.AppendUint32(out, uint32(len(f)))
			out = append(out, f...)
		}
	}
	return binary.BigEndian.AppendUint16(out, math.MaxUint16)
}

func be16(v int16) []byte { return binary.BigEndian.AppendUint16(nil, uint16(v)) }
func be32(v int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }
func be64(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

// TestCopyWriter writes binary COPY streams of every stored kind, in
// parts cut at random places, to a data file and reads it back: the
// values, NULLs, infinities, and numeric(p,s) columns holding NaN, which
// the copy makes again with them as text.
func TestCopyWriter(t *testing.T) {
	db := openDuck(t)
	ctx := context.Background()
	typ := func(oid uint32, typmod int32, name string) ColumnType {
		rt, err := ResolveType(oid, typmod, name)
		if err != nil {
			t.Fatal(err)
		}
		return DecimalType(rt)
	}
	cols := []Column{
		{Name: "id", Type: typ(OIDInt4, -1, "integer")},
		{Name: "a", Type: typ(OIDNumeric, numericTypmod(10, 2), "numeric")},
		{Name: "b", Type: typ(OIDNumeric, numericTypmod(38, 10), "numeric")},
		{Name: "t", Type: typ(OIDText, -1, "text")},
		{Name: "f", Type: typ(OIDBool, -1, "boolean")},
		{Name: "d", Type: typ(OIDDate, -1, "date")},
		{Name: "ts", Type: typ(OIDTimestamp, -1, "timestamp")},
		{Name: "tz", Type: typ(OIDTimestampTZ, -1, "timestamptz")},
		{Name: "by", Type: typ(OIDBytea, -1, "bytea")},
		{Name: "u", Type: typ(OIDUUID, -1, "uuid")},
		{Name: "x", Type: typ(OIDFloat8, -1, "double precision")},
		{Name: "s", Type: typ(OIDInt2, -1, "smallint")},
		{Name: "tm", Type: typ(OIDTime, -1, "time")},
		{Name: "j", Type: typ(3802, -1, "jsonb")},
		{Name: "m", Type: typ(OIDMoney, -1, "money")},
		{Name: "g", Type: typ(OIDInt8, -1, "bigint")},
		{Name: "r", Type: typ(OIDFloat4, -1, "real")},
	}
	for i := range cols {
		cols[i].ID = i + 1
	}
	if cols[1].Type.Kind != KindDecimal || cols[13].Type.Kind != KindText {
		t.Fatalf("kinds %v %v", cols[1].Type.Kind, cols[13].Type.Kind)
	}
	sel := CopySelect(cols)
	if sel[0] != `"id"` || !strings.Contains(sel[13], "format('%s', \"j\")") {
		t.Errorf("CopySelect = %q", sel)
	}
	ts := func(s string) []byte {
		v, err := time.Parse("2006-01-02 15:04:05.999999", s)
		if err != nil {
			t.Fatal(err)
		}
		return be64(v.Sub(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).Microseconds())
	}
	uuid := []byte{0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11}
	row1 := [][]byte{be32(1), pgNumeric("1.50"), pgNumeric("-1234567890123456789012345678.0123456789"), []byte("héllo"),
		{1}, be32(8825), ts("2024-02-29 12:34:56.789012"), ts("1999-12-31 23:59:59.5"), {0, 0xff}, uuid,
		be64(int64(math.Float64bits(1.5))), be16(-32768), be64(47655500000), []byte(`{"a": 1}`), be64(-123456), be64(math.MaxInt64),
		be32(int32(math.Float32bits(-0.25)))}
	row2 := make([][]byte, len(cols))
	row2[0] = be32(2)
	row3 := [][]byte{be32(3), pgNumeric("0.01"), pgNumeric("0"), []byte(""),
		{0}, be32(math.MinInt32), be64(math.MaxInt64), be64(math.MinInt64), {}, make([]byte, 16),
		be64(int64(math.Float64bits(math.Inf(-1)))), be16(32767), be64(0), []byte(`[]`), be64(0), be64(math.MinInt64),
		be32(int32(math.Float32bits(float32(math.NaN()))))}
	want := []string{
		"1|1.50|-1234567890123456789012345678.0123456789|héllo|true|2024-02-29|2024-02-29 12:34:56.789012|1999-12-31 23:59:59.5+00|\\x00\\xFF|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|1.5|-32768|13:14:15.5|{\"a\": 1}|-123456|9223372036854775807|-0.25",
		"2|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL",
		"3|0.01|0.0000000000||false|-infinity|infinity|-infinity||00000000-0000-0000-0000-000000000000|-inf|32767|00:00:00|[]|0|-9223372036854775808|nan",
	}

	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	// fill sends each part's stream in chunks of random sizes
	fillWith := func(parts [][]byte, fills *int) func(*CopyWriter) error {
		return func(w *CopyWriter) error {
			*fills++
			for _, stream := range parts {
				p, err := w.Part(nil)
				if err != nil {
					return err
				}
				for rest := stream; len(rest) > 0; {
					n := min(len(rest), 1+rng.IntN(60))
					if _, err := p.Write(rest[:n]); err != nil {
						return err
					}
					rest = rest[n:]
				}
				if err := p.Close(); err != nil {
					return err
				}
			}
			return nil
		}
	}
	readBack := func(paths []string, got []Column) []string {
		var sel []string
		for _, c := range got {
			sel = append(sel, "coalesce(CAST("+QuoteIdent(c.Name)+" AS VARCHAR), 'NULL')")
		}
		rows, err := db.QueryContext(ctx, "SELECT "+strings.Join(sel, " || '|' || ")+" FROM read_parquet("+stringList(paths)+") ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}

	fills := 0
	got, paths, n, err := copyInto(ctx, db, cols, dir, fillWith([][]byte{copyStream([][][]byte{row2, row1}), copyStream([][][]byte{row3})}, &fills))
	if err != nil || n != 3 || fills != 1 {
		t.Fatalf("copyInto = %d rows, %v after %d fills", n, err, fills)
	}
	// a data file per part, each with its part's rows
	if len(paths) != 2 || len(readBack(paths[:1], got)) != 2 || len(readBack(paths[1:], got)) != 1 {
		t.Errorf("data files %q; want one of 2 rows and one of 1", paths)
	}
	if back := readBack(paths, got); strings.Join(back, "\n") != strings.Join(want, "\n") {
		t.Errorf("read back:\n%s\nwant:\n%s", strings.Join(back, "\n"), strings.Join(want, "\n"))
	}

	// NaN in a: the copy is made again with a as text (the second fill
	// sends what PostgreSQL then sends: its text).
	nanRow := append([][]byte(nil), row3...)
	nanRow[1] = pgNumeric("NaN")
	fills = 0
	first := true
	fill := func(w *CopyWriter) error {
		if first {
			first = false
			return fillWith([][]byte{copyStream([][][]byte{row1, row2}), copyStream([][][]byte{nanRow})}, &fills)(w)
		}
		if w.Columns()[1].Type.Kind != KindText || w.Columns()[2].Type.Kind != KindDecimal {
			t.Errorf("second fill: a is %s, b %s; want text, decimal", w.Columns()[1].Type.Kind, w.Columns()[2].Type.Kind)
		}
		r1, r3 := append([][]byte(nil), row1...), append([][]byte(nil), nanRow...)
		r1[1], r3[1] = []byte("1.50"), []byte("NaN")
		return fillWith([][]byte{copyStream([][][]byte{r1, row2, r3})}, &fills)(w)
	}
	nanDir := filepath.Join(dir, "nan")
	got, paths, n, err = copyInto(ctx, db, cols, nanDir, fill)
	if err != nil || n != 3 || fills != 2 || len(paths) != 1 {
		t.Fatalf("copyInto with NaN = %d rows, %v after %d fills", n, err, fills)
	}
	if got[1].Type.Kind != KindText || got[2].Type.Kind != KindDecimal || cols[1].Type.Kind != KindDecimal {
		t.Errorf("with NaN: a stored as %s, b as %s (the caller's a: %s)", got[1].Type.Kind, got[2].Type.Kind, cols[1].Type.Kind)
	}
	want3 := strings.Replace(want[2], "3|0.01|", "3|NaN|", 1)
	if files, _ := os.ReadDir(nanDir); len(files) != 1 {
		t.Errorf("%d files in the directory after the copy made again; want its 1", len(files))
	}
	if back := readBack(paths, got); len(back) != 3 || back[0] != want[0] || back[2] != want3 {
		t.Errorf("read back with NaN:\n%s\nwant rows 1 and 3:\n%s\n%s", strings.Join(back, "\n"), want[0], want3)
	}

	// Malformed streams fail the copy and leave no file.
	for name, stream := range map[string][]byte{
		"no trailer":       bytes.TrimSuffix(copyStream([][][]byte{row1}), []byte{0xff, 0xff}),
		"too few fields":   copyStream([][][]byte{row1[:3]}),
		"bad width":        copyStream([][][]byte{append([][]byte{be64(1)}, row1[1:]...)}),
		"no signature":     copyStream(nil)[1:],
		"after trailer":    append(copyStream(nil), 0, 1),
		"invalid UTF-8":    copyStream([][][]byte{append(append([][]byte{}, row1[:3]...), append([][]byte{{0xc3, 0x28}}, row1[4:]...)...)}),
		"numeric too long": copyStream([][][]byte{append(append([][]byte{}, row1[:1]...), append([][]byte{pgNumeric("1.234")}, row1[2:]...)...)}),
	} {
		bad := filepath.Join(dir, "bad")
		fills = 0
		_, _, _, err := copyInto(ctx, db, cols, bad, fillWith([][]byte{stream, copyStream([][][]byte{row1})}, &fills))
		if err == nil {
			t.Errorf("%s: no error", name)
		}
		// a stream of another form: a column's type changed (cdc copies again)
		if structural := !strings.Contains(name, "UTF-8") && !strings.Contains(name, "numeric"); errors.Is(err, ErrCopyMalformed) != structural {
			t.Errorf("%s: %v; want ErrCopyMalformed: %v", name, err, structural)
		}
		var pe *pgconn.PgError
		if strings.Contains(name, "UTF-8") && (!errors.As(err, &pe) || pe.Code != "22021" || !strings.Contains(pe.Message, `column "t"`)) {
			t.Errorf("%s: %v; want SQLSTATE 22021 naming the column", name, err)
		}
		if files, _ := os.ReadDir(bad); len(files) != 0 {
			t.Errorf("%s: %d data files remain", name, len(files))
		}
	}
}
