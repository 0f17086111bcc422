package catalog

import (
	"bytes"
	"context"
	gosql "database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/apache/iceberg-go/table"
)

// COPY ... FROM a server file in CSV format into a columnstore table can
// be read by DuckDB itself, in parallel and without PostgreSQL's rows,
// when DuckDB's answer is PostgreSQL's by construction: the file is in
// the plain shape both readers agree on, and every value is in a form
// whose meaning both type readers agree on (digits for integers and
// decimals, ISO dates, timestamps with an explicit UTC offset, ...). Any
// other file or value makes LoadCSV give up (a *CSVFallback) before it
// changes anything, and the backend reads the file with PostgreSQL's COPY
// (its rows streamed as a load), which also raises COPY's own errors.

// CSVSpec is a COPY FROM of a file in CSV or text format: PostgreSQL's
// options as it parsed them (one-byte delimiter, quote and escape; the
// null string).
type CSVSpec struct {
	Path      string   // absolute
	Text      bool     // text format: no quoting; backslash escapes (a file with any but the null string \N falls back)
	Delimiter string   // one byte
	Quote     string   // CSV: one byte
	Escape    string   // CSV: one byte, the quote (other escapes fall back)
	Null      string   // an unquoted field equal to it is NULL
	Header    bool     // the first line is skipped
	Columns   []string // the table columns the file's fields fill, in order
}

// CSVFallback is LoadCSV's answer when the file or one of its values is
// not in a form it reads as PostgreSQL would: nothing was written, and
// PostgreSQL's COPY reads the file instead.
type CSVFallback struct{ Reason string }

func (f *CSVFallback) Error() string { return "the CSV file is read by PostgreSQL: " + f.Reason }

// csvFallbackMark is the message of the DuckDB error() a value outside the
// forms read here raises.
const csvFallbackMark = "mooncake csv fallback"

// LoadCSV appends the rows of the CSV file spec to the columnstore table
// whose metadata file is base, as a load does (data files under the
// table's directory, a new uncommitted metadata file). A *CSVFallback
// error means nothing changed and the file is to be read by PostgreSQL.
func LoadCSV(ctx context.Context, duck *gosql.DB, base string, spec CSVSpec) (Appended, error) {
	tbl, cols, err := LoadColumnstore(ctx, base)
	if err != nil {
		return Appended{}, err
	}
	if err := checkCSVSpec(spec); err != nil {
		return Appended{}, err
	}
	// per table column: the expression of its stored value
	exprs := make([]string, len(cols))
	sent := make([]bool, len(cols))
	for j, name := range spec.Columns {
		i := columnIndex(cols, name)
		if i < 0 || sent[i] {
			return Appended{}, &CSVFallback{fmt.Sprintf("column %q", name)}
		}
		sent[i] = true
		e, ok := csvValue(cols[i], colName("c", j))
		if !ok {
			return Appended{}, &CSVFallback{fmt.Sprintf("column %q is of type %s", name, typeName(cols[i].Type))}
		}
		exprs[i] = e
	}
	for i, c := range cols {
		if !sent[i] {
			if c.NotNull {
				return Appended{}, &CSVFallback{fmt.Sprintf("column %q is not given", c.Name)}
			}
			exprs[i] = "CAST(NULL AS " + c.Type.DuckDBType() + ")"
		}
		exprs[i] += " AS " + QuoteIdent(c.Name)
	}
	if err := scanCSV(spec); err != nil {
		return Appended{}, err
	}

	fields := make([]string, len(spec.Columns))
	for j := range spec.Columns {
		fields[j] = QuoteLiteral(colName("c", j)) + ": 'VARCHAR'"
	}
	quote, escape := spec.Quote, spec.Escape
	if spec.Text {
		quote, escape = "", ""
	}
	src := fmt.Sprintf("read_csv(%s, columns = {%s}, all_varchar = true, auto_detect = false, header = %t, skip = 0,"+
		" delim = %s, quote = %s, escape = %s, nullstr = %s, allow_quoted_nulls = false, strict_mode = true, new_line = '\\n')",
		QuoteLiteral(spec.Path), strings.Join(fields, ", "), spec.Header,
		QuoteLiteral(spec.Delimiter), QuoteLiteral(quote), QuoteLiteral(escape), QuoteLiteral(spec.Null))
	return writeLoad(ctx, duck, tbl, cols, base, "SELECT "+strings.Join(exprs, ", ")+" FROM "+src, "a value is not in a form read here")
}

