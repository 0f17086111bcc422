package flight

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pgmooncake/mooncake/catalog"
)

// Bulk ingest (CommandStatementIngest; ADBC's adbc_ingest) appends the
// client's record batches to a table, creating it first if asked, in one
// transaction on the session's connection, as its role: PostgreSQL checks
// the privileges (CREATE on the schema, INSERT on the table, ownership to
// replace one). The rows go in with COPY ... FROM STDIN (FORMAT binary),
// each Arrow value converted to what the column's own type takes. Any
// error (a value the column cannot hold, a constraint, the client going
// away) rolls back everything, including a table the ingest created or
// dropped.
//
// A table the ingest creates is a columnstore table (CREATE TABLE ...
// USING columnstore) whose columns are ingestColumnType's mapping of the
// Arrow schema. Appending maps the batch's fields to the table's columns
// by name (exactly, else the one column that matches ignoring case);
// columns without a field get their defaults.

// DoPutCommandStatementIngest ingests the batches the client sends; it
// returns the number of rows ingested (0 on error: nothing is kept).
func (s *Server) DoPutCommandStatementIngest(ctx context.Context, cmd flightsql.StatementIngest, r flight.MessageReader) (int64, error) {
	sess, err := s.session(ctx)
	if err != nil {
		return 0, err
	}
	n, err := s.ingest(ctx, sess, cmd, r)
	if err != nil {
		return 0, ingestStatus(err)
	}
	return n, nil
}

// pgStatus is an error of the service's own with a SQLSTATE, as
// PostgreSQL's errors reach clients.
func pgStatus(code codes.Code, sqlstate, format string, args ...any) error {
	return withSQLState(code, &pgconn.PgError{Severity: "ERROR", Code: sqlstate, Message: fmt.Sprintf(format, args...)})
}

// ingestStatus is an ingest's error as a status: as toStatus, except that
// a table that exists (42P07) is ALREADY_EXISTS and one that does not
// (42P01, or its schema, 3F000) NOT_FOUND.
func ingestStatus(err error) error {
	var pgErr *pgconn.PgError
	if _, ok := status.FromError(err); !ok && errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "42P07":
			return withSQLState(codes.AlreadyExists, pgErr)
		case "42P01", "3F000":
			return withSQLState(codes.NotFound, pgErr)
		}
	}
	return toStatus(err)
}

