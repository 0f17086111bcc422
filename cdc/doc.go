// Package cdc follows a PostgreSQL database through logical replication
// (pgoutput, protocol version 2) and applies the changes to its mirrors.
//
// One slot and one publication serve all mirrors of a database. Changes are
// written to the mirrors' DuckDB tails as each source transaction commits;
// a periodic flush commits them to Iceberg, and only then does the slot's
// confirmed flush LSN advance. Each mirror remembers the commit LSN of the
// last source transaction it holds, so after a crash the replayed stream is
// applied exactly once.
package cdc
