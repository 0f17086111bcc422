package flight

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"time"

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
		return time.Unix(int64(a.Value(i))*86400, 0).UTC().Format("2006-01-02"), nil
	case *array.Date64:
		return time.UnixMilli(int64(a.Value(i))).UTC().Format("2006-01-02"), nil
	case *array.Timestamp:
		tt := a.DataType().(*arrow.TimestampType)
		t := a.Value(i).ToTime(tt.Unit)
		if tt.TimeZone != "" {
			return t.UTC().Format("2006-01-02 15:04:05.999999999") + "+00", nil
		}
		return t.UTC().Format("2006-01-02 15:04:05.999999999"), nil
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
