package flight

import (
	"context"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql/schema_ref"
)

// xdbcType describes a PostgreSQL type for GetXdbcTypeInfo.
type xdbcType struct {
	name       string
	dataType   int32 // XDBC (ODBC/JDBC) type code
	columnSize int32 // 0: none
	prefix     string
	params     []string
	caseSens   bool
	fixedScale bool
	sqlType    int32 // the verbose type (9 for date and time types)
	subcode    int32 // date 1, time 2, timestamp 3; 0: none
	radix      int32 // 0: none
}

// The types a client most often maps; their codes are XDBC's.
var xdbcTypes = []xdbcType{
	{name: "boolean", dataType: -7, columnSize: 1, sqlType: -7},
	{name: "smallint", dataType: 5, columnSize: 5, sqlType: 5, radix: 10},
	{name: "integer", dataType: 4, columnSize: 10, sqlType: 4, radix: 10},
	{name: "bigint", dataType: -5, columnSize: 19, sqlType: -5, radix: 10},
	{name: "real", dataType: 7, columnSize: 24, sqlType: 7, radix: 2},
	{name: "double precision", dataType: 8, columnSize: 53, sqlType: 8, radix: 2},
	{name: "numeric", dataType: 2, columnSize: 1000, params: []string{"precision", "scale"}, fixedScale: true, sqlType: 2, radix: 10},
	{name: "character", dataType: 1, columnSize: 10485760, prefix: "'", params: []string{"length"}, caseSens: true, sqlType: 1},
	{name: "character varying", dataType: 12, columnSize: 10485760, prefix: "'", params: []string{"length"}, caseSens: true, sqlType: 12},
	{name: "text", dataType: -1, prefix: "'", caseSens: true, sqlType: -1},
	{name: "bytea", dataType: -3, prefix: "'\\x", sqlType: -3},
	{name: "date", dataType: 91, columnSize: 10, prefix: "DATE '", sqlType: 9, subcode: 1},
	{name: "time without time zone", dataType: 92, columnSize: 15, prefix: "TIME '", params: []string{"precision"}, sqlType: 9, subcode: 2},
	{name: "timestamp without time zone", dataType: 93, columnSize: 26, prefix: "TIMESTAMP '", params: []string{"precision"}, sqlType: 9, subcode: 3},
	{name: "timestamp with time zone", dataType: 93, columnSize: 35, prefix: "TIMESTAMPTZ '", params: []string{"precision"}, sqlType: 9, subcode: 3},
	{name: "uuid", dataType: 1, columnSize: 36, prefix: "'", sqlType: 1},
	{name: "json", dataType: 12, prefix: "'", caseSens: true, sqlType: 12},
	{name: "jsonb", dataType: 12, prefix: "'", caseSens: true, sqlType: 12},
}

// GetFlightInfoXdbcTypeInfo describes the type information.
func (s *Server) GetFlightInfoXdbcTypeInfo(_ context.Context, _ flightsql.GetXdbcTypeInfo, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	return s.metaInfo(desc, schema_ref.XdbcTypeInfo)
}

// DoGetXdbcTypeInfo lists the types (of one XDBC code, when asked).
func (s *Server) DoGetXdbcTypeInfo(_ context.Context, cmd flightsql.GetXdbcTypeInfo) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	b := array.NewRecordBuilder(s.mem, schema_ref.XdbcTypeInfo)
	defer b.Release()
	optInt := func(i int, v int32) {
		if v == 0 {
			b.Field(i).AppendNull()
		} else {
			b.Field(i).(*array.Int32Builder).Append(v)
		}
	}
	optStr := func(i int, v string) {
		if v == "" {
			b.Field(i).AppendNull()
		} else {
			b.Field(i).(*array.StringBuilder).Append(v)
		}
	}
	for _, t := range xdbcTypes {
		if dt := cmd.GetDataType(); dt != nil && *dt != t.dataType {
			continue
		}
		b.Field(0).(*array.StringBuilder).Append(t.name)
		b.Field(1).(*array.Int32Builder).Append(t.dataType)
		optInt(2, t.columnSize)
		optStr(3, t.prefix)
		if t.prefix != "" {
			b.Field(4).(*array.StringBuilder).Append("'")
		} else {
			b.Field(4).AppendNull()
		}
		lb := b.Field(5).(*array.ListBuilder)
		if len(t.params) == 0 {
			lb.AppendNull()
		} else {
			lb.Append(true)
			for _, p := range t.params {
				lb.ValueBuilder().(*array.StringBuilder).Append(p)
			}
		}
		b.Field(6).(*array.Int32Builder).Append(1) // nullable
		b.Field(7).(*array.BooleanBuilder).Append(t.caseSens)
		b.Field(8).(*array.Int32Builder).Append(3) // searchable
		b.Field(9).(*array.BooleanBuilder).Append(false)
		b.Field(10).(*array.BooleanBuilder).Append(t.fixedScale)
		b.Field(11).(*array.BooleanBuilder).Append(false)
		b.Field(12).(*array.StringBuilder).Append(t.name)
		if t.fixedScale {
			b.Field(13).(*array.Int32Builder).Append(0)
			b.Field(14).(*array.Int32Builder).Append(1000)
		} else {
			b.Field(13).AppendNull()
			b.Field(14).AppendNull()
		}
		b.Field(15).(*array.Int32Builder).Append(t.sqlType)
		optInt(16, t.subcode)
		optInt(17, t.radix)
		b.Field(18).AppendNull()
	}
	return schema_ref.XdbcTypeInfo, oneBatch(b.NewRecordBatch()), nil
}
