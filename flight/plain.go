package flight

import (
	"context"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/pgmooncake/mooncake/catalog"
)

// plainFlight adds plain Arrow Flight to the Flight SQL service, for
// pyarrow.flight users: ListFlights lists the mirrors the role may read,
// GetFlightInfo takes a path (["schema", "table"] or ["table"]) or a
// command holding SQL text, and DoGet takes the tickets of either.
type plainFlight struct {
	flight.FlightServer
	s *Server
}

const flightSQLTypePrefix = "type.googleapis.com/arrow.flight.protocol.sql."

// isFlightSQL tells a Flight SQL command from SQL text.
func isFlightSQL(cmd []byte) bool {
	var a anypb.Any
	return proto.Unmarshal(cmd, &a) == nil && strings.HasPrefix(a.TypeUrl, flightSQLTypePrefix)
}

func (p *plainFlight) GetFlightInfo(ctx context.Context, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	var query string
	switch {
	case desc.GetType() == flight.DescriptorPATH:
		path := desc.GetPath()
		if len(path) < 1 || len(path) > 2 {
			return nil, status.Error(codes.InvalidArgument, `a path names a table: ["schema", "table"] or ["table"]`)
		}
		quoted := make([]string, len(path))
		for i, name := range path {
			quoted[i] = catalog.QuoteIdent(name)
		}
		query = "SELECT * FROM " + strings.Join(quoted, ".")
	case desc.GetType() == flight.DescriptorCMD && !isFlightSQL(desc.GetCmd()):
		query = string(desc.GetCmd())
	default:
		return p.FlightServer.GetFlightInfo(ctx, desc)
	}
	sd, err := p.s.describeQuery(ctx, query)
	if err != nil {
		return nil, err
	}
	if len(sd.ParamOIDs) > 0 {
		return nil, status.Error(codes.InvalidArgument, "a query with parameters needs Flight SQL's prepared statements")
	}
	return p.s.flightInfo(desc, resultSchema(sd), statement{Query: query, ID: newID()})
}

// ListFlights lists the mirrors the role may read whole (SELECT on the
// table, not on some of its columns only: its flight reads them all), one
// flight each.
func (p *plainFlight) ListFlights(_ *flight.Criteria, stream flight.FlightService_ListFlightsServer) error {
	ctx := stream.Context()
	sess, err := p.s.session(ctx)
	if err != nil {
		return err
	}
	rows, err := p.s.queryText(ctx, sess, `SELECT schema_name::text, table_name::text FROM mooncake.columnstore_tables
		WHERE pg_catalog.has_table_privilege(pg_catalog.to_regclass(pg_catalog.format('%I.%I', schema_name, table_name)), 'SELECT')
		ORDER BY 1, 2`)
	if err != nil {
		return err
	}
	for _, row := range rows {
		desc := &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{*row[0], *row[1]}}
		info, err := p.GetFlightInfo(ctx, desc)
		if err != nil {
			continue // e.g. a mirror dropped meanwhile, or columns the role may not read
		}
		if err := stream.Send(info); err != nil {
			return err
		}
	}
	return nil
}
