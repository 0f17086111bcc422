package flight

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// paramText is a parameter value the client sent, as PostgreSQL text;
// PostgreSQL's input function of the parameter's type reads it.
func paramText(col arrow.Array, i int) (string, error) {
	switch a := col.(type) {
	case *array.Boolean:
		return strconv.FormatBool(a.Value(i)), nil
	case *array.Int8:
		return strconv.FormatInt(int64(a.Value(i)), 10), nil
	case *array.Int16:
		return strconv.FormatInt(int64(a.Value(i)), 10), nil
	case *array.Int32:
		return strconv.FormatInt(int64(a.Value(i)), 10), nil
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10), nil
	case *array.Uint8:
		return strconv.FormatUint(uint64(a.Value(i)), 10), nil
	case *array.Uint16:
		return strconv.FormatUint(uint64(a.Value(i)), 10), nil
	case *array.Uint32:
		return strconv.FormatUint(uint64(a.Value(i)), 10), nil
	case *array.Uint64:
		return strconv.FormatUint(a.Value(i), 10), nil
	case *array.Float32:
		return floatText(float64(a.Value(i)), 32), nil
	case *array.Float64:
		return floatText(a.Value(i), 64), nil
	case *array.String:
		return a.Value(i), nil
	case *array.LargeString:
		return a.Value(i), nil
	case *array.StringView:
		return a.Value(i), nil
	case *array.Binary:
		return `\x` + hex.EncodeToString(a.Value(i)), nil
	case *array.LargeBinary:
		return `\x` + hex.EncodeToString(a.Value(i)), nil
	case *array.BinaryView:
		return `\x` + hex.EncodeToString(a.Value(i)), nil
	case *array.Decimal128:
		return a.Value(i).ToString(a.DataType().(*arrow.Decimal128Type).Scale), nil
	case *array.Decimal256:
		return a.Value(i).ToString(a.DataType().(*arrow.Decimal256Type).Scale), nil
	case *array.Date32:
		return formatDate(a.Value(i)), nil // BC dates and ±infinity as query results have them
	case *array.Date64:
		date, bc := formatYMD(floorDiv(int64(a.Value(i)), 86_400_000))
		return date + bc, nil
	case *array.Timestamp:
		tt := a.DataType().(*arrow.TimestampType)
		return timestampParam(int64(a.Value(i)), tt.Unit, tt.TimeZone != ""), nil
	case *array.Time32:
		return a.Value(i).ToTime(a.DataType().(*arrow.Time32Type).Unit).UTC().Format("15:04:05.999999999"), nil
	case *array.Time64:
		return a.Value(i).ToTime(a.DataType().(*arrow.Time64Type).Unit).UTC().Format("15:04:05.999999999"), nil
	case *array.FixedSizeBinary:
		return `\x` + hex.EncodeToString(a.Value(i)), nil
	case array.ExtensionArray:
		if a.ExtensionType().ExtensionName() == "arrow.uuid" {
			if fb, ok := a.Storage().(*array.FixedSizeBinary); ok && len(fb.Value(i)) == 16 {
				u := hex.EncodeToString(fb.Value(i))
				return u[0:8] + "-" + u[8:12] + "-" + u[12:16] + "-" + u[16:20] + "-" + u[20:], nil
			}
		}
		return paramText(a.Storage(), i)
	}
	if s := col.ValueStr(i); s != "" {
		return s, nil
	}
	return "", fmt.Errorf("values of Arrow type %s are not supported as parameters", col.DataType())
}

// timestampParam is a timestamp of the given unit as PostgreSQL reads it:
// "0044-03-15 12:00:00.5+00 BC" (the era last, as PostgreSQL prints it,
// since Go's time prints years before 1 as negative numbers PostgreSQL
// does not read), with ±infinity as the largest and smallest int64, as in
// query results and bulk ingest.
func timestampParam(v int64, unit arrow.TimeUnit, withZone bool) string {
	switch v {
	case math.MaxInt64:
		return "infinity"
	case math.MinInt64:
		return "-infinity"
	}
	perSec, width := int64(1), 0
	switch unit {
	case arrow.Millisecond:
		perSec, width = 1_000, 3
	case arrow.Microsecond:
		perSec, width = 1_000_000, 6
	case arrow.Nanosecond:
		perSec, width = 1_000_000_000, 9
	}
	perDay := 86400 * perSec
	days := floorDiv(v, perDay)
	rem := v - days*perDay
	date, bc := formatYMD(days)
	secs, frac := rem/perSec, rem%perSec
	s := fmt.Sprintf("%s %02d:%02d:%02d", date, secs/3600, secs/60%60, secs%60)
	if frac != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%0*d", width, frac), "0")
	}
	if withZone {
		s += "+00"
	}
	return s + bc
}

func floatText(v float64, bits int) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "Infinity"
	case math.IsInf(v, -1):
		return "-Infinity"
	}
	return strconv.FormatFloat(v, 'g', -1, bits)
}