func (s *Server) ingest(ctx context.Context, sess *session, cmd flightsql.StatementIngest, r flight.MessageReader) (int64, error) {
	opts := cmd.GetTableDefinitionOptions()
	switch {
	case cmd.GetTable() == "":
		return 0, status.Error(codes.InvalidArgument, "bulk ingest needs a table name")
	case opts == nil:
		return 0, status.Error(codes.InvalidArgument, "bulk ingest needs table definition options (what to do if the table exists, and if it does not)")
	case opts.IfNotExist == flightsql.TableDefinitionOptionsTableNotExistOptionUnspecified,
		opts.IfExists == flightsql.TableDefinitionOptionsTableExistsOptionUnspecified:
		return 0, status.Error(codes.InvalidArgument, "bulk ingest: say what to do if the table exists and if it does not (ADBC's modes create, append, replace, create_append)")
	case len(cmd.GetTransactionId()) > 0:
		return 0, status.Error(codes.InvalidArgument, "bulk ingest: the service has no transactions; each ingest is a transaction of its own")
	case cmd.GetTemporary():
		return 0, pgStatus(codes.Unimplemented, "0A000",
			"bulk ingest into a temporary table is not supported: the tables it creates are columnstore tables, which cannot be temporary")
	}
	schema := r.Schema()
	if schema == nil {
		return 0, status.Error(codes.InvalidArgument, "bulk ingest: the stream has no schema")
	}

	c, err := sess.pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Release()
	conn := c.Conn()

	if cat := cmd.GetCatalog(); cat != "" {
		var db string
		if err := conn.QueryRow(ctx, `SELECT current_database()`).Scan(&db); err != nil {
			return 0, err
		}
		if cat != db {
			return 0, pgStatus(codes.InvalidArgument, "0A000",
				"bulk ingest into catalog %q: this session is connected to database %q; name the database in the Handshake's database header", cat, db)
		}
	}
	name := pgx.Identifier{cmd.GetTable()}
	if sch := cmd.GetSchema(); sch != "" {
		name = pgx.Identifier{sch, cmd.GetTable()}
	}
	qname := name.Sanitize()

	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))

	var relid *uint32
	if err := tx.QueryRow(ctx, `SELECT to_regclass($1)::oid`, qname).Scan(&relid); err != nil {
		return 0, err
	}
	create := relid == nil
	if relid != nil {
		switch opts.IfExists {
		case flightsql.TableDefinitionOptionsTableExistsOptionFail:
			return 0, pgStatus(codes.AlreadyExists, "42P07", "relation %s already exists", qname)
		case flightsql.TableDefinitionOptionsTableExistsOptionReplace:
			if _, err := tx.Exec(ctx, `DROP TABLE `+qname); err != nil {
				return 0, err
			}
			create = true
		}
	} else if opts.IfNotExist == flightsql.TableDefinitionOptionsTableNotExistOptionFail {
		return 0, pgStatus(codes.NotFound, "42P01", "relation %s does not exist", qname)
	}
	if create {
		ddl, err := createTableSQL(qname, schema)
		if err != nil {
			return 0, err
		}
		if _, err := tx.Exec(ctx, ddl); err != nil {
			return 0, err
		}
		if err := tx.QueryRow(ctx, `SELECT $1::regclass::oid`, qname).Scan(&relid); err != nil {
			return 0, err
		}
	}

	cols, err := tableColumns(ctx, tx, *relid)
	if err != nil {
		return 0, err
	}
	src, names, err := newIngestSource(r, schema, cols, conn.TypeMap())
	if err != nil {
		return 0, err
	}
	n, err := tx.CopyFrom(ctx, name, names, src)
	if err != nil {
		if src.err != nil {
			return 0, src.err // the cause; PostgreSQL only saw the COPY fail
		}
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	return n, nil
}

// createTableSQL is the CREATE TABLE ... USING columnstore of an Arrow
// schema.
func createTableSQL(qname string, schema *arrow.Schema) (string, error) {
	if schema.NumFields() == 0 {
		return "", pgStatus(codes.InvalidArgument, "0A000", "bulk ingest: the batches have no columns to create table %s with", qname)
	}
	var b strings.Builder
	b.WriteString("CREATE TABLE " + qname + " (")
	for i, f := range schema.Fields() {
		typ, err := ingestColumnType(f.Type)
		if err != nil {
			return "", pgStatus(codes.Unimplemented, "0A000", "column %q: %v", f.Name, err)
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pgx.Identifier{f.Name}.Sanitize() + " " + typ)
	}
	b.WriteString(") USING columnstore")
	return b.String(), nil
}

