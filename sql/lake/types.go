package lake

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmooncake/mooncake/catalog"
)

const (
	oidJSON  = 114
	oidJSONB = 3802
)

// columnType is the stored type of a declared column, as a mirror of a
// column of that type would hold it.
func columnType(d Column) (catalog.ColumnType, error) {
	return catalog.ResolveType(d.OID, d.Typmod, d.Type)
}

// category groups DuckDB types by what they can become.
type category int

const (
	catBool category = iota
	catInt
	catFloat
	catDecimal
	catString
	catDate
	catTimestamp
	catTime
	catInterval
	catBlob
	catUUID
	catJSON
	catList
	catNested // STRUCT, MAP, UNION
	catOther
)

func duckCategory(t string) category {
	u := strings.ToUpper(strings.TrimSpace(t))
	switch {
	case strings.HasSuffix(u, "[]") || strings.HasSuffix(u, "]"):
		return catList
	case strings.HasPrefix(u, "STRUCT"), strings.HasPrefix(u, "MAP"), strings.HasPrefix(u, "UNION"):
		return catNested
	case strings.HasPrefix(u, "DECIMAL"), strings.HasPrefix(u, "NUMERIC"):
		return catDecimal
	case strings.HasPrefix(u, "TIMESTAMP"):
		return catTimestamp
	case strings.HasPrefix(u, "TIME"):
		return catTime
	}
	switch u {
	case "BOOLEAN":
		return catBool
	case "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT":
		return catInt
	case "FLOAT", "DOUBLE", "REAL":
		return catFloat
	case "VARCHAR":
		return catString
	case "DATE":
		return catDate
	case "INTERVAL":
		return catInterval
	case "BLOB":
		return catBlob
	case "UUID":
		return catUUID
	case "JSON":
		return catJSON
	}
	return catOther
}

// accepts tells which file types a stored kind takes: its own category,
// the ones DuckDB casts without losing meaning, and text (parsed when the
// query runs; a value that does not parse is an error then).
func accepts(k catalog.Kind, c category) bool {
	if c == catString {
		return true
	}
	switch k {
	case catalog.KindBool:
		return c == catBool
	case catalog.KindInt16, catalog.KindInt32, catalog.KindInt64, catalog.KindFloat32, catalog.KindFloat64, catalog.KindMoney, catalog.KindDecimal:
		return c == catInt || c == catFloat || c == catDecimal || c == catBool && k != catalog.KindMoney
	case catalog.KindDate, catalog.KindTimestamp, catalog.KindTimestampTZ:
		return c == catDate || c == catTimestamp
	case catalog.KindTime:
		return c == catTime
	case catalog.KindUUID:
		return c == catUUID
	case catalog.KindBytea:
		return c == catBlob
	case catalog.KindString, catalog.KindText:
		return true
	}
	return false
}

// castColumn is the select expression turning file column src (of DuckDB
// type duck) into the stored form of ct, or 42804 when it cannot hold it.
func castColumn(src, duck string, ct catalog.ColumnType, d Column) (string, error) {
	c := duckCategory(duck)
	if !accepts(ct.Kind, c) {
		name := d.Type
		if name == "" {
			name = fmt.Sprintf("type %d", d.OID)
		}
		return "", &pgconn.PgError{Code: "42804", Message: fmt.Sprintf("column %q is of type %s in the files, which %s cannot hold", d.Name, duck, name),
			Hint: "Declare the column with a type that holds it (or text)."}
	}
	switch ct.Kind {
	case catalog.KindText:
		switch {
		case d.OID == oidJSON || d.OID == oidJSONB:
			if c == catString || c == catJSON {
				return "CAST(" + src + " AS VARCHAR)", nil
			}
			return "CAST(to_json(" + src + ") AS VARCHAR)", nil
		case c == catList:
			// a PostgreSQL array literal, every element quoted
			return "CASE WHEN " + src + " IS NULL THEN NULL ELSE '{' || array_to_string(list_transform(" + src +
				`, x -> CASE WHEN x IS NULL THEN 'NULL' ELSE '"' || replace(replace(CAST(x AS VARCHAR), '\', '\\'), '"', '\"') || '"' END), ',') || '}' END`, nil
		case c == catNested:
			return "CAST(to_json(" + src + ") AS VARCHAR)", nil
		}
		return "CAST(" + src + " AS VARCHAR)", nil
	case catalog.KindString:
		if c == catNested || c == catList {
			return "CAST(to_json(" + src + ") AS VARCHAR)", nil
		}
		return "CAST(" + src + " AS VARCHAR)", nil
	case catalog.KindMoney:
		return "CAST(round(" + src + " * 100) AS BIGINT)", nil
	}
	return "CAST(" + src + " AS " + ct.DuckDBType() + ")", nil
}

