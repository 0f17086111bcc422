package cdc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgmooncake/mooncake/catalog"
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

// ServiceParams shield the sidecar's own sessions from settings a DBA
// gives a database or role for its users (ALTER DATABASE ... SET,
// ALTER ROLE ... SET): a statement_timeout would cancel a long initial
// copy, an idle_in_transaction_session_timeout end the snapshot it
// reads, a default_transaction_read_only stop every catalog commit. What
// PostgreSQL 15 does not know (transaction_timeout, since 17) is set after
// connecting, where it exists (setSessionSettings).
var ServiceParams = map[string]string{
	"statement_timeout":                   "0",
	"lock_timeout":                        "0",
	"idle_in_transaction_session_timeout": "0",
	"idle_session_timeout":                "0",
	"default_transaction_read_only":       "off",
	"default_transaction_isolation":       "read committed",
	"default_transaction_deferrable":      "off",
}

// ServiceConfig gives cfg's sessions ServiceParams and the settings set
// after connecting (afterConnect).
func ServiceConfig(cfg *pgx.ConnConfig) {
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	for k, v := range ServiceParams {
		cfg.RuntimeParams[k] = v
	}
	cfg.AfterConnect = afterConnect
}

// setSessionSettings fixes how IvorySQL's Oracle-compatible date and timestamp
// types print: their text follows these settings of the session (DATE
// shows no time of day under the default nls_date_format), so every
// session that reads or writes values as text sets them to one lossless
// form, the FDW's included (mooncake_set_transmission_modes). They exist
// only in IvorySQL, so they are set after connecting, where they exist.
//
// transaction_timeout (PostgreSQL 17 and later) is off for the same
// reason as ServiceParams, and lc_messages is C (where the sidecar's role
// may set it, as the superuser it runs as may): the stream recognizes a
// few of the walsender's messages by their text, which a server installed
// in another language would translate.
const setSessionSettings = `SELECT pg_catalog.set_config(v.name, v.value, false)
  FROM (VALUES ('transaction_timeout', '0'),
               ('lc_messages', 'C'),
               ('nls_date_format', 'SYYYY-MM-DD HH24:MI:SS'),
               ('nls_timestamp_format', 'SYYYY-MM-DD HH24:MI:SS.FF6'),
               ('nls_timestamp_tz_format', 'SYYYY-MM-DD HH24:MI:SS.FF6 TZH:TZM')) v(name, value)
 WHERE EXISTS (SELECT FROM pg_catalog.pg_settings s WHERE s.name = v.name
                 AND (s.context <> 'superuser'
                      OR (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)))`

// afterConnect sets what SessionParams cannot on a new session.
func afterConnect(ctx context.Context, pc *pgconn.PgConn) error {
	return pc.Exec(ctx, setSessionSettings).Close()
}

// ReplicationConfig turns a connection config into one for a logical
// replication connection.
func ReplicationConfig(cfg *pgx.ConnConfig) *pgconn.Config {
	rc := cfg.Config.Copy()
	rc.RuntimeParams = map[string]string{"replication": "database", "application_name": "mooncake"}
	for k, v := range SessionParams {
		rc.RuntimeParams[k] = v
	}
	for k, v := range ServiceParams {
		rc.RuntimeParams[k] = v
	}
	rc.AfterConnect = afterConnect
	// The stream arrives as many small messages: reading the socket in
	// large chunks saves most of the read calls.
	rc.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend {
		return pgproto3.NewFrontend(bufio.NewReaderSize(r, 1<<20), w)
	}
	return rc
}

// Fill reads the rows of a copy of a source into w: PostgreSQL's binary
// COPY of w's columns, by as many sessions as it can have, all reading the
// copy's snapshot. It can be called again while the copy lasts (a copy
// made again with other columns reads the same rows).
type Fill func(w *catalog.CopyWriter) error

// CopyWorkers is how many sessions copy one table at once, each a range
// of its blocks, all in the same exported snapshot: COPY's output takes a
// whole core of the backend that runs it, and the copy is that work.
// Tables below parallelBlocks blocks, and partitioned tables, are copied
// by one session.
var CopyWorkers = max(2, min(4, runtime.GOMAXPROCS(0)))

