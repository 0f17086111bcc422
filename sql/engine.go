package sql

import (
	"context"
	gosql "database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow/array"
	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmooncake/mooncake/catalog"
)

// Options configure the DuckDB database.
type Options struct {
	MemoryLimit string // DuckDB memory_limit, e.g. "4GB"
	Threads     int    // DuckDB threads; 0 keeps DuckDB's default
	TempDir     string // where DuckDB spills
	// ResultCacheBytes bounds the answers kept for repeated queries
	// (resultcache.go): 0 for DefaultResultCacheBytes, < 0 keeps none.
	ResultCacheBytes int64
}

// Engine runs queries on the sidecar's DuckDB database.
type Engine struct {
	DB      *gosql.DB   // the in-memory DuckDB database holding every mirror's view and tail
	zones   sync.Map    // time zone name -> whether DuckDB knows it
	stmts   stmtCache   // the connections' prepared statements (streamQuery)
	results resultCache // small answers over mirrors' files (resultcache.go)
	tempDir string      // where results are spilled (Finish)
}

// Open creates the in-memory DuckDB database.
func Open(opts Options) (*Engine, error) {
	connector, err := duckdb.NewConnector("", func(execer driver.ExecerContext) error {
		// A streaming query's workers run up to this far ahead of its
		// reader (streamQuery; DuckDB's default is 1 MB).
		for _, s := range []string{"SET TimeZone = 'UTC'", "SET streaming_buffer_size = '32MB'"} {
			if _, err := execer.ExecContext(context.Background(), s, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	db := gosql.OpenDB(connector)
	settings := []string{
		"SET parquet_metadata_cache = true",
		"SET preserve_insertion_order = false",
	}
	if opts.MemoryLimit != "" {
		settings = append(settings, "SET memory_limit = "+catalog.QuoteLiteral(opts.MemoryLimit))
	}
	if opts.Threads > 0 {
		settings = append(settings, fmt.Sprintf("SET threads = %d", opts.Threads))
	}
	if opts.TempDir != "" {
		settings = append(settings, "SET temp_directory = "+catalog.QuoteLiteral(opts.TempDir))
	}
	for _, s := range settings {
		if _, err := db.Exec(s); err != nil {
			db.Close()
			return nil, fmt.Errorf("configure duckdb (%s): %w", s, err)
		}
	}
	e := &Engine{DB: db, tempDir: opts.TempDir}
	switch {
	case opts.ResultCacheBytes == 0:
		e.results.totalMax = DefaultResultCacheBytes
	case opts.ResultCacheBytes > 0:
		e.results.totalMax = opts.ResultCacheBytes
	}
	e.results.entryMax = min(resultEntryBytes, e.results.totalMax)
	return e, nil
}

// Close closes the DuckDB database.
func (e *Engine) Close() error { return e.DB.Close() }

// Column is a column a query asks for, with the PostgreSQL type it must be
// delivered as.
type Column struct {
	Name    string `json:"name"`
	TypeOID uint32 `json:"type_oid"`
	Typmod  int32  `json:"typmod"`
}

// Format is how a result column travels to PostgreSQL.
type Format uint8

const (
	FormatText   Format = 0 // the type's text form, read by its input function
	FormatBinary Format = 1 // the type's binary form, read by its receive function
)

// Scan is a planned read of a mirror.
type Scan struct {
	SQL     string   // DuckDB SQL
	Formats []Format // per output column
	TypeOID []uint32 // per output column, the PostgreSQL type
	// AvgInt marks, per output column, an avg of integers or of a
	// numeric(p,s): it takes two result columns, the sum's text (NaN
	// when any value is) and the count, and is sent as the text of
	// numeric_div(sum, count) (see AvgText).
	AvgInt []bool
	// Spread names, per output column, a value finished in the sidecar
	// from several result columns (SpreadWidth of them): a variance or
	// standard deviation of integers ("var_samp", "var_pop",
	// "stddev_samp", "stddev_pop"), a split sum or avg of numerics
	// ("sum:s", "avg:s", "sum3:s", "avg3:s") or a sum's text ("text"); it
	// is sent as FinishSpread's result.
	Spread []string
	// ReuseKey, when not empty, names the versions of the views the SQL
	// reads: mirrors' views over their files alone, so that its prepared
	// statement can run again while they stay (QueryOptions.ReuseKey).
	// Empty for any other SQL: over a mirror's tail (DuckDB plans with
	// the statistics of the tail, which change as rows arrive), or the
	// data lake's files (bound to the files a glob or a table's metadata
	// named when it was prepared).
	ReuseKey string
	// Cacheable: with ReuseKey, the answer is the same each time the SQL
	// runs on the same views (not a sample), and a small one is kept
	// (QueryOptions.Cacheable).
	Cacheable bool
}

// binaryType is, for each PostgreSQL type the sidecar sends in binary form,
// the storage kinds it is sent from and the DuckDB type it is produced as.
// The ints, floats, bool, date and timestamps are also cast into one
// another, as DuckDB casts them, when a foreign table declares a column
// with another of these types than its mirror's.
var binaryType = map[uint32]struct {
	kinds []catalog.Kind
	duck  string
}{
	catalog.OIDBool:        {[]catalog.Kind{catalog.KindBool}, "BOOLEAN"},
	catalog.OIDInt2:        {[]catalog.Kind{catalog.KindInt16}, "SMALLINT"},
	catalog.OIDInt4:        {[]catalog.Kind{catalog.KindInt32}, "INTEGER"},
	catalog.OIDInt8:        {[]catalog.Kind{catalog.KindInt64}, "BIGINT"},
	catalog.OIDFloat4:      {[]catalog.Kind{catalog.KindFloat32}, "FLOAT"},
	catalog.OIDFloat8:      {[]catalog.Kind{catalog.KindFloat64}, "DOUBLE"},
	catalog.OIDText:        {[]catalog.Kind{catalog.KindString, catalog.KindText}, "VARCHAR"},
	catalog.OIDVarchar:     {[]catalog.Kind{catalog.KindString, catalog.KindText}, "VARCHAR"},
	catalog.OIDBpchar:      {[]catalog.Kind{catalog.KindString, catalog.KindText}, "VARCHAR"},
	catalog.OIDDate:        {[]catalog.Kind{catalog.KindDate}, "DATE"},
	catalog.OIDTimestamp:   {[]catalog.Kind{catalog.KindTimestamp}, "TIMESTAMP"},
	catalog.OIDTimestampTZ: {[]catalog.Kind{catalog.KindTimestampTZ}, "TIMESTAMPTZ"},
	catalog.OIDUUID:        {[]catalog.Kind{catalog.KindUUID}, "UUID"},
	catalog.OIDBytea:       {[]catalog.Kind{catalog.KindBytea}, "BLOB"},
	catalog.OIDTime:        {[]catalog.Kind{catalog.KindTime}, "TIME"},
	catalog.OIDMoney:       {[]catalog.Kind{catalog.KindMoney}, "BIGINT"},
}

// castable are the kinds DuckDB casts among as PostgreSQL would.
var castable = []catalog.Kind{catalog.KindBool, catalog.KindInt16, catalog.KindInt32, catalog.KindInt64,
	catalog.KindFloat32, catalog.KindFloat64, catalog.KindDate, catalog.KindTimestamp, catalog.KindTimestampTZ}

// scanColumn is the select expression and wire format of a stored column
// read as PostgreSQL type oid. A column sent in binary form has the DuckDB
// type the encoder expects for oid; any other is sent as the PostgreSQL
// text of its value, which the type's input function reads (typmod and a
// domain's checks included), exactly as the source wrote it for the types
// stored as text. With arrow (a scan for Flight, which builds Arrow
// columns rather than PostgreSQL's forms, of a column read with its own
// typmod), a numeric(p,s) column stored as DECIMAL stays a DECIMAL: no
// text to print and parse again.
func scanColumn(col catalog.Column, oid uint32, arrow bool) (string, Format) {
	return scanColumnExpr(catalog.QuoteIdent(col.Name), col, oid, arrow)
}

// scanColumnExpr is scanColumn for the column reference expr.
func scanColumnExpr(expr string, col catalog.Column, oid uint32, arrow bool) (string, Format) {
	if arrow && oid == catalog.OIDNumeric && col.Type.Kind == catalog.KindDecimal {
		return expr, FormatText
	}
	if b, ok := binaryType[oid]; ok {
		stored := col.Type.DuckDBType()
		switch {
		case slices.Contains(b.kinds, col.Type.Kind) && stored == b.duck:
			return expr, FormatBinary
		case slices.Contains(b.kinds, col.Type.Kind),
			slices.Contains(castable, col.Type.Kind) && slices.Contains(castable, b.kinds[0]):
			return "CAST(" + expr + " AS " + b.duck + ")", FormatBinary
		}
	}
	return col.Type.CastToText(expr), FormatText
}

// PlanScan plans reading the given columns of a mirror; arrow as for
// scanColumn.
func PlanScan(m Relation, cols []Column, arrow bool) (*Scan, error) {
	s := &Scan{}
	var sel []string
	for _, c := range cols {
		idx := m.ColumnIndex(c.Name)
		if idx < 0 {
			return nil, &pgconn.PgError{Code: "42703", Message: fmt.Sprintf("column %q does not exist in %s", c.Name, m.Describe()),
				Hint: "The foreign table's columns must match the mirror's; recreate it with mooncake.create_table."}
		}
		col := m.Cols()[idx]
		expr, format := scanColumn(col, c.TypeOID, arrow && c.Typmod == col.Type.Typmod)
		s.Formats = append(s.Formats, format)
		s.TypeOID = append(s.TypeOID, c.TypeOID)
		sel = append(sel, expr)
	}
	if len(sel) == 0 {
		// A query that reads no column (count(*)) still needs one row per row.
		sel = append(sel, "NULL")
	}
	s.SQL = "SELECT " + strings.Join(sel, ", ") + " FROM " + m.View()
	s.ReuseKey = reuseKey(map[int]Relation{0: m})
	s.Cacheable = true
	return s, nil
}

// Query runs sql and returns its result as Arrow record batches. release
// must be called when the reader is no longer used.
func (e *Engine) Query(ctx context.Context, sql string) (rdr array.RecordReader, release func(), err error) {
	return e.QueryIn(ctx, sql, "")
}

// QueryIn is Query under the session TimeZone tz ("" for UTC, the
// connections' own).
func (e *Engine) QueryIn(ctx context.Context, sql, tz string) (rdr array.RecordReader, release func(), err error) {
	return e.QueryWith(ctx, sql, QueryOptions{TimeZone: tz})
}

// QueryOptions are how QueryWith runs a query.
type QueryOptions struct {
	TimeZone string // the session's TimeZone ("" for UTC, the connections' own)
	// ReuseKey, when not empty, keeps the query's prepared statement on
	// its connection and runs one kept for the same SQL, zone and key
	// (see stmtCache): Scan.ReuseKey.
	ReuseKey string
	// Cacheable, with ReuseKey, keeps a small answer and answers the
	// same query from it while the views stay (resultcache.go):
	// Scan.Cacheable.
	Cacheable bool
	// Conn, when set, runs the query on that connection (one holding a
	// DuckDB transaction open, see the sidecar's read pins) rather than
	// one of the pool's, and leaves it open, in TimeZone (the caller
	// sets it back to UTC before the pool has it again); ReuseKey and
	// Cacheable are then ignored: a statement prepared or an answer kept
	// in a transaction reading older views must not serve later queries.
	Conn *gosql.Conn
}

// QueryWith is Query with options. Under another TimeZone than UTC the
// connection is set back to UTC before it returns to the pool, where the
// write path relies on it.
func (e *Engine) QueryWith(ctx context.Context, sql string, o QueryOptions) (rdr array.RecordReader, release func(), err error) {
	tz := o.TimeZone
	if o.Conn != nil {
		o.ReuseKey, o.Cacheable = "", false
	}
	cacheKey := ""
	if o.ReuseKey != "" && o.Cacheable && e.results.entryMax > 0 {
		cacheKey = tz
		if cacheKey == "" {
			cacheKey = "UTC"
		}
		cacheKey += "\x00" + o.ReuseKey + "\x00" + sql
		if rr := e.results.get(cacheKey); rr != nil {
			return rr, rr.Release, nil
		}
	}
	conn := o.Conn
	closeConn := func() {}
	if conn == nil {
		var err error
		if conn, err = e.DB.Conn(ctx); err != nil {
			return nil, nil, err
		}
		closeConn = func() { conn.Close() }
	}
	done := closeConn
	if o.Conn != nil && tz == "" {
		tz = "UTC" // the caller's connection may be in an earlier query's zone
	}
	if (tz != "" && tz != "UTC") || o.Conn != nil {
		if _, err := conn.ExecContext(ctx, "SET TimeZone = "+catalog.QuoteLiteral(tz)); err != nil {
			// A cancellation can end the call after the SET took effect.
			conn.Raw(func(any) error { return driver.ErrBadConn })
			closeConn()
			return nil, nil, err
		}
		if o.Conn == nil {
			done = func() {
				if _, err := conn.ExecContext(context.Background(), "SET TimeZone = 'UTC'"); err != nil {
					// Never give the pool a connection in another zone.
					conn.Raw(func(any) error { return driver.ErrBadConn })
				}
				closeConn()
			}
		}
	}
	err = conn.Raw(func(dc any) error {
		var cs *connStmts
		key := ""
		if o.ReuseKey != "" {
			cs = e.stmts.forConn(dc)
			key = tz
			if key == "" {
				key = "UTC"
			}
			key += "\x00" + o.ReuseKey + "\x00" + sql
		}
		sr, ok, err := streamQuery(ctx, dc.(driver.Conn), sql, cs, key, &e.stmts.hits)
		if ok {
			if err == nil {
				sr.spillDir = e.tempDir
				rdr = sr
			}
			return err
		}
		ar, err := duckdb.NewArrowFromConn(dc.(driver.Conn))
		if err != nil {
			return err
		}
		rdr, err = ar.QueryContext(ctx, sql)
		return err
	})
	if err != nil {
		done()
		return nil, nil, QueryError(err)
	}
	if cacheKey != "" {
		rdr = &recordingReader{RecordReader: rdr, cache: &e.results, key: cacheKey}
	}
	return rdr, func() { rdr.Release(); done() }, nil
}

// Finish has a reader of QueryWith read the rest of its result at once
// (into a file under the engine's TempDir), so that its connection, a
// caller's (QueryOptions.Conn), may run another query while the reader is
// still being read; it returns once DuckDB is done with the result.
func Finish(rdr array.RecordReader) {
	if sr, ok := rdr.(*streamReader); ok {
		sr.Finish()
	}
}

// StatementsReused counts the queries that ran a prepared statement kept
// from an earlier one (QueryOptions.ReuseKey).
func (e *Engine) StatementsReused() int64 { return e.stmts.hits.Load() }

// KnowsTimeZone reports whether DuckDB knows the time zone name, so that
// expressions depending on the session's TimeZone can run under it.
func (e *Engine) KnowsTimeZone(ctx context.Context, name string) bool {
	if v, ok := e.zones.Load(name); ok {
		return v.(bool)
	}
	var n int
	err := e.DB.QueryRowContext(ctx, "SELECT count(*) FROM pg_timezone_names() WHERE name = ?", name).Scan(&n)
	if err != nil {
		return false
	}
	e.zones.Store(name, n > 0)
	return n > 0
}

// doubleQuoted is a value DuckDB's conversion errors quote.
var doubleQuoted = regexp.MustCompile(`"(?:[^"]|"")*"`)

// IsBinderError reports whether err is DuckDB's failure to bind a query
// (a column or table its catalog does not hold).
func IsBinderError(err error) bool {
	var de *duckdb.Error
	return errors.As(err, &de) && de.Type == duckdb.ErrorTypeBinder
}

// IsOverflow reports whether err is a numeric overflow (22003) reported by
// DuckDB (see QueryError).
func IsOverflow(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "22003"
}

// QueryError gives a DuckDB error the SQLSTATE PostgreSQL raises for the
// same failure: overflows, division by zero, cancellation.
func QueryError(err error) error {
	var de *duckdb.Error
	if !errors.As(err, &de) {
		return err
	}
	code := ""
	switch {
	case strings.Contains(de.Msg, "division by zero"):
		code = "22012"
	case strings.Contains(de.Msg, floatOverflow):
		code = "22003"
	case de.Type == duckdb.ErrorTypeOutOfRange,
		de.Type == duckdb.ErrorTypeConversion && strings.Contains(de.Msg, "out of range"):
		code = "22003"
	case de.Type == duckdb.ErrorTypeInterrupt:
		code = "57014"
	case strings.Contains(de.Msg, "Like pattern must not end with escape character"):
		code = "22025"
	case de.Type == duckdb.ErrorTypeConversion:
		// a value of a file that the declared type does not read: the
		// message names the column, never the value (quoted either way)
		msg, _, _ := strings.Cut(de.Msg, "\n")
		msg = doubleQuoted.ReplaceAllString(catalog.Redact(msg), `"…"`)
		return &pgconn.PgError{Code: "22P02", Message: "invalid input value: " + strings.TrimPrefix(msg, "Conversion Error: ")}
	}
	if code == "" {
		return err
	}
	msg, _, _ := strings.Cut(de.Msg, "\n")
	switch {
	case code == "22012":
		msg = "division by zero"
	case strings.Contains(de.Msg, floatOverflow):
		msg = floatOverflow
	}
	return &pgconn.PgError{Code: code, Message: msg}
}
