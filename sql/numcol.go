package sql

import (
	"fmt"
	"strings"

	"github.com/pgmooncake/mooncake/catalog"
)

// Columns of type numeric(p,s) are stored as the text numeric_out wrote
// for their values: PostgreSQL applied the typmod before storing them,
// so every value is NaN or a decimal with exactly max(s,0) fraction
// digits and |value| < 10^(p-s) (constrained numerics hold no infinity).
// Equal values thus have equal texts: grouping, DISTINCT and counting
// work on the text itself, and the text is what PostgreSQL prints.
//
// Comparing and ordering go through an order key: the value as an exact
// DuckDB DECIMAL, NaN as 10^intDigits, above every value, as PostgreSQL
// orders NaN above every number and equal to itself.

// decVal is how a numeric(p,s) value (or a numeric constant compared
// with one) is compared, ordered and aggregated.
type decVal struct {
	intDigits int // |value| < 10^intDigits
	scale     int // fraction digits of every value
	// key is the order key in a DECIMAL(intDigits+1+scale, scale) of at
	// least the value's own range, NaN mapped to 10^intDigits.
	key func(intDigits, scale int) string
	raw string // a column: the SQL of its stored text; "" otherwise
	// num is the value as an exact DECIMAL(intDigits+scale, scale) (NULL
	// for NaN), nan whether it is NaN ("" when it never is); "" when the
	// value has no such form (min/max, sum).
	num, nan string
}

// maxDecWidth is DuckDB's widest DECIMAL.
const maxDecWidth = 38

// maxSumDigits bounds the digits (integer and fraction) of a numeric(p,s)
// whose sum and avg are pushed down: a DECIMAL(38,s) sum of up to 10^10
// such values cannot overflow.
const maxSumDigits = 28

func decType(intDigits, scale int) string {
	return fmt.Sprintf("DECIMAL(%d,%d)", intDigits+1+scale, scale)
}

// decNaN is the key of NaN.
func decNaN(intDigits, scale int) string {
	return "CAST('1" + strings.Repeat("0", intDigits) + "' AS " + decType(intDigits, scale) + ")"
}

// decColumn is the decVal of a column read as numeric with typmod, stored
// as text, or nil when it is not such a column.
func decColumn(text string, e *Expr, stored catalog.ColumnType) *decVal {
	if e.Type != catalog.OIDNumeric || stored.OID != catalog.OIDNumeric || stored.Kind != catalog.KindText || e.Typmod != stored.Typmod {
		return nil
	}
	p, s, ok := numericTypmod(e.Typmod)
	if !ok {
		return nil
	}
	n, f := decRange(p, s)
	if n+1+f > maxDecWidth {
		return nil
	}
	num := fmt.Sprintf("TRY_CAST(%s AS DECIMAL(%d,%d))", text, max(n+f, 1), f)
	return &decVal{intDigits: n, scale: f, raw: text, num: num, nan: text + " = 'NaN'", key: func(n, f int) string {
		// TRY_CAST: never an error, whatever order DuckDB evaluates the
		// branches in; every text but NaN is a decimal that fits.
		return fmt.Sprintf("(CASE WHEN %[1]s = 'NaN' THEN %[2]s ELSE TRY_CAST(%[1]s AS %[3]s) END)", text, decNaN(n, f), decType(n, f))
	}}
}

// decOperand is the decVal of a comparison's operand: a numeric(p,s)
// value or a numeric constant written in the query.
func decOperand(x texpr) (*decVal, error) {
	if x.class == cDec {
		return x.dec, nil
	}
	if !x.lit || x.oid != catalog.OIDNumeric {
		return nil, refuse("comparison of numeric(p,s) with type %d", x.oid)
	}
	if x.litText == nil {
		return &decVal{key: func(n, f int) string { return "CAST(NULL AS " + decType(n, f) + ")" }}, nil
	}
	v := *x.litText
	if v == "NaN" {
		return &decVal{key: decNaN}, nil
	}
	n, f, ok := decLiteral(v)
	if !ok {
		return nil, refuse("numeric constant %q", v)
	}
	num := fmt.Sprintf("CAST(%s AS DECIMAL(%d,%d))", catalog.QuoteLiteral(v), max(n+f, 1), f)
	return &decVal{intDigits: n, scale: f, num: num, key: func(n, f int) string {
		// Exact: the constant has at most f fraction digits.
		return "CAST(" + catalog.QuoteLiteral(v) + " AS " + decType(n, f) + ")"
	}}, nil
}

