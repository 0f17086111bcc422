package sql

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmooncake/mooncake/catalog"
)

// Plan is the answer to a Query: which pieces DuckDB runs, and the SQL.
type Plan struct {
	Where   []bool // per Query.Where: pushed down
	Targets []bool // per Query.Targets
	Having  []bool // per Query.Having
	// OK is set when every piece is pushed down: Scan then runs the query.
	OK     bool
	Reason string // why not OK, for the FDW's debug output
	Scan   *Scan  // the SQL of the pushed pieces and how to send its rows
	Rows   int64  // rows in the mirrors, from Iceberg metadata
	// WhereSel estimates, per Query.Where, the share of rows it keeps,
	// from the data files' column bounds; -1 where unknown (see
	// whereSelectivity). Only when planning.
	WhereSel []float64
	TimeZone bool // the SQL depends on the session's TimeZone
	// Retry is set when the SQL computes numerics optimistically, in
	// DuckDB's own DECIMAL arithmetic and sums, where the declared
	// precisions could need more digits: when DuckDB reports an overflow (22003),
	// plan the query again with PlanOptions.Wide and run that. Both plans
	// push down the same pieces and send the same values.
	Retry bool

	query *Query           // what was planned, for Prepare
	rels  map[int]Relation // its relations
}

// PlanOptions are the session's settings a plan depends on.
type PlanOptions struct {
	Params   []Param // exec-time parameter values; nil when planning (rendered $n)
	TZPushed bool    // the session's TimeZone is one DuckDB knows
	UTC      bool    // the session's TimeZone is UTC (see IsUTC)
	Wide     bool    // sum exactly whatever the values' size (see Plan.Retry)
	Arrow    bool    // for Flight: numeric(p,s) columns stored as DECIMAL are sent as DECIMALs (see scanColumn)
}

// IsUTC reports whether PostgreSQL's TimeZone name zone is UTC itself (no
// offset, no daylight saving time, ever).
func IsUTC(zone string) bool {
	switch zone {
	case "", "UTC", "Etc/UTC", "UCT", "Etc/UCT", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu",
		"GMT", "Etc/GMT", "GMT0", "Etc/GMT0", "GMT+0", "Etc/GMT+0", "GMT-0", "Etc/GMT-0", "Greenwich", "Etc/Greenwich":
		return true
	}
	return false
}

