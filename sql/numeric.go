package sql

import (
	"fmt"
	"math/big"
	"strings"
)

// Constants of PostgreSQL's numeric division (utils/adt/numeric.c).
const (
	numericMinSigDigits = 16   // NUMERIC_MIN_SIG_DIGITS
	numericMaxDisplay   = 1000 // NUMERIC_MAX_DISPLAY_SCALE
	decDigits           = 4    // DEC_DIGITS: numeric's base is 10000
)

// AvgText is the text of PostgreSQL's avg of integers whose sum is sum
// (decimal text) over count values: numeric_div(sum, count), whose result
// scale select_div_scale picks from the operands' leading base-10000
// digits, rounded half away from zero.
func AvgText(sum string, count int64) (string, error) {
	s, ok := new(big.Int).SetString(sum, 10)
	if !ok {
		return "", fmt.Errorf("sum %q is not an integer", sum)
	}
	if count <= 0 {
		return "", fmt.Errorf("avg over %d values", count)
	}
	n := big.NewInt(count)
	w1, f1 := leadingDigit(s)
	w2, f2 := leadingDigit(n)
	qweight := w1 - w2
	if f1 <= f2 {
		qweight--
	}
	rscale := min(max(numericMinSigDigits-qweight*decDigits, 0), numericMaxDisplay)

	// round(|s| * 10^rscale / n), half away from zero
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(rscale)), nil)
	num := new(big.Int).Mul(new(big.Int).Abs(s), scale)
	q, r := new(big.Int).QuoRem(num, n, new(big.Int))
	if r.Mul(r, big.NewInt(2)).Cmp(n) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	digits := q.String()
	if len(digits) <= rscale {
		digits = strings.Repeat("0", rscale-len(digits)+1) + digits
	}
	out := digits[:len(digits)-rscale]
	if rscale > 0 {
		out += "." + digits[len(digits)-rscale:]
	}
	if s.Sign() < 0 && q.Sign() != 0 {
		out = "-" + out
	}
	return out, nil
}

// leadingDigit is the weight (position in base 10000, 0 for the units)
// and value of the leading base-10000 digit of |v|; 0, 0 for zero.
func leadingDigit(v *big.Int) (weight, digit int) {
	a := new(big.Int).Abs(v)
	if a.Sign() == 0 {
		return 0, 0
	}
	base := big.NewInt(10000)
	for a.Cmp(base) >= 0 {
		a.Quo(a, base)
		weight++
	}
	return weight, int(a.Int64())
}
