#!/usr/bin/env bash
# up.sh: create (if missing) and start the development cluster in
# $MOONCAKE_HOME/data, create the pg_mooncake extension in database postgres,
# wait for the sidecar, and print how to connect. Running it again on a
# running cluster changes nothing.
#
# This is a development cluster: every connection over the Unix socket or
# from 127.0.0.1 is trusted without a password. Do not expose its port.
#
# Environment:
#   MOONCAKE_HOME     state directory (default: .mooncake in the repository)
#   PGPORT            TCP port on 127.0.0.1 (default 5432)
#   PG_CONFIG         pg_config to use (default pg_config)
#   MOONCAKE_PRELOAD  shared_preload_libraries (default pg_mooncake; set it
#                     empty to run without the extension)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/cluster/lib.sh
. "$here/lib.sh"

MOONCAKE_HOME=${MOONCAKE_HOME:-$here/../../.mooncake}
mkdir -p "$MOONCAKE_HOME"
MOONCAKE_HOME=$(cd "$MOONCAKE_HOME" && pwd)
PGPORT=${PGPORT:-5432}
datadir=$MOONCAKE_HOME/data
sockdir=$MOONCAKE_HOME/run
logfile=$MOONCAKE_HOME/postgres.log

mc_pg_bindir >/dev/null # fails early when PostgreSQL is missing
mc_check_traversable "$MOONCAKE_HOME"

if mc_cluster_running "$datadir"; then
	running_port=$(mc_cluster_port "$datadir")
	if [ "$running_port" != "$PGPORT" ]; then
		mc_die "the cluster in $datadir already runs on port $running_port, not PGPORT=$PGPORT; run 'make down' first or use PGPORT=$running_port"
	fi
else
	if mc_port_in_use "$PGPORT"; then
		mc_die "port $PGPORT on 127.0.0.1 is taken by another program; choose another with PGPORT=NNNN"
	fi
	mc_cluster_init "$datadir"
	mc_cluster_configure "$datadir" "$PGPORT" "$sockdir"
	mc_cluster_start "$datadir" "$logfile"
fi

if mc_preloaded; then
	mc_psql "$PGPORT" postgres -c 'SET client_min_messages = warning' \
		-c 'CREATE EXTENSION IF NOT EXISTS pg_mooncake' ||
		mc_die "could not create extension pg_mooncake (is it installed? run 'make install')"
	mc_wait_bgworker "$PGPORT" postgres "$logfile" 30 || true
else
	mc_log "pg_mooncake is not in shared_preload_libraries (MOONCAKE_PRELOAD='${MOONCAKE_PRELOAD-}'): not creating the extension"
fi

cat <<EOF

PostgreSQL (development cluster, trust auth) is running.
  data directory: $datadir
  log:            $logfile
  connect:        psql -h 127.0.0.1 -p $PGPORT -U postgres postgres
  URL:            postgres://postgres@127.0.0.1:$PGPORT/postgres?sslmode=disable
  stop:           make down
EOF
