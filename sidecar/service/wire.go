package service

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmooncake/mooncake/catalog"
	"github.com/pgmooncake/mooncake/sql"
)

// Frame types of the FDW protocol (see PROTOCOL.md).
const (
	frameQuery       = 'Q'
	frameJSON        = 'J'
	frameRowDesc     = 'T'
	frameData        = 'D'
	frameComplete    = 'C'
	frameError       = 'E'
	maxRequestLength = 64 << 20 // a columnstore_append carries up to ~32 MB of rows
	dataFrameTarget  = 256 << 10
)

func readFrame(r *bufio.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxRequestLength {
		return 0, nil, fmt.Errorf("frame of %d bytes is too large", n)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	return hdr[0], payload, nil
}

func writeFrame(w io.Writer, typ byte, payload []byte) error {
	var hdr [5]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// errorPayload encodes err as an E frame payload. Errors that carry a
// SQLSTATE keep it; anything else is an internal error.
func errorPayload(err error) []byte {
	pgErr := &pgconn.PgError{Code: "XX000", Message: err.Error()}
	var e *pgconn.PgError
	if errors.As(err, &e) {
		c := *e
		pgErr = &c
	}
	// PROTOCOL.md: C and M are always present.
	if len(pgErr.Code) != 5 {
		pgErr.Code = "XX000"
	}
	if pgErr.Message == "" {
		pgErr.Message = "unknown error in the mooncake sidecar"
	}
	var b []byte
	add := func(code byte, s string) {
		if s == "" {
			return
		}
		b = append(b, code)
		b = append(b, s...)
		b = append(b, 0)
	}
	add('C', pgErr.Code)
	add('M', pgErr.Message)
	add('D', pgErr.Detail)
	add('H', pgErr.Hint)
	return append(b, 0)
}

// PostgreSQL's epoch (2000-01-01) relative to Unix's.
const (
	pgEpochDays   = 10957
	pgEpochMicros = pgEpochDays * 86400 * 1000000
)

// rowEncoder writes Arrow record batches as D frames in PostgreSQL's binary
// COPY tuple layout.
type rowEncoder struct {
	scan *sql.Scan
	buf  []byte
	rows int64
}

func (e *rowEncoder) rowDescription() []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(e.scan.Formats)))
	for _, f := range e.scan.Formats {
		b = append(b, byte(f))
	}
	return b
}

// encode appends the rows of rec and writes full frames to w.
func (e *rowEncoder) encode(w io.Writer, rec arrow.RecordBatch) error {
	ncols := len(e.scan.Formats)
	cols := rec.Columns()
	for r := 0; r < int(rec.NumRows()); r++ {
		e.buf = binary.BigEndian.AppendUint16(e.buf, uint16(ncols))
		a := 0 // the arrow column of output column c
		for c := 0; c < ncols; c++ {
			var err error
			switch {
			case len(e.scan.Spread) > c && e.scan.Spread[c] != "":
				w := sql.SpreadWidth(e.scan.Spread[c])
				e.buf, err = appendSpread(e.buf, e.scan.Spread[c], cols[a:a+w], r)
				a += w - 1
			case len(e.scan.AvgInt) > c && e.scan.AvgInt[c]:
				e.buf, err = appendAvg(e.buf, cols[a], cols[a+1], r)
				a++
			case e.scan.Formats[c] == sql.FormatText:
				e.buf, err = appendText(e.buf, cols[a], r)
			default:
				e.buf, err = appendValue(e.buf, cols[a], r, e.scan.TypeOID[c])
			}
			a++
			if err != nil {
				return err
			}
		}
		e.rows++
		if len(e.buf) >= dataFrameTarget {
			if err := e.flush(w); err != nil {
				return err
			}
		}
	}
	return nil
}

func (e *rowEncoder) flush(w io.Writer) error {
	if len(e.buf) == 0 {
		return nil
	}
	err := writeFrame(w, frameData, e.buf)
	e.buf = e.buf[:0]
	return err
}

func appendLen(b []byte, n int) []byte { return binary.BigEndian.AppendUint32(b, uint32(int32(n))) }

