#!/bin/sh
# Entrypoint of the pg_mooncake image.
#
# On the first start (an empty data directory) it creates the cluster:
# initdb with the superuser postgres's password from POSTGRES_PASSWORD (or
# the file named by POSTGRES_PASSWORD_FILE) and SCRAM authentication for
# TCP connections, the settings pg_mooncake needs, and the extension in
# database postgres. It refuses to create a cluster without a password.
# Then it runs PostgreSQL as the user postgres, never as root.
#
# Any other command (docker run IMAGE bash) runs as given.
set -eu

PGDATA=${PGDATA:-/var/lib/postgresql/data}
WAREHOUSE=${MOONCAKE_WAREHOUSE:-/var/lib/postgresql/warehouse}
SOCKET_DIR=${PGHOST:-/var/run/postgresql}
export PGDATA

# docker run IMAGE -c name=value: options for postgres.
if [ "${1#-}" != "${1:-}" ]; then
	set -- postgres "$@"
fi
if [ "${1:-}" != postgres ]; then
	exec "$@"
fi

# As root: give the volumes to postgres, then start again as postgres.
if [ "$(id -u)" = 0 ]; then
	mkdir -p "$PGDATA" "$WAREHOUSE" "$SOCKET_DIR"
	chown postgres:postgres "$PGDATA" "$WAREHOUSE" "$SOCKET_DIR"
	chmod 700 "$PGDATA"
	exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

die() {
	echo "pg_mooncake entrypoint: $*" >&2
	exit 1
}

init_cluster() {
	password=${POSTGRES_PASSWORD:-}
	if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
		[ -r "$POSTGRES_PASSWORD_FILE" ] || die "cannot read POSTGRES_PASSWORD_FILE $POSTGRES_PASSWORD_FILE"
		password=$(cat "$POSTGRES_PASSWORD_FILE")
	fi
	[ -n "$password" ] || die "the data directory $PGDATA is empty and no password is set:
  run with -e POSTGRES_PASSWORD=... (or POSTGRES_PASSWORD_FILE=/run/secrets/...):
  it becomes the password of the superuser postgres (SCRAM authentication)."

	pwfile=$(mktemp)
	printf '%s\n' "$password" >"$pwfile"
	initdb -D "$PGDATA" -U postgres --pwfile="$pwfile" -E UTF8 --locale=C \
		--auth-local=peer --auth-host=scram-sha-256 >/dev/null || { rm -f "$pwfile"; die "initdb failed"; }
	rm -f "$pwfile"

	# Inside the container the Unix socket serves only the OS user postgres
	# (peer: the extension's sidecar connects that way); every TCP client,
	# the Flight service's sessions included, gives a SCRAM password.
	cat >"$PGDATA/pg_hba.conf" <<-'EOF'
		# TYPE  DATABASE     USER  ADDRESS  METHOD
		local   all          all            peer
		local   replication  all            peer
		host    all          all   all      scram-sha-256
		host    replication  all   all      scram-sha-256
	EOF

	# Settings pg_mooncake needs, in a file of their own.
	cat >"$PGDATA/mooncake.conf" <<-EOF
		# Written by the image's entrypoint on the first start.
		listen_addresses = '*'
		unix_socket_directories = '$SOCKET_DIR'
		password_encryption = 'scram-sha-256'
		wal_level = logical
		shared_preload_libraries = 'pg_mooncake'
		max_replication_slots = 20
		max_wal_senders = 20
		pg_mooncake.warehouse = '$WAREHOUSE'
		# Arrow Flight SQL on every interface of the container, so that
		# docker run -p can publish it. Clients authenticate with their
		# PostgreSQL password; without TLS (pg_mooncake.flight_tls_cert and
		# _key) that password crosses the network in clear, so publish the
		# port on 127.0.0.1 or a private network.
		pg_mooncake.flight_listen = '0.0.0.0:8815'
		pg_mooncake.sidecar_listen_insecure = on
	EOF
	echo "include 'mooncake.conf'" >>"$PGDATA/postgresql.conf"

	# Create the extension on a server that listens on the socket only.
	pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
	psql -v ON_ERROR_STOP=1 -h "$SOCKET_DIR" -U postgres -d postgres -q \
		-c 'CREATE EXTENSION IF NOT EXISTS pg_mooncake' || { pg_ctl -D "$PGDATA" -m fast -w stop; die "CREATE EXTENSION failed"; }
	pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
	echo "pg_mooncake entrypoint: cluster created in $PGDATA, warehouse $WAREHOUSE"
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	init_cluster
fi

# The password stays out of the server's environment (and the sidecar's).
unset POSTGRES_PASSWORD POSTGRES_PASSWORD_FILE
exec "$@"
