package catalog

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestPathSegment(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"plain", "trades_2024-v1", "trades_2024-v1"},
		{"empty", "", "%"},
		{"dot", ".", "%2E"},
		{"dotdot", "..", "%2E%2E"},
		{"climbs", "../x", "%2E%2E%2Fx"},
		{"slash", "a/b", "a%2Fb"},
		{"backslash", `a\b`, "a%5Cb"},
		{"space", "my table", "my%20table"},
		{"percent", "%", "%25"},
		{"escaped percent", "%2F", "%252F"},
		{"NUL", "a\x00b", "a%00b"},
		{"unicode", "ünïcode", "%C3%BCn%C3%AFcode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := pathSegment(tc.in); got != tc.want {
				t.Errorf("pathSegment(%q) = %q; want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestPathSegmentSafe checks, for hostile names and every single byte, that
// the segment stays one directory below its parent and that distinct names
// give distinct segments.
func TestPathSegmentSafe(t *testing.T) {
	names := []string{"", ".", "..", "../x", "../../etc/passwd", "/abs", "a/b", "a/../b", `..\x`,
		"ünïcode", "a\x00b", "a\x00", "my table", " ", "%", "%%", "%25", "A", "a", "-", "_", "CON", ".hidden", "x.", "~"}
	for c := 0; c < 256; c++ {
		names = append(names, string([]byte{byte(c)}), "x"+string([]byte{byte(c)})+"y")
	}
	seen := map[string]string{}
	const parent = "warehouse"
	for _, name := range names {
		seg := pathSegment(name)
		if seg == "" || seg == "." || seg == ".." {
			t.Errorf("pathSegment(%q) = %q; want a proper directory name", name, seg)
		}
		if strings.ContainsAny(seg, "/\\\x00") {
			t.Errorf("pathSegment(%q) = %q; want no separator or NUL", name, seg)
		}
		if p := filepath.Join(parent, seg); filepath.Dir(p) != parent || filepath.Base(p) != seg {
			t.Errorf("pathSegment(%q) = %q; joined under %q it gives %q", name, seg, parent, p)
		}
		if other, dup := seen[seg]; dup && other != name {
			t.Errorf("pathSegment(%q) = pathSegment(%q) = %q; want distinct segments", name, other, seg)
		}
		seen[seg] = name
	}
}

func TestQuoteLiteralInDuckDB(t *testing.T) {
	db := openDuck(t)
	tests := []struct {
		name string
		in   string
	}{
		{"plain", "abc"},
		{"empty", ""},
		{"one quote", "'"},
		{"two quotes", "''"},
		{"embedded quote", "it's"},
		{"quote at ends", "'x'"},
		{"double quote", `say "hi"`},
		{"backslash", `C:\dir\n`},
		{"newline and tab", "a\nb\tc"},
		{"unicode", "ünïcode ✓ 日本"},
		{"sql injection", "x'); DROP TABLE t; --"},
		{"dollar quote", "$$x$$"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			q := "SELECT " + QuoteLiteral(tc.in)
			if err := db.QueryRow(q).Scan(&got); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			if got != tc.in {
				t.Errorf("SELECT QuoteLiteral(%q) = %q; want %q", tc.in, got, tc.in)
			}
		})
	}
}

func TestQuoteIdentInDuckDB(t *testing.T) {
	db := openDuck(t)
	tests := []struct {
		name string
		in   string
	}{
		{"plain", "abc"},
		{"mixed case", "MixedCase"},
		{"keyword", "select"},
		{"one double quote", `"`},
		{"two double quotes", `""`},
		{"embedded double quote", `a"b`},
		{"single quote", "it's"},
		{"space", "my column"},
		{"dot", "a.b"},
		{"semicolon", "x; DROP TABLE t"},
		{"unicode", "ünïcode"},
		{"starts with digit", "1st"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := "SELECT 1 AS " + QuoteIdent(tc.in)
			rows, err := db.Query(q)
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			defer rows.Close()
			cols, err := rows.Columns()
			if err != nil {
				t.Fatalf("%s: columns: %v", q, err)
			}
			if len(cols) != 1 || cols[0] != tc.in {
				t.Errorf("SELECT 1 AS QuoteIdent(%q) has columns %q; want [%q]", tc.in, cols, tc.in)
			}
		})
	}
}

// TestRedact checks that DuckDB errors lose the row data they quote.
func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Conversion Error: Could not convert string 'secret value' to INT32", "Conversion Error: Could not convert string '…' to INT32"},
		{"Invalid Input Error: CSV Error on Line: 1\nOriginal Line: 1,top secret,x\nmore", "Invalid Input Error: CSV Error on Line: 1"},
		{`Constraint Error: NOT NULL constraint failed: "t"."c"`, `Constraint Error: NOT NULL constraint failed: "t"."c"`},
		{"value 'it''s' and 'b'", "value '…' and '…'"},
		{"Conversion Error: Type UINT64 with value 9223372036854775813 can't be cast because the value is out of range for the destination type INT64",
			"Conversion Error: Type UINT64 with value … can't be cast because the value is out of range for the destination type INT64"},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

// TestDuckSchema: the DuckDB schemas of mirrors' views never meet DuckDB's
// own schemas, the internal one, or each other.
func TestDuckSchema(t *testing.T) {
	names := []string{"public", "Public", "^_pg_catalog", "information_schema", "INFORMATION_SCHEMA",
		"pg_catalog", "mooncake_internal", "^_mooncake_internal", "^", "^^", "main", "Sales db"}
	seen := map[string]string{}
	for _, n := range names {
		d := duckSchema(n)
		if other, ok := seen[strings.ToLower(d)]; ok {
			t.Errorf("%q and %q both map to DuckDB schema %q", n, other, d)
		}
		seen[strings.ToLower(d)] = n
		switch strings.ToLower(d) {
		case "information_schema", "pg_catalog", "mooncake_internal":
			t.Errorf("%q maps to DuckDB's or the sidecar's schema %q", n, d)
		}
	}
}