// PlanQuery decides which pieces of q DuckDB can run with PostgreSQL's
// results and writes the SQL running them. rels resolves the query's
// mirrors. Errors are returned only for malformed queries; pieces DuckDB
// cannot run are reported in the Plan.
func PlanQuery(q *Query, rels map[int]Relation, opts PlanOptions) (*Plan, error) {
	p := &Plan{Where: make([]bool, len(q.Where)), Targets: make([]bool, len(q.Targets)), Having: make([]bool, len(q.Having)), OK: true,
		query: q, rels: rels}
	for _, m := range rels {
		p.Rows += m.EstimatedRows()
	}
	if opts.Params == nil {
		p.WhereSel = whereSelectivity(q, rels)
	}
	t := &translator{rels: rels, params: opts.Params, tzPushed: opts.TZPushed, utc: opts.UTC, wide: opts.Wide, arrow: opts.Arrow}
	fail := func(err error) error {
		var r *refusal
		if !errors.As(err, &r) {
			return err
		}
		if p.OK {
			p.OK, p.Reason = false, r.reason
		}
		return nil
	}
	// cond translates a condition; tz-dependent ones need the zone.
	cond := func(e *Expr) (string, error) {
		before := t.usesTZ
		t.usesTZ = false
		s, err := t.boolean(e)
		used := t.usesTZ
		t.usesTZ = before || used
		if err == nil && used && !opts.TZPushed {
			err = refuse("depends on a TimeZone DuckDB does not know")
		}
		return s, err
	}

	from, err := t.from(q.From)
	if err != nil {
		if err := fail(err); err != nil {
			return nil, err
		}
	}
	if q.Sample > 0 {
		if q.From == nil || q.From.Join != "" || q.Grouped {
			return nil, &pgconn.PgError{Code: "08P01", Message: "a sample is taken of one mirror's rows"}
		}
		from += fmt.Sprintf(" TABLESAMPLE reservoir(%d ROWS)", q.Sample)
	}
	var where []string
	compared := map[string]bool{}
	for i, w := range q.Where {
		s, err := cond(w)
		if err == nil {
			// DuckDB folds two comparisons of one expression with
			// constants that no value satisfies (x BETWEEN 7 AND -1) to
			// false without evaluating the expression, and so loses the
			// error PostgreSQL raises computing it (division by zero):
			// the second such comparison of an expression that is not a
			// plain column stays in PostgreSQL.
			if key, ok := t.comparedExpr(w); ok {
				if compared[key] {
					err = refuse("a second comparison of %s with a constant", key)
				}
				compared[key] = true
			}
		}
		if err != nil {
			if err := fail(err); err != nil {
				return nil, err
			}
			continue
		}
		p.Where[i] = true
		where = append(where, s)
	}

	t.aggOK = q.Grouped
	var groups []string
	for _, g := range q.GroupBy {
		x, err := t.expr(g)
		if err == nil && (x.class == cOpaque || x.class == cAvg || x.class == cArray || x.class == cWide) {
			err = refuse("grouping by type %d", x.oid)
		}
		if err == nil && x.class == cString && x.coll == CollNonDet {
			err = refuse("grouping by a string under a nondeterministic collation")
		}
		if err != nil {
			if err := fail(err); err != nil {
				return nil, err
			}
			continue
		}
		groups = append(groups, x.sql)
	}

	localWhere := q.LocalWhere
	for _, ok := range p.Where {
		localWhere = localWhere || !ok
	}
	scan := &Scan{ReuseKey: reuseKey(rels), Cacheable: q.Sample == 0}
	var sel []string
	for i, e := range q.Targets {
		if localWhere && !q.Grouped && e.K != "var" {
			// DuckDB would compute it for rows the conditions kept in
			// PostgreSQL then drop, and could fail where PostgreSQL does
			// not (integer out of range, division by zero).
			if err := fail(refuse("an expression computed before conditions that stay local")); err != nil {
				return nil, err
			}
			continue
		}
		t.spread = ""
		s, fmtc, avg, err := t.target(e, q.Grouped)
		if err == nil && t.usesTZ && !opts.TZPushed {
			err = refuse("depends on a TimeZone DuckDB does not know")
		}
		if err != nil {
			if err := fail(err); err != nil {
				return nil, err
			}
			continue
		}
		p.Targets[i] = true
		sel = append(sel, s...)
		scan.Formats = append(scan.Formats, fmtc)
		scan.TypeOID = append(scan.TypeOID, e.Type)
		scan.AvgInt = append(scan.AvgInt, avg)
		scan.Spread = append(scan.Spread, t.spread)
	}
	var having []string
	for i, h := range q.Having {
		s, err := cond(h)
		if err != nil {
			if err := fail(err); err != nil {
				return nil, err
			}
			continue
		}
		p.Having[i] = true
		having = append(having, s)
	}
	var order []string
	for _, k := range q.OrderBy {
		var s string
		var err error
		if localWhere && !q.Grouped && k.Expr != nil && k.Expr.K != "var" {
			// As for the output columns: DuckDB would compute the key for
			// rows the local conditions drop, and could fail on them.
			err = refuse("an ordering computed before conditions that stay local")
		} else {
			s, err = t.sortKey(k)
		}
		if err != nil {
			if err := fail(err); err != nil {
				return nil, err
			}
			continue
		}
		order = append(order, s)
	}
	limit, err := t.limit(q.Limit, "LIMIT", "2201W")
	if err == nil {
		var off string
		off, err = t.limit(q.Offset, "OFFSET", "2201X")
		limit += off
	}
	if err != nil {
		if err := fail(err); err != nil {
			return nil, err
		}
	}
	if t.usesTZ && !opts.TZPushed {
		if err := fail(refuse("depends on a TimeZone DuckDB does not know")); err != nil {
			return nil, err
		}
	}
	p.TimeZone = t.usesTZ
	p.Retry = t.optimistic

	if len(sel) == 0 {
		// No column (count(*) above the scan): one row per row still.
		sel = append(sel, "NULL")
	}
	var b strings.Builder
	b.WriteString("SELECT " + strings.Join(sel, ", ") + " FROM " + from)
	if len(where) > 0 {
		b.WriteString(" WHERE " + strings.Join(where, " AND "))
	}
	if len(groups) > 0 {
		b.WriteString(" GROUP BY " + strings.Join(groups, ", "))
	}
	if len(having) > 0 {
		b.WriteString(" HAVING " + strings.Join(having, " AND "))
	}
	if len(order) > 0 {
		b.WriteString(" ORDER BY " + strings.Join(order, ", "))
	}
	b.WriteString(limit)
	scan.SQL = b.String()
	p.Scan = scan
	return p, nil
}

