package catalog

import (
	"fmt"

	"github.com/apache/iceberg-go"
)

// PostgreSQL type OIDs that have a storage of their own. Every other type
// is stored as its PostgreSQL text (KindText).
const (
	OIDBool        = 16
	OIDBytea       = 17
	OIDInt8        = 20
	OIDInt2        = 21
	OIDInt4        = 23
	OIDText        = 25
	OIDFloat4      = 700
	OIDFloat8      = 701
	OIDMoney       = 790
	OIDBpchar      = 1042
	OIDVarchar     = 1043
	OIDDate        = 1082
	OIDTime        = 1083
	OIDTimestamp   = 1114
	OIDTimestampTZ = 1184
	OIDNumeric     = 1700
	OIDUUID        = 2950
)

// Kind is the storage class of a mirrored column: how it is kept in DuckDB,
// in Parquet and in the Iceberg schema. The values are not persisted; the
// names (Kind.String) are.
type Kind int

const (
	KindBool        Kind = iota
	KindInt16            // smallint, widened to a 32-bit int
	KindInt32            // integer
	KindInt64            // bigint
	KindFloat32          // real
	KindFloat64          // double precision
	KindDecimal          // numeric(p,s), 0 <= s <= p <= 38, as DECIMAL(p,s) (see DecimalType)
	KindString           // text, varchar, char: the string itself
	KindDate             // date
	KindTimestamp        // timestamp
	KindTimestampTZ      // timestamptz
	KindText             // any other type: its PostgreSQL text output, read back by its input function
	KindUUID             // uuid
	KindBytea            // bytea, as raw bytes
	KindTime             // time without time zone
	KindMoney            // money, as its 64-bit integer (units of the currency's smallest unit)
)

var kindNames = map[Kind]string{
	KindBool:        "bool",
	KindInt16:       "int16",
	KindInt32:       "int32",
	KindInt64:       "int64",
	KindFloat32:     "float32",
	KindFloat64:     "float64",
	KindDecimal:     "decimal",
	KindString:      "string",
	KindDate:        "date",
	KindTimestamp:   "timestamp",
	KindTimestampTZ: "timestamptz",
	KindText:        "text",
	KindUUID:        "uuid",
	KindBytea:       "bytea",
	KindTime:        "time",
	KindMoney:       "money",
}

