package test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmooncake/mooncake/test/pgtest"
)

// The randomized workload: three source tables, each mirrored, written by a
// few connections at once with a seeded mix of inserts, updates (also of
// the key, also leaving TOASTed values unchanged), deletes, TRUNCATE,
// savepoints, rollbacks and 100,000-row transactions. MOONCAKE_SEED replays
// a run's choices (the interleaving of the connections still varies);
// MOONCAKE_WORKLOAD_SCALE multiplies its length for a manual run.

const (
	seedEnv  = "MOONCAKE_SEED"
	scaleEnv = "MOONCAKE_WORKLOAD_SCALE"
)

// wlTable is a source table of the workload and its mirror.
type wlTable struct {
	source string
	mirror string
	key    []string // primary key columns
}

var wlTables = []wlTable{
	{"wl_types", "wl_types_m", []string{"id"}},
	{"wl_comp", "wl_comp_m", []string{"a", "b"}},
	{"wl_toast", "wl_toast_m", []string{"id"}},
}

var wlDDL = []string{
	`CREATE TABLE wl_types (id bigint PRIMARY KEY, i integer, s smallint, r real, d double precision,
		n numeric(12,3), t text, v varchar(20), b boolean, dt date, ts timestamp, tz timestamptz)`,
	`CREATE TABLE wl_comp (a int, b text, qty int, price numeric(12,3), note varchar(20), PRIMARY KEY (a, b))`,
	`CREATE TABLE wl_toast (id bigint PRIMARY KEY, counter int NOT NULL, tag text, body text)`,
	// Out of line and uncompressed: every body over ~2 kB lives in the TOAST
	// table, so an UPDATE that leaves it alone sends it as "unchanged".
	`ALTER TABLE wl_toast ALTER COLUMN body SET STORAGE EXTERNAL`,
}

// typesColumns are wl_types's columns after id; typesExprs computes their
// values from {g} (a row number) and {s} (a salt), with NULLs, NaN and
// infinities, empty strings, quotes, backslashes, newlines, non-ASCII text,
// BC dates and, where {infdate}, {infts} and {inftz} ask for them, infinite
// dates and timestamps.
const typesColumns = `i, s, r, d, n, t, v, b, dt, ts, tz`

const typesExprs = `
	CASE WHEN ({g} + {s}) % 7 = 0 THEN NULL ELSE (({g} * 37 + {s}) % 2000000000 - 1000000000)::int END,
	CASE WHEN ({g} + {s}) % 11 = 0 THEN NULL ELSE (({g} + {s}) % 65535 - 32767)::smallint END,
	CASE ({g} + {s}) % 29 WHEN 0 THEN NULL WHEN 1 THEN 'NaN'::real WHEN 2 THEN '-Infinity'::real
		ELSE (({g} * 1.37 + {s}) / 7)::real END,
	CASE ({g} + {s}) % 31 WHEN 0 THEN NULL WHEN 1 THEN 'Infinity'::float8
		ELSE (({g} + {s}) * 3.14159265358979 / 11)::float8 END,
	CASE WHEN ({g} + {s}) % 19 = 0 THEN NULL
		ELSE round((({g} * 12.3457 + {s}) % 999999999) * (1 - 2 * ({g} % 2)), 3) END,
	CASE ({g} + {s}) % 23 WHEN 0 THEN NULL WHEN 1 THEN '' WHEN 2 THEN E'q''uote "dq", back\\slash\nnew line\ttab'
		WHEN 3 THEN 'ünïcødé ✓ 😀 ' || {g} ELSE 'text ' || md5(({g} + {s})::text) END,
	CASE WHEN ({g} + {s}) % 31 = 0 THEN NULL ELSE left(md5({g}::text), (({g} + {s}) % 21)::int) END,
	CASE WHEN ({g} + {s}) % 3 = 0 THEN NULL ELSE ({g} + {s}) % 2 = 0 END,
	CASE ({g} + {s}) % 37 WHEN 0 THEN NULL WHEN 1 THEN date '0044-03-15 BC' {infdate}
		ELSE date '2000-01-01' + (({g} + {s}) % 20000)::int - 10000 END,
	CASE ({g} + {s}) % 41 WHEN 0 THEN NULL WHEN 1 THEN timestamp '0100-02-03 04:05:06.789 BC' {infts}
		ELSE timestamp '1990-01-01' + ({g} + {s}) * interval '1 minute 7.123456 seconds' END,
	CASE ({g} + {s}) % 43 WHEN 0 THEN NULL {inftz}
		ELSE timestamptz '1990-01-01 00:00:00+00' + ({g} + {s}) * interval '3 minutes 1.654321 seconds' END`

func typesValues(g, salt string, infinities bool) string {
	r := strings.NewReplacer("{g}", g, "{s}", salt, "{infdate}", "", "{infts}", "", "{inftz}", "")
	if infinities {
		r = strings.NewReplacer("{g}", g, "{s}", salt,
			"{infdate}", `WHEN 2 THEN 'infinity'::date WHEN 3 THEN '-infinity'::date`,
			"{infts}", `WHEN 2 THEN '-infinity'::timestamp WHEN 3 THEN 'infinity'::timestamp`,
			"{inftz}", `WHEN 1 THEN 'infinity'::timestamptz`)
	}
	return r.Replace(typesExprs)
}

