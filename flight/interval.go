package flight

import (
	"fmt"
	"strconv"
	"strings"
)

// Mirrors keep interval values as their ISO 8601 text (PostgreSQL's
// IntervalStyle iso_8601, which no reader's setting changes). psql shows
// them in the default style, postgres, and so does Flight: postgresInterval
// converts, as PostgreSQL's interval output would print the same value.

// postgresInterval is the IntervalStyle postgres text of an interval
// given as ISO 8601 ("P1Y2M-3DT4H5M6.5S"); text already in another form
// is returned as it is.
func postgresInterval(iso string) (string, error) {
	if !strings.HasPrefix(iso, "P") {
		return iso, nil
	}
	var months, days, micros int64
	s, inTime := iso[1:], false
	for s != "" {
		if s[0] == 'T' {
			inTime, s = true, s[1:]
			continue
		}
		i := 0
		for i < len(s) && (s[i] == '-' || s[i] == '+' || s[i] == '.' || (s[i] >= '0' && s[i] <= '9')) {
			i++
		}
		if i == 0 || i == len(s) {
			return "", fmt.Errorf("malformed interval %q", iso)
		}
		num, unit := s[:i], s[i]
		s = s[i+1:]
		if inTime && unit == 'S' {
			us, err := parseMicros(num)
			if err != nil {
				return "", fmt.Errorf("malformed interval %q", iso)
			}
			micros += us
			continue
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return "", fmt.Errorf("malformed interval %q", iso)
		}
		switch {
		case !inTime && unit == 'Y':
			months += n * 12
		case !inTime && unit == 'M':
			months += n
		case !inTime && unit == 'W':
			days += n * 7
		case !inTime && unit == 'D':
			days += n
		case inTime && unit == 'H':
			micros += n * 3600e6
		case inTime && unit == 'M':
			micros += n * 60e6
		default:
			return "", fmt.Errorf("malformed interval %q", iso)
		}
	}

	var b strings.Builder
	isZero, isBefore := true, false
	part := func(v int64, unit string) {
		if v == 0 {
			return
		}
		if !isZero {
			b.WriteByte(' ')
		}
		if isBefore && v > 0 {
			b.WriteByte('+')
		}
		plural := "s"
		if v == 1 {
			plural = ""
		}
		fmt.Fprintf(&b, "%d %s%s", v, unit, plural)
		isBefore, isZero = v < 0, false
	}
	part(months/12, "year")
	part(months%12, "mon")
	part(days, "day")
	if isZero || micros != 0 {
		if !isZero {
			b.WriteByte(' ')
		}
		abs := micros
		switch {
		case micros < 0:
			b.WriteByte('-')
			abs = -micros
		case isBefore:
			b.WriteByte('+')
		}
		fmt.Fprintf(&b, "%02d:%02d:%02d", abs/3600e6, abs/60e6%60, abs/1e6%60)
		if frac := abs % 1e6; frac != 0 {
			b.WriteString(strings.TrimRight(fmt.Sprintf(".%06d", frac), "0"))
		}
	}
	return b.String(), nil
}

// parseMicros reads seconds with up to six decimals as microseconds.
func parseMicros(s string) (int64, error) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimLeft(s, "+-")
	whole, frac, _ := strings.Cut(s, ".")
	if len(frac) > 6 {
		return 0, fmt.Errorf("too many decimals")
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, err
	}
	f := int64(0)
	if frac != "" {
		if f, err = strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64); err != nil {
			return 0, err
		}
	}
	us := w*1e6 + f
	if neg {
		us = -us
	}
	return us, nil
}
