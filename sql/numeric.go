package sql

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// Constants of PostgreSQL's numeric division (utils/adt/numeric.c).
const (
	numericMinSigDigits = 16   // NUMERIC_MIN_SIG_DIGITS
	numericMaxDisplay   = 1000 // NUMERIC_MAX_DISPLAY_SCALE
	decDigits           = 4    // DEC_DIGITS: numeric's base is 10000
)

// AvgText is the text of PostgreSQL's avg of values whose sum is sum over
// count values: numeric_div(sum, count), whose result scale
// select_div_scale picks from the operands' leading base-10000 digits and
// the sum's display scale, rounded half away from zero. sum is the text of
// a numeric as numeric_out writes it (an integer, or a decimal whose
// fraction digits are its display scale), or NaN, whose avg is NaN.
func AvgText(sum string, count int64) (string, error) {
	if sum == "NaN" {
		return "NaN", nil
	}
	s, dscale, ok := parseDecimal(sum)
	if !ok {
		return "", fmt.Errorf("sum %q is not a decimal", sum)
	}
	if count <= 0 {
		return "", fmt.Errorf("avg over %d values", count)
	}
	n := big.NewInt(count)
	w1, f1 := leadingDigit(s, dscale)
	w2, f2 := leadingDigit(n, 0)
	qweight := w1 - w2
	if f1 <= f2 {
		qweight--
	}
	rscale := min(max(numericMinSigDigits-qweight*decDigits, dscale, 0), numericMaxDisplay)

	// round(|s| / 10^dscale * 10^rscale / n), half away from zero
	num := new(big.Int).Mul(new(big.Int).Abs(s), pow10(rscale))
	den := new(big.Int).Mul(n, pow10(dscale))
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	if r.Mul(r, big.NewInt(2)).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	out := decimalText(q, rscale)
	if s.Sign() < 0 && q.Sign() != 0 {
		out = "-" + out
	}
	return out, nil
}

func pow10(n int) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil) }

// decimalText writes the non-negative q * 10^-scale with scale fraction
// digits.
func decimalText(q *big.Int, scale int) string {
	digits := q.String()
	if len(digits) <= scale {
		digits = strings.Repeat("0", scale-len(digits)+1) + digits
	}
	out := digits[:len(digits)-scale]
	if scale > 0 {
		out += "." + digits[len(digits)-scale:]
	}
	return out
}

