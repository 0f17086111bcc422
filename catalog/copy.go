package catalog

import (
	"bytes"
	"context"
	gosql "database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5/pgconn"
)

// A copy of a mirror's source (create_table's initial copy, resync_table
// and the copies that follow DDL) reaches the sidecar as PostgreSQL's
// binary COPY format, one stream per session that reads the source (they
// read parts of the table at once). Each stream is decoded here into Arrow
// record batches of the columns' stored types, which one DuckDB COPY,
// running meanwhile, writes into a Parquet data file: no intermediate
// file, no text to parse for the types the sidecar knows. The rest (an
// enum, an array, json...) comes as its text output, as the stream's
// changes do.

// CopySelect is the SELECT list of the query whose binary COPY a part of a
// copy of cols reads: a column whose stored type the sidecar decodes from
// its binary form as itself, any other as its text output (under the
// session's settings, cdc.SessionParams, as the changes of the stream).
// format's %s is the type's output function, which a cast to text is not
// for every type (inet's and bool's casts differ); num_nulls keeps a NULL
// composite value apart from one of NULL fields.
func CopySelect(cols []Column) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		id := QuoteIdent(c.Name)
		if copyBinary(c.Type) {
			out[i] = id
		} else {
			out[i] = "CASE WHEN pg_catalog.num_nulls(" + id + ") = 0 THEN pg_catalog.format('%s', " + id + ") END"
		}
	}
	return out
}

// copyBinary reports whether values of t come in their binary send format.
func copyBinary(t ColumnType) bool {
	switch t.Kind {
	case KindText:
		return false
	case KindDecimal:
		return t.OID == OIDNumeric
	}
	return true
}

// copyBatchRows and copyBatchBytes bound a batch of a copy's part: a
// copy holds at most a batch being built per part and four waiting for
// DuckDB (a single value can exceed the bytes: it makes a batch alone).
const (
	copyBatchRows  = 65536
	copyBatchBytes = 16 << 20
)

// DecimalNaNError is a copy that found NaN in DECIMAL columns (their
// indexes), which no DECIMAL holds: the copy is made again with those
// columns stored as their text.
type DecimalNaNError struct{ Columns []int }

func (e *DecimalNaNError) Error() string {
	return fmt.Sprintf("NaN in %d numeric column(s) stored as DECIMAL", len(e.Columns))
}

// CopyWriter writes the rows of one copy, arriving in parts, to Parquet
// data files: one per part, so that each holds the rows of one range of
// the source's blocks in their order (a table filled in time order keeps
// row groups of narrow time ranges, which queries skip by their
// statistics; two parts feeding one file would interleave them).
type CopyWriter struct {
	ctx    context.Context
	duck   *gosql.DB
	dir    string // where the data files go
	cols   []Column
	schema *arrow.Schema
	sel    string // the DuckDB SELECT list turning a batch into stored columns
	mu     sync.Mutex
	files  []*copyFile
	nan    []bool // per column: a part found NaN in it
}

// copyFile is the DuckDB COPY writing one part's data file.
type copyFile struct {
	path   string
	in     chan arrow.RecordBatch
	quit   chan struct{} // closed when the DuckDB COPY has ended
	err    error         // the COPY's outcome, once quit is closed
	rows   int64
	closed bool // in is closed
}

// copySchema is the Arrow schema of a copy's batches: per column its
// stored type, or text for what DuckDB casts from text (uuid, and the
// types that come as text).
func copySchema(cols []Column) *arrow.Schema {
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: colName("c", i), Type: arrowStored(c.Type), Nullable: true}
	}
	return arrow.NewSchema(fields, nil)
}

// arrowStored is the Arrow type of values of t as the columnstore stores
// them, or text for those it stores from their text (uuid, KindText).
func arrowStored(t ColumnType) arrow.DataType {
	switch t.Kind {
	case KindBool:
		return arrow.FixedWidthTypes.Boolean
	case KindInt16, KindInt32:
		return arrow.PrimitiveTypes.Int32
	case KindInt64, KindMoney:
		return arrow.PrimitiveTypes.Int64
	case KindFloat32:
		return arrow.PrimitiveTypes.Float32
	case KindFloat64:
		return arrow.PrimitiveTypes.Float64
	case KindDecimal:
		return &arrow.Decimal128Type{Precision: int32(t.Precision), Scale: int32(t.Scale)}
	case KindDate:
		return arrow.FixedWidthTypes.Date32
	case KindTime:
		return arrow.FixedWidthTypes.Time64us
	case KindTimestamp:
		return &arrow.TimestampType{Unit: arrow.Microsecond}
	case KindTimestampTZ:
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	case KindBytea:
		return arrow.BinaryTypes.Binary
	}
	return arrow.BinaryTypes.String
}

