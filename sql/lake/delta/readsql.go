package delta

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ReadSQL is DuckDB SQL returning the snapshot's logical rows: read_parquet
// of its files with partition values as constants (typed), deleted
// positions removed (file_row_number), physical column names mapped to
// logical ones.
//
// deleted maps a file's Path to its deleted row positions (from
// DeletionVector.Positions); every file with a deletion vector must have
// an entry. Columns are the schema's, in its order, with the DuckDB types
// of their Delta types (timestamp is TIMESTAMPTZ, timestamp_ntz
// TIMESTAMP). A column absent from some data files (added later) is NULL
// in their rows; a snapshot without files returns no row but its typed
// columns.
func (s *Snapshot) ReadSQL(deleted map[string][]uint64) (string, error) {
	type column struct {
		f        Field
		typ      *dataType
		physical string
		part     int // index among the partition columns, -1 for a data column
	}
	partIdx := map[string]int{}
	for i, p := range s.PartitionColumns {
		partIdx[p] = i
	}
	var cols []column
	for _, f := range s.Schema {
		t, err := fieldType(f)
		if err != nil {
			return "", fmt.Errorf("delta: column %q: %w", f.Name, err)
		}
		if _, err := t.duckType(false); err != nil {
			return "", fmt.Errorf("delta: column %q: %w", f.Name, err)
		}
		c := column{f: f, typ: t, physical: f.Name, part: -1}
		if s.ColumnMapping != "none" && s.ColumnMapping != "" && f.PhysicalName != "" {
			c.physical = f.PhysicalName
		}
		if i, ok := partIdx[f.Name]; ok {
			c.part = i
			switch t.name {
			case "struct", "array", "map":
				return "", fmt.Errorf("delta: partition column %q has the nested type %s", f.Name, f.Type)
			}
		} else if strings.EqualFold(c.physical, "filename") || strings.EqualFold(c.physical, "file_row_number") {
			return "", fmt.Errorf("delta: column %q is named like a column read_parquet adds (%s); not supported", f.Name, c.physical)
		}
		cols = append(cols, c)
	}
	if len(cols) == 0 {
		return "", fmt.Errorf("delta: the table has no column")
	}

	var b strings.Builder
	b.WriteString("SELECT ")
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		if len(s.Files) == 0 {
			dt, _ := c.typ.duckType(false)
			b.WriteString("CAST(NULL AS " + dt + ")")
		} else if c.part >= 0 {
			fmt.Fprintf(&b, "p.c%d", c.part)
		} else {
			e, err := convert("t."+quoteIdent(c.physical), c.typ, 0)
			if err != nil {
				return "", fmt.Errorf("delta: column %q: %w", c.f.Name, err)
			}
			b.WriteString(e)
		}
		b.WriteString(" AS " + quoteIdent(c.f.Name))
	}
	if len(s.Files) == 0 {
		b.WriteString(" WHERE false")
		return b.String(), nil
	}

	// The data columns: every file's, by name, and a row of none with
	// every column typed, so that a column no file has yet reads as NULL.
	b.WriteString(" FROM (SELECT * FROM read_parquet([")
	for i, f := range s.Files {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quoteLiteral(f.Path))
	}
	b.WriteString("], filename = true, file_row_number = true, union_by_name = true, hive_partitioning = false)")
	b.WriteString(" UNION ALL BY NAME SELECT CAST(NULL AS VARCHAR) AS filename, CAST(NULL AS BIGINT) AS file_row_number")
	for _, c := range cols {
		if c.part >= 0 {
			continue
		}
		dt, err := c.typ.duckType(true)
		if err != nil {
			return "", err
		}
		b.WriteString(", CAST(NULL AS " + dt + ") AS " + quoteIdent(c.physical))
	}
	b.WriteString(" WHERE false) AS t")

	if len(s.PartitionColumns) > 0 {
		b.WriteString(" JOIN (VALUES ")
		for i, f := range s.Files {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(" + quoteLiteral(f.Path))
			for _, c := range cols {
				if c.part < 0 {
					continue
				}
				lit, err := partitionLiteral(f.PartitionValues[c.f.Name], c.typ)
				if err != nil {
					return "", fmt.Errorf("delta: file %s: partition column %q: %w", f.Path, c.f.Name, err)
				}
				b.WriteString(", " + lit)
			}
			b.WriteString(")")
		}
		b.WriteString(") AS p(filename")
		for i := range s.PartitionColumns {
			fmt.Fprintf(&b, ", c%d", i)
		}
		b.WriteString(") USING (filename)")
	}

	var del strings.Builder
	n := 0
	for _, f := range s.Files {
		pos, ok := deleted[f.Path]
		if !ok && f.DeletionVector != nil && f.DeletionVector.Cardinality != 0 {
			return "", fmt.Errorf("delta: file %s has a deletion vector but no deleted positions were given", f.Path)
		}
		if len(pos) == 0 {
			continue
		}
		if n > 0 {
			del.WriteString(", ")
		}
		n++
		del.WriteString("(" + quoteLiteral(f.Path) + ", [")
		for i, p := range pos {
			if p > math.MaxInt64 {
				return "", fmt.Errorf("delta: file %s: deleted position %d out of range", f.Path, p)
			}
			if i > 0 {
				del.WriteByte(',')
			}
			del.WriteString(strconv.FormatUint(p, 10))
		}
		del.WriteString("]::BIGINT[])")
	}
	if n > 0 {
		b.WriteString(" ANTI JOIN (SELECT d.f AS filename, unnest(d.p) AS file_row_number FROM (VALUES ")
		b.WriteString(del.String())
		b.WriteString(") AS d(f, p)) AS del USING (filename, file_row_number)")
	}
	return b.String(), nil
}

