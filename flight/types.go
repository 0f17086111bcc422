package flight

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/decimal256"
	"github.com/apache/arrow-go/v18/arrow/extensions"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pgmooncake/mooncake/catalog"
)

// PostgreSQL type OIDs that package catalog does not name.
const (
	oidOID   = 26
	oidJSON  = 114
	oidJSONB = 3802
)

// elementOIDs maps the array types that have an Arrow list form to their
// element types.
var elementOIDs = map[uint32]uint32{
	1000: catalog.OIDBool,
	1001: catalog.OIDBytea,
	1005: catalog.OIDInt2,
	1007: catalog.OIDInt4,
	1009: catalog.OIDText,
	1014: catalog.OIDBpchar,
	1015: catalog.OIDVarchar,
	1016: catalog.OIDInt8,
	1021: catalog.OIDFloat4,
	1022: catalog.OIDFloat8,
	1115: catalog.OIDTimestamp,
	1182: catalog.OIDDate,
	1183: catalog.OIDTime,
	1185: catalog.OIDTimestampTZ,
	1231: catalog.OIDNumeric,
	199:  oidJSON,
	2951: catalog.OIDUUID,
	3807: oidJSONB,
}

// ElementOID is the element type of the array type arrayOID, for the array
// types whose Arrow form is a list (see ArrowType); ok is false for any
// other type.
func ElementOID(arrayOID uint32) (elem uint32, ok bool) {
	elem, ok = elementOIDs[arrayOID]
	return elem, ok
}

// The Arrow types of PostgreSQL types that are not shared Arrow singletons.
var (
	timestampType   = &arrow.TimestampType{Unit: arrow.Microsecond}
	timestamptzType = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	uuidType        = extensions.NewUUIDType()
	jsonType        = newJSONType()
)

func newJSONType() *extensions.JSONType {
	t, err := extensions.NewJSONType(arrow.BinaryTypes.String)
	if err != nil {
		panic(err) // String is a storage type arrow.json supports
	}
	return t
}

// ArrowType is the Arrow type of a PostgreSQL result column of type oid
// (typmod as in pg_attribute, -1 for none). It is the contract between the
// Flight service and its clients:
//
//   - bool: Boolean; smallint, integer, bigint: Int16, Int32, Int64;
//     oid: Uint32.
//   - real, double precision: Float32, Float64; NaN and ±Infinity are kept
//     as the IEEE values.
//   - numeric(p,s): Decimal128(p,s) for p ≤ 38, Decimal256(p,s) for p ≤ 76,
//     String beyond. A decimal column cannot hold NaN or ±Infinity, which
//     numeric(p,s) accepts: such a value is an error (SQLSTATE 22003);
//     declare the column numeric without a typmod or cast it to text to
//     read it. numeric without a typmod, and numeric(p,s) with a negative
//     scale or a scale above its precision, are String: PostgreSQL's exact
//     text, such as "2.5000000000000000".
//   - date: Date32, days since 1970-01-01 of the proleptic Gregorian
//     calendar, PostgreSQL's whole range (4714-11-24 BC, -2440588, to
//     5874897-12-31); infinity is math.MaxInt32 and -infinity
//     math.MinInt32.
//   - timestamp: Timestamp(µs) without a time zone; timestamp with time
//     zone: Timestamp(µs, "UTC"), whatever the session's TimeZone.
//     infinity is math.MaxInt64 and -infinity math.MinInt64. Values from
//     4714-11-24 00:00:00 BC on are kept; those from 294247-01-10
//     04:00:54.775807 (UTC) on, which PostgreSQL holds (up to 294276-12-31
//     23:59:59.999999) but microseconds since 1970 do not, are an error
//     (SQLSTATE 22008).
//   - time: Time64(µs); 24:00:00 is 86,400,000,000.
//   - text, varchar, char(n), name, "char": String.
//   - bytea: Binary.
//   - uuid: the arrow.uuid extension (FixedSizeBinary(16) storage).
//   - json, jsonb: the arrow.json extension (String storage), the text as
//     PostgreSQL prints it.
//   - the arrays of the types above listed by ElementOID (bool[] ... time[],
//     jsonb[]): List of the element's type, the column's typmod applying to
//     the element (numeric(10,2)[] is list<decimal128(10,2)>). Only
//     one-dimensional values have a list form: a multi-dimensional value
//     is an error (SQLSTATE 0A000); read such a column with
//     array_to_string() or cast it to text. A value's lower bound is not
//     kept.
//   - money: String. From PostgreSQL's text it is that text ("$1,234.56");
//     from a mirror, which keeps money as its integer count of cents, it is
//     the plain amount, "1234.56" or "-1234.56" (see ConvertColumn).
//   - every other type (timetz, interval, inet, cidr, macaddr, bit, varbit,
//     tsvector, xml, the geometric types, enums, ranges, arrays of other
//     types, types of extensions, unknown OIDs): String, PostgreSQL's text
//     output.
func ArrowType(oid uint32, typmod int32) arrow.DataType {
	switch oid {
	case catalog.OIDBool:
		return arrow.FixedWidthTypes.Boolean
	case catalog.OIDInt2:
		return arrow.PrimitiveTypes.Int16
	case catalog.OIDInt4:
		return arrow.PrimitiveTypes.Int32
	case catalog.OIDInt8:
		return arrow.PrimitiveTypes.Int64
	case oidOID:
		return arrow.PrimitiveTypes.Uint32
	case catalog.OIDFloat4:
		return arrow.PrimitiveTypes.Float32
	case catalog.OIDFloat8:
		return arrow.PrimitiveTypes.Float64
	case catalog.OIDNumeric:
		p, s, ok := numericTypmod(typmod)
		switch {
		case !ok || s < 0 || s > p:
		case p <= decimal128.MaxPrecision:
			return &arrow.Decimal128Type{Precision: p, Scale: s}
		case p <= decimal256.MaxPrecision:
			return &arrow.Decimal256Type{Precision: p, Scale: s}
		}
	case catalog.OIDDate:
		return arrow.FixedWidthTypes.Date32
	case catalog.OIDTimestamp:
		return timestampType
	case catalog.OIDTimestampTZ:
		return timestamptzType
	case catalog.OIDTime:
		return arrow.FixedWidthTypes.Time64us
	case catalog.OIDBytea:
		return arrow.BinaryTypes.Binary
	case catalog.OIDUUID:
		return uuidType
	case oidJSON, oidJSONB:
		return jsonType
	}
	if elem, ok := ElementOID(oid); ok {
		return arrow.ListOf(ArrowType(elem, typmod))
	}
	return arrow.BinaryTypes.String
}

// numericTypmod decodes numeric's type modifier into its precision and
// scale (which PostgreSQL 15 and later allow to be negative or above the
// precision); ok is false if typmod sets neither.
func numericTypmod(typmod int32) (p, s int32, ok bool) {
	const varhdrsz = 4
	if typmod < varhdrsz {
		return 0, 0, false
	}
	m := typmod - varhdrsz
	return (m >> 16) & 0xffff, ((m & 0x7ff) ^ 1024) - 1024, true
}