// newCopyWriter starts a copy of cols into data files in dir.
func newCopyWriter(ctx context.Context, duck *gosql.DB, cols []Column, dir string) *CopyWriter {
	w := &CopyWriter{ctx: ctx, duck: duck, dir: dir, cols: cols, schema: copySchema(cols), nan: make([]bool, len(cols))}
	sel := make([]string, len(cols))
	for i, c := range cols {
		e := colName("c", i)
		if c.Type.Kind == KindUUID || c.Type.Kind == KindText {
			e = c.Type.CastFromText(e)
		}
		sel[i] = e + " AS " + QuoteIdent(c.Name)
	}
	w.sel = strings.Join(sel, ", ")
	return w
}

// startFile starts the DuckDB COPY of a part's data file, on a connection
// of its own.
func (w *CopyWriter) startFile() (*copyFile, error) {
	conn, err := w.duck.Conn(w.ctx)
	if err != nil {
		return nil, err
	}
	f := &copyFile{path: filepath.Join(w.dir, "data-"+newID()+".parquet"),
		in: make(chan arrow.RecordBatch, 2), quit: make(chan struct{})}
	w.mu.Lock()
	w.files = append(w.files, f)
	w.mu.Unlock()
	rdr := &chanReader{schema: w.schema, in: f.in}
	rdr.refs.Store(1)
	go func() {
		defer conn.Close()
		err := registerReader(conn, rdr, func(view string) error {
			_, err := conn.ExecContext(context.Background(), "COPY (SELECT "+w.sel+" FROM "+view+") TO "+
				QuoteLiteral(f.path)+" ("+bulkParquetOptions+", FIELD_IDS "+fieldIDs(w.cols)+")")
			return err
		})
		if err != nil {
			err = errors.New(Redact(err.Error()))
		}
		f.err = err
		close(f.quit)
		for b := range f.in { // what the part sent after the COPY failed
			b.Release()
		}
	}()
	return f, nil
}

// Columns are the columns the copy writes, in the order of CopySelect.
func (w *CopyWriter) Columns() []Column { return w.cols }

// finish ends the copy once its parts are closed: the data files that
// hold rows and the rows written, or why they could not be written (a part
// that found NaN in a DECIMAL column: a DecimalNaNError). On error no
// file remains.
func (w *CopyWriter) finish() ([]string, int64, error) {
	w.mu.Lock()
	files := w.files
	w.mu.Unlock()
	var err error
	for _, f := range files {
		f.end()
		<-f.quit
		if err == nil {
			err = f.err
		}
	}
	var nan []int
	for i, f := range w.nan {
		if f {
			nan = append(nan, i)
		}
	}
	if len(nan) > 0 {
		err = &DecimalNaNError{Columns: nan}
	}
	var paths []string
	var rows int64
	for _, f := range files {
		if err != nil || f.rows == 0 {
			os.Remove(f.path)
			continue
		}
		paths = append(paths, f.path)
		rows += f.rows
	}
	if err != nil {
		return nil, 0, err
	}
	return paths, rows, nil
}

// end closes the file's input (once): its COPY ends after the batches sent.
func (f *copyFile) end() {
	if !f.closed {
		f.closed = true
		close(f.in)
	}
}

// send hands a batch to the file's DuckDB COPY.
func (f *copyFile) send(b arrow.RecordBatch) error {
	select {
	case f.in <- b:
		f.rows += b.NumRows()
		return nil
	case <-f.quit:
		b.Release()
		if f.err != nil {
			return f.err
		}
		return errors.New("the copy's data file writer ended early")
	}
}

// CopyPart decodes one session's binary COPY stream of the copy's rows
// (an io.Writer for pgconn's CopyTo) into Arrow buffers of its own, one
// per column, that become a batch every copyBatchRows rows or
// copyBatchBytes bytes. Close ends it.
type CopyPart struct {
	w       *CopyWriter
	file    *copyFile
	cols    []copyColumn
	buf     []byte   // an incomplete row (or header) carried to the next Write
	fields  [][]byte // the fields of the row being decoded; nil for NULL
	header  bool     // the header has been read
	trailer bool     // the trailer has been read
	nan     bool     // NaN was found: the rest is only looked through for more
	rows    int      // rows in the batch being built
	size    int      // bytes of values in it
	onBatch func(rows, bytes int64)
}