// typesInsertSQL inserts rows into wl_types: $1..$2: ids, $3: salt.
func typesInsertSQL(infinities bool) string {
	return `INSERT INTO wl_types SELECT g, ` + typesValues("g", "$3::bigint", infinities) +
		` FROM generate_series($1::bigint, $2::bigint) g`
}

// typesRewriteSQL rewrites every column of wl_types rows: $1..$2: ids,
// $3: step (rows whose id is a multiple of it), $4: salt.
func typesRewriteSQL(infinities bool) string {
	return `UPDATE wl_types SET (` + typesColumns + `) = ROW(` + typesValues("id", "$4::bigint", infinities) +
		`) WHERE id BETWEEN $1 AND $2 AND id % $3 = 0`
}

// $1..$2: values of a, $3: salt, $4: the values of b for each a.
const compInsertSQL = `INSERT INTO wl_comp
	SELECT a, b, ((a::bigint * 7 + $3) % 1000)::int, round((a % 100000) * 1.001 + $3 % 1000, 3),
		CASE WHEN a % 5 = 0 THEN NULL ELSE 'n' || (a % 97) END
	FROM generate_series($1::int, $2::int) a, unnest($4::text[]) b`

// $1..$2: ids, $3: salt. Most bodies are 9,600 bytes (TOASTed), some NULL or short.
const toastInsertSQL = `INSERT INTO wl_toast
	SELECT g, 0, 'tag ' || g, CASE (g + $3) % 10 WHEN 0 THEN NULL WHEN 1 THEN 'short'
		ELSE repeat(md5((g + $3)::text), 300) END
	FROM generate_series($1::bigint, $2::bigint) g`

// compKeys are the values the second key column of wl_comp takes.
var compKeys = []string{"x", "y", "ключ", " spaced ", "", "q'uote"}

// stmt is one statement of a planned transaction.
type stmt struct {
	sql  string
	args []any
}

// txPlan is one transaction of the workload, planned before it runs.
type txPlan struct {
	label    string // what it does, for the trace
	stmts    []stmt
	rollback bool // end with ROLLBACK instead of COMMIT
	big      bool
	truncate bool
}

// workload holds what the connections share: fresh keys and counters.
type workload struct {
	seed         uint64
	bigRows      int64
	truncateOdds int // a transaction is a TRUNCATE once in truncateOdds; 0: never

	typesInsert  string // typesInsertSQL
	typesRewrite string // typesRewriteSQL

	typesID atomic.Int64 // next unused wl_types.id
	toastID atomic.Int64 // next unused wl_toast.id
	compA   atomic.Int64 // next unused wl_comp.a

	mu        sync.Mutex
	bigBlocks []int64 // first ids of blocks of bigRows consecutive wl_types ids

	txns, committed, rolledBack, conflicts, statements, bigTxns, truncates, reconnects atomic.Int64
}

// reserve returns the first of n fresh keys from counter.
func reserve(counter *atomic.Int64, n int64) int64 { return counter.Add(n) - n }

// pick returns a key that was handed out by counter (it may since have
// been deleted or moved).
func pick(rng *rand.Rand, counter *atomic.Int64) int64 {
	n := counter.Load() - 1
	if n < 1 {
		return 1
	}
	return 1 + rng.Int64N(n)
}

func (w *workload) summary() string {
	return fmt.Sprintf("seed %d: %d transactions (%d committed, %d rolled back, %d conflicts), %d statements, %d big, %d truncates, %d reconnects",
		w.seed, w.txns.Load(), w.committed.Load(), w.rolledBack.Load(), w.conflicts.Load(),
		w.statements.Load(), w.bigTxns.Load(), w.truncates.Load(), w.reconnects.Load())
}

// wlWorker is one writing connection with its own random generator.
type wlWorker struct {
	w     *workload
	n     int
	rng   *rand.Rand
	conn  *pgx.Conn
	trace []string // executed transactions, for the failure report
}

func workloadSeed(t *testing.T) uint64 {
	t.Helper()
	if s := os.Getenv(seedEnv); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", seedEnv, s, err)
		}
		return seed
	}
	return uint64(time.Now().UnixNano())
}

func workloadScale(t *testing.T) int {
	t.Helper()
	s := os.Getenv(scaleEnv)
	if s == "" {
		return 1
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", scaleEnv, s)
	}
	return n
}

// setupWorkload creates the source tables with some rows, mirrors them
// and checks the initial copies. With infinities, wl_types also gets
// infinite dates and timestamps, which Iceberg has no agreed form for.
func setupWorkload(t *testing.T, conn *pgx.Conn, seed uint64, infinities bool) *workload {
	t.Helper()
	w := &workload{seed: seed, bigRows: 100000, truncateOdds: 150,
		typesInsert: typesInsertSQL(infinities), typesRewrite: typesRewriteSQL(infinities)}
	for _, ddl := range wlDDL {
		exec(t, conn, ddl)
	}
	exec(t, conn, w.typesInsert, 1, 5000, 17)
	w.typesID.Store(5001)
	exec(t, conn, compInsertSQL, 1, 1000, 3, []string{"x", "y"})
	w.compA.Store(1001)
	exec(t, conn, toastInsertSQL, 1, 60, 5)
	w.toastID.Store(61)
	var toastRel string
	if err := conn.QueryRow(context.Background(),
		`SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = 'wl_toast'::regclass`).Scan(&toastRel); err != nil {
		t.Fatal(err)
	}
	if n := queryInt(t, conn, `SELECT count(*) FROM `+toastRel); n == 0 {
		t.Fatalf("wl_toast's bodies are not TOASTed: %s is empty", toastRel)
	}
	for _, tb := range wlTables {
		exec(t, conn, fmt.Sprintf(`CALL mooncake.create_table('%s', '%s')`, tb.mirror, tb.source))
	}
	checkMirrors(t, conn, w, "initial copy", 30*time.Second)
	return w
}

