// Package sql is the query engine: it turns a request for a mirror's rows
// into DuckDB SQL over the mirror's view and runs it, returning Arrow record
// batches. The FDW endpoint and the Flight service both call it.
package sql