// TextBuilder appends PostgreSQL text values of one column to an Arrow
// builder of the column's ArrowType. The text is PostgreSQL's output in a
// session with DateStyle ISO, IntervalStyle postgres, TimeZone UTC,
// extra_float_digits 1 (or more) and bytea_output hex (a timestamptz may
// come with any UTC offset). Parsing is strict: text PostgreSQL would not
// print for the type is an error (SQLSTATE 22P02, or 22007 for dates and
// times), and a value the Arrow type cannot hold exactly is an error too
// (22003 for numbers, 22008 for dates and times, 0A000 for a
// multi-dimensional array). Errors carry their SQLSTATE to the client
// (toStatus).
type TextBuilder struct {
	oid uint32
	b   array.Builder
	col textColumn
}

// NewTextBuilder returns a TextBuilder for a column of PostgreSQL type oid
// and modifier typmod. Release it when done.
func NewTextBuilder(mem memory.Allocator, oid uint32, typmod int32) *TextBuilder {
	b := array.NewBuilder(mem, ArrowType(oid, typmod))
	var col textColumn
	if lb, ok := b.(*array.ListBuilder); ok {
		col = &listColumn{b: lb, elems: newScalarColumn(lb.ValueBuilder())}
	} else {
		col = newScalarColumn(b)
	}
	return &TextBuilder{oid: oid, b: b, col: col}
}

// Append appends the value whose PostgreSQL text output is v. On error
// nothing is appended.
func (b *TextBuilder) Append(v string) error {
	if err := b.col.append(v); err != nil {
		return fmt.Errorf("PostgreSQL type %d: %w", b.oid, err)
	}
	return nil
}

// AppendNull appends a NULL.
func (b *TextBuilder) AppendNull() { b.b.AppendNull() }

// NewArray returns the values appended so far and resets the builder.
func (b *TextBuilder) NewArray() arrow.Array { return b.b.NewArray() }

// Release releases the builder's memory.
func (b *TextBuilder) Release() { b.b.Release() }

// Type is the Arrow type of the arrays the builder makes.
func (b *TextBuilder) Type() arrow.DataType { return b.b.Type() }

// textColumn parses text values into a builder.
type textColumn interface {
	// append parses v and appends it, or appends nothing on error.
	append(v string) error
}

// elemColumn is a textColumn that can also hold the elements of arrays.
type elemColumn interface {
	textColumn
	// appendElems parses every element, then, if all are valid, calls
	// begin and appends them; on error it appends nothing.
	appendElems(elems []arrayElem, begin func()) error
}

// scalarColumn parses text into values of type T and appends them.
type scalarColumn[T any] struct {
	b     array.Builder
	parse func(string) (T, error)
	add   func(T)
	vals  []T // the parsed elements of the array being appended
}

func (c *scalarColumn[T]) append(v string) error {
	x, err := c.parse(v)
	if err != nil {
		return err
	}
	c.add(x)
	return nil
}

func (c *scalarColumn[T]) appendElems(elems []arrayElem, begin func()) error {
	c.vals = c.vals[:0]
	for _, e := range elems {
		if e.null {
			continue
		}
		x, err := c.parse(e.text)
		if err != nil {
			return err
		}
		c.vals = append(c.vals, x)
	}
	begin()
	j := 0
	for _, e := range elems {
		if e.null {
			c.b.AppendNull()
			continue
		}
		c.add(c.vals[j])
		j++
	}
	return nil
}

func scalar[T any](b array.Builder, parse func(string) (T, error), add func(T)) elemColumn {
	return &scalarColumn[T]{b: b, parse: parse, add: add}
}

// newScalarColumn is the parser of the values of builder b, of one of the
// non-list types ArrowType gives.
func newScalarColumn(b array.Builder) elemColumn {
	switch b := b.(type) {
	case *array.BooleanBuilder:
		return scalar(b, parseBool, b.Append)
	case *array.Int16Builder:
		return scalar(b, parseInt[int16](16), b.Append)
	case *array.Int32Builder:
		return scalar(b, parseInt[int32](32), b.Append)
	case *array.Int64Builder:
		return scalar(b, parseInt[int64](64), b.Append)
	case *array.Uint32Builder:
		return scalar(b, parseOID, b.Append)
	case *array.Float32Builder:
		return scalar(b, parseFloat32, b.Append)
	case *array.Float64Builder:
		return scalar(b, parseFloat64, b.Append)
	case *array.Decimal128Builder:
		t := b.Type().(*arrow.Decimal128Type)
		return scalar(b, parseDecimal128(t.Precision, t.Scale), b.Append)
	case *array.Decimal256Builder:
		t := b.Type().(*arrow.Decimal256Type)
		return scalar(b, parseDecimal256(t.Precision, t.Scale), b.Append)
	case *array.Date32Builder:
		return scalar(b, parseDate, b.Append)
	case *array.TimestampBuilder:
		withZone := b.Type().(*arrow.TimestampType).TimeZone != ""
		return scalar(b, func(s string) (arrow.Timestamp, error) { return parseTimestamp(s, withZone) }, b.Append)
	case *array.Time64Builder:
		return scalar(b, parseTime, b.Append)
	case *array.BinaryBuilder:
		return scalar(b, parseBytea, b.Append)
	case *extensions.UUIDBuilder:
		return scalar(b, parseUUID, b.AppendBytes)
	case *array.ExtensionBuilder: // arrow.json
		return scalar(b, parseVerbatim, b.StorageBuilder().(*array.StringBuilder).Append)
	case *array.StringBuilder:
		return scalar(b, parseVerbatim, b.Append)
	}
	panic(fmt.Sprintf("flight: no text parser for arrow type %s", b.Type()))
}

// listColumn parses one-dimensional array literals into a list builder.
type listColumn struct {
	b     *array.ListBuilder
	elems elemColumn
}

func (c *listColumn) append(v string) error {
	elems, err := parseArray(v)
	if err != nil {
		return err
	}
	return c.elems.appendElems(elems, func() { c.b.Append(true) })
}

func parseVerbatim(s string) (string, error) { return s, nil }

func parseBool(s string) (bool, error) {
	switch s {
	case "t":
		return true, nil
	case "f":
		return false, nil
	}
	return false, invalid("boolean", s)
}

// isDatetime tells whether typ names a date or time type, whose errors
// have the SQLSTATEs of class 22 PostgreSQL gives them.
func isDatetime(typ string) bool {
	return typ == "date" || typ == "time" || strings.HasPrefix(typ, "timestamp")
}

// invalid is the error of text PostgreSQL does not print for the type
// (22007 for dates and times, otherwise 22P02, as PostgreSQL's input
// functions say).
func invalid(typ, s string) error {
	code := "22P02" // invalid_text_representation
	if isDatetime(typ) {
		code = "22007" // invalid_datetime_format
	}
	return convErr(code, "invalid input syntax for type %s: %q", typ, s)
}