func (w *workload) newWorker(t *testing.T, c *pgtest.Cluster, n int) *wlWorker {
	return &wlWorker{w: w, n: n, rng: rand.New(rand.NewPCG(w.seed, uint64(n)+1)), conn: c.Conn(t, "postgres")}
}

// plan draws the next transaction.
func (wk *wlWorker) plan() txPlan {
	r := wk.rng
	if wk.w.truncateOdds > 0 && r.IntN(wk.w.truncateOdds) == 0 {
		return wk.planTruncate(r.IntN(5))
	}
	var p txPlan
	ops := 1 + r.IntN(4)
	for range ops {
		wk.addOp(&p)
	}
	if r.IntN(12) == 0 {
		p.rollback = true
	}
	return p
}

// addOp appends one operation, weighted, to p.
func (wk *wlWorker) addOp(p *txPlan) {
	w, r := wk.w, wk.rng
	add := func(label, sql string, args ...any) {
		if p.label != "" {
			p.label += "; "
		}
		p.label += label
		p.stmts = append(p.stmts, stmt{sql, args})
	}
	salt := r.Int64N(1000000)
	switch k := r.IntN(100); {
	case k < 16: // insert into wl_types
		n := 1 + r.Int64N(20)
		first := reserve(&w.typesID, n)
		add("insert types", w.typesInsert, first, first+n-1, salt)
	case k < 24: // rewrite every column of a few wl_types rows
		id := pick(r, &w.typesID)
		add("rewrite types", w.typesRewrite, id, id+r.Int64N(30), 1+r.Int64N(3), salt)
	case k < 29: // set some columns to NULL or change them in place
		id := pick(r, &w.typesID)
		if r.IntN(2) == 0 {
			add("null types", `UPDATE wl_types SET dt = NULL, ts = NULL, v = NULL, r = NULL WHERE id = $1`, id)
		} else {
			add("bump types", `UPDATE wl_types SET i = coalesce(i, 0) + 1, t = coalesce(t, '') || ' u', b = NOT b, n = round(n / 3, 3)
				WHERE id BETWEEN $1 AND $1 + 40 AND id % 3 = 0`, id)
		}
	case k < 34: // move a wl_types row to a fresh key
		id := pick(r, &w.typesID)
		add("rekey types", `UPDATE wl_types SET id = $2, i = coalesce(i, 0) - 1 WHERE id = $1`, id, reserve(&w.typesID, 1))
	case k < 41: // delete from wl_types
		id := pick(r, &w.typesID)
		if r.IntN(2) == 0 {
			add("delete types", `DELETE FROM wl_types WHERE id = $1`, id)
		} else {
			add("delete types range", `DELETE FROM wl_types WHERE id BETWEEN $1 AND $1 + 20 AND id % 4 = 1`, id)
		}
	case k < 50: // insert into wl_comp
		n := 1 + r.Int64N(8)
		first := reserve(&w.compA, n)
		keys := make([]string, 0, len(compKeys))
		for _, kv := range compKeys {
			if r.IntN(2) == 0 {
				keys = append(keys, kv)
			}
		}
		if len(keys) == 0 {
			keys = append(keys, compKeys[r.IntN(len(compKeys))])
		}
		add("insert comp", compInsertSQL, first, first+n-1, salt, keys)
	case k < 57:
		a := pick(r, &w.compA)
		add("update comp", `UPDATE wl_comp SET qty = qty + 1, note = $3 WHERE a BETWEEN $1 AND $2`,
			a, a+r.Int64N(5), fmt.Sprintf("note %d", salt))
	case k < 61: // change the a of some wl_comp rows, or their b
		a := pick(r, &w.compA)
		if r.IntN(2) == 0 {
			add("rekey comp a", `UPDATE wl_comp SET a = $2 WHERE a = $1`, a, reserve(&w.compA, 1))
		} else {
			add("rekey comp b", `UPDATE wl_comp SET b = b || '+' WHERE a = $1 AND b <> 'y'`, a)
		}
	case k < 66:
		a := pick(r, &w.compA)
		if r.IntN(2) == 0 {
			add("delete comp", `DELETE FROM wl_comp WHERE a = $1`, a)
		} else {
			add("delete comp range", `DELETE FROM wl_comp WHERE a BETWEEN $1 AND $1 + 10 AND b IN ('y', 'ключ')`, a)
		}
	case k < 72:
		n := 1 + r.Int64N(3)
		first := reserve(&w.toastID, n)
		add("insert toast", toastInsertSQL, first, first+n-1, salt)
	case k < 81: // update wl_toast leaving the TOASTed body unchanged
		id := pick(r, &w.toastID)
		switch r.IntN(3) {
		case 0:
			add("count toast", `UPDATE wl_toast SET counter = counter + 1 WHERE id = $1`, id)
		case 1:
			add("count toast range", `UPDATE wl_toast SET counter = counter + 1, tag = tag || '.' WHERE id BETWEEN $1 AND $1 + 5`, id)
		default:
			add("count toast mod", `UPDATE wl_toast SET counter = counter + 2 WHERE id % 31 = $1`, salt%31)
		}
	case k < 85: // move a wl_toast row, body unchanged
		id := pick(r, &w.toastID)
		add("rekey toast", `UPDATE wl_toast SET id = $2, counter = counter + 1 WHERE id = $1`, id, reserve(&w.toastID, 1))
	case k < 88:
		id := pick(r, &w.toastID)
		add("rewrite toast body", `UPDATE wl_toast SET body = repeat(md5($2::bigint::text), 250 + $3::int) WHERE id = $1`, id, salt, r.IntN(100))
	case k < 91:
		id := pick(r, &w.toastID)
		add("delete toast", `DELETE FROM wl_toast WHERE id = $1`, id)
	case k < 95: // a new row changed again within its transaction
		id := reserve(&w.toastID, 2)
		add("toast sequence insert", toastInsertSQL, id, id, salt)
		add("toast sequence count", `UPDATE wl_toast SET counter = counter + 1 WHERE id = $1`, id)
		add("toast sequence rekey", `UPDATE wl_toast SET id = $2, counter = counter + 1 WHERE id = $1`, id, id+1)
		add("toast sequence tag", `UPDATE wl_toast SET tag = 'moved' WHERE id = $1`, id+1)
		if r.IntN(3) == 0 {
			add("toast sequence delete", `DELETE FROM wl_toast WHERE id = $1`, id+1)
		}
	default: // changes undone by ROLLBACK TO SAVEPOINT
		id := pick(r, &w.typesID)
		add("savepoint", `SAVEPOINT sp`)
		add("savepoint delete types", `DELETE FROM wl_types WHERE id BETWEEN $1 AND $1 + 10`, id)
		add("savepoint count toast", `UPDATE wl_toast SET counter = counter + 100 WHERE id = $1`, pick(r, &w.toastID))
		add("rollback to savepoint", `ROLLBACK TO SAVEPOINT sp`)
	}
}