// exactDecimal is the type a declared numeric(p,s) column is read as when
// the files' column is a DECIMAL every value of which numeric(p,s) holds
// exactly (no more integer digits, no more fraction digits): the DECIMAL
// itself, so that aggregates and comparisons need not print and parse
// each value (sql.decColumn). Other columns keep ct (numeric as its text).
func exactDecimal(ct catalog.ColumnType, duck string) catalog.ColumnType {
	m := decimalRE.FindStringSubmatch(strings.ToUpper(strings.TrimSpace(duck)))
	if ct.Kind != catalog.KindText || ct.OID != catalog.OIDNumeric || m == nil {
		return ct
	}
	fp, _ := strconv.Atoi(m[1])
	fs, _ := strconv.Atoi(m[2])
	dt, err := catalog.StoredType(ct.OID, ct.Typmod, catalog.KindDecimal, ct.Name)
	if err != nil || fs > dt.Scale || fp-fs > dt.Precision-dt.Scale {
		return ct
	}
	return dt
}

var decimalRE = regexp.MustCompile(`^DECIMAL\((\d+),\s*(\d+)\)$`)

// pgTypeOf is the PostgreSQL type that holds values of a DuckDB type.
func pgTypeOf(duck string) string {
	u := strings.ToUpper(strings.TrimSpace(duck))
	if strings.HasSuffix(u, "[]") {
		if el := pgTypeOf(u[:len(u)-2]); el != "jsonb" && !strings.HasSuffix(el, "[]") {
			if i := strings.IndexByte(el, '('); i > 0 {
				el = el[:i]
			}
			return el + "[]"
		}
		return "jsonb"
	}
	if m := decimalRE.FindStringSubmatch(u); m != nil {
		return "numeric(" + m[1] + "," + m[2] + ")"
	}
	switch u {
	case "BOOLEAN":
		return "boolean"
	case "TINYINT", "SMALLINT", "UTINYINT":
		return "smallint"
	case "INTEGER", "USMALLINT":
		return "integer"
	case "BIGINT", "UINTEGER":
		return "bigint"
	case "UBIGINT", "HUGEINT", "UHUGEINT":
		return "numeric"
	case "FLOAT", "REAL":
		return "real"
	case "DOUBLE":
		return "double precision"
	case "VARCHAR":
		return "text"
	case "DATE":
		return "date"
	case "TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "TIMESTAMP(NS)":
		return "timestamp"
	case "TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ":
		return "timestamptz"
	case "TIME":
		return "time"
	case "INTERVAL":
		return "interval"
	case "BLOB":
		return "bytea"
	case "UUID":
		return "uuid"
	}
	return "jsonb"
}

var pgTypeOIDs = map[string]uint32{
	"boolean": 16, "smallint": 21, "integer": 23, "bigint": 20, "real": 700, "double precision": 701,
	"numeric": 1700, "text": 25, "date": 1082, "timestamp": 1114, "timestamptz": 1184, "time": 1083,
	"interval": 1186, "bytea": 17, "uuid": 2950, "jsonb": oidJSONB, "money": catalog.OIDMoney,
	"boolean[]": 1000, "smallint[]": 1005, "integer[]": 1007, "bigint[]": 1016, "real[]": 1021,
	"double precision[]": 1022, "numeric[]": 1231, "text[]": 1009, "date[]": 1182, "timestamp[]": 1115,
	"timestamptz[]": 1185, "time[]": 1183, "interval[]": 1187, "bytea[]": 1001, "uuid[]": 2951,
}

// pgTypeOID is the OID and typmod of a type pgTypeOf names.
func pgTypeOID(name string) (uint32, int32) {
	if rest, ok := strings.CutPrefix(name, "numeric("); ok {
		p, s, _ := strings.Cut(strings.TrimSuffix(rest, ")"), ",")
		pi, _ := strconv.Atoi(p)
		si, _ := strconv.Atoi(s)
		return 1700, int32(pi<<16|si) + 4
	}
	if oid, ok := pgTypeOIDs[name]; ok {
		return oid, -1
	}
	return oidJSONB, -1
}