// parseDecimal reads [-]digits[.digits] as v * 10^-scale.
func parseDecimal(text string) (v *big.Int, scale int, ok bool) {
	t := strings.TrimPrefix(text, "-")
	ip, fp, dot := strings.Cut(t, ".")
	if ip == "" || (dot && fp == "") || !allDigits(ip) || !allDigits(fp) {
		return nil, 0, false
	}
	v, ok = new(big.Int).SetString(ip+fp, 10)
	if !ok {
		return nil, 0, false
	}
	if strings.HasPrefix(text, "-") {
		v.Neg(v)
	}
	return v, len(fp), true
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// leadingDigit is the weight (position in base 10000 from the decimal
// point, 0 for the units, -1 for the first four fraction digits) and value
// of the leading base-10000 digit of |v| * 10^-scale; 0, 0 for zero.
func leadingDigit(v *big.Int, scale int) (weight, digit int) {
	a := new(big.Int).Abs(v)
	if a.Sign() == 0 {
		return 0, 0
	}
	// Align the fraction on base-10000 digits.
	groups := (scale + decDigits - 1) / decDigits
	a.Mul(a, pow10(groups*decDigits-scale))
	base := big.NewInt(10000)
	for a.Cmp(base) >= 0 {
		a.Quo(a, base)
		weight++
	}
	return weight - groups, int(a.Int64())
}

// numericTypmod decodes the typmod of numeric(p,s): since PostgreSQL 15
// the scale takes the low 11 bits and may be negative (or above p).
func numericTypmod(typmod int32) (p, s int, ok bool) {
	if typmod < 4 {
		return 0, 0, false
	}
	v := typmod - 4
	p = int(v >> 16 & 0xffff)
	s = int((v&0x7ff ^ 0x400) - 0x400)
	return p, s, p >= 1 && p <= 1000
}

// decRange is the range of the values of numeric(p,s): every value is an
// exact DECIMAL with scale fraction digits and |value| < 10^intDigits.
func decRange(p, s int) (intDigits, scale int) {
	return max(p-s, 0), max(s, 0)
}

// decLiteral reads a finite numeric constant as numeric_out writes it:
// |value| < 10^intDigits with scale fraction digits (trailing zeros of the
// fraction do not count).
func decLiteral(text string) (intDigits, scale int, ok bool) {
	t := strings.TrimPrefix(text, "-")
	ip, fp, dot := strings.Cut(t, ".")
	if ip == "" || (dot && fp == "") || !allDigits(ip) || !allDigits(fp) {
		return 0, 0, false
	}
	ip = strings.TrimLeft(ip, "0")
	fp = strings.TrimRight(fp, "0")
	return len(ip), len(fp), true
}

// VarianceText is the text of PostgreSQL's kind ("var_samp", "var_pop",
// "stddev_samp" or "stddev_pop") of smallint or integer values, from their
// count n, sum and sum of squares (integer text), as
// numeric_stddev_internal computes it: (n*sumX2 - sumX^2) / (n*(n-1)) (or
// n*n for the population), divided at select_div_scale's scale and rounded
// half away from zero; the standard deviation is that variance's square
// root, rounded to the same scale. null is true for an undefined result
// (no value, or one value of a sample).
func VarianceText(kind string, n int64, sum, sumSquares string) (text string, null bool, err error) {
	sample := kind == "var_samp" || kind == "stddev_samp"
	switch kind {
	case "var_samp", "var_pop", "stddev_samp", "stddev_pop":
	default:
		return "", false, fmt.Errorf("unknown spread %q", kind)
	}
	if n == 0 || (sample && n == 1) {
		return "", true, nil
	}
	sx, ok1 := new(big.Int).SetString(sum, 10)
	sx2, ok2 := new(big.Int).SetString(sumSquares, 10)
	if !ok1 || !ok2 || n < 0 {
		return "", false, fmt.Errorf("variance of %d values with sums %q and %q", n, sum, sumSquares)
	}
	nb := big.NewInt(n)
	num := new(big.Int).Mul(nb, sx2)
	num.Sub(num, new(big.Int).Mul(sx, sx))
	if num.Sign() <= 0 {
		return "0", false, nil
	}
	den := new(big.Int).Set(nb)
	if sample {
		den.Mul(den, big.NewInt(n-1))
	} else {
		den.Mul(den, nb)
	}
	w1, f1 := leadingDigit(num, 0)
	w2, f2 := leadingDigit(den, 0)
	qweight := w1 - w2
	if f1 <= f2 {
		qweight--
	}
	rscale := min(max(numericMinSigDigits-qweight*decDigits, 0), numericMaxDisplay)
	q, r := new(big.Int).QuoRem(new(big.Int).Mul(num, pow10(rscale)), den, new(big.Int))
	if r.Mul(r, big.NewInt(2)).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if kind == "var_samp" || kind == "var_pop" {
		return decimalText(q, rscale), false, nil
	}
	// sqrt(q * 10^-rscale) with one more digit, truncated, then rounded
	y := new(big.Int).Sqrt(new(big.Int).Mul(q, pow10(rscale+2)))
	last := new(big.Int)
	y.QuoRem(y, big.NewInt(10), last)
	if last.Int64() >= 5 {
		y.Add(y, big.NewInt(1))
	}
	return decimalText(y, rscale), false, nil
}

// SpreadWidth is the number of DuckDB result columns of an output column
// of Scan.Spread kind.
func SpreadWidth(kind string) int {
	switch {
	case kind == "text":
		return 1
	case strings.HasPrefix(kind, "sum:") || strings.HasPrefix(kind, "avg:"):
		return 4
	case strings.HasPrefix(kind, "sum3:") || strings.HasPrefix(kind, "avg3:"):
		return 5
	}
	return 3
}

// FinishSpread is the text of an output column of Scan.Spread kind from
// its DuckDB result columns (nil for NULL): for a variance or standard
// deviation the count, the sum and the sum of squares (VarianceText); for
// "sum:<scale>" and "avg:<scale>", a sum split in two (see splitSum):
// whether some value is NaN, the sums of the high and the low halves of
// the unscaled values, and the count; for "sum3:<scale>" and
// "avg3:<scale>", a sum split in three (see wideSum): whether some value
// is NaN, the sums of the parts of 10^36, 10^18 and 1, and the count; for
// "text", the text itself. null is true for NULL.
func FinishSpread(kind string, vals []*string) (text string, null bool, err error) {
	width := SpreadWidth(kind)
	if len(vals) != width {
		return "", false, fmt.Errorf("%s from %d columns", kind, len(vals))
	}
	if kind == "text" {
		if vals[0] == nil {
			return "", true, nil
		}
		return *vals[0], false, nil
	}
	count := vals[0] // a variance's count comes first, a split sum's last
	if width > 3 {
		count = vals[width-1]
	}
	if count == nil {
		return "", true, nil
	}
	n, err := strconv.ParseInt(*count, 10, 64)
	if err != nil || n < 0 {
		return "", false, fmt.Errorf("%s: count %q", kind, *count)
	}
	if n == 0 {
		return "", true, nil
	}
	name, scaleText, split := strings.Cut(kind, ":")
	if !split {
		if vals[1] == nil || vals[2] == nil {
			return "", true, nil
		}
		return VarianceText(kind, n, *vals[1], *vals[2])
	}
	scale, err := strconv.Atoi(scaleText)
	if err != nil || scale < 0 {
		return "", false, fmt.Errorf("spread kind %q", kind)
	}
	if vals[0] != nil && *vals[0] == "true" {
		return "NaN", false, nil
	}
	// The unscaled sum from its parts, most significant first, each
	// worth 10^18 times the next.
	u := new(big.Int)
	for _, v := range vals[1 : width-1] {
		if v == nil {
			return "", true, nil
		}
		part, ok := new(big.Int).SetString(*v, 10)
		if !ok {
			return "", false, fmt.Errorf("%s: partial sum %q", kind, *v)
		}
		u.Mul(u, pow10(18))
		u.Add(u, part)
	}
	sum := decimalText(new(big.Int).Abs(u), scale)
	if u.Sign() < 0 {
		sum = "-" + sum
	}
	if name == "sum" || name == "sum3" {
		return sum, false, nil
	}
	avg, err := AvgText(sum, n)
	return avg, false, err
}