// appendText appends one field of a column sent as text: the string as it
// is.
func appendText(b []byte, col arrow.Array, i int) ([]byte, error) {
	if col.IsNull(i) {
		return binary.BigEndian.AppendUint32(b, math.MaxUint32), nil
	}
	v, ok := stringAt(col, i)
	if !ok {
		return nil, fmt.Errorf("cannot send arrow type %s as text", col.DataType())
	}
	b = appendLen(b, len(v))
	return append(b, v...), nil
}

// stringAt is the value at row i of a string column of any Arrow layout;
// ok is false for another type.
func stringAt(col arrow.Array, i int) (v string, ok bool) {
	switch a := col.(type) {
	case *array.String:
		return a.Value(i), true
	case *array.LargeString:
		return a.Value(i), true
	case *array.StringView:
		return a.Value(i), true
	}
	return "", false
}

// appendSpread appends the text of an output column finished in the
// sidecar (a variance or standard deviation, a split sum or avg) from its
// DuckDB result columns (see sql.FinishSpread).
func appendSpread(b []byte, kind string, cols []arrow.Array, i int) ([]byte, error) {
	vals := make([]*string, len(cols))
	for j, col := range cols {
		if col.IsNull(i) {
			continue
		}
		v, ok := stringAt(col, i)
		if n, isInt := col.(*array.Int64); isInt {
			v, ok = strconv.FormatInt(n.Value(i), 10), true
		}
		if !ok {
			return nil, fmt.Errorf("%s from arrow type %s", kind, col.DataType())
		}
		vals[j] = &v
	}
	v, null, err := sql.FinishSpread(kind, vals)
	if err != nil {
		return nil, err
	}
	if null {
		return binary.BigEndian.AppendUint32(b, math.MaxUint32), nil
	}
	b = appendLen(b, len(v))
	return append(b, v...), nil
}

// appendAvg appends the text of an avg of integers or of a numeric(p,s)
// from its sum's text (a decimal, or NaN) and its count.
func appendAvg(b []byte, sum, count arrow.Array, i int) ([]byte, error) {
	n, ok := count.(*array.Int64)
	if !ok {
		return nil, fmt.Errorf("avg count of arrow type %s", count.DataType())
	}
	if sum.IsNull(i) || n.IsNull(i) || n.Value(i) == 0 {
		return binary.BigEndian.AppendUint32(b, math.MaxUint32), nil
	}
	s, ok := stringAt(sum, i)
	if !ok {
		return nil, fmt.Errorf("avg sum of arrow type %s", sum.DataType())
	}
	v, err := sql.AvgText(s, n.Value(i))
	if err != nil {
		return nil, err
	}
	b = appendLen(b, len(v))
	return append(b, v...), nil
}

