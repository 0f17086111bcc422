package catalog

import (
	"fmt"

	"github.com/apache/iceberg-go"
	"github.com/jackc/pgx/v5/pgconn"
)

// PostgreSQL type OIDs the mirrors store natively.
const (
	OIDBool        = 16
	OIDInt8        = 20
	OIDInt2        = 21
	OIDInt4        = 23
	OIDText        = 25
	OIDFloat4      = 700
	OIDFloat8      = 701
	OIDBpchar      = 1042
	OIDVarchar     = 1043
	OIDDate        = 1082
	OIDTimestamp   = 1114
	OIDTimestampTZ = 1184
	OIDNumeric     = 1700
)

// Kind is the storage class of a mirrored column: how it is kept in DuckDB,
// in Parquet and in the Iceberg schema.
type Kind int

const (
	KindBool Kind = iota
	KindInt16
	KindInt32
	KindInt64
	KindFloat32
	KindFloat64
	KindDecimal
	KindString
	KindDate
	KindTimestamp
	KindTimestampTZ
)

// ColumnType is a PostgreSQL column type resolved to its storage class.
type ColumnType struct {
	OID       uint32 // PostgreSQL type OID
	Typmod    int32  // PostgreSQL type modifier, -1 if none
	Kind      Kind   // storage class
	Precision int    // decimal precision (KindDecimal only)
	Scale     int    // decimal scale (KindDecimal only)
}

// ResolveType maps a PostgreSQL type to its storage class. typeName is only
// used in the error message for an unsupported type.
func ResolveType(oid uint32, typmod int32, typeName string) (ColumnType, error) {
	t := ColumnType{OID: oid, Typmod: typmod}
	switch oid {
	case OIDBool:
		t.Kind = KindBool
	case OIDInt2:
		t.Kind = KindInt16
	case OIDInt4:
		t.Kind = KindInt32
	case OIDInt8:
		t.Kind = KindInt64
	case OIDFloat4:
		t.Kind = KindFloat32
	case OIDFloat8:
		t.Kind = KindFloat64
	case OIDText, OIDVarchar, OIDBpchar:
		t.Kind = KindString
	case OIDDate:
		t.Kind = KindDate
	case OIDTimestamp:
		t.Kind = KindTimestamp
	case OIDTimestampTZ:
		t.Kind = KindTimestampTZ
	case OIDNumeric:
		if typmod < 4 {
			return t, unsupportedType(typeName, "numeric without a precision is not supported yet; declare it as numeric(p,s) with p <= 38")
		}
		p := int((typmod - 4) >> 16 & 0xffff)
		s := int(int16((typmod - 4) & 0xffff))
		if p > 38 || s < 0 || s > p {
			return t, unsupportedType(typeName, "numeric(p,s) is supported for 1 <= p <= 38 and 0 <= s <= p")
		}
		t.Kind, t.Precision, t.Scale = KindDecimal, p, s
	default:
		return t, unsupportedType(typeName, "")
	}
	return t, nil
}

func unsupportedType(typeName, detail string) error {
	return &pgconn.PgError{
		Code:    "0A000",
		Message: fmt.Sprintf("type %s is not supported by mooncake mirrors yet", typeName),
		Detail:  detail,
	}
}

// DuckDBType is the DuckDB type a column is stored as, in memory and in
// Parquet. smallint is widened to INTEGER because Iceberg has no 16-bit int.
func (t ColumnType) DuckDBType() string {
	switch t.Kind {
	case KindBool:
		return "BOOLEAN"
	case KindInt16, KindInt32:
		return "INTEGER"
	case KindInt64:
		return "BIGINT"
	case KindFloat32:
		return "FLOAT"
	case KindFloat64:
		return "DOUBLE"
	case KindDecimal:
		return fmt.Sprintf("DECIMAL(%d,%d)", t.Precision, t.Scale)
	case KindDate:
		return "DATE"
	case KindTimestamp:
		return "TIMESTAMP"
	case KindTimestampTZ:
		return "TIMESTAMPTZ"
	default:
		return "VARCHAR"
	}
}

// IcebergType is the column's type in the Iceberg schema.
func (t ColumnType) IcebergType() iceberg.Type {
	switch t.Kind {
	case KindBool:
		return iceberg.PrimitiveTypes.Bool
	case KindInt16, KindInt32:
		return iceberg.PrimitiveTypes.Int32
	case KindInt64:
		return iceberg.PrimitiveTypes.Int64
	case KindFloat32:
		return iceberg.PrimitiveTypes.Float32
	case KindFloat64:
		return iceberg.PrimitiveTypes.Float64
	case KindDecimal:
		return iceberg.DecimalTypeOf(t.Precision, t.Scale)
	case KindDate:
		return iceberg.PrimitiveTypes.Date
	case KindTimestamp:
		return iceberg.PrimitiveTypes.Timestamp
	case KindTimestampTZ:
		return iceberg.PrimitiveTypes.TimestampTz
	default:
		return iceberg.PrimitiveTypes.String
	}
}

// CastFromText is the DuckDB expression turning the PostgreSQL text output
// of a value (in the expression expr, a VARCHAR) into the stored type. The
// replication stream and the initial copy both deliver values as text.
func (t ColumnType) CastFromText(expr string) string {
	switch t.Kind {
	case KindString:
		return expr
	case KindDate, KindTimestamp, KindTimestampTZ:
		// PostgreSQL writes years before 1 as "0044-03-15 10:00:00 BC";
		// DuckDB reads "0044-03-15 (BC) 10:00:00".
		return fmt.Sprintf(`CAST(CASE WHEN suffix(%[1]s, ' BC') THEN regexp_replace(%[1]s, '^([0-9]+-[0-9]+-[0-9]+)(.*) BC$', '\1 (BC)\2') ELSE %[1]s END AS %[2]s)`, expr, t.DuckDBType())
	default:
		return fmt.Sprintf("CAST(%s AS %s)", expr, t.DuckDBType())
	}
}
