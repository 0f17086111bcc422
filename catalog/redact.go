package catalog

import (
	"regexp"
	"strings"
)

// quotedValue is a value DuckDB quotes in an error message: 'text', with
// quotes doubled inside.
var quotedValue = regexp.MustCompile(`'(?:[^']|'')*'`)

// unquotedValue is a value DuckDB names without quotes in a conversion
// error: "Type UINT64 with value 9223372036854775813 can't be cast ...".
var unquotedValue = regexp.MustCompile(`(with value) [^ ']+`)

// Redact keeps of a DuckDB error message what PostgreSQL itself would
// print about a row it cannot store: the kind of error and the names, not
// the row's data. Values DuckDB quotes become '…', and the lines that
// follow the first (the CSV record, the context of a conversion) go. The
// text ends up in errors a user reads, in the server log, and in a broken
// mirror's reason (mooncake.columnstore_tables.error).
func Redact(msg string) string {
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	msg = quotedValue.ReplaceAllString(msg, "'…'")
	return unquotedValue.ReplaceAllString(msg, "$1 …")
}
