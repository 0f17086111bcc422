package sql

import "encoding/json"

// Query is the planner's pieces of a PostgreSQL query on mirrors, as the
// FDW serializes them (sidecar/PROTOCOL.md, "Query trees"). PlanQuery
// decides which pieces DuckDB can run with PostgreSQL's results and turns
// them into DuckDB SQL.
type Query struct {
	Rels  []QueryRel `json:"rels"`  // the mirrors the query reads, by range table index
	From  *FromItem  `json:"from"`  // the join tree over Rels
	Where []*Expr    `json:"where"` // conditions, ANDed; each pushed or refused alone
	// LocalWhere is set when PostgreSQL evaluates more conditions of the
	// scan than Where: DuckDB then computes no expression (output column,
	// ordering) for rows those conditions may drop.
	LocalWhere bool      `json:"local_where,omitempty"`
	Targets    []*Expr   `json:"targets"`  // the output columns, in order
	GroupBy    []*Expr   `json:"group_by"` // grouping expressions
	Grouped    bool      `json:"grouped"`  // an aggregate query (also without GROUP BY)
	Having     []*Expr   `json:"having"`   // conditions on groups, ANDed
	OrderBy    []SortKey `json:"order_by"` // ORDER BY
	Limit      *Expr     `json:"limit"`    // LIMIT, nil for none
	Offset     *Expr     `json:"offset"`   // OFFSET, nil for none
	Sample     int64     `json:"sample"`   // > 0: a random sample of this many rows of the one mirror (ANALYZE)
}

// QueryRel is one mirror the query reads.
type QueryRel struct {
	ID        int    `json:"id"`  // range table index, what Vars refer to
	OID       uint32 `json:"oid"` // the foreign table's OID
	Namespace string `json:"namespace"`
	Table     string `json:"table"`
	// Files, when set, is what the relation reads instead of a mirror:
	// files of the lake (a sql/lake.Spec).
	Files json.RawMessage `json:"files,omitempty"`
}

// FromItem is a node of the join tree: a mirror (Rel) or a join.
type FromItem struct {
	Rel   int       `json:"rel,omitempty"`  // a QueryRel's ID
	Join  string    `json:"join,omitempty"` // "inner", "left", "right" or "full"
	Left  *FromItem `json:"left,omitempty"`
	Right *FromItem `json:"right,omitempty"`
	On    []*Expr   `json:"on,omitempty"` // join conditions, ANDed
}

// SortKey is one ORDER BY item.
type SortKey struct {
	Expr       *Expr  `json:"expr"`
	Op         string `json:"op"` // the sort operator: "<" ascending, ">" descending
	NullsFirst bool   `json:"nulls_first"`
}

// Collation classes of an expression's input collation (Expr.InColl).
const (
	CollNone   = ""       // no collation: not a collatable type
	CollC      = "c"      // "C" or "POSIX": byte order, as DuckDB compares
	CollDet    = "det"    // another deterministic collation: equality is bytewise
	CollNonDet = "nondet" // a nondeterministic collation
)

// Expr is a node of a PostgreSQL expression tree. K says which node it is:
//
//	var      a column: Rel, Col
//	const    a constant: Value (nil = NULL), in the type's text form
//	param    a value PostgreSQL computes when the scan starts: ID
//	op       an operator: Name, Schema, Args (one or two)
//	func     a function call or cast: Name, Schema, Format, Args
//	and, or, not
//	isnull, notnull
//	istrue, isnottrue, isfalse, isnotfalse, isunknown, isnotunknown
//	any, all x op ANY/ALL (array): Name, Schema, ElemType, Args = [x, array]
//	array    ARRAY[...]: ElemType, Args
//	relabel  a binary-compatible cast: Args = [x]
//	coerceio a cast through text: Args = [x]
//	case     CASE WHEN: Args = [cond, result, ..., else]
//	coalesce COALESCE(Args)
//	agg      an aggregate: Name, Schema, Star, Distinct, Args, Order, Filter, Direct
//
// Type, Typmod and InColl are the node's result type, its typmod and the
// collation its operation uses.
type Expr struct {
	K        string    `json:"k"`
	Type     uint32    `json:"type,omitempty"`
	Typmod   int32     `json:"typmod,omitempty"`
	InColl   string    `json:"incoll,omitempty"`
	Rel      int       `json:"rel,omitempty"`
	Col      string    `json:"col,omitempty"`
	Value    *string   `json:"value,omitempty"`
	ID       int       `json:"id,omitempty"`
	Name     string    `json:"name,omitempty"`
	Schema   string    `json:"schema,omitempty"`
	Format   string    `json:"format,omitempty"` // func: "call", "cast", "implicit" or "sql"
	ElemType uint32    `json:"elemtype,omitempty"`
	Args     []*Expr   `json:"args,omitempty"`
	Star     bool      `json:"star,omitempty"`
	Distinct bool      `json:"distinct,omitempty"`
	Order    []SortKey `json:"order,omitempty"`
	Filter   *Expr     `json:"filter,omitempty"`
	Direct   []*Expr   `json:"direct,omitempty"`
}

// Param is the value of an exec-time parameter, in its type's text form
// (nil = NULL).
type Param struct {
	Type  uint32  `json:"type"`
	Value *string `json:"value"`
}
