package service

import (
	"context"
	gosql "database/sql"
	"database/sql/driver"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmooncake/mooncake/catalog"
	"github.com/pgmooncake/mooncake/sql"
)

// A REPEATABLE READ or SERIALIZABLE transaction of PostgreSQL reads the
// same rows of a table at every statement, and any statement reads them
// as of one moment in all its scans. A mirror changes under them as the
// stream applies its source's commits, so the scans of such a transaction
// (the FDW sends its backend's pid and the transaction's start, pin_xact)
// or of such a READ COMMITTED statement (one that may read the mirrors
// more than once: pin_xact is its transaction's start, pin_stmt its
// number in the backend; fdw/pin.c) run in one DuckDB transaction of their own,
// begun at the first scan and kept until the backend has moved on:
// DuckDB's MVCC keeps the views, tails and deletes as they were then, and
// catalog.BeginRead the files they name.
//
// A scan that says an earlier scan of its transaction or statement read
// on the pin (again) fails with 40001 when the pin is gone (the sidecar
// restarted, or a failed query aborted the pin's DuckDB transaction)
// rather than read the mirrors at another moment.
//
// A DuckDB connection streams one result at a time: a scan of the pin
// while another's result is still streaming on it (two foreign scans of
// one plan open at once: a correlated subquery run for each row of a
// mirror's scan, a merge join) has the other read the rest of its result
// at once into a spill file (sql.Finish), then runs on the connection. A
// scan that fails on the pin ends it (DuckDB aborts the transaction); the
// first scan of a transaction or statement then runs again on a new one.
//
// A statement's pin stays while its transaction lasts, not only while the
// statement is active: a cursor's statement, read by FETCH after FETCH,
// scans again (a correlated subquery) with the backend idle in between.
// The backend's next scan ends it once the statement is over (settle).

// pinKey is a backend's transaction (stmt 0) or statement.
type pinKey struct {
	database string
	pid      int
	xact     int64 // the transaction's start: microseconds since 2000-01-01
	stmt     int64 // a READ COMMITTED statement's number in the backend; 0 for a transaction
}

type pin struct {
	key     pinKey
	conn    *gosql.Conn
	endRead func()
	users   int // scans reading on the pin (pins.mu)
	used    time.Time

	connMu sync.Mutex         // held by a scan while it starts its query on conn
	owner  array.RecordReader // the result streaming on conn, or nil (connMu)
}

// claim waits until no other scan is starting a query on the pin, and has
// the result streaming on it read to its end (spilled): the connection is
// then the caller's, until started.
func (p *pin) claim() {
	p.connMu.Lock()
	if p.owner != nil {
		sql.Finish(p.owner)
		p.owner = nil
	}
}

// started gives the connection back after claim: rdr (nil if the query
// failed) is the result now streaming on it.
func (p *pin) started(rdr array.RecordReader) {
	p.owner = rdr
	p.connMu.Unlock()
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

// errPinGone is the error of a later scan of the transaction or statement
// of key that its pin cannot serve: why says what happened since its
// first read.
func errPinGone(key pinKey, why string) error {
	what := "transaction"
	if key.stmt != 0 {
		what = "statement"
	}
	return &pgconn.PgError{Code: "40001",
		Message: "could not read the mirrors as of this " + what + "'s first read of them",
		Detail:  why, Hint: "Run the " + what + " again."}
}

// pinIdle is how long a pin stays unused before the sweep asks whether
// its transaction still runs.
const pinIdle = time.Second

// take returns the pin of the transaction or statement key, begun now if
// it has none (unless again: errPinGone), claimed for one scan (see
// claim): the caller runs its query on the pin's connection, calls
// started, and done when the scan ends.
func (ps *pins) take(ctx context.Context, engine *sql.Engine, key pinKey, again bool) (*pin, error) {
	ps.mu.Lock()
	p := ps.by[key]
	if p != nil {
		p.users++
		ps.mu.Unlock()
		p.claim()
		return p, nil
	}
	ps.mu.Unlock()
	if again {
		return nil, errPinGone(key, "The sidecar no longer holds the mirrors as they were then: it restarted, or a query failed in DuckDB, since that read.")
	}
	conn, err := engine.DB.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		conn.Close()
		return nil, err
	}
	p = &pin{key: key, conn: conn, endRead: catalog.BeginRead(), users: 1}
	ps.mu.Lock()
	if ps.by == nil {
		ps.by = map[pinKey]*pin{}
	}
	if old := ps.by[key]; old != nil {
		// Another scan of the transaction began one meanwhile: use it.
		old.users++
		ps.mu.Unlock()
		closePins([]*pin{p})
		old.claim()
		return old, nil
	}
	ps.by[key] = p
	if !ps.sweeping && ps.backends != nil {
		ps.sweeping = true
		go ps.sweep()
	}
	ps.mu.Unlock()
	p.claim()
	return p, nil
}

// done gives the pin back after a scan whose result was rdr; with failed,
// the pin ends (as it does when it was let go meanwhile) once no scan
// reads on it.
func (ps *pins) done(p *pin, rdr array.RecordReader, failed bool) {
	p.connMu.Lock()
	if rdr != nil && p.owner == rdr {
		p.owner = nil
	}
	p.connMu.Unlock()
	ps.mu.Lock()
	p.users--
	p.used = time.Now()
	kept := ps.by[p.key] == p
	if kept && failed {
		delete(ps.by, p.key)
		kept = false
	}
	closeNow := !kept && p.users == 0
	ps.mu.Unlock()
	if closeNow {
		closePins([]*pin{p})
	}
}

// releaseDatabase ends the pins of a database the sidecar closes (one
// serving a scan ends after it).
func (ps *pins) releaseDatabase(database string) {
	ps.mu.Lock()
	gone := ps.removeLocked(func(k pinKey, _ *pin) bool { return k.database == database })
	var idle []*pin
	for _, p := range gone {
		if p.users == 0 {
			idle = append(idle, p)
		}
	}
	ps.mu.Unlock()
	closePins(idle)
}

// settle ends the pins of a backend that one of its scans shows are over:
// the scan's own pin (key, zero for a scan without one) stays, and so do
// the pins of its statements still running (live: a function called by a
// statement runs statements of its own); a transaction's pin ends with a
// scan of another transaction or a READ COMMITTED one.
func (ps *pins) settle(database string, pid int, key pinKey, live []int64) {
	ps.mu.Lock()
	stale := ps.removeLocked(func(k pinKey, p *pin) bool {
		return k.database == database && k.pid == pid && p.users == 0 && k != key &&
			(k.stmt == 0 || !slices.Contains(live, k.stmt))
	})
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

// closePins ends the pins' DuckDB transactions and gives their
// connections back to the pool in UTC (the scans left them in their
// sessions' zones).
func closePins(list []*pin) {
	for _, p := range list {
		ctx := context.Background()
		p.conn.ExecContext(ctx, "ROLLBACK")
		if _, err := p.conn.ExecContext(ctx, "SET TimeZone = 'UTC'"); err != nil {
			p.conn.Raw(func(any) error { return driver.ErrBadConn })
		}
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
			if p.users == 0 && time.Since(p.used) >= pinIdle {
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
				return k.database == db && p.users == 0 && time.Since(p.used) >= pinIdle && running[k.pid] != k.xact
			})
			ps.mu.Unlock()
			closePins(stale)
		}
	}
}

// backendXacts is pins.backends: the transactions' starts from
// pg_stat_activity, in the units of pin_xact. It connects each
// time (once a second at most, while idle pins remain): a connection kept
// open to the database would make a DROP DATABASE of it fail.
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
