package iceberg

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/pgmooncake/mooncake/catalog"
)

// Field IDs of a position delete file's columns, fixed by the spec.
const (
	posFilePathID = 2147483546
	posPosID      = 2147483545
)

// DuckDBType is the DuckDB type an Iceberg type is read as. timestamptz_ns
// is read as TIMESTAMPTZ (microseconds: DuckDB has no nanosecond
// TIMESTAMPTZ); variant, geometry, geography and unknown are not
// supported.
func DuckDBType(t iceberg.Type) (string, error) {
	switch t := t.(type) {
	case iceberg.BooleanType:
		return "BOOLEAN", nil
	case iceberg.Int32Type:
		return "INTEGER", nil
	case iceberg.Int64Type:
		return "BIGINT", nil
	case iceberg.Float32Type:
		return "FLOAT", nil
	case iceberg.Float64Type:
		return "DOUBLE", nil
	case iceberg.DecimalType:
		return fmt.Sprintf("DECIMAL(%d,%d)", t.Precision(), t.Scale()), nil
	case iceberg.DateType:
		return "DATE", nil
	case iceberg.TimeType:
		return "TIME", nil
	case iceberg.TimestampType:
		return "TIMESTAMP", nil
	case iceberg.TimestampTzType, iceberg.TimestampTzNsType:
		return "TIMESTAMPTZ", nil
	case iceberg.TimestampNsType:
		return "TIMESTAMP_NS", nil
	case iceberg.StringType:
		return "VARCHAR", nil
	case iceberg.UUIDType:
		return "UUID", nil
	case iceberg.BinaryType, iceberg.FixedType:
		return "BLOB", nil
	case *iceberg.StructType:
		parts := make([]string, len(t.FieldList))
		for i, f := range t.FieldList {
			d, err := DuckDBType(f.Type)
			if err != nil {
				return "", err
			}
			parts[i] = catalog.QuoteIdent(f.Name) + " " + d
		}
		return "STRUCT(" + strings.Join(parts, ", ") + ")", nil
	case *iceberg.ListType:
		d, err := DuckDBType(t.Element)
		if err != nil {
			return "", err
		}
		return d + "[]", nil
	case *iceberg.MapType:
		k, err := DuckDBType(t.KeyType)
		if err != nil {
			return "", err
		}
		v, err := DuckDBType(t.ValueType)
		if err != nil {
			return "", err
		}
		return "MAP(" + k + ", " + v + ")", nil
	}
	return "", fmt.Errorf("iceberg type %s is not supported", t)
}

// col is the name under which ReadSQL reads the column with field ID id:
// no user column name can collide with it or with the reader's own
// columns (filename, file_row_number), and it is the same in every file
// whatever the column was named when the file was written.
func col(id int) string { return "f" + strconv.Itoa(id) }