// appendValue appends one field: its length and its bytes in the binary
// form of PostgreSQL type oid.
func appendValue(b []byte, col arrow.Array, i int, oid uint32) ([]byte, error) {
	if col.IsNull(i) {
		return binary.BigEndian.AppendUint32(b, math.MaxUint32), nil
	}
	switch a := col.(type) {
	case *array.Boolean:
		b = appendLen(b, 1)
		if a.Value(i) {
			return append(b, 1), nil
		}
		return append(b, 0), nil
	case *array.Int16:
		b = appendLen(b, 2)
		return binary.BigEndian.AppendUint16(b, uint16(a.Value(i))), nil
	case *array.Int32:
		b = appendLen(b, 4)
		return binary.BigEndian.AppendUint32(b, uint32(a.Value(i))), nil
	case *array.Int64:
		b = appendLen(b, 8)
		return binary.BigEndian.AppendUint64(b, uint64(a.Value(i))), nil
	case *array.Float32:
		b = appendLen(b, 4)
		return binary.BigEndian.AppendUint32(b, math.Float32bits(a.Value(i))), nil
	case *array.Float64:
		b = appendLen(b, 8)
		return binary.BigEndian.AppendUint64(b, math.Float64bits(a.Value(i))), nil
	case *array.String:
		return appendString(b, a.Value(i), oid)
	case *array.LargeString:
		return appendString(b, a.Value(i), oid)
	case *array.StringView:
		return appendString(b, a.Value(i), oid)
	case *array.Binary:
		return appendBytes(b, a.Value(i)), nil
	case *array.LargeBinary:
		return appendBytes(b, a.Value(i)), nil
	case *array.BinaryView:
		return appendBytes(b, a.Value(i)), nil
	case *array.FixedSizeBinary:
		return appendBytes(b, a.Value(i)), nil
	case array.ExtensionArray:
		// arrow.uuid and the like: their storage has the bytes.
		return appendValue(b, a.Storage(), i, oid)
	case *array.Date32:
		d := int32(a.Value(i))
		switch {
		case d == math.MaxInt32: // infinity
		case d == -math.MaxInt32 || d == math.MinInt32: // -infinity
			d = math.MinInt32
		default:
			d -= pgEpochDays
		}
		b = appendLen(b, 4)
		return binary.BigEndian.AppendUint32(b, uint32(d)), nil
	case *array.Timestamp:
		us, err := timestampMicros(a, i)
		if err != nil {
			return nil, err
		}
		b = appendLen(b, 8)
		return binary.BigEndian.AppendUint64(b, uint64(us)), nil
	case *array.Time64:
		// time: int64 microseconds since midnight.
		us := int64(a.Value(i))
		if a.DataType().(*arrow.Time64Type).Unit == arrow.Nanosecond {
			us /= 1000
		}
		b = appendLen(b, 8)
		return binary.BigEndian.AppendUint64(b, uint64(us)), nil
	case *array.Time32:
		us := int64(a.Value(i)) * 1000
		if a.DataType().(*arrow.Time32Type).Unit == arrow.Second {
			us *= 1000
		}
		b = appendLen(b, 8)
		return binary.BigEndian.AppendUint64(b, uint64(us)), nil
	default:
		return nil, fmt.Errorf("cannot send arrow type %s as PostgreSQL type %d", col.DataType(), oid)
	}
}

func appendBytes(b, v []byte) []byte {
	b = appendLen(b, len(v))
	return append(b, v...)
}

// appendString appends a string value: the string itself, except a uuid,
// which DuckDB gives as its text and PostgreSQL receives as 16 bytes.
func appendString(b []byte, v string, oid uint32) ([]byte, error) {
	if oid == catalog.OIDUUID {
		u, err := parseUUID(v)
		if err != nil {
			return nil, err
		}
		return appendBytes(b, u[:]), nil
	}
	b = appendLen(b, len(v))
	return append(b, v...), nil
}

// parseUUID reads a uuid in its canonical text form,
// xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx.
func parseUUID(s string) ([16]byte, error) {
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, fmt.Errorf("malformed uuid %q", s)
	}
	j := 0
	for i := 0; i < len(s); i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			continue // a hyphen
		}
		hi, ok1 := hexDigit(s[i])
		lo, ok2 := hexDigit(s[i+1])
		if !ok1 || !ok2 {
			return u, fmt.Errorf("malformed uuid %q", s)
		}
		u[j] = hi<<4 | lo
		j++
		i++
	}
	return u, nil
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func timestampMicros(a *array.Timestamp, i int) (int64, error) {
	v := int64(a.Value(i))
	switch v {
	case math.MaxInt64: // infinity
		return v, nil
	case -math.MaxInt64, math.MinInt64: // -infinity
		return math.MinInt64, nil
	}
	switch a.DataType().(*arrow.TimestampType).Unit {
	case arrow.Second:
		v *= 1000000
	case arrow.Millisecond:
		v *= 1000
	case arrow.Microsecond:
		if v < catalog.TimestampShiftedBelow {
			// Past DuckDB's range, stored shifted (catalog.TimestampShift):
			// shift back, modulo 2^64, then to PostgreSQL's epoch, which
			// fits int64 again.
			return int64(uint64(v) + catalog.TimestampShift - pgEpochMicros), nil
		}
	case arrow.Nanosecond:
		v /= 1000
	}
	return v - pgEpochMicros, nil
}