// writeLoad has DuckDB write the rows of query (the table's columns, in
// order) into new data files of the table tbl (cols), up to loadFileRows
// rows each, and appends them to base as a load does. A DuckDB error is a
// *CSVFallback (valueMsg when a value raised csvFallbackMark), after which
// nothing stays; a cancelled ctx is its error.
func writeLoad(ctx context.Context, db interface {
	QueryRowContext(context.Context, string, ...any) *gosql.Row
}, tbl *table.Table, cols []Column, base, query, valueMsg string) (Appended, error) {
	dir := localPath(joinLoc(tbl.Location(), "data"))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Appended{}, err
	}
	// the files are written in a directory of their own, then moved
	out := filepath.Join(dir, "load-"+newID())
	defer os.RemoveAll(out)
	// ROW_GROUPS_PER_FILE keeps each file within loadFileRows rows (a row
	// group holds at most ROW_GROUP_SIZE rows).
	q := "COPY (" + query + ") TO " + QuoteLiteral(out) +
		fmt.Sprintf(" (%s, ROW_GROUPS_PER_FILE %d, FILENAME_PATTERN 'part_{i}', FIELD_IDS %s)",
			parquetOptions, max(loadFileRows/parquetRowGroup, 1), fieldIDs(cols))
	var rows int64
	if err := db.QueryRowContext(ctx, q).Scan(&rows); err != nil {
		if ctx.Err() != nil {
			return Appended{}, ctx.Err()
		}
		msg := Redact(err.Error())
		if strings.Contains(msg, csvFallbackMark) {
			msg = valueMsg
		}
		return Appended{}, &CSVFallback{msg}
	}
	if rows == 0 {
		return Appended{MetadataLocation: base}, nil
	}
	names, err := filepath.Glob(filepath.Join(out, "part_*.parquet"))
	if err != nil {
		return Appended{}, err
	}
	sort.Strings(names)
	var paths []string
	for _, n := range names {
		p := filepath.Join(dir, "data-"+newID()+".parquet")
		if err := os.Rename(n, p); err != nil {
			removeAll(paths)
			return Appended{}, err
		}
		paths = append(paths, p)
	}
	res, err := appendLoaded(ctx, base, tbl.Metadata().TableUUID().String(), cols, paths, rows)
	if err != nil {
		removeAll(paths)
	}
	return res, err
}

func removeAll(paths []string) {
	for _, p := range paths {
		os.Remove(p)
	}
}

// parquetRowGroup is parquetOptions' ROW_GROUP_SIZE.
const parquetRowGroup = 122880

// checkCSVSpec falls back for options DuckDB's reader does not share.
func checkCSVSpec(spec CSVSpec) error {
	one := func(s string) bool { return len(s) == 1 && s[0] != '\n' && s[0] != '\r' && s[0] != 0 && s[0] != '\\' }
	switch {
	case !filepath.IsAbs(spec.Path):
		return &CSVFallback{"a relative path"}
	case !one(spec.Delimiter) || (!spec.Text && (!one(spec.Quote) || spec.Escape != spec.Quote)):
		return &CSVFallback{"the delimiter, quote or escape"}
	case !spec.Text && (spec.Delimiter == spec.Quote || strings.Contains(spec.Null, spec.Quote)),
		strings.ContainsAny(spec.Null, "\r\n\x00") || strings.Contains(spec.Null, spec.Delimiter),
		spec.Text && strings.Contains(spec.Null, "\\") && spec.Null != `\N`:
		return &CSVFallback{"the null string"}
	case len(spec.Columns) == 0:
		return &CSVFallback{"no column"}
	}
	return nil
}

