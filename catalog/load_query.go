package catalog

import (
	"context"
	gosql "database/sql"
	"database/sql/driver"
	"fmt"
	"strings"
)

// An INSERT INTO columnstore_table SELECT ... whose SELECT DuckDB runs
// whole (a scan the backend's foreign scan would stream) can write the
// table's data files straight from the query: LoadQuery, when that gives
// exactly what the row path would store. It compares the query's column
// types with the table's stored ones and copies only values of equal
// types, which the row path keeps as they are; it gives up (a
// *CSVFallback, nothing written) for anything else.

// errBadConn keeps a connection left in another time zone out of the pool.
var errBadConn = driver.ErrBadConn

// QueryColumn is a column of the table an INSERT fills: from the query's
// column Source (0-based), or NULL when Source is negative.
type QueryColumn struct {
	Name   string
	Source int
}

// LoadQuery appends the rows of query (DuckDB SQL, run under TimeZone tz
// when not empty) to the columnstore table whose metadata file is base,
// as a load does (data files, a new uncommitted metadata file).
func LoadQuery(ctx context.Context, duck *gosql.DB, base, query, tz string, fill []QueryColumn) (Appended, error) {
	tbl, cols, err := LoadColumnstore(ctx, base)
	if err != nil {
		return Appended{}, err
	}
	conn, err := duck.Conn(ctx)
	if err != nil {
		return Appended{}, err
	}
	defer conn.Close()
	if tz != "" {
		if _, err := conn.ExecContext(ctx, "SET TimeZone = "+QuoteLiteral(tz)); err != nil {
			conn.Raw(func(any) error { return errBadConn })
			return Appended{}, &CSVFallback{"the time zone"}
		}
		defer func() {
			if _, err := conn.ExecContext(context.Background(), "SET TimeZone = 'UTC'"); err != nil {
				conn.Raw(func(any) error { return errBadConn })
			}
		}()
	}
	// the query's column types, without running it
	srcTypes, err := describe(ctx, conn, query)
	if err != nil {
		return Appended{}, &CSVFallback{"the query: " + Redact(err.Error())}
	}
	exprs := make([]string, len(cols))
	given := make([]bool, len(cols))
	var want []string
	for _, f := range fill {
		i := columnIndex(cols, f.Name)
		if i < 0 || given[i] || f.Source >= len(srcTypes) {
			return Appended{}, &CSVFallback{fmt.Sprintf("column %q", f.Name)}
		}
		given[i] = true
		if f.Source < 0 {
			continue
		}
		want = append(want, fmt.Sprintf("CAST(NULL AS %s) AS %s", cols[i].Type.DuckDBType(), colName("t", i)))
	}
	var wantTypes []string
	if len(want) > 0 {
		if wantTypes, err = describe(ctx, conn, "SELECT "+strings.Join(want, ", ")); err != nil {
			return Appended{}, err
		}
	}
	k := 0
	fail := "error('" + csvFallbackMark + "')"
	for _, f := range fill {
		i := columnIndex(cols, f.Name)
		c := cols[i]
		if f.Source < 0 {
			if c.NotNull {
				return Appended{}, &CSVFallback{fmt.Sprintf("column %q is not given", c.Name)}
			}
			continue
		}
		if srcTypes[f.Source] != wantTypes[k] && !widens[[2]string{srcTypes[f.Source], wantTypes[k]}] {
			return Appended{}, &CSVFallback{fmt.Sprintf("column %q is %s in DuckDB, stored as %s", c.Name, srcTypes[f.Source], wantTypes[k])}
		}
		k++
		e, ok := queryValue(c, colName("q.c", f.Source), fail)
		if ok && srcTypes[f.Source] != wantTypes[k-1] {
			e = "CAST(" + e + " AS " + c.Type.DuckDBType() + ")"
		}
		if !ok {
			return Appended{}, &CSVFallback{fmt.Sprintf("column %q is of type %s", c.Name, typeName(c.Type))}
		}
		exprs[i] = e
	}
	for i, c := range cols {
		if exprs[i] == "" {
			if c.NotNull {
				return Appended{}, &CSVFallback{fmt.Sprintf("column %q is not given", c.Name)}
			}
			exprs[i] = "CAST(NULL AS " + c.Type.DuckDBType() + ")"
		}
		exprs[i] += " AS " + QuoteIdent(c.Name)
	}
	alias := make([]string, len(srcTypes))
	for j := range alias {
		alias[j] = colName("c", j)
	}

	return writeLoad(ctx, conn, tbl, cols, base, "SELECT "+strings.Join(exprs, ", ")+" FROM ("+query+") AS q("+strings.Join(alias, ", ")+")",
		"a value is not one the row path keeps as it is")
}