// How a column's values decode.
const (
	decBool = iota
	decInt16
	decInt32
	decInt64
	decFloat32
	decFloat64
	decDate
	decTime
	decTimestamp
	decDecimal
	decUUID
	decBytes // bytea
	decText  // text, varchar, char and the types that come as text: UTF-8
)

// copyColumn holds the values of one column of the batch being built:
// the validity bitmap, and either fixed-width little-endian values (a
// bitmap for booleans) or offsets and bytes.
type copyColumn struct {
	dec     int
	width   int // bytes a value of the pg form has (0: any)
	typ     arrow.DataType
	scale   int
	valid   []byte
	fixed   []byte
	offsets []byte // int32 little-endian, one more than the rows
	data    []byte
	nulls   int
}

// Part starts a part of the copy: one session's stream, into a data file
// of its own. onBatch, if not nil, is told of each batch handed to the
// data file's writer. Close must end it, whatever happened.
func (w *CopyWriter) Part(onBatch func(rows, bytes int64)) (*CopyPart, error) {
	f, err := w.startFile()
	if err != nil {
		return nil, err
	}
	p := &CopyPart{w: w, file: f, cols: make([]copyColumn, len(w.cols)), fields: make([][]byte, len(w.cols)), onBatch: onBatch}
	for i, c := range w.cols {
		col := &p.cols[i]
		col.typ = w.schema.Field(i).Type
		switch c.Type.Kind {
		case KindBool:
			col.dec, col.width = decBool, 1
		case KindInt16:
			col.dec, col.width = decInt16, 2
		case KindInt32:
			col.dec, col.width = decInt32, 4
		case KindInt64, KindMoney:
			col.dec, col.width = decInt64, 8
		case KindFloat32:
			col.dec, col.width = decFloat32, 4
		case KindFloat64:
			col.dec, col.width = decFloat64, 8
		case KindDate:
			col.dec, col.width = decDate, 4
		case KindTime:
			col.dec, col.width = decTime, 8
		case KindTimestamp, KindTimestampTZ:
			col.dec, col.width = decTimestamp, 8
		case KindDecimal:
			col.dec, col.scale = decDecimal, c.Type.Scale
		case KindUUID:
			col.dec, col.width = decUUID, 16
		case KindBytea:
			col.dec = decBytes
		default:
			col.dec = decText
		}
		col.reset(0)
	}
	return p, nil
}

// reset empties the column for a new batch (the old buffers belong to
// the batch made of them), with room for about rows rows.
func (c *copyColumn) reset(rows int) {
	rows = max(rows, 1024)
	c.valid = make([]byte, 0, rows/8+1)
	c.nulls = 0
	switch c.dec {
	case decBool:
		c.fixed = make([]byte, 0, rows/8+1)
	case decInt16, decInt32, decFloat32, decDate:
		c.fixed = make([]byte, 0, 4*rows)
	case decInt64, decFloat64, decTime, decTimestamp:
		c.fixed = make([]byte, 0, 8*rows)
	case decDecimal:
		c.fixed = make([]byte, 0, 16*rows)
	default:
		c.offsets = binary.LittleEndian.AppendUint32(make([]byte, 0, 4*rows+4), 0)
		c.data = make([]byte, 0, 64*rows)
	}
}

var copySignature = []byte("PGCOPY\n\377\r\n\x00")

// ErrCopyMalformed is a binary COPY stream that does not have the form of
// the copy's columns: from a server that is not PostgreSQL, or, in a copy
// of a source, a column whose type changed after the snapshot (COPY reads
// the rows of the snapshot with the columns' current types).
var ErrCopyMalformed = errors.New("malformed binary COPY stream")

func copyMalformed(what string) error {
	return fmt.Errorf("%w: %s", ErrCopyMalformed, what)
}

// Write takes the next bytes of the stream.
func (p *CopyPart) Write(data []byte) (int, error) {
	n := len(data)
	if len(p.buf) > 0 {
		p.buf = append(p.buf, data...)
		data = p.buf
	}
	rest, err := p.consume(data)
	if err != nil {
		return 0, err
	}
	// rest may alias p.buf: keep it at the buffer's start
	p.buf = append(p.buf[:0], rest...)
	return n, nil
}

