// Package pgtest starts throwaway PostgreSQL clusters for integration tests
// of pg_mooncake and its sidecar.
//
// Each call to Start runs initdb in a fresh temporary directory, configures
// the cluster the way the development cluster is configured
// (test/cluster/lib.sh: wal_level=logical, pg_mooncake preloaded when it is
// installed, trust authentication on 127.0.0.1), starts it on a free port and
// stops and removes it when the test ends. A failed test keeps the directory
// and logs the tail of the server log.
//
// PostgreSQL refuses to run as root, so when the test runs as root the
// server programs run as the OS user postgres (through runuser) and the
// directory belongs to that user.
//
// Tests skip when PostgreSQL or the extension is not installed, unless the
// environment sets MOONCAKE_REQUIRE_PG=1 (make test does), in which case they
// fail.
package pgtest
