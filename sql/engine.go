package sql

import (
	"context"
	gosql "database/sql"
	"database/sql/driver"
	"fmt"
	"strings"

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
}

// Engine runs queries on the sidecar's DuckDB database.
type Engine struct {
	DB *gosql.DB // the in-memory DuckDB database holding every mirror's view and tail
}

// Open creates the in-memory DuckDB database.
func Open(opts Options) (*Engine, error) {
	connector, err := duckdb.NewConnector("", func(execer driver.ExecerContext) error {
		_, err := execer.ExecContext(context.Background(), "SET TimeZone = 'UTC'", nil)
		return err
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
	return &Engine{DB: db}, nil
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
}

// binaryType is the DuckDB type a PostgreSQL type is produced as when it is
// sent in binary form.
var binaryType = map[uint32]string{
	catalog.OIDBool:        "BOOLEAN",
	catalog.OIDInt2:        "SMALLINT",
	catalog.OIDInt4:        "INTEGER",
	catalog.OIDInt8:        "BIGINT",
	catalog.OIDFloat4:      "FLOAT",
	catalog.OIDFloat8:      "DOUBLE",
	catalog.OIDText:        "VARCHAR",
	catalog.OIDVarchar:     "VARCHAR",
	catalog.OIDBpchar:      "VARCHAR",
	catalog.OIDDate:        "DATE",
	catalog.OIDTimestamp:   "TIMESTAMP",
	catalog.OIDTimestampTZ: "TIMESTAMPTZ",
}

// PlanScan plans reading the given columns of a mirror.
func PlanScan(m *catalog.Mirror, cols []Column) (*Scan, error) {
	s := &Scan{}
	var sel []string
	for _, c := range cols {
		idx := m.ColumnIndex(c.Name)
		if idx < 0 {
			return nil, &pgconn.PgError{Code: "42703", Message: fmt.Sprintf("column %q does not exist in mirror %s.%s", c.Name, m.Namespace, m.Name),
				Hint: "The foreign table's columns must match the mirror's; recreate it with mooncake.create_table."}
		}
		expr := catalog.QuoteIdent(m.Columns[idx].Name)
		if t, ok := binaryType[c.TypeOID]; ok {
			if m.Columns[idx].Type.DuckDBType() != t {
				expr = "CAST(" + expr + " AS " + t + ")"
			}
			s.Formats = append(s.Formats, FormatBinary)
		} else {
			expr = "CAST(" + expr + " AS VARCHAR)"
			s.Formats = append(s.Formats, FormatText)
		}
		s.TypeOID = append(s.TypeOID, c.TypeOID)
		sel = append(sel, expr)
	}
	if len(sel) == 0 {
		// A query that reads no column (count(*)) still needs one row per row.
		sel = append(sel, "NULL")
	}
	s.SQL = "SELECT " + strings.Join(sel, ", ") + " FROM " + m.View()
	return s, nil
}

// Query runs sql and returns its result as Arrow record batches. release
// must be called when the reader is no longer used.
func (e *Engine) Query(ctx context.Context, sql string) (rdr array.RecordReader, release func(), err error) {
	conn, err := e.DB.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	err = conn.Raw(func(dc any) error {
		ar, err := duckdb.NewArrowFromConn(dc.(driver.Conn))
		if err != nil {
			return err
		}
		rdr, err = ar.QueryContext(ctx, sql)
		return err
	})
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return rdr, func() { rdr.Release(); conn.Close() }, nil
}