// consume decodes the complete rows at the start of data and returns what
// follows them.
func (p *CopyPart) consume(data []byte) ([]byte, error) {
	if !p.header {
		if len(data) < len(copySignature)+8 {
			return data, nil
		}
		if !bytes.Equal(data[:len(copySignature)], copySignature) {
			return nil, copyMalformed("no signature")
		}
		ext := int(binary.BigEndian.Uint32(data[len(copySignature)+4:]))
		if len(data) < len(copySignature)+8+ext {
			return data, nil
		}
		data = data[len(copySignature)+8+ext:]
		p.header = true
	}
	for len(data) > 0 {
		if p.trailer {
			return nil, copyMalformed("bytes after the trailer")
		}
		if len(data) < 2 {
			return data, nil
		}
		nf := int(int16(binary.BigEndian.Uint16(data)))
		if nf == -1 {
			p.trailer = true
			data = data[2:]
			continue
		}
		if nf != len(p.fields) {
			return nil, copyMalformed(fmt.Sprintf("a row of %d fields where %d were expected", nf, len(p.fields)))
		}
		off := 2
		complete := true
		for i := range p.fields {
			if len(data)-off < 4 {
				complete = false
				break
			}
			size := int(int32(binary.BigEndian.Uint32(data[off:])))
			off += 4
			if size < 0 {
				p.fields[i] = nil
				continue
			}
			if len(data)-off < size {
				complete = false
				break
			}
			p.fields[i] = data[off : off+size : off+size]
			off += size
		}
		if !complete {
			return data, nil
		}
		if err := p.row(off); err != nil {
			return nil, err
		}
		data = data[off:]
	}
	return data, nil
}

// row decodes the fields of one row (size bytes on the wire).
func (p *CopyPart) row(size int) error {
	if p.nan {
		p.lookForNaN()
		return nil
	}
	r := p.rows
	for i, v := range p.fields {
		c := &p.cols[i]
		if err := c.add(r, v); err != nil {
			if errors.Is(err, errDecimalNaN) {
				// The copy is made again; the rest only tells which
				// other columns hold NaN.
				p.nan = true
				p.w.mu.Lock()
				p.w.nan[i] = true
				p.w.mu.Unlock()
				p.lookForNaN()
				return nil
			}
			var pe *pgconn.PgError
			if errors.As(err, &pe) {
				// the column named in the error the client sees
				pe.Message = fmt.Sprintf("column %q: %s", p.w.cols[i].Name, pe.Message)
				return pe
			}
			return fmt.Errorf("column %q: %w", p.w.cols[i].Name, err)
		}
	}
	p.rows++
	p.size += size
	if p.rows >= copyBatchRows || p.size >= copyBatchBytes {
		return p.flush()
	}
	return nil
}

// add appends the value v (nil: NULL) of row r of the batch.
func (c *copyColumn) add(r int, v []byte) error {
	if r&7 == 0 {
		c.valid = append(c.valid, 0)
		if c.dec == decBool {
			c.fixed = append(c.fixed, 0)
		}
	}
	if v == nil {
		c.nulls++
		switch c.dec {
		case decBool:
		case decInt16, decInt32, decFloat32, decDate:
			c.fixed = append(c.fixed, 0, 0, 0, 0)
		case decInt64, decFloat64, decTime, decTimestamp:
			c.fixed = append(c.fixed, 0, 0, 0, 0, 0, 0, 0, 0)
		case decDecimal:
			c.fixed = append(c.fixed, make([]byte, 16)...)
		default:
			c.offsets = binary.LittleEndian.AppendUint32(c.offsets, uint32(len(c.data)))
		}
		return nil
	}
	if c.width > 0 && len(v) != c.width {
		return copyMalformed(fmt.Sprintf("a value of %d bytes where %d were expected", len(v), c.width))
	}
	c.valid[r>>3] |= 1 << (r & 7)
	le := binary.LittleEndian
	be := binary.BigEndian
	switch c.dec {
	case decBool:
		if v[0] != 0 {
			c.fixed[r>>3] |= 1 << (r & 7)
		}
	case decInt16:
		c.fixed = le.AppendUint32(c.fixed, uint32(int32(int16(be.Uint16(v)))))
	case decInt32, decFloat32:
		c.fixed = le.AppendUint32(c.fixed, be.Uint32(v))
	case decInt64, decFloat64, decTime:
		c.fixed = le.AppendUint64(c.fixed, be.Uint64(v))
	case decDate:
		c.fixed = le.AppendUint32(c.fixed, uint32(dateFromPG(int32(be.Uint32(v)))))
	case decTimestamp:
		c.fixed = le.AppendUint64(c.fixed, uint64(timestampFromPG(int64(be.Uint64(v)))))
	case decDecimal:
		n, err := numericDecimal(v, c.scale)
		if err != nil {
			c.valid[r>>3] &^= 1 << (r & 7)
			return err
		}
		c.fixed = le.AppendUint64(le.AppendUint64(c.fixed, n.LowBits()), uint64(n.HighBits()))
	case decUUID:
		c.data = appendUUID(c.data, v)
		c.offsets = le.AppendUint32(c.offsets, uint32(len(c.data)))
	case decBytes:
		c.data = append(c.data, v...)
		c.offsets = le.AppendUint32(c.offsets, uint32(len(c.data)))
	default:
		if !utf8.Valid(v) {
			c.valid[r>>3] &^= 1 << (r & 7)
			return pgError("22021", "invalid byte sequence for encoding \"UTF8\"", fmt.Sprintf("The value begins %q.", truncateBytes(v, 40)), "")
		}
		c.data = append(c.data, v...)
		c.offsets = le.AppendUint32(c.offsets, uint32(len(c.data)))
	}
	return nil
}

