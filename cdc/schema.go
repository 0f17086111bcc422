package cdc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmooncake/mooncake/catalog"
)

// DDLPrefix is the prefix of the logical decoding messages the extension's
// event triggers emit, in the transaction of a schema change of a mirrored
// source (see the extension script): they put the change at its exact
// place in the stream.
const DDLPrefix = "mooncake_ddl"

// ddlMessage is one such message. Op "columns" (at ddl_command_end) carries
// the source's columns after the command; op "rewrite" (at table_rewrite,
// and from the extension's utility hook for ATTACH, DETACH, DROP and
// TRUNCATE of a partition of a partitioned source) says the command
// changed the source's rows in a way logical decoding does not show as row
// changes.
type ddlMessage struct {
	Op       string      `json:"op"`
	Source   uint32      `json:"source"`
	Reason   string      `json:"reason"` // rewrite: why, for the log
	Name     string      `json:"name"`   // quoted schema.name
	Columns  []ddlColumn `json:"columns"`
	Key      []string    `json:"key"`      // replica identity columns (none for FULL or NOTHING)
	Identity string      `json:"identity"` // relreplident
}

type ddlColumn struct {
	AttNum     int    `json:"attnum"`
	Name       string `json:"name"`
	TypeOID    uint32 `json:"type_oid"`
	Typmod     int32  `json:"typmod"`
	Type       string `json:"type"`
	NotNull    bool   `json:"not_null"`
	HasMissing bool   `json:"has_missing"` // added with a default: existing rows show it
	Generated  string `json:"generated"`
}

// handleDDL applies a schema change message of the transaction being
// applied to the mirrors of its source: at once when the change keeps the
// rows (catalog.Reshape), else by copying the source again when the
// transaction commits (catalog.Replace; the mirror skips the rest of the
// transaction's changes, which the copy holds).
func (ss *session) handleDDL(ctx context.Context, content []byte) error {
	var msg ddlMessage
	if err := json.Unmarshal(content, &msg); err != nil {
		slog.Warn("ignoring a malformed schema change message", "err", err)
		return nil
	}
	for _, m := range ss.s.Mirrors.BySource(msg.Source) {
		if err := ss.waitReady(ctx, m); err != nil {
			return err
		}
		if m.Err() != nil || ss.txLSN <= m.AppliedLSN() || ss.txLSN <= m.SchemaLSN() || ss.resync[m] {
			continue
		}
		if msg.Op == "rewrite" {
			reason := msg.Reason
			if reason == "" {
				reason = "the source was rewritten"
			}
			ss.markResync(m, reason)
			continue
		}
		cols, reason, err := ss.reshaped(ctx, m, &msg)
		if err != nil {
			return err
		}
		if reason != "" {
			ss.markResync(m, reason)
			continue
		}
		if cols == nil && msg.Name == m.Source {
			continue // nothing a mirror keeps changed (a default, an index)
		}
		if cols == nil {
			cols = m.Columns
		}
		if err := ss.sync(ctx); err != nil {
			return err
		}
		ss.w.Forget(m)
		keyNames := make([]string, len(msg.Key))
		copy(keyNames, msg.Key)
		if m.Full {
			keyNames = nil
			for _, c := range cols {
				keyNames = append(keyNames, c.Name)
			}
		}
		if err := ss.s.Mirrors.Reshape(ctx, ss.w.Conn(), m, cols, keyNames, msg.Name, ss.txLSN); err != nil {
			if errors.Is(err, catalog.ErrInconsistent) || ctx.Err() != nil {
				return err
			}
			// Iceberg refused the evolution (e.g. two columns swapped
			// names): a new copy takes the new schema whatever it is.
			ss.markResync(m, "the schema change cannot be made in place: "+err.Error())
			continue
		}
		slog.Info("mirror follows a schema change of its source", "mirror", m.Namespace+"."+m.Name, "source", msg.Name,
			"columns", len(cols), "lsn", pglogrepl.LSN(ss.txLSN))
	}
	return nil
}

func (ss *session) markResync(m *catalog.Mirror, reason string) {
	if ss.resync == nil {
		ss.resync = map[*catalog.Mirror]bool{}
	}
	ss.resync[m] = true
	slog.Info("mirror will copy its source again", "mirror", m.Namespace+"."+m.Name, "reason", reason)
}

