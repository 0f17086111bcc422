package catalog

import (
	"context"
	gosql "database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
)

// A columnstore load (INSERT and COPY into a columnstore table) streams
// the rows from the backend in chunks of a binary, column-major layout
// (sidecar/PROTOCOL.md, columnstore_load): each chunk becomes an Arrow
// record batch of the columns' stored types, which a DuckDB COPY running
// meanwhile writes to one Parquet data file. At the end the file is added
// to the table as a new snapshot in a new metadata file, as
// AppendColumnstore does.

// Wire encodings of a load's values. Fixed-width values are big-endian;
// variable-length ones are a uint32 length and the bytes.
const (
	EncBool      = "bool"      // 1 byte, 0 or 1
	EncInt2      = "int2"      // int16
	EncInt4      = "int4"      // int32
	EncInt8      = "int8"      // int64 (bigint, money's integer)
	EncFloat4    = "float4"    // IEEE 754 bits
	EncFloat8    = "float8"    // IEEE 754 bits
	EncDate      = "date"      // int32 days since 2000-01-01; INT32_MIN -infinity, INT32_MAX infinity
	EncTime      = "time"      // int64 microseconds since midnight
	EncTimestamp = "timestamp" // int64 microseconds since 2000-01-01 00:00 (UTC for timestamptz); INT64_MIN/MAX infinities
	EncUUID      = "uuid"      // 16 bytes
	EncBytes     = "bytes"     // the value itself: text, varchar, char (UTF-8), bytea
	EncText      = "text"      // the type's text output (as for columnstore_append), UTF-8
	EncNumeric   = "numeric"   // numeric's binary send format: int16 ndigits, weight, sign, dscale, then the base-10000 digits
)

// encWidth is the width of a fixed-width encoding, 0 for a variable one.
var encWidth = map[string]int{
	EncBool: 1, EncInt2: 2, EncInt4: 4, EncInt8: 8, EncFloat4: 4, EncFloat8: 8,
	EncDate: 4, EncTime: 8, EncTimestamp: 8, EncUUID: 16, EncBytes: 0, EncText: 0, EncNumeric: 0,
}

// encFits reports whether values of encoding enc can be stored in a column
// of kind k. Text fits every kind: it is cast as columnstore_append's is.
func encFits(enc string, t ColumnType) bool {
	k := t.Kind
	switch enc {
	case EncNumeric:
		return t.OID == OIDNumeric && (k == KindText || k == KindDecimal)
	case EncText:
		return true
	case EncBool:
		return k == KindBool
	case EncInt2:
		return k == KindInt16
	case EncInt4:
		return k == KindInt32
	case EncInt8:
		return k == KindInt64 || k == KindMoney
	case EncFloat4:
		return k == KindFloat32
	case EncFloat8:
		return k == KindFloat64
	case EncDate:
		return k == KindDate
	case EncTime:
		return k == KindTime
	case EncTimestamp:
		return k == KindTimestamp || k == KindTimestampTZ
	case EncUUID:
		return k == KindUUID
	case EncBytes:
		return k == KindString || k == KindBytea
	}
	return false
}

// LoadColumn is a column of a load: its name and the encoding of its values.
type LoadColumn struct {
	Name string
	Enc  string
}

// loadFileRows is how many rows of a load go into one data file at most:
// a scan numbers a file's rows in 32 bits (row ids, UPDATE and DELETE).
var loadFileRows int64 = 100 << 20

// Loader writes the rows of one columnstore load to Parquet data files.
type Loader struct {
	duck     *gosql.DB
	dir      string // the table's data directory
	cols     []Column
	tableID  string   // the table's UUID: the end's base must be of the same table
	enc      []string // per table column: the encoding of its values, "" when not sent
	pos      []int    // per sent column: its table column
	schema   *arrow.Schema
	paths    []string // the data files, the last one being written
	in       chan arrow.RecordBatch
	done     chan error
	rows     int64
	fileRows int64 // rows in the file being written
	failed   error
	closed   bool            // in is closed
	ctx      context.Context // the load's: its database, for a table on an object store
	start    string          // the metadata file the load began with
	base     string          // the same, or the version with columns stored as text (storeAsText)
	nan      []string        // DECIMAL columns the chunk being decoded brings NaN to
}

