package service

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmooncake/mooncake/cdc"
	"github.com/pgmooncake/mooncake/sidecar/metrics"
)

// A hold keeps the sidecar out of a database while a statement that needs
// it alone runs: DROP DATABASE, ALTER DATABASE ... RENAME TO or SET
// TABLESPACE, CREATE DATABASE ... TEMPLATE. PostgreSQL refuses them while
// other sessions are connected to the database (the sidecar's catalog
// connections, its replication stream), so the backend running one asks
// the sidecar first (release_database); the sidecar closes what it has
// open there and stays out until the backend's transaction ends. It then
// opens the database again under its name of that moment, or, when it is
// gone, removes its warehouse directory.
type hold struct {
	oid     uint32
	name    string
	from    string // the requesting backend's database, to watch it from
	pid     int
	start   string    // the backend's transaction start (epoch seconds)
	closed  *database // the sidecar's state of the database, closed
	expires time.Time
	done    chan struct{} // closed when the hold is lifted
}

// holdLimit bounds a hold whose backend cannot be watched.
const holdLimit = 10 * time.Minute

// releaseDatabase serves release_database: req.Table names the database,
// req.What the statement (drop, rename, tablespace or template), req.PID
// and req.CreatorStart the backend's transaction, req.Database the
// backend's own database.
func (s *server) releaseDatabase(ctx context.Context, req *Request) (any, error) {
	r := s.dbs
	name := req.Table
	if name == "" || req.PID == 0 || req.CreatorStart == "" {
		return nil, userError("08P01", "release_database needs the database, the backend's pid and its transaction start")
	}
	conn, err := pgx.ConnectConfig(ctx, r.config(req.Database))
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	var oid uint32
	var allowConn bool
	if err := conn.QueryRow(ctx, "SELECT oid, datallowconn FROM pg_database WHERE datname = $1", name).Scan(&oid, &allowConn); err != nil {
		if err == pgx.ErrNoRows {
			return map[string]any{"released": false}, nil // PostgreSQL reports it
		}
		return nil, err
	}
	if !allowConn {
		return map[string]any{"released": false}, nil // template0: nobody is connected
	}
	if req.What == "template" {
		if err := r.refuseCopy(ctx, name); err != nil {
			return nil, err
		}
	}
	h := &hold{oid: oid, name: name, from: req.Database, pid: req.PID, start: req.CreatorStart,
		expires: time.Now().Add(holdLimit), done: make(chan struct{})}
	r.mu.Lock()
	if r.held == nil {
		r.held = map[string]*hold{}
	}
	if prev := r.held[name]; prev != nil {
		r.mu.Unlock()
		return nil, userError("55006", "database %q is being dropped, renamed, moved or copied by another session", name)
	}
	d := r.byName[name]
	if d == nil {
		// Nothing of the sidecar's is connected there (it opens a
		// database when one of its backends asks, and none can while the
		// statement runs).
		r.mu.Unlock()
		return map[string]any{"released": false}, nil
	}
	r.held[name] = h
	delete(r.byName, name)
	r.mu.Unlock()
	h.closed = d
	slog.Info("closing the database for a statement that needs it alone", "database", name, "statement", req.What)
	d.stop()
	if req.What == "drop" {
		// what the warehouse directory does not hold, and the
		// secrets to remove it with, for dropped
		d.lookOutside(ctx)
		d.outsideNow()
		if r.secrets != nil {
			r.secrets.pin(ctx, name)
		}
	}
	r.pins.releaseDatabase(d.name)
	d.mirrors.Close(ctx)
	// PostgreSQL refuses to drop a database whose slot is active: wait
	// for the walsender of the stream to let it go.
	if err := waitSlotInactive(ctx, conn, cdc.SlotName(oid)); err != nil {
		slog.Warn("the replication slot is still active", "database", name, "err", err)
	}
	go r.awaitRelease(h)
	return map[string]any{"released": true}, nil
}

