package sql

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pgmooncake/mooncake/catalog"
)

// Relation is what a query reads: a mirror (catalog.Mirror), or files of
// the data lake (package sql/lake). Its columns are typed as a mirror's
// stored columns are, and View is a DuckDB relation holding them so: the
// planner reads both alike.
type Relation interface {
	View() string                  // DuckDB table expression of the rows
	Cols() []catalog.Column        // the columns, in order
	ColumnIndex(name string) int   // index in Cols, -1 if none
	EstimatedRows() int64          // rows, for estimates
	TailRows() int64               // rows not in files (a mirror's unflushed tail)
	Ranges() []catalog.ColumnRange // per column value ranges of the files, when known
	Describe() string              // for messages: `mirror s.t`, `file "…"`
}

// Preparer is a relation whose data must be made ready before a query
// runs on it: remote files, whose byte ranges the query reads are fetched
// into the local cache. cols are the relation's columns the query uses
// (by name); release lets the data go once DuckDB has run the query.
type Preparer interface {
	Prepare(ctx context.Context, cols []string) (release func(), err error)
}

// Prepare makes the data of the plan's relations ready (see Preparer);
// the returned function releases it.
func (p *Plan) Prepare(ctx context.Context) (func(), error) {
	var releases []func()
	done := func() {
		for _, r := range releases {
			r()
		}
	}
	for id, r := range p.rels {
		pr, ok := r.(Preparer)
		if !ok {
			continue
		}
		release, err := pr.Prepare(ctx, p.query.usedColumns(id))
		if err != nil {
			done()
			return nil, err
		}
		releases = append(releases, release)
	}
	return done, nil
}

// usedColumns are the columns of relation rel the query names anywhere,
// in order of first use.
func (q *Query) usedColumns(rel int) []string {
	cols := []string{}
	seen := map[string]bool{}
	var walk func(e *Expr)
	walk = func(e *Expr) {
		if e == nil {
			return
		}
		if e.K == "var" && e.Rel == rel && !seen[e.Col] {
			seen[e.Col] = true
			cols = append(cols, e.Col)
		}
		for _, a := range e.Args {
			walk(a)
		}
		for _, k := range e.Order {
			walk(k.Expr)
		}
		walk(e.Filter)
		for _, d := range e.Direct {
			walk(d)
		}
	}
	var from func(f *FromItem)
	from = func(f *FromItem) {
		if f == nil {
			return
		}
		for _, e := range f.On {
			walk(e)
		}
		from(f.Left)
		from(f.Right)
	}
	from(q.From)
	for _, list := range [][]*Expr{q.Where, q.Targets, q.GroupBy, q.Having} {
		for _, e := range list {
			walk(e)
		}
	}
	for _, k := range q.OrderBy {
		walk(k.Expr)
	}
	walk(q.Limit)
	walk(q.Offset)
	return cols
}

// reuseKey is Scan.ReuseKey for SQL reading rels: the versions of their
// views when all are mirrors' views over their files alone
// (catalog.Mirror.FilesOnly, ViewVersion), else "".
func reuseKey(rels map[int]Relation) string {
	ids := slices.Sorted(maps.Keys(rels))
	var b strings.Builder
	for _, id := range ids {
		m, ok := rels[id].(*catalog.Mirror)
		if !ok {
			return ""
		}
		// The version first: read after it, FilesOnly holds for that
		// version or a later one (the form changes after the view).
		v := m.ViewVersion()
		if !m.FilesOnly() {
			return ""
		}
		fmt.Fprintf(&b, "%d:%d;", id, v)
	}
	return b.String()
}
