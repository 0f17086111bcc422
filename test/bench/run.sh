#!/usr/bin/env bash
# Runs the write-path benchmarks, each on throwaway clusters, and prints
# their figures at the end. They use the installed extension and sidecar:
# run `make install` first.
#
#   test/bench/run.sh                     all of them (about 4 minutes)
#   test/bench/run.sh TestSidecarPeakRSS  those matching a go test -run pattern
#
# The full test output is kept in $BENCH_LOG (default: a temporary file).
set -euo pipefail

cd "$(dirname "$0")/../.."
pattern="${1:-.}"
log="${BENCH_LOG:-$(mktemp -t mooncake-bench.XXXXXX)}"

status=0
MOONCAKE_BENCH=1 go test -tags=duckdb_arrow -run "$pattern" -v -count=1 -timeout 30m ./test/bench/ \
	>"$log" 2>&1 || status=$?

echo "== figures (full output in $log)"
grep '^bench: ' "$log" | sed 's/^bench: //' || true
echo "== results"
grep -E '^(--- |ok |FAIL|PASS)|^ +--- |^ +[a-z_]+\.go:[0-9]+: ' "$log" || true
exit "$status"