// parallelBlocks is the smallest table (in 8 kB blocks: 64 MB) copied by
// more than one session.
const parallelBlocks = 8192

// CopyTable copies the rows of the source table (a quoted qualified name;
// with partitioned, the rows of all its partitions) as of a new temporary
// replication slot's snapshot: write gets the Fill that reads them and
// lsn, the LSN of the snapshot: commits at or before it are in the copy,
// later ones reach the main slot's stream.
func CopyTable(ctx context.Context, cfg *pgx.ConnConfig, source string, partitioned bool, write func(fill Fill, lsn uint64) error) error {
	return inSnapshot(ctx, cfg, func(conn *pgx.Conn, name string, lsn uint64) error {
		return write(func(w *catalog.CopyWriter) error {
			return copyRows(ctx, cfg, conn, name, source, partitioned, w)
		}, lsn)
	})
}

// CopySource copies a source table again, by OID: write gets its columns
// and key as they are in the copy's snapshot, the Fill that reads its rows
// and the snapshot's LSN.
func CopySource(ctx context.Context, cfg *pgx.ConnConfig, oid uint32, write func(src *Source, fill Fill, lsn uint64) error) error {
	return inSnapshot(ctx, cfg, func(conn *pgx.Conn, name string, lsn uint64) error {
		src, err := InspectSource(ctx, conn, oid, 0)
		if err != nil {
			return err
		}
		// COPY resolves names in the current catalog, not in the
		// snapshot: the table by OID, as it is named now. A column renamed
		// since the snapshot fails the copy (ErrSchemaMoved), to be retried.
		var current string
		if err := conn.QueryRow(ctx, "SELECT $1::regclass::text", oid).Scan(&current); err != nil {
			return err
		}
		return write(src, func(w *catalog.CopyWriter) error {
			err := copyRows(ctx, cfg, conn, name, current, src.Partitioned, w)
			var pe *pgconn.PgError
			if errors.As(err, &pe) && (pe.Code == "42703" || pe.Code == "42P01") {
				return fmt.Errorf("%w: %v", ErrSchemaMoved, err)
			}
			return err
		}, lsn)
	})
}

// ErrSchemaMoved is a copy that failed because the source's schema changed
// after the copy's snapshot; a new copy sees the change.
var ErrSchemaMoved = errors.New("the source's schema changed during the copy")

// syncSlots holds the names of the copies' temporary slots (their
// connections drop them; list_orphan_slots must not count them as orphans).
var syncSlots sync.Map

// SyncSlots lists the temporary slots of the copies under way.
func SyncSlots() []string {
	var out []string
	syncSlots.Range(func(k, _ any) bool {
		out = append(out, k.(string))
		return true
	})
	return out
}

// inSnapshot runs fn in a transaction reading the exported snapshot of a
// new temporary replication slot; fn gets the snapshot's name too, for
// other sessions to read it, and the LSN just before the slot's
// consistent point: commits at or before it are in the snapshot.
func inSnapshot(ctx context.Context, cfg *pgx.ConnConfig, fn func(conn *pgx.Conn, snapshot string, lsn uint64) error) error {
	repl, err := pgconn.ConnectConfig(ctx, ReplicationConfig(cfg))
	if err != nil {
		return fmt.Errorf("open replication connection: %w", err)
	}
	defer repl.Close(context.Background())
	slot := "mooncake_sync_" + fmt.Sprint(os.Getpid()) + "_" + randomSuffix()
	syncSlots.Store(slot, struct{}{})
	defer syncSlots.Delete(slot)
	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Temporary: true, SnapshotAction: "EXPORT_SNAPSHOT"})
	if err != nil {
		return fmt.Errorf("create snapshot slot: %w", err)
	}
	cp, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return err
	}
	conn, err := snapshotSession(ctx, cfg, res.SnapshotName)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if err := fn(conn, res.SnapshotName, uint64(cp)-1); err != nil {
		return err
	}
	conn.Exec(ctx, "COMMIT")
	return nil
}

// snapshotSession opens a session in a read-only transaction reading the
// exported snapshot name.
func snapshotSession(ctx context.Context, cfg *pgx.ConnConfig, name string) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, sessionConfig(cfg))
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	if _, err := conn.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(name)); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("use exported snapshot: %w", err)
	}
	return conn, nil
}