func (t *translator) from(f *FromItem) (string, error) {
	if f == nil {
		return "", &pgconn.PgError{Code: "08P01", Message: "query without \"from\""}
	}
	if f.Join == "" {
		m := t.rels[f.Rel]
		if m == nil {
			return "", &pgconn.PgError{Code: "08P01", Message: fmt.Sprintf("query reads unknown relation %d", f.Rel)}
		}
		return m.View() + " " + relAlias(f.Rel), nil
	}
	kinds := map[string]string{"inner": "INNER", "left": "LEFT", "right": "RIGHT", "full": "FULL", "semi": "SEMI", "anti": "ANTI"}
	kind, ok := kinds[f.Join]
	if !ok {
		return "", refuse("%s join", f.Join)
	}
	l, err := t.from(f.Left)
	if err != nil {
		return "", err
	}
	r, err := t.from(f.Right)
	if err != nil {
		return "", err
	}
	on := []string{}
	for _, c := range f.On {
		s, err := t.boolean(c)
		if err != nil {
			return "", err
		}
		on = append(on, s)
	}
	if len(on) == 0 {
		on = append(on, "TRUE")
	}
	return "(" + l + " " + kind + " JOIN " + r + " ON " + strings.Join(on, " AND ") + ")", nil
}

// limit translates a LIMIT or OFFSET count: a bigint constant or
// parameter. NULL means none; negative values fail as in PostgreSQL.
func (t *translator) limit(e *Expr, what, code string) (string, error) {
	if e == nil {
		return "", nil
	}
	if e.Type != catalog.OIDInt8 || (e.K != "const" && e.K != "param") {
		return "", refuse("%s expression", what)
	}
	if e.K == "param" && t.params == nil {
		return " " + what + " $" + strconv.Itoa(e.ID+1), nil
	}
	v := e.Value
	if e.K == "param" {
		if e.ID < 0 || e.ID >= len(t.params) {
			return "", &pgconn.PgError{Code: "08P01", Message: fmt.Sprintf("parameter %d has no value", e.ID+1)}
		}
		v = t.params[e.ID].Value
	}
	if v == nil {
		return "", nil
	}
	n, err := strconv.ParseInt(*v, 10, 64)
	if err != nil {
		return "", refuse("%s %q", what, *v)
	}
	if n < 0 {
		return "", &pgconn.PgError{Code: code, Message: strings.ToUpper(what) + " must not be negative"}
	}
	return " " + what + " " + strconv.FormatInt(n, 10), nil
}

func (t *translator) sortKey(k SortKey) (string, error) {
	x, err := t.expr(k.Expr)
	if err != nil {
		return "", err
	}
	if len(x.sortKeys) > 0 {
		// A sum ordered by several keys, all in the same direction.
		var keys []string
		for _, sk := range x.sortKeys {
			one, err := direction(sk, k)
			if err != nil {
				return "", err
			}
			keys = append(keys, one)
		}
		return strings.Join(keys, ", "), nil
	}
	key := x.sql
	if x.class == cDec {
		key = decSortKey(x.dec)
	} else if !x.class.ordered() {
		return "", refuse("ordering by type %d", x.oid)
	}
	if x.class == cString && x.coll != CollC {
		return "", refuse("ordering strings under a collation other than \"C\"")
	}
	return direction(key, k)
}

// direction is the ORDER BY item of key in k's direction and NULLS
// placement.
func direction(key string, k SortKey) (string, error) {
	var dir string
	switch k.Op {
	case "<":
		dir = " ASC"
	case ">":
		dir = " DESC"
	default:
		return "", refuse("ordering by operator %s", k.Op)
	}
	nulls := " NULLS LAST"
	if k.NullsFirst {
		nulls = " NULLS FIRST"
	}
	return key + dir + nulls, nil
}

