package catalog

import (
	"encoding/binary"
	"math"
	"testing"
)

// numericSend builds numeric's binary send format.
func numericSend(sign uint16, weight, dscale int16, digits ...uint16) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(digits)))
	b = binary.BigEndian.AppendUint16(b, uint16(weight))
	b = binary.BigEndian.AppendUint16(b, sign)
	b = binary.BigEndian.AppendUint16(b, uint16(dscale))
	for _, d := range digits {
		b = binary.BigEndian.AppendUint16(b, d)
	}
	return b
}

func TestNumericText(t *testing.T) {
	for _, c := range []struct {
		v    []byte
		want string
	}{
		{numericSend(0, 0, 0), "0"},
		{numericSend(0, 0, 2), "0.00"},
		{numericSend(0xC000, 0, 0), "NaN"},
		{numericSend(0xD000, 0, 0), "Infinity"},
		{numericSend(0xF000, 0, 0), "-Infinity"},
		{numericSend(0, 0, 2, 1234, 5000), "1234.50"},
		{numericSend(0x4000, 1, 0, 12, 3456), "-123456"},
		{numericSend(0, 2, 0, 1), "100000000"},            // trailing zero digits not stored
		{numericSend(0, -1, 4, 5), "0.0005"},              // 0.0005
		{numericSend(0, -2, 10, 12), "0.0000001200"},      // weight -2: the second fraction group
		{numericSend(0x4000, -1, 1, 5000), "-0.5"},        // dscale shorter than the digits
		{numericSend(0, 0, 6, 1, 2345, 6700), "1.234567"}, // cut inside a group
		{numericSend(0, 3, 1, 9999, 9999, 9999, 9999, 9000), "9999999999999999.9"},
	} {
		got, ok := numericText(nil, c.v)
		if !ok || string(got) != c.want {
			t.Errorf("numericText(%x) = %q, %v; want %q", c.v, got, ok, c.want)
		}
	}
	for _, bad := range [][]byte{nil, {0, 1}, numericSend(0x1234, 0, 0), numericSend(0, 0, 0, 10000), append(numericSend(0, 0, 0, 1), 0)} {
		if _, ok := numericText(nil, bad); ok {
			t.Errorf("numericText(%x) accepted a malformed value", bad)
		}
	}
}

func TestTimestampFromPG(t *testing.T) {
	for _, c := range []struct{ pg, want int64 }{
		{0, pgEpochMicros},
		{-pgEpochMicros, 0},
		{math.MaxInt64, math.MaxInt64},
		{math.MinInt64, -math.MaxInt64},
		// PostgreSQL's last timestamp, 294276-12-31 23:59:59.999999: past int64 once
		// counted from 1970, stored shifted (as timestampFromText stores it)
	} {
		if got := timestampFromPG(c.pg); got != c.want {
			t.Errorf("timestampFromPG(%d) = %d, want %d", c.pg, got, c.want)
		}
	}
	// PostgreSQL's last timestamp, 294276-12-31 23:59:59.999999: past int64
	// once counted from 1970, stored shifted (as timestampFromText stores
	// it), and shifting back gives it
	last := int64(9223371331199999999)
	got := timestampFromPG(last)
	if got >= TimestampShiftedBelow || uint64(got)+TimestampShift != uint64(last)+uint64(pgEpochMicros) {
		t.Errorf("the last timestamp is stored as %d", got)
	}
	if dateFromPG(0) != pgEpochDays || dateFromPG(math.MaxInt32) != math.MaxInt32 || dateFromPG(math.MinInt32) != -math.MaxInt32 {
		t.Error("dateFromPG")
	}
}