// loadSchema is the Arrow schema of a load's batches: per table column,
// the stored type when its values come as such, else their text.
func loadSchema(cols []Column, enc []string) *arrow.Schema {
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		var t arrow.DataType = arrow.BinaryTypes.String
		switch {
		case enc[i] == EncNumeric && c.Type.Kind == KindDecimal:
			t = arrowStored(c.Type) // decimal128 of the column's scale
		case enc[i] == "", enc[i] == EncText, enc[i] == EncUUID, enc[i] == EncNumeric:
			// text, cast by loadSelect (a numeric's text when the column stores text)
		default:
			t = arrowStored(c.Type)
		}
		fields[i] = arrow.Field{Name: colName("c", i), Type: t, Nullable: true}
	}
	return arrow.NewSchema(fields, nil)
}

// loadSelect is the SELECT list turning a load's batch columns into the
// table's stored columns.
func loadSelect(cols []Column, enc []string) string {
	out := make([]string, len(cols))
	for i, c := range cols {
		e := colName("c", i)
		switch {
		case enc[i] == EncNumeric && c.Type.Kind == KindDecimal:
			// a decimal128 of the column's own type
		case enc[i] == "", enc[i] == EncText, enc[i] == EncUUID, enc[i] == EncNumeric:
			// text (a NULL column when not sent), and uuid as its text
			e = c.Type.CastFromText(e)
		}
		out[i] = e + " AS " + QuoteIdent(c.Name)
	}
	return strings.Join(out, ", ")
}

