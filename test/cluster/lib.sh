# shellcheck shell=bash
# lib.sh: shell functions to create, start and stop a local PostgreSQL
# cluster set up for pg_mooncake. Sourced by up.sh, down.sh and
# test/regress/run.sh; it defines functions only and changes nothing when
# sourced.
#
# Assumptions: PostgreSQL's binaries are found through $PG_CONFIG (default
# pg_config). PostgreSQL refuses to run as root, so when the caller is root
# the server-side programs (initdb, pg_ctl) run as the OS user postgres via
# runuser, and everything the server writes must belong to that user; when
# the caller is not root they run as the caller. Client programs (psql,
# pg_regress) always run as the caller and connect over TCP to 127.0.0.1.
#
# The clusters made here are for development and tests only: every local and
# 127.0.0.1 connection is trusted without a password.

: "${PG_CONFIG:=pg_config}"

# mc_die MESSAGE...: print an error and exit.
mc_die() {
	echo "error: $*" >&2
	exit 1
}

# mc_log MESSAGE...: progress output, on stderr so stdout stays clean.
mc_log() {
	echo "==> $*" >&2
}

mc_pg_bindir() {
	command -v "$PG_CONFIG" >/dev/null 2>&1 ||
		mc_die "$PG_CONFIG not found: install postgresql-server-dev-15 (make deps) or set PG_CONFIG"
	"$PG_CONFIG" --bindir
}

mc_is_root() {
	[ "$(id -u)" -eq 0 ]
}

# mc_pg_user: the OS user the server runs as.
mc_pg_user() {
	if mc_is_root; then
		echo postgres
	else
		id -un
	fi
}