// ReadSQL is a DuckDB query returning the snapshot's rows, with its
// schema's column names and types, in no particular order.
//
// The data files are read with read_parquet by Iceberg field ID (its
// schema parameter), so each column is found whatever its name was when
// the file was written (renames), a column added after the file was
// written reads as NULL, one dropped is not read, and values of a type
// promoted since (int to long, float to double, a wider decimal) are cast
// to the snapshot's type. Hive partitioning is off: partition values are
// the data files' own columns. DuckDB matches the fields within structs by
// name; when a nested field was ever renamed, files are read by their own
// names and rebuilt (see nestedRenames). In a table with a name mapping
// (schema.name-mapping.default), files whose columns carry no field IDs
// are read by the names the mapping gives each field.
//
// Position deletes are an anti join on (filename, file_row_number) with
// the delete files' (file_path, pos), file_path matched to the data file
// the manifest names. Equality deletes are an anti join, with IS NOT
// DISTINCT FROM (a NULL in a delete row matches NULL), of each group of
// data files sharing the same equality delete files with those files.
//
// Only Parquet data and delete files are read; a scan with an Avro or ORC
// file is an error.
func (s *Scan) ReadSQL() (string, error) {
	if len(s.Schema) == 0 {
		return "", fmt.Errorf("the snapshot's schema has no columns")
	}
	out := make([]string, len(s.Schema))
	if len(s.Files) == 0 {
		for i, f := range s.Schema {
			out[i] = "CAST(NULL AS " + f.DuckDB + ") AS " + catalog.QuoteIdent(f.Name)
		}
		if s.RowID {
			out = append(out, "CAST(NULL AS VARCHAR) AS ctid")
		}
		return "SELECT " + strings.Join(out, ", ") + " WHERE false", nil
	}
	for i, f := range s.Schema {
		out[i] = "p." + col(f.ID) + " AS " + catalog.QuoteIdent(f.Name)
	}

	// The columns read from the data files: the schema's, and those the
	// equality deletes compare that the schema no longer has.
	read := map[int]string{}
	defaults := map[int]string{}
	var readIDs []int
	for _, f := range s.Schema {
		read[f.ID] = f.DuckDB
		readIDs = append(readIDs, f.ID)
		if f.dflt != "" {
			defaults[f.ID] = f.dflt
		}
	}
	var posFiles []string
	var posData []DataFile
	seen := map[string]bool{}
	for _, df := range s.Files {
		if df.Format != "PARQUET" {
			return "", fmt.Errorf("data file %s is %s: only Parquet files are read", df.Path, df.Format)
		}
		if len(df.PositionDeletes) > 0 {
			posData = append(posData, df)
		}
		for _, p := range df.PositionDeletes {
			if !seen[p] {
				seen[p] = true
				posFiles = append(posFiles, p)
			}
		}
		for _, e := range df.EqualityDeletes {
			for _, id := range e.FieldIDs {
				if _, ok := read[id]; ok {
					continue
				}
				duck, err := s.t.topLevelType(id)
				if err != nil {
					return "", fmt.Errorf("equality delete file %s: %w", e.Path, err)
				}
				read[id] = duck
				readIDs = append(readIDs, id)
			}
		}
	}
	pos := len(posFiles) > 0
	// filename and file_row_number: for position deletes, or the row ids
	rowNumbers := pos || s.RowID

	// Columns holding structs whose fields may be named differently in
	// different files (see nestedRenames): each file's names are read from
	// its footer. So are those of every file of a table with a name
	// mapping, which files without field IDs are read by.
	var nested []Field
	if s.t.nestedRenames() {
		for _, f := range s.Schema {
			if nestedType(f.typ) {
				nested = append(nested, f)
			}
		}
	}
	mapping := s.t.meta.NameMapping()
	typeOf := map[int]iceberg.Type{}
	for _, f := range s.Schema {
		typeOf[f.ID] = f.typ
	}

	// Data files grouped by the equality delete files that apply to them
	// and by the layout of their columns, in order of first appearance.
	type group struct {
		files  []string
		eq     []EqualityDelete
		types  map[int]string // read types differing from the schema's
		names  map[int]string // the files' names of fields, by ID (when read from the footer)
		byName bool           // files without field IDs, read by name
	}
	var groups []*group
	byKey := map[string]*group{}
	for _, df := range s.Files {
		eq := slices.Clone(df.EqualityDeletes)
		slices.SortFunc(eq, func(a, b EqualityDelete) int { return strings.Compare(a.Path, b.Path) })
		var key strings.Builder
		for _, e := range eq {
			key.WriteString(e.Path)
			key.WriteByte(0)
		}
		local := s.t.local(df.Path)
		var fs *fileSchema
		types := map[int]string{}
		if len(nested) > 0 || mapping != nil {
			var err error
			if fs, err = readFileSchema(local, mapping); err != nil {
				return "", err
			}
		}
		switch {
		case fs != nil && !fs.ids:
			if mapping == nil {
				return "", fmt.Errorf("data file %s has no field IDs and the table no name mapping (%s)", df.Path, table.DefaultNameMappingKey)
			}
			// Files of one group must have the same columns: DuckDB
			// reads them all as the first.
			key.WriteString("by name\x00" + strings.Join(fs.top, "\x00"))
		case fs != nil:
			for _, f := range nested {
				ft, err := fileType(f.typ, fs.names)
				if err != nil {
					return "", err
				}
				if ft != f.DuckDB {
					types[f.ID] = ft
					key.WriteString(strconv.Itoa(f.ID) + ":" + ft)
					key.WriteByte(0)
				}
			}
		}
		g := byKey[key.String()]
		if g == nil {
			g = &group{eq: eq, types: types}
			if fs != nil {
				g.names, g.byName = fs.names, !fs.ids
			}
			byKey[key.String()] = g
			groups = append(groups, g)
		}
		g.files = append(g.files, local)
	}

	parts := make([]string, len(groups))
	for gi, g := range groups {
		var q string
		if g.byName {
			sel, err := byNameColumns(readIDs, read, defaults, typeOf, g.names)
			if err != nil {
				return "", err
			}
			if rowNumbers {
				sel = append(sel, "p.filename", "p.file_row_number")
			}
			q = "SELECT " + strings.Join(sel, ", ") + " FROM read_parquet(" + stringList(g.files) + ", hive_partitioning = false"
		} else {
			readTypes := read
			sel := make([]string, 0, len(readIDs)+2)
			for _, id := range readIDs {
				sel = append(sel, "p."+col(id))
			}
			if len(g.types) > 0 {
				readTypes = maps.Clone(read)
				maps.Copy(readTypes, g.types)
				for i, f := range s.Schema {
					if _, ok := g.types[f.ID]; ok {
						e, err := rebuild("p."+col(f.ID), f.typ, g.names, 0)
						if err != nil {
							return "", fmt.Errorf("column %q: %w", f.Name, err)
						}
						sel[i] = e + " AS " + col(f.ID)
					}
				}
			}
			if rowNumbers {
				sel = append(sel, "p.filename", "p.file_row_number")
			}
			q = "SELECT " + strings.Join(sel, ", ") + " FROM read_parquet(" + stringList(g.files) + ", schema = " +
				schemaMap(readIDs, readTypes, defaults) + ", hive_partitioning = false"
		}
		if rowNumbers && g.byName {
			// Read by field ID, the file's columns are renamed and the
			// virtual columns filename and file_row_number are there
			// (the options would fail on a file with a column of either
			// name); read by name, the options make such a file an error
			// instead of a column hiding the position.
			q += ", filename = true, file_row_number = true"
		}
		q += ") p"
		// One anti join per set of equality fields.
		var sets [][]int
		files := map[int][]string{}
		for _, e := range g.eq {
			if !strings.EqualFold(formatOf(e.Path), "parquet") {
				return "", fmt.Errorf("equality delete file %s: only Parquet files are read", e.Path)
			}
			i := slices.IndexFunc(sets, func(ids []int) bool { return slices.Equal(ids, e.FieldIDs) })
			if i < 0 {
				i = len(sets)
				sets = append(sets, e.FieldIDs)
			}
			files[i] = append(files[i], s.t.local(e.Path))
		}
		for i, ids := range sets {
			if len(ids) == 0 {
				return "", fmt.Errorf("equality delete file %s names no field", files[i][0])
			}
			alias := "e" + strconv.Itoa(i)
			conds := make([]string, len(ids))
			for j, id := range ids {
				conds[j] = "p." + col(id) + " IS NOT DISTINCT FROM " + alias + "." + col(id)
			}
			q += " ANTI JOIN read_parquet(" + stringList(files[i]) + ", schema = " + schemaMap(ids, read, nil) +
				", hive_partitioning = false) " + alias + " ON " + strings.Join(conds, " AND ")
		}
		parts[gi] = q
	}
	if s.RowID {
		locals := map[string]string{}
		for _, df := range s.Files {
			locals[df.Path] = s.t.local(df.Path)
		}
		files := s.RowIDFiles()
		names := make([]string, len(files))
		for i, f := range files {
			names[i] = catalog.QuoteLiteral(locals[f])
		}
		out = append(out, "'(' || CAST((list_position(["+strings.Join(names, ", ")+"], p.filename) - 1) * 131072 + "+
			"p.file_row_number // 32768 AS VARCHAR) || ',' || CAST(p.file_row_number % 32768 + 1 AS VARCHAR) || ')' AS ctid")
	}
	from := parts[0]
	if len(parts) == 1 && !pos {
		// A single group: select from it directly.
		return "SELECT " + strings.Join(out, ", ") + " FROM (" + from + ") p", nil
	}
	from = "(" + strings.Join(parts, " UNION ALL ") + ") p"
	if pos {
		names := make([]string, len(posData))
		for i, df := range posData {
			names[i] = "(" + catalog.QuoteLiteral(df.Path) + ", " + catalog.QuoteLiteral(s.t.local(df.Path)) + ")"
		}
		locals := make([]string, len(posFiles))
		for i, p := range posFiles {
			if !strings.EqualFold(formatOf(p), "parquet") {
				return "", fmt.Errorf("position delete file %s: only Parquet files are read", p)
			}
			locals[i] = s.t.local(p)
		}
		posSchema := "MAP {" + strconv.Itoa(posFilePathID) + ": {name: 'file_path', type: 'VARCHAR', default_value: NULL}, " +
			strconv.Itoa(posPosID) + ": {name: 'pos', type: 'BIGINT', default_value: NULL}}"
		from += " ANTI JOIN (SELECT m.local AS filename, d.pos FROM read_parquet(" + stringList(locals) +
			", schema = " + posSchema + ", hive_partitioning = false) d JOIN (VALUES " + strings.Join(names, ", ") +
			") m(path, local) ON d.file_path = m.path) x ON p.filename = x.filename AND p.file_row_number = x.pos"
	}
	return "SELECT " + strings.Join(out, ", ") + " FROM " + from, nil
}