// outOfRange is the error of a value past the range of the type or of its
// Arrow form: 22008 for dates and times, otherwise 22003.
func outOfRange(typ, s string) error {
	code := "22003" // numeric_value_out_of_range
	if isDatetime(typ) {
		code = "22008" // datetime_field_overflow
	}
	return convErr(code, "value %q is out of range for type %s", s, typ)
}

// parseInt parses a decimal integer of the given bit size.
func parseInt[T int16 | int32 | int64](bits int) func(string) (T, error) {
	typ := "int" + strconv.Itoa(bits/8)
	return func(s string) (T, error) {
		v, err := strconv.ParseInt(s, 10, bits)
		if errors.Is(err, strconv.ErrRange) {
			return 0, outOfRange(typ, s)
		}
		if err != nil {
			return 0, invalid(typ, s)
		}
		return T(v), nil
	}
}

func parseOID(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	if errors.Is(err, strconv.ErrRange) {
		return 0, outOfRange("oid", s)
	}
	if err != nil {
		return 0, invalid("oid", s)
	}
	return uint32(v), nil
}

func parseFloat32(s string) (float32, error) {
	v, err := parseFloat(s, 32, "real")
	return float32(v), err
}

func parseFloat64(s string) (float64, error) { return parseFloat(s, 64, "double precision") }

// parseFloat reads a float's output: NaN, Infinity, -Infinity, or a
// decimal number with an optional exponent. Like PostgreSQL's input, it
// rejects a nonzero value that overflows or underflows to zero.
func parseFloat(s string, bits int, typ string) (float64, error) {
	switch s {
	case "NaN":
		return math.NaN(), nil
	case "Infinity":
		return math.Inf(1), nil
	case "-Infinity":
		return math.Inf(-1), nil
	}
	if s == "" || strings.Trim(s, "0123456789.eE+-") != "" {
		return 0, invalid(typ, s)
	}
	v, err := strconv.ParseFloat(s, bits)
	if errors.Is(err, strconv.ErrRange) {
		return 0, outOfRange(typ, s)
	}
	if err != nil {
		return 0, invalid(typ, s)
	}
	if v == 0 {
		mantissa, _, _ := strings.Cut(strings.ToLower(s), "e")
		if strings.Trim(mantissa, "0.+-") != "" {
			return 0, outOfRange(typ, s)
		}
	}
	return v, nil
}

// decimalDigits checks the text of a numeric value for a decimal of
// precision p and scale s and returns the digits of its unscaled integer,
// without leading zeros.
func decimalDigits(v string, p, s int32) (digits string, neg bool, err error) {
	typ := "numeric(" + strconv.Itoa(int(p)) + "," + strconv.Itoa(int(s)) + ")"
	switch v {
	case "NaN", "Infinity", "-Infinity":
		return "", false, convErr("22003", "numeric value %s cannot be held by an Arrow decimal (%s): declare the column as numeric without precision, or cast it to text", v, typ)
	}
	t := v
	if strings.HasPrefix(t, "-") {
		neg, t = true, t[1:]
	}
	intPart, frac, hasPoint := strings.Cut(t, ".")
	if intPart == "" || !isDigits(intPart) || !isDigits(frac) || (hasPoint && frac == "") {
		return "", false, invalid(typ, v)
	}
	if len(frac) > int(s) {
		if strings.Trim(frac[s:], "0") != "" {
			return "", false, convErr("22003", "value %q has more than %d fraction digits, too many for type %s", v, s, typ)
		}
		frac = frac[:s]
	}
	digits = strings.TrimLeft(intPart+frac+strings.Repeat("0", int(s)-len(frac)), "0")
	if len(digits) > int(p) {
		return "", false, outOfRange(typ, v)
	}
	if digits == "" {
		digits, neg = "0", false
	}
	return digits, neg, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// pow10 are the powers of ten that fit an int64.
var pow10 = func() (t [19]int64) {
	t[0] = 1
	for i := 1; i < len(t); i++ {
		t[i] = t[i-1] * 10
	}
	return t
}()

// decimalInt64 is the unscaled value at scale s of numeric text in the
// form PostgreSQL prints a numeric(p,s) in ([-]digits[.digits], at most s
// fraction digits), when it has fewer than 19 digits and fits precision p;
// ok is false for anything else, which decimalDigits then checks. It is
// the common case of a mirror scan's numeric(p,s) column, which the mirror
// keeps as PostgreSQL's text, and allocates nothing.
func decimalInt64(v string, p, s int32) (n int64, ok bool) {
	if p > 18 || s < 0 || s > p || len(v) == 0 {
		return 0, false
	}
	i, neg := 0, v[0] == '-'
	if neg {
		i = 1
	}
	start, digits, frac := i, 0, -1 // frac: fraction digits seen, -1 before the point
	for ; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= '0' && c <= '9':
			if frac >= 0 {
				frac++
			}
			if n == 0 && c == '0' {
				continue // a leading zero
			}
			if digits++; digits > 18 {
				return 0, false
			}
			n = n*10 + int64(c-'0')
		case c == '.' && frac < 0 && i > start:
			frac = 0
		default:
			return 0, false
		}
	}
	if i == start || frac == 0 || int32(max(frac, 0)) > s {
		return 0, false // no digits, "1.", or more fraction digits than s
	}
	for scale := int32(max(frac, 0)); scale < s; scale++ {
		if digits++; n != 0 && digits > 18 {
			return 0, false
		}
		n *= 10
	}
	if n >= pow10[p] {
		return 0, false // out of range: decimalDigits says so
	}
	if neg {
		n = -n
	}
	return n, true
}

// parseDecimal128 parses numeric text into a Decimal128(p,s) value.
func parseDecimal128(p, s int32) func(string) (decimal128.Num, error) {
	return func(v string) (decimal128.Num, error) {
		if n, ok := decimalInt64(v, p, s); ok {
			return decimal128.FromI64(n), nil
		}
		digits, neg, err := decimalDigits(v, p, s)
		if err != nil {
			return decimal128.Num{}, err
		}
		if len(digits) <= 18 {
			n, _ := strconv.ParseInt(digits, 10, 64)
			if neg {
				n = -n
			}
			return decimal128.FromI64(n), nil
		}
		return decimal128.FromBigInt(bigDigits(digits, neg)), nil
	}
}

// parseDecimal256 parses numeric text into a Decimal256(p,s) value.
func parseDecimal256(p, s int32) func(string) (decimal256.Num, error) {
	return func(v string) (decimal256.Num, error) {
		digits, neg, err := decimalDigits(v, p, s)
		if err != nil {
			return decimal256.Num{}, err
		}
		return decimal256.FromBigInt(bigDigits(digits, neg)), nil
	}
}

func bigDigits(digits string, neg bool) *big.Int {
	n, _ := new(big.Int).SetString(digits, 10)
	if neg {
		n.Neg(n)
	}
	return n
}

