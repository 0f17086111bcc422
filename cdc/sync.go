package cdc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// SessionParams are the settings every sidecar session uses, so that values
// travel as text in one exact, parseable form (catalog.ColumnType.CastFromText
// relies on them): ISO dates with " BC", timestamptz at +00, shortest exact
// floats, bytea in hex, and money as "-$1,234.56" whatever the database's
// lc_monetary. ISO 8601 dates and intervals are read back by PostgreSQL
// whatever the reading session's DateStyle and IntervalStyle.
var SessionParams = map[string]string{
	"DateStyle":          "ISO, YMD",
	"IntervalStyle":      "iso_8601",
	"TimeZone":           "UTC",
	"extra_float_digits": "3",
	"client_encoding":    "UTF8",
	"bytea_output":       "hex",
	"lc_monetary":        "C",
}

// ReplicationConfig turns a connection config into one for a logical
// replication connection.
func ReplicationConfig(cfg *pgx.ConnConfig) *pgconn.Config {
	rc := cfg.Config.Copy()
	rc.RuntimeParams = map[string]string{"replication": "database", "application_name": "mooncake"}
	for k, v := range SessionParams {
		rc.RuntimeParams[k] = v
	}
	// The stream arrives as many small messages: reading the socket in
	// large chunks saves most of the read calls.
	rc.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend {
		return pgproto3.NewFrontend(bufio.NewReaderSize(r, 1<<20), w)
	}
	return rc
}

// Snapshot is a consistent copy of a table taken with an exported
// replication snapshot.
type Snapshot struct {
	CSVPath string // the rows, in PostgreSQL's CSV format
	LSN     uint64 // commits at or before LSN are in the copy; later ones are not
}

// CopyTable copies the rows of the source table (a quoted qualified name)
// as of a new temporary replication slot's snapshot into a CSV file in dir.
// Changes committed after the returned LSN reach the main slot's stream.
func CopyTable(ctx context.Context, cfg *pgx.ConnConfig, source string, columns []string, dir string) (*Snapshot, error) {
	repl, err := pgconn.ConnectConfig(ctx, ReplicationConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("open replication connection: %w", err)
	}
	defer repl.Close(context.Background())
	slot := "mooncake_sync_" + fmt.Sprint(os.Getpid()) + "_" + randomSuffix()
	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Temporary: true, SnapshotAction: "EXPORT_SNAPSHOT"})
	if err != nil {
		return nil, fmt.Errorf("create snapshot slot: %w", err)
	}
	cp, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return nil, err
	}

	conn, err := pgx.ConnectConfig(ctx, sessionConfig(cfg))
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(res.SnapshotName)); err != nil {
		return nil, fmt.Errorf("use exported snapshot: %w", err)
	}
	f, err := os.CreateTemp(dir, "copy-*.csv")
	if err != nil {
		return nil, err
	}
	cols := make([]string, len(columns))
	for i, c := range columns {
		cols[i] = pgx.Identifier{c}.Sanitize()
	}
	_, err = conn.PgConn().CopyTo(ctx, f, "COPY (SELECT "+strings.Join(cols, ", ")+" FROM ONLY "+source+") TO STDOUT WITH (FORMAT csv)")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, fmt.Errorf("copy %s: %w", source, err)
	}
	conn.Exec(ctx, "COMMIT")
	return &Snapshot{CSVPath: f.Name(), LSN: uint64(cp) - 1}, nil
}

func sessionConfig(cfg *pgx.ConnConfig) *pgx.ConnConfig {
	c := cfg.Copy()
	if c.RuntimeParams == nil {
		c.RuntimeParams = map[string]string{}
	}
	for k, v := range SessionParams {
		c.RuntimeParams[k] = v
	}
	return c
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