// array makes the column's values (n rows) an Arrow array.
func (c *copyColumn) array(n int) arrow.Array {
	bufs := []*memory.Buffer{memory.NewBufferBytes(c.valid)}
	if c.offsets != nil {
		bufs = append(bufs, memory.NewBufferBytes(c.offsets), memory.NewBufferBytes(c.data))
	} else {
		bufs = append(bufs, memory.NewBufferBytes(c.fixed))
	}
	d := array.NewData(c.typ, n, bufs, nil, c.nulls, 0)
	defer d.Release()
	return array.MakeFromData(d)
}

// appendUUID appends the text of a uuid (its 16 bytes v) to out.
func appendUUID(out, v []byte) []byte {
	const hexd = "0123456789abcdef"
	for i, c := range v {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexd[c>>4], hexd[c&15])
	}
	return out
}

var errDecimalNaN = errors.New("NaN in a DECIMAL column")

// lookForNaN marks the DECIMAL columns whose value in the current row is NaN.
func (p *CopyPart) lookForNaN() {
	for i, v := range p.fields {
		if p.w.cols[i].Type.Kind == KindDecimal && len(v) >= 6 && binary.BigEndian.Uint16(v[4:]) == numericNaN {
			p.w.mu.Lock()
			p.w.nan[i] = true
			p.w.mu.Unlock()
		}
	}
}

// flush hands the batch built so far to the data file's writer.
func (p *CopyPart) flush() error {
	if p.rows == 0 {
		return nil
	}
	n := p.rows
	arrs := make([]arrow.Array, len(p.cols))
	for i := range p.cols {
		arrs[i] = p.cols[i].array(n)
		p.cols[i].reset(n)
	}
	b := array.NewRecordBatch(p.w.schema, arrs, int64(n))
	for _, a := range arrs {
		a.Release()
	}
	rows, size := int64(n), int64(p.size)
	p.rows, p.size = 0, 0
	if err := p.file.send(b); err != nil {
		return err
	}
	if p.onBatch != nil {
		p.onBatch(rows, size)
	}
	return nil
}

// Close hands the last rows to the writer, which ends the part's data
// file; the stream must have ended with its trailer.
func (p *CopyPart) Close() error {
	defer p.file.end()
	if p.nan {
		return nil
	}
	if !p.trailer || len(p.buf) > 0 {
		return copyMalformed("the stream ended before its trailer")
	}
	return p.flush()
}

// numeric's sign word in its binary form.
const (
	numericPos    = 0x0000
	numericNeg    = 0x4000
	numericNaN    = 0xC000
	numericPInf   = 0xD000
	numericNInf   = 0xF000
	numericDigits = 10000
)

func truncateBytes(v []byte, n int) []byte {
	if len(v) > n {
		return v[:n]
	}
	return v
}

