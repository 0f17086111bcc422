package cdc

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

// recordMeter finds the records of PostgreSQL's CSV however COPY's
// messages split it: quoted newlines and doubled quotes stay inside their
// record. Checked against a byte-by-byte reading on random CSV cut at
// random places.
func TestRecordMeter(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fields := []string{"", "a", `""`, `"x,y"`, "\"line\nbreak\"", `"say ""hi"""`, "\"\n\n\"", "\"\"\"\n\"\"\"", "plain text", "\"é \"\"\n\"\" ü\""}
	for round := range 200 {
		var csv bytes.Buffer
		for range 1 + rng.IntN(30) {
			for f := range 1 + rng.IntN(5) {
				if f > 0 {
					csv.WriteByte(',')
				}
				csv.WriteString(fields[rng.IntN(len(fields))])
			}
			csv.WriteByte('\n')
		}
		data := csv.Bytes()

		// byte by byte
		quoted, cur, longest, records := false, int64(0), int64(0), int64(0)
		for _, b := range data {
			cur++
			switch {
			case b == '"':
				quoted = !quoted
			case b == '\n' && !quoted:
				longest, cur = max(longest, cur), 0
				records++
			}
		}

		p := &Progress{}
		m := &recordMeter{w: io.Discard, p: p}
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(40))
			if _, err := m.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if m.longest != longest || p.rows.Load() != records || m.quoted || m.cur != 0 {
			t.Fatalf("round %d: longest %d, %d records, quoted %v, %d bytes pending; want %d, %d, false, 0\n%q",
				round, m.longest, p.rows.Load(), m.quoted, m.cur, longest, records, data)
		}
	}
}