// planTruncate draws one of the TRUNCATE transactions.
func (wk *wlWorker) planTruncate(kind int) txPlan {
	w := wk.w
	p := txPlan{truncate: true}
	switch kind {
	case 0:
		p.label = "truncate comp"
		p.stmts = []stmt{{sql: `TRUNCATE wl_comp`}}
	case 1:
		p.label = "truncate toast, comp"
		p.stmts = []stmt{{sql: `TRUNCATE wl_toast, wl_comp`}}
	case 2: // rows inserted after the TRUNCATE in its transaction stay
		first := reserve(&w.toastID, 3)
		a := reserve(&w.compA, 2)
		p.label = "truncate toast then insert"
		p.stmts = []stmt{
			{sql: `TRUNCATE wl_toast`},
			{sql: toastInsertSQL, args: []any{first, first + 2, int64(7)}},
			{sql: `UPDATE wl_comp SET qty = -qty WHERE a BETWEEN $1 AND $1 + 50`, args: []any{pick(wk.rng, &w.compA)}},
			{sql: compInsertSQL, args: []any{a, a + 1, int64(9), []string{"t"}}},
		}
	case 3:
		p.label = "truncate types, rolled back"
		p.stmts = []stmt{{sql: `TRUNCATE wl_types, wl_toast`}}
		p.rollback = true
	default:
		first := reserve(&w.typesID, 10)
		p.label = "truncate types then insert"
		p.stmts = []stmt{
			{sql: `TRUNCATE wl_types`},
			{sql: w.typesInsert, args: []any{first, first + 9, int64(11)}},
		}
		w.mu.Lock()
		w.bigBlocks = nil
		w.mu.Unlock()
	}
	return p
}