// PostgreSQL's date range, in days since 1970-01-01: 4714-11-24 BC (julian
// day 0; year -4713 of the proleptic Gregorian calendar, where 1 BC is year
// 0 and N BC is year 1-N) to 5874897-12-31. Its timestamps, with or
// without time zone, begin at minDate's midnight (UTC); they end at
// 294276-12-31 23:59:59.999999, past what microseconds since 1970 hold.
var (
	minDate      = daysFromCivil(-4713, 11, 24)
	maxDate      = daysFromCivil(5874897, 12, 31)
	minTimestamp = minDate * microsPerDay
)

const (
	microsPerSecond = 1000000
	microsPerDay    = 86400 * microsPerSecond
)

// parseDate reads an ISO date: "2024-01-31", "0044-03-15 BC", infinity or
// -infinity.
func parseDate(s string) (arrow.Date32, error) {
	switch s {
	case "infinity":
		return math.MaxInt32, nil
	case "-infinity":
		return math.MinInt32, nil
	}
	t, bc := strings.CutSuffix(s, " BC")
	days, ok := parseYMD(t, bc)
	if !ok {
		return 0, invalid("date", s)
	}
	if days < minDate || days > maxDate {
		return 0, outOfRange("date", s)
	}
	return arrow.Date32(days), nil
}

// parseYMD reads "YYYY-MM-DD" (four digits of year or more, the year of
// the era BC if bc) into days since 1970-01-01 of the proleptic Gregorian
// calendar.
func parseYMD(s string, bc bool) (int64, bool) {
	n := len(s)
	if n < 10 || s[n-6] != '-' || s[n-3] != '-' || n > 14 {
		return 0, false
	}
	y, m, d := s[:n-6], s[n-5:n-3], s[n-2:]
	if !isDigits(y) || !isDigits(m) || !isDigits(d) {
		return 0, false
	}
	year, _ := strconv.ParseInt(y, 10, 64)
	month, _ := strconv.Atoi(m)
	day, _ := strconv.Atoi(d)
	if year == 0 {
		return 0, false
	}
	if bc {
		year = 1 - year
	}
	if month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) {
		return 0, false
	}
	return daysFromCivil(year, month, day), true
}