// target translates an output column: the select expressions it takes
// (two for avg), its wire format, and whether it is an avg of integers.
func (t *translator) target(e *Expr, grouped bool) ([]string, Format, bool, error) {
	if e.K == "var" && !grouped {
		if _, err := t.column(e); err != nil {
			return nil, 0, false, err
		}
		m := t.rels[e.Rel]
		col := m.Cols()[m.ColumnIndex(e.Col)]
		s, f := scanColumnExpr(relAlias(e.Rel)+"."+catalog.QuoteIdent(col.Name), col, e.Type, t.arrow && e.Typmod == col.Type.Typmod)
		return []string{s}, f, false, nil
	}
	x, err := t.expr(e)
	if err != nil {
		return nil, 0, false, err
	}
	if x.class == cAvg && x.spread != "" {
		t.spread = x.spread
		return x.parts, FormatText, false, nil
	}
	if x.class == cAvg {
		return []string{x.avg[0], x.avg[1]}, FormatText, true, nil
	}
	s, f, err := deliver(x, e.Type, t.arrow)
	return []string{s}, f, false, err
}

// deliver is the select expression sending x as PostgreSQL type oid;
// arrow as for scanColumn.
func deliver(x texpr, oid uint32, arrow bool) (string, Format, error) {
	switch x.class {
	case cDec:
		// The text PostgreSQL prints (see decVal); a DECIMAL column's
		// DECIMAL for Flight.
		if x.dec != nil && x.dec.text != "" {
			if arrow {
				return x.sql, FormatText, nil
			}
			return x.dec.text, FormatText, nil
		}
		return x.sql, FormatText, nil
	case cNumeric:
		// Integer-valued (extract, casts of integers) or a constant.
		return fmt.Sprintf("(CASE WHEN isinf(%[1]s) AND %[1]s > 0 THEN 'Infinity' WHEN isinf(%[1]s) THEN '-Infinity'"+
			" WHEN %[1]s = trunc(%[1]s) THEN CAST(CAST(%[1]s AS HUGEINT) AS VARCHAR) ELSE CAST(%[1]s AS VARCHAR) END)", x.sql), FormatText, nil
	case cHuge:
		return "CAST(" + x.sql + " AS VARCHAR)", FormatText, nil
	case cArray:
		var elem string
		switch x.array {
		case cBool:
			elem = "CASE WHEN e THEN 't' ELSE 'f' END"
		case cInt:
			elem = "CAST(e AS VARCHAR)"
		case cString:
			elem = `'"' || replace(replace(e, '\', '\\'), '"', '\"') || '"'`
		default:
			return "", 0, refuse("array of type %d", oid)
		}
		return fmt.Sprintf("(CASE WHEN %[1]s IS NOT NULL THEN '{' || array_to_string(list_transform(%[1]s, lambda e: CASE WHEN e IS NULL THEN 'NULL' ELSE %[2]s END), ',') || '}' END)",
			x.sql, elem), FormatText, nil
	case cOpaque, cAvg:
		return "", 0, refuse("sending type %d", oid)
	}
	b, ok := binaryType[oid]
	if !ok || classOfType(oid) != x.class {
		return "", 0, refuse("sending type %d as %d", x.oid, oid)
	}
	duck := b.duck
	return "CAST(" + x.sql + " AS " + duck + ")", FormatBinary, nil
}

