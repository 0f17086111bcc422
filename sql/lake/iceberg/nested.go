package iceberg

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/schema"
	"github.com/apache/iceberg-go"

	"github.com/pgmooncake/mooncake/catalog"
)

// read_parquet's schema parameter finds top-level columns by field ID,
// but DuckDB matches the fields of a struct by name. That is right as long
// as no field nested in a struct was ever renamed, and no struct ever had
// two fields of one name (one dropped, another added under its name): then
// every file names each nested field as every schema does. Otherwise each
// file's own names are read from its Parquet footer, the file's columns
// are read under those names and rebuilt with the snapshot's
// (struct_pack, list_transform), a field the file lacks being NULL.

// nestedRenames reports whether a field nested in one of the table's
// columns ever had two names, or a struct two fields of one name, across
// the table's schemas.
func (t *Table) nestedRenames() bool {
	names := map[int]string{}
	byName := map[string]int{}
	renamed := false
	var visit func(parent int, typ iceberg.Type)
	visit = func(parent int, typ iceberg.Type) {
		switch typ := typ.(type) {
		case *iceberg.StructType:
			for _, f := range typ.FieldList {
				if n, ok := names[f.ID]; ok && n != f.Name {
					renamed = true
				}
				names[f.ID] = f.Name
				key := strconv.Itoa(parent) + "/" + f.Name
				if id, ok := byName[key]; ok && id != f.ID {
					renamed = true
				}
				byName[key] = f.ID
				visit(f.ID, f.Type)
			}
		case *iceberg.ListType:
			visit(typ.ElementID, typ.Element)
		case *iceberg.MapType:
			visit(typ.KeyID, typ.KeyType)
			visit(typ.ValueID, typ.ValueType)
		}
	}
	for _, s := range t.meta.Schemas() {
		for _, f := range s.Fields() {
			visit(f.ID, f.Type)
		}
	}
	return renamed
}

// nestedType reports whether a type has fields of its own.
func nestedType(t iceberg.Type) bool {
	switch t.(type) {
	case *iceberg.StructType, *iceberg.ListType, *iceberg.MapType:
		return true
	}
	return false
}

// fileSchema is what a data file's Parquet footer says of its columns.
type fileSchema struct {
	names map[int]string // field ID -> name in the file, at every level
	top   []string       // the top-level column names, in order
	ids   bool           // whether the top-level columns carry field IDs
}

// readFileSchema reads a Parquet file's schema. A file whose columns carry
// no field IDs (written by a tool that knew nothing of Iceberg, added with
// add_files or a migration) gets them from the table's name mapping.
func readFileSchema(path string, mapping iceberg.NameMapping) (*fileSchema, error) {
	r, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, fmt.Errorf("read the parquet schema of %s: %w", path, err)
	}
	defer r.Close()
	fs := &fileSchema{names: map[int]string{}}
	root := r.MetaData().Schema.Root()
	for i := 0; i < root.NumFields(); i++ {
		n := root.Field(i)
		fs.top = append(fs.top, n.Name())
		if n.FieldID() >= 0 {
			fs.ids = true
		}
	}
	var walk func(n schema.Node)
	walk = func(n schema.Node) {
		if id := n.FieldID(); id >= 0 {
			fs.names[int(id)] = n.Name()
		}
		if g, ok := n.(*schema.GroupNode); ok {
			for i := 0; i < g.NumFields(); i++ {
				walk(g.Field(i))
			}
		}
	}
	// mapped names a node by the name mapping's field of its name; a list's
	// or map's repeated group is passed through (its children are the
	// mapping's element, key and value).
	var mapped func(n schema.Node, fields []iceberg.MappedField)
	mapped = func(n schema.Node, fields []iceberg.MappedField) {
		i := slices.IndexFunc(fields, func(f iceberg.MappedField) bool { return slices.Contains(f.Names, n.Name()) })
		if i < 0 || fields[i].FieldID == nil {
			return
		}
		fs.names[*fields[i].FieldID] = n.Name()
		g, ok := n.(*schema.GroupNode)
		if !ok {
			return
		}
		if g.NumFields() == 1 && g.Field(0).RepetitionType() == parquet.Repetitions.Repeated {
			if rep, ok := g.Field(0).(*schema.GroupNode); ok {
				g = rep
			}
		}
		for j := 0; j < g.NumFields(); j++ {
			mapped(g.Field(j), fields[i].Fields)
		}
	}
	for i := 0; i < root.NumFields(); i++ {
		if fs.ids {
			walk(root.Field(i))
		} else {
			mapped(root.Field(i), mapping)
		}
	}
	return fs, nil
}

