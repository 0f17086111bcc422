package service

import (
	"context"
	gosql "database/sql"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmooncake/mooncake/catalog"
	"github.com/pgmooncake/mooncake/sql"
)

// A REPEATABLE READ or SERIALIZABLE transaction of PostgreSQL reads the
// same rows of a table at every statement. A mirror changes under it as
// the stream applies its source's commits, so the scans of such a
// transaction (the FDW sends its backend's pid and the transaction's
// start, pin_xact) run in one DuckDB transaction of their own, begun at
// the transaction's first scan and kept until the backend has moved on:
// DuckDB's MVCC keeps the views, tails and deletes as they were then, and
// catalog.BeginRead the files they name.
//
// A pin serves one scan at a time (a DuckDB connection streams one
// result): a second scan of the same transaction while the first is still
// open (two foreign scans of one plan) reads the mirrors as they are. A
// scan that fails on the pin ends it (DuckDB aborts the transaction) and
// runs again on a new one.

// pinKey is a backend's transaction.
type pinKey struct {
	database string
	pid      int
	xact     int64 // GetCurrentTransactionStartTimestamp(): microseconds since 2000-01-01
}

type pin struct {
	key     pinKey
	conn    *gosql.Conn
	endRead func()
	busy    bool
	used    time.Time
}

// pins are the open read pins of the sidecar.
type pins struct {
	mu       sync.Mutex
	by       map[pinKey]*pin
	sweeping bool
	// backends reports, of the pids given, the start of each one's
	// current transaction (absent: no transaction, or no such backend),
	// as the FDW sends pin_xact. Set by the server; tests replace it.
	backends func(ctx context.Context, database string, pids []int) (map[int]int64, error)
}

// pinIdle is how long a pin stays unused before the sweep asks whether
// its transaction still runs.
const pinIdle = time.Second

// take returns the pin of the transaction key, begun now if it has none,
// for one scan; nil when it is serving another scan. Pins of the backend's
// earlier transactions end.
func (ps *pins) take(ctx context.Context, engine *sql.Engine, key pinKey) (*pin, error) {
	ps.mu.Lock()
	stale := ps.removeLocked(func(k pinKey, p *pin) bool {
		return k.database == key.database && k.pid == key.pid && k.xact != key.xact && !p.busy
	})
	p := ps.by[key]
	taken := p != nil && !p.busy
	if taken {
		p.busy = true
	}
	ps.mu.Unlock()
	closePins(stale)
	switch {
	case taken:
		return p, nil
	case p != nil: // serving another scan
		return nil, nil
	}
	conn, err := engine.DB.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		conn.Close()
		return nil, err
	}
	p = &pin{key: key, conn: conn, endRead: catalog.BeginRead(), busy: true}
	ps.mu.Lock()
	if ps.by == nil {
		ps.by = map[pinKey]*pin{}
	}
	if old := ps.by[key]; old != nil {
		// Another scan of the transaction began one meanwhile: this scan
		// reads without (as while it is busy), and the first stays.
		ps.mu.Unlock()
		closePins([]*pin{p})
		return nil, nil
	}
	ps.by[key] = p
	if !ps.sweeping && ps.backends != nil {
		ps.sweeping = true
		go ps.sweep()
	}
	ps.mu.Unlock()
	return p, nil
}

// done gives the pin back after a scan; with failed, the pin ends (as it
// does when it was let go meanwhile).
func (ps *pins) done(p *pin, failed bool) {
	ps.mu.Lock()
	p.busy = false
	p.used = time.Now()
	kept := ps.by[p.key] == p
	if kept && failed {
		delete(ps.by, p.key)
		kept = false
	}
	ps.mu.Unlock()
	if !kept {
		closePins([]*pin{p})
	}
}

// releaseDatabase ends the pins of a database the sidecar closes (one
// serving a scan ends after it).
func (ps *pins) releaseDatabase(database string) {
	ps.mu.Lock()
	gone := ps.removeLocked(func(k pinKey, _ *pin) bool { return k.database == database })
	ps.mu.Unlock()
	var idle []*pin
	for _, p := range gone {
		if !p.busy {
			idle = append(idle, p)
		}
	}
	closePins(idle)
}

// releaseBackend ends the pins of a backend that scans outside them (its
// transaction ended; the new one reads the mirrors as they are).
func (ps *pins) releaseBackend(database string, pid int) {
	ps.mu.Lock()
	stale := ps.removeLocked(func(k pinKey, p *pin) bool { return k.database == database && k.pid == pid && !p.busy })
	ps.mu.Unlock()
	closePins(stale)
}

// removeLocked takes the pins that match out of the map (ps.mu held).
func (ps *pins) removeLocked(match func(pinKey, *pin) bool) []*pin {
	var out []*pin
	for k, p := range ps.by {
		if match(k, p) {
			delete(ps.by, k)
			out = append(out, p)
		}
	}
	return out
}

// count is how many pins are open.
func (ps *pins) count() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return len(ps.by)
}

func closePins(list []*pin) {
	for _, p := range list {
		p.conn.ExecContext(context.Background(), "ROLLBACK")
		p.conn.Close()
		p.endRead()
	}
}

// sweep ends, every pinIdle, the idle pins whose transactions have ended
// (the backend idle since, or gone), until no pin is left.
func (ps *pins) sweep() {
	for {
		time.Sleep(pinIdle)
		ps.mu.Lock()
		if len(ps.by) == 0 {
			ps.sweeping = false
			ps.mu.Unlock()
			return
		}
		byDB := map[string][]int{}
		for k, p := range ps.by {
			if !p.busy && time.Since(p.used) >= pinIdle {
				byDB[k.database] = append(byDB[k.database], k.pid)
			}
		}
		ps.mu.Unlock()
		for db, pids := range byDB {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			running, err := ps.backends(ctx, db, pids)
			cancel()
			if err != nil {
				slog.Warn("read pins: cannot list the backends' transactions", "database", db, "err", err)
				continue
			}
			ps.mu.Lock()
			stale := ps.removeLocked(func(k pinKey, p *pin) bool {
				return k.database == db && !p.busy && time.Since(p.used) >= pinIdle && running[k.pid] != k.xact
			})
			ps.mu.Unlock()
			closePins(stale)
		}
	}
}

// backendXacts is pins.backends: the transactions' starts from
// pg_stat_activity, in the units of pin_xact. It connects each time (once
// a second at most, while idle pins remain): a connection kept open to
// the database would make a DROP DATABASE of it fail.
func (s *server) backendXacts(ctx context.Context, database string, pids []int) (map[int]int64, error) {
	d, err := s.dbs.getExt(ctx, database, 0)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, d.cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT pid, ((EXTRACT(epoch FROM xact_start) - 946684800) * 1000000)::pg_catalog.int8
  FROM pg_catalog.pg_stat_activity WHERE pid = ANY($1) AND xact_start IS NOT NULL`, pids)
	if err != nil {
		return nil, err
	}
	out := map[int]int64{}
	for rows.Next() {
		var pid int
		var xact int64
		if err := rows.Scan(&pid, &xact); err != nil {
			return nil, err
		}
		out[pid] = xact
	}
	return out, rows.Err()
}
