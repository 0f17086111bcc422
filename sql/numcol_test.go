package sql

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pgmooncake/mooncake/catalog"
)

// numericTypmod10_2 is the typmod of numeric(10,2).
const numericTypmod10_2 = (10<<16 | 2) + 4

// numericMirror is a mirror t(id int4, m numeric(10,2), w numeric(30,4),
// u numeric) whose numerics are stored as numeric_out wrote them.
func numericMirror(t *testing.T, e *Engine) *catalog.Mirror {
	t.Helper()
	m := &catalog.Mirror{Database: "numtest", Namespace: "public", Name: "t"}
	m.Columns = []catalog.Column{
		{Name: "id", Type: mustResolve(t, catalog.OIDInt4, -1)},
		{Name: "m", Type: mustResolve(t, catalog.OIDNumeric, numericTypmod10_2)},
		{Name: "w", Type: mustResolve(t, catalog.OIDNumeric, (30<<16|4)+4)},
		{Name: "u", Type: mustResolve(t, catalog.OIDNumeric, -1)},
	}
	var defs []string
	for _, c := range m.Columns {
		defs = append(defs, catalog.QuoteIdent(c.Name)+" "+c.Type.DuckDBType())
	}
	for _, s := range []string{
		"ATTACH ':memory:' AS pg_numtest",
		"CREATE SCHEMA pg_numtest.public",
		"CREATE TABLE " + m.View() + " (" + strings.Join(defs, ", ") + ")",
		"INSERT INTO " + m.View() + ` VALUES (1, NULL, NULL, NULL), (2, 'NaN', 'NaN', 'NaN'), (3, '-1.50', '-1.5000', '-1.5'),
			(4, '0.00', '0.0000', '0'), (5, '2.25', '2.2500', '2.25'), (6, '12.50', '12.5000', '12.5'), (7, '2.25', '2.2500', '2.25')`,
	} {
		if _, err := e.DB.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return m
}

func nv(col string, typmod int32) *Expr {
	return &Expr{K: "var", Rel: 1, Col: col, Type: catalog.OIDNumeric, Typmod: typmod}
}

func nc(s string) *Expr { return c(catalog.OIDNumeric, s) }

// runPlan runs a pushed-down plan and returns its rows, each as its
// fields' texts joined by "|", avgs computed as they are sent.
func runPlan(t *testing.T, e *Engine, p *Plan) []string {
	t.Helper()
	rows, err := e.DB.Query(p.Scan.SQL)
	if err != nil {
		t.Fatalf("%s: %v", p.Scan.SQL, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var fields []string
		for i, j := 0, 0; i < len(p.Scan.Formats); i, j = i+1, j+1 {
			switch {
			case p.Scan.Spread[i] != "":
				w := SpreadWidth(p.Scan.Spread[i])
				parts := make([]*string, w)
				for k := range w {
					if vals[j+k] != nil {
						v := fmt.Sprint(vals[j+k])
						parts[k] = &v
					}
				}
				s, null, err := FinishSpread(p.Scan.Spread[i], parts)
				if err != nil {
					t.Fatal(err)
				}
				if null {
					s = "NULL"
				}
				fields = append(fields, s)
				j += w - 1
			case p.Scan.AvgInt[i]:
				if vals[j] == nil || vals[j+1].(int64) == 0 {
					fields = append(fields, "NULL")
				} else {
					s, err := AvgText(vals[j].(string), vals[j+1].(int64))
					if err != nil {
						t.Fatal(err)
					}
					fields = append(fields, s)
				}
				j++
			case vals[j] == nil:
				fields = append(fields, "NULL")
			default:
				fields = append(fields, fmt.Sprint(vals[j]))
			}
		}
		out = append(out, strings.Join(fields, "|"))
	}
	return out
}

// TestNumericPushdown checks comparisons, aggregates, grouping and
// ordering of numeric(p,s) columns against PostgreSQL's results.
func TestNumericPushdown(t *testing.T) {
	e := openEngine(t)
	rels := map[int]Relation{1: numericMirror(t, e)}
	m := nv("m", numericTypmod10_2)
	w := nv("w", (30<<16|4)+4)
	id := v("id", i4)
	where := []struct {
		name   string
		cond   *Expr
		pushed bool
		ids    string
	}{
		{"greater: NaN above every number", op(">", bo, "", m, nc("0")), true, "2 5 6 7"},
		{"NaN equals NaN", op("=", bo, "", m, nc("NaN")), true, "2"},
		{"less than NaN", op("<", bo, "", m, nc("NaN")), true, "3 4 5 6 7"},
		{"constant of a larger scale", op("<", bo, "", m, nc("2.251")), true, "3 4 5 7"},
		{"constant of a larger scale, equality", op("=", bo, "", m, nc("2.2500001")), true, ""},
		{"constant beyond a double", op("<", bo, "", nc("-1.500000000000000000001"), m), true, "2 3 4 5 6 7"},
		{"not equal keeps NaN", op("<>", bo, "", m, nc("-1.5")), true, "2 4 5 6 7"},
		{"NULL constant", op("=", bo, "", m, &Expr{K: "const", Type: catalog.OIDNumeric}), true, ""},
		{"column to column of other typmods", op("=", bo, "", m, w), true, "2 3 4 5 6 7"},
		{"IN list", &Expr{K: "any", Name: "=", Schema: "pg_catalog", Type: bo, ElemType: catalog.OIDNumeric,
			Args: []*Expr{m, c(catalog.OIDNumeric, "{2.25,0,NaN}")}}, true, "2 4 5 7"},
		{"constant too wide", op("<", bo, "", m, nc("1"+strings.Repeat("0", 36))), false, ""},
		{"infinity", op("<", bo, "", m, nc("Infinity")), false, ""},
		{"unconstrained numeric", op(">", bo, "", nv("u", -1), nc("0")), false, ""},
		{"typmod other than the mirror's", op(">", bo, "", nv("m", (12<<16|2)+4), nc("0")), false, ""},
		{"numeric parameter", op(">", bo, "", m, &Expr{K: "param", Type: catalog.OIDNumeric}), false, ""},
		// Its value could have more digits than a double holds.
		{"numeric parameter against a double", op("<", bo, "", &Expr{K: "func", Name: "numeric", Schema: "pg_catalog", Format: "implicit",
			Type: catalog.OIDNumeric, Args: []*Expr{id}}, &Expr{K: "param", Type: catalog.OIDNumeric}), false, ""},
		{"integer cast to numeric against a constant", op("<", bo, "", &Expr{K: "func", Name: "numeric", Schema: "pg_catalog", Format: "implicit",
			Type: catalog.OIDNumeric, Args: []*Expr{id}}, nc("3")), true, "1 2"},
	}
	for _, tc := range where {
		t.Run(tc.name, func(t *testing.T) {
			q := &Query{Rels: []QueryRel{{ID: 1}}, From: &FromItem{Rel: 1}, Where: []*Expr{tc.cond}, Targets: []*Expr{id},
				OrderBy: []SortKey{{Expr: id, Op: "<"}}}
			checkPlan(t, e, q, rels, tc.pushed, tc.ids)
		})
	}

	under100 := op("<", bo, "", m, nc("100"))
	filtered := func(a *Expr) *Expr { a.Filter = under100; return a }
	num := uint32(catalog.OIDNumeric)
	aggs := []struct {
		name   string
		target *Expr
		pushed bool
		want   string
	}{
		{"sum with NaN", agg("sum", num, m), true, "NaN"},
		{"sum", filtered(agg("sum", num, m)), true, "15.50"},
		{"avg", filtered(agg("avg", num, m)), true, "3.1000000000000000"},
		{"avg with NaN", agg("avg", num, m), true, "NaN"},
		{"min", agg("min", num, m), true, "-1.50"},
		{"max is NaN", agg("max", num, m), true, "NaN"},
		{"max", filtered(agg("max", num, m)), true, "12.50"},
		{"count distinct", &Expr{K: "agg", Name: "count", Schema: "pg_catalog", Type: i8, Distinct: true, Args: []*Expr{m}}, true, "5"},
		{"sum of numeric(30,4) with NaN, split", agg("sum", num, w), true, "NaN"},
		{"sum of numeric(30,4), split", filtered(agg("sum", num, w)), true, "15.5000"},
		{"avg of numeric(30,4), split", filtered(agg("avg", num, w)), true, "3.1000000000000000"},
		{"sum of a product", filtered(agg("sum", num, op("*", num, "", m, m))), true, "168.6250"},
		{"avg of a product", filtered(agg("avg", num, op("*", num, "", m, m))), true, "33.7250000000000000"},
		{"sum of a difference with a constant", filtered(agg("sum", num, op("-", num, "", nc("1"), m))), true, "-10.50"},
		{"avg of a difference with NaN", agg("avg", num, op("-", num, "", m, m)), true, "NaN"},
		{"max of numeric(30,4)", agg("max", num, w), true, "NaN"},
		{"sum of unconstrained numeric", agg("sum", num, nv("u", -1)), false, ""},
		{"sum of a product of 40 digits", filtered(agg("sum", num, op("*", num, "", m, w))), true, "168.625000"},
		{"sum of a product of 40 digits with NaN", agg("sum", num, op("*", num, "", w, m)), true, "NaN"},
		{"avg of a product of 40 digits", filtered(agg("avg", num, op("*", num, "", m, w))), true, "33.7250000000000000"},
		{"sum of a product of three", filtered(agg("sum", num, op("*", num, "", op("*", num, "", m, m), w))),
			true, "1972.53125000"},
		{"count of a product of 40 digits", &Expr{K: "agg", Name: "count", Schema: "pg_catalog", Type: i8, Args: []*Expr{op("*", num, "", m, w)}}, false, ""},
		{"sum of a product of 60 digits", agg("sum", num, op("*", num, "", w, w)), false, ""},
	}
	for _, tc := range aggs {
		t.Run(tc.name, func(t *testing.T) {
			q := &Query{Rels: []QueryRel{{ID: 1}}, From: &FromItem{Rel: 1}, Grouped: true, Targets: []*Expr{tc.target}}
			checkPlan(t, e, q, rels, tc.pushed, tc.want)
		})
	}

	t.Run("group and order by", func(t *testing.T) {
		count := &Expr{K: "agg", Name: "count", Schema: "pg_catalog", Type: i8, Star: true}
		q := &Query{Rels: []QueryRel{{ID: 1}}, From: &FromItem{Rel: 1}, Grouped: true, Targets: []*Expr{m, count},
			GroupBy: []*Expr{m}, OrderBy: []SortKey{{Expr: m, Op: ">", NullsFirst: true}}}
		p, err := PlanQuery(q, rels, PlanOptions{})
		if err != nil || !p.OK {
			t.Fatalf("PlanQuery: %v %v", err, p.Reason)
		}
		want := "NULL|1 NaN|1 12.50|1 2.25|2 0.00|1 -1.50|1"
		if got := strings.Join(runPlan(t, e, p), " "); got != want {
			t.Errorf("%s = %q; want %q", p.Scan.SQL, got, want)
		}
	})
	t.Run("order by, NaN last", func(t *testing.T) {
		q := &Query{Rels: []QueryRel{{ID: 1}}, From: &FromItem{Rel: 1}, Targets: []*Expr{m},
			OrderBy: []SortKey{{Expr: m, Op: "<"}, {Expr: id, Op: "<"}}}
		p, err := PlanQuery(q, rels, PlanOptions{})
		if err != nil || !p.OK {
			t.Fatalf("PlanQuery: %v %v", err, p.Reason)
		}
		want := "-1.50 0.00 2.25 2.25 12.50 NaN NULL"
		if got := strings.Join(runPlan(t, e, p), " "); got != want {
			t.Errorf("%s = %q; want %q", p.Scan.SQL, got, want)
		}
	})
	t.Run("arithmetic", func(t *testing.T) {
		for _, tc := range []struct {
			target *Expr
			want   string
		}{
			{op("*", num, "", m, m), "NULL NaN 2.2500 0.0000 5.0625 156.2500 5.0625"},
			{op("+", num, "", m, nc("1.5")), "NULL NaN 0.00 1.50 3.75 14.00 3.75"},
		} {
			q := &Query{Rels: []QueryRel{{ID: 1}}, From: &FromItem{Rel: 1}, Targets: []*Expr{tc.target},
				OrderBy: []SortKey{{Expr: id, Op: "<"}}}
			checkPlan(t, e, q, rels, true, tc.want)
		}
	})
	t.Run("having", func(t *testing.T) {
		sum := filtered(agg("sum", num, m))
		q := &Query{Rels: []QueryRel{{ID: 1}}, From: &FromItem{Rel: 1}, Grouped: true, Targets: []*Expr{sum},
			Having: []*Expr{op(">", bo, "", sum, nc("15.4999"))}}
		p, err := PlanQuery(q, rels, PlanOptions{})
		if err != nil || !p.OK {
			t.Fatalf("PlanQuery: %v %v", err, p.Reason)
		}
		if got := strings.Join(runPlan(t, e, p), " "); got != "15.50" {
			t.Errorf("%s = %q; want 15.50", p.Scan.SQL, got)
		}
	})
	t.Run("order by sums that could overflow", func(t *testing.T) {
		// Per row: NULL, NaN, -1.5, 0, 2.25, 12.5, 2.25; squares through
		// the wide product m * w.
		for _, tc := range []struct {
			name string
			sum  *Expr
			desc bool
			want string
		}{
			{"sum of numeric(30,4), descending", agg("sum", num, w), true, "1 2 6 5 7 4 3"},
			{"sum of numeric(30,4), ascending", agg("sum", num, w), false, "3 4 5 7 6 2 1"},
			{"sum of a wide product, descending", agg("sum", num, op("*", num, "", m, w)), true, "1 2 6 5 7 3 4"},
			{"sum of a wide product, ascending", agg("sum", num, op("*", num, "", m, w)), false, "4 3 5 7 6 2 1"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				op := "<"
				if tc.desc {
					op = ">"
				}
				q := &Query{Rels: []QueryRel{{ID: 1}}, From: &FromItem{Rel: 1}, Grouped: true, Targets: []*Expr{id}, GroupBy: []*Expr{id},
					OrderBy: []SortKey{{Expr: tc.sum, Op: op, NullsFirst: tc.desc}, {Expr: id, Op: "<"}}}
				checkPlan(t, e, q, rels, true, tc.want)
			})
		}
	})
	t.Run("refused elsewhere", func(t *testing.T) {
		for _, target := range []*Expr{
			op("*", num, "", m, w), // 40 digits
			{K: "coalesce", Type: num, Args: []*Expr{m, nc("1")}},
			{K: "func", Name: "round", Schema: "pg_catalog", Format: "call", Type: num, Args: []*Expr{m}},
			{K: "func", Name: "float8", Schema: "pg_catalog", Format: "cast", Type: catalog.OIDFloat8, Args: []*Expr{m}},
		} {
			q := &Query{Rels: []QueryRel{{ID: 1}}, From: &FromItem{Rel: 1}, Targets: []*Expr{target}}
			p, err := PlanQuery(q, rels, PlanOptions{})
			if err != nil || p.OK {
				t.Errorf("%+v: pushed = %v, %v; want refused", target, p.OK, err)
			}
		}
	})
}

// checkPlan plans q, checks whether it is pushed, and when it is, that
// running it gives want (its rows' first columns, space-separated). A
// plan whose sums are optimistic (Plan.Retry) is also planned and run in
// its exact form, which must push the same pieces and give want too.
func checkPlan(t *testing.T, e *Engine, q *Query, rels map[int]Relation, pushed bool, want string) {
	t.Helper()
	p, err := PlanQuery(q, rels, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.OK != pushed {
		t.Fatalf("pushed = %v (%s); want %v", p.OK, p.Reason, pushed)
	}
	plans := []*Plan{p}
	if p.Retry {
		wide, err := PlanQuery(q, rels, PlanOptions{Wide: true})
		if err != nil {
			t.Fatal(err)
		}
		if wide.OK != p.OK || fmt.Sprint(wide.Where, wide.Targets, wide.Having) != fmt.Sprint(p.Where, p.Targets, p.Having) || wide.Retry {
			t.Fatalf("the exact plan pushes %v %v %v (retry %v), the optimistic one %v %v %v",
				wide.Where, wide.Targets, wide.Having, wide.Retry, p.Where, p.Targets, p.Having)
		}
		plans = append(plans, wide)
	}
	if pushed {
		for _, p := range plans {
			if got := strings.Join(runPlan(t, e, p), " "); got != want {
				t.Errorf("%s: %q; want %q", p.Scan.SQL, got, want)
			}
		}
	}
}

// TestWideSumOverflow checks that an optimistic sum of products past 38
// digits fails with an overflow, which makes the sidecar run the exact
// form, and that the exact form's sum is right.
func TestWideSumOverflow(t *testing.T) {
	e := openEngine(t)
	m := &catalog.Mirror{Database: "numwide", Namespace: "public", Name: "t"}
	m.Columns = []catalog.Column{
		{Name: "a", Type: mustResolve(t, catalog.OIDNumeric, (30<<16|4)+4)},
		{Name: "b", Type: mustResolve(t, catalog.OIDNumeric, (20<<16|2)+4)},
	}
	big := "99999999999999999999999999.9999"
	for _, s := range []string{
		"ATTACH ':memory:' AS pg_numwide",
		"CREATE SCHEMA pg_numwide.public",
		"CREATE TABLE " + m.View() + " (a VARCHAR, b VARCHAR)",
		"INSERT INTO " + m.View() + " VALUES ('" + big + "', '999999999999999999.99'), ('" + big + "', '-0.01'), ('0.0001', '0.01')",
	} {
		if _, err := e.DB.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	rels := map[int]Relation{1: m}
	num := uint32(catalog.OIDNumeric)
	prod := op("*", num, "", nv("a", (30<<16|4)+4), nv("b", (20<<16|2)+4))
	q := &Query{Rels: []QueryRel{{ID: 1}}, From: &FromItem{Rel: 1}, Grouped: true, Targets: []*Expr{agg("sum", num, prod), agg("avg", num, prod)}}
	p, err := PlanQuery(q, rels, PlanOptions{})
	if err != nil || !p.OK || !p.Retry {
		t.Fatalf("PlanQuery: %v, pushed %v (%s), retry %v; want pushed and optimistic", err, p.OK, p.Reason, p.Retry)
	}
	rdr, release, err := e.Query(t.Context(), p.Scan.SQL)
	if err == nil {
		for rdr.Next() {
		}
		err = rdr.Err()
		release()
	}
	if !IsOverflow(err) {
		t.Fatalf("%s: %v; want an overflow", p.Scan.SQL, err)
	}
	wide, err := PlanQuery(q, rels, PlanOptions{Wide: true})
	if err != nil || !wide.OK {
		t.Fatalf("PlanQuery, wide: %v %v", err, wide.Reason)
	}
	// big * 999999999999999999.99 + big * -0.01 + 0.0001 * 0.01
	// = big * 999999999999999999.98 + 0.000001, its avg rounded to the 6 digits of its scale
	want := "99999999999999999997999999999900000000000000.000003|33333333333333333332666666666633333333333333.333334"
	if got := strings.Join(runPlan(t, e, wide), " "); got != want {
		t.Errorf("%s: %q; want %q", wide.Scan.SQL, got, want)
	}
}

// TestNumericNaNWithNull checks that NaN with NULL gives NULL, as
// PostgreSQL's strict operators do, in sums of sums and products of
// any width.
func TestNumericNaNWithNull(t *testing.T) {
	e := openEngine(t)
	m := &catalog.Mirror{Database: "numnull", Namespace: "public", Name: "t"}
	a, b, w := int32((10<<16|2)+4), int32((10<<16|2)+4), int32((30<<16|4)+4)
	m.Columns = []catalog.Column{
		{Name: "a", Type: mustResolve(t, catalog.OIDNumeric, a)},
		{Name: "b", Type: mustResolve(t, catalog.OIDNumeric, b)},
		{Name: "w", Type: mustResolve(t, catalog.OIDNumeric, w)},
	}
	for _, s := range []string{
		"ATTACH ':memory:' AS pg_numnull",
		"CREATE SCHEMA pg_numnull.public",
		"CREATE TABLE " + m.View() + " (a VARCHAR, b VARCHAR, w VARCHAR)",
		"INSERT INTO " + m.View() + " VALUES ('NaN', NULL, NULL), (NULL, 'NaN', 'NaN'), ('1.00', '2.00', '3.0000')",
	} {
		if _, err := e.DB.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	rels := map[int]Relation{1: m}
	num := uint32(catalog.OIDNumeric)
	av, bv, wv := nv("a", a), nv("b", b), nv("w", w)
	for _, tc := range []struct {
		name   string
		target *Expr
		want   string
	}{
		{"sum of a sum", agg("sum", num, op("+", num, "", av, bv)), "3.00"},
		{"sum of a product", agg("sum", num, op("*", num, "", av, bv)), "2.0000"},
		{"avg of a product", agg("avg", num, op("*", num, "", av, bv)), "2.0000000000000000"},
		{"sum of a wide product", agg("sum", num, op("*", num, "", av, wv)), "3.000000"},
		{"sum of a wide product of a sum", agg("sum", num, op("*", num, "", op("*", num, "", av, bv), wv)), "6.00000000"},
		{"count of a product", agg("count", i8, op("*", num, "", av, bv)), "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := &Query{Rels: []QueryRel{{ID: 1}}, From: &FromItem{Rel: 1}, Grouped: true, Targets: []*Expr{tc.target}}
			checkPlan(t, e, q, rels, true, tc.want)
		})
	}
}

// TestDecimalColumnPushdown checks numeric(p,s) columns stored as their
// DECIMAL(p,s) (files whose DECIMALs numeric(p,s) holds exactly; mirrors
// made before numeric was kept as text): compared, aggregated, grouped
// and sent as PostgreSQL's text, without parsing text.
func TestDecimalColumnPushdown(t *testing.T) {
	e := openEngine(t)
	m := &catalog.Mirror{Database: "dectest", Namespace: "public", Name: "t"}
	dec, err := catalog.StoredType(catalog.OIDNumeric, numericTypmod10_2, catalog.KindDecimal, "numeric(10,2)")
	if err != nil {
		t.Fatal(err)
	}
	m.Columns = []catalog.Column{{Name: "id", Type: mustResolve(t, catalog.OIDInt4, -1)}, {Name: "m", Type: dec}}
	for _, s := range []string{
		"ATTACH ':memory:' AS pg_dectest",
		"CREATE SCHEMA pg_dectest.public",
		"CREATE TABLE " + m.View() + " (id INTEGER, m DECIMAL(10,2))",
		"INSERT INTO " + m.View() + ` VALUES (1, NULL), (3, -1.50), (4, 0), (5, 2.25), (6, 12.5), (7, 2.25)`,
	} {
		if _, err := e.DB.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	rels := map[int]Relation{1: m}
	col := nv("m", numericTypmod10_2)
	id := v("id", i4)
	num := uint32(catalog.OIDNumeric)
	for _, tc := range []struct {
		name string
		q    *Query
		want string
	}{
		{"greater", &Query{Where: []*Expr{op(">", bo, "", col, nc("0"))}, Targets: []*Expr{id}, OrderBy: []SortKey{{Expr: id, Op: "<"}}}, "5 6 7"},
		{"equal, larger scale", &Query{Where: []*Expr{op("=", bo, "", col, nc("2.250"))}, Targets: []*Expr{id}, OrderBy: []SortKey{{Expr: id, Op: "<"}}}, "5 7"},
		{"sum", &Query{Grouped: true, Targets: []*Expr{agg("sum", num, col)}}, "15.50"},
		{"avg", &Query{Grouped: true, Targets: []*Expr{agg("avg", num, col)}}, "3.1000000000000000"},
		{"min", &Query{Grouped: true, Targets: []*Expr{agg("min", num, col)}}, "-1.50"},
		{"max", &Query{Grouped: true, Targets: []*Expr{agg("max", num, col)}}, "12.50"},
		{"count distinct", &Query{Grouped: true, Targets: []*Expr{{K: "agg", Name: "count", Schema: "pg_catalog", Type: i8, Distinct: true, Args: []*Expr{col}}}}, "4"},
		{"sum of a product", &Query{Grouped: true, Targets: []*Expr{agg("sum", num, op("*", num, "", col, col))}}, "168.6250"},
		{"the column, ordered", &Query{Targets: []*Expr{op("+", num, "", col, nc("0"))}, OrderBy: []SortKey{{Expr: col, Op: "<"}, {Expr: id, Op: "<"}}},
			"-1.50 0.00 2.25 2.25 12.50 NULL"},
		{"the column itself", &Query{Targets: []*Expr{col}, OrderBy: []SortKey{{Expr: id, Op: "<"}}}, "NULL -1.50 0.00 2.25 12.50 2.25"},
		{"grouped by", &Query{Grouped: true, Targets: []*Expr{col, {K: "agg", Name: "count", Schema: "pg_catalog", Type: i8, Star: true}},
			GroupBy: []*Expr{col}, OrderBy: []SortKey{{Expr: col, Op: ">", NullsFirst: true}}}, "NULL|1 12.50|1 2.25|2 0.00|1 -1.50|1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.Rels, tc.q.From = []QueryRel{{ID: 1}}, &FromItem{Rel: 1}
			p, err := PlanQuery(tc.q, rels, PlanOptions{})
			if err != nil || !p.OK {
				t.Fatalf("PlanQuery: %v %v", err, p.Reason)
			}
			if strings.Contains(p.Scan.SQL, "= 'NaN'") || strings.Contains(p.Scan.SQL, "TRY_CAST") {
				t.Errorf("a DECIMAL column is handled as text: %s", p.Scan.SQL)
			}
			if got := strings.Join(runPlan(t, e, p), " "); got != tc.want {
				t.Errorf("%s = %q; want %q", p.Scan.SQL, got, tc.want)
			}
		})
	}
}