// fileType is the DuckDB type a column of Iceberg type t is read as from
// a file whose fields are named names (by field ID): struct fields under
// their names in the file, those the file lacks left out.
func fileType(t iceberg.Type, names map[int]string) (string, error) {
	switch t := t.(type) {
	case *iceberg.StructType:
		var parts []string
		for _, f := range t.FieldList {
			n, ok := names[f.ID]
			if !ok {
				continue
			}
			d, err := fileType(f.Type, names)
			if err != nil {
				return "", err
			}
			parts = append(parts, catalog.QuoteIdent(n)+" "+d)
		}
		if len(parts) == 0 {
			// None of its fields is in the file: read it as it is
			// declared, rebuilt below from NULLs.
			return DuckDBType(t)
		}
		return "STRUCT(" + strings.Join(parts, ", ") + ")", nil
	case *iceberg.ListType:
		d, err := fileType(t.Element, names)
		return d + "[]", err
	case *iceberg.MapType:
		k, err := fileType(t.KeyType, names)
		if err != nil {
			return "", err
		}
		v, err := fileType(t.ValueType, names)
		return "MAP(" + k + ", " + v + ")", err
	}
	return DuckDBType(t)
}

// rebuild converts expr, read as fileType(t, names), to DuckDBType(t).
func rebuild(expr string, t iceberg.Type, names map[int]string, depth int) (string, error) {
	want, err := DuckDBType(t)
	if err != nil {
		return "", err
	}
	have, err := fileType(t, names)
	if err != nil {
		return "", err
	}
	if have == want {
		return expr, nil
	}
	switch t := t.(type) {
	case *iceberg.StructType:
		parts := make([]string, len(t.FieldList))
		anyPresent := false
		for i, f := range t.FieldList {
			v := ""
			if n, ok := names[f.ID]; ok {
				anyPresent = true
				if v, err = rebuild("struct_extract("+expr+", "+catalog.QuoteLiteral(n)+")", f.Type, names, depth+1); err != nil {
					return "", err
				}
			} else {
				d, err := DuckDBType(f.Type)
				if err != nil {
					return "", err
				}
				v = "CAST(NULL AS " + d + ")"
			}
			parts[i] = catalog.QuoteIdent(f.Name) + " := " + v
		}
		if !anyPresent {
			// The file has none of the fields under these names (see
			// fileType): NULL fields.
			for i, f := range t.FieldList {
				d, _ := DuckDBType(f.Type)
				parts[i] = catalog.QuoteIdent(f.Name) + " := CAST(NULL AS " + d + ")"
			}
		}
		return "CASE WHEN " + expr + " IS NULL THEN NULL ELSE struct_pack(" + strings.Join(parts, ", ") + ") END", nil
	case *iceberg.ListType:
		x := "x" + strconv.Itoa(depth)
		e, err := rebuild(x, t.Element, names, depth+1)
		if err != nil {
			return "", err
		}
		return "list_transform(" + expr + ", " + x + " -> " + e + ")", nil
	case *iceberg.MapType:
		x := "x" + strconv.Itoa(depth)
		k, err := rebuild(x+".key", t.KeyType, names, depth+1)
		if err != nil {
			return "", err
		}
		v, err := rebuild(x+".value", t.ValueType, names, depth+1)
		if err != nil {
			return "", err
		}
		return "map_from_entries(list_transform(map_entries(" + expr + "), " + x + " -> struct_pack(key := " + k + ", value := " + v + ")))", nil
	}
	return "CAST(" + expr + " AS " + want + ")", nil
}
