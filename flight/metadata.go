package flight

import (
	"context"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql/schema_ref"

	"github.com/pgmooncake/mooncake/sidecar/service"
)

// The catalog calls answer from PostgreSQL's catalogs, queried as the
// session's role: a role sees the schemas it may use and the relations it
// may read (any column of), as psql's \dn and \dt would list them. The
// catalog is the session's database.

func (s *Server) registerSqlInfo() {
	for id, v := range map[flightsql.SqlInfo]any{
		flightsql.SqlInfoFlightSqlServerName:                        "pg_mooncake",
		flightsql.SqlInfoFlightSqlServerVersion:                     service.Version,
		flightsql.SqlInfoFlightSqlServerArrowVersion:                "18",
		flightsql.SqlInfoFlightSqlServerReadOnly:                    false,
		flightsql.SqlInfoFlightSqlServerSql:                         true,
		flightsql.SqlInfoFlightSqlServerSubstrait:                   false,
		flightsql.SqlInfoFlightSqlServerTransaction:                 int32(0), // none: each statement is its own transaction
		flightsql.SqlInfoFlightSqlServerCancel:                      true,
		flightsql.SqlInfoFlightSqlServerBulkIngestion:               true,
		flightsql.SqlInfoFlightSqlServerIngestTransactionsSupported: false,
		flightsql.SqlInfoDDLCatalog:                                 false,
		flightsql.SqlInfoDDLSchema:                                  true,
		flightsql.SqlInfoDDLTable:                                   true,
		flightsql.SqlInfoIdentifierCase:                             int32(1), // case-insensitive (folded to lower case)
		flightsql.SqlInfoIdentifierQuoteChar:                        `"`,
		flightsql.SqlInfoQuotedIdentifierCase:                       int32(0), // case-sensitive
		flightsql.SqlInfoSchemaTerm:                                 "schema",
		flightsql.SqlInfoCatalogTerm:                                "database",
	} {
		s.RegisterSqlInfo(id, v)
	}
}

// queryText runs a catalog query as the session's role; its rows in text.
func (s *Server) queryText(ctx context.Context, sess *session, query string, args ...*string) ([][]*string, error) {
	c, err := sess.pool.Acquire(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	defer c.Release()
	params := textParams(args)
	oids := make([]uint32, len(args))
	for i := range oids {
		oids[i] = 25 // text
	}
	res := c.Conn().PgConn().ExecParams(ctx, query, params, oids, nil, nil).Read()
	if res.Err != nil {
		return nil, toStatus(res.Err)
	}
	out := make([][]*string, len(res.Rows))
	for i, row := range res.Rows {
		out[i] = make([]*string, len(row))
		for j, v := range row {
			if v != nil {
				t := string(v)
				out[i][j] = &t
			}
		}
	}
	return out, nil
}

// textBatch makes a batch of schema from text rows.
func (s *Server) textBatch(schema *arrow.Schema, rows [][]*string) (arrow.RecordBatch, error) {
	b := array.NewRecordBuilder(s.mem, schema)
	defer b.Release()
	for _, row := range rows {
		for j, v := range row {
			f := b.Field(j)
			if v == nil {
				f.AppendNull()
				continue
			}
			switch fb := f.(type) {
			case *array.StringBuilder:
				fb.Append(*v)
			case *array.Int32Builder:
				n, err := strconv.ParseInt(*v, 10, 32)
				if err != nil {
					return nil, err
				}
				fb.Append(int32(n))
			case *array.BinaryBuilder:
				fb.Append([]byte(*v))
			}
		}
	}
	return b.NewRecordBatch(), nil
}

func (s *Server) metaInfo(desc *flight.FlightDescriptor, schema *arrow.Schema) (*flight.FlightInfo, error) {
	return &flight.FlightInfo{
		Schema:           flight.SerializeSchema(schema, s.mem),
		FlightDescriptor: desc,
		Endpoint:         []*flight.FlightEndpoint{{Ticket: &flight.Ticket{Ticket: desc.Cmd}}},
		TotalRecords:     -1,
		TotalBytes:       -1,
	}, nil
}

func (s *Server) metaGet(ctx context.Context, schema *arrow.Schema, query string, args ...*string) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	sess, err := s.session(ctx)
	if err != nil {
		return nil, nil, err
	}
	rows, err := s.queryText(ctx, sess, query, args...)
	if err != nil {
		return nil, nil, err
	}
	rec, err := s.textBatch(schema, rows)
	if err != nil {
		return nil, nil, toStatus(err)
	}
	return schema, oneBatch(rec), nil
}

