package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmooncake/mooncake/catalog"
	"github.com/pgmooncake/mooncake/cdc"
	"github.com/pgmooncake/mooncake/sidecar/metrics"
	"github.com/pgmooncake/mooncake/sql"
)

// database is the sidecar's state for one PostgreSQL database that uses
// mirrors.
type database struct {
	name    string
	oid     uint32
	extOID  uint32 // the pg_mooncake extension the mirrors belong to
	cfg     *pgx.ConnConfig
	mirrors *catalog.Set

	mu         sync.Mutex    // guards stream, and serializes create_table
	stream     *cdc.Stream   // nil until the first mirror exists (or without CDC)
	streamDone chan struct{} // closed when the stream's Run returns
	ctx        context.Context
	cancel     context.CancelFunc // stops the stream and the extension watch

	purgeMu sync.Mutex // serializes the removal of dropped columnstore tables' files
	goneMu  sync.Mutex // serializes dropGone: a backend's request and reconcile may find one mirror together

	outsideMu sync.Mutex
	outside   []string // metadata files of catalog.TablesToRemove, as of the last look
}

// lookOutside records the metadata files of the database's tables that
// removing its warehouse directory leaves (catalog.TablesToRemove: those
// kept outside it, all of them on an object store), for removeOutside.
func (d *database) lookOutside(ctx context.Context) {
	l, err := d.mirrors.Catalog.TablesToRemove(ctx)
	if err != nil {
		return
	}
	d.outsideMu.Lock()
	d.outside = l
	d.outsideMu.Unlock()
}

// outsideNow adds the mirrors' current metadata files to what
// lookOutside saw (before the set is closed, which forgets the mirrors)
// and returns the list.
func (d *database) outsideNow() []string {
	d.outsideMu.Lock()
	defer d.outsideMu.Unlock()
	for _, m := range d.mirrors.All() {
		if l := m.MetadataLocation(); l != "" && d.mirrors.Catalog.Outside(l) {
			d.outside = append(d.outside, l)
		}
	}
	slices.Sort(d.outside)
	d.outside = slices.Compact(d.outside)
	return slices.Clone(d.outside)
}

// removeOutside removes the files of those tables of a database whose
// extension or whole self is gone: the ones seen by the last lookOutside,
// and the mirrors' current ones.
func (d *database) removeOutside(ctx context.Context) {
	for _, l := range d.outsideNow() {
		if err := catalog.RemoveTableAt(ctx, d.name, l); err != nil {
			slog.Warn("cannot remove the files of a table kept outside the warehouse", "database", d.name, "metadata", l, "err", err)
		}
	}
}

// stop ends the database's work (stream, watch) and waits for the
// stream to return.
func (d *database) stop() {
	d.cancel()
	d.mu.Lock()
	done := d.streamDone
	d.mu.Unlock()
	if done != nil {
		<-done
	}
}

// dropGone drops m, whose foreign table is gone, unless another request
// or reconcile did meanwhile.
func (r *databases) dropGone(ctx context.Context, d *database, m *catalog.Mirror) error {
	d.goneMu.Lock()
	defer d.goneMu.Unlock()
	if d.mirrors.ByForeignTable(m.ForeignOID) != m {
		return nil
	}
	return r.dropMirror(ctx, d, m)
}

// purgeDropped removes the files of the columnstore tables dropped by
// committed transactions (catalog.PurgeDropped): when the database opens
// (a drop whose removal a crash cut short) and when a backend asks after
// committing a drop.
func (r *databases) purgeDropped(d *database) {
	d.purgeMu.Lock()
	defer d.purgeMu.Unlock()
	ctx := catalog.WithDatabase(d.ctx, d.name)
	n, err := d.mirrors.Catalog.PurgeDropped(ctx)
	if err != nil && d.ctx.Err() == nil {
		slog.Warn("could not remove the files of dropped columnstore tables", "database", d.name, "err", err)
	}
	if n > 0 {
		slog.Info("removed the files of dropped columnstore tables", "database", d.name, "tables", n)
	}
}

