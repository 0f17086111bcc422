// Package catalog keeps the mirrors: their Iceberg tables (iceberg-go's SQL
// catalog, stored in the PostgreSQL database itself, schema mooncake), and
// their DuckDB side: the in-memory tail of rows not yet flushed, and the view
// that unions the current Iceberg data files with that tail.
//
// A mirror's rows live in two places at once: Parquet data files committed to
// Iceberg, and the tail table in DuckDB. Flush moves the tail into a new
// Parquet file, commits it as one Iceberg snapshot whose summary records the
// last applied commit LSN, and swaps the view and empties the tail in one
// DuckDB transaction, so a reader never sees a row twice or not at all.
package catalog
