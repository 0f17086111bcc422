package cdc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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
	Why      string      `json:"why"`  // rewrite from the utility hook: what happened, for the log
	Name     string      `json:"name"` // quoted schema.name
	Columns  []ddlColumn `json:"columns"`
	Key      []string    `json:"key"`      // replica identity columns (none for FULL or NOTHING)
	Identity string      `json:"identity"` // relreplident
	// PlainTypeChanges are the attnums of columns whose type the command
	// changed without a USING expression.
	PlainTypeChanges []int `json:"plain_type_changes"`
	Reason           int   `json:"reason"` // rewrite: why (AT_REWRITE_* bits)
}

// rewriteColumnTypes is the table_rewrite reason of ALTER COLUMN TYPE
// (AT_REWRITE_COLUMN_REWRITE): alone, the rewrite may only widen columns.
const rewriteColumnTypes = 4

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
	// A transaction may change the schema several times (one ALTER TABLE
	// after another): each message is applied in its turn, once.
	ss.ddlSeq++
	seq := ss.ddlSeq
	var msg ddlMessage
	if err := json.Unmarshal(content, &msg); err != nil {
		slog.Warn("ignoring a malformed schema change message", "err", err)
		return nil
	}
	for _, m := range ss.s.Mirrors.BySource(msg.Source) {
		if err := ss.waitReady(ctx, m); err != nil {
			return err
		}
		if j := ss.jobs[m]; j != nil && j.initial {
			// A schema change during the initial copy: a new copy, taken
			// after this transaction, holds every change kept meanwhile.
			ss.dropInitial(j)
			ss.markResync(m, "the schema changed during the initial copy")
			continue
		}
		if ss.jobs[m] != nil {
			// Being copied: the copy may predate this change; start over.
			if err := ss.startCopy(ctx, m, ss.jobs[m].from, 0); err != nil {
				return err
			}
			continue
		}
		if m.Err() != nil || ss.txLSN <= m.AppliedLSN() || m.SchemaFollows(ss.txLSN, seq) || ss.resync[m] {
			continue
		}
		if msg.Op == "rewrite" {
			if msg.Reason == rewriteColumnTypes {
				// The columns message that follows tells whether the
				// rewrite only widened columns; if not, a copy at commit.
				ss.rewritten(msg.Source)
				continue
			}
			why := msg.Why
			if why == "" {
				why = "the source was rewritten"
			}
			ss.markResync(m, why)
			continue
		}
		cols, reason, err := ss.reshaped(ctx, m, &msg, ss.rewrites[msg.Source])
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
		if err := ss.s.Mirrors.Reshape(ctx, ss.w.Conn(), m, cols, keyNames, msg.Name, ss.txLSN, seq); err != nil {
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

func (ss *session) rewritten(source uint32) {
	if ss.rewrites == nil {
		ss.rewrites = map[uint32]bool{}
	}
	ss.rewrites[source] = true
}

// resyncRewritten marks the mirrors of sources rewritten by the
// transaction, and not found to keep their values, for a new copy.
func (ss *session) resyncRewritten() {
	for src := range ss.rewrites {
		for _, m := range ss.s.Mirrors.BySource(src) {
			if m.Err() == nil && !ss.resync[m] && ss.txLSN > m.AppliedLSN() && !m.SchemaFollows(ss.txLSN, ss.ddlSeq) {
				ss.markResync(m, "the source was rewritten")
			}
		}
	}
	clear(ss.rewrites)
}

// reshaped works out the mirror's columns after a schema change: nil when
// they stay as they are, or a reason why the source must be copied again.
// With rewritten, the command rewrote the source: its values stay only if
// every column whose type changed was widened by a plain cast.
func (ss *session) reshaped(ctx context.Context, m *catalog.Mirror, msg *ddlMessage, rewritten bool) ([]catalog.Column, string, error) {
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
			old := m.Columns[i].Type
			if !catalog.Widens(old, t) {
				return nil, fmt.Sprintf("column %q changed type from %s to %s", dc.Name, old.Name, dc.Type), nil
			}
			if rewritten && (!catalog.Promotes(old, t) || !slices.Contains(msg.PlainTypeChanges, dc.AttNum)) {
				return nil, fmt.Sprintf("column %q changed type from %s to %s by a rewrite", dc.Name, old.Name, dc.Type), nil
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

// resyncRequest asks the apply loop to copy a mirror's source again.
type resyncRequest struct {
	m    *catalog.Mirror
	pid  int // the backend that asked (copy_progress), 0 if unknown
	done chan error
}

// Resync copies a mirror's source again, replacing its rows (and repairing
// it when broken); the apply loop does it between two transactions, so
// that no change is lost or applied twice. Readers see the old rows until
// the new ones replace them. pid is the backend that asked, 0 if unknown.
func (s *Stream) Resync(ctx context.Context, m *catalog.Mirror, pid int) error {
	req := resyncRequest{m: m, pid: pid, done: make(chan error, 1)}
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

// serveResync starts a Resync request's copy; the request waits for it.
func (ss *session) serveResync(ctx context.Context, req resyncRequest) error {
	if j := ss.jobs[req.m]; j != nil && j.initial {
		req.done <- &pgconn.PgError{Code: "55000", Message: fmt.Sprintf("mirror %s.%s is still taking its initial copy", req.m.Namespace, req.m.Name)}
		return nil
	}
	if err := ss.startCopy(ctx, req.m, ss.doneLSN, req.pid); err != nil {
		req.done <- err
		return err
	}
	j := ss.jobs[req.m]
	j.wait = append(j.wait, req.done)
	return nil
}
