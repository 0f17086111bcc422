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
	// num is the value as an exact DECIMAL of scale fraction digits
	// (NULL for NaN), nan whether it is NaN ("" when it never is); "" when
	// the value has no such form (min/max, sum). present is whether the
	// value is not NULL (NaN is not NULL): cheaper than testing num and
	// nan, for counting NaNs (nanSum).
	num, nan, present string
	// text is the text PostgreSQL prints, when the texpr's sql is not
	// that text (a DECIMAL column, decimalColumn).
	text string
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
	if e.Type == catalog.OIDNumeric && stored.OID == catalog.OIDNumeric && stored.Kind == catalog.KindDecimal && e.Typmod == stored.Typmod {
		return decimalColumn(text, stored)
	}
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
	return &decVal{intDigits: n, scale: f, raw: text, num: num, nan: text + " = 'NaN'", present: text + " IS NOT NULL", key: func(n, f int) string {
		// TRY_CAST: never an error, whatever order DuckDB evaluates the
		// branches in; every text but NaN is a decimal that fits.
		return fmt.Sprintf("(CASE WHEN %[1]s = 'NaN' THEN %[2]s ELSE TRY_CAST(%[1]s AS %[3]s) END)", text, decNaN(n, f), decType(n, f))
	}}
}

// decimalColumn is the decVal of a numeric(p,s) column stored as its
// DECIMAL(p,s) (files whose DECIMALs numeric(p,s) holds exactly, see
// sql/lake; mirrors made before numeric was kept as text): never NaN, no
// text to parse. Its texpr's sql is the DECIMAL (grouped by as it is);
// text is what is sent.
func decimalColumn(col string, stored catalog.ColumnType) *decVal {
	n, f := decRange(stored.Precision, stored.Scale)
	if stored.Scale < 0 || n+1+f > maxDecWidth {
		return nil
	}
	// DuckDB writes a DECIMAL(p,s) with its s fraction digits, as
	// numeric_out writes a numeric(p,s).
	return &decVal{intDigits: n, scale: f, num: fmt.Sprintf("CAST(%s AS DECIMAL(%d,%d))", col, max(n+f, 1), f),
		text: "CAST(" + col + " AS VARCHAR)", present: col + " IS NOT NULL", key: func(n, f int) string {
			return "CAST(" + col + " AS " + decType(n, f) + ")"
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
	return &decVal{intDigits: n, scale: f, num: num, present: "true", key: func(n, f int) string {
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
// NaN on either side gives NaN, NULL on either side NULL. Products that
// could need more than DuckDB's 38 digits are only summed (wideProduct).
func (t *translator) decArith(op string, a, b texpr) (texpr, error) {
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
		if op == "*" {
			return wideProduct(da, db, f)
		}
		return texpr{}, refuse("numeric %s needing more than %d digits", op, maxDecWidth)
	}
	// DuckDB's own DECIMAL arithmetic has PostgreSQL's scales and is
	// exact, but it multiplies operands of up to 18 digits in 64 bits,
	// even when the result is wider, and fails with an overflow past
	// that. Optimistic plans let it (the query runs again widened when it
	// fails: Plan.Retry); exact ones widen the operands of such products
	// to 38 digits first (exact, and the result fits by the bound above).
	num := "(" + da.num + " " + op + " " + db.num + ")"
	if n+f > 18 && op == "*" {
		if t.wide {
			num = fmt.Sprintf("CAST((CAST(%s AS DECIMAL(%d,%d)) * CAST(%s AS DECIMAL(%d,%d))) AS DECIMAL(%d,%d))",
				da.num, maxDecWidth, da.scale, db.num, maxDecWidth, db.scale, n+f, f)
		} else {
			t.optimistic = true
		}
	}
	present := andSQL(da.present, db.present)
	nan := ""
	if da.nan != "" || db.nan != "" {
		// num is NULL for NULL or NaN operands
		nan = "(" + present + " AND " + num + " IS NULL)"
	}
	text := "CAST(" + num + " AS VARCHAR)"
	if nan != "" {
		text = fmt.Sprintf("(CASE WHEN %s THEN 'NaN' ELSE %s END)", nan, text)
	}
	return texpr{sql: text, class: cDec, oid: catalog.OIDNumeric, dec: &decVal{intDigits: n, scale: f, num: num, nan: nan, present: present,
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
func (t *translator) decAggregate(name string, a texpr, distinct bool, call func(fn string, args ...string) string) (texpr, error) {
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
			if d.intDigits+2*d.scale+1 > maxDecWidth {
				return texpr{}, refuse("%s of a numeric of %d digits", name, d.intDigits+d.scale)
			}
			if t.wide {
				return splitSum(name, d, distinct, call)
			}
			// Optimistic: one DECIMAL(38) sum, which DuckDB checks for
			// overflow; on overflow the query runs again split (Plan.Retry).
			t.optimistic = true
			return optimisticSum(name, d.nanSum(distinct, call), d.num, d.count(call), call), nil
		}
		// Any NaN makes the sum NaN; the others add up exactly, with
		// the column's scale as PostgreSQL's display scale.
		nan := d.nanSum(distinct, call)
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
func splitSum(name string, d *decVal, distinct bool, call func(fn string, args ...string) string) (texpr, error) {
	u := unscaled(d)
	sums := []string{call("sum", u+" // "+splitUnit), call("sum", u+" % "+splitUnit)}
	return splitParts(name, d.scale, d.nanSum(distinct, call), d.count(call), sums), nil
}

// splitParts is the output column of a split sum or avg: the NaN flag,
// the partial sums (see FinishSpread) and the count; a sum also orders by
// its value.
func splitParts(name string, scale int, isNaN, count string, sums []string) texpr {
	parts := []string{"CAST(" + isNaN + " AS VARCHAR)"}
	for _, s := range sums {
		parts = append(parts, "CAST("+s+" AS VARCHAR)")
	}
	parts = append(parts, count)
	n := ""
	if len(sums) == 3 {
		n = "3"
	}
	x := texpr{class: cAvg, oid: catalog.OIDNumeric, spread: fmt.Sprintf("%s%s:%d", name, n, scale), parts: parts}
	if name == "sum" {
		x.sortKeys = sumKeys(isNaN, count, carryParts(sums)...)
	}
	return x
}

// nanSum is the SQL of whether some value aggregated is NaN: more values
// are present than have a number. For a column, counting its text and its
// number costs next to nothing beside the sum, where comparing every text
// with 'NaN' costs as much as the sum.
func (d *decVal) nanSum(distinct bool, call func(fn string, args ...string) string) string {
	switch {
	case d.nan == "":
		return "false"
	case d.raw != "":
		// Equal values have equal texts: DISTINCT counts alike.
		return "(" + call("count", d.raw) + " > " + call("count", d.num) + ")"
	case !distinct && d.present != "":
		return "(" + call("count", "CASE WHEN "+d.present+" THEN 1 END") + " > " + call("count", d.num) + ")"
	}
	return call("bool_or", d.nan)
}

// andSQL joins conditions with AND, leaving out those always true.
func andSQL(conds ...string) string {
	var out []string
	for _, c := range conds {
		if c != "true" && c != "" {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return "true"
	}
	return "(" + strings.Join(out, " AND ") + ")"
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

// splitUnit is 10^18, the unit of the halves of split sums.
const splitUnit = "CAST('1000000000000000000' AS HUGEINT)"

// unscaled is the SQL of d's value times 10^scale, a HUGEINT (NULL for
// NaN); exact, as d.num has at most 38 digits.
func unscaled(d *decVal) string {
	return fmt.Sprintf("CAST(CAST(%s AS DECIMAL(%d,%d)) * CAST('1%s' AS DECIMAL(%d,0)) AS HUGEINT)",
		d.num, maxDecWidth, d.scale, strings.Repeat("0", d.scale), d.scale+1)
}

// optimisticSum sums num, a DECIMAL, in one DuckDB sum that raises an
// overflow error past 38 digits (isNaN tells whether to give NaN instead) (the query then runs again with the
// exact split sums: see Plan.Retry). Its result is sent as text ("text"
// spread) or divided by count as numeric_div does (avg): like the split
// sums it replaces, it is neither compared nor ordered in DuckDB, so that
// both forms of the query push down the same pieces.
func optimisticSum(name, isNaN, num, count string, call func(fn string, args ...string) string) texpr {
	sum := call("sum", num)
	text := fmt.Sprintf("(CASE WHEN %s THEN 'NaN' ELSE CAST(%s AS VARCHAR) END)", isNaN, sum)
	if name == "avg" {
		return texpr{class: cAvg, oid: catalog.OIDNumeric, avg: [2]string{text, count}}
	}
	return texpr{class: cAvg, oid: catalog.OIDNumeric, spread: "text", parts: []string{text}, sortKeys: sumKeys(isNaN, count, sum)}
}

// sumKeys are the sort keys of a sum whose NaN flag is isNaN, count the
// count of its non-NULL values and parts the SQL of its value, most
// significant first (one DECIMAL, or HUGEINTs each worth 10^18 times the
// next, each but the first in [0, 10^18)). The first key is NULL for a
// NULL sum, 1 for NaN, above every number as in PostgreSQL, 0 otherwise;
// NaN's other keys are 0, so that NaNs tie.
func sumKeys(isNaN, count string, parts ...string) []string {
	keys := []string{fmt.Sprintf("(CASE WHEN %s = 0 THEN NULL WHEN %s THEN 1 ELSE 0 END)", count, isNaN)}
	for _, p := range parts {
		keys = append(keys, fmt.Sprintf("(CASE WHEN %s THEN 0 ELSE %s END)", isNaN, p))
	}
	return keys
}

// carryParts normalizes the sums of a split sum, most significant first
// (each worth 10^18 times the next), so that every part but the first is
// in [0, 10^18): the same value, whose parts then order as it does.
func carryParts(parts []string) []string {
	out := make([]string, len(parts))
	carry := ""
	for i := len(parts) - 1; i >= 0; i-- {
		p := parts[i]
		if carry != "" {
			p = "(" + p + " + " + carry + ")"
		}
		if i == 0 {
			out[i] = p
			break
		}
		// floor division and the non-negative remainder, from DuckDB's
		// truncating // and %
		rem := fmt.Sprintf("((%[1]s %% %[2]s + %[2]s) %% %[2]s)", p, splitUnit)
		out[i] = rem
		carry = fmt.Sprintf("((%s - %s) // %s)", p, rem, splitUnit)
	}
	return out
}

// wideVal is a product of two numeric values whose declared precisions
// could need more than DuckDB's 38 digits (TPC-H's
// l_extendedprice * (1 - l_discount) * (1 + l_tax): 41 digits by the
// declared types, a dozen in practice). It is only summed or averaged:
// optimistically as one DECIMAL(38) product and sum, which DuckDB checks
// for overflow, and when that overflows, exactly, by splitting the
// unscaled factors (wideSum).
type wideVal struct {
	a, b    *decVal // the factors, a the wider
	scale   int     // of the product: the sum of the factors' scales
	nan     string  // whether the product is NaN ("" when it never is)
	present string  // whether the product is not NULL
}

// Bounds of wideSum's split: a factor's high half (digits past 18) times
// the other factor, and 10^18 times the narrower factor, must fit a
// HUGEINT.
const (
	maxWideDigits   = 56 // a's digits + b's digits
	maxNarrowDigits = 20 // b's digits
)

// wideProduct is the product of two numeric(p,s) values too wide for a
// DECIMAL(38), of scale f.
func wideProduct(da, db *decVal, f int) (texpr, error) {
	wa, wb := da.intDigits+da.scale, db.intDigits+db.scale
	if wa < wb {
		da, db, wa, wb = db, da, wb, wa
	}
	if wb > maxNarrowDigits || wa+wb > maxWideDigits {
		return texpr{}, refuse("numeric * of %d and %d digits", wa, wb)
	}
	w := &wideVal{a: da, b: db, scale: f, present: andSQL(da.present, db.present)}
	if da.nan != "" || db.nan != "" {
		w.nan = "(" + w.present + " AND (" + da.num + " IS NULL OR " + db.num + " IS NULL))"
	}
	return texpr{class: cWide, oid: catalog.OIDNumeric, wide: w}, nil
}

// wideSum translates sum and avg of a wide product. Optimistic: the
// product in DECIMAL(38, scale) and one sum. Exact (t.wide): with u and v
// the unscaled factors and M = 10^18, u = uh*M + ul, X = uh*v and
// Y = ul*v fit HUGEINTs (the bounds above), and
// u*v = (X // M)*M^2 + (X % M + Y // M)*M + Y % M: three sums of terms
// below 10^20, added up in the sidecar (FinishSpread's "sum3" and "avg3").
func (t *translator) wideSum(name string, w *wideVal, distinct bool, call func(fn string, args ...string) string) (texpr, error) {
	if (name != "sum" && name != "avg") || distinct {
		return texpr{}, refuse("%s of a numeric product wider than %d digits", name, maxDecWidth)
	}
	count := call("count", "CASE WHEN "+w.present+" THEN 1 END")
	if !t.wide {
		t.optimistic = true
		num := "(" + w.a.num + " * " + w.b.num + ")"
		isNaN := "false"
		if w.nan != "" {
			isNaN = "(" + count + " > " + call("count", num) + ")"
		}
		return optimisticSum(name, isNaN, num, count, call), nil
	}
	u, v := unscaled(w.a), unscaled(w.b)
	x := "((" + u + " // " + splitUnit + ") * " + v + ")"
	y := "((" + u + " % " + splitUnit + ") * " + v + ")"
	isNaN := "false"
	if w.nan != "" {
		isNaN = call("bool_or", w.nan)
	}
	sums := []string{
		call("sum", x+" // "+splitUnit),
		call("sum", x+" % "+splitUnit+" + "+y+" // "+splitUnit),
		call("sum", y+" % "+splitUnit),
	}
	return splitParts(name, w.scale, isNaN, count, sums), nil
}
