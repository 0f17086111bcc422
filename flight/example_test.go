package flight_test

import (
	"context"
	"fmt"
	"log"

	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// Query a mirror through the Flight SQL service with Go's flightsql
// client: authenticate as a PostgreSQL role, run a statement, read its
// Arrow record batches. It needs a running cluster, so it has no output
// to check.
func Example() {
	cl, err := flightsql.NewClient("127.0.0.1:8815", nil, nil,
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()

	// The database is chosen when authenticating (default postgres).
	ctx := metadata.AppendToOutgoingContext(context.Background(), "database", "postgres")
	// A PostgreSQL role and its password; ctx carries the bearer token.
	ctx, err = cl.Client.AuthenticateBasicToken(ctx, "alice", "secret")
	if err != nil {
		log.Fatal(err)
	}

	info, err := cl.Execute(ctx, "SELECT symbol, count(*) AS trades, avg(price) AS price FROM trades_iceberg GROUP BY symbol ORDER BY symbol")
	if err != nil {
		log.Fatal(err) // e.g. "ERROR:  permission denied for foreign table trades_iceberg (SQLSTATE 42501)"
	}
	rdr, err := cl.DoGet(ctx, info.Endpoint[0].Ticket)
	if err != nil {
		log.Fatal(err)
	}
	defer rdr.Release()
	for rdr.Next() {
		rec := rdr.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			fmt.Println(rec.Column(0).ValueStr(i), rec.Column(1).ValueStr(i), rec.Column(2).ValueStr(i))
		}
	}
	if err := rdr.Err(); err != nil {
		log.Fatal(err)
	}
}