// StartLoad starts a load into the columnstore table whose metadata file
// is base; sent are the columns the chunks carry, in order. The data files
// (a new one every loadFileRows rows) are written by DuckDB on a connection
// of duck while chunks are added.
func StartLoad(ctx context.Context, duck *gosql.DB, base string, sent []LoadColumn) (*Loader, error) {
	tbl, cols, err := LoadColumnstore(ctx, base)
	if err != nil {
		return nil, err
	}
	l := &Loader{cols: cols, tableID: tbl.Metadata().TableUUID().String(), enc: make([]string, len(cols)), pos: make([]int, len(sent)),
		ctx: ctx, start: base, base: base}
	for j, s := range sent {
		i := columnIndex(cols, s.Name)
		if i < 0 {
			return nil, pgError("42703", fmt.Sprintf("column %q of the columnstore table does not exist", s.Name), "", "")
		}
		if l.enc[i] != "" {
			return nil, pgError("42701", fmt.Sprintf("column %q is given more than once", s.Name), "", "")
		}
		if _, ok := encWidth[s.Enc]; !ok || !encFits(s.Enc, cols[i].Type) {
			return nil, pgError("08P01", fmt.Sprintf("column %q of type %s cannot take values of encoding %q", s.Name, typeName(cols[i].Type), s.Enc), "", "")
		}
		l.enc[i] = s.Enc
		l.pos[j] = i
	}
	for i, c := range cols {
		if c.NotNull && l.enc[i] == "" {
			return nil, pgError("23502", fmt.Sprintf("null value in column %q of the columnstore table violates not-null constraint", c.Name), "", "")
		}
	}
	l.schema = loadSchema(cols, l.enc)
	l.duck = duck
	l.dir = localPath(joinLoc(tbl.Location(), "data"))
	if err := os.MkdirAll(l.dir, 0o700); err != nil {
		return nil, err
	}
	if err := l.startFile(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// startFile starts writing the next data file: a DuckDB COPY on a
// connection of its own, fed through l.in.
func (l *Loader) startFile(ctx context.Context) error {
	path := filepath.Join(l.dir, "data-"+newID()+".parquet")
	conn, err := l.duck.Conn(ctx)
	if err != nil {
		return err
	}
	l.paths = append(l.paths, path)
	in, done := make(chan arrow.RecordBatch, 4), make(chan error, 1)
	l.in, l.done, l.closed, l.fileRows = in, done, false, 0
	rdr := &chanReader{schema: l.schema, in: in}
	rdr.refs.Store(1)
	q := func(view string) string {
		return "COPY (SELECT " + loadSelect(l.cols, l.enc) + " FROM " + view + ") TO " + QuoteLiteral(path) +
			" (" + parquetOptions + ", FIELD_IDS " + fieldIDs(l.cols) + ")"
	}
	go func() {
		defer conn.Close()
		err := registerReader(conn, rdr, func(view string) error {
			_, err := conn.ExecContext(context.Background(), q(view))
			return err
		})
		if err != nil {
			os.Remove(path)
			err = fmt.Errorf("write columnstore data file: %s", Redact(err.Error()))
		}
		done <- err
		for b := range in { // what was sent after the COPY failed
			b.Release()
		}
	}()
	return nil
}

// Add decodes one chunk and hands its rows to the data file's writer.
// After an error the load can only be abandoned.
func (l *Loader) Add(chunk []byte) error {
	if l.failed != nil {
		return l.failed
	}
	b, err := l.decode(chunk)
	if err == nil && len(l.nan) > 0 {
		// NaN in a DECIMAL column: the column becomes text, and the chunk
		// is decoded again as such
		b.Release()
		b = nil
		if err = l.storeAsText(); err == nil {
			b, err = l.decode(chunk)
		}
	}
	if err == nil && b.NumRows() > 0 && l.fileRows > 0 && l.fileRows+b.NumRows() > loadFileRows {
		// the file is full: the next one
		if err = l.end(); err == nil {
			err = l.startFile(context.Background())
		}
	}
	if err == nil && b.NumRows() > 0 {
		n := b.NumRows()
		select {
		case l.in <- b:
			l.rows += n
			l.fileRows += n
		case err = <-l.done:
			b.Release()
			l.done <- err // for Finish
			if err == nil {
				err = errors.New("the columnstore data file writer ended early")
			}
		}
	} else if b != nil {
		b.Release()
	}
	l.failed = err
	return err
}

// storeAsText stores the columns l.nan (DECIMAL ones to which the chunk
// being added brings NaN) as their text: the file being written ends with
// the chunks before, the table the load began with gets a version with
// the columns as text (ColumnstoreAsText), the load's files are written
// again so, and the chunks go on into a new file.
func (l *Loader) storeAsText() error {
	names := l.nan
	l.nan = nil
	if err := l.end(); err != nil {
		return err
	}
	ctx := l.ctx
	text, err := ColumnstoreAsText(ctx, l.duck, l.base, names)
	if err != nil {
		return err
	}
	_, cols, err := LoadColumnstore(ctx, text)
	if err != nil {
		return err
	}
	if l.fileRows == 0 {
		// the file just begun holds no row
		os.Remove(l.paths[len(l.paths)-1])
		l.paths = l.paths[:len(l.paths)-1]
	}
	for k, p := range l.paths {
		np, err := rewriteColumnstore(ctx, l.duck, l.dir, l.cols, cols, p)
		if err != nil {
			return err
		}
		os.Remove(p)
		l.paths[k] = np
	}
	l.base, l.cols = text, cols
	l.schema = loadSchema(cols, l.enc)
	return l.startFile(ctx)
}

// decode reads a chunk: uint32 row count, then per sent column a uint32
// section length and the section: a validity bitmap (bit r%8 of byte r/8
// set when row r has a value) and the values of the rows that have one.
func (l *Loader) decode(chunk []byte) (arrow.RecordBatch, error) {
	bad := func(what string) error { return pgError("08P01", "malformed columnstore_load chunk: "+what, "", "") }
	if len(chunk) < 4 {
		return nil, bad("no row count")
	}
	n := int(binary.BigEndian.Uint32(chunk))
	off := 4
	rb := array.NewRecordBuilder(memory.DefaultAllocator, l.schema)
	defer rb.Release()
	for i := range l.cols {
		rb.Field(i).Reserve(n)
	}
	for _, i := range l.pos {
		if len(chunk)-off < 4 {
			return nil, bad("a column section is missing")
		}
		size := int(binary.BigEndian.Uint32(chunk[off:]))
		off += 4
		if len(chunk)-off < size {
			return nil, bad("a column section is cut short")
		}
		sec := chunk[off : off+size]
		off += size
		nb := (n + 7) / 8
		if len(sec) < nb {
			return nil, bad("a validity bitmap is cut short")
		}
		valid, vals := sec[:nb], sec[nb:]
		if l.cols[i].NotNull {
			for r := 0; r < n; r++ {
				if valid[r>>3]&(1<<(r&7)) == 0 {
					return nil, pgError("23502", fmt.Sprintf("null value in column %q of the columnstore table violates not-null constraint", l.cols[i].Name), "", "")
				}
			}
		}
		rest, nan, err := appendColumn(rb.Field(i), l.enc[i], l.cols[i].Type.Scale, n, valid, vals)
		if err != nil {
			return nil, err
		}
		if nan && l.cols[i].Type.Kind == KindDecimal {
			l.nan = append(l.nan, l.cols[i].Name)
		}
		if len(rest) != 0 {
			return nil, bad(fmt.Sprintf("column %q has %d bytes too many", l.cols[i].Name, len(rest)))
		}
	}
	if off != len(chunk) {
		return nil, bad("bytes after the last column")
	}
	// columns not sent: NULL
	for i, e := range l.enc {
		if e == "" {
			rb.Field(i).AppendNulls(n)
		}
	}
	return rb.NewRecordBatch(), nil
}

// Date and timestamp offsets between PostgreSQL's epoch (2000-01-01) and
// Arrow's (1970-01-01).
const (
	pgEpochDays   = 10957
	pgEpochMicros = int64(pgEpochDays) * 86400 * 1000000
)

// appendColumn appends n values of encoding enc to b (validity bitmap
// valid, the present values in vals) and returns what is left of vals,
// and whether a value is NaN. Numerics go to a DECIMAL column's builder
// as decimals of the given scale (a NaN as a NULL: the caller stores the
// column as text and decodes the values again), to any other as text.
func appendColumn(b array.Builder, enc string, scale, n int, valid, vals []byte) ([]byte, bool, error) {
	short := pgError("08P01", "malformed columnstore_load chunk: a column's values are cut short", "", "")
	present := func(r int) bool { return valid[r>>3]&(1<<(r&7)) != 0 }
	// Fixed-width values: one loop per type, which the builders' appends
	// (their capacity reserved by decode) keep cheap.
	if w := encWidth[enc]; w > 0 {
		count := 0
		for r := 0; r < n; r++ {
			if present(r) {
				count++
			}
		}
		if len(vals) < count*w {
			return nil, false, short
		}
		rest := vals[count*w:]
		switch enc {
		case EncBool:
			fixedColumn(b.(*array.BooleanBuilder), n, present, vals, 1, func(v []byte) bool { return v[0] != 0 })
		case EncInt2:
			fixedColumn(b.(*array.Int32Builder), n, present, vals, 2, func(v []byte) int32 { return int32(int16(binary.BigEndian.Uint16(v))) })
		case EncInt4:
			fixedColumn(b.(*array.Int32Builder), n, present, vals, 4, func(v []byte) int32 { return int32(binary.BigEndian.Uint32(v)) })
		case EncInt8:
			fixedColumn(b.(*array.Int64Builder), n, present, vals, 8, func(v []byte) int64 { return int64(binary.BigEndian.Uint64(v)) })
		case EncFloat4:
			fixedColumn(b.(*array.Float32Builder), n, present, vals, 4, func(v []byte) float32 { return math.Float32frombits(binary.BigEndian.Uint32(v)) })
		case EncFloat8:
			fixedColumn(b.(*array.Float64Builder), n, present, vals, 8, func(v []byte) float64 { return math.Float64frombits(binary.BigEndian.Uint64(v)) })
		case EncDate:
			fixedColumn(b.(*array.Date32Builder), n, present, vals, 4, func(v []byte) arrow.Date32 {
				return arrow.Date32(dateFromPG(int32(binary.BigEndian.Uint32(v))))
			})
		case EncTime:
			fixedColumn(b.(*array.Time64Builder), n, present, vals, 8, func(v []byte) arrow.Time64 { return arrow.Time64(int64(binary.BigEndian.Uint64(v))) })
		case EncTimestamp:
			fixedColumn(b.(*array.TimestampBuilder), n, present, vals, 8, func(v []byte) arrow.Timestamp {
				return arrow.Timestamp(timestampFromPG(int64(binary.BigEndian.Uint64(v))))
			})
		case EncUUID:
			sb := b.(*array.StringBuilder)
			for r := 0; r < n; r++ {
				if !present(r) {
					sb.AppendNull()
					continue
				}
				sb.Append(uuidText(vals[:16]))
				vals = vals[16:]
			}
		}
		return rest, false, nil
	}
	var text []byte // a numeric's text
	nan := false    // a value is NaN (numeric's, or text)
	db, _ := b.(*array.Decimal128Builder)
	sb, _ := b.(*array.StringBuilder)
	bb, _ := b.(*array.BinaryBuilder)
	for r := 0; r < n; r++ {
		if !present(r) {
			b.AppendNull()
			continue
		}
		if len(vals) < 4 {
			return nil, false, short
		}
		size := int(binary.BigEndian.Uint32(vals))
		if len(vals)-4 < size {
			return nil, false, short
		}
		v := vals[4 : 4+size]
		vals = vals[4+size:]
		switch {
		case enc == EncNumeric && db != nil:
			d, err := numericDecimal(v, scale)
			switch {
			case errors.Is(err, errDecimalNaN):
				nan = true
				db.UnsafeAppendBoolToBitmap(false)
			case errors.Is(err, ErrCopyMalformed):
				return nil, false, pgError("08P01", "malformed columnstore_load chunk: a numeric value is malformed", "", "")
			case err != nil:
				return nil, false, pgError("22003", "columnstore_load: "+err.Error(), "", "")
			default:
				db.UnsafeAppend(d)
			}
		case enc == EncNumeric:
			var ok bool
			if text, ok = numericText(text[:0], v); !ok {
				return nil, false, pgError("08P01", "malformed columnstore_load chunk: a numeric value is malformed", "", "")
			}
			nan = nan || string(text) == "NaN"
			sb.BinaryBuilder.Append(text)
		case sb != nil:
			sb.BinaryBuilder.Append(v)
			nan = nan || enc == EncText && string(v) == "NaN"
		case bb != nil:
			bb.Append(v)
		}
	}
	return vals, nan, nil
}

// fixedColumn appends n fixed-width values of width w (vals, the present
// ones only, already checked to be long enough) to b.
func fixedColumn[T any, B interface {
	UnsafeAppend(T)
	UnsafeAppendBoolToBitmap(bool)
}](b B, n int, present func(int) bool, vals []byte, w int, conv func([]byte) T) {
	for r := 0; r < n; r++ {
		if !present(r) {
			b.UnsafeAppendBoolToBitmap(false)
			continue
		}
		b.UnsafeAppend(conv(vals[:w]))
		vals = vals[w:]
	}
}

// dateFromPG is a PostgreSQL date as DuckDB stores it: days since 1970,
// the infinities as DuckDB's (what CAST('infinity' AS DATE) gives).
func dateFromPG(d int32) int32 {
	switch d {
	case math.MinInt32:
		return -math.MaxInt32
	case math.MaxInt32:
		return math.MaxInt32
	}
	return d + pgEpochDays
}

// timestampFromPG is a PostgreSQL timestamp as the columnstore stores it:
// microseconds since 1970, DuckDB's infinities, and values whose
// microseconds since 1970 reach int64's maximum shifted down by
// TimestampShift (as timestampFromText does).
func timestampFromPG(t int64) int64 {
	switch t {
	case math.MinInt64:
		return -math.MaxInt64
	case math.MaxInt64:
		return math.MaxInt64
	}
	if t >= math.MaxInt64-pgEpochMicros {
		return int64(uint64(t) + uint64(pgEpochMicros) - TimestampShift)
	}
	return t + pgEpochMicros
}

func uuidText(v []byte) string { return string(appendUUID(make([]byte, 0, 36), v)) }

// Finish ends the data file and appends it to the table whose metadata
// file is base (the table's version when the load ends: other statements
// of the transaction may have written it meanwhile) as a new snapshot, in
// a new metadata file; base is left as it is. Without rows base comes back.
func (l *Loader) Finish(ctx context.Context, base string) (Appended, error) {
	if l.failed != nil {
		l.Abandon()
		return Appended{}, l.failed
	}
	err := l.end()
	if err != nil {
		l.removeFiles()
		return Appended{}, err
	}
	if l.rows == 0 {
		l.removeFiles()
		return Appended{MetadataLocation: base}, nil
	}
	if l.base != l.start {
		// Columns were stored as text on the version the load began with.
		if base != l.start {
			l.removeFiles()
			return Appended{}, pgError("40001", "the columnstore table changed while a load stored its columns holding NaN as text", "",
				"Run the statement again.")
		}
		base = l.base
	}
	res, err := appendLoaded(ctx, base, l.tableID, l.cols, l.paths, l.rows)
	if err != nil {
		l.removeFiles()
	}
	return res, err
}

// appendLoaded appends the data files of a load (paths, rows in all) to
// the table whose metadata file is base, which must be a version of the
// table tableID: a new snapshot in a new metadata file. The caller removes
// the files after an error.
func appendLoaded(ctx context.Context, base, tableID string, cols []Column, paths []string, rows int64) (Appended, error) {
	tbl, _, err := LoadColumnstore(ctx, base)
	if err == nil && tbl.Metadata().TableUUID().String() != tableID {
		err = pgError("08P01", fmt.Sprintf("%s is not a version of the table the load began with", base), "", "")
	}
	var dfs []iceberg.DataFile
	m := newMirror("", "", "", cols, nil)
	for _, p := range paths {
		if err != nil {
			break
		}
		var df iceberg.DataFile
		if df, err = m.dataFile(ctx, tbl, p); err == nil {
			dfs = append(dfs, df)
		}
	}
	if err != nil {
		return Appended{}, err
	}
	tx := tbl.NewTransaction()
	if err := tx.AddDataFiles(ctx, dfs, nil); err != nil {
		return Appended{}, err
	}
	newTbl, err := tx.Commit(ctx)
	if err != nil {
		return Appended{}, fmt.Errorf("write columnstore metadata: %w", err)
	}
	return Appended{MetadataLocation: metadataPath(newTbl.MetadataLocation()), Rows: rows, DataFiles: len(dfs)}, nil
}

func (l *Loader) removeFiles() {
	for _, p := range l.paths {
		os.Remove(p)
	}
}

// Abandon ends the load without a data file (the backend went away, or
// an error): the writer stops and its file is removed.
func (l *Loader) Abandon() {
	l.end()
	l.removeFiles()
}

// end closes the input of the file being written (once) and returns the
// outcome of its writing.
func (l *Loader) end() error {
	if !l.closed {
		l.closed = true
		close(l.in)
	}
	err := <-l.done
	l.done <- err
	return err
}

// numericText appends to out the text numeric_out gives of a numeric in its
// binary send format (v); false when v is malformed.
func numericText(out, v []byte) ([]byte, bool) {
	if len(v) < 8 {
		return out, false
	}
	ndigits := int(int16(binary.BigEndian.Uint16(v)))
	weight := int(int16(binary.BigEndian.Uint16(v[2:])))
	sign := binary.BigEndian.Uint16(v[4:])
	dscale := int(int16(binary.BigEndian.Uint16(v[6:])))
	if ndigits < 0 || dscale < 0 || len(v) != 8+2*ndigits {
		return out, false
	}
	switch sign {
	case 0xC000:
		return append(out, "NaN"...), true
	case 0xD000:
		return append(out, "Infinity"...), true
	case 0xF000:
		return append(out, "-Infinity"...), true
	case 0x4000:
		out = append(out, '-')
	case 0x0000:
	default:
		return out, false
	}
	digit := func(i int) int {
		if i < 0 || i >= ndigits {
			return 0
		}
		return int(binary.BigEndian.Uint16(v[8+2*i:]))
	}
	// the integer part: its first base-10000 digit without leading zeros
	if weight < 0 {
		out = append(out, '0')
	} else {
		for i := 0; i <= weight; i++ {
			d := digit(i)
			if d > 9999 {
				return out, false
			}
			if i == 0 {
				out = strconv.AppendInt(out, int64(d), 10)
			} else {
				out = append(out, byte('0'+d/1000), byte('0'+d/100%10), byte('0'+d/10%10), byte('0'+d%10))
			}
		}
	}
	if dscale > 0 {
		out = append(out, '.')
		end := len(out) + dscale
		for i := weight + 1; len(out) < end; i++ {
			d := digit(i)
			if d > 9999 {
				return out, false
			}
			out = append(out, byte('0'+d/1000), byte('0'+d/100%10), byte('0'+d/10%10), byte('0'+d%10))
		}
		out = out[:end]
	}
	return out, true
}