// planBig draws one of the transactions that change w.bigRows rows.
func (wk *wlWorker) planBig(kind int) txPlan {
	w, r := wk.w, wk.rng
	w.mu.Lock()
	var block int64
	if len(w.bigBlocks) > 0 {
		block = w.bigBlocks[r.IntN(len(w.bigBlocks))]
	}
	w.mu.Unlock()
	if block == 0 {
		kind = 0
	}
	p := txPlan{big: true}
	switch kind {
	case 0:
		first := reserve(&w.typesID, w.bigRows)
		p.label = fmt.Sprintf("big insert types %d..%d", first, first+w.bigRows-1)
		p.stmts = []stmt{{w.typesInsert, []any{first, first + w.bigRows - 1, r.Int64N(1000000)}}}
		w.mu.Lock()
		w.bigBlocks = append(w.bigBlocks, first)
		w.mu.Unlock()
	case 1:
		p.label = fmt.Sprintf("big update types %d..", block)
		p.stmts = []stmt{{`UPDATE wl_types SET i = coalesce(i, 0) / 2 + 1, t = left(coalesce(t, ''), 10) || ' big', b = NOT b
			WHERE id BETWEEN $1 AND $2`, []any{block, block + w.bigRows - 1}}}
	case 2: // every key of the block changes
		to := reserve(&w.typesID, w.bigRows)
		p.label = fmt.Sprintf("big rekey types %d.. to %d..", block, to)
		p.stmts = []stmt{{`UPDATE wl_types SET id = id - $1 + $3 WHERE id BETWEEN $1 AND $2`, []any{block, block + w.bigRows - 1, to}}}
		w.mu.Lock()
		for i, b := range w.bigBlocks {
			if b == block {
				w.bigBlocks[i] = to
			}
		}
		w.mu.Unlock()
	case 3:
		first := reserve(&w.compA, w.bigRows)
		p.label = fmt.Sprintf("big insert comp %d..", first)
		p.stmts = []stmt{{compInsertSQL, []any{first, first + w.bigRows - 1, r.Int64N(1000), []string{"big"}}}}
	case 4:
		p.label = fmt.Sprintf("big delete types %d.. (half)", block)
		p.stmts = []stmt{{`DELETE FROM wl_types WHERE id BETWEEN $1 AND $2 AND id % 2 = 0`, []any{block, block + w.bigRows - 1}}}
	default:
		first := reserve(&w.typesID, w.bigRows)
		p.label = fmt.Sprintf("big insert types %d.., rolled back", first)
		p.stmts = []stmt{{w.typesInsert, []any{first, first + w.bigRows - 1, r.Int64N(1000000)}}}
		p.rollback = true
	}
	return p
}

// errConflict marks a transaction PostgreSQL refused because of the other
// connections (deadlock, key collision); it was rolled back.
var errConflict = errors.New("conflict")

// run executes p on the worker's connection.
func (wk *wlWorker) run(ctx context.Context, p txPlan) error {
	w := wk.w
	w.txns.Add(1)
	if p.big {
		w.bigTxns.Add(1)
	}
	if p.truncate {
		w.truncates.Add(1)
	}
	start := time.Now()
	err := wk.runTx(ctx, p)
	outcome := "commit"
	switch {
	case err == nil && p.rollback:
		outcome = "rollback"
		w.rolledBack.Add(1)
	case err == nil:
		w.committed.Add(1)
	case errors.Is(err, errConflict):
		outcome = "conflict: " + err.Error()
		w.conflicts.Add(1)
		err = nil
	default:
		outcome = "error: " + err.Error()
	}
	wk.trace = append(wk.trace, fmt.Sprintf("%s w%d %s [%s] %v", start.Format("15:04:05.000"), wk.n, p.describe(), outcome, time.Since(start).Round(time.Millisecond)))
	return err
}

func (wk *wlWorker) runTx(ctx context.Context, p txPlan) error {
	tx, err := wk.conn.Begin(ctx)
	if err != nil {
		return err
	}
	for _, s := range p.stmts {
		wk.w.statements.Add(1)
		if _, err := tx.Exec(ctx, s.sql, s.args...); err != nil {
			_ = tx.Rollback(ctx)
			switch sqlState(err) {
			case "40P01", "40001", "23505":
				return fmt.Errorf("%w: %v", errConflict, err)
			}
			return fmt.Errorf("%s: %w", firstLine(s.sql), err)
		}
	}
	if p.rollback {
		return tx.Rollback(ctx)
	}
	return tx.Commit(ctx)
}

func (p txPlan) describe() string {
	var b strings.Builder
	b.WriteString(p.label)
	for _, s := range p.stmts {
		if len(s.args) > 0 {
			fmt.Fprintf(&b, " %v", s.args)
		}
	}
	if p.rollback {
		b.WriteString(" ROLLBACK")
	}
	return b.String()
}

func firstLine(sql string) string {
	sql = strings.TrimSpace(sql)
	if i := strings.IndexByte(sql, '\n'); i >= 0 {
		return sql[:i] + " ..."
	}
	return sql
}

// runRound runs n transactions on every worker at once; extra[i] are
// transactions worker i runs at random points among its n.
func runRound(ctx context.Context, workers []*wlWorker, n int, extra map[int][]txPlan) error {
	errs := make(chan error, len(workers))
	for i, wk := range workers {
		go func() {
			plans := extra[i]
			at := make(map[int][]txPlan)
			for _, p := range plans {
				k := wk.rng.IntN(n)
				at[k] = append(at[k], p)
			}
			for k := range n {
				for _, p := range at[k] {
					if err := wk.run(ctx, p); err != nil {
						errs <- fmt.Errorf("worker %d: %w", wk.n, err)
						return
					}
				}
				if err := wk.run(ctx, wk.plan()); err != nil {
					errs <- fmt.Errorf("worker %d: %w", wk.n, err)
					return
				}
			}
			errs <- nil
		}()
	}
	var first error
	for range workers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// keepTrace writes the workers' transaction logs to a file kept after a
// failure, and logs its name.
func keepTrace(t *testing.T, w *workload, workers []*wlWorker) {
	t.Helper()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		f, err := os.CreateTemp("", fmt.Sprintf("mooncake-workload-%d-*.trace", w.seed))
		if err != nil {
			t.Logf("cannot keep the trace: %v", err)
			return
		}
		defer f.Close()
		fmt.Fprintln(f, w.summary())
		for _, wk := range workers {
			for _, line := range wk.trace {
				fmt.Fprintln(f, line)
			}
		}
		t.Logf("kept the workload's transactions in %s (replay the choices with %s=%d)", f.Name(), seedEnv, w.seed)
	})
}