// byNameColumns selects the columns of files without field IDs, found by
// the names the name mapping gave them (names), as col(id); a column the
// files lack is NULL.
func byNameColumns(ids []int, types, defaults map[int]string, typeOf map[int]iceberg.Type, names map[int]string) ([]string, error) {
	sel := make([]string, len(ids))
	for i, id := range ids {
		n, ok := names[id]
		if !ok {
			v := "NULL"
			if d, ok := defaults[id]; ok {
				v = d
			}
			sel[i] = "CAST(" + v + " AS " + types[id] + ") AS " + col(id)
			continue
		}
		expr := "p." + catalog.QuoteIdent(n)
		if t := typeOf[id]; t != nil && nestedType(t) {
			ft, err := fileType(t, names)
			if err != nil {
				return nil, err
			}
			if expr, err = rebuild("CAST("+expr+" AS "+ft+")", t, names, 0); err != nil {
				return nil, err
			}
		} else {
			expr = "CAST(" + expr + " AS " + types[id] + ")"
		}
		sel[i] = expr + " AS " + col(id)
	}
	return sel, nil
}

// formatOf guesses a delete file's format from its name; the planner does
// not carry it. Names without a known extension count as Parquet.
func formatOf(path string) string {
	switch {
	case strings.HasSuffix(path, ".avro"):
		return "avro"
	case strings.HasSuffix(path, ".orc"):
		return "orc"
	case strings.HasSuffix(path, ".puffin"):
		return "puffin"
	}
	return "parquet"
}