// databases is the registry of opened databases.
type databases struct {
	base      *pgx.ConnConfig // connection to the cluster, database left empty
	engine    *sql.Engine
	warehouse string
	cdc       bool
	flush     time.Duration
	// sweep is how often the files that no committed version of a
	// columnstore table references are removed (0: never; see sweepOrphans).
	sweep    time.Duration
	ctx      context.Context // lives as long as the sidecar
	fatal    func(error)     // ends the sidecar; the background worker restarts it
	spoolDir string          // for streamed transactions
	pins     pins            // REPEATABLE READ transactions' views of the mirrors (pins.go)

	mu     sync.Mutex
	byName map[string]*database
	held   map[string]*hold // databases the sidecar stays out of (release.go)
	// secrets are pinned for the removal of a dropped database's or
	// extension's files on object stores (nil in tests)
	secrets *secrets
}

func (r *databases) config(name string) *pgx.ConnConfig {
	c := r.base.Copy()
	c.Database = name
	return c
}

// getExt is get for a request that names the extension it comes from
// (extOID, 0 if it does not): state left by a dropped extension of the
// same database is forgotten first, without waiting for watch to notice.
func (r *databases) getExt(ctx context.Context, name string, extOID uint32) (*database, error) {
	d, err := r.get(ctx, name)
	if err != nil || extOID == 0 || d.extOID == extOID {
		return d, err
	}
	r.forgetOnce(d)
	return r.get(ctx, name)
}

// get returns the state of database name, opening it on first use.
func (r *databases) get(ctx context.Context, name string) (*database, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d, ok := r.byName[name]; ok {
		return d, nil
	}
	if h := r.held[name]; h != nil {
		// A request from the database itself comes once the statement
		// has ended: wait for the hold to be lifted.
		r.mu.Unlock()
		select {
		case <-h.done:
		case <-ctx.Done():
		case <-time.After(30 * time.Second):
		}
		r.mu.Lock()
		if d, ok := r.byName[name]; ok {
			return d, nil
		}
		if r.held[name] != nil {
			return nil, userError("55006", "database %q is being dropped, renamed, moved or copied", name)
		}
	}
	cfg := r.config(name)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database %q: %w", name, err)
	}
	var oid uint32
	var ext *uint32
	err = conn.QueryRow(ctx, `SELECT d.oid, (SELECT e.oid FROM pg_extension e WHERE extname = 'pg_mooncake')
		FROM pg_database d WHERE d.datname = current_database()`).Scan(&oid, &ext)
	conn.Close(ctx)
	if err != nil {
		return nil, err
	}
	if ext == nil {
		return nil, &pgconn.PgError{Code: "55000", Message: fmt.Sprintf("extension pg_mooncake is not installed in database %q", name)}
	}
	cat, err := catalog.Open(ctx, cfg, r.warehouse)
	if err != nil {
		return nil, err
	}
	set, err := catalog.OpenSet(ctx, cat, r.engine.DB)
	if err != nil {
		cat.Close()
		return nil, err
	}
	d := &database{name: name, oid: oid, extOID: *ext, cfg: cfg, mirrors: set}
	d.ctx, d.cancel = context.WithCancel(r.ctx)
	r.byName[name] = d
	d.lookOutside(ctx)
	go r.watch(d)
	go r.purgeDropped(d)
	if len(set.All()) > 0 {
		if err := r.startStream(ctx, d); err != nil {
			slog.Error("cannot start replication", "database", name, "err", err)
		}
	}
	slog.Info("database opened", "database", name, "mirrors", len(set.All()))
	return d, nil
}

// startStream starts applying the database's replication stream, once.
func (r *databases) startStream(ctx context.Context, d *database) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stream != nil || !r.cdc {
		return nil
	}
	slot := cdc.SlotName(d.oid)
	created, err := cdc.EnsureSlot(ctx, d.cfg, slot)
	if err != nil {
		return err
	}
	d.stream = &cdc.Stream{Config: d.cfg, Slot: slot, Mirrors: d.mirrors, FlushInterval: r.flush, FlushRows: 1 << 20,
		Fatal: r.fatal, SpoolDir: filepath.Join(r.spoolDir, fmt.Sprintf("stream-%d", d.oid))}
	if created && len(d.mirrors.All()) > 0 {
		// Mirrors without their slot (dropped while the sidecar was
		// down, or an upgrade that kept no slots): see cdc.Stream.SlotLost.
		slog.Error("the replication slot was gone: made it again; every mirror is copied again", "database", d.name, "slot", slot)
		d.stream.SlotLost.Store(true)
	}
	d.streamDone = make(chan struct{})
	go func() {
		defer close(d.streamDone)
		d.stream.Run(d.ctx)
	}()
	go migrateDecimals(d.ctx, d.stream, d.mirrors)
	return nil
}