// String is the kind's name, as recorded in the mooncake.columns property.
func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// ParseKind is the inverse of Kind.String.
func ParseKind(name string) (Kind, error) {
	for k, n := range kindNames {
		if n == name {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown column storage kind %q", name)
}

// ColumnType is a PostgreSQL column type resolved to its storage class.
type ColumnType struct {
	OID       uint32 // PostgreSQL type OID; for a domain, its base type's
	Typmod    int32  // PostgreSQL type modifier, -1 if none; for a domain, the base type's
	Kind      Kind   // storage class
	Precision int    // decimal precision (KindDecimal only)
	Scale     int    // decimal scale (KindDecimal only)
	Name      string // the column's type as format_type names it (a domain keeps its own name); informational
}

// ResolveType maps a PostgreSQL base type (domains resolved to their base
// type and typmod by the caller) to its storage class. Types without a
// storage of their own (numeric, json, interval, arrays, enums, types of
// extensions...) are kept as their PostgreSQL text, which their input
// function reads back exactly; so every type resolves.
func ResolveType(oid uint32, typmod int32, typeName string) (ColumnType, error) {
	t := ColumnType{OID: oid, Typmod: typmod, Name: typeName}
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
	case OIDUUID:
		t.Kind = KindUUID
	case OIDBytea:
		t.Kind = KindBytea
	case OIDTime:
		t.Kind = KindTime
	case OIDMoney:
		t.Kind = KindMoney
	default:
		// numeric among them: DECIMAL holds neither NaN nor ±Infinity nor
		// more than 38 digits, all of which numeric(p,s) or numeric accept.
		// Mirrors store most numeric(p,s) columns as DECIMALs all the same
		// (DecimalType).
		t.Kind = KindText
	}
	return t, nil
}

// DecimalType is how a mirror stores a column of type t: a numeric(p,s)
// with 0 <= s <= p <= 38 as DECIMAL(p,s), which DuckDB computes at its own
// speed and other engines read as Iceberg decimal(p,s); any other type as
// ResolveType has it. Such a column never holds ±Infinity (PostgreSQL
// refuses them under a typmod) and holds the same digits as the DECIMAL,
// but may hold NaN, which no DECIMAL holds: a copy of the source that
// finds NaN in the column stores it as its text instead (copyToParquet),
// and a NaN that arrives by the stream has the source copied again.
func DecimalType(t ColumnType) ColumnType {
	if t.OID != OIDNumeric || t.Kind != KindText {
		return t
	}
	d, err := StoredType(t.OID, t.Typmod, KindDecimal, t.Name)
	if err != nil {
		return t
	}
	return d
}

// AsText is the column type t stored as its text: a numeric(p,s) column
// that holds NaN.
func (t ColumnType) AsText() ColumnType {
	return ColumnType{OID: t.OID, Typmod: t.Typmod, Kind: KindText, Name: t.Name}
}

// IsNaN reports whether v, the text of a value of type t, is one that
// the column's storage cannot hold: NaN in a DECIMAL column.
func (t ColumnType) IsNaN(v *string) bool {
	return t.Kind == KindDecimal && v != nil && *v == "NaN"
}

// StoredType rebuilds a column type from what the mirror's metadata
// records: the base type, its typmod and the storage kind.
func StoredType(oid uint32, typmod int32, kind Kind, typeName string) (ColumnType, error) {
	t := ColumnType{OID: oid, Typmod: typmod, Kind: kind, Name: typeName}
	if _, ok := kindNames[kind]; !ok {
		return t, fmt.Errorf("column type %s: unknown storage kind %d", typeName, int(kind))
	}
	if kind == KindDecimal {
		p, s, ok := numericPrecisionScale(typmod)
		if !ok || p > 38 || s < 0 || s > p {
			return t, fmt.Errorf("column type %s: typmod %d is not a numeric(p,s) with p <= 38", typeName, typmod)
		}
		t.Precision, t.Scale = p, s
	}
	return t, nil
}

// legacyType resolves the column types of mirrors whose metadata predates
// the recorded storage kind: they stored numeric(p,s) as DECIMAL(p,s) and
// refused the types they did not know.
func legacyType(oid uint32, typmod int32, typeName string) (ColumnType, error) {
	if oid == OIDNumeric {
		return StoredType(oid, typmod, KindDecimal, typeName)
	}
	t, err := ResolveType(oid, typmod, typeName)
	if err == nil && t.Kind == KindText {
		return t, fmt.Errorf("column type %s (oid %d) has no recorded storage kind", typeName, oid)
	}
	return t, err
}

// numericPrecisionScale decodes a numeric typmod. Since PostgreSQL 15 the
// scale takes the low 11 bits and may be negative.
func numericPrecisionScale(typmod int32) (p, s int, ok bool) {
	if typmod < 4 {
		return 0, 0, false
	}
	v := typmod - 4
	p = int(v >> 16 & 0xffff)
	s = int((v&0x7ff ^ 0x400) - 0x400)
	return p, s, p >= 1
}

// DuckDBType is the DuckDB type a column is stored as, in memory and in
// Parquet. smallint is widened to INTEGER because Iceberg has no 16-bit int.
func (t ColumnType) DuckDBType() string {
	switch t.Kind {
	case KindBool:
		return "BOOLEAN"
	case KindInt16, KindInt32:
		return "INTEGER"
	case KindInt64, KindMoney:
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
	case KindUUID:
		return "UUID"
	case KindBytea:
		return "BLOB"
	case KindTime:
		return "TIME"
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
	case KindInt64, KindMoney:
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
	case KindUUID:
		return iceberg.PrimitiveTypes.UUID
	case KindBytea:
		return iceberg.PrimitiveTypes.Binary
	case KindTime:
		return iceberg.PrimitiveTypes.Time
	default:
		return iceberg.PrimitiveTypes.String
	}
}

// Timestamps past DuckDB's (and Iceberg's) range. PostgreSQL's timestamps
// reach 294276-12-31 23:59:59.999999; microseconds since 1970 overflow
// int64 from 294247-01-10 04:00:54.775807 on, and int64's maximum is
// DuckDB's infinity. Those values are stored shifted down by
// TimestampShift into years around 144,000 BC, which PostgreSQL (from 4713
// BC) cannot hold: every stored value below TimestampShiftedBelow is such
// a shifted value, and adding TimestampShift back (modulo 2^64) restores
// it exactly.
const (
	TimestampShift        uint64 = 3 << 62 // 2^64 - 2^62
	TimestampShiftedBelow int64  = -1 << 61
)

// CastFromText is the DuckDB expression turning the PostgreSQL text output
// of a value (in the expression expr, a VARCHAR) into the stored type. The
// replication stream and the initial copy both deliver values as text, in
// the sidecar's session settings (cdc.SessionParams).
func (t ColumnType) CastFromText(expr string) string {
	switch t.Kind {
	case KindString, KindText:
		return expr
	case KindDate:
		return "CAST(" + fromBC(expr) + " AS DATE)"
	case KindTimestamp, KindTimestampTZ:
		return t.timestampFromText(expr)
	case KindBytea:
		// bytea_output = hex: "\x" and two hex digits per byte.
		return fmt.Sprintf("from_hex(substr(%s, 3))", expr)
	case KindMoney:
		// lc_monetary = C: "-$1,234.56". The digits are the integer money
		// holds, whatever the number of fraction digits.
		return fmt.Sprintf("CAST(regexp_replace(%s, '[^0-9-]', '', 'g') AS BIGINT)", expr)
	default:
		return fmt.Sprintf("CAST(%s AS %s)", expr, t.DuckDBType())
	}
}

// fromBC rewrites PostgreSQL's "0044-03-15 10:00:00 BC" into DuckDB's
// "0044-03-15 (BC) 10:00:00".
func fromBC(expr string) string {
	return fmt.Sprintf(`CASE WHEN suffix(%[1]s, ' BC') THEN regexp_replace(%[1]s, '^([0-9]+-[0-9]+-[0-9]+)(.*) BC$', '\1 (BC)\2') ELSE %[1]s END`, expr)
}

// timestampFromText casts a timestamp's text, storing values past DuckDB's
// range shifted (see TimestampShift). Only years of six digits can be past
// it, and only they put a '-' seventh; they are computed from their date
// and time of day, every other value is cast.
func (t ColumnType) timestampFromText(expr string) string {
	typ, cond, fn := "TIMESTAMP", fmt.Sprintf("substr(%s, 7, 1) = '-'", expr), "make_timestamp"
	if t.Kind == KindTimestampTZ {
		// TimeZone = UTC: the offset is always +00.
		typ, cond, fn = "TIMESTAMPTZ", cond+fmt.Sprintf(" AND suffix(%s, '+00')", expr), "make_timestamptz"
	}
	v := fmt.Sprintf("(CAST(CAST(substr(%[1]s, 1, 12) AS DATE) - DATE '1970-01-01' AS HUGEINT) * 86400000000"+
		" + epoch_us(CAST(regexp_extract(%[1]s, '^[0-9-]+ ([0-9:.]+)', 1) AS TIME)))", expr)
	shifted := fmt.Sprintf("%s(CAST(%s - CASE WHEN %s >= 9223372036854775807 THEN %d ELSE 0 END AS BIGINT))", fn, v, v, TimestampShift)
	return fmt.Sprintf("CASE WHEN %s THEN %s ELSE CAST(%s AS %s) END", cond, shifted, fromBC(expr), typ)
}

// CastToText is the DuckDB expression giving the PostgreSQL text of a
// stored value (in the expression expr, of the column's DuckDB type), in a
// form the type's input function reads back as the same value:
// CastFromText(CastToText(x)) is x.
func (t ColumnType) CastToText(expr string) string {
	switch t.Kind {
	case KindString, KindText:
		return expr
	case KindBool:
		return fmt.Sprintf("CASE WHEN %[1]s THEN 't' WHEN NOT %[1]s THEN 'f' END", expr)
	case KindDate:
		return toBC("CAST(" + expr + " AS VARCHAR)")
	case KindTimestamp, KindTimestampTZ:
		zone := ""
		if t.Kind == KindTimestampTZ {
			zone = " || '+00'"
		}
		// A shifted value: its date and time of day from the microseconds.
		v := fmt.Sprintf("(CAST(epoch_us(%s) AS HUGEINT) + %d)", expr, TimestampShift)
		shifted := fmt.Sprintf("CAST(DATE '1970-01-01' + CAST(%[1]s // 86400000000 AS INTEGER) AS VARCHAR) || ' ' ||"+
			" CAST(TIME '00:00:00' + to_microseconds(CAST(%[1]s %% 86400000000 AS BIGINT)) AS VARCHAR)%[2]s", v, zone)
		return fmt.Sprintf("CASE WHEN epoch_us(%s) < %d THEN %s ELSE %s END", expr, TimestampShiftedBelow, shifted, toBC("CAST("+expr+" AS VARCHAR)"))
	case KindBytea:
		return fmt.Sprintf(`'\x' || lower(hex(%s))`, expr)
	case KindMoney:
		// Two fraction digits, as money_in reads them in most locales.
		return fmt.Sprintf("CAST(CAST(%s AS DECIMAL(20,0)) * 0.01 AS VARCHAR)", expr)
	default:
		return "CAST(" + expr + " AS VARCHAR)"
	}
}

// toBC rewrites DuckDB's "0044-03-15 (BC) 10:00:00" into PostgreSQL's
// "0044-03-15 10:00:00 BC".
func toBC(expr string) string {
	return fmt.Sprintf(`regexp_replace(%s, '^(.*) \(BC\)(.*)$', '\1\2 BC')`, expr)
}