// numericDecimal is a numeric in its binary send form (v) as a 128-bit
// decimal of the given scale: errDecimalNaN for NaN, an error for the
// infinities, a value with more fraction digits than scale, or one past
// 38 digits (none of which a numeric(p,s) column holds).
func numericDecimal(v []byte, scale int) (decimal128.Num, error) {
	if len(v) < 8 {
		return decimal128.Num{}, copyMalformed("a numeric value is cut short")
	}
	ndigits := int(int16(binary.BigEndian.Uint16(v)))
	weight := int(int16(binary.BigEndian.Uint16(v[2:])))
	sign := binary.BigEndian.Uint16(v[4:])
	if ndigits < 0 || len(v) != 8+2*ndigits {
		return decimal128.Num{}, copyMalformed("a numeric value is malformed")
	}
	switch sign {
	case numericPos, numericNeg:
	case numericNaN:
		return decimal128.Num{}, errDecimalNaN
	case numericPInf, numericNInf:
		return decimal128.Num{}, errors.New("numeric infinity in a numeric(p,s) column")
	default:
		return decimal128.Num{}, copyMalformed("a numeric value has an unknown sign")
	}
	// The magnitude as the integer of its base-10000 digits, then scaled:
	// the last digit is worth 10000^(weight-ndigits+1), so the value times
	// 10^scale is that integer times 10^(scale + 4*(weight-ndigits+1)).
	exp := scale + 4*(weight-ndigits+1)
	if ndigits == 0 {
		exp = 0
	}
	// A last digit past the scale must end in zeros (PostgreSQL pads the
	// fraction to whole digits): they are dropped before they could
	// overflow.
	last, lastMul := uint64(0), uint64(numericDigits)
	if ndigits > 0 {
		last = uint64(binary.BigEndian.Uint16(v[6+2*ndigits:]))
	}
	if exp < 0 {
		if exp < -4 {
			return decimal128.Num{}, fmt.Errorf("a numeric value has more than %d fraction digits", scale)
		}
		for ; exp < 0; exp++ {
			if last%10 != 0 {
				return decimal128.Num{}, fmt.Errorf("a numeric value has more than %d fraction digits", scale)
			}
			last /= 10
			lastMul /= 10
		}
	}
	var hi, lo uint64
	overflow := false
	for i := range ndigits {
		d := uint64(binary.BigEndian.Uint16(v[8+2*i:]))
		if d >= numericDigits {
			return decimal128.Num{}, copyMalformed("a numeric digit is out of range")
		}
		m := uint64(numericDigits)
		if i == ndigits-1 {
			d, m = last, lastMul
		}
		hi, lo, overflow = mulAdd128(hi, lo, m, d, overflow)
	}
	for ; exp > 0 && !overflow; exp-- {
		hi, lo, overflow = mulAdd128(hi, lo, 10, 0, overflow)
	}
	if overflow || hi >= 1<<63 {
		return decimal128.Num{}, errors.New("a numeric value does not fit in 38 digits")
	}
	n := decimal128.New(int64(hi), lo)
	if sign == numericNeg {
		n = n.Negate()
	}
	return n, nil
}

// mulAdd128 is (hi,lo)*m + a, with overflow set once the result passes
// 128 bits.
func mulAdd128(hi, lo, m, a uint64, overflow bool) (uint64, uint64, bool) {
	h1, l := bits.Mul64(lo, m)
	h2, h := bits.Mul64(hi, m)
	h, c := bits.Add64(h, h1, 0)
	l, c2 := bits.Add64(l, a, 0)
	h, c3 := bits.Add64(h, 0, c2)
	return h, l, overflow || h2 != 0 || c != 0 || c3 != 0
}

// copyInto runs a copy into new data files in dir: fill reads the rows
// into the writer it is given (Part per session, each closed). A copy
// whose DECIMAL columns hold NaN is made again with those columns stored
// as their text: the columns returned are those written.
func copyInto(ctx context.Context, duck *gosql.DB, cols []Column, dir string, fill func(*CopyWriter) error) ([]Column, []string, int64, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, 0, err
	}
	for {
		w := newCopyWriter(ctx, duck, cols, dir)
		ferr := fill(w)
		paths, n, err := w.finish()
		if ferr != nil {
			for _, p := range paths {
				os.Remove(p)
			}
			return nil, nil, 0, ferr
		}
		var nan *DecimalNaNError
		if errors.As(err, &nan) {
			cols = slices.Clone(cols)
			for _, i := range nan.Columns {
				cols[i].Type = cols[i].Type.AsText()
			}
			continue
		}
		if err != nil {
			return nil, nil, 0, err
		}
		return cols, paths, n, nil
	}
}
