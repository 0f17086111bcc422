package bench

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmooncake/mooncake/test/pgtest"
)

// EnableEnv is the environment variable that turns the benchmarks on.
const EnableEnv = "MOONCAKE_BENCH"

// requireBench skips the benchmark unless EnableEnv=1: each one runs for
// minutes, too long for `make test`.
func requireBench(t *testing.T) {
	t.Helper()
	if os.Getenv(EnableEnv) != "1" {
		t.Skipf("a benchmark: set %s=1 to run it (test/bench/run.sh does)", EnableEnv)
	}
	// Other work on the machine moves every figure: say how busy it was.
	load := "unknown"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			load = strings.Join(f[:3], " ")
		}
	}
	figure("%s: %d CPUs, load average %s before it", t.Name(), runtime.NumCPU(), load)
}

// figure prints one measured figure on a line of its own, prefixed so that
// run.sh can collect the figures from the test output.
func figure(format string, args ...any) {
	fmt.Printf("bench: "+format+"\n", args...)
}

// startCluster starts a throwaway cluster with pg_mooncake created in
// database postgres and returns a connection to it. Autovacuum is off so
// that it does not take CPU in the middle of a measurement.
func startCluster(t *testing.T, opts ...pgtest.Option) (*pgtest.Cluster, *pgx.Conn) {
	t.Helper()
	if os.Getenv(resultCacheEnv) == "" {
		// The benchmarks time DuckDB running each query: the sidecar
		// keeps no answers of repeated queries unless a benchmark asks
		// (the overhead lines of TestAnalyticsQueries).
		t.Setenv(resultCacheEnv, "0")
	}
	opts = append([]pgtest.Option{pgtest.WithSetting("autovacuum", "off")}, opts...)
	c := pgtest.Start(t, opts...)
	c.CreateExtension(t, "postgres")
	return c, c.Conn(t, "postgres")
}

// resultCacheEnv sizes the sidecar's cache of answers (sidecar/README.md).
const resultCacheEnv = "MOONCAKE_RESULT_CACHE_MB"

// thousands formats n rounded to an integer with comma separators.
func thousands(n float64) string {
	s := strconv.FormatInt(int64(math.Round(n)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// perSecond is n events over d, per second.
func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// ms formats d in milliseconds with one decimal.
func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
}

// secs formats d in seconds with two decimals.
func secs(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + " s"
}

// mib formats a size in kB (as /proc reports it) in MiB.
func mib(kB int64) string {
	return strconv.FormatFloat(float64(kB)/1024, 'f', 0, 64) + " MiB"
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted, by the
// nearest-rank method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

// sortedCopy returns the durations in ascending order.
func sortedCopy(ds []time.Duration) []time.Duration {
	out := append([]time.Duration(nil), ds...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := sortedCopy(ds)
	cases := []struct {
		p    float64
		want time.Duration
	}{
		{50, 50 * time.Millisecond},
		{99, 99 * time.Millisecond},
		{100, 100 * time.Millisecond},
		{0.1, time.Millisecond},
	}
	for _, tc := range cases {
		if got := percentile(s, tc.p); got != tc.want {
			t.Errorf("percentile(1..100 ms, %v) = %v; want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(nil, 50) = %v; want 0", got)
	}
}

func TestThousands(t *testing.T) {
	cases := []struct {
		n    float64
		want string
	}{
		{0, "0"},
		{999, "999"},
		{1000, "1,000"},
		{123456.4, "123,456"},
		{1234567, "1,234,567"},
		{-1234, "-1,234"},
	}
	for _, tc := range cases {
		if got := thousands(tc.n); got != tc.want {
			t.Errorf("thousands(%v) = %q; want %q", tc.n, got, tc.want)
		}
	}
}

// Shorthands for the harness's query helpers.
var (
	mustExec  = pgtest.Exec
	queryText = pgtest.QueryText
	queryInt  = pgtest.QueryInt
)