// migrateDecimals copies again, one after the other, the sources of the
// mirrors made by older versions that keep numeric(p,s) columns as text,
// so that they store them as DECIMAL (catalog.DecimalType). Readers see
// the old rows until each new copy is in; a mirror whose copy fails is
// tried again at the next start.
func migrateDecimals(ctx context.Context, stream *cdc.Stream, set *catalog.Set) {
	for _, m := range set.All() {
		if !m.NeedsDecimals() || m.Err() != nil {
			continue
		}
		slog.Info("copying the source again to store numeric columns as decimals", "mirror", m.Namespace+"."+m.Name)
		if err := stream.Resync(ctx, m, 0); err != nil {
			if ctx.Err() != nil {
				return
			}
			slog.Warn("cannot store the mirror's numeric columns as decimals", "mirror", m.Namespace+"."+m.Name, "err", err)
		}
	}
}

// watch notices when the extension is dropped from the database (DROP
// EXTENSION pg_mooncake, with or without CASCADE), and then removes what
// the mirrors left outside it: the replication slot, the publication, the
// warehouse files, and the sidecar's state.
//
// It also removes, every r.sweep (the first time a minute after it starts,
// or sooner when r.sweep is shorter), the files of columnstore tables that
// transactions cut by a crash left behind (sweepOrphans).
func (r *databases) watch(d *database) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var nextSweep time.Time
	if r.sweep > 0 {
		nextSweep = time.Now().Add(min(r.sweep, time.Minute))
	}
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
		}
		conn, err := pgx.ConnectConfig(d.ctx, d.cfg)
		if err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "3D000" {
				r.forget(d) // the database is gone
				return
			}
			continue
		}
		var installed bool
		err = conn.QueryRow(d.ctx, "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_mooncake' AND oid = $1)", d.extOID).Scan(&installed)
		if err == nil && !installed {
			conn.Close(context.Background())
			r.forget(d)
			return
		}
		if err == nil {
			r.reconcile(d.ctx, d, conn)
			r.republish(d.ctx, d, conn)
			d.lookOutside(d.ctx)
			if r.secrets != nil {
				r.secrets.unpinOlder(d.name, time.Minute)
			}
			if r.sweep > 0 && !time.Now().Before(nextSweep) {
				sweepOrphans(d.ctx, d.name, conn)
				nextSweep = time.Now().Add(r.sweep)
			}
		}
		conn.Close(context.Background())
	}
}

// sweepOrphans removes, in each columnstore table of the database conn is
// connected to, the files that no committed metadata of the table
// references and that are older than an hour: what transactions cut by a
// crash or an immediate shutdown wrote (rolled back ones remove their own).
// It is mooncake.remove_orphan_files with its default grace period, which
// waits for the table's writers: a table whose writers hold it for more
// than a second is left for the next sweep, and so is one whose directory
// holds another table too (the function refuses it).
func sweepOrphans(ctx context.Context, db string, conn *pgx.Conn) {
	if _, err := conn.Exec(ctx, "SET lock_timeout = '1s'"); err != nil {
		return
	}
	rows, err := conn.Query(ctx, `SELECT c.relid, pg_catalog.format('%I.%I', n.nspname, r.relname)
		FROM mooncake.columnstore_relations c
		JOIN pg_catalog.pg_class r ON r.oid = c.relid
		JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace
		ORDER BY 1`)
	if err != nil {
		slog.Warn("cannot list columnstore tables to remove orphaned files", "database", db, "err", err)
		return
	}
	type table struct {
		OID  uint32
		Name string
	}
	tables, err := pgx.CollectRows(rows, pgx.RowToStructByPos[table])
	if err != nil {
		slog.Warn("cannot list columnstore tables to remove orphaned files", "database", db, "err", err)
		return
	}
	for _, t := range tables {
		var removed int64
		err := conn.QueryRow(ctx, "SELECT mooncake.remove_orphan_files($1::pg_catalog.oid::pg_catalog.regclass)", t.OID).Scan(&removed)
		var pgErr *pgconn.PgError
		switch {
		case err == nil && removed > 0:
			slog.Info("removed orphaned files of a columnstore table", "database", db, "table", t.Name, "files", removed)
		case err == nil:
		case ctx.Err() != nil:
			return
		case errors.As(err, &pgErr) && (pgErr.Code == "55P03" || pgErr.Code == "42P01" || pgErr.Code == "55000"):
			// held by its writers, dropped since the list, or sharing its
			// directory: not now (or not by the sweep)
		default:
			slog.Warn("cannot remove the orphaned files of a columnstore table", "database", db, "table", t.Name, "err", err)
		}
	}
}