// GetFlightInfoCatalogs describes the catalogs: the session's database.
func (s *Server) GetFlightInfoCatalogs(_ context.Context, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	return s.metaInfo(desc, schema_ref.Catalogs)
}

// DoGetCatalogs lists the session's database.
func (s *Server) DoGetCatalogs(ctx context.Context) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	return s.metaGet(ctx, schema_ref.Catalogs, `SELECT current_database()`)
}

// GetFlightInfoSchemas describes the schemas.
func (s *Server) GetFlightInfoSchemas(_ context.Context, _ flightsql.GetDBSchemas, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	return s.metaInfo(desc, schema_ref.DBSchemas)
}

// DoGetDBSchemas lists the schemas the role may use.
func (s *Server) DoGetDBSchemas(ctx context.Context, cmd flightsql.GetDBSchemas) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	return s.metaGet(ctx, schema_ref.DBSchemas, `
SELECT current_database(), nspname FROM pg_namespace
WHERE has_schema_privilege(oid, 'USAGE')
  AND ($1::text IS NULL OR $1 = current_database())
  AND ($2::text IS NULL OR nspname LIKE $2)
  AND nspname NOT LIKE 'pg\_toast%' AND nspname NOT LIKE 'pg\_temp\_%'
ORDER BY nspname`, cmd.GetCatalog(), cmd.GetDBSchemaFilterPattern())
}

// tableTypes are the table types of GetTables: mirrors and columnstore
// tables are "TABLE", like heap tables; other foreign tables "FOREIGN TABLE".
const tableTypeSQL = `CASE
  WHEN c.relkind IN ('r', 'p') THEN 'TABLE'
  WHEN c.relkind = 'v' THEN 'VIEW'
  WHEN c.relkind = 'm' THEN 'MATERIALIZED VIEW'
  WHEN c.relkind = 'f' AND EXISTS (SELECT FROM pg_foreign_table ft JOIN pg_foreign_server fs ON fs.oid = ft.ftserver
      WHERE ft.ftrelid = c.oid AND fs.srvname = 'mooncake') THEN 'TABLE'
  ELSE 'FOREIGN TABLE' END`

// GetFlightInfoTables describes the tables.
func (s *Server) GetFlightInfoTables(_ context.Context, cmd flightsql.GetTables, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	if cmd.GetIncludeSchema() {
		return s.metaInfo(desc, schema_ref.TablesWithIncludedSchema)
	}
	return s.metaInfo(desc, schema_ref.Tables)
}

// DoGetTables lists the relations the role may read, with their Arrow
// schemas when asked.
func (s *Server) DoGetTables(ctx context.Context, cmd flightsql.GetTables) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	sess, err := s.session(ctx)
	if err != nil {
		return nil, nil, err
	}
	var types *string
	if tt := cmd.GetTableTypes(); len(tt) > 0 {
		v := "{"
		for i, t := range tt {
			if i > 0 {
				v += ","
			}
			v += `"` + t + `"`
		}
		v += "}"
		types = &v
	}
	rows, err := s.queryText(ctx, sess, `
SELECT * FROM (
  SELECT current_database(), n.nspname, c.relname, `+tableTypeSQL+` AS table_type, c.oid::text
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
    AND has_schema_privilege(n.oid, 'USAGE')
    AND (has_table_privilege(c.oid, 'SELECT') OR has_any_column_privilege(c.oid, 'SELECT'))
    AND NOT c.relispartition
    AND ($1::text IS NULL OR $1 = current_database())
    AND ($2::text IS NULL OR n.nspname LIKE $2)
    AND ($3::text IS NULL OR c.relname LIKE $3)
) t WHERE $4::text[] IS NULL OR table_type = ANY ($4::text[])
ORDER BY 4, 2, 3`, cmd.GetCatalog(), cmd.GetDBSchemaFilterPattern(), cmd.GetTableNameFilterPattern(), types)
	if err != nil {
		return nil, nil, err
	}
	schema := schema_ref.Tables
	if cmd.GetIncludeSchema() {
		schema = schema_ref.TablesWithIncludedSchema
		for _, row := range rows {
			cols, err := s.queryText(ctx, sess, `
SELECT attname, atttypid::text, atttypmod::text FROM pg_attribute
WHERE attrelid = $1::text::oid AND attnum > 0 AND NOT attisdropped
  AND has_column_privilege(attrelid, attnum, 'SELECT')
ORDER BY attnum`, row[4])
			if err != nil {
				return nil, nil, err
			}
			fields := make([]arrow.Field, len(cols))
			for i, c := range cols {
				oid, _ := strconv.ParseUint(*c[1], 10, 32)
				mod, _ := strconv.ParseInt(*c[2], 10, 32)
				fields[i] = field(*c[0], uint32(oid), int32(mod))
			}
			ser := string(flight.SerializeSchema(arrow.NewSchema(fields, nil), s.mem))
			row[4] = &ser
		}
	} else {
		for i := range rows {
			rows[i] = rows[i][:4]
		}
	}
	rec, err := s.textBatch(schema, rows)
	if err != nil {
		return nil, nil, toStatus(err)
	}
	return schema, oneBatch(rec), nil
}

