package sql

import "github.com/pgmooncake/mooncake/catalog"

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