// schemaMap is read_parquet's schema parameter reading the given field IDs
// as col(id), with the types in types, the value in defaults (NULL when
// none) where a file lacks one.
func schemaMap(ids []int, types, defaults map[int]string) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		d, ok := defaults[id]
		if !ok {
			d = "NULL"
		}
		parts[i] = strconv.Itoa(id) + ": {name: " + catalog.QuoteLiteral(col(id)) + ", type: " +
			catalog.QuoteLiteral(types[id]) + ", default_value: " + d + "}"
	}
	return "MAP {" + strings.Join(parts, ", ") + "}"
}

// defaultLiteral is a column's initial default, as Iceberg's JSON holds it
// (numbers, booleans, and strings for the rest: decimals, dates, times and
// timestamps in ISO form, UUIDs, binary in hex), as a DuckDB VARCHAR
// constant that casts to type duck: the values of read_parquet's schema
// map must all have one type, and DuckDB casts a default to its column's
// type. Defaults of structs, lists and maps are not supported.
func defaultLiteral(t iceberg.Type, duck string, v any) (string, error) {
	if nestedType(t) {
		return "", fmt.Errorf("the initial default of a %s column is not supported", t)
	}
	var text string
	switch v := v.(type) {
	case bool:
		text = strconv.FormatBool(v)
	case float64:
		switch t.(type) {
		case iceberg.Int32Type, iceberg.Int64Type:
			if v != math.Trunc(v) || math.Abs(v) > 1<<53 {
				return "", fmt.Errorf("initial default %v of a %s column cannot be read exactly", v, t)
			}
		}
		text = strconv.FormatFloat(v, 'g', -1, 64)
	case int, int32, int64, json.Number:
		text = fmt.Sprint(v)
	case string:
		switch t.(type) {
		case iceberg.BinaryType, iceberg.FixedType:
			b, err := hex.DecodeString(v)
			if err != nil {
				return "", fmt.Errorf("initial default %q of a %s column is not hex", v, t)
			}
			return blobText(b), nil
		}
		text = v
	case []byte:
		return blobText(v), nil
	default:
		return "", fmt.Errorf("initial default %v (%T) is not supported", v, v)
	}
	return catalog.QuoteLiteral(text), nil
}

// blobText is bytes as the VARCHAR constant DuckDB casts to that BLOB:
// every byte escaped as \xHH.
func blobText(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		fmt.Fprintf(&sb, `\x%02x`, c)
	}
	return catalog.QuoteLiteral(sb.String())
}

func stringList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = catalog.QuoteLiteral(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// topLevelType is the DuckDB type of a top-level field of some schema of
// the table, the most recent that has it.
func (t *Table) topLevelType(id int) (string, error) {
	schemas := t.meta.Schemas()
	cur := t.meta.CurrentSchema()
	check := func(s *iceberg.Schema) (string, bool, error) {
		for _, f := range s.Fields() {
			if f.ID == id {
				d, err := DuckDBType(f.Type)
				return d, true, err
			}
		}
		return "", false, nil
	}
	if d, ok, err := check(cur); ok {
		return d, err
	}
	for i := len(schemas) - 1; i >= 0; i-- {
		if d, ok, err := check(schemas[i]); ok {
			return d, err
		}
	}
	if _, ok := t.fieldByID(id); ok {
		return "", fmt.Errorf("field %d is nested: equality deletes on nested fields are not supported", id)
	}
	return "", fmt.Errorf("field %d is in no schema of the table", id)
}