// ingestColumnType is the PostgreSQL column type a created table gives an
// Arrow field of type dt:
//
//   - int8, int16: smallint; int32: integer; int64: bigint; uint8:
//     smallint; uint16: integer; uint32: bigint; uint64: numeric(20,0).
//   - float16, float32: real; float64: double precision. bool: boolean.
//   - utf8, large_utf8, utf8_view: text; binary, large_binary,
//     binary_view, fixed_size_binary: bytea.
//   - date32, date64: date; timestamp without a time zone: timestamp,
//     with one: timestamptz (any unit; nanoseconds are truncated to
//     microseconds); time32, time64: time.
//   - decimal128(p,s), decimal256(p,s): numeric(p,s).
//   - the arrow.uuid extension: uuid; arrow.json: jsonb; other extension
//     types: their storage type's.
//   - list, large_list, fixed_size_list of a type above: an array of its
//     type (lists of lists have none: PostgreSQL's arrays are not nested).
//   - dictionary: its value type's.
//
// Any other type (null, intervals, durations, structs, maps, unions, ...)
// is an error naming it.
func ingestColumnType(dt arrow.DataType) (string, error) {
	switch t := dt.(type) {
	case *arrow.Int8Type, *arrow.Int16Type, *arrow.Uint8Type:
		return "smallint", nil
	case *arrow.Int32Type, *arrow.Uint16Type:
		return "integer", nil
	case *arrow.Int64Type, *arrow.Uint32Type:
		return "bigint", nil
	case *arrow.Uint64Type:
		return "numeric(20,0)", nil
	case *arrow.Float16Type, *arrow.Float32Type:
		return "real", nil
	case *arrow.Float64Type:
		return "double precision", nil
	case *arrow.BooleanType:
		return "boolean", nil
	case *arrow.StringType, *arrow.LargeStringType, *arrow.StringViewType:
		return "text", nil
	case *arrow.BinaryType, *arrow.LargeBinaryType, *arrow.BinaryViewType, *arrow.FixedSizeBinaryType:
		return "bytea", nil
	case *arrow.Date32Type, *arrow.Date64Type:
		return "date", nil
	case *arrow.TimestampType:
		if t.TimeZone != "" {
			return "timestamptz", nil
		}
		return "timestamp", nil
	case *arrow.Time32Type, *arrow.Time64Type:
		return "time", nil
	case *arrow.Decimal128Type:
		return fmt.Sprintf("numeric(%d,%d)", t.Precision, t.Scale), nil
	case *arrow.Decimal256Type:
		return fmt.Sprintf("numeric(%d,%d)", t.Precision, t.Scale), nil
	case arrow.ExtensionType:
		switch t.ExtensionName() {
		case "arrow.uuid":
			return "uuid", nil
		case "arrow.json":
			return "jsonb", nil
		}
		return ingestColumnType(t.StorageType())
	case *arrow.DictionaryType:
		return ingestColumnType(t.ValueType)
	case arrow.ListLikeType:
		elem := t.Elem()
		if _, nested := elem.(arrow.ListLikeType); nested {
			return "", fmt.Errorf("Arrow type %s has no PostgreSQL type: arrays of arrays are not lists of lists", dt)
		}
		if ext, ok := elem.(arrow.ExtensionType); ok {
			if _, nested := ext.StorageType().(arrow.ListLikeType); nested {
				return "", fmt.Errorf("Arrow type %s has no PostgreSQL type: arrays of arrays are not lists of lists", dt)
			}
		}
		et, err := ingestColumnType(elem)
		if err != nil {
			return "", fmt.Errorf("Arrow type %s: %w", dt, err)
		}
		return et + "[]", nil
	case *arrow.NullType:
		return "", fmt.Errorf("Arrow type null (every value is NULL) says nothing of the column's type: create the table first, or send a typed column")
	}
	return "", fmt.Errorf("Arrow type %s has no PostgreSQL type that bulk ingest creates", dt)
}

// ingestCol is a column of the target table: its type, a domain's base
// type, and an array's element type.
type ingestCol struct {
	name     string
	oid      uint32 // pg_attribute.atttypid (a domain's own OID)
	typeName string // format_type
	base     uint32 // the type values are converted for: a domain's base type
	typmod   int32
	baseKind string // pg_type.typtype of base: b, e, ...
	elem     uint32 // base's element type, for an array type; else 0
	elemKind string
}

func tableColumns(ctx context.Context, tx pgx.Tx, relid uint32) ([]ingestCol, error) {
	rows, err := tx.Query(ctx, `
		SELECT a.attname::text, a.atttypid::oid, format_type(a.atttypid, a.atttypmod),
			bt.oid, CASE WHEN t.typbasetype <> 0 THEN t.typtypmod ELSE a.atttypmod END,
			bt.typtype::text, CASE WHEN bt.typcategory = 'A' THEN bt.typelem ELSE 0 END::oid,
			coalesce(et.typtype::text, '')
		FROM pg_attribute a
		JOIN pg_type t ON t.oid = a.atttypid
		JOIN pg_type bt ON bt.oid = CASE WHEN t.typbasetype <> 0 THEN t.typbasetype ELSE t.oid END
		LEFT JOIN pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
		ORDER BY a.attnum`, relid)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (ingestCol, error) {
		var c ingestCol
		err := row.Scan(&c.name, &c.oid, &c.typeName, &c.base, &c.typmod, &c.baseKind, &c.elem, &c.elemKind)
		return c, err
	})
}

// ingestSource feeds COPY the rows of the client's batches, converted.
type ingestSource struct {
	r        flight.MessageReader
	schema   *arrow.Schema
	rec      arrow.RecordBatch
	row      int // in rec
	seen     int64
	fieldIdx []int
	cols     []ingestCol
	conv     []valueConv
	vals     []any
	err      error // why the source stopped, if it did on an error
}