func daysInMonth(year int64, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil is the number of days from 1970-01-01 to the given date of
// the proleptic Gregorian calendar (year 0 is 1 BC). It counts in 400-year
// eras starting on March 1st, so that the leap day ends each year.
func daysFromCivil(year int64, month, day int) int64 {
	if month <= 2 {
		year--
	}
	era := floorDiv(year, 400)
	yoe := year - era*400                  // [0, 399]
	mp := int64((month + 9) % 12)          // March is 0
	doy := (153*mp+2)/5 + int64(day) - 1   // [0, 365]
	doe := yoe*365 + yoe/4 - yoe/100 + doy // [0, 146096]
	return era*146097 + doe - 719468       // 719468: 0000-03-01 to 1970-01-01
}

// civilFromDays is the inverse of daysFromCivil.
func civilFromDays(days int64) (year int64, month, day int) {
	days += 719468
	era := floorDiv(days, 146097)
	doe := days - era*146097                               // [0, 146096]
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // [0, 399]
	doy := doe - (365*yoe + yoe/4 - yoe/100)               // [0, 365]
	mp := (5*doy + 2) / 153                                // March is 0
	day = int(doy - (153*mp+2)/5 + 1)
	month = int((mp+2)%12) + 1
	year = yoe + era*400
	if month <= 2 {
		year++
	}
	return year, month, day
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// parseTimestamp reads an ISO timestamp, "2024-01-31 12:34:56.123456" with
// " BC" after it for the era BC, and for a timestamp with time zone an
// offset before the era: "+00", "+05:30", "-08", "+05:53:28". The result
// is in microseconds since 1970-01-01 00:00:00 UTC (of the local time
// itself for a timestamp without time zone).
func parseTimestamp(s string, withZone bool) (arrow.Timestamp, error) {
	typ := "timestamp"
	if withZone {
		typ = "timestamp with time zone"
	}
	switch s {
	case "infinity":
		return math.MaxInt64, nil
	case "-infinity":
		return math.MinInt64, nil
	}
	t, bc := strings.CutSuffix(s, " BC")
	date, clock, ok := strings.Cut(t, " ")
	if !ok {
		return 0, invalid(typ, s)
	}
	var offset int64 // seconds east of UTC
	if withZone {
		i := strings.LastIndexAny(clock, "+-")
		if i < 0 {
			return 0, invalid(typ, s)
		}
		if offset, ok = parseOffset(clock[i:]); !ok {
			return 0, invalid(typ, s)
		}
		clock = clock[:i]
	}
	days, ok := parseYMD(date, bc)
	if !ok {
		return 0, invalid(typ, s)
	}
	tod, ok := parseClock(clock)
	if !ok || tod >= microsPerDay {
		return 0, invalid(typ, s)
	}
	// The range is checked on the instant, not on the local date: in a
	// time zone west of UTC PostgreSQL prints its first timestamptz,
	// 4714-11-24 00:00:00+00 BC, on the day before ("4714-11-23
	// 19:03:58-04:56:02 BC"). An offset is less than a day.
	if days < minDate-1 {
		return 0, outOfRange(typ, s)
	}
	if days > math.MaxInt64/microsPerDay {
		return 0, pastArrowRange(typ, s)
	}
	us, ok1 := addMicros(days*microsPerDay, tod)
	us, ok2 := addMicros(us, -offset*microsPerSecond)
	switch {
	case !ok1 || !ok2 || us == math.MaxInt64:
		return 0, pastArrowRange(typ, s)
	case us < minTimestamp:
		return 0, outOfRange(typ, s)
	}
	return arrow.Timestamp(us), nil
}

// addMicros is a+b and whether it did not overflow.
func addMicros(a, b int64) (int64, bool) {
	sum := a + b
	return sum, (sum >= a) == (b >= 0)
}

// pastArrowRange is the error of a timestamp PostgreSQL holds (up to
// 294276-12-31 23:59:59.999999) but microseconds since 1970 do not, the
// largest int64 being infinity.
func pastArrowRange(typ, s string) error {
	return convErr("22008", "%s %q is out of the range of an Arrow timestamp (4714-11-24 00:00:00 BC to 294247-01-10 04:00:54.775806 UTC); cast the column to text", typ, s)
}

// parseOffset reads a UTC offset as PostgreSQL prints it: +HH, +HH:MM or
// +HH:MM:SS (or with -), into seconds.
func parseOffset(s string) (int64, bool) {
	if len(s) != 3 && len(s) != 6 && len(s) != 9 {
		return 0, false
	}
	var secs int64
	for i, unit := 1, int64(3600); i < len(s); i, unit = i+3, unit/60 {
		if i > 1 && s[i-1] != ':' {
			return 0, false
		}
		f := s[i : i+2]
		if !isDigits(f) {
			return 0, false
		}
		n, _ := strconv.ParseInt(f, 10, 64)
		if i > 1 && n > 59 {
			return 0, false
		}
		secs += n * unit
	}
	if s[0] == '-' {
		return -secs, true
	}
	return secs, s[0] == '+'
}

// parseClock reads "HH:MM:SS" with up to six fraction digits into
// microseconds since midnight; 24:00:00 is the only time past 23:59:59.
func parseClock(s string) (int64, bool) {
	hms, frac, hasFrac := strings.Cut(s, ".")
	if len(hms) != 8 || hms[2] != ':' || hms[5] != ':' || (hasFrac && (frac == "" || len(frac) > 6)) {
		return 0, false
	}
	h, m, sec := hms[:2], hms[3:5], hms[6:]
	if !isDigits(h) || !isDigits(m) || !isDigits(sec) || !isDigits(frac) {
		return 0, false
	}
	hh, _ := strconv.ParseInt(h, 10, 64)
	mm, _ := strconv.ParseInt(m, 10, 64)
	ss, _ := strconv.ParseInt(sec, 10, 64)
	var f int64
	if frac != "" {
		f, _ = strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
	}
	us := ((hh*60+mm)*60+ss)*microsPerSecond + f
	if hh > 24 || mm > 59 || ss > 59 || us > microsPerDay {
		return 0, false
	}
	return us, true
}

// parseTime reads a time of day, "12:34:56.789".
func parseTime(s string) (arrow.Time64, error) {
	us, ok := parseClock(s)
	if !ok {
		return 0, invalid("time", s)
	}
	return arrow.Time64(us), nil
}

// parseBytea reads bytea's hex output, "\x0a0b".
func parseBytea(s string) ([]byte, error) {
	h, ok := strings.CutPrefix(s, `\x`)
	if !ok {
		return nil, invalid("bytea", s)
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil, invalid("bytea", s)
	}
	return b, nil
}

// parseUUID reads a uuid in its canonical text form,
// xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx.
func parseUUID(s string) ([16]byte, error) {
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, invalid("uuid", s)
	}
	h := s[:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	if _, err := hex.Decode(u[:], []byte(h)); err != nil {
		return u, invalid("uuid", s)
	}
	return u, nil
}

// arrayElem is an element of an array literal: its text, or NULL.
type arrayElem struct {
	text string
	null bool
}

// parseArray splits the text output of a one-dimensional array, such as
// {1,2,NULL}, {"a b","c\"d"} or [0:1]={1,2}, into its elements.
func parseArray(s string) ([]arrayElem, error) {
	body, want := s, -1
	if strings.HasPrefix(s, "[") {
		bounds, rest, ok := strings.Cut(s[1:], "]")
		if ok && strings.HasPrefix(rest, "[") {
			return nil, multiDim(s)
		}
		lo, hi, ok2 := strings.Cut(bounds, ":")
		l, err1 := strconv.Atoi(lo)
		h, err2 := strconv.Atoi(hi)
		if !ok || !ok2 || err1 != nil || err2 != nil || h < l-1 || !strings.HasPrefix(rest, "=") {
			return nil, invalid("array", s)
		}
		body, want = rest[1:], h-l+1
	}
	if len(body) < 2 || body[0] != '{' || body[len(body)-1] != '}' {
		return nil, invalid("array", s)
	}
	inner := body[1 : len(body)-1]
	var elems []arrayElem
	if strings.HasPrefix(inner, "{") {
		return nil, multiDim(s)
	}
	for i := 0; inner != ""; i++ {
		if i > 0 {
			if inner[0] != ',' || len(inner) == 1 {
				return nil, invalid("array", s)
			}
			inner = inner[1:]
		}
		var e arrayElem
		if inner[0] == '"' {
			var b strings.Builder
			j := 1
			for ; j < len(inner) && inner[j] != '"'; j++ {
				if inner[j] == '\\' {
					j++
					if j == len(inner) {
						break
					}
				}
				b.WriteByte(inner[j])
			}
			if j >= len(inner) {
				return nil, invalid("array", s)
			}
			e.text, inner = b.String(), inner[j+1:]
			if inner != "" && inner[0] != ',' {
				return nil, invalid("array", s)
			}
		} else {
			j := strings.IndexByte(inner, ',')
			if j < 0 {
				j = len(inner)
			}
			e.text, inner = inner[:j], inner[j:]
			if e.text == "" || strings.ContainsAny(e.text, "{}\"\\ \t\n\r\v\f") {
				return nil, invalid("array", s)
			}
			e.null = strings.EqualFold(e.text, "NULL")
		}
		elems = append(elems, e)
	}
	if want >= 0 && len(elems) != want {
		return nil, invalid("array", s)
	}
	return elems, nil
}

func multiDim(s string) error {
	return convErr("0A000", "multi-dimensional array %q: only one-dimensional arrays have an Arrow list form; use array_to_string() or cast the column to text", s)
}

// ConvertColumn converts a DuckDB result column to ArrowType(oid, typmod).
// Columns DuckDB produced in the type's natural Arrow form pass through
// (retained, zero copy) when already equal to the target type; otherwise
// the result is a new array. The caller releases the result.
//
// The conversions:
//   - any string column (String, LargeString, StringView) holds
//     PostgreSQL's text: it is read as TextBuilder reads it, and a json
//     column in String form is relabeled arrow.json without a copy;
//   - integers to a wider or narrower integer type (smallint is kept as a
//     32-bit integer), an error if a value does not fit;
//   - decimals and integers to a decimal of the column's precision and
//     scale, an error if a value does not fit exactly; and to the text of
//     a numeric without typmod;
//   - money, kept as its integer count of cents, to its plain amount:
//     "1234.56", "-0.05";
//   - DuckDB's -infinity dates (-math.MaxInt32) to math.MinInt32;
//   - timestamps of any unit and zone to microseconds, relabeled "UTC" for
//     timestamp with time zone (the instants are the same); DuckDB's
//     -infinity (-math.MaxInt64) to math.MinInt64; values a mirror keeps
//     shifted (see catalog.TimestampShift) are past the range of an Arrow
//     timestamp and an error;
//   - times in nanoseconds, milliseconds or seconds to microseconds;
//   - LargeBinary, BinaryView and FixedSizeBinary to Binary;
//   - FixedSizeBinary(16), or an extension type stored as such, to
//     arrow.uuid, without a copy.
func ConvertColumn(mem memory.Allocator, col arrow.Array, oid uint32, typmod int32) (arrow.Array, error) {
	target := ArrowType(oid, typmod)
	out, err := convert(mem, col, oid, typmod, target)
	if err != nil {
		var ce *convError
		if !errors.As(err, &ce) {
			err = &convError{"XX000", err.Error()} // internal_error: no conversion
		}
		return nil, fmt.Errorf("arrow type %s to PostgreSQL type %d (%s): %w", col.DataType(), oid, target, err)
	}
	return out, nil
}

func convert(mem memory.Allocator, col arrow.Array, oid uint32, typmod int32, target arrow.DataType) (arrow.Array, error) {
	if ext, ok := col.(array.ExtensionArray); ok && !arrow.TypeEqual(col.DataType(), target) {
		return convert(mem, ext.Storage(), oid, typmod, target)
	}
	switch target.(type) {
	case *arrow.Date32Type:
		if a, ok := col.(*array.Date32); ok {
			return convertDates(mem, a), nil
		}
	case *arrow.TimestampType:
		if a, ok := col.(*array.Timestamp); ok {
			return convertTimestamps(mem, a, target)
		}
	}
	if arrow.TypeEqual(col.DataType(), target) {
		col.Retain()
		return col, nil
	}
	if s, ok := col.(array.StringLike); ok {
		return fromText(mem, s, oid, typmod, target)
	}
	switch t := target.(type) {
	case *arrow.Int16Type, *arrow.Int32Type, *arrow.Int64Type, *arrow.Uint32Type:
		if get, ok := integers(col); ok {
			return convertIntegers(mem, col, get, target)
		}
	case *arrow.Decimal128Type:
		if src, ok := col.(*array.Decimal128); ok {
			if st := src.DataType().(*arrow.Decimal128Type); st.Scale == t.Scale && st.Precision <= t.Precision {
				return relabel(col, target), nil
			}
		}
		if get, ok := decimals(col); ok {
			return convertDecimals(mem, col, get, t.Precision, t.Scale, target)
		}
	case *arrow.Decimal256Type:
		if get, ok := decimals(col); ok {
			return convertDecimals(mem, col, get, t.Precision, t.Scale, target)
		}
	case *arrow.StringType:
		return formatColumn(mem, col, oid)
	case *arrow.Time64Type:
		return convertTimes(mem, col)
	case *arrow.BinaryType:
		return convertBinary(mem, col)
	case *extensions.UUIDType:
		if fsb, ok := col.(*array.FixedSizeBinary); ok && fsb.DataType().(*arrow.FixedSizeBinaryType).ByteWidth == 16 {
			return array.NewExtensionArrayWithStorage(uuidType, fsb), nil
		}
	}
	return nil, errors.New("no conversion")
}

// relabel is col with the type typ, whose layout is col's, sharing its
// buffers.
func relabel(col arrow.Array, typ arrow.DataType) arrow.Array {
	d := col.Data()
	nd := array.NewData(typ, d.Len(), d.Buffers(), d.Children(), d.NullN(), d.Offset())
	defer nd.Release()
	return array.MakeFromData(nd)
}

// fromText converts a column of PostgreSQL text.
func fromText(mem memory.Allocator, col array.StringLike, oid uint32, typmod int32, target arrow.DataType) (arrow.Array, error) {
	if s, ok := col.(*array.String); ok && arrow.TypeEqual(target, jsonType) {
		return array.NewExtensionArrayWithStorage(jsonType, s), nil
	}
	if t, ok := target.(*arrow.Decimal128Type); ok {
		return decimalsFromText(mem, col, t)
	}
	b := NewTextBuilder(mem, oid, typmod)
	defer b.Release()
	for i := 0; i < col.Len(); i++ {
		if col.IsNull(i) {
			b.AppendNull()
			continue
		}
		if err := b.Append(col.Value(i)); err != nil {
			return nil, fmt.Errorf("row %d: %w", i, err)
		}
	}
	return b.NewArray(), nil
}

// decimalsFromText converts a column of numeric text to Decimal128, as
// TextBuilder does, with the values parsed straight into the builder: a
// mirror keeps numeric(p,s) as its text, and a scan of many rows spends
// its time here.
func decimalsFromText(mem memory.Allocator, col array.StringLike, t *arrow.Decimal128Type) (arrow.Array, error) {
	b := array.NewDecimal128Builder(mem, t)
	defer b.Release()
	b.Reserve(col.Len())
	parse := parseDecimal128(t.Precision, t.Scale)
	for i := 0; i < col.Len(); i++ {
		if col.IsNull(i) {
			b.UnsafeAppendBoolToBitmap(false)
			continue
		}
		v := col.Value(i)
		n, ok := decimalInt64(v, t.Precision, t.Scale)
		if ok {
			b.UnsafeAppend(decimal128.FromI64(n))
			continue
		}
		x, err := parse(v)
		if err != nil {
			return nil, fmt.Errorf("row %d: PostgreSQL type %d: %w", i, catalog.OIDNumeric, err)
		}
		b.UnsafeAppend(x)
	}
	return b.NewArray(), nil
}

// build appends each row of col to a new array of type typ with add, or a
// NULL for a NULL.
func build[B array.Builder](mem memory.Allocator, col arrow.Array, typ arrow.DataType, add func(b B, i int) error) (arrow.Array, error) {
	b := array.NewBuilder(mem, typ)
	defer b.Release()
	b.Reserve(col.Len())
	for i := 0; i < col.Len(); i++ {
		if col.IsNull(i) {
			b.AppendNull()
			continue
		}
		if err := add(b.(B), i); err != nil {
			return nil, fmt.Errorf("row %d: %w", i, err)
		}
	}
	return b.NewArray(), nil
}

// integers is the value getter of an integer column that fits int64.
func integers(col arrow.Array) (func(int) int64, bool) {
	switch a := col.(type) {
	case *array.Int8:
		return func(i int) int64 { return int64(a.Value(i)) }, true
	case *array.Int16:
		return func(i int) int64 { return int64(a.Value(i)) }, true
	case *array.Int32:
		return func(i int) int64 { return int64(a.Value(i)) }, true
	case *array.Int64:
		return func(i int) int64 { return a.Value(i) }, true
	case *array.Uint8:
		return func(i int) int64 { return int64(a.Value(i)) }, true
	case *array.Uint16:
		return func(i int) int64 { return int64(a.Value(i)) }, true
	case *array.Uint32:
		return func(i int) int64 { return int64(a.Value(i)) }, true
	}
	return nil, false
}

func convertIntegers(mem memory.Allocator, col arrow.Array, get func(int) int64, target arrow.DataType) (arrow.Array, error) {
	value := func(i int, lo, hi int64) (int64, error) {
		v := get(i)
		if v < lo || v > hi {
			return 0, convErr("22003", "%d is out of range for %s", v, target)
		}
		return v, nil
	}
	switch target.ID() {
	case arrow.INT16:
		return build(mem, col, target, func(b *array.Int16Builder, i int) error {
			v, err := value(i, math.MinInt16, math.MaxInt16)
			b.Append(int16(v))
			return err
		})
	case arrow.INT32:
		return build(mem, col, target, func(b *array.Int32Builder, i int) error {
			v, err := value(i, math.MinInt32, math.MaxInt32)
			b.Append(int32(v))
			return err
		})
	case arrow.UINT32:
		return build(mem, col, target, func(b *array.Uint32Builder, i int) error {
			v, err := value(i, 0, math.MaxUint32)
			b.Append(uint32(v))
			return err
		})
	default: // INT64
		return build(mem, col, target, func(b *array.Int64Builder, i int) error {
			b.Append(get(i))
			return nil
		})
	}
}

// decimals is the getter of the unscaled values of a decimal or integer
// column, and their scale.
func decimals(col arrow.Array) (func(int) (*big.Int, int32), bool) {
	switch a := col.(type) {
	case *array.Decimal128:
		s := a.DataType().(*arrow.Decimal128Type).Scale
		return func(i int) (*big.Int, int32) { return a.Value(i).BigInt(), s }, true
	case *array.Decimal256:
		s := a.DataType().(*arrow.Decimal256Type).Scale
		return func(i int) (*big.Int, int32) { return a.Value(i).BigInt(), s }, true
	}
	if get, ok := integers(col); ok {
		return func(i int) (*big.Int, int32) { return big.NewInt(get(i)), 0 }, true
	}
	return nil, false
}

var bigTen = big.NewInt(10)

// rescale is v, of scale from, at scale to, if exact.
func rescale(v *big.Int, from, to int32) (*big.Int, bool) {
	if to >= from {
		m := new(big.Int).Exp(bigTen, big.NewInt(int64(to-from)), nil)
		return v.Mul(v, m), true
	}
	m := new(big.Int).Exp(bigTen, big.NewInt(int64(from-to)), nil)
	q, r := new(big.Int).QuoRem(v, m, new(big.Int))
	return q, r.Sign() == 0
}

func convertDecimals(mem memory.Allocator, col arrow.Array, get func(int) (*big.Int, int32), p, s int32, target arrow.DataType) (arrow.Array, error) {
	limit := new(big.Int).Exp(bigTen, big.NewInt(int64(p)), nil)
	value := func(i int) (*big.Int, error) {
		v, from := get(i)
		text := formatDecimal(v, from)
		v, exact := rescale(v, from, s)
		if !exact {
			return nil, convErr("22003", "%s has more than %d fraction digits", text, s)
		}
		if new(big.Int).Abs(v).Cmp(limit) >= 0 {
			return nil, convErr("22003", "%s does not fit %s", text, target)
		}
		return v, nil
	}
	if target.ID() == arrow.DECIMAL256 {
		return build(mem, col, target, func(b *array.Decimal256Builder, i int) error {
			v, err := value(i)
			if err == nil {
				b.Append(decimal256.FromBigInt(v))
			}
			return err
		})
	}
	return build(mem, col, target, func(b *array.Decimal128Builder, i int) error {
		v, err := value(i)
		if err == nil {
			b.Append(decimal128.FromBigInt(v))
		}
		return err
	})
}

// formatColumn converts a column whose PostgreSQL type has the String form
// and that DuckDB did not give as text: money's cents, or a numeric.
func formatColumn(mem memory.Allocator, col arrow.Array, oid uint32) (arrow.Array, error) {
	switch oid {
	case catalog.OIDMoney:
		if a, ok := col.(*array.Int64); ok {
			return build(mem, col, arrow.BinaryTypes.String, func(b *array.StringBuilder, i int) error {
				b.Append(formatCents(a.Value(i)))
				return nil
			})
		}
	case catalog.OIDNumeric:
		if get, ok := decimals(col); ok {
			return build(mem, col, arrow.BinaryTypes.String, func(b *array.StringBuilder, i int) error {
				b.Append(formatDecimal(get(i)))
				return nil
			})
		}
	}
	return nil, errors.New("no conversion")
}

// formatCents is an amount in cents as a decimal number with two fraction
// digits.
func formatCents(v int64) string {
	sign, abs := "", uint64(v)
	if v < 0 {
		sign, abs = "-", -abs
	}
	return fmt.Sprintf("%s%d.%02d", sign, abs/100, abs%100)
}

func convertDates(mem memory.Allocator, a *array.Date32) arrow.Array {
	const duckNegInf = -math.MaxInt32
	fix := false
	for i := 0; i < a.Len() && !fix; i++ {
		fix = a.IsValid(i) && a.Value(i) == duckNegInf
	}
	if !fix {
		a.Retain()
		return a
	}
	out, _ := build(mem, a, arrow.FixedWidthTypes.Date32, func(b *array.Date32Builder, i int) error {
		if v := a.Value(i); v != duckNegInf {
			b.Append(v)
		} else {
			b.Append(math.MinInt32)
		}
		return nil
	})
	return out
}

// timestampMicros is a DuckDB timestamp of the given unit in microseconds
// since 1970, as sidecar/service reads it: ±infinity are math.MaxInt64 and
// math.MinInt64 (DuckDB's -infinity is -math.MaxInt64).
func timestampMicros(v int64, unit arrow.TimeUnit) (int64, error) {
	switch v {
	case math.MaxInt64:
		return v, nil
	case -math.MaxInt64, math.MinInt64:
		return math.MinInt64, nil
	}
	switch unit {
	case arrow.Second, arrow.Millisecond:
		m := int64(microsPerSecond)
		if unit == arrow.Millisecond {
			m = 1000
		}
		if v > (math.MaxInt64-1)/m || v < (math.MinInt64+1)/m {
			return 0, convErr("22008", "timestamp %d %s is past the range of microseconds", v, unit)
		}
		return v * m, nil
	case arrow.Microsecond:
		if v < catalog.TimestampShiftedBelow {
			// A mirror's value after 294247-01-10 04:00:54.775807 UTC
			// (see catalog.TimestampShift): microseconds since 1970 do not
			// hold it.
			return 0, convErr("22008", "a timestamp after 294247-01-10 04:00:54.775806 UTC is out of the range of an Arrow timestamp; cast the column to text")
		}
		return v, nil
	default: // nanoseconds
		return v / 1000, nil
	}
}

func convertTimestamps(mem memory.Allocator, a *array.Timestamp, target arrow.DataType) (arrow.Array, error) {
	unit := a.DataType().(*arrow.TimestampType).Unit
	if unit == arrow.Microsecond {
		fix := false
		for i := 0; i < a.Len(); i++ {
			if a.IsNull(i) {
				continue
			}
			v := int64(a.Value(i))
			if _, err := timestampMicros(v, unit); err != nil {
				return nil, fmt.Errorf("row %d: %w", i, err)
			}
			if v == -math.MaxInt64 {
				fix = true
			}
		}
		if !fix {
			if arrow.TypeEqual(a.DataType(), target) {
				a.Retain()
				return a, nil
			}
			return relabel(a, target), nil
		}
	}
	return build(mem, a, target, func(b *array.TimestampBuilder, i int) error {
		us, err := timestampMicros(int64(a.Value(i)), unit)
		b.Append(arrow.Timestamp(us))
		return err
	})
}

func convertTimes(mem memory.Allocator, col arrow.Array) (arrow.Array, error) {
	var get func(int) int64
	switch a := col.(type) {
	case *array.Time64: // nanoseconds; microseconds passed through
		get = func(i int) int64 { return int64(a.Value(i)) / 1000 }
	case *array.Time32:
		m := int64(1000)
		if a.DataType().(*arrow.Time32Type).Unit == arrow.Second {
			m = microsPerSecond
		}
		get = func(i int) int64 { return int64(a.Value(i)) * m }
	default:
		return nil, errors.New("no conversion")
	}
	return build(mem, col, arrow.FixedWidthTypes.Time64us, func(b *array.Time64Builder, i int) error {
		b.Append(arrow.Time64(get(i)))
		return nil
	})
}

func convertBinary(mem memory.Allocator, col arrow.Array) (arrow.Array, error) {
	a, ok := col.(interface{ Value(int) []byte })
	if !ok {
		return nil, errors.New("no conversion")
	}
	return build(mem, col, arrow.BinaryTypes.Binary, func(b *array.BinaryBuilder, i int) error {
		b.Append(a.Value(i))
		return nil
	})
}

// FormatText is the PostgreSQL text output of the value at row i of a column
// produced by ArrowType(oid, typmod), in the session settings TextBuilder
// reads (for tests that compare with psql); null is true for a NULL. A
// value TextBuilder reads is printed back as the same text, except that an
// array's explicit bounds are not kept.
func FormatText(col arrow.Array, i int, oid uint32, typmod int32) (text string, null bool) {
	if col.IsNull(i) {
		return "", true
	}
	switch a := col.(type) {
	case *array.Boolean:
		if a.Value(i) {
			return "t", false
		}
		return "f", false
	case *array.Int16:
		return strconv.FormatInt(int64(a.Value(i)), 10), false
	case *array.Int32:
		return strconv.FormatInt(int64(a.Value(i)), 10), false
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10), false
	case *array.Uint32:
		return strconv.FormatUint(uint64(a.Value(i)), 10), false
	case *array.Float32:
		return formatFloat(float64(a.Value(i)), 32), false
	case *array.Float64:
		return formatFloat(a.Value(i), 64), false
	case *array.Decimal128:
		return formatDecimal(a.Value(i).BigInt(), a.DataType().(*arrow.Decimal128Type).Scale), false
	case *array.Decimal256:
		return formatDecimal(a.Value(i).BigInt(), a.DataType().(*arrow.Decimal256Type).Scale), false
	case *array.Date32:
		return formatDate(a.Value(i)), false
	case *array.Timestamp:
		return formatTimestamp(int64(a.Value(i)), a.DataType().(*arrow.TimestampType).TimeZone != ""), false
	case *array.Time64:
		return formatClock(int64(a.Value(i))), false
	case *array.Binary:
		return `\x` + hex.EncodeToString(a.Value(i)), false
	case *extensions.UUIDArray:
		return formatUUID(a.Storage().(*array.FixedSizeBinary).Value(i)), false
	case array.ExtensionArray: // arrow.json
		return FormatText(a.Storage(), i, oid, typmod)
	case *array.String:
		return a.Value(i), false
	case *array.List:
		elem, _ := ElementOID(oid)
		return formatArray(a, i, elem, typmod), false
	}
	return col.ValueStr(i), false
}

// formatFloat prints a float as PostgreSQL 12 and later do with
// extra_float_digits > 0: the shortest digits that read back as the same
// value, in fixed notation for decimal exponents from -4 to 14 (float8) or
// 5 (float4), otherwise as d.ddde±XX.
func formatFloat(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		if math.Signbit(f) {
			return "-0"
		}
		return "0"
	}
	sci := strconv.FormatFloat(f, 'e', -1, bits)
	mantissa, e, _ := strings.Cut(sci, "e")
	exp, _ := strconv.Atoi(e)
	maxExp := 15
	if bits == 32 {
		maxExp = 6
	}
	if exp < -4 || exp >= maxExp {
		return sci
	}
	sign := ""
	if mantissa[0] == '-' {
		sign, mantissa = "-", mantissa[1:]
	}
	digits := strings.Replace(mantissa, ".", "", 1)
	switch {
	case exp < 0:
		return sign + "0." + strings.Repeat("0", -exp-1) + digits
	case len(digits) <= exp+1:
		return sign + digits + strings.Repeat("0", exp+1-len(digits))
	default:
		return sign + digits[:exp+1] + "." + digits[exp+1:]
	}
}