// widens are the query's types that a column stores in a wider type of
// its own (smallint as Iceberg's int), which the cast keeps exactly.
var widens = map[[2]string]bool{{"SMALLINT", "INTEGER"}: true}

// describe is the DuckDB type of each column of query, as DESCRIBE names it.
func describe(ctx context.Context, conn *gosql.Conn, query string) ([]string, error) {
	rows, err := conn.QueryContext(ctx, "DESCRIBE "+query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var types []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		types = append(types, fmt.Sprint(vals[1])) // column_name, column_type, ...
	}
	return types, rows.Err()
}

// queryValue is the expression storing the query's value v (of the
// column's stored DuckDB type) in column c, when the row path keeps such
// a value as it is: fail (an error()) for one it would refuse or change.
func queryValue(c Column, v, fail string) (string, bool) {
	t := c.Type
	check := ""
	switch {
	case t.OID == OIDInt2 && t.Kind == KindInt16:
		// stored as Iceberg's int: within smallint's range
		check = v + " BETWEEN -32768 AND 32767"
	case t.OID == OIDBool && t.Kind == KindBool,
		t.OID == OIDInt4 && t.Kind == KindInt32,
		t.OID == OIDInt8 && t.Kind == KindInt64,
		t.OID == OIDFloat4 && t.Kind == KindFloat32,
		t.OID == OIDFloat8 && t.Kind == KindFloat64,
		t.OID == OIDNumeric && t.Kind == KindDecimal,
		t.OID == OIDUUID && t.Kind == KindUUID,
		t.OID == OIDBytea && t.Kind == KindBytea:
	case (t.OID == OIDText || t.OID == OIDVarchar) && t.Kind == KindString:
		// PostgreSQL's text holds no NUL; varchar(n) refuses (or cuts
		// trailing spaces of) a longer value
		check = "NOT contains(" + v + ", chr(0))"
		if t.OID == OIDVarchar && t.Typmod >= 4 {
			check += fmt.Sprintf(" AND length(%s) <= %d", v, t.Typmod-4)
		}
	case t.OID == OIDDate && t.Kind == KindDate:
		// of years 1 to 9999, well within PostgreSQL's range (its
		// infinities are DuckDB's)
		check = fmt.Sprintf("(NOT isfinite(%[1]s) OR %[1]s BETWEEN DATE '0001-01-01' AND DATE '9999-12-31')", v)
	case t.OID == OIDTimestamp && t.Kind == KindTimestamp:
		check = fmt.Sprintf("(NOT isfinite(%[1]s) OR %[1]s BETWEEN TIMESTAMP '0001-01-01' AND TIMESTAMP '9999-12-31 23:59:59.999999')", v)
	case t.OID == OIDTimestampTZ && t.Kind == KindTimestampTZ:
		check = fmt.Sprintf("(NOT isfinite(%[1]s) OR %[1]s BETWEEN TIMESTAMPTZ '0001-01-02 00:00:00+00' AND TIMESTAMPTZ '9999-12-30 23:59:59.999999+00')", v)
	default:
		return "", false
	}
	null := "CAST(NULL AS " + t.DuckDBType() + ")"
	if c.NotNull {
		null = fail
	}
	if check == "" {
		return fmt.Sprintf("CASE WHEN %s IS NULL THEN %s ELSE %s END", v, null, v), true
	}
	return fmt.Sprintf("CASE WHEN %s IS NULL THEN %s WHEN %s THEN %s ELSE %s END", v, null, check, v, fail), true
}
