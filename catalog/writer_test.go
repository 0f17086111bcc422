package catalog

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

func strp(s string) *string { return &s }

// formatKey prints a key for failure messages: NULL for nil.
func formatKey(k []*string) string {
	parts := make([]string, len(k))
	for i, v := range k {
		if v == nil {
			parts[i] = "NULL"
		} else {
			parts[i] = strconv.Quote(*v)
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func TestKeyStringInjective(t *testing.T) {
	tests := []struct {
		name string
		a, b []*string
	}{
		{"nil vs N", []*string{nil}, []*string{strp("N")}},
		{"nil vs empty", []*string{nil}, []*string{strp("")}},
		{"no key vs empty", nil, []*string{strp("")}},
		{"two nils vs NN", []*string{nil, nil}, []*string{strp("NN")}},
		{"split ab|c vs a|bc", []*string{strp("ab"), strp("c")}, []*string{strp("a"), strp("bc")}},
		{"split vs joined", []*string{strp("a"), strp("b")}, []*string{strp("ab")}},
		{"empty then x vs x then empty", []*string{strp(""), strp("x")}, []*string{strp("x"), strp("")}},
		{"value looks like an encoding", []*string{strp("1:a")}, []*string{strp("a"), strp("")}},
		{"digits and colons", []*string{strp("1:"), strp("2")}, []*string{strp("1"), strp(":2")}},
		{"length prefix inside value", []*string{strp("3:abc")}, []*string{strp("abc")}},
		{"nil then N vs N then nil", []*string{nil, strp("N")}, []*string{strp("N"), nil}},
		{"long value", []*string{strp(strings.Repeat("9", 12)), strp("x")}, []*string{strp(strings.Repeat("9", 11)), strp("9x")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ka, kb := keyString(tc.a), keyString(tc.b)
			if ka == kb {
				t.Errorf("keyString(%s) = keyString(%s) = %q; want distinct", formatKey(tc.a), formatKey(tc.b), ka)
			}
		})
	}
}

// decodeKeyString inverts keyString; that it exists proves keyString is
// injective on the inputs it decodes.
func decodeKeyString(s string) ([]*string, bool) {
	var out []*string
	for len(s) > 0 {
		if s[0] == 'N' {
			out = append(out, nil)
			s = s[1:]
			continue
		}
		colon := strings.IndexByte(s, ':')
		if colon < 1 {
			return nil, false
		}
		n, err := strconv.Atoi(s[:colon])
		if err != nil || n < 0 || colon+1+n > len(s) {
			return nil, false
		}
		out = append(out, strp(s[colon+1:colon+1+n]))
		s = s[colon+1+n:]
	}
	return out, true
}

func TestKeyStringRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"N", "1", "2", ":", "0", "a", "", "é"}
	for i := 0; i < 2000; i++ {
		key := make([]*string, r.IntN(4))
		for j := range key {
			if r.IntN(5) == 0 {
				continue
			}
			var b strings.Builder
			for n := r.IntN(6); n > 0; n-- {
				b.WriteString(alphabet[r.IntN(len(alphabet))])
			}
			key[j] = strp(b.String())
		}
		ks := keyString(key)
		got, ok := decodeKeyString(ks)
		if !ok || formatKey(got) != formatKey(key) {
			t.Fatalf("keyString(%s) = %q, which decodes to %s; want it to decode to the key", formatKey(key), ks, formatKey(got))
		}
	}
}