// aggregate translates an Aggref.
func (t *translator) aggregate(e *Expr) (texpr, error) {
	if !t.aggOK || t.inAgg {
		return texpr{}, refuse("aggregate here")
	}
	if e.Schema != "pg_catalog" {
		return texpr{}, refuse("aggregate %s.%s", e.Schema, e.Name)
	}
	t.inAgg = true
	defer func() { t.inAgg = false }()
	var args []texpr
	for _, a := range e.Args {
		x, err := t.expr(a)
		if err != nil {
			return texpr{}, err
		}
		args = append(args, x)
	}
	var order []string
	for _, k := range e.Order {
		s, err := t.sortKey(k)
		if err != nil {
			return texpr{}, err
		}
		order = append(order, s)
	}
	filter := ""
	if e.Filter != nil {
		f, err := t.boolean(e.Filter)
		if err != nil {
			return texpr{}, err
		}
		filter = " FILTER (WHERE " + f + ")"
	}
	distinct := ""
	if e.Distinct {
		distinct = "DISTINCT "
		for _, a := range args {
			if a.class == cOpaque || a.class == cString && a.coll == CollNonDet {
				return texpr{}, refuse("DISTINCT on type %d", a.oid)
			}
		}
	}
	orderBy := ""
	if len(order) > 0 {
		orderBy = " ORDER BY " + strings.Join(order, ", ")
	}
	call := func(fn string, argSQL ...string) string {
		return fn + "(" + distinct + strings.Join(argSQL, ", ") + orderBy + ")" + filter
	}
	one := func() (texpr, bool) {
		if len(args) != 1 {
			return texpr{}, false
		}
		return args[0], true
	}
	tz := false
	for _, a := range args {
		tz = tz || a.tz
	}
	if a, ok := one(); ok && a.class == cDec && e.Name != "count" {
		return t.decAggregate(e.Name, a, e.Distinct, call)
	}
	if a, ok := one(); ok && a.class == cWide {
		return t.wideSum(e.Name, a.wide, e.Distinct, call)
	}
	switch e.Name {
	case "count":
		if e.Star {
			return texpr{sql: "count(*)" + filter, class: cInt, oid: catalog.OIDInt8}, nil
		}
		if _, ok := one(); ok {
			return texpr{sql: call("count", args[0].sql), class: cInt, oid: catalog.OIDInt8}, nil
		}
	case "sum":
		if a, ok := one(); ok && a.class == cInt {
			if a.oid == catalog.OIDInt8 {
				return texpr{sql: call("sum", a.sql), class: cHuge, oid: catalog.OIDNumeric}, nil
			}
			return texpr{sql: "CAST(" + call("sum", a.sql) + " AS BIGINT)", class: cInt, oid: catalog.OIDInt8}, nil
		}
		if a, ok := one(); ok && a.class == cFloat && a.oid == catalog.OIDFloat8 {
			if x, ok := floatSum(e, a, call); ok {
				return texpr{sql: x, class: cFloat, oid: catalog.OIDFloat8}, nil
			}
		}
		return texpr{}, refuse("sum of type %d: real sums add in single precision, and ordered or DISTINCT float sums are PostgreSQL's", e.Type)
	case "avg":
		if a, ok := one(); ok && a.class == cInt {
			return texpr{class: cAvg, oid: catalog.OIDNumeric,
				avg: [2]string{"CAST(" + call("sum", "CAST("+a.sql+" AS HUGEINT)") + " AS VARCHAR)", call("count", a.sql)}}, nil
		}
		if a, ok := one(); ok && a.class == cFloat {
			if a.oid != catalog.OIDFloat8 {
				a.sql = "CAST(" + a.sql + " AS DOUBLE)" // float4_accum adds in double precision
			}
			if x, ok := floatSum(e, a, call); ok {
				return texpr{sql: "(" + x + " / CAST(" + call("count", a.sql) + " AS DOUBLE))", class: cFloat, oid: catalog.OIDFloat8}, nil
			}
		}
		return texpr{}, refuse("avg of type %d", e.Type)
	case "variance", "var_samp", "var_pop", "stddev", "stddev_samp", "stddev_pop":
		// Of smallint and integer: PostgreSQL's exact numeric formula
		// from N, sum(x) and sum(x*x), computed in the sidecar
		// (VarianceText); the sums fit a HUGEINT. DISTINCT would also
		// merge the squares of x and -x.
		if a, ok := one(); ok && a.class == cInt && a.oid != catalog.OIDInt8 && !e.Distinct && e.Type == catalog.OIDNumeric {
			kind := map[string]string{"variance": "var_samp", "stddev": "stddev_samp"}[e.Name]
			if kind == "" {
				kind = e.Name
			}
			x := "CAST(" + a.sql + " AS HUGEINT)"
			return texpr{class: cAvg, oid: catalog.OIDNumeric, spread: kind, parts: []string{
				call("count", a.sql),
				"CAST(" + call("sum", x) + " AS VARCHAR)",
				"CAST(" + call("sum", x+" * "+x) + " AS VARCHAR)"}}, nil
		}
		return texpr{}, refuse("%s of type %d: PostgreSQL computes it with its own floating-point algorithm or in numeric", e.Name, e.Type)
	case "min", "max":
		if a, ok := one(); ok && a.class.ordered() && a.class != cBool && a.class != cNumeric && a.class != cHuge {
			if a.class == cString && e.InColl != CollC {
				return texpr{}, refuse("%s of strings under a collation other than \"C\"", e.Name)
			}
			return texpr{sql: call(e.Name, a.sql), class: a.class, oid: e.Type, tz: tz}, nil
		}
	case "bool_and", "bool_or", "every":
		if a, ok := one(); ok && a.class == cBool {
			fn := e.Name
			if fn == "every" {
				fn = "bool_and"
			}
			return texpr{sql: call(fn, a.sql), class: cBool, oid: catalog.OIDBool}, nil
		}
	case "string_agg":
		if len(args) == 2 && args[0].class == cString && args[1].class == cString && e.Args[1].K == "const" {
			return texpr{sql: call("string_agg", args[0].sql, args[1].sql), class: cString, oid: e.Type}, nil
		}
	case "array_agg":
		if a, ok := one(); ok && (a.class == cInt || a.class == cBool || a.class == cString) && !e.Distinct {
			return texpr{sql: call("array_agg", a.sql), class: cArray, oid: e.Type, array: a.class}, nil
		}
	case "percentile_cont", "percentile_disc":
		if len(args) != 1 || len(e.Direct) != 1 || len(e.Order) != 1 || e.Order[0].Op != "<" || e.Distinct {
			return texpr{}, refuse("%s with these arguments", e.Name)
		}
		f := e.Direct[0]
		if f.K != "const" || f.Type != catalog.OIDFloat8 || f.Value == nil {
			return texpr{}, refuse("%s of a fraction that is not a constant", e.Name)
		}
		v, err := strconv.ParseFloat(*f.Value, 64)
		if err != nil || v < 0 || v > 1 {
			return texpr{}, refuse("%s fraction %s", e.Name, *f.Value)
		}
		a := args[0]
		if e.Name == "percentile_cont" {
			// DuckDB interpolates between the two values with other
			// floating-point steps: the last digit can differ.
			return texpr{}, refuse("percentile_cont interpolates differently in DuckDB")
		}
		if !a.class.ordered() {
			return texpr{}, refuse("%s of type %d", e.Name, a.oid)
		}
		fn := "quantile_cont"
		if e.Name == "percentile_disc" {
			fn = "quantile_disc"
		}
		return texpr{sql: fn + "(" + a.sql + ", " + strconv.FormatFloat(v, 'g', -1, 64) + ")" + filter, class: a.class, oid: e.Type, tz: tz}, nil
	}
	return texpr{}, refuse("aggregate %s", e.Name)
}