// mirrorDiff counts the rows of tb's source missing from its mirror and the
// extra rows of the mirror, as multisets.
func mirrorDiff(ctx context.Context, conn *pgx.Conn, tb wlTable) (missing, extra int64, err error) {
	q := func(a, b string) (int64, error) {
		var n int64
		err := conn.QueryRow(ctx, "SELECT count(*) FROM (SELECT * FROM "+a+" EXCEPT ALL SELECT * FROM "+b+") d").Scan(&n)
		return n, err
	}
	if missing, err = q(tb.source, tb.mirror); err != nil {
		return 0, 0, err
	}
	extra, err = q(tb.mirror, tb.source)
	return missing, extra, err
}

// checkMirrors waits until every mirror equals its source and has no
// duplicate keys; errors of the mirror's reads (a sidecar restarting) are
// retried until the timeout. It fails the test with samples of the
// differences.
func checkMirrors(t *testing.T, conn *pgx.Conn, w *workload, label string, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	var counts []string
	for _, tb := range wlTables {
		var missing, extra int64
		var lastErr error
		_, ok := waitFor(timeout-time.Since(start), func() bool {
			// Row counts first: they are cheap, and differ while the
			// sidecar is still applying a large transaction.
			var same bool
			lastErr = conn.QueryRow(ctx, "SELECT (SELECT count(*) FROM "+tb.source+") = (SELECT count(*) FROM "+tb.mirror+")").Scan(&same)
			if lastErr == nil && !same {
				time.Sleep(50 * time.Millisecond)
				return false
			}
			if lastErr == nil {
				missing, extra, lastErr = mirrorDiff(ctx, conn, tb)
			}
			if lastErr != nil {
				time.Sleep(100 * time.Millisecond)
				return false
			}
			return missing == 0 && extra == 0
		})
		if !ok {
			var b strings.Builder
			if lastErr == nil && missing == 0 && extra == 0 {
				missing, extra, lastErr = mirrorDiff(ctx, conn, tb) // the counts never matched
			}
			if lastErr != nil {
				fmt.Fprintf(&b, "last error: %v\n", lastErr)
			} else {
				fmt.Fprintf(&b, "%d source rows missing from the mirror, %d extra rows in it\n", missing, extra)
				b.WriteString(diffSamples(ctx, conn, tb))
			}
			b.WriteString(replicationState(ctx, conn))
			t.Fatalf("%s: %s never converged to %s within %v (%s)\n%s", label, tb.mirror, tb.source, timeout, w.summary(), b.String())
		}
		keys := strings.Join(tb.key, ", ")
		var dups, rows int64
		if err := conn.QueryRow(ctx, "SELECT count(*) - count(DISTINCT ("+keys+")), count(*) FROM "+tb.mirror).Scan(&dups, &rows); err != nil {
			t.Fatalf("%s: counting keys of %s: %v", label, tb.mirror, err)
		}
		if dups != 0 {
			t.Fatalf("%s: %s has %d duplicate keys (%s)", label, tb.mirror, dups, w.summary())
		}
		counts = append(counts, fmt.Sprintf("%s %d", tb.source, rows))
	}
	t.Logf("%s: mirrors equal their sources after %v (%s)", label, time.Since(start).Round(time.Millisecond), strings.Join(counts, ", "))
}

// diffSamples shows a few rows of each difference between tb and its mirror.
func diffSamples(ctx context.Context, conn *pgx.Conn, tb wlTable) string {
	var b strings.Builder
	for _, d := range []struct{ name, a, b string }{
		{"missing from the mirror", tb.source, tb.mirror},
		{"extra in the mirror", tb.mirror, tb.source},
	} {
		rows, err := conn.Query(ctx, "SELECT left(diff_row::text, 300) FROM (SELECT * FROM "+d.a+" EXCEPT ALL SELECT * FROM "+d.b+") diff_row ORDER BY 1 LIMIT 8")
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", d.name, err)
			continue
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err == nil {
				fmt.Fprintf(&b, "%s: %s\n", d.name, s)
			}
		}
		rows.Close()
	}
	return b.String()
}

