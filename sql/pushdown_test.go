package sql

import (
	"errors"

	"context"
	"encoding/json"
	"github.com/jackc/pgx/v5/pgconn"
	"strings"
	"testing"

	"github.com/pgmooncake/mooncake/catalog"
)

// pushdownMirror is a mirror t(i int4, b int8, s int2, f float8, t text,
// n numeric, d date, ts timestamp, tz timestamptz, ok bool) with a table
// standing in for its view.
func pushdownMirror(t *testing.T, e *Engine) *catalog.Mirror {
	t.Helper()
	m := &catalog.Mirror{Database: "pushtest", Namespace: "public", Name: "t"}
	for _, c := range []struct {
		name string
		oid  uint32
	}{{"i", catalog.OIDInt4}, {"b", catalog.OIDInt8}, {"s", catalog.OIDInt2}, {"f", catalog.OIDFloat8}, {"t", catalog.OIDText},
		{"n", catalog.OIDNumeric}, {"d", catalog.OIDDate}, {"ts", catalog.OIDTimestamp}, {"tz", catalog.OIDTimestampTZ}, {"ok", catalog.OIDBool}} {
		m.Columns = append(m.Columns, catalog.Column{Name: c.name, Type: mustResolve(t, c.oid, -1)})
	}
	var defs []string
	for _, c := range m.Columns {
		defs = append(defs, catalog.QuoteIdent(c.Name)+" "+c.Type.DuckDBType())
	}
	for _, s := range []string{
		"ATTACH ':memory:' AS pg_pushtest",
		"CREATE SCHEMA pg_pushtest.public",
		"CREATE TABLE " + m.View() + " (" + strings.Join(defs, ", ") + ")",
		"INSERT INTO " + m.View() + ` VALUES
			(1, 10, 1, 1.5, 'a', '1.0', '2024-01-31', '2024-01-31 10:00', '2024-03-30 23:30:00+00', true),
			(2, 20, 2, -0.5, 'B', '2.00', '2024-02-29', '2024-02-29 23:59', '2024-03-31 12:00:00+00', false),
			(-7, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
	} {
		if _, err := e.DB.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return m
}

// Expression builders.
func v(col string, oid uint32) *Expr { return &Expr{K: "var", Rel: 1, Col: col, Type: oid} }
func c(oid uint32, s string) *Expr   { return &Expr{K: "const", Type: oid, Value: &s} }
func op(name string, res uint32, incoll string, a ...*Expr) *Expr {
	return &Expr{K: "op", Name: name, Schema: "pg_catalog", Type: res, InColl: incoll, Args: a}
}
func agg(name string, res uint32, a ...*Expr) *Expr {
	return &Expr{K: "agg", Name: name, Schema: "pg_catalog", Type: res, Args: a}
}

const (
	i4 = catalog.OIDInt4
	i8 = catalog.OIDInt8
	tx = catalog.OIDText
	bo = catalog.OIDBool
)

// TestPlanQueryWhere checks which conditions are pushed down and what
// the pushed ones select.
func TestPlanQueryWhere(t *testing.T) {
	e := openEngine(t)
	m := pushdownMirror(t, e)
	rels := map[int]Relation{1: m}
	tests := []struct {
		name   string
		where  *Expr
		pushed bool
		rows   int // rows selected, when pushed
	}{
		{"int equality", op("=", bo, "", v("i", i4), c(i4, "1")), true, 1},
		{"int arithmetic", op(">", bo, "", op("+", i4, "", v("i", i4), v("s", catalog.OIDInt2)), c(i4, "2")), true, 1},
		{"integer division truncates", op("=", bo, "", op("/", i4, "", v("i", i4), c(i4, "2")), c(i4, "-3")), true, 1},
		{"int2 arithmetic", op("=", bo, "", op("+", catalog.OIDInt2, "", v("s", catalog.OIDInt2), v("s", catalog.OIDInt2)), c(catalog.OIDInt2, "2")), false, 0},
		{"float arithmetic", op(">", bo, "", op("*", catalog.OIDFloat8, "", v("f", catalog.OIDFloat8), v("f", catalog.OIDFloat8)), c(catalog.OIDFloat8, "0")), false, 0},
		{"text equality, any collation", op("=", bo, CollDet, v("t", tx), c(tx, "a")), true, 1},
		{"text order, C", op("<", bo, CollC, v("t", tx), c(tx, "a")), true, 1},
		{"text order, other collation", op("<", bo, CollDet, v("t", tx), c(tx, "a")), false, 0},
		{"numeric stored as text", op(">", bo, "", v("n", catalog.OIDNumeric), c(catalog.OIDNumeric, "1")), false, 0},
		{"LIKE escapes with backslash", op("~~", bo, CollDet, v("t", tx), c(tx, `\a%`)), true, 1},
		{"ILIKE", op("~~*", bo, CollDet, v("t", tx), c(tx, "a%")), false, 0},
		{"is null", &Expr{K: "isnull", Args: []*Expr{v("n", catalog.OIDNumeric)}}, true, 1},
		{"in list", &Expr{K: "any", Name: "=", Schema: "pg_catalog", ElemType: i4, Args: []*Expr{v("i", i4), c(1007, "{1,NULL,2}")}}, true, 2},
		{"date_trunc", op("=", bo, "", &Expr{K: "func", Name: "date_trunc", Schema: "pg_catalog", Format: "call", Type: catalog.OIDTimestamp,
			Args: []*Expr{c(tx, "month"), v("ts", catalog.OIDTimestamp)}}, c(catalog.OIDTimestamp, "2024-02-01 00:00:00")), true, 1},
		{"extract year", op("=", bo, "", &Expr{K: "func", Name: "extract", Schema: "pg_catalog", Format: "call", Type: catalog.OIDNumeric,
			Args: []*Expr{c(tx, "year"), v("d", catalog.OIDDate)}}, c(catalog.OIDNumeric, "2024")), pushExtract, 2},
		{"integer arithmetic with a constant", op(">", bo, "", op("+", i4, "", v("i", i4), c(i4, "2")), c(i4, "5")), false, 0},
		{"user function", &Expr{K: "func", Name: "f", Schema: "public", Type: bo}, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := &Query{Rels: []QueryRel{{ID: 1}}, From: &FromItem{Rel: 1}, Where: []*Expr{tc.where}, Targets: []*Expr{v("i", i4)}}
			p, err := PlanQuery(q, rels, PlanOptions{Params: []Param{}, TZPushed: true})
			if err != nil {
				t.Fatalf("PlanQuery: %v", err)
			}
			if p.Where[0] != tc.pushed {
				w, _ := json.Marshal(tc.where)
				t.Fatalf("PlanQuery(%s) pushed = %v (%s); want %v", w, p.Where[0], p.Reason, tc.pushed)
			}
			if !tc.pushed {
				return
			}
			var n int
			if err := e.DB.QueryRow("SELECT count(*) FROM (" + p.Scan.SQL + ")").Scan(&n); err != nil {
				t.Fatalf("%s: %v", p.Scan.SQL, err)
			}
			if n != tc.rows {
				t.Errorf("%s: %d rows; want %d", p.Scan.SQL, n, tc.rows)
			}
		})
	}
}

// TestPlanQueryErrors checks that DuckDB fails where PostgreSQL does.
func TestPlanQueryErrors(t *testing.T) {
	e := openEngine(t)
	m := pushdownMirror(t, e)
	rels := map[int]Relation{1: m}
	tests := []struct {
		name  string
		where *Expr
		code  string
	}{
		{"division by zero", op("=", bo, "", op("/", i4, "", v("i", i4), op("-", i4, "", v("i", i4), v("i", i4))), c(i4, "0")), "22012"},
		// DuckDB moves constants across a comparison (x * c = d to x = d / c),
		// so the overflow is in a product of columns.
		{"overflow", op("=", bo, "", pow15(), c(catalog.OIDInt8, "0")), "22003"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := &Query{Rels: []QueryRel{{ID: 1}}, From: &FromItem{Rel: 1}, Where: []*Expr{tc.where}, Targets: []*Expr{v("i", i4)}}
			p, err := PlanQuery(q, rels, PlanOptions{Params: []Param{}})
			if err != nil || !p.OK {
				t.Fatalf("PlanQuery: %v %s", err, p.Reason)
			}
			rdr, release, err := e.Query(context.Background(), p.Scan.SQL)
			if err == nil {
				for rdr.Next() {
				}
				err = QueryError(rdr.Err())
				release()
			}
			if got := sqlState(err); got != tc.code {
				t.Errorf("%s: error %v (SQLSTATE %s); want SQLSTATE %s", p.Scan.SQL, err, got, tc.code)
			}
		})
	}
}

// TestPlanQueryAggregates checks grouped queries and their result types.
func TestPlanQueryAggregates(t *testing.T) {
	e := openEngine(t)
	m := pushdownMirror(t, e)
	rels := map[int]Relation{1: m}
	tests := []struct {
		name   string
		target *Expr
		pushed bool
		want   string
	}{
		{"count(*)", &Expr{K: "agg", Name: "count", Schema: "pg_catalog", Type: i8, Star: true}, true, "3"},
		{"sum(int4) is int8", agg("sum", i8, v("i", i4)), true, "-4"},
		{"sum(int8) is numeric", agg("sum", catalog.OIDNumeric, v("b", i8)), true, "30"},
		{"sum(float8)", agg("sum", catalog.OIDFloat8, v("f", catalog.OIDFloat8)), true, "1.0"},
		{"avg(float8)", agg("avg", catalog.OIDFloat8, v("f", catalog.OIDFloat8)), true, "0.5"},
		{"sum(DISTINCT float8)", &Expr{K: "agg", Name: "sum", Schema: "pg_catalog", Type: catalog.OIDFloat8, Distinct: true, Args: []*Expr{v("f", catalog.OIDFloat8)}}, false, ""},
		{"sum(float4) adds in single precision", agg("sum", catalog.OIDFloat4, &Expr{K: "cast", Type: catalog.OIDFloat4, Args: []*Expr{v("f", catalog.OIDFloat8)}}), false, ""},
		{"avg(int4) is numeric", agg("avg", catalog.OIDNumeric, v("i", i4)), true, "-1.3333333333333333"},
		{"max(text) under C", &Expr{K: "agg", Name: "max", Schema: "pg_catalog", Type: tx, InColl: CollC, Args: []*Expr{v("t", tx)}}, true, "a"},
		{"max(text) under another collation", &Expr{K: "agg", Name: "max", Schema: "pg_catalog", Type: tx, InColl: CollDet, Args: []*Expr{v("t", tx)}}, false, ""},
		{"stddev(int4) is numeric", agg("stddev", catalog.OIDNumeric, v("i", i4)), true, "4.9328828623162473"},
		{"var_pop(int4) is numeric", agg("var_pop", catalog.OIDNumeric, v("i", i4)), true, "16.2222222222222222"},
		{"stddev(float8)", agg("stddev", catalog.OIDFloat8, v("f", catalog.OIDFloat8)), false, ""},
		{"variance(int8)", agg("variance", catalog.OIDNumeric, v("b", i8)), false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := &Query{Rels: []QueryRel{{ID: 1}}, From: &FromItem{Rel: 1}, Grouped: true, Targets: []*Expr{tc.target}}
			p, err := PlanQuery(q, rels, PlanOptions{Params: []Param{}})
			if err != nil {
				t.Fatalf("PlanQuery: %v", err)
			}
			if p.OK != tc.pushed {
				t.Fatalf("PlanQuery pushed = %v (%s); want %v", p.OK, p.Reason, tc.pushed)
			}
			if !tc.pushed {
				return
			}
			var got string
			if p.Scan.Spread[0] != "" {
				var sum, squares string
				var n int64
				if err := e.DB.QueryRow(p.Scan.SQL).Scan(&n, &sum, &squares); err != nil {
					t.Fatalf("%s: %v", p.Scan.SQL, err)
				}
				got, _, err = VarianceText(p.Scan.Spread[0], n, sum, squares)
			} else if p.Scan.AvgInt[0] {
				var sum string
				var n int64
				if err := e.DB.QueryRow(p.Scan.SQL).Scan(&sum, &n); err != nil {
					t.Fatalf("%s: %v", p.Scan.SQL, err)
				}
				got, err = AvgText(sum, n)
			} else {
				err = e.DB.QueryRow("SELECT CAST(x AS VARCHAR) FROM (" + p.Scan.SQL + ") s(x)").Scan(&got)
			}
			if err != nil {
				t.Fatalf("%s: %v", p.Scan.SQL, err)
			}
			if got != tc.want {
				t.Errorf("%s = %q; want %q", p.Scan.SQL, got, tc.want)
			}
		})
	}
}

func TestAvgText(t *testing.T) {
	tests := []struct {
		sum   string
		count int64
		want  string
	}{
		{"3", 2, "1.5000000000000000"},
		{"0", 3, "0.00000000000000000000"},
		{"-4", 3, "-1.3333333333333333"},
		{"2", 3, "0.66666666666666666667"},
		{"100000", 3, "33333.333333333333"},
		{"123456789012", 1, "123456789012.00000000"},
		// sums of numeric(p,s), their scale the display scale; the
		// results are PostgreSQL's avg over values with that sum.
		{"0.25", 2, "0.12500000000000000000"},
		{"0.0123", 2, "0.00615000000000000000"},
		{"0.01", 3, "0.00333333333333333333"},
		{"-0.000001", 3, "-0.000000333333333333333333"},
		{"299999999.96", 3, "99999999.986666666667"},
		{"12345678901234567891.123456", 2, "6172839450617283945.561728"},
		{"12400", 2, "6200.0000000000000000"},
		{"0.00013", 2, "0.000065000000000000000000"},
		{"-7.6", 3, "-2.5333333333333333"},
		{"0.000", 2, "0.00000000000000000000"},
		{"33.3335", 3, "11.1111666666666667"},
		{"0.5", 1, "0.50000000000000000000"},
		{"NaN", 4, "NaN"},
	}
	for _, tc := range tests {
		if got, err := AvgText(tc.sum, tc.count); err != nil || got != tc.want {
			t.Errorf("AvgText(%q, %d) = %q, %v; want %q", tc.sum, tc.count, got, err, tc.want)
		}
	}
}

func sqlState(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// pow15 is b*b*...*b (15 factors), beyond bigint's range for b = 20.
func pow15() *Expr {
	e := v("b", catalog.OIDInt8)
	for i := 1; i < 15; i++ {
		e = op("*", catalog.OIDInt8, "", e, v("b", catalog.OIDInt8))
	}
	return e
}

// TestVarianceText checks the sidecar's variance and standard deviation of
// integers against what PostgreSQL 15 prints for the same values.
func TestVarianceText(t *testing.T) {
	for _, tc := range []struct {
		n                     int64
		sum, squares          string
		varSamp, varPop       string
		stddevSamp, stddevPop string
	}{
		{4, "10", "30", "1.6666666666666667", "1.2500000000000000", "1.2909944487358056", "1.1180339887498948"},
		{2, "10", "50", "0", "0", "0", "0"},
		{4, "99992", "9223372042559808562", "3074457346686736182", "2305843010015052137", "1753413056", "1518500250"},
		{2, "1", "1", "0.50000000000000000000", "0.25000000000000000000", "0.70710678118654752440", "0.50000000000000000000"},
		{1, "3", "9", "", "0", "", "0"},
		{6, "877789", "453377155293", "64991646774.56666667", "54159705645.47222222", "254934.59313041", "232722.37890988"},
	} {
		for kind, want := range map[string]string{"var_samp": tc.varSamp, "var_pop": tc.varPop, "stddev_samp": tc.stddevSamp, "stddev_pop": tc.stddevPop} {
			got, null, err := VarianceText(kind, tc.n, tc.sum, tc.squares)
			if err != nil || null != (want == "") || got != want {
				t.Errorf("%s of %d values (sums %s, %s) = %q, null %v, %v; want %q", kind, tc.n, tc.sum, tc.squares, got, null, err, want)
			}
		}
	}
	if _, null, _ := VarianceText("var_pop", 0, "", ""); !null {
		t.Error("var_pop of no value is not NULL")
	}
}
