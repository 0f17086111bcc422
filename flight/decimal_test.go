package flight

import (
	"math/rand"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pgmooncake/mooncake/catalog"
)

// The fast path of numeric text to decimal128 agrees with decimalDigits
// wherever it answers, and answers for the values a numeric(p,s) column
// holds.
func TestDecimalInt64(t *testing.T) {
	check := func(v string, p, s int32) {
		t.Helper()
		n, ok := decimalInt64(v, p, s)
		digits, neg, err := decimalDigits(v, p, s)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("decimalInt64(%q, %d, %d) = %d; decimalDigits: %v", v, p, s, n, err)
		}
		want, perr := strconv.ParseInt(digits, 10, 64)
		if perr != nil {
			t.Fatalf("decimalInt64(%q, %d, %d) = %d; decimalDigits: %q", v, p, s, n, digits)
		}
		if neg {
			want = -want
		}
		if n != want {
			t.Fatalf("decimalInt64(%q, %d, %d) = %d; want %d", v, p, s, n, want)
		}
	}
	for _, tc := range []struct {
		v    string
		p, s int32
		want int64
		ok   bool
	}{
		{"0", 12, 2, 0, true},
		{"-0.00", 12, 2, 0, true},
		{"0.05", 12, 2, 5, true},
		{"1234.5", 12, 2, 123450, true},
		{"-1234.56", 12, 2, -123456, true},
		{"0001.10", 12, 2, 110, true},
		{"9999999999.99", 12, 2, 999999999999, true},
		{"99999999999.99", 12, 2, 0, false}, // out of range
		{"999999999999999999", 18, 0, 999999999999999999, true},
		{"1.234", 12, 2, 0, false}, // more fraction digits than the scale
		{"1.230", 12, 2, 0, false}, // the slow path accepts it
		{"12", 20, 2, 0, false},    // past int64: the slow path
		{"", 12, 2, 0, false},
		{"-", 12, 2, 0, false},
		{".5", 12, 2, 0, false},
		{"5.", 12, 2, 0, false},
		{"1.2.3", 12, 2, 0, false},
		{"1e5", 12, 2, 0, false},
		{"+1", 12, 2, 0, false},
		{"NaN", 12, 2, 0, false},
		{" 1", 12, 2, 0, false},
	} {
		n, ok := decimalInt64(tc.v, tc.p, tc.s)
		if n != tc.want || ok != tc.ok {
			t.Errorf("decimalInt64(%q, %d, %d) = %d, %v; want %d, %v", tc.v, tc.p, tc.s, n, ok, tc.want, tc.ok)
		}
		check(tc.v, tc.p, tc.s)
	}
	rng := rand.New(rand.NewSource(1))
	const alphabet = "0123456789.-"
	for range 200000 {
		var b strings.Builder
		for range 1 + rng.Intn(22) {
			if rng.Intn(4) == 0 {
				b.WriteByte(alphabet[rng.Intn(len(alphabet))])
			} else {
				b.WriteByte(byte('0' + rng.Intn(10)))
			}
		}
		p := int32(1 + rng.Intn(20))
		check(b.String(), p, int32(rng.Intn(int(p)+1)))
	}
	// Every value of a numeric(12,2) column takes the fast path.
	for range 100000 {
		v := rng.Int63n(1e12) - 5e11
		text := strconv.FormatFloat(float64(v)/100, 'f', 2, 64)
		if n, ok := decimalInt64(text, 12, 2); !ok || n != v {
			t.Fatalf("decimalInt64(%q, 12, 2) = %d, %v; want %d", text, n, ok, v)
		}
	}
}

func BenchmarkParseDecimal128(b *testing.B) {
	parse := parseDecimal128(12, 2)
	vals := []string{"1234.56", "-0.05", "9999999999.99", "42.00"}
	for i := 0; b.Loop(); i++ {
		if _, err := parse(vals[i%len(vals)]); err != nil {
			b.Fatal(err)
		}
	}
}

// A text column converted to decimal128 in one pass equals TextBuilder's
// column, and fails where it fails.
func TestDecimalsFromText(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	typmod := int32(12<<16 | 2 + 4)
	target := ArrowType(catalog.OIDNumeric, typmod).(*arrow.Decimal128Type)
	convert := func(vals []*string) (arrow.Array, arrow.Array, error, error) {
		sb := array.NewStringBuilder(mem)
		defer sb.Release()
		tb := NewTextBuilder(mem, catalog.OIDNumeric, typmod)
		defer tb.Release()
		var terr error
		for _, v := range vals {
			if v == nil {
				sb.AppendNull()
				tb.AppendNull()
			} else {
				sb.Append(*v)
				if err := tb.Append(*v); err != nil && terr == nil {
					terr = err
				}
			}
		}
		col := sb.NewStringArray()
		defer col.Release()
		want := tb.NewArray()
		got, err := decimalsFromText(mem, col, target)
		return got, want, err, terr
	}
	got, want, err, terr := convert([]*string{text("1.50"), nil, text("-0.05"), text("1.230"), text("9999999999.99"), text("0")})
	if err != nil || terr != nil {
		t.Fatalf("decimalsFromText: %v; TextBuilder: %v", err, terr)
	}
	if !array.Equal(got, want) {
		t.Errorf("decimalsFromText = %v; TextBuilder %v", got, want)
	}
	got.Release()
	want.Release()
	for _, bad := range []string{"1.234", "99999999999.99", "NaN", "x"} {
		got, want, err, terr := convert([]*string{text("1"), text(bad)})
		want.Release()
		if got != nil {
			got.Release()
		}
		if err == nil || terr == nil || !strings.HasSuffix(err.Error(), terr.Error()) {
			t.Errorf("%q: decimalsFromText: %v; TextBuilder: %v", bad, err, terr)
		}
	}
}
