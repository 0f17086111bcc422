package service

import (
	"os"
	"regexp"
	"testing"
)

// TestVersionMatchesControlFile keeps the version status reports (and
// bgworker_status() shows) equal to the extension's default_version.
func TestVersionMatchesControlFile(t *testing.T) {
	control, err := os.ReadFile("../../fdw/pg_mooncake.control")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^default_version\s*=\s*'([^']+)'`).FindSubmatch(control)
	if m == nil {
		t.Fatalf("no default_version in fdw/pg_mooncake.control:\n%s", control)
	}
	if Version != string(m[1]) {
		t.Errorf("Version = %q; want %q, the control file's default_version", Version, m[1])
	}
}