// scanCSV reads the file once (it stays in the page cache for DuckDB) and
// falls back when it is not a regular file or has what PostgreSQL's reader
// and DuckDB's could read differently: a carriage return (line ends other
// than "\n", or the two mixed), a NUL byte, an empty line (DuckDB skips
// it, PostgreSQL reads a row of one empty field) or a line "\." (an
// end-of-data marker). A quoted field holding such bytes falls back too,
// to be read by PostgreSQL. In text format a backslash begins an escape
// sequence, which DuckDB does not read: only the null string \N, a whole
// field, is left to it.
func scanCSV(spec CSVSpec) error {
	st, err := os.Stat(spec.Path)
	if err != nil {
		return &CSVFallback{"the file cannot be read"}
	}
	if !st.Mode().IsRegular() {
		return &CSVFallback{"not a regular file"}
	}
	f, err := os.Open(spec.Path)
	if err != nil {
		return &CSVFallback{"the file cannot be read"}
	}
	defer f.Close()
	delim := spec.Delimiter[0]
	nullN := spec.Null == `\N`
	// the field boundaries around a backslash at i of b: a whole \N
	escapeOK := func(b []byte, i int, end bool) bool {
		if !nullN || (b[i-1] != delim && b[i-1] != '\n') {
			return false
		}
		if i+1 >= len(b) || b[i+1] != 'N' {
			return false
		}
		return (end && i+2 == len(b)) || (i+2 < len(b) && (b[i+2] == delim || b[i+2] == '\n'))
	}
	const keep = 4
	buf := make([]byte, 4<<20)
	// CSV: a quote opens a field (after a delimiter or a line's start) and
	// closes it (before a delimiter, a line's end or the file's), doubled
	// inside it; DuckDB reads a quote elsewhere, or spaces around a quoted
	// value, otherwise than PostgreSQL does.
	quote := byte(0)
	if !spec.Text {
		quote = spec.Quote[0]
	}
	inQuote := false
	// The block read goes after the last bytes of the previous one ("\n"
	// before the first: a line begins there), so that what spans two
	// blocks is seen; base is the file offset of b[0] (-1 for the "\n"),
	// resume the first offset the quote and backslash checks have not
	// looked at.
	tail := append(make([]byte, 0, keep), '\n')
	base, resume := int64(-1), int64(0)
	first := true
	for {
		k := copy(buf, tail)
		n, err := f.Read(buf[k:])
		end := err == io.EOF
		if err != nil && !end {
			return &CSVFallback{"the file cannot be read"}
		}
		b := buf[:k+n]
		if first && bytes.HasPrefix(b[1:], []byte("\xef\xbb\xbf")) {
			return &CSVFallback{"a byte order mark (PostgreSQL reads it as data)"}
		}
		first = false
		if n > 0 && (bytes.IndexByte(b, '\r') >= 0 || bytes.IndexByte(b, 0) >= 0 ||
			bytes.Contains(b, []byte("\n\n")) || bytes.Contains(b, []byte("\n\\.\n"))) {
			return &CSVFallback{"a carriage return, NUL byte, empty line or end-of-data marker"}
		}
		// up to the last keep-1 bytes, which the next block sees again
		// with what follows them
		limit := len(b)
		if !end {
			limit = len(b) - (keep - 1)
		}
		i := max(int(resume-base), 1)
		for i < limit {
			if spec.Text {
				j := bytes.IndexByte(b[i:limit], '\\')
				if j < 0 {
					i = limit
					break
				}
				i += j
				if !escapeOK(b, i, end) {
					return &CSVFallback{"a backslash escape (text format)"}
				}
				i++
				continue
			}
			j := bytes.IndexByte(b[i:limit], quote)
			if j < 0 {
				i = limit
				break
			}
			i += j
			switch {
			case !inQuote && (b[i-1] == delim || b[i-1] == '\n'):
				inQuote = true
				i++
			case inQuote && i+1 < len(b) && b[i+1] == quote:
				i += 2 // a doubled quote inside the field
			case inQuote && ((end && i+1 == len(b)) || (i+1 < len(b) && (b[i+1] == delim || b[i+1] == '\n'))):
				inQuote = false
				i++
			default:
				return &CSVFallback{"a quote inside a field or spaces around a quoted value"}
			}
		}
		resume = base + int64(i)
		if end {
			if bytes.HasSuffix(b, []byte("\n\\.")) {
				return &CSVFallback{"an end-of-data marker"}
			}
			if inQuote {
				return &CSVFallback{"an unterminated quoted field"}
			}
			return nil
		}
		t := max(len(b)-keep, 0)
		tail = append(tail[:0], b[t:]...)
		base += int64(t)
	}
}