// decOperands is decOperand of both operands.
func decOperands(a, b texpr) (*decVal, *decVal, error) {
	da, err := decOperand(a)
	if err != nil {
		return nil, nil, err
	}
	db, err := decOperand(b)
	return da, db, err
}

// decArith adds, subtracts or multiplies two numerics, one at least a
// numeric(p,s) value, exactly as PostgreSQL does: the result has the
// larger scale of the two (the sum of the scales for a product), which is
// also the scale of DuckDB's DECIMAL result, so the text is PostgreSQL's.
// NaN on either side gives NaN. Results that could need more than
// DuckDB's 38 digits stay in PostgreSQL.
func decArith(op string, a, b texpr) (texpr, error) {
	da, db, err := decOperands(a, b)
	if err != nil {
		return texpr{}, err
	}
	if da.num == "" || db.num == "" {
		return texpr{}, refuse("numeric %s of an aggregate", op)
	}
	var n, f int
	switch op {
	case "+", "-":
		n, f = max(da.intDigits, db.intDigits)+1, max(da.scale, db.scale)
	case "*":
		n, f = da.intDigits+db.intDigits, da.scale+db.scale
	default:
		return texpr{}, refuse("numeric operator %s", op)
	}
	if n+f > maxDecWidth {
		return texpr{}, refuse("numeric %s needing more than %d digits", op, maxDecWidth)
	}
	// DuckDB computes DECIMALs of up to 18 digits in 64 bits, even when
	// the result is wider (and then fails with an overflow): operands of
	// a wider result are widened to 38 digits first (exact, and the
	// result fits by the bound above).
	wa, wb := max(da.intDigits+da.scale, 1), max(db.intDigits+db.scale, 1)
	if n+f > 18 {
		wa, wb = maxDecWidth, maxDecWidth
	}
	num := fmt.Sprintf("CAST((CAST(%s AS DECIMAL(%d,%d)) %s CAST(%s AS DECIMAL(%d,%d))) AS DECIMAL(%d,%d))",
		da.num, wa, da.scale, op, db.num, wb, db.scale, max(n+f, 1), f)
	var nans []string
	for _, x := range []string{da.nan, db.nan} {
		if x != "" {
			nans = append(nans, x)
		}
	}
	nan := strings.Join(nans, " OR ")
	text := "CAST(" + num + " AS VARCHAR)"
	if nan != "" {
		text = fmt.Sprintf("(CASE WHEN %s THEN 'NaN' ELSE %s END)", nan, text)
	}
	return texpr{sql: text, class: cDec, oid: catalog.OIDNumeric, dec: &decVal{intDigits: n, scale: f, num: num, nan: nan,
		key: func(n, f int) string {
			k := "CAST(" + num + " AS " + decType(n, f) + ")"
			if nan == "" {
				return k
			}
			return fmt.Sprintf("(CASE WHEN %s THEN %s ELSE %s END)", nan, decNaN(n, f), k)
		}}}, nil
}

// decCompare compares two numerics, one at least a numeric(p,s) value,
// as PostgreSQL does: both as exact DECIMALs of a type holding both, NaN
// equal to itself and above every number.
func decCompare(op string, a, b texpr) (texpr, error) {
	da, db, err := decOperands(a, b)
	if err != nil {
		return texpr{}, err
	}
	n, f := max(da.intDigits, db.intDigits), max(da.scale, db.scale)
	if n+1+f > maxDecWidth {
		return texpr{}, refuse("numeric comparison needing more than %d digits", maxDecWidth)
	}
	return texpr{sql: "(" + da.key(n, f) + " " + op + " " + db.key(n, f) + ")", class: cBool, oid: catalog.OIDBool}, nil
}

// decSortKey is the ORDER BY expression of a numeric(p,s) value.
func decSortKey(d *decVal) string { return d.key(d.intDigits, d.scale) }