// reshaped works out the mirror's columns after a schema change: nil when
// they stay as they are, or a reason why the source must be copied again.
func (ss *session) reshaped(ctx context.Context, m *catalog.Mirror, msg *ddlMessage) ([]catalog.Column, string, error) {
	if ss.txChanged {
		return nil, "the schema changed after other changes of the same transaction", nil
	}
	if (msg.Identity == "f") != m.Full {
		return nil, "the replica identity changed", nil
	}
	var cols []catalog.Column
	for _, dc := range msg.Columns {
		if dc.Generated != "" {
			return nil, "a generated column was added", nil
		}
		i := slices.IndexFunc(m.Columns, func(c catalog.Column) bool {
			return c.AttNum == dc.AttNum || c.AttNum == 0 && c.Name == dc.Name
		})
		if i < 0 && dc.HasMissing {
			return nil, fmt.Sprintf("column %q was added with a default", dc.Name), nil
		}
		if i >= 0 && m.Columns[i].Name == dc.Name && m.Columns[i].Type.OID == dc.TypeOID &&
			m.Columns[i].Type.Typmod == dc.Typmod && m.Columns[i].Type.Name == dc.Type && m.Columns[i].AttNum == dc.AttNum {
			c := m.Columns[i]
			c.NotNull = dc.NotNull
			cols = append(cols, c)
			continue
		}
		conn, err := ss.catalogConn(ctx)
		if err != nil {
			return nil, "", err
		}
		t, err := ResolveColumnType(ctx, conn, dc.TypeOID, dc.Typmod, dc.Type)
		if err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) {
				return nil, fmt.Sprintf("column %q has a type mirrors cannot hold: %s", dc.Name, pe.Message), nil
			}
			return nil, "", err
		}
		c := catalog.Column{Name: dc.Name, Type: t, NotNull: dc.NotNull, AttNum: dc.AttNum}
		if i >= 0 {
			if !catalog.Widens(m.Columns[i].Type, t) {
				return nil, fmt.Sprintf("column %q changed type from %s to %s", dc.Name, m.Columns[i].Type.Name, dc.Type), nil
			}
			c.ID = m.Columns[i].ID
		}
		cols = append(cols, c)
	}
	if len(cols) == 0 {
		return nil, "the source has no columns left", nil
	}
	if !m.Full {
		// The key must be the same columns, renamed or not.
		if len(msg.Key) != len(m.Key) {
			return nil, "the source's key changed", nil
		}
		for i, k := range m.Key {
			j := slices.IndexFunc(cols, func(c catalog.Column) bool { return c.ID == m.Columns[k].ID })
			if j < 0 || cols[j].Name != msg.Key[i] {
				return nil, "the source's key changed", nil
			}
		}
	}
	same := len(cols) == len(m.Columns)
	for i := 0; same && i < len(cols); i++ {
		same = cols[i] == m.Columns[i]
	}
	if same {
		return nil, "", nil
	}
	return cols, "", nil
}

// catalogConn is a regular connection for catalog lookups, opened once
// per session.
func (ss *session) catalogConn(ctx context.Context) (*pgx.Conn, error) {
	if ss.cat != nil && !ss.cat.IsClosed() {
		return ss.cat, nil
	}
	c, err := pgx.ConnectConfig(ctx, sessionConfig(ss.s.Config))
	if err != nil {
		return nil, err
	}
	ss.cat = c
	return c, nil
}

// resyncMarked copies the sources of the mirrors marked during the
// transaction just committed again, before the transaction becomes
// visible.
func (ss *session) resyncMarked(ctx context.Context) error {
	if len(ss.resync) == 0 {
		return nil
	}
	if err := ss.w.Sync(ctx); err != nil {
		return err
	}
	for m := range ss.resync {
		if err := ss.s.resync(ctx, ss.w, m); err != nil {
			return err
		}
	}
	clear(ss.resync)
	return nil
}

// resync copies a mirror's source again and replaces the mirror's rows
// with the copy. A source the mirror can no longer follow breaks it, with
// the reason.
func (s *Stream) resync(ctx context.Context, w *catalog.Writer, m *catalog.Mirror) error {
	w.Forget(m)
	if err := os.MkdirAll(s.SpoolDir, 0o700); err != nil {
		return err
	}
	var src *Source
	var snap *Snapshot
	var err error
	for range 5 {
		if src, snap, err = CopySource(ctx, s.Config, m.SourceOID, s.SpoolDir); !errors.Is(err, ErrSchemaMoved) {
			break
		}
	}
	if err != nil && !errors.Is(err, ErrSchemaMoved) {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && ctx.Err() == nil {
			reason := pe.Message
			if pe.Code == "42P01" {
				reason = "its source table no longer exists"
			}
			slog.Error("mirror cannot follow its source; it is marked broken", "mirror", m.Namespace+"."+m.Name, "reason", reason)
			return s.Mirrors.Break(ctx, m, reason)
		}
	}
	if err != nil {
		return fmt.Errorf("copy the source of %s.%s again: %w", m.Namespace, m.Name, err)
	}
	defer os.Remove(snap.CSVPath)
	rows, err := s.Mirrors.Replace(ctx, w.Conn(), m, m.MatchColumns(src.Columns), src.Key, src.Full, src.Qualified, snap.CSVPath, snap.LSN)
	if err != nil {
		if errors.Is(err, catalog.ErrInconsistent) {
			return err
		}
		return &catalog.MirrorError{Mirror: m, Err: fmt.Errorf("copy the source again: %w", err)}
	}
	slog.Info("mirror copied its source again", "mirror", m.Namespace+"."+m.Name, "rows", rows, "lsn", pglogrepl.LSN(snap.LSN))
	return nil
}

// resyncRequest asks the apply loop to copy a mirror's source again.
type resyncRequest struct {
	m    *catalog.Mirror
	done chan error
}

// Resync copies a mirror's source again, replacing its rows (and repairing
// it when broken); the apply loop does it between two transactions, so
// that no change is lost or applied twice. Readers see the old rows until
// the new ones replace them.
func (s *Stream) Resync(ctx context.Context, m *catalog.Mirror) error {
	req := resyncRequest{m: m, done: make(chan error, 1)}
	select {
	case s.resyncs() <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Stream) resyncs() chan resyncRequest {
	s.resyncOnce.Do(func() { s.resyncCh = make(chan resyncRequest) })
	return s.resyncCh
}

// serveResync runs a Resync request between transactions.
func (ss *session) serveResync(ctx context.Context, req resyncRequest) error {
	if err := ss.sync(ctx); err != nil {
		req.done <- err
		return err
	}
	err := ss.s.resync(ctx, ss.w, req.m)
	var me *catalog.MirrorError
	if err == nil || errors.As(err, &me) {
		req.done <- err
		return nil
	}
	req.done <- err
	return err
}
