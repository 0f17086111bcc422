// Package flight is the sidecar's Arrow Flight SQL service: it lets
// pyarrow.flight, ADBC's Flight SQL driver, Go's flightsql.Client and
// other Flight SQL clients query the mirrors (and anything else in the
// database) and get Arrow record batches back.
//
// Serve opens the listener (pg_mooncake.flight_listen, default
// 127.0.0.1:8815; TLS with pg_mooncake.flight_tls_cert and _key). Clients
// authenticate with a PostgreSQL role and its password in a Basic
// Handshake: the service connects to PostgreSQL over TCP as that role, so
// pg_hba.conf decides, and answers with a bearer token that expires after
// an hour unused (auth.go). The "database" gRPC header of the Handshake
// names the database (default postgres).
//
// Every statement is planned by PostgreSQL as the session's role. When the
// whole plan is one scan of mirrors, the service runs the scan's request
// in DuckDB through package service and streams its Arrow batches,
// converted to the statement's column types (query.go, ConvertColumn);
// any other statement runs in PostgreSQL and its rows are built into Arrow
// (TextBuilder). ArrowType is the mapping of PostgreSQL types to Arrow
// types, the same on both paths. Errors carry PostgreSQL's SQLSTATE
// (errors.go). The catalog calls answer from PostgreSQL's catalogs as the
// role (metadata.go, typeinfo.go), and plain Flight's ListFlights,
// GetFlightInfo of a path or of SQL text, and DoGet work too (plain.go).
package flight