// floatSum is the sum of double precision values a, as PostgreSQL's sum
// and avg of float8 (and avg of real, in double precision) add them: each
// addition rounded, in the order the rows come. DuckDB adds them in its
// own order (in parallel, partial sums combined), which is one a parallel
// plan of PostgreSQL's could take too: the last digits can differ from
// one order to another, as they do between two PostgreSQL plans. A sum
// that overflows to infinity from finite values raises PostgreSQL's
// "value out of range: overflow" (an infinite or NaN value among the rows
// makes the sum infinite or NaN as in PostgreSQL). ORDER BY in the
// aggregate (an order PostgreSQL keeps) and DISTINCT (whose equality of
// floats, -0 and NaN, is PostgreSQL's) are left to PostgreSQL.
func floatSum(e *Expr, a texpr, call func(string, ...string) string) (string, bool) {
	if e.Distinct || len(e.Order) > 0 {
		return "", false
	}
	s := call("sum", a.sql)
	return "(CASE WHEN NOT isfinite(" + s + ") AND NOT coalesce(" + call("bool_or", "NOT isfinite("+a.sql+")") + ", false)" +
		" THEN error('" + floatOverflow + "') ELSE " + s + " END)", true
}

// floatOverflow is PostgreSQL's message for a float8 result out of range.
const floatOverflow = "value out of range: overflow"

// comparedExpr is, for a comparison with a constant or parameter of an
// expression that may raise an error, the DuckDB SQL of that expression.
func (t *translator) comparedExpr(e *Expr) (string, bool) {
	if e == nil || e.K != "op" || len(e.Args) != 2 {
		return "", false
	}
	switch e.Name {
	case "=", "<>", "<", "<=", ">", ">=":
	default:
		return "", false
	}
	x, c := e.Args[0], e.Args[1]
	if isConstant(x) {
		x, c = c, x
	}
	if !isConstant(c) || !mayRaise(x) {
		return "", false
	}
	tx, err := t.expr(x)
	if err != nil {
		return "", false
	}
	return tx.sql, true
}

// mayRaise reports whether computing e may fail on some values: integer
// arithmetic (overflow, division by zero) and casts.
func mayRaise(e *Expr) bool {
	if e == nil {
		return false
	}
	switch {
	case e.K == "op" && strings.ContainsAny(e.Name, "+-*/%"):
		return true
	case e.K == "func" && (e.Format == "cast" || e.Format == "implicit"):
		return true
	}
	for _, a := range e.Args {
		if mayRaise(a) {
			return true
		}
	}
	return false
}