// replicationState describes how far the sidecar got: the mirrors' LSNs,
// the slot's and the server's, read on a fresh connection (the session's
// own may wait for its last commit).
func replicationState(ctx context.Context, conn *pgx.Conn) string {
	fresh, err := pgx.ConnectConfig(ctx, conn.Config())
	if err != nil {
		return fmt.Sprintf("replication state: %v\n", err)
	}
	defer fresh.Close(ctx)
	var b strings.Builder
	for _, q := range []string{
		`SELECT pg_current_wal_lsn()::text`,
		`SELECT string_agg(format('%s: state %s, applied %s, flushed %s, rows %s, unflushed %s, lag %s bytes',
			table_name, state, applied_lsn, flushed_lsn, rows, unflushed_rows, lag_bytes), '; ') FROM mooncake.columnstore_tables`,
		`SELECT string_agg(format('slot %s: active %s, restart %s, confirmed %s', slot_name, active, restart_lsn, confirmed_flush_lsn), '; ')
			FROM pg_replication_slots`,
		`SELECT string_agg(format('walsender %s: %s, sent %s, write %s, flush %s', pid, state, sent_lsn, write_lsn, flush_lsn), '; ') FROM pg_stat_replication`,
	} {
		var v *string
		if err := fresh.QueryRow(ctx, q).Scan(&v); err != nil {
			fmt.Fprintf(&b, "%s: %v\n", firstLine(q), err)
		} else if v != nil {
			fmt.Fprintf(&b, "%s\n", *v)
		}
	}
	return b.String()
}