# mc_as_pg CMD ARGS...: run a command as the OS user the server runs as.
mc_as_pg() {
	if mc_is_root; then
		id postgres >/dev/null 2>&1 ||
			mc_die "running as root needs the OS user postgres (it comes with the postgresql-15 package)"
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# mc_own PATH...: give paths to the server's OS user (root only; a no-op
# otherwise, since the caller already owns what it created).
mc_own() {
	if mc_is_root; then
		chown -R postgres:postgres "$@"
	fi
}

# mc_check_traversable DIR: fail unless the server's OS user can reach DIR:
# every existing ancestor must be searchable by it. DIR need not exist yet.
mc_check_traversable() {
	local dir=$1 p ancestors=()
	mc_is_root || return 0
	p=$dir
	while [ ! -e "$p" ]; do
		p=$(dirname "$p")
	done
	while [ "$p" != / ]; do
		ancestors=("$p" "${ancestors[@]}")
		p=$(dirname "$p")
	done
	for p in / "${ancestors[@]}"; do
		if ! runuser -u postgres -- test -x "$p"; then
			mc_die "the OS user postgres cannot enter $p (needed to reach $dir): use a MOONCAKE_HOME under a directory that others can traverse (chmod o+x), e.g. MOONCAKE_HOME=/var/tmp/mooncake"
		fi
	done
}

# mc_port_in_use PORT: true when something accepts TCP connections on
# 127.0.0.1:PORT.
mc_port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# mc_free_port: print a TCP port on 127.0.0.1 that nothing listens on.
mc_free_port() {
	local port
	for _ in $(seq 1 100); do
		port=$((20000 + RANDOM % 40000))
		if ! mc_port_in_use "$port"; then
			echo "$port"
			return 0
		fi
	done
	mc_die "found no free TCP port"
}

# mc_cluster_running DATADIR: true when a postmaster runs on DATADIR.
mc_cluster_running() {
	local datadir=$1
	[ -f "$datadir/postmaster.pid" ] || return 1
	mc_as_pg "$(mc_pg_bindir)/pg_ctl" -D "$datadir" status >/dev/null 2>&1
}

# mc_cluster_port DATADIR: the port of the running postmaster (line 4 of
# postmaster.pid).
mc_cluster_port() {
	sed -n 4p "$1/postmaster.pid"
}

# mc_cluster_init DATADIR: run initdb unless DATADIR already holds a cluster,
# and make postgresql.conf include mooncake.conf, the file that
# mc_cluster_configure writes.
mc_cluster_init() {
	local datadir=$1 parent
	mc_check_traversable "$datadir"
	if [ -f "$datadir/PG_VERSION" ]; then
		if mc_is_root && [ "$(stat -c %U "$datadir")" != postgres ]; then
			mc_die "$datadir is owned by $(stat -c %U "$datadir"), not postgres; fix it with: chown -R postgres:postgres $datadir"
		fi
		return 0
	fi
	if [ -e "$datadir" ] && [ -n "$(ls -A "$datadir")" ]; then
		mc_die "$datadir exists, is not empty and holds no PostgreSQL cluster"
	fi
	parent=$(dirname "$datadir")
	mkdir -p "$datadir"
	mc_own "$datadir"
	chmod 700 "$datadir"
	mc_log "initdb $datadir"
	mc_as_pg "$(mc_pg_bindir)/initdb" -D "$datadir" -U postgres --auth=trust \
		-E UTF8 --locale=C >"$parent/initdb.log" 2>&1 || {
		cat "$parent/initdb.log" >&2
		mc_die "initdb failed"
	}
	echo "include_if_exists = 'mooncake.conf'	# written by test/cluster/lib.sh" |
		mc_as_pg tee -a "$datadir/postgresql.conf" >/dev/null
}

# mc_cluster_configure DATADIR PORT SOCKDIR: (re)write DATADIR/mooncake.conf.
# MOONCAKE_PRELOAD overrides shared_preload_libraries (set it empty to start
# without the extension); MOONCAKE_PG_SETTINGS adds lines verbatim.
mc_cluster_configure() {
	local datadir=$1 port=$2 sockdir=$3
	mkdir -p "$sockdir"
	mc_own "$sockdir"
	mc_as_pg tee "$datadir/mooncake.conf" >/dev/null <<EOF
# Written by test/cluster/lib.sh on every start; edits are lost.
# A development cluster: see pg_hba.conf, every local connection is trusted.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockdir'
wal_level = logical
shared_preload_libraries = '${MOONCAKE_PRELOAD-pg_mooncake}'
max_replication_slots = 20
max_wal_senders = 20
max_connections = 100
log_min_messages = warning
${MOONCAKE_PG_SETTINGS:-}
EOF
}

# mc_cluster_start DATADIR LOGFILE: start the postmaster and wait until it
# accepts connections.
mc_cluster_start() {
	local datadir=$1 logfile=$2
	if [ ! -e "$logfile" ]; then
		touch "$logfile"
		mc_own "$logfile"
	fi
	mc_log "starting PostgreSQL on $datadir (log: $logfile)"
	if ! mc_as_pg "$(mc_pg_bindir)/pg_ctl" -D "$datadir" -l "$logfile" -w -t 60 start >/dev/null; then
		echo "--- last lines of $logfile ---" >&2
		tail -n 30 "$logfile" >&2
		mc_die "PostgreSQL did not start"
	fi
}

# mc_cluster_stop DATADIR [MODE]: stop the postmaster if it runs (the
# sidecar, a child of its background worker, stops with it).
mc_cluster_stop() {
	local datadir=$1 mode=${2:-fast}
	[ -d "$datadir" ] || return 0
	if mc_cluster_running "$datadir"; then
		mc_log "stopping PostgreSQL on $datadir"
		mc_as_pg "$(mc_pg_bindir)/pg_ctl" -D "$datadir" -m "$mode" -w -t 60 stop >/dev/null
	fi
}

# mc_psql PORT DB ARGS...: psql as the caller, over TCP, stop on error.
mc_psql() {
	local port=$1 db=$2
	shift 2
	"$(mc_pg_bindir)/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d "$db" "$@"
}

# mc_extension_installed: true when pg_mooncake is installed in this
# PostgreSQL (its control file and library are in place).
mc_extension_installed() {
	[ -f "$("$PG_CONFIG" --sharedir)/extension/pg_mooncake.control" ] &&
		[ -f "$("$PG_CONFIG" --pkglibdir)/pg_mooncake.so" ]
}

# mc_preloaded: true when this run's settings preload pg_mooncake.
mc_preloaded() {
	case ",${MOONCAKE_PRELOAD-pg_mooncake}," in
	*,pg_mooncake,* | *,\ pg_mooncake,*) return 0 ;;
	esac
	return 1
}

# mc_wait_bgworker PORT DB LOGFILE [SECONDS]: wait until the background
# worker reports the sidecar's socket listening. Returns non-zero, after
# printing a warning with the log tail, if it does not within SECONDS
# (default 30).
mc_wait_bgworker() {
	local port=$1 db=$2 logfile=$3 timeout=${4:-30} deadline status
	deadline=$((SECONDS + timeout))
	while [ "$SECONDS" -lt "$deadline" ]; do
		status=$(mc_psql "$port" "$db" -At \
			-c "select mooncake.bgworker_status()->>'socket_listening'" 2>/dev/null || true)
		if [ "$status" = true ]; then
			return 0
		fi
		sleep 0.5
	done
	echo "warning: the pg_mooncake background worker did not report socket_listening = true within ${timeout}s" >&2
	echo "  status: $(mc_psql "$port" "$db" -At -c 'select mooncake.bgworker_status()' 2>&1 || true)" >&2
	echo "--- last lines of $logfile ---" >&2
	tail -n 30 "$logfile" >&2
	return 1
}