// valueConv converts the non-null value i of an Arrow array to a value
// pgx encodes for the column.
type valueConv func(a arrow.Array, i int) (any, error)

func newIngestSource(r flight.MessageReader, schema *arrow.Schema, cols []ingestCol, tm *pgtype.Map) (*ingestSource, []string, error) {
	src := &ingestSource{r: r, schema: schema, row: -1}
	var names []string
	used := map[int]bool{}
	for fi, f := range schema.Fields() {
		ci := -1
		for j, c := range cols {
			if c.name == f.Name {
				ci = j
				break
			}
		}
		if ci < 0 {
			for j, c := range cols {
				if strings.EqualFold(c.name, f.Name) {
					if ci >= 0 {
						return nil, nil, pgStatus(codes.InvalidArgument, "42703", "field %q matches columns %q and %q, which differ only in case", f.Name, cols[ci].name, c.name)
					}
					ci = j
				}
			}
		}
		if ci < 0 {
			return nil, nil, pgStatus(codes.InvalidArgument, "42703", "field %q of the batches has no column in the table", f.Name)
		}
		if used[ci] {
			return nil, nil, pgStatus(codes.InvalidArgument, "42701", "column %q is given twice", cols[ci].name)
		}
		used[ci] = true
		c := cols[ci]
		if err := registerType(tm, c); err != nil {
			return nil, nil, err
		}
		conv, err := converter(f.Type, c)
		if err != nil {
			var ce *convError
			if errors.As(err, &ce) {
				return nil, nil, pgStatus(codes.InvalidArgument, ce.sqlstate, "%s", ce.msg)
			}
			return nil, nil, err
		}
		src.fieldIdx = append(src.fieldIdx, fi)
		src.cols = append(src.cols, c)
		src.conv = append(src.conv, conv)
		names = append(names, c.name)
	}
	src.vals = make([]any, len(names))
	return src, names, nil
}

// registerType teaches pgx a domain (as its base type) and an enum (its
// binary form is its label).
func registerType(tm *pgtype.Map, c ingestCol) error {
	if c.baseKind == "e" {
		if _, ok := tm.TypeForOID(c.base); !ok {
			tm.RegisterType(&pgtype.Type{Name: c.typeName, OID: c.base, Codec: &pgtype.EnumCodec{}})
		}
	}
	if c.elem != 0 && c.elemKind == "e" {
		if _, ok := tm.TypeForOID(c.elem); !ok {
			tm.RegisterType(&pgtype.Type{Name: "enum", OID: c.elem, Codec: &pgtype.EnumCodec{}})
		}
		et, _ := tm.TypeForOID(c.elem)
		tm.RegisterType(&pgtype.Type{Name: c.typeName, OID: c.base, Codec: &pgtype.ArrayCodec{ElementType: et}})
	}
	if c.oid != c.base {
		bt, ok := tm.TypeForOID(c.base)
		if !ok {
			return unwritable(c)
		}
		tm.RegisterType(&pgtype.Type{Name: c.typeName, OID: c.oid, Codec: bt.Codec})
	}
	return nil
}

func unwritable(c ingestCol) error {
	return pgStatus(codes.Unimplemented, "0A000", "column %q is of type %s, which bulk ingest cannot write", c.name, c.typeName)
}

func (s *ingestSource) Next() bool {
	if s.err != nil {
		return false
	}
	s.row++
	for s.rec == nil || s.row >= int(s.rec.NumRows()) {
		if !s.r.Next() {
			if err := s.r.Err(); err != nil {
				s.err = toStatus(err)
			}
			return false
		}
		s.rec = s.r.RecordBatch()
		s.row = 0
		if !s.rec.Schema().Equal(s.schema) {
			s.err = status.Errorf(codes.InvalidArgument, "bulk ingest: a batch's schema %s differs from the stream's %s", s.rec.Schema(), s.schema)
			return false
		}
	}
	s.seen++
	return true
}

