package sql

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgmooncake/mooncake/catalog"
)

// tm is the typmod of numeric(p,s).
func tm(p, s int) int32 { return int32(((p << 16) | (s & 0x7ff)) + 4) }

// TestNumericAgainstPostgres runs random comparisons, orderings and
// aggregates of numeric(p,s) columns (scales negative, zero, above the
// precision; NULL, NaN, zero, negatives, the largest values) in DuckDB and
// in the PostgreSQL of MOONCAKE_NUMERIC_DSN (a connection string; the test
// creates and drops a table "mooncake_numeric_check" there), and requires
// the same text. MOONCAKE_NUMERIC_SEED picks the data and the queries.
func TestNumericAgainstPostgres(t *testing.T) {
	dsn := os.Getenv("MOONCAKE_NUMERIC_DSN")
	if dsn == "" {
		t.Skip("MOONCAKE_NUMERIC_DSN not set")
	}
	ctx := context.Background()
	pg, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(ctx)
	cols := []struct {
		name string
		p, s int
	}{{"a", 10, 2}, {"b", 12, 0}, {"c", 4, -2}, {"d", 3, 5}, {"e", 30, 4}, {"f", 20, 6}, {"g", 5, 1}}
	seed := int64(1)
	if s := os.Getenv("MOONCAKE_NUMERIC_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	rng := rand.New(rand.NewSource(seed))
	var defs []string
	for _, c := range cols {
		defs = append(defs, fmt.Sprintf("%s numeric(%d,%d)", c.name, c.p, c.s))
	}
	mustPG := func(q string) {
		if _, err := pg.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	mustPG("DROP TABLE IF EXISTS mooncake_numeric_check")
	mustPG("CREATE TABLE mooncake_numeric_check(id int, " + strings.Join(defs, ", ") + ")")
	val := func(p, s int) string {
		switch rng.Intn(12) {
		case 0:
			return "NULL"
		case 1:
			return "'NaN'"
		case 2:
			return "0"
		}
		ip := p - s
		var digits int
		if ip > 0 {
			digits = rng.Intn(ip + 1)
		}
		x := ""
		for i := 0; i < digits; i++ {
			x += string(rune('0' + rng.Intn(10)))
		}
		if x == "" {
			x = "0"
		}
		if s > 0 {
			x += "."
			for i := 0; i < s+1; i++ {
				x += string(rune('0' + rng.Intn(10)))
			}
		}
		if s < 0 || p-s <= 0 {
			// Values of the allowed magnitude.
			if s < 0 {
				x = fmt.Sprint(rng.Int63n(int64(pow10i(min(p, 17)))) * pow10i(-s))
			} else {
				x = "0." + strings.Repeat("0", s-p) + fmt.Sprint(rng.Int63n(pow10i(p)))
			}
		}
		if rng.Intn(3) == 0 {
			x = "-" + x
		}
		// Within the precision after rounding.
		return fmt.Sprintf("least(greatest(%s::numeric, -%s), %s)", x, maxOf(p, s), maxOf(p, s))
	}
	nrows := 40 + rng.Intn(40)
	for i := 0; i < nrows; i++ {
		var vs []string
		for _, c := range cols {
			vs = append(vs, val(c.p, c.s))
		}
		mustPG(fmt.Sprintf("INSERT INTO mooncake_numeric_check VALUES (%d, %s)", i, strings.Join(vs, ", ")))
	}
	// Duplicates, for grouping.
	mustPG("INSERT INTO mooncake_numeric_check SELECT id + 1000, a, b, c, d, e, f, g FROM mooncake_numeric_check WHERE id % 3 = 0")

	e := openEngine(t)
	m := &catalog.Mirror{Database: "numref", Namespace: "public", Name: "h"}
	m.Columns = append(m.Columns, catalog.Column{Name: "id", Type: mustResolve(t, catalog.OIDInt4, -1)})
	for _, c := range cols {
		m.Columns = append(m.Columns, catalog.Column{Name: c.name, Type: mustResolve(t, catalog.OIDNumeric, tm(c.p, c.s))})
	}
	var ddefs []string
	for _, c := range m.Columns {
		ddefs = append(ddefs, catalog.QuoteIdent(c.Name)+" "+c.Type.DuckDBType())
	}
	for _, s := range []string{"ATTACH ':memory:' AS pg_numref", "CREATE SCHEMA pg_numref.public",
		"CREATE TABLE " + m.View() + " (" + strings.Join(ddefs, ", ") + ")"} {
		if _, err := e.DB.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := pg.Query(ctx, "SELECT id, a::text, b::text, c::text, d::text, e::text, f::text, g::text FROM mooncake_numeric_check")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		vals, _ := rows.Values()
		if _, err := e.DB.Exec("INSERT INTO "+m.View()+" VALUES (?, ?, ?, ?, ?, ?, ?, ?)", vals...); err != nil {
			t.Fatal(err)
		}
	}
	rows.Close()
	rels := map[int]Relation{1: m}
	num := uint32(catalog.OIDNumeric)
	col := func() (string, *Expr) {
		c := cols[rng.Intn(len(cols))]
		return c.name, &Expr{K: "var", Rel: 1, Col: c.name, Type: num, Typmod: tm(c.p, c.s)}
	}
	consts := []string{"0", "1.5", "-100.25", "99999.999", "0.001", "12.5", "-3", "NaN", "0.00001", "-0.00001", "123456789012345678901234567890",
		"99999999.99", "-99999999.99", "1", "100", "-200", "0.5", "0.00005", "5", "-5", "0.12345678901234567890", "NULL"}
	constE := func() (string, *Expr) {
		s := consts[rng.Intn(len(consts))]
		if s == "NULL" {
			return "NULL::numeric", &Expr{K: "const", Type: num}
		}
		return "'" + s + "'::numeric", &Expr{K: "const", Type: num, Value: &s}
	}
	ops := []string{"=", "<>", "<", "<=", ">", ">="}
	cond := func() (string, *Expr) {
		o := ops[rng.Intn(len(ops))]
		ls, le := col()
		var rs string
		var re *Expr
		if rng.Intn(3) == 0 {
			rs, re = col()
		} else {
			rs, re = constE()
		}
		if rng.Intn(2) == 0 {
			ls, le, rs, re = rs, re, ls, le
		}
		return "(" + ls + " " + o + " " + rs + ")", op(o, bo, "", le, re)
	}
	pushed, total := 0, 0
	run := func(pgSQL string, q *Query) {
		total++
		p, err := PlanQuery(q, rels, PlanOptions{Params: []Param{}})
		if err != nil {
			t.Fatalf("PlanQuery: %v", err)
		}
		if !p.OK {
			t.Logf("refused %s: %s", pgSQL, p.Reason)
			return
		}
		pushed++
		r, err := e.DB.Query(p.Scan.SQL)
		if err != nil {
			t.Errorf("%s\n%s: %v", pgSQL, p.Scan.SQL, err)
			return
		}
		var got []string
		for r.Next() {
			ct, _ := r.Columns()
			vals := make([]any, len(ct))
			ptrs := make([]any, len(ct))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := r.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var out []string
			for i, j := 0, 0; i < len(p.Scan.Formats); i++ {
				if p.Scan.AvgInt[i] {
					if vals[j] == nil || vals[j+1] == nil || vals[j+1].(int64) == 0 {
						out = append(out, "NULL")
					} else {
						s, err := AvgText(vals[j].(string), vals[j+1].(int64))
						if err != nil {
							t.Fatal(err)
						}
						out = append(out, s)
					}
					j += 2
					continue
				}
				if vals[j] == nil {
					out = append(out, "NULL")
				} else {
					out = append(out, fmt.Sprint(vals[j]))
				}
				j++
			}
			got = append(got, strings.Join(out, "|"))
		}
		r.Close()
		pr, err := pg.Query(ctx, pgSQL)
		if err != nil {
			t.Fatalf("%s: %v", pgSQL, err)
		}
		var want []string
		for pr.Next() {
			vals, _ := pr.Values()
			var out []string
			for _, v := range vals {
				if v == nil {
					out = append(out, "NULL")
				} else {
					out = append(out, fmt.Sprint(v))
				}
			}
			want = append(want, strings.Join(out, "|"))
		}
		pr.Close()
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("differs: %s\nduck: %s\ngot:\n%s\nwant:\n%s", pgSQL, p.Scan.SQL, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	idv := &Expr{K: "var", Rel: 1, Col: "id", Type: i4}
	for i := 0; i < 400; i++ {
		// WHERE
		cs, ce := cond()
		run("SELECT id FROM mooncake_numeric_check WHERE "+cs+" ORDER BY id", &Query{Rels: []QueryRel{{ID: 1}}, From: &FromItem{Rel: 1}, Where: []*Expr{ce}, Targets: []*Expr{idv},
			OrderBy: []SortKey{{Expr: idv, Op: "<"}}})
		// ORDER BY a numeric then id
		on, oe := col()
		dir, nf := "<", rng.Intn(2) == 0
		dirs := "ASC"
		if rng.Intn(2) == 0 {
			dir, dirs = ">", "DESC"
		}
		nfs := " NULLS LAST"
		if nf {
			nfs = " NULLS FIRST"
		}
		run("SELECT id, "+on+"::text AS o1 FROM mooncake_numeric_check ORDER BY "+on+" "+dirs+nfs+", id", &Query{Rels: []QueryRel{{ID: 1}}, From: &FromItem{Rel: 1},
			Targets: []*Expr{idv, oe}, OrderBy: []SortKey{{Expr: oe, Op: dir, NullsFirst: nf}, {Expr: idv, Op: "<"}}})
		// grouped aggregates
		gn, ge := col()
		an, ae := col()
		fs, fe := cond()
		aggs := []string{"min", "max", "sum", "avg", "count"}
		ag := aggs[rng.Intn(len(aggs))]
		resT := num
		if ag == "count" {
			resT = uint32(i8)
		}
		ax := &Expr{K: "agg", Name: ag, Schema: "pg_catalog", Type: resT, Args: []*Expr{ae}}
		filt := ""
		if rng.Intn(2) == 0 {
			ax.Filter = fe
			filt = " FILTER (WHERE " + fs + ")"
		}
		distinct := ""
		if rng.Intn(5) == 0 {
			ax.Distinct = true
			distinct = "DISTINCT "
		}
		pgAgg := ag + "(" + distinct + an + ")" + filt
		q := &Query{Rels: []QueryRel{{ID: 1}}, From: &FromItem{Rel: 1}, Grouped: true, Targets: []*Expr{ge, ax}}
		pq := "SELECT " + gn + "::text AS o1, (" + pgAgg + ")::text AS o2 FROM mooncake_numeric_check"
		if rng.Intn(2) == 0 {
			q.GroupBy = []*Expr{ge}
			pq += " GROUP BY " + gn
			q.OrderBy = []SortKey{{Expr: ge, Op: dir, NullsFirst: nf}}
			pq += " ORDER BY " + gn + " " + dirs + nfs
			if rng.Intn(3) == 0 && ag != "avg" && ag != "count" {
				// HAVING agg op constant
				o := ops[rng.Intn(len(ops))]
				ks, ke := constE()
				q.Having = []*Expr{op(o, bo, "", ax, ke)}
				pq = strings.Replace(pq, " ORDER BY", " HAVING "+pgAgg+" "+o+" "+ks+" ORDER BY", 1)
			}
		} else {
			q.Targets = []*Expr{ax}
			pq = "SELECT (" + pgAgg + ")::text FROM mooncake_numeric_check"
		}
		run(pq, q)
	}
	mustPG("DROP TABLE mooncake_numeric_check")
	t.Logf("pushed %d of %d", pushed, total)
}

// pow10i is 10^n.
func pow10i(n int) int64 {
	r := int64(1)
	for i := 0; i < n; i++ {
		r *= 10
	}
	return r
}

// maxOf is the largest value of numeric(p,s).
func maxOf(p, s int) string {
	if s >= 0 {
		ip := p - s
		if ip <= 0 {
			return "0." + strings.Repeat("0", s-p) + strings.Repeat("9", p)
		}
		if s == 0 {
			return strings.Repeat("9", ip)
		}
		return strings.Repeat("9", ip) + "." + strings.Repeat("9", s)
	}
	return strings.Repeat("9", p) + strings.Repeat("0", -s)
}