// copyRows reads the rows of source into w. A plain table is read with
// ONLY: the tables inheriting from it are not part of its mirror. A
// partitioned table holds no rows of its own (ONLY would read none): its
// rows are those of its partitions. A large plain table is read by
// CopyWorkers sessions at once (conn's and others reading the same
// exported snapshot), each a range of its blocks (a TID range scan) into
// a part of its own.
func copyRows(ctx context.Context, cfg *pgx.ConnConfig, conn *pgx.Conn, snapshot, source string, partitioned bool, w *catalog.CopyWriter) (err error) {
	from := " FROM ONLY "
	if partitioned {
		from = " FROM "
	}
	p := progressOf(ctx)
	p.estimate(ctx, conn, from+source)
	p.SetPhase(PhaseCopying)
	if p != nil {
		p.rows.Store(0)
		p.bytes.Store(0)
	}
	query := "SELECT " + strings.Join(catalog.CopySelect(w.Columns()), ", ") + from + source
	var blocks int64
	if !partitioned && CopyWorkers > 1 {
		// the blocks as of the snapshot: rows it sees are in none after them
		if err := conn.QueryRow(ctx, "SELECT pg_relation_size($1::regclass) / current_setting('block_size')::bigint", source).Scan(&blocks); err != nil {
			return fmt.Errorf("size of %s: %w", source, err)
		}
	}
	sessions := []*pgx.Conn{conn}
	if blocks >= parallelBlocks {
		// as many sessions as can be had (max_connections may refuse some)
		for len(sessions) < CopyWorkers {
			c, err := snapshotSession(ctx, cfg, snapshot)
			if err != nil {
				break
			}
			defer c.Close(context.Background())
			sessions = append(sessions, c)
		}
	}
	if len(sessions) == 1 {
		if err := copyPart(ctx, conn, query, w, p); err != nil {
			return fmt.Errorf("copy %s: %w", source, err)
		}
		p.SetPhase(PhaseWriting)
		return nil
	}
	workers := int64(len(sessions))
	errs := make(chan error, workers)
	cctx, cancel := context.WithCancel(ctx) // one failing stops the others
	defer cancel()
	for i := range workers {
		lo, hi := blocks*i/workers, blocks*(i+1)/workers
		cond := fmt.Sprintf(" WHERE ctid >= '(%d,0)'::tid", lo)
		if i < workers-1 {
			cond += fmt.Sprintf(" AND ctid < '(%d,0)'::tid", hi)
		}
		go func() { errs <- copyPart(cctx, sessions[i], query+cond, w, p) }()
	}
	for range workers {
		if e := <-errs; e != nil && err == nil {
			err = e
			cancel()
		}
	}
	if err != nil {
		return fmt.Errorf("copy %s: %w", source, err)
	}
	p.SetPhase(PhaseWriting)
	return nil
}

// copyPart reads the rows of query on conn into a part of w, counting
// them into the copy's progress p (if any).
func copyPart(ctx context.Context, conn *pgx.Conn, query string, w *catalog.CopyWriter, p *Progress) error {
	var onBatch func(rows, bytes int64)
	if p != nil {
		onBatch = func(rows, bytes int64) {
			p.rows.Add(rows)
			p.bytes.Add(bytes)
		}
	}
	part, err := w.Part(onBatch)
	if err != nil {
		return err
	}
	_, err = conn.PgConn().CopyTo(ctx, part, "COPY ("+query+") TO STDOUT (FORMAT binary)")
	if cerr := part.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, catalog.ErrCopyMalformed) {
		// The columns' types as COPY sends them are not those of the
		// snapshot: a column's type changed since (resync copies again).
		return fmt.Errorf("%w: %v", ErrSchemaMoved, err)
	}
	return err
}

func sessionConfig(cfg *pgx.ConnConfig) *pgx.ConnConfig {
	c := cfg.Copy()
	if c.RuntimeParams == nil {
		c.RuntimeParams = map[string]string{}
	}
	for k, v := range SessionParams {
		c.RuntimeParams[k] = v
	}
	ServiceConfig(c)
	return c
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