func (s *ingestSource) Values() ([]any, error) {
	for j, fi := range s.fieldIdx {
		col := s.rec.Column(fi)
		if col.DataType().ID() == arrow.NULL || col.IsNull(s.row) {
			s.vals[j] = nil
			continue
		}
		v, err := s.conv[j](col, s.row)
		if err != nil {
			code, sqlstate := codes.InvalidArgument, "22000"
			var ce *convError
			if errors.As(err, &ce) {
				sqlstate = ce.sqlstate
			}
			s.err = pgStatus(code, sqlstate, "%v (row %d of the batches, column %q)", err, s.seen, s.cols[j].name)
			return nil, s.err
		}
		s.vals[j] = v
	}
	return s.vals, nil
}

func (s *ingestSource) Err() error { return s.err }

func outOfRangeErr(format string, args ...any) error { return convErr("22003", format, args...) }

func mismatchErr(format string, args ...any) error { return convErr("42804", format, args...) }

// Categories of the column types bulk ingest writes.
const (
	tInt = iota
	tFloat
	tNumeric
	tBool
	tText
	tBytea
	tDate
	tTimestamp
	tTime
	tUUID
	tJSON
)

func typeClass(oid uint32, kind string) (int, bool) {
	if kind == "e" {
		return tText, true
	}
	switch oid {
	case catalog.OIDInt2, catalog.OIDInt4, catalog.OIDInt8:
		return tInt, true
	case catalog.OIDFloat4, catalog.OIDFloat8:
		return tFloat, true
	case catalog.OIDNumeric:
		return tNumeric, true
	case catalog.OIDBool:
		return tBool, true
	case catalog.OIDText, catalog.OIDVarchar, catalog.OIDBpchar, 19: // 19: name
		return tText, true
	case catalog.OIDBytea:
		return tBytea, true
	case catalog.OIDDate:
		return tDate, true
	case catalog.OIDTimestamp, catalog.OIDTimestampTZ:
		return tTimestamp, true
	case catalog.OIDTime:
		return tTime, true
	case catalog.OIDUUID:
		return tUUID, true
	case oidJSON, oidJSONB:
		return tJSON, true
	}
	return 0, false
}

// converter is the conversion of an Arrow type's values to a column's.
func converter(dt arrow.DataType, c ingestCol) (valueConv, error) {
	if c.elem != 0 {
		class, ok := typeClass(c.elem, c.elemKind)
		if !ok {
			return nil, unwritable(c)
		}
		if _, isList := storageType(dt).(arrow.ListLikeType); !isList && dt.ID() != arrow.NULL {
			return nil, mismatchErr("column %q is of type %s: Arrow type %s is not a list", c.name, c.typeName, dt)
		}
		return func(a arrow.Array, i int) (any, error) {
			v, err := arrowValue(a, i)
			if err != nil {
				return nil, err
			}
			list, ok := v.([]any)
			if !ok {
				return nil, mismatchErr("column %q is of type %s: Arrow type %s is not a list", c.name, c.typeName, dt)
			}
			out := make(pgtype.FlatArray[any], len(list))
			for k, e := range list {
				if e == nil {
					continue
				}
				if out[k], err = toColumn(e, class, c.elem, c); err != nil {
					return nil, err
				}
			}
			return out, nil
		}, nil
	}
	class, ok := typeClass(c.base, c.baseKind)
	if !ok {
		return nil, unwritable(c)
	}
	if class == tText {
		if !isStringLike(dt) {
			// any other value as its text, which the column's input reads
			return func(a arrow.Array, i int) (any, error) { return paramText(a, i) }, nil
		}
	}
	return func(a arrow.Array, i int) (any, error) {
		v, err := arrowValue(a, i)
		if err != nil {
			return nil, err
		}
		return toColumn(v, class, c.base, c)
	}, nil
}

func storageType(dt arrow.DataType) arrow.DataType {
	switch t := dt.(type) {
	case arrow.ExtensionType:
		return storageType(t.StorageType())
	case *arrow.DictionaryType:
		return storageType(t.ValueType)
	}
	return dt
}

func isStringLike(dt arrow.DataType) bool {
	if ext, ok := dt.(arrow.ExtensionType); ok && ext.ExtensionName() == "arrow.json" {
		return true
	}
	switch storageType(dt).(type) {
	case *arrow.StringType, *arrow.LargeStringType, *arrow.StringViewType:
		return true
	}
	return false
}