// csvValue is the expression of a column's stored value from the field v
// (VARCHAR, NULL when the field was the null string), when the column's
// type takes the values read here: an error() naming csvFallbackMark for
// a value in another form, or NULL in a NOT NULL column.
func csvValue(c Column, v string) (string, bool) {
	t := c.Type
	fail := "error('" + csvFallbackMark + "')"
	match := func(re string) string { return fmt.Sprintf("regexp_full_match(%s, '%s')", v, re) }
	cast := "CAST(" + v + " AS " + t.DuckDBType() + ")"
	var ok, val string
	switch {
	case t.OID == OIDBool && t.Kind == KindBool:
		// boolin: these words and their prefixes, in any case; COPY TO's
		// own t and f first, without lower()'s copy
		return fmt.Sprintf("CASE WHEN %[1]s IS NULL THEN %[2]s WHEN %[1]s = 't' THEN true WHEN %[1]s = 'f' THEN false"+
			" WHEN lower(%[1]s) IN ('t', 'tr', 'tru', 'true', 'y', 'ye', 'yes', 'on', '1') THEN true"+
			" WHEN lower(%[1]s) IN ('f', 'fa', 'fal', 'fals', 'false', 'n', 'no', 'of', 'off', '0') THEN false"+
			" ELSE %[3]s END", v, nullValue(c, fail), fail), true
	// integers: digits, a value out of the type's range failing the cast
	case t.OID == OIDInt2 && t.Kind == KindInt16:
		ok, val = match(`-?[0-9]{1,5}`), cast
	case t.OID == OIDInt4 && t.Kind == KindInt32:
		ok, val = match(`-?[0-9]{1,10}`), cast
	case t.OID == OIDInt8 && t.Kind == KindInt64:
		ok, val = match(`-?[0-9]{1,19}`), cast
	case t.OID == OIDFloat8 && t.Kind == KindFloat64:
		// Digits with an exponent of two digits at most lie far inside
		// the range of a double, where both readers round correctly.
		ok = fmt.Sprintf("(%s IN ('NaN', 'Infinity', '-Infinity') OR %s)", v, match(`-?[0-9]{1,20}(\.[0-9]{1,20})?([eE][-+]?[0-9]{1,2})?`))
		val = cast
	case t.OID == OIDNumeric && t.Kind == KindDecimal && t.Precision > t.Scale:
		// no more digits than the type holds: nothing is rounded
		re := fmt.Sprintf(`-?[0-9]{1,%d}`, t.Precision-t.Scale)
		if t.Scale > 0 {
			re += fmt.Sprintf(`(\.[0-9]{1,%d})?`, t.Scale)
		}
		ok, val = match(re), cast
	case t.OID == OIDText && t.Kind == KindString:
		ok, val = "true", v
	case t.OID == OIDVarchar && t.Kind == KindString:
		ok, val = "true", v
		if t.Typmod >= 4 {
			ok = fmt.Sprintf("length(%s) <= %d", v, t.Typmod-4)
		}
	case t.OID == OIDUUID && t.Kind == KindUUID:
		ok, val = match(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`), cast
	case t.OID == OIDDate && t.Kind == KindDate:
		ok, val = match(csvDate)+" AND NOT starts_with("+v+", '0000')", cast
	case t.OID == OIDTimestamp && t.Kind == KindTimestamp:
		ok, val = match(csvDate+" "+csvTime)+" AND NOT starts_with("+v+", '0000')", cast
	case t.OID == OIDTimestampTZ && t.Kind == KindTimestampTZ:
		ok, val = match(csvDate+" "+csvTime+`[-+][01][0-9](:[0-5][0-9])?`)+" AND NOT starts_with("+v+", '0000')", cast
	default:
		return "", false
	}
	return fmt.Sprintf("CASE WHEN %s IS NULL THEN %s WHEN %s THEN %s ELSE %s END", v, nullValue(c, fail), ok, val, fail), true
}

const (
	csvDate = `[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])`
	csvTime = `([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?`
)

// nullValue is a NULL of the column's stored type, or fail for a NOT NULL
// column (PostgreSQL's COPY raises the error).
func nullValue(c Column, fail string) string {
	if c.NotNull {
		return fail
	}
	return "CAST(NULL AS " + c.Type.DuckDBType() + ")"
}
