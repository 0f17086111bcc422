# syntax=docker/dockerfile:1
#
# PostgreSQL 15 (Debian bookworm) with pg_mooncake and mooncake-sidecar
# installed and a cluster initialized for them. For development and trying
# things out: the cluster trusts every connection, so publish its port on
# 127.0.0.1 only (docker-compose.yml does).
#
#   docker build -t pg_mooncake:dev .
#   docker run --rm -p 127.0.0.1:5432:5432 pg_mooncake:dev
#   psql -h 127.0.0.1 -U postgres -c 'CREATE EXTENSION pg_mooncake'

# The sidecar, built with the official Go image on the same Debian release
# as the final image, so it links against the same glibc and libstdc++.
FROM golang:1.26-bookworm AS sidecar
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY --exclude=.mooncake --exclude=.git . .
RUN CGO_ENABLED=1 go build -tags=duckdb_arrow -o /out/mooncake-sidecar ./sidecar

# The extension, built with PGXS.
FROM debian:bookworm AS extension
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-server-dev-15 build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY --exclude=.mooncake --exclude=.git . .
RUN make -C fdw PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config \
 && make -C fdw install PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config DESTDIR=/out

FROM debian:bookworm
# Install postgresql-common first and turn off Debian's automatic "main"
# cluster: this image runs its own cluster in $PGDATA.
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-common \
 && sed -ri 's/#(create_main_cluster) .*$/\1 = false/' /etc/postgresql-common/createcluster.conf \
 && apt-get install -y --no-install-recommends postgresql-15 libstdc++6 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/run/postgresql \
 && chown postgres:postgres /var/run/postgresql \
 && chmod 2777 /var/run/postgresql

COPY --from=extension /out/ /
COPY --from=sidecar /out/mooncake-sidecar /usr/lib/postgresql/15/bin/mooncake-sidecar

ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
USER postgres
# Same settings as test/cluster/lib.sh, but listening on all interfaces of
# the container.
RUN initdb -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C \
 && printf '%s\n' \
      "listen_addresses = '*'" \
      "wal_level = logical" \
      "shared_preload_libraries = 'pg_mooncake'" \
      "max_replication_slots = 20" \
      "max_wal_senders = 20" \
      "max_connections = 100" \
      >> "$PGDATA/postgresql.conf" \
 && echo "host all all all trust  # development image" >> "$PGDATA/pg_hba.conf"

EXPOSE 5432
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=5s --retries=12 CMD pg_isready -h 127.0.0.1 -U postgres || exit 1
CMD ["postgres"]
