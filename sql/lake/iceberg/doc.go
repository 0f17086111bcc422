// Package iceberg reads Iceberg tables written by other tools (pyiceberg,
// Spark, ...) with DuckDB's Parquet reader alone: iceberg-go reads the
// table's metadata and plans a snapshot's files with their delete files,
// and ReadSQL turns the plan into one DuckDB query over read_parquet that
// applies schema evolution (by field ID), position deletes and equality
// deletes. It backs iceberg_scan(path) and iceberg_metadata(path) where
// DuckDB's own iceberg extension cannot be installed.
package iceberg