// fieldType parses a Field's Type: a primitive name or a JSON type.
func fieldType(f Field) (*dataType, error) {
	if strings.HasPrefix(strings.TrimSpace(f.Type), "{") {
		return parseType(json.RawMessage(f.Type))
	}
	return parsePrimitive(f.Type)
}

// convert is the DuckDB expression turning a value read from Parquet
// (physical names in structs) into the logical type.
func convert(expr string, t *dataType, depth int) (string, error) {
	if !t.renamed() {
		dt, err := t.duckType(false)
		if err != nil {
			return "", err
		}
		return "CAST(" + expr + " AS " + dt + ")", nil
	}
	switch t.name {
	case "struct":
		var b strings.Builder
		b.WriteString("CASE WHEN " + expr + " IS NULL THEN NULL ELSE {")
		for i, f := range t.fields {
			if i > 0 {
				b.WriteString(", ")
			}
			e, err := convert("struct_extract("+expr+", "+quoteLiteral(f.physical)+")", f.typ, depth+1)
			if err != nil {
				return "", err
			}
			b.WriteString(quoteLiteral(f.name) + ": " + e)
		}
		b.WriteString("} END")
		return b.String(), nil
	case "array":
		x := fmt.Sprintf("x%d", depth)
		e, err := convert(x, t.elem, depth+1)
		if err != nil {
			return "", err
		}
		return "list_transform(" + expr + ", lambda " + x + ": " + e + ")", nil
	case "map":
		x := fmt.Sprintf("e%d", depth)
		k, err := convert(x+".key", t.key, depth+1)
		if err != nil {
			return "", err
		}
		v, err := convert(x+".value", t.value, depth+1)
		if err != nil {
			return "", err
		}
		return "CASE WHEN " + expr + " IS NULL THEN NULL ELSE map_from_entries(list_transform(map_entries(" + expr +
			"), lambda " + x + ": {'key': " + k + ", 'value': " + v + "})) END", nil
	}
	return "", fmt.Errorf("unexpected type %s", t.name)
}

// partitionLiteral is a partition value as a typed DuckDB constant. An
// empty string is NULL, as the protocol says for every type.
func partitionLiteral(v *string, t *dataType) (string, error) {
	dt, err := t.duckType(false)
	if err != nil {
		return "", err
	}
	if v == nil || *v == "" {
		return "CAST(NULL AS " + dt + ")", nil
	}
	switch t.name {
	case "string":
		return "CAST(" + quoteLiteral(*v) + " AS VARCHAR)", nil
	case "binary":
		return "encode(" + quoteLiteral(*v) + ")", nil
	case "timestamp":
		ts, err := parsePartitionTimestamp(*v, true)
		if err != nil {
			return "", err
		}
		return "CAST(" + quoteLiteral(ts.UTC().Format("2006-01-02 15:04:05.999999")+"+00") + " AS TIMESTAMPTZ)", nil
	case "timestamp_ntz":
		ts, err := parsePartitionTimestamp(*v, false)
		if err != nil {
			return "", err
		}
		return "CAST(" + quoteLiteral(ts.Format("2006-01-02 15:04:05.999999")) + " AS TIMESTAMP)", nil
	}
	return "CAST(" + quoteLiteral(*v) + " AS " + dt + ")", nil
}

// parsePartitionTimestamp reads "2006-01-02 15:04:05[.ffffff]" (UTC for a
// timestamp) or an ISO 8601 form with a zone.
func parsePartitionTimestamp(s string, utc bool) (time.Time, error) {
	layouts := []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", time.RFC3339Nano, "2006-01-02 15:04:05Z07:00", "2006-01-02"}
	for _, l := range layouts {
		if ts, err := time.Parse(l, s); err == nil {
			if !utc {
				return time.Date(ts.Year(), ts.Month(), ts.Day(), ts.Hour(), ts.Minute(), ts.Second(), ts.Nanosecond(), time.UTC), nil
			}
			return ts, nil
		}
	}
	return time.Time{}, fmt.Errorf("timestamp partition value %q not understood", s)
}