// The values arrowValue reads, besides int64, uint64 (above int64's
// range), float32, float64, bool, string, []byte and []any (a list, nil
// for a NULL element).
type (
	decimalValue struct {
		v     *big.Int
		scale int32
	}
	dateValue struct {
		days int64
		inf  pgtype.InfinityModifier
	}
	timestampValue struct {
		us  int64 // since 1970-01-01 00:00 UTC
		inf pgtype.InfinityModifier
	}
	timeValue int64 // microseconds since midnight
	uuidValue [16]byte
	jsonValue string
)

// arrowValue reads the non-null value i of a.
func arrowValue(a arrow.Array, i int) (any, error) {
	switch a := a.(type) {
	case *array.Boolean:
		return a.Value(i), nil
	case *array.Int8:
		return int64(a.Value(i)), nil
	case *array.Int16:
		return int64(a.Value(i)), nil
	case *array.Int32:
		return int64(a.Value(i)), nil
	case *array.Int64:
		return a.Value(i), nil
	case *array.Uint8:
		return int64(a.Value(i)), nil
	case *array.Uint16:
		return int64(a.Value(i)), nil
	case *array.Uint32:
		return int64(a.Value(i)), nil
	case *array.Uint64:
		if v := a.Value(i); v > math.MaxInt64 {
			return v, nil
		}
		return int64(a.Value(i)), nil
	case *array.Float16:
		return a.Value(i).Float32(), nil
	case *array.Float32:
		return a.Value(i), nil
	case *array.Float64:
		return a.Value(i), nil
	case *array.String:
		return a.Value(i), nil
	case *array.LargeString:
		return a.Value(i), nil
	case *array.StringView:
		return a.Value(i), nil
	case *array.Binary:
		return a.Value(i), nil
	case *array.LargeBinary:
		return a.Value(i), nil
	case *array.BinaryView:
		return a.Value(i), nil
	case *array.FixedSizeBinary:
		return a.Value(i), nil
	case *array.Decimal128:
		return decimalValue{a.Value(i).BigInt(), a.DataType().(*arrow.Decimal128Type).Scale}, nil
	case *array.Decimal256:
		return decimalValue{a.Value(i).BigInt(), a.DataType().(*arrow.Decimal256Type).Scale}, nil
	case *array.Date32:
		switch d := a.Value(i); d {
		case math.MaxInt32:
			return dateValue{inf: pgtype.Infinity}, nil
		case math.MinInt32:
			return dateValue{inf: pgtype.NegativeInfinity}, nil
		default:
			return dateValue{days: int64(d)}, nil
		}
	case *array.Date64:
		return dateValue{days: floorDiv(int64(a.Value(i)), 86_400_000)}, nil
	case *array.Timestamp:
		return timestampOf(int64(a.Value(i)), a.DataType().(*arrow.TimestampType).Unit)
	case *array.Time32:
		v := int64(a.Value(i))
		if a.DataType().(*arrow.Time32Type).Unit == arrow.Second {
			return timeValue(v * 1_000_000), nil
		}
		return timeValue(v * 1_000), nil
	case *array.Time64:
		v := int64(a.Value(i))
		if a.DataType().(*arrow.Time64Type).Unit == arrow.Nanosecond {
			return timeValue(floorDiv(v, 1_000)), nil
		}
		return timeValue(v), nil
	case array.ExtensionArray:
		switch a.ExtensionType().ExtensionName() {
		case "arrow.uuid":
			if fb, ok := a.Storage().(*array.FixedSizeBinary); ok && len(fb.Value(i)) == 16 {
				return uuidValue(fb.Value(i)), nil
			}
		case "arrow.json":
			v, err := arrowValue(a.Storage(), i)
			if s, ok := v.(string); ok {
				return jsonValue(s), nil
			}
			return v, err
		}
		return arrowValue(a.Storage(), i)
	case *array.Dictionary:
		return arrowValue(a.Dictionary(), a.GetValueIndex(i))
	case array.ListLike:
		start, end := a.ValueOffsets(i)
		elems := a.ListValues()
		out := make([]any, 0, end-start)
		for k := int(start); k < int(end); k++ {
			if elems.IsNull(k) || elems.DataType().ID() == arrow.NULL {
				out = append(out, nil)
				continue
			}
			v, err := arrowValue(elems, k)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, mismatchErr("values of Arrow type %s cannot be ingested", a.DataType())
}

// timestampOf is a timestamp in unit as microseconds (nanoseconds
// truncated); the largest and smallest int64 are ±infinity, as in the
// query results.
func timestampOf(v int64, unit arrow.TimeUnit) (any, error) {
	switch v {
	case math.MaxInt64:
		return timestampValue{inf: pgtype.Infinity}, nil
	case math.MinInt64:
		return timestampValue{inf: pgtype.NegativeInfinity}, nil
	}
	var mul int64
	switch unit {
	case arrow.Second:
		mul = 1_000_000
	case arrow.Millisecond:
		mul = 1_000
	case arrow.Microsecond:
		return timestampValue{us: v}, nil
	case arrow.Nanosecond:
		return timestampValue{us: floorDiv(v, 1_000)}, nil
	}
	if v > math.MaxInt64/mul || v < math.MinInt64/mul {
		return nil, convErr("22008", "timestamp %d %s is out of range", v, unit)
	}
	return timestampValue{us: v * mul}, nil
}

// toColumn converts a value arrowValue read to what pgx encodes for a
// column of type oid, of class class.
func toColumn(v any, class int, oid uint32, c ingestCol) (any, error) {
	bad := func() error {
		return mismatchErr("column %q is of type %s, which cannot hold the %s value %v", c.name, c.typeName, kindName(v), v)
	}
	switch class {
	case tInt:
		var n int64
		switch v := v.(type) {
		case int64:
			n = v
		case uint64:
			return nil, outOfRangeErr("value %d is out of range for column %q of type %s", v, c.name, c.typeName)
		case decimalValue:
			r, ok := integralDecimal(v)
			if !ok || !r.IsInt64() {
				return nil, outOfRangeErr("value %s is out of range for column %q of type %s (or not an integer)", decimalText(v), c.name, c.typeName)
			}
			n = r.Int64()
		default:
			return nil, bad()
		}
		switch oid {
		case catalog.OIDInt2:
			if n < math.MinInt16 || n > math.MaxInt16 {
				return nil, outOfRangeErr("value %d is out of range for column %q of type smallint", n, c.name)
			}
			return int16(n), nil
		case catalog.OIDInt4:
			if n < math.MinInt32 || n > math.MaxInt32 {
				return nil, outOfRangeErr("value %d is out of range for column %q of type integer", n, c.name)
			}
			return int32(n), nil
		}
		return n, nil
	case tFloat:
		var f float64
		switch v := v.(type) {
		case float32:
			if oid == catalog.OIDFloat4 {
				return v, nil
			}
			f = float64(v)
		case float64:
			f = v
		case int64:
			f = float64(v)
		case uint64:
			f = float64(v)
		case decimalValue:
			f, _ = strconv.ParseFloat(decimalText(v), 64)
		default:
			return nil, bad()
		}
		if oid == catalog.OIDFloat4 {
			if r := float32(f); math.IsInf(float64(r), 0) && !math.IsInf(f, 0) {
				return nil, outOfRangeErr("value %v is out of range for column %q of type real", f, c.name)
			}
			return float32(f), nil
		}
		return f, nil
	case tNumeric:
		switch v := v.(type) {
		case int64:
			return pgtype.Numeric{Int: big.NewInt(v), Valid: true}, nil
		case uint64:
			return pgtype.Numeric{Int: new(big.Int).SetUint64(v), Valid: true}, nil
		case decimalValue:
			return pgtype.Numeric{Int: v.v, Exp: -v.scale, Valid: true}, nil
		case float32:
			return floatNumeric(float64(v), 32), nil
		case float64:
			return floatNumeric(v, 64), nil
		}
		return nil, bad()
	case tBool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
		return nil, bad()
	case tText:
		switch v := v.(type) {
		case string:
			return v, nil
		case jsonValue:
			return string(v), nil
		}
		return nil, bad()
	case tBytea:
		if b, ok := v.([]byte); ok {
			if b == nil {
				b = []byte{} // an empty value, not NULL
			}
			return b, nil
		}
		if u, ok := v.(uuidValue); ok {
			return u[:], nil
		}
		return nil, bad()
	case tDate:
		if d, ok := v.(dateValue); ok {
			if d.inf != 0 {
				return pgtype.Date{InfinityModifier: d.inf, Valid: true}, nil
			}
			return pgtype.Date{Time: time.Unix(d.days*86400, 0).UTC(), Valid: true}, nil
		}
		return nil, bad()
	case tTimestamp:
		var ts timestampValue
		switch v := v.(type) {
		case timestampValue:
			ts = v
		case dateValue:
			ts = timestampValue{us: v.days * 86_400_000_000, inf: v.inf}
		default:
			return nil, bad()
		}
		t := time.UnixMicro(ts.us).UTC()
		if oid == catalog.OIDTimestampTZ {
			return pgtype.Timestamptz{Time: t, InfinityModifier: ts.inf, Valid: true}, nil
		}
		return pgtype.Timestamp{Time: t, InfinityModifier: ts.inf, Valid: true}, nil
	case tTime:
		if t, ok := v.(timeValue); ok {
			if t < 0 || t > 86_400_000_000 {
				return nil, convErr("22008", "time of day %d µs is out of range for column %q", int64(t), c.name)
			}
			return pgtype.Time{Microseconds: int64(t), Valid: true}, nil
		}
		return nil, bad()
	case tUUID:
		switch v := v.(type) {
		case uuidValue:
			return pgtype.UUID{Bytes: v, Valid: true}, nil
		case []byte:
			if len(v) == 16 {
				return pgtype.UUID{Bytes: [16]byte(v), Valid: true}, nil
			}
		case string:
			var u pgtype.UUID
			if err := u.Scan(v); err != nil {
				return nil, convErr("22P02", "invalid input syntax for type uuid: %q (column %q)", v, c.name)
			}
			return u, nil
		}
		return nil, bad()
	case tJSON:
		switch v := v.(type) {
		case jsonValue:
			return string(v), nil
		case string:
			return v, nil
		}
		return nil, bad()
	}
	return nil, bad()
}

func kindName(v any) string {
	switch v.(type) {
	case int64, uint64:
		return "integer"
	case float32, float64:
		return "floating-point"
	case decimalValue:
		return "decimal"
	case bool:
		return "boolean"
	case string:
		return "string"
	case []byte:
		return "binary"
	case dateValue:
		return "date"
	case timestampValue:
		return "timestamp"
	case timeValue:
		return "time"
	case uuidValue:
		return "uuid"
	case jsonValue:
		return "JSON"
	case []any:
		return "list"
	}
	return fmt.Sprintf("%T", v)
}

// integralDecimal is a decimal's value if it is an integer.
func integralDecimal(d decimalValue) (*big.Int, bool) {
	if d.scale <= 0 {
		return new(big.Int).Mul(d.v, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-d.scale)), nil)), true
	}
	q, r := new(big.Int).QuoRem(d.v, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d.scale)), nil), new(big.Int))
	return q, r.Sign() == 0
}

func decimalText(d decimalValue) string {
	n := pgtype.Numeric{Int: d.v, Exp: -d.scale, Valid: true}
	v, _ := n.Value()
	s, _ := v.(string)
	return s
}

// floatNumeric is a float as a numeric: its shortest exact decimal text
// (0.1 is 0.1, not 0.1000000000000000055511151231257827), NaN and
// ±Infinity as numeric's.
func floatNumeric(f float64, bits int) pgtype.Numeric {
	switch {
	case math.IsNaN(f):
		return pgtype.Numeric{NaN: true, Valid: true}
	case math.IsInf(f, 1):
		return pgtype.Numeric{InfinityModifier: pgtype.Infinity, Valid: true}
	case math.IsInf(f, -1):
		return pgtype.Numeric{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
	}
	s := strconv.FormatFloat(f, 'f', -1, bits)
	var exp int32
	if dot := strings.IndexByte(s, '.'); dot >= 0 {
		exp = -int32(len(s) - dot - 1)
		s = s[:dot] + s[dot+1:]
	}
	n, _ := new(big.Int).SetString(s, 10)
	return pgtype.Numeric{Int: n, Exp: exp, Valid: true}
}