// logFileCounts logs what mooncake.columnstore_tables reports of each mirror.
func logFileCounts(t *testing.T, conn *pgx.Conn, label string) (dataFiles, deleteFiles int64) {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT table_name, data_files, delete_files, unflushed_rows, rows
		FROM mooncake.columnstore_tables ORDER BY table_name`)
	if err != nil {
		t.Fatalf("%s: mooncake.columnstore_tables: %v", label, err)
	}
	defer rows.Close()
	var parts []string
	for rows.Next() {
		var name string
		var data, dels, unflushed, n int64
		if err := rows.Scan(&name, &data, &dels, &unflushed, &n); err != nil {
			t.Fatal(err)
		}
		dataFiles += data
		deleteFiles += dels
		parts = append(parts, fmt.Sprintf("%s: %d data files, %d delete files, %d unflushed rows", name, data, dels, unflushed))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: mooncake.columnstore_tables: %v", label, err)
	}
	t.Logf("%s: %s", label, strings.Join(parts, "; "))
	return dataFiles, deleteFiles
}

// sidecarErrors returns the sidecar's ERROR lines and the worker's reports
// of a sidecar exit from the server log.
func sidecarErrors(c *pgtest.Cluster) []string {
	var out []string
	for _, line := range strings.Split(c.LogTail(1<<30), "\n") {
		if strings.Contains(line, "level=ERROR") ||
			strings.Contains(line, "mooncake sidecar (PID") && !strings.Contains(line, "started mooncake sidecar") {
			out = append(out, line)
		}
	}
	return out
}

// TestRandomWorkload runs rounds of the randomized workload on three
// connections and checks after each round that every mirror equals its
// source: sometimes at once (rows in the in-memory tail), sometimes after
// a flush (rows in Iceberg data files and position deletes).
func TestRandomWorkload(t *testing.T) {
	seed, scale := workloadSeed(t), workloadScale(t)
	t.Logf("%s=%d %s=%d", seedEnv, seed, scaleEnv, scale)
	c, conn := startMooncake(t)
	start := time.Now()
	w := setupWorkload(t, conn, seed, true)
	workers := []*wlWorker{w.newWorker(t, c, 0), w.newWorker(t, c, 1), w.newWorker(t, c, 2)}
	keepTrace(t, w, workers)
	ctx := context.Background()

	rounds := 6 * scale
	const perRound = 40
	// The 100,000-row transactions: each kind once, then random kinds.
	bigKinds := []int{0, 1, 3, 5, 2, 4}
	sawDeleteFiles := false // a checkpoint after a flush saw position delete files
	// Compaction may fold a flush's delete files into data files before a
	// checkpoint looks: a watcher looks all along too.
	var watchedDeletes atomic.Bool
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		wc, err := pgx.Connect(watchCtx, c.ConnString("postgres"))
		if err != nil {
			return
		}
		defer wc.Close(context.Background())
		for watchCtx.Err() == nil && !watchedDeletes.Load() {
			var n int64
			if wc.QueryRow(watchCtx, `SELECT coalesce(sum(delete_files), 0) FROM mooncake.columnstore_tables`).Scan(&n) == nil && n > 0 {
				watchedDeletes.Store(true)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	for round := range rounds {
		extra := map[int][]txPlan{}
		kind := workers[0].rng.IntN(len(bigKinds))
		if round < len(bigKinds) {
			kind = bigKinds[round]
		}
		extra[0] = append(extra[0], workers[0].planBig(kind))
		// TRUNCATE of one table and of two at least once each.
		switch round {
		case 1:
			extra[1] = append(extra[1], workers[1].planTruncate(0))
		case 3:
			extra[2] = append(extra[2], workers[2].planTruncate(1))
		case 4:
			extra[1] = append(extra[1], workers[1].planTruncate(2))
		}
		if err := runRound(ctx, workers, perRound, extra); err != nil {
			t.Fatalf("round %d: %v (%s)", round, err, w.summary())
		}
		label := fmt.Sprintf("round %d", round)
		if round%2 == 1 {
			time.Sleep(3 * time.Second) // let the flush commit the changes to Iceberg
			label += " after a flush"
			_, dels := logFileCounts(t, conn, label)
			sawDeleteFiles = sawDeleteFiles || dels > 0
		}
		checkMirrors(t, conn, w, label, 30*time.Second)
	}
	time.Sleep(3 * time.Second)
	checkMirrors(t, conn, w, "final, after a flush", 30*time.Second)
	_, dels := logFileCounts(t, conn, "final")
	sawDeleteFiles = sawDeleteFiles || dels > 0
	t.Logf("%s in %v", w.summary(), time.Since(start).Round(time.Millisecond))
	stopWatch()
	<-watchDone
	// Background compaction folds delete files into data files, so they
	// need not be there at the end; they must have been seen at some time.
	if !sawDeleteFiles && !watchedDeletes.Load() {
		t.Errorf("no position delete files at any checkpoint: the test did not exercise merge-on-read")
	}
	if errs := sidecarErrors(c); len(errs) > 0 {
		t.Errorf("the server log reports sidecar errors:\n%s", strings.Join(errs, "\n"))
	}
}

// TestCrashDuringWorkload runs the workload while the sidecar is killed
// with SIGKILL at random moments, and PostgreSQL once restarted in
// immediate mode; afterwards every mirror must equal its source, without
// duplicate keys.
func TestCrashDuringWorkload(t *testing.T) {
	seed, scale := workloadSeed(t), workloadScale(t)
	t.Logf("%s=%d %s=%d", seedEnv, seed, scaleEnv, scale)
	c, conn := startMooncake(t)
	start := time.Now()
	w := setupWorkload(t, conn, seed, true)
	workers := []*wlWorker{w.newWorker(t, c, 0), w.newWorker(t, c, 1), w.newWorker(t, c, 2)}
	keepTrace(t, w, workers)
	killRng := rand.New(rand.NewPCG(seed, 0))
	w.truncateOdds = 500 // the writers run freely here: keep the tables populated

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var bigWanted atomic.Int64 // big transactions worker 0 should run next
	errs := make(chan error, len(workers))
	for _, wk := range workers {
		go func() {
			big := 0
			for ctx.Err() == nil {
				p := wk.plan()
				if wk.n == 0 && bigWanted.Load() > 0 {
					bigWanted.Add(-1)
					p = wk.planBig(big % 4)
					big++
				}
				if err := wk.run(ctx, p); err != nil {
					if ctx.Err() != nil {
						break
					}
					if err := wk.reconnectIfBroken(ctx, c); err != nil {
						errs <- fmt.Errorf("worker %d: %w", wk.n, err)
						return
					}
				}
				// About 75 transactions a second in all: a steady load
				// the sidecar can catch up with between the kills.
				time.Sleep(time.Duration(20+wk.rng.IntN(40)) * time.Millisecond)
			}
			errs <- nil
		}()
	}

	kills := 10 * scale
	restartAt := kills / 2
	killed := 0
	for i := 0; i <= kills; i++ {
		time.Sleep(time.Duration(300+killRng.IntN(1700)) * time.Millisecond)
		if i%4 == 1 {
			bigWanted.Add(1)
		}
		if i == restartAt {
			t.Logf("restarting PostgreSQL (immediate) after %v", time.Since(start).Round(time.Millisecond))
			c.Restart(t, "immediate")
			c.WaitSidecar(t)
			continue
		}
		pid := c.KillSidecar(t)
		killed++
		waited := time.Now()
		c.WaitSidecar(t)
		t.Logf("kill %d: sidecar %d killed; a new one listening after %v", killed, pid, time.Since(waited).Round(time.Millisecond))
	}
	stop()
	var failed error
	for range workers {
		if err := <-errs; err != nil && failed == nil {
			failed = err
		}
	}
	for _, wk := range workers {
		// Reconnected connections are not closed by the cluster's cleanup.
		_ = wk.conn.Close(context.Background())
	}
	if failed != nil {
		t.Fatalf("%v (%s)", failed, w.summary())
	}
	t.Logf("workload stopped after %v: %s", time.Since(start).Round(time.Millisecond), w.summary())

	check := c.Conn(t, "postgres")
	checkMirrors(t, check, w, "after the crashes", time.Duration(scale)*90*time.Second)
	time.Sleep(3 * time.Second)
	checkMirrors(t, check, w, "after the crashes and a flush", 30*time.Second)
	logFileCounts(t, check, "final")
	if lines := sidecarErrors(c); len(lines) > 0 {
		t.Logf("%d sidecar error or exit lines in the server log (expected with kills and a restart); the last ones:\n%s",
			len(lines), strings.Join(lines[max(0, len(lines)-15):], "\n"))
	}
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

// reconnectIfBroken opens a new connection when the worker's is broken
// (PostgreSQL restarted), retrying while the server starts; an error on a
// healthy connection is returned as it is.
func (wk *wlWorker) reconnectIfBroken(ctx context.Context, c *pgtest.Cluster) error {
	if !wk.conn.IsClosed() {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := wk.conn.Ping(pctx)
		cancel()
		if err == nil {
			return fmt.Errorf("transaction failed on a healthy connection: %s", wk.trace[len(wk.trace)-1])
		}
	}
	_ = wk.conn.Close(context.Background())
	deadline := time.Now().Add(90 * time.Second)
	for {
		conn, err := pgx.Connect(ctx, c.ConnString("postgres"))
		if err == nil {
			wk.conn = conn
			wk.w.reconnects.Add(1)
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cannot reconnect: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
