package sql

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/pgmooncake/mooncake/catalog"
)

// Row estimates from Iceberg metadata. The manifests give each data file's
// row count and, per column, its smallest and largest value and its NULLs
// (catalog.ColumnRange): a comparison of a column with a constant keeps
// about the share of [smallest, largest] on its side, assuming values
// spread evenly between them, times the share of non-NULL values. Rows
// not yet flushed have no bounds: they are all counted as kept, so that a
// condition on the newest values (order_date >= CURRENT_DATE) is not
// estimated to keep nothing when they are only in memory. PostgreSQL uses
// these estimates for a mirror that was never analyzed; after ANALYZE its
// own statistics serve (they see the distribution, not only its ends).

// whereSelectivity estimates, per condition of a one-mirror query, the
// share of the mirror's rows it keeps; -1 where the metadata cannot tell.
// Conditions on the same column are estimated together, as a range: the
// first carries the range's share, the others 1.
func whereSelectivity(q *Query, rels map[int]Relation) []float64 {
	sel := make([]float64, len(q.Where))
	for i := range sel {
		sel[i] = -1
	}
	if q.From == nil || q.From.Join != "" || q.Grouped {
		return sel
	}
	m := rels[q.From.Rel]
	if m == nil {
		return sel
	}
	ranges := m.Ranges()
	fileRows, total := float64(m.EstimatedRows()-m.TailRows()), float64(m.EstimatedRows())
	if len(ranges) != len(m.Cols()) || total <= 0 {
		return sel
	}
	type span struct {
		lo, hi float64 // the values kept, on the column's axis
		first  int     // the first condition on the column
		empty  bool    // an equality outside the column's range
	}
	spans := map[int]*span{}
	for i, w := range q.Where {
		col, op, c, ok := comparison(w, q.From.Rel)
		if !ok {
			continue
		}
		idx := m.ColumnIndex(col.Col)
		if idx < 0 || !ranges[idx].Known {
			continue
		}
		v, ok := axisValue(col.Type, c)
		if !ok {
			continue
		}
		if r := ranges[idx]; op == "=" && v >= r.Lo && v <= r.Hi {
			continue // somewhere inside: no better than PostgreSQL's guess
		}
		s := spans[idx]
		if s == nil {
			s = &span{lo: math.Inf(-1), hi: math.Inf(1), first: i}
			spans[idx] = s
		}
		switch op {
		case "<", "<=":
			s.hi = math.Min(s.hi, v)
		case ">", ">=":
			s.lo = math.Max(s.lo, v)
		case "=":
			s.empty = true // outside the column's range
		}
		sel[i] = 1
	}
	for idx, s := range spans {
		r := ranges[idx]
		share := 0.0
		if !s.empty && r.Values > 0 {
			nonNull := float64(r.Values-r.Nulls) / float64(r.Values)
			share = nonNull * rangeShare(r.Lo, r.Hi, s.lo, s.hi)
		}
		sel[s.first] = (fileRows*share + (total - fileRows)) / total
	}
	return sel
}

// rangeShare is the share of [lo, hi] within [from, to], values spread
// evenly (a single value: all or nothing).
func rangeShare(lo, hi, from, to float64) float64 {
	if to < from || to < lo || from > hi {
		return 0
	}
	if hi <= lo {
		return 1
	}
	return (math.Min(to, hi) - math.Max(from, lo)) / (hi - lo)
}

// comparison recognizes var op const (or const op var, turned around) of a
// column of rel; op is one of < <= > >= =.
func comparison(e *Expr, rel int) (col *Expr, op string, c *Expr, ok bool) {
	if e == nil || e.K != "op" || len(e.Args) != 2 || e.Schema != "pg_catalog" {
		return nil, "", nil, false
	}
	a, b := e.Args[0], e.Args[1]
	op = e.Name
	if a.K == "const" && b.K == "var" {
		a, b = b, a
		op = map[string]string{"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "="}[op]
	}
	switch op {
	case "<", "<=", ">", ">=", "=":
	default:
		return nil, "", nil, false
	}
	if a.K != "var" || a.Rel != rel || b.K != "const" || b.Value == nil {
		return nil, "", nil, false
	}
	return a, op, b, true
}

// axisValue is constant c on the axis of a column of type colType (see
// catalog.ColumnRange): numbers as themselves, dates in days, timestamps
// in microseconds.
func axisValue(colType uint32, c *Expr) (float64, bool) {
	v := *c.Value
	numeric := func() (float64, bool) {
		switch c.Type {
		case catalog.OIDInt2, catalog.OIDInt4, catalog.OIDInt8, catalog.OIDFloat4, catalog.OIDFloat8, catalog.OIDNumeric:
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
		}
		return 0, false
	}
	instant := func() (time.Time, bool) {
		if strings.HasSuffix(v, " BC") || strings.Contains(v, "infinity") {
			return time.Time{}, false
		}
		for _, layout := range []string{"2006-01-02 15:04:05.999999999-07", "2006-01-02 15:04:05.999999999-07:00",
			"2006-01-02 15:04:05.999999999", "2006-01-02"} {
			if t, err := time.Parse(layout, v); err == nil {
				return t, true
			}
		}
		return time.Time{}, false
	}
	switch colType {
	case catalog.OIDInt2, catalog.OIDInt4, catalog.OIDInt8, catalog.OIDFloat4, catalog.OIDFloat8:
		return numeric()
	case catalog.OIDDate:
		if c.Type != catalog.OIDDate && c.Type != catalog.OIDTimestamp && c.Type != catalog.OIDTimestampTZ {
			return 0, false
		}
		t, ok := instant()
		return float64(t.UnixMicro()) / 86400e6, ok
	case catalog.OIDTimestamp, catalog.OIDTimestampTZ:
		if c.Type != catalog.OIDDate && c.Type != catalog.OIDTimestamp && c.Type != catalog.OIDTimestampTZ {
			return 0, false
		}
		t, ok := instant()
		return float64(t.UnixMicro()), ok
	}
	return 0, false
}
