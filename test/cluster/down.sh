#!/usr/bin/env bash
# down.sh: stop the development cluster in $MOONCAKE_HOME/data (fast
# shutdown); the sidecar stops with it. Does nothing if it is not running.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/cluster/lib.sh
. "$here/lib.sh"

MOONCAKE_HOME=${MOONCAKE_HOME:-$here/../../.mooncake}
[ -d "$MOONCAKE_HOME" ] && MOONCAKE_HOME=$(cd "$MOONCAKE_HOME" && pwd)
datadir=$MOONCAKE_HOME/data

if mc_cluster_running "$datadir"; then
	mc_cluster_stop "$datadir" fast
	echo "stopped the cluster in $datadir"
else
	echo "no cluster running in $datadir"
fi