// decAggregate translates min, max, sum and avg of a numeric(p,s)
// column; call writes the aggregate call with the query's DISTINCT,
// ORDER BY and FILTER.
func decAggregate(name string, a texpr, call func(fn string, args ...string) string) (texpr, error) {
	d := a.dec
	switch name {
	case "min", "max":
		// Over the order key: NaN is the largest. The key of the result
		// prints as the column's own text (scale fraction digits).
		k := call(name, d.key(d.intDigits, d.scale))
		nan := decNaN(d.intDigits, d.scale)
		text := fmt.Sprintf("(CASE WHEN %[1]s = %[2]s THEN 'NaN' ELSE CAST(%[1]s AS VARCHAR) END)", k, nan)
		n0, f0 := d.intDigits, d.scale
		return texpr{sql: text, class: cDec, oid: catalog.OIDNumeric, dec: &decVal{intDigits: n0, scale: f0, key: func(n, f int) string {
			if n == n0 && f == f0 {
				return k
			}
			return fmt.Sprintf("(CASE WHEN %[1]s = %[2]s THEN %[3]s ELSE CAST(%[1]s AS %[4]s) END)", k, nan, decNaN(n, f), decType(n, f))
		}}}, nil
	case "sum", "avg":
		if d.num == "" {
			return texpr{}, refuse("%s of a numeric aggregate", name)
		}
		if d.intDigits+d.scale > maxSumDigits {
			return splitSum(name, d, call)
		}
		// Any NaN makes the sum NaN; the others add up exactly, with
		// the column's scale as PostgreSQL's display scale.
		nan := "false"
		if d.nan != "" {
			nan = call("bool_or", d.nan)
		}
		sum := call("sum", d.num)
		text := fmt.Sprintf("(CASE WHEN %s THEN 'NaN' ELSE CAST(%s AS VARCHAR) END)", nan, sum)
		if name == "avg" {
			// numeric_div(sum, count), computed when sent (AvgText).
			return texpr{class: cAvg, oid: catalog.OIDNumeric, avg: [2]string{text, d.count(call)}}, nil
		}
		n0, f0 := min(d.intDigits+10, maxDecWidth-d.scale), d.scale
		return texpr{sql: text, class: cDec, oid: catalog.OIDNumeric, dec: &decVal{intDigits: n0, scale: f0, key: func(n, f int) string {
			return fmt.Sprintf("(CASE WHEN %s THEN %s ELSE CAST(%s AS %s) END)", nan, decNaN(n, f), sum, decType(n, f))
		}}}, nil
	}
	return texpr{}, refuse("%s of numeric", name)
}

// splitSum sums numerics too wide for one DECIMAL(38) sum (a product of
// two numeric(15,2), say): each value's unscaled integer u is split into
// u / 10^18 and u % 10^18 (truncating, so u = hi * 10^18 + lo exactly),
// DuckDB sums both halves as HUGEINT, which cannot overflow below 10^18
// values, and the sidecar adds them up (FinishSpread) with the scale as
// PostgreSQL's display scale; avg divides that sum as numeric_div does.
func splitSum(name string, d *decVal, call func(fn string, args ...string) string) (texpr, error) {
	if d.intDigits+2*d.scale+1 > maxDecWidth {
		return texpr{}, refuse("%s of a numeric of %d digits", name, d.intDigits+d.scale)
	}
	u := fmt.Sprintf("CAST(CAST(%s AS DECIMAL(%d,%d)) * CAST('1%s' AS DECIMAL(%d,0)) AS HUGEINT)",
		d.num, maxDecWidth, d.scale, strings.Repeat("0", d.scale), d.scale+1)
	nan := "CAST(false AS VARCHAR)"
	if d.nan != "" {
		nan = "CAST(" + call("bool_or", d.nan) + " AS VARCHAR)"
	}
	parts := []string{
		nan,
		"CAST(" + call("sum", u+" // CAST('1000000000000000000' AS HUGEINT)") + " AS VARCHAR)",
		"CAST(" + call("sum", u+" % CAST('1000000000000000000' AS HUGEINT)") + " AS VARCHAR)",
		d.count(call),
	}
	kind := fmt.Sprintf("sum:%d", d.scale)
	if name == "avg" {
		kind = fmt.Sprintf("avg:%d", d.scale)
	}
	return texpr{class: cAvg, oid: catalog.OIDNumeric, spread: kind, parts: parts}, nil
}

// count is the SQL counting the non-NULL values, NaN included.
func (d *decVal) count(call func(fn string, args ...string) string) string {
	switch {
	case d.raw != "":
		return call("count", d.raw)
	case d.nan != "":
		return "(" + call("count", d.num) + " + " + call("count", "CASE WHEN "+d.nan+" THEN 1 END") + ")"
	}
	return call("count", d.num)
}