// refuseCopy fails when database name holds mirrors or columnstore tables:
// a copy would share their Iceberg files (the catalog names them), and
// the two databases would then write and remove each other's files.
func (r *databases) refuseCopy(ctx context.Context, name string) error {
	c, err := pgx.ConnectConfig(ctx, r.config(name))
	if err != nil {
		// Let PostgreSQL decide; a copy that happens anyway forgets the
		// original's tables when the sidecar opens it (catalog/identity.go).
		slog.Warn("cannot tell whether a database to copy has tables", "database", name, "err", err)
		return nil
	}
	var tables int
	err = c.QueryRow(ctx, `SELECT CASE WHEN to_regclass('mooncake.iceberg_tables') IS NULL THEN 0
		ELSE (SELECT count(*) FROM mooncake.iceberg_tables) END`).Scan(&tables)
	c.Close(context.Background())
	if err != nil {
		slog.Warn("cannot tell whether a database to copy has tables", "database", name, "err", err)
		return nil
	}
	if tables == 0 {
		return nil
	}
	e := userError("0A000", "cannot copy database %q: it has %d mirror(s) or columnstore table(s)", name, tables)
	e.Detail = "A copy made by CREATE DATABASE ... TEMPLATE would name the same Iceberg files as the original, and each database would change and remove the other's."
	e.Hint = "Copy it with pg_dump --include-foreign-data=mooncake (columnstore tables come with their rows), and create the copy's mirrors again with mooncake.create_table."
	return e
}

// waitSlotInactive waits up to 5 s for slot to have no walsender.
func waitSlotInactive(ctx context.Context, conn *pgx.Conn, slot string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		var active bool
		err := conn.QueryRow(ctx, "SELECT coalesce(bool_or(active), false) FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&active)
		if err != nil {
			return err
		}
		if !active {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("slot %s is active after 5 s", slot)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// awaitRelease waits for the transaction of h's backend to end, then lifts
// the hold: the database is opened again under its current name, or, if
// it was dropped, its warehouse directory is removed.
func (r *databases) awaitRelease(h *hold) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
		name, ended, err := r.holdEnded(h)
		if err != nil && time.Now().Before(h.expires) {
			continue
		}
		if err == nil && !ended && time.Now().Before(h.expires) {
			continue
		}
		r.mu.Lock()
		delete(r.held, h.name)
		r.mu.Unlock()
		defer close(h.done)
		if r.secrets != nil {
			defer r.secrets.unpin(h.name)
		}
		switch {
		case err != nil || (!ended && name != ""):
			slog.Warn("lifting a hold on a database without knowing how the statement ended", "database", h.name, "err", err)
			if name == "" {
				name = h.name
			}
			r.reopen(name)
		case name == "":
			r.dropped(h)
		default:
			if name != h.name {
				metrics.Default.ForgetDatabase(h.name)
			}
			r.reopen(name)
		}
		return
	}
}

// holdEnded tells whether h's transaction has ended and the database's
// name then ("" when it no longer exists).
func (r *databases) holdEnded(h *hold) (string, bool, error) {
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, r.config(h.from))
	if err != nil {
		return "", false, err
	}
	defer conn.Close(context.Background())
	var running bool
	var name *string
	err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1::int
			AND extract(epoch FROM xact_start) = $2::numeric),
		(SELECT datname FROM pg_database WHERE oid = $3)`, h.pid, h.start, h.oid).Scan(&running, &name)
	if err != nil {
		return "", false, err
	}
	if name == nil {
		return "", !running, nil
	}
	return *name, !running, nil
}

// reopen opens a database the sidecar had open before a hold, so that its
// replication resumes.
func (r *databases) reopen(name string) {
	ctx, cancel := context.WithTimeout(r.ctx, time.Minute)
	defer cancel()
	if _, err := r.get(ctx, name); err != nil {
		slog.Warn("cannot open the database again", "database", name, "err", err)
	}
}

// dropped removes what a dropped database left outside PostgreSQL: its
// warehouse directory (its replication slot went with it).
func (r *databases) dropped(h *hold) {
	ctx, cancel := context.WithTimeout(r.ctx, time.Minute)
	defer cancel()
	metrics.Default.ForgetDatabase(h.name)
	slog.Info("database dropped: removing its warehouse files", "database", h.name)
	h.closed.removeOutside(ctx)
	if err := h.closed.mirrors.Catalog.RemoveWarehouse(ctx); err != nil {
		slog.Error("cannot remove the warehouse files", "database", h.name, "err", err)
	}
}

// beforeDropExtension serves before_drop_extension: DROP EXTENSION
// pg_mooncake is about to remove the catalog, which names the tables kept
// outside the warehouse directory that forget removes (lookOutside runs
// every second otherwise: a table made just before would be missed).
func (s *server) beforeDropExtension(ctx context.Context, req *Request) (any, error) {
	s.dbs.mu.Lock()
	d := s.dbs.byName[req.Database]
	s.dbs.mu.Unlock()
	if d != nil && (req.Extension == 0 || d.extOID == req.Extension) {
		d.lookOutside(ctx)
		if s.secrets != nil {
			s.secrets.pin(ctx, req.Database)
		}
	}
	return map[string]any{}, nil
}
