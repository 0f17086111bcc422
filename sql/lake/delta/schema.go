package delta

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Field is a top-level column of the table.
type Field struct {
	Name         string // logical name
	Type         string // a primitive Delta type name, or the JSON of a struct, array or map type
	Nullable     bool
	PhysicalName string // the column's name in the data files (the logical name without column mapping)
	FieldID      int    // delta.columnMapping.id, 0 when absent
}

// dataType is a parsed Delta type.
type dataType struct {
	name             string // a primitive name, "decimal", "struct", "array" or "map"
	precision, scale int
	fields           []structField
	elem             *dataType
	key, value       *dataType
}

type structField struct {
	name, physical string
	id             int
	typ            *dataType
	nullable       bool
	rawType        json.RawMessage
}

var primitiveTypes = map[string]string{
	"string":        "VARCHAR",
	"long":          "BIGINT",
	"integer":       "INTEGER",
	"short":         "SMALLINT",
	"byte":          "TINYINT",
	"float":         "FLOAT",
	"double":        "DOUBLE",
	"boolean":       "BOOLEAN",
	"binary":        "BLOB",
	"date":          "DATE",
	"timestamp":     "TIMESTAMPTZ", // an instant, stored adjusted to UTC
	"timestamp_ntz": "TIMESTAMP",
}

type jsonField struct {
	Name     string          `json:"name"`
	Type     json.RawMessage `json:"type"`
	Nullable *bool           `json:"nullable"`
	Metadata map[string]any  `json:"metadata"`
}

type jsonType struct {
	Type              string          `json:"type"`
	Fields            []jsonField     `json:"fields"`
	ElementType       json.RawMessage `json:"elementType"`
	KeyType           json.RawMessage `json:"keyType"`
	ValueType         json.RawMessage `json:"valueType"`
	ContainsNull      *bool           `json:"containsNull"`
	ValueContainsNull *bool           `json:"valueContainsNull"`
}

// parseSchema parses a metaData schemaString.
func parseSchema(s string) ([]structField, error) {
	t, err := parseType(json.RawMessage(s))
	if err != nil {
		return nil, err
	}
	if t.name != "struct" {
		return nil, fmt.Errorf("the schema is a %s, not a struct", t.name)
	}
	return t.fields, nil
}

// parseType parses a type: a JSON string for a primitive type, an object
// for struct, array and map.
func parseType(raw json.RawMessage) (*dataType, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, fmt.Errorf("missing type")
	}
	if raw[0] == '"' {
		var name string
		if err := json.Unmarshal(raw, &name); err != nil {
			return nil, err
		}
		return parsePrimitive(name)
	}
	var jt jsonType
	if err := json.Unmarshal(raw, &jt); err != nil {
		return nil, fmt.Errorf("type %s: %w", raw, err)
	}
	switch jt.Type {
	case "struct":
		t := &dataType{name: "struct"}
		for _, f := range jt.Fields {
			ft, err := parseType(f.Type)
			if err != nil {
				return nil, fmt.Errorf("field %q: %w", f.Name, err)
			}
			sf := structField{name: f.Name, physical: f.Name, typ: ft, nullable: f.Nullable == nil || *f.Nullable}
			var compact bytes.Buffer
			if json.Compact(&compact, f.Type) == nil {
				sf.rawType = compact.Bytes()
			}
			if p, ok := f.Metadata["delta.columnMapping.physicalName"].(string); ok && p != "" {
				sf.physical = p
			}
			if id, ok := f.Metadata["delta.columnMapping.id"].(float64); ok {
				sf.id = int(id)
			}
			t.fields = append(t.fields, sf)
		}
		return t, nil
	case "array":
		e, err := parseType(jt.ElementType)
		if err != nil {
			return nil, fmt.Errorf("array element: %w", err)
		}
		return &dataType{name: "array", elem: e}, nil
	case "map":
		k, err := parseType(jt.KeyType)
		if err != nil {
			return nil, fmt.Errorf("map key: %w", err)
		}
		v, err := parseType(jt.ValueType)
		if err != nil {
			return nil, fmt.Errorf("map value: %w", err)
		}
		return &dataType{name: "map", key: k, value: v}, nil
	}
	return nil, fmt.Errorf("unknown type %s", raw)
}

func parsePrimitive(name string) (*dataType, error) {
	if _, ok := primitiveTypes[name]; ok {
		return &dataType{name: name}, nil
	}
	if name == "decimal" {
		return &dataType{name: "decimal", precision: 10}, nil
	}
	if rest, ok := strings.CutPrefix(name, "decimal("); ok {
		if ps, ok := strings.CutSuffix(rest, ")"); ok {
			p, s, ok := strings.Cut(ps, ",")
			pi, err1 := strconv.Atoi(strings.TrimSpace(p))
			si, err2 := strconv.Atoi(strings.TrimSpace(s))
			if ok && err1 == nil && err2 == nil && pi >= 1 && pi <= 38 && si >= 0 && si <= pi {
				return &dataType{name: "decimal", precision: pi, scale: si}, nil
			}
		}
	}
	// Other primitives (variant, void, ...) are kept; ReadSQL refuses them.
	return &dataType{name: name}, nil
}

// duckType is the DuckDB type of a Delta type; with physical, struct
// fields carry their physical names (the data files' names).
func (t *dataType) duckType(physical bool) (string, error) {
	switch t.name {
	case "decimal":
		return fmt.Sprintf("DECIMAL(%d,%d)", t.precision, t.scale), nil
	case "struct":
		var b strings.Builder
		b.WriteString("STRUCT(")
		for i, f := range t.fields {
			if i > 0 {
				b.WriteString(", ")
			}
			ft, err := f.typ.duckType(physical)
			if err != nil {
				return "", err
			}
			name := f.name
			if physical {
				name = f.physical
			}
			b.WriteString(quoteIdent(name) + " " + ft)
		}
		b.WriteString(")")
		return b.String(), nil
	case "array":
		e, err := t.elem.duckType(physical)
		if err != nil {
			return "", err
		}
		return e + "[]", nil
	case "map":
		k, err := t.key.duckType(physical)
		if err != nil {
			return "", err
		}
		v, err := t.value.duckType(physical)
		if err != nil {
			return "", err
		}
		return "MAP(" + k + ", " + v + ")", nil
	}
	if d, ok := primitiveTypes[t.name]; ok {
		return d, nil
	}
	return "", fmt.Errorf("unsupported Delta type %q", t.name)
}

// renamed reports whether a struct inside t has a field whose physical
// name differs from its logical one.
func (t *dataType) renamed() bool {
	switch t.name {
	case "struct":
		for _, f := range t.fields {
			if f.physical != f.name || f.typ.renamed() {
				return true
			}
		}
	case "array":
		return t.elem.renamed()
	case "map":
		return t.key.renamed() || t.value.renamed()
	}
	return false
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