// reconcile settles the mirrors whose create_table transaction is not
// known to have committed: a mirror whose transaction rolled back (or
// ended before its foreign table was attached) is dropped, so that nothing
// of a failed or rolled back create_table remains; one whose transaction
// committed is recorded as such.
//
// It also drops the mirrors whose foreign tables committed transactions
// dropped (DROP FOREIGN TABLE, drop_table, DROP ... CASCADE of the source
// or the schema), which the dropping backend could not report after its
// commit (the sidecar was down, the backend died, the transaction was
// prepared and committed elsewhere).
func (r *databases) reconcile(ctx context.Context, d *database, conn *pgx.Conn) {
	var attached []uint32
	for _, m := range d.mirrors.All() {
		if m.Pending() == "" && m.ForeignOID != 0 {
			attached = append(attached, m.ForeignOID)
		}
	}
	if len(attached) > 0 {
		gone, err := missingRelations(ctx, conn, attached)
		if err != nil {
			slog.Warn("cannot tell whether mirrors' foreign tables exist", "database", d.name, "err", err)
		}
		for _, oid := range gone {
			m := d.mirrors.ByForeignTable(oid)
			if m == nil || m.Pending() != "" {
				continue
			}
			slog.Info("dropping a mirror whose foreign table was dropped", "mirror", m.Namespace+"."+m.Name)
			if err := r.dropGone(ctx, d, m); err != nil {
				slog.Warn("cannot drop the mirror", "mirror", m.Namespace+"."+m.Name, "err", err)
			}
		}
	}
	for _, m := range d.mirrors.All() {
		p := m.Pending()
		if p == "" {
			continue
		}
		select {
		case <-m.Ready():
		default:
			continue // create_table is still copying
		}
		var alive, committed bool
		var err error
		switch kind, rest, _ := strings.Cut(p, ":"); kind {
		case "pid":
			pid, start, _ := strings.Cut(rest, ":")
			err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1::int
				AND extract(epoch FROM xact_start) = $2::numeric)`, pid, start).Scan(&alive)
		case "xid":
			var status *string
			err = conn.QueryRow(ctx, "SELECT txid_status($1::bigint)", rest).Scan(&status)
			committed = status != nil && *status == "committed"
			alive = status != nil && *status == "in progress"
		}
		switch {
		case err != nil:
			slog.Warn("cannot tell whether a mirror's create_table committed", "mirror", m.Namespace+"."+m.Name, "err", err)
		case committed:
			if err := d.mirrors.Committed(ctx, m); err != nil {
				slog.Warn("cannot record that a mirror's create_table committed", "mirror", m.Namespace+"."+m.Name, "err", err)
			}
		case !alive && m.Pending() != p:
			// attach came meanwhile, inside the creating transaction, which
			// then ended: next round looks at that transaction.
		case !alive:
			slog.Info("dropping a mirror whose create_table did not commit", "mirror", m.Namespace+"."+m.Name)
			if err := r.dropMirror(ctx, d, m); err != nil {
				slog.Warn("cannot drop the mirror", "mirror", m.Namespace+"."+m.Name, "err", err)
			}
		}
	}
}

// republish puts back into the publication the sources of mirrors that
// left it (ALTER PUBLICATION ... DROP TABLE or SET TABLE by hand): the
// changes made meanwhile were never sent, so each such mirror is copied
// again. A publication that is gone altogether is left to EnsureSlot.
func (r *databases) republish(ctx context.Context, d *database, conn *pgx.Conn) {
	d.mu.Lock()
	stream := d.stream
	d.mu.Unlock()
	if stream == nil {
		return
	}
	bySource := map[uint32][]*catalog.Mirror{}
	var oids []uint32
	for _, m := range d.mirrors.All() {
		select {
		case <-m.Ready():
		default:
			continue
		}
		if m.Pending() != "" || m.SourceOID == 0 {
			continue
		}
		if bySource[m.SourceOID] == nil {
			oids = append(oids, m.SourceOID)
		}
		bySource[m.SourceOID] = append(bySource[m.SourceOID], m)
	}
	if len(oids) == 0 {
		return
	}
	rows, err := conn.Query(ctx, `SELECT c.oid, pg_catalog.format('%I.%I', n.nspname, c.relname)
		FROM unnest($1::oid[]) o JOIN pg_class c ON c.oid = o JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $2)
		  AND NOT EXISTS (SELECT 1 FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
		                  WHERE p.pubname = $2 AND pr.prrelid = o)`, oids, cdc.Publication)
	if err != nil {
		return
	}
	type source struct {
		OID       uint32
		Qualified string
	}
	missing, err := pgx.CollectRows(rows, pgx.RowToStructByPos[source])
	if err != nil {
		return
	}
	for _, src := range missing {
		ms := bySource[src.OID]
		slog.Error("a mirrored table left the publication: publishing it again and copying it again", "database", d.name, "source", src.Qualified)
		if err := cdc.Publish(ctx, d.cfg, src.Qualified, src.OID); err != nil {
			slog.Warn("cannot publish the source again", "source", src.Qualified, "err", err)
			continue
		}
		go func() {
			for _, m := range ms {
				stream.RecopyOrBreak(d.ctx, m, "its source was taken out of the publication")
			}
		}()
	}
}

// forgetOnce forgets d unless watch does (or did) it.
func (r *databases) forgetOnce(d *database) {
	r.mu.Lock()
	cur := r.byName[d.name]
	r.mu.Unlock()
	if cur == d {
		r.forget(d)
	}
}

// forget drops the database's mirrors from the sidecar, its slot and
// publication, and its warehouse files.
func (r *databases) forget(d *database) {
	r.mu.Lock()
	if r.byName[d.name] != d {
		r.mu.Unlock()
		return // forgotten already
	}
	delete(r.byName, d.name)
	r.mu.Unlock()
	metrics.Default.ForgetDatabase(d.name)
	slog.Info("extension dropped: removing the database's mirrors, slot and publication", "database", d.name)
	d.stop()
	ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
	defer cancel()
	if err := cdc.DropSlotAndPublication(ctx, d.cfg, cdc.SlotName(d.oid)); err != nil {
		slog.Error("cannot drop the replication slot or publication", "database", d.name, "err", err)
	}
	d.removeOutside(ctx)
	r.pins.releaseDatabase(d.name)
	d.mirrors.Close(ctx)
	if err := d.mirrors.Catalog.RemoveWarehouse(ctx); err != nil {
		slog.Error("cannot remove the warehouse files", "database", d.name, "err", err)
	}
	if r.secrets != nil {
		r.secrets.unpin(d.name)
	}
}

// discover opens every database that has mirrors, so that their replication
// resumes without waiting for a query. It retries until the server accepts
// connections.
func (r *databases) discover(ctx context.Context) {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		names, err := r.candidates(ctx)
		if err == nil {
			for _, n := range names {
				if _, err := r.get(ctx, n); err != nil {
					slog.Error("cannot open database", "database", n, "err", err)
				}
			}
			return
		}
		if attempt%20 == 0 {
			slog.Warn("waiting for PostgreSQL", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// candidates lists databases whose mooncake catalog holds tables.
func (r *databases) candidates(ctx context.Context) ([]string, error) {
	// postgres first: a connection to template1 makes a CREATE DATABASE
	// running meanwhile fail ("source database is being accessed").
	conn, err := pgx.ConnectConfig(ctx, r.config("postgres"))
	if err != nil {
		if conn, err = pgx.ConnectConfig(ctx, r.config("template1")); err != nil {
			return nil, err
		}
	}
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname")
	if err != nil {
		conn.Close(ctx)
		return nil, err
	}
	all, err := pgx.CollectRows(rows, pgx.RowTo[string])
	conn.Close(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, name := range all {
		c, err := pgx.ConnectConfig(ctx, r.config(name))
		if err != nil {
			continue
		}
		var has bool
		err = c.QueryRow(ctx, `SELECT to_regclass('mooncake.iceberg_tables') IS NOT NULL
			AND EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_mooncake')`).Scan(&has)
		c.Close(ctx)
		if err == nil && has {
			out = append(out, name)
		}
	}
	return out, nil
}
