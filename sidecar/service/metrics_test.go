package service

import "testing"

func TestParseDuckDBSize(t *testing.T) {
	for in, want := range map[string]int64{
		"4.0 GiB": 4 << 30, "512.0 MiB": 512 << 20, "1.5 KiB": 1536, "4.0 GB": 4e9, "1000 bytes": 1000, "12": 12,
	} {
		if got, ok := parseDuckDBSize(in); !ok || got != want {
			t.Errorf("parseDuckDBSize(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "lots", "4.0 parsecs", "-1 GiB"} {
		if _, ok := parseDuckDBSize(in); ok {
			t.Errorf("parseDuckDBSize(%q) accepted", in)
		}
	}
}
