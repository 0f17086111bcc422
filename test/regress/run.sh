#!/usr/bin/env bash
# run.sh: run the pg_regress tests in test/regress/sql against a throwaway
# cluster (same settings as the development cluster, on a free port in a
# temporary directory), which is always stopped and removed at the end.
#
# Each run starts with a fresh database "regression" without the extension:
# pg_regress is run without --use-existing, so it drops and re-creates the
# database itself; the tests run CREATE EXTENSION pg_mooncake themselves.
#
# Usage: test/regress/run.sh [TEST...]   (default: every sql/*.sql, sorted)
# Environment: PG_CONFIG, MOONCAKE_PRELOAD (see test/cluster/lib.sh),
# KEEP_REGRESS_DIR=1 keeps the temporary directory for inspection.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/cluster/lib.sh
. "$here/../cluster/lib.sh"

bindir=$(mc_pg_bindir)
pg_regress=$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress
[ -x "$pg_regress" ] || mc_die "$pg_regress not found: install postgresql-server-dev-15 (make deps)"

if [ $# -gt 0 ]; then
	tests=("$@")
else
	tests=()
	while IFS= read -r f; do
		tests+=("$(basename "$f" .sql)")
	done < <(find "$here/sql" -maxdepth 1 -name '*.sql' 2>/dev/null | LC_ALL=C sort)
fi
if [ ${#tests[@]} -eq 0 ]; then
	echo "regress: no tests in $here/sql"
	exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mooncake-regress.XXXXXX")
chmod 755 "$tmp"
datadir=$tmp/data
logfile=$tmp/postgres.log
outdir=$tmp/out
mkdir -p "$outdir"

cleanup() {
	local rc=$?
	mc_cluster_stop "$datadir" immediate || true
	if [ "${KEEP_REGRESS_DIR:-}" = 1 ]; then
		echo "regress: kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(mc_free_port)
mc_cluster_init "$datadir"
mc_cluster_configure "$datadir" "$port" "$tmp/run"
mc_cluster_start "$datadir" "$logfile"

if mc_preloaded && mc_extension_installed; then
	mc_psql "$port" postgres -c 'CREATE EXTENSION pg_mooncake'
	mc_wait_bgworker "$port" postgres "$logfile" 30 || true
	# Leave the extension in database postgres only: pg_regress creates
	# "regression" from template0.
fi

# pg_regress removes regression.out when every test passed: count from its
# output instead.
status=0
"$pg_regress" --bindir="$bindir" --host=127.0.0.1 --port="$port" --user=postgres \
	--inputdir="$here" --outputdir="$outdir" --dbname=regression \
	"${tests[@]}" | tee "$tmp/pg_regress.out" || status=${PIPESTATUS[0]}

passed=$(grep -cE '\.\.\. ok ' "$tmp/pg_regress.out" || true)
failed=$(grep -cE '\.\.\. FAILED ' "$tmp/pg_regress.out" || true)
echo "regress: $passed passed, $failed failed"

if [ "$status" -ne 0 ]; then
	if [ -s "$outdir/regression.diffs" ]; then
		echo "=== regression.diffs ===" >&2
		cat "$outdir/regression.diffs" >&2
	fi
	echo "--- last lines of $logfile ---" >&2
	tail -n 50 "$logfile" >&2
	exit "$status"
fi