// formatDecimal prints the unscaled value v of the given scale with
// exactly scale fraction digits, as numeric does.
func formatDecimal(v *big.Int, scale int32) string {
	digits := new(big.Int).Abs(v).String()
	if scale > 0 {
		if len(digits) <= int(scale) {
			digits = strings.Repeat("0", int(scale)-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-int(scale)] + "." + digits[len(digits)-int(scale):]
	}
	if v.Sign() < 0 {
		return "-" + digits
	}
	return digits
}

func formatDate(d arrow.Date32) string {
	switch d {
	case math.MaxInt32:
		return "infinity"
	case math.MinInt32:
		return "-infinity"
	}
	date, bc := formatYMD(int64(d))
	return date + bc
}

// formatYMD prints a date as YYYY-MM-DD, with the era's suffix apart.
func formatYMD(days int64) (date, bc string) {
	y, m, d := civilFromDays(days)
	if y <= 0 {
		y, bc = 1-y, " BC"
	}
	return fmt.Sprintf("%04d-%02d-%02d", y, m, d), bc
}

func formatTimestamp(us int64, withZone bool) string {
	switch us {
	case math.MaxInt64:
		return "infinity"
	case math.MinInt64:
		return "-infinity"
	}
	days := floorDiv(us, microsPerDay)
	date, bc := formatYMD(days)
	s := date + " " + formatClock(us-days*microsPerDay)
	if withZone {
		s += "+00"
	}
	return s + bc
}

// formatClock prints microseconds since midnight as HH:MM:SS with the
// fraction's significant digits.
func formatClock(us int64) string {
	secs, frac := us/microsPerSecond, us%microsPerSecond
	s := fmt.Sprintf("%02d:%02d:%02d", secs/3600, secs/60%60, secs%60)
	if frac != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%06d", frac), "0")
	}
	return s
}

func formatUUID(u []byte) string {
	h := hex.EncodeToString(u)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// formatArray prints the list at row i as a one-dimensional array of
// element type elem.
func formatArray(a *array.List, i int, elem uint32, typmod int32) string {
	start, end := a.ValueOffsets(i)
	values := a.ListValues()
	var b strings.Builder
	b.WriteByte('{')
	for j := start; j < end; j++ {
		if j > start {
			b.WriteByte(',')
		}
		v, null := FormatText(values, int(j), elem, typmod)
		switch {
		case null:
			b.WriteString("NULL")
		case needsQuotes(v):
			b.WriteByte('"')
			for k := 0; k < len(v); k++ {
				if v[k] == '"' || v[k] == '\\' {
					b.WriteByte('\\')
				}
				b.WriteByte(v[k])
			}
			b.WriteByte('"')
		default:
			b.WriteString(v)
		}
	}
	b.WriteByte('}')
	return b.String()
}

// needsQuotes tells whether array_out quotes an element: an empty one, the
// word NULL in any case, and those with a brace, comma, quote, backslash
// or white space.
func needsQuotes(v string) bool {
	return v == "" || strings.EqualFold(v, "NULL") || strings.ContainsAny(v, "{},\"\\ \t\n\r\v\f")
}