// GetFlightInfoTableTypes describes the table types.
func (s *Server) GetFlightInfoTableTypes(_ context.Context, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	return s.metaInfo(desc, schema_ref.TableTypes)
}

// DoGetTableTypes lists the table types GetTables reports.
func (s *Server) DoGetTableTypes(context.Context) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	rows := [][]*string{}
	for _, t := range []string{"FOREIGN TABLE", "MATERIALIZED VIEW", "TABLE", "VIEW"} {
		rows = append(rows, []*string{&t})
	}
	rec, err := s.textBatch(schema_ref.TableTypes, rows)
	if err != nil {
		return nil, nil, err
	}
	return schema_ref.TableTypes, oneBatch(rec), nil
}

// GetFlightInfoPrimaryKeys describes a table's key.
func (s *Server) GetFlightInfoPrimaryKeys(_ context.Context, _ flightsql.TableRef, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	return s.metaInfo(desc, schema_ref.PrimaryKeys)
}

// DoGetPrimaryKeys lists a table's primary key; a mirror's is its
// source's (its primary key, or else its replica identity index).
func (s *Server) DoGetPrimaryKeys(ctx context.Context, ref flightsql.TableRef) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	table := ref.Table
	return s.metaGet(ctx, schema_ref.PrimaryKeys, `
WITH t AS (
  SELECT c.oid, n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relname = $3 AND ($2::text IS NULL OR n.nspname = $2) AND ($1::text IS NULL OR $1 = current_database())
    AND (has_table_privilege(c.oid, 'SELECT') OR has_any_column_privilege(c.oid, 'SELECT'))
), keyed AS (
  SELECT t.nspname, t.relname, coalesce(
    (SELECT d.refobjid FROM pg_depend d JOIN pg_foreign_table ft ON ft.ftrelid = d.objid
       JOIN pg_foreign_server fs ON fs.oid = ft.ftserver AND fs.srvname = 'mooncake'
     WHERE d.classid = 'pg_class'::regclass AND d.objid = t.oid AND d.objsubid = 0
       AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid = 0 AND d.deptype = 'n'
     LIMIT 1),
    t.oid) AS keyrel
  FROM t
), idx AS (
  SELECT k.nspname, k.relname, k.keyrel, i.indexrelid, i.indkey
  FROM keyed k JOIN LATERAL (
    SELECT * FROM pg_index i WHERE i.indrelid = k.keyrel AND (i.indisprimary OR i.indisreplident)
    ORDER BY i.indisprimary DESC LIMIT 1) i ON true
)
SELECT current_database(), idx.nspname, idx.relname, a.attname, u.ord::int::text, ic.relname
FROM idx JOIN pg_class ic ON ic.oid = idx.indexrelid
  CROSS JOIN LATERAL unnest(idx.indkey::int2[]) WITH ORDINALITY AS u(attnum, ord)
  JOIN pg_attribute a ON a.attrelid = idx.keyrel AND a.attnum = u.attnum
ORDER BY 2, 3, 5`, ref.Catalog, ref.DBSchema, &table)
}
