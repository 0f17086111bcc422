// Package flight is reserved for the sidecar's Arrow Flight and Flight SQL
// service, which will let pyarrow.flight, ADBC's flightsql driver and Go
// clients query the mirrors directly through the same query engine as the
// FDW (package sql). Nothing is implemented yet.
package flight
