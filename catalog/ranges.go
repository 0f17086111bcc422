package catalog

import (
	"encoding/binary"
	"math"

	"github.com/apache/iceberg-go"
)

// ColumnRange is what the Iceberg metadata of a mirror's data files tells
// of one column, for estimating how many rows a condition keeps: the
// smallest and largest value on a numeric axis (integers and floats as
// themselves, dates in days and timestamps in microseconds since
// 1970-01-01), and how many values, NULLs among them, the files hold.
type ColumnRange struct {
	Lo, Hi float64
	Known  bool // Lo and Hi hold: every file has bounds, none infinite
	Values int64
	Nulls  int64
}

// fileRanges are the ranges of cols over files, in column order.
func fileRanges(schema *iceberg.Schema, cols []Column, files []iceberg.DataFile) []ColumnRange {
	out := make([]ColumnRange, len(cols))
	for i, c := range cols {
		f, ok := schema.FindFieldByID(c.ID)
		if !ok {
			continue
		}
		if !isNumericAxis(f.Type) {
			continue
		}
		r := ColumnRange{Known: true}
		seen := false
		for _, df := range files {
			r.Values += df.ValueCounts()[f.ID]
			r.Nulls += df.NullValueCounts()[f.ID]
			lo, ok1 := boundValue(f.Type, df.LowerBoundValues()[f.ID])
			hi, ok2 := boundValue(f.Type, df.UpperBoundValues()[f.ID])
			if !ok1 || !ok2 {
				// no usable bounds: fine for a file of NULLs only
				if df.NullValueCounts()[f.ID] < df.Count() {
					r.Known = false
				}
				continue
			}
			if !seen || lo < r.Lo {
				r.Lo = lo
			}
			if !seen || hi > r.Hi {
				r.Hi = hi
			}
			seen = true
		}
		r.Known = r.Known && (seen || r.Values > 0 && r.Values == r.Nulls)
		out[i] = r
	}
	return out
}

// mergeRanges is the ranges of the files of a and of b together.
func mergeRanges(a, b []ColumnRange) []ColumnRange {
	if len(a) == 0 {
		return b
	}
	if len(a) != len(b) {
		return nil
	}
	out := make([]ColumnRange, len(a))
	for i := range a {
		x, y := a[i], b[i]
		r := ColumnRange{Known: x.Known && y.Known, Values: x.Values + y.Values, Nulls: x.Nulls + y.Nulls,
			Lo: math.Min(x.Lo, y.Lo), Hi: math.Max(x.Hi, y.Hi)}
		// a side of NULLs only has no bounds to merge
		switch {
		case x.Values == x.Nulls && y.Known:
			r.Lo, r.Hi, r.Known = y.Lo, y.Hi, true
		case y.Values == y.Nulls && x.Known:
			r.Lo, r.Hi, r.Known = x.Lo, x.Hi, true
		}
		out[i] = r
	}
	return out
}

func isNumericAxis(t iceberg.Type) bool {
	switch t.(type) {
	case iceberg.Int32Type, iceberg.Int64Type, iceberg.Float32Type, iceberg.Float64Type,
		iceberg.DateType, iceberg.TimestampType, iceberg.TimestampTzType:
		return true
	}
	return false
}

// boundValue decodes an Iceberg bound (its single-value serialization) on
// the column's numeric axis; false for other types, NaN and the
// infinities (DuckDB's sentinels for dates and timestamps).
func boundValue(t iceberg.Type, b []byte) (float64, bool) {
	switch t.(type) {
	case iceberg.Int32Type:
		if len(b) == 4 {
			return float64(int32(binary.LittleEndian.Uint32(b))), true
		}
	case iceberg.DateType:
		if len(b) == 4 {
			v := int32(binary.LittleEndian.Uint32(b))
			return float64(v), v != math.MaxInt32 && v != -math.MaxInt32
		}
	case iceberg.Int64Type:
		if len(b) == 8 {
			return float64(int64(binary.LittleEndian.Uint64(b))), true
		}
	case iceberg.TimestampType, iceberg.TimestampTzType:
		if len(b) == 8 {
			v := int64(binary.LittleEndian.Uint64(b))
			return float64(v), v != math.MaxInt64 && v != -math.MaxInt64
		}
	case iceberg.Float32Type:
		if len(b) == 4 {
			v := float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
			return v, !math.IsNaN(v) && !math.IsInf(v, 0)
		}
	case iceberg.Float64Type:
		if len(b) == 8 {
			v := math.Float64frombits(binary.LittleEndian.Uint64(b))
			return v, !math.IsNaN(v) && !math.IsInf(v, 0)
		}
	}
	return 0, false
}

// Ranges returns the column ranges of the mirror's data files (nil when
// unknown), in column order. Rows not yet flushed are not in them.
func (m *Mirror) Ranges() []ColumnRange {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ranges
}
