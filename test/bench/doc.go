// Package bench holds the benchmarks of pg_mooncake. The write path:
// replication apply throughput next to pg_recvlogical, commit-to-visible
// latency under a steady load, and the sidecar's memory during one large
// transaction. The read path: analytic queries on mirrors, the manual's
// aggregation on a Parquet file of the data lake (read_parquet, a foreign
// table, loaded into a mirror) next to DuckDB in-process, and reading a
// mirror through Arrow Flight SQL next to DuckDB in-process and psycopg.
//
// They are Go tests that skip unless MOONCAKE_BENCH=1, so that `make test`
// leaves them out. Each starts throwaway clusters with test/pgtest and prints
// its figures on lines beginning with "bench: "; none asserts a timing.
// run.sh runs them all and collects those lines.
package bench
