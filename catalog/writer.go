package catalog

import (
	"context"
	gosql "database/sql"
	"database/sql/driver"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// maxPendingRows bounds the changes buffered in Go before they are written
// to DuckDB (still inside the source transaction's DuckDB transaction).
const maxPendingRows = 8192

// Writer applies replicated changes to mirrors on one DuckDB connection.
// Whole source transactions go into one DuckDB transaction, so a reader sees
// all of a source transaction or none of it.
type Writer struct {
	db      *gosql.DB // for the connections writing spill files
	conn    *gosql.Conn
	inTx    bool
	pending map[*Mirror]*pendingChanges
	touched []*Mirror // mirrors changed in the current DuckDB transaction
	swaps   int64     // viewSwaps when the current DuckDB transaction began
	stmts   map[string]keptStmt
	ddl     bool              // the current DuckDB transaction changed the catalog (catalogChanged once it ends)
	feeds   map[*Mirror]*feed // Arrow views feeding inserts into the tails
	kfeeds  map[*Mirror]*feed // and deleted keys into fdel
	want    []*Mirror         // mirrors to give a feed at the next BEGIN
	// lookupCost is how long the last read of unchanged TOAST values from
	// a view took (see LookupDelay).
	lookupCost time.Duration
}

// txMirror is what the current DuckDB transaction did to one mirror beyond
// its tables: the rows it put in the tail, and its spill files.
type txMirror struct {
	tailRows int        // rows inserted into the tail
	spilling bool       // holds the mirror's maint lock, to spill
	cur      *spillFile // the spill file being written
	files    []string   // spill files written
	cleared  bool       // truncated: the spill files committed before are gone
	deleted  bool       // keys were deleted (from the data files, the tail or the spill files)
}

// form is the view form the transaction's changes need.
func (tx *txMirror) form(m *Mirror) viewForm {
	switch {
	case tx.cleared, tx.deleted && !m.Full:
		return formFull
	case tx.deleted, tx.tailRows > 0, len(tx.files) > 0:
		// Full identity: the files part leaves out the rows deleted by
		// position; the deletes from the tail are the tail's.
		return formTail
	}
	return formFiles
}

// pendingChanges are one mirror's changes not yet written to DuckDB. Deletes
// are applied before inserts. That is the source order except when a key is
// inserted and then deleted within the batch; Delete then drops the pending
// row instead, since no older row with that key can be live.
type pendingChanges struct {
	rows     [][]*string      // rows to insert, text values in column order; nil once deleted
	keys     [][]*string      // keys to delete, text values in key order
	inserted map[string]int   // index in rows of each pending row, by key
	copies   map[string][]int // more pending rows with the same key (Full identity: rows may repeat)
	lsn      uint64           // commit LSN of the last source transaction ended
	tx       txMirror

	// Unchanged TOAST values of updated rows, read when the batch is
	// applied (see Update).
	lookups []*lookup          // the rows to read
	byKey   map[string]*lookup // the same, by key
	holes   map[int][]hole     // the columns of rows waiting for them, by index in rows
}

// NewWriter returns a writer on conn, which it owns from now on; spill
// files are written on other connections of db.
func NewWriter(db *gosql.DB, conn *gosql.Conn) *Writer {
	return &Writer{db: db, conn: conn, pending: map[*Mirror]*pendingChanges{}, stmts: map[string]keptStmt{},
		feeds: map[*Mirror]*feed{}, kfeeds: map[*Mirror]*feed{}}
}

// Forget drops what the writer keeps for a mirror whose columns are about
// to change (its Arrow feeds); it must be called between transactions.
func (w *Writer) Forget(m *Mirror) {
	if f := w.feeds[m]; f != nil {
		f.close(w.conn)
		delete(w.feeds, m)
	}
	if f := w.kfeeds[m]; f != nil {
		f.close(w.conn)
		delete(w.kfeeds, m)
	}
	w.want = slices.DeleteFunc(w.want, func(x *Mirror) bool { return x == m })
}

// Conn is the writer's DuckDB connection, for flushes between transactions.
func (w *Writer) Conn() *gosql.Conn { return w.conn }

// Close releases the connection.
func (w *Writer) Close() error {
	w.Rollback()
	w.closeStmts()
	for _, f := range w.feeds {
		f.close(w.conn)
	}
	for _, f := range w.kfeeds {
		f.close(w.conn)
	}
	return w.conn.Close()
}

func (w *Writer) begin(ctx context.Context, m *Mirror) (*pendingChanges, error) {
	if !w.inTx {
		w.swaps = viewSwaps.Load()
		// Feeds are registered outside transactions (a view in DuckDB's
		// temporary catalog cannot be created by a transaction that writes
		// to the mirrors' database).
		for _, fm := range append(w.want, m) {
			if w.feeds[fm] == nil {
				f, err := newFeed(w.conn, textSchema("c", len(fm.Columns)))
				if err != nil {
					return nil, err
				}
				w.feeds[fm] = f
			}
			if w.kfeeds[fm] == nil && len(fm.Key) > 0 {
				f, err := newFeed(w.conn, textSchema("k", len(fm.Key)))
				if err != nil {
					return nil, err
				}
				w.kfeeds[fm] = f
			}
		}
		w.want = w.want[:0]
		if err := w.execAll(ctx, "BEGIN TRANSACTION"); err != nil {
			return nil, err
		}
		w.inTx = true
	}
	p := w.pending[m]
	if p == nil {
		p = &pendingChanges{inserted: map[string]int{}}
		w.pending[m] = p
		w.touched = append(w.touched, m)
	}
	return p, nil
}

func keyString(vals []*string) string {
	var b strings.Builder
	for _, v := range vals {
		if v == nil {
			b.WriteString("N")
		} else {
			b.WriteString(strconv.Itoa(len(*v)))
			b.WriteByte(':')
			b.WriteString(*v)
		}
	}
	return b.String()
}

// KeyOf extracts the key values of a row.
func (m *Mirror) KeyOf(row []*string) []*string {
	k := make([]*string, len(m.Key))
	for i, c := range m.Key {
		k[i] = row[c]
	}
	return k
}

// Insert adds a row (text values in column order, nil for NULL).
func (w *Writer) Insert(ctx context.Context, m *Mirror, row []*string) error {
	p, err := w.begin(ctx, m)
	if err != nil {
		return err
	}
	p.insert(m, row, nil)
	m.counters().Insert.Inc()
	if len(p.rows)+len(p.keys) >= maxPendingRows {
		return w.apply(ctx, m, p)
	}
	return nil
}

// insert adds a pending row, whose columns named by holes wait for lookups.
func (p *pendingChanges) insert(m *Mirror, row []*string, holes []hole) {
	if len(m.Key) > 0 {
		k := keyString(m.KeyOf(row))
		if i, ok := p.inserted[k]; ok {
			// Rows repeat (Full identity): a delete of the key later in the
			// batch drops one of them, and another one may follow.
			if p.copies == nil {
				p.copies = map[string][]int{}
			}
			p.copies[k] = append(p.copies[k], i)
		}
		p.inserted[k] = len(p.rows)
	}
	if len(holes) > 0 {
		if p.holes == nil {
			p.holes = map[int][]hole{}
		}
		p.holes[len(p.rows)] = holes
	}
	p.rows = append(p.rows, row)
}

// Delete removes the row with the given key (text values in key order).
func (w *Writer) Delete(ctx context.Context, m *Mirror, key []*string) error {
	p, err := w.begin(ctx, m)
	if err != nil {
		return err
	}
	m.counters().Delete.Inc()
	if p.delete(key) && len(p.rows)+len(p.keys) >= maxPendingRows {
		return w.apply(ctx, m, p)
	}
	return nil
}

// delete drops the pending row with the key, or else adds the key to those
// to delete, which it reports.
func (p *pendingChanges) delete(key []*string) bool {
	k := keyString(key)
	if i, ok := p.inserted[k]; ok {
		p.rows[i] = nil
		if c := p.copies[k]; len(c) > 0 {
			p.inserted[k] = c[len(c)-1]
			if len(c) == 1 {
				delete(p.copies, k)
			} else {
				p.copies[k] = c[:len(c)-1]
			}
		} else {
			delete(p.inserted, k)
		}
		return false
	}
	p.keys = append(p.keys, key)
	return true
}

// Truncate removes every row of the mirror: the changes of the current
// batch, the tail, and (hidden now, removed by the next flush) the data
// files.
func (w *Writer) Truncate(ctx context.Context, m *Mirror) error {
	p, err := w.begin(ctx, m)
	if err != nil {
		return err
	}
	m.counters().Truncate.Inc()
	p.rows, p.keys = p.rows[:0], p.keys[:0]
	clear(p.inserted)
	clear(p.copies)
	p.forgetLookups()
	if p.tx.cur != nil {
		p.tx.cur.abandon()
		p.tx.cur = nil
	}
	for _, f := range p.tx.files {
		os.Remove(f)
	}
	p.tx.files, p.tx.cleared = nil, true
	clear(m.tailKeys)
	err = w.execAll(ctx,
		"DELETE FROM "+m.tail(),
		"DELETE FROM "+m.fdel(),
		"DELETE FROM "+m.pdel(),
		"INSERT INTO "+m.trunc()+" SELECT true WHERE NOT EXISTS (SELECT 1 FROM "+m.trunc()+")")
	if err != nil {
		return fmt.Errorf("truncate %s.%s: %w", m.Namespace, m.Name, err)
	}
	m.tailRows.Store(0)
	m.dirty.Store(true)
	return nil
}

// appendRows appends text rows to one of the mirror's staging tables.
func (w *Writer) appendRows(m *Mirror, table string, rows [][]*string) error {
	return w.conn.Raw(func(dc any) error {
		a, err := duckdb.NewAppender(dc.(driver.Conn), duckCatalogName(m.Database), "mooncake_internal", table)
		if err != nil {
			return err
		}
		var vals []driver.Value
		for _, r := range rows {
			if r == nil {
				continue
			}
			if vals == nil {
				vals = make([]driver.Value, len(r))
			}
			for i, v := range r {
				if v == nil {
					vals[i] = nil
				} else {
					vals[i] = *v
				}
			}
			if err := a.AppendRow(vals...); err != nil {
				a.Close()
				return err
			}
		}
		return a.Close()
	})
}

// deleteOneEach applies deletes to a mirror with Full identity, where rows
// may repeat: each removes one row with exactly those values, from the tail
// if it holds one, else from the data files (its position is recorded, to
// be written as a position delete at the next flush).
func (w *Writer) deleteOneEach(ctx context.Context, m *Mirror, rows [][]*string, spilled []string) error {
	m.mu.Lock()
	files, delFiles := append(append([]string(nil), m.files...), spilled...), m.delFiles
	m.mu.Unlock()
	for _, r := range rows {
		var tailMatch, fileMatch []string
		for i, c := range m.Key {
			v := "NULL"
			if r[i] != nil {
				v = m.Columns[c].Type.CastFromText(QuoteLiteral(*r[i]))
			}
			tailMatch = append(tailMatch, colName("c", c)+" IS NOT DISTINCT FROM "+v)
			fileMatch = append(fileMatch, "p."+m.fileCol(c)+" IS NOT DISTINCT FROM "+v)
		}
		res, err := w.conn.ExecContext(ctx, "DELETE FROM "+m.tail()+" WHERE rowid IN (SELECT rowid FROM "+m.tail()+
			" WHERE "+strings.Join(tailMatch, " AND ")+" LIMIT 1)")
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 || len(files) == 0 {
			continue
		}
		q := "INSERT INTO " + m.pdel() + " SELECT p.filename, p.file_row_number FROM " + m.readFiles(files) +
			" p WHERE " + strings.Join(fileMatch, " AND ") +
			" AND NOT EXISTS (SELECT 1 FROM " + m.pdel() + " x WHERE x.file_path = p.filename AND x.pos = p.file_row_number)"
		if len(delFiles) > 0 {
			q += " AND NOT EXISTS (SELECT 1 FROM " + m.delRead(delFiles) +
				" d WHERE d.file_path = p.filename AND d.pos = p.file_row_number)"
		}
		if _, err := w.conn.ExecContext(ctx, q+" LIMIT 1"); err != nil {
			return err
		}
	}
	return nil
}

// execAll runs statements on the writer's connection. They are prepared
// once and kept: the apply loop runs the same few statements per mirror
// (their table names change with each flush), and DuckDB spends more time
// parsing and planning them than running them on a small batch.
func (w *Writer) execAll(ctx context.Context, stmts ...string) error {
	for _, s := range stmts {
		st, err := w.prepare(ctx, s)
		if err != nil {
			return err
		}
		if _, err := st.ExecContext(ctx); err != nil {
			return err
		}
	}
	return nil
}

// query runs a query on the writer's connection, prepared once as execAll's
// statements are.
func (w *Writer) query(ctx context.Context, q string) (*gosql.Rows, error) {
	st, err := w.prepare(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx)
}

// keptStmt is a statement the writer prepared, at catalog epoch epoch.
type keptStmt struct {
	st    *gosql.Stmt
	epoch int64
}

// prepare is s prepared on the writer's connection: kept from an earlier
// call unless a mirrors' catalog changed since (see catalogEpoch).
func (w *Writer) prepare(ctx context.Context, s string) (*gosql.Stmt, error) {
	epoch := CatalogEpoch()
	if k, ok := w.stmts[s]; ok {
		if k.epoch == epoch {
			return k.st, nil
		}
		k.st.Close()
		delete(w.stmts, s)
	}
	if len(w.stmts) >= maxPrepared {
		w.closeStmts()
	}
	st, err := w.conn.PrepareContext(ctx, s)
	if err != nil {
		return nil, err
	}
	w.stmts[s] = keptStmt{st: st, epoch: epoch}
	return st, nil
}

// maxPrepared bounds the statements the writer keeps prepared.
const maxPrepared = 256

func (w *Writer) closeStmts() {
	for s, k := range w.stmts {
		k.st.Close()
		delete(w.stmts, s)
	}
}

// restageEvery is how many rows pass through a staging table before it is
// replaced: DuckDB keeps deleted rows of an in-memory table until the table
// is dropped, and scans them.
const restageEvery = 1 << 16

// apply writes a mirror's pending changes to DuckDB: deletes first (from
// the tail, and as deleted keys hiding rows of the data files), then inserts.
func (w *Writer) apply(ctx context.Context, m *Mirror, p *pendingChanges) error {
	if err := w.applyChanges(ctx, m, p); err != nil {
		return &MirrorError{Mirror: m, Err: err}
	}
	return nil
}

// MirrorError is a failure to apply changes to one mirror, e.g. a value
// its storage cannot hold.
type MirrorError struct {
	Mirror *Mirror
	Err    error
}

func (e *MirrorError) Error() string {
	return fmt.Sprintf("mirror %s.%s: %v", e.Mirror.Namespace, e.Mirror.Name, e.Err)
}

func (e *MirrorError) Unwrap() error { return e.Err }

func (w *Writer) applyChanges(ctx context.Context, m *Mirror, p *pendingChanges) error {
	if len(p.keys) > 0 {
		p.tx.deleted = true
	}
	if m.staged >= restageEvery {
		w.ddl = true
		if err := w.execAll(ctx, m.stagingDDL(true)...); err != nil {
			return fmt.Errorf("replace staging tables of %s.%s: %w", m.Namespace, m.Name, err)
		}
		m.staged = 0
	}
	// Before any of the batch's changes: its updates read the values they
	// keep as of before them.
	if err := w.readUnchanged(ctx, m, p); err != nil {
		return fmt.Errorf("read unchanged TOAST values of %s.%s: %w", m.Namespace, m.Name, err)
	}
	if len(p.keys) > 0 && p.tx.cur != nil && p.tx.cur.mayHold(p.keys) {
		// A deleted row may be in the spill file being written: finish it,
		// so that it can be read.
		if err := w.finishSpill(m, p); err != nil {
			return err
		}
	}
	spilled := w.spilledFiles(m, p)
	if len(p.keys) > 0 && m.Full {
		if err := w.deleteOneEach(ctx, m, p.keys, spilled); err != nil {
			return fmt.Errorf("apply deletes to %s.%s: %w", m.Namespace, m.Name, err)
		}
		p.keys = p.keys[:0]
	}
	inTail := false // some deleted key may be in the tail
	for _, k := range p.keys {
		if _, ok := m.tailKeys[keyHash(k)]; ok {
			inTail = true
			break
		}
	}
	if len(p.keys) > 0 {
		if kf := w.kfeeds[m]; kf != nil && !inTail && len(spilled) == 0 {
			// The common case, one statement: the keys only hide rows of
			// the data files. Through Arrow, as the inserts.
			var casts []string
			for i, c := range m.Key {
				casts = append(casts, m.Columns[c].Type.CastFromText(colName("k", i)))
			}
			kf.r.q = append(kf.r.q, textBatch(kf.r.schema, p.keys))
			err := w.execAll(ctx, "INSERT INTO "+m.fdel()+" SELECT "+strings.Join(casts, ", ")+" FROM "+kf.view)
			kf.r.reset()
			if err != nil {
				return fmt.Errorf("apply deletes to %s.%s: %w", m.Namespace, m.Name, err)
			}
			p.keys = p.keys[:0]
		}
	}
	if len(p.keys) > 0 {
		if err := w.appendRows(m, m.stageName("kstage"), p.keys); err != nil {
			return fmt.Errorf("stage deleted keys: %w", err)
		}
		var casts, match, smatch []string
		for i, c := range m.Key {
			casts = append(casts, m.Columns[c].Type.CastFromText(colName("k", i))+" AS "+colName("k", i))
			match = append(match, "t."+colName("c", c)+" = k."+colName("k", i))
			smatch = append(smatch, "s."+m.fileCol(c)+" = k."+colName("k", i))
		}
		keys := "(SELECT " + strings.Join(casts, ", ") + " FROM " + m.kstage() + ")"
		// None of the keys in the tail (the common case of an update of a
		// row flushed before): the rows are in the data files.
		stmts := []string{"INSERT INTO " + m.fdel() + " SELECT * FROM " + keys + " k"}
		if inTail {
			stmts = []string{
				"INSERT INTO " + m.fdel() + " SELECT * FROM " + keys + " k WHERE NOT EXISTS (SELECT 1 FROM " +
					m.tail() + " t WHERE " + strings.Join(match, " AND ") + ")",
				"DELETE FROM " + m.tail() + " t USING " + keys + " k WHERE " + strings.Join(match, " AND "),
			}
		}
		if len(spilled) > 0 {
			// Rows of spill files are deleted by position.
			stmts = append(stmts, "INSERT INTO "+m.pdel()+" SELECT s.filename, s.file_row_number FROM "+
				m.readFiles(spilled)+" s, "+keys+" k WHERE "+
				strings.Join(smatch, " AND ")+" AND NOT EXISTS (SELECT 1 FROM "+m.pdel()+
				" x WHERE x.file_path = s.filename AND x.pos = s.file_row_number)")
		}
		stmts = append(stmts, "DELETE FROM "+m.kstage())
		if err := w.execAll(ctx, stmts...); err != nil {
			return fmt.Errorf("apply deletes to %s.%s: %w", m.Namespace, m.Name, err)
		}
		m.staged += len(p.keys)
		p.keys = p.keys[:0]
	}
	if n := liveRows(p.rows); n > 0 {
		if err := w.insertRows(ctx, m, p, n); err != nil {
			return fmt.Errorf("apply inserts to %s.%s: %w", m.Namespace, m.Name, err)
		}
		m.tailRows.Add(int64(n))
		p.rows = p.rows[:0]
	}
	clear(p.inserted)
	clear(p.copies)
	m.dirty.Store(true)
	return nil
}

func liveRows(rows [][]*string) int {
	n := 0
	for _, r := range rows {
		if r != nil {
			n++
		}
	}
	return n
}

// insertRows writes the n live pending rows to the tail, or to a spill file
// once the transaction has put spillAfter rows of the mirror in the tail.
func (w *Writer) insertRows(ctx context.Context, m *Mirror, p *pendingChanges, n int) error {
	if p.tx.cur == nil && p.tx.tailRows >= spillAfter && w.canSpill(m, p) {
		sf, err := startSpill(ctx, w.db, m)
		if err != nil {
			return err
		}
		p.tx.cur = sf
	}
	if p.tx.cur != nil {
		if err := p.tx.cur.add(m, p.rows); err != nil {
			return err
		}
		if p.tx.cur.rows >= spillFileRows {
			return w.finishSpill(m, p)
		}
		return nil
	}
	if f := w.feeds[m]; f != nil {
		// Through Arrow: no staging table, no per-value calls.
		f.r.q = append(f.r.q, arrowText(m, p.rows))
		err := w.execAll(ctx, "INSERT INTO "+m.tail()+" SELECT "+m.textSelect(true)+" FROM "+f.view)
		f.r.reset()
		if err != nil {
			return err
		}
	} else {
		w.want = append(w.want, m)
		if err := w.appendRows(m, m.stageName("stage"), p.rows); err != nil {
			return fmt.Errorf("stage rows: %w", err)
		}
		if err := w.execAll(ctx, "INSERT INTO "+m.tail()+" SELECT "+m.textSelect(true)+" FROM "+m.stage(),
			"DELETE FROM "+m.stage()); err != nil {
			return err
		}
		m.staged += n
	}
	if len(m.Key) > 0 {
		if m.tailKeys == nil {
			m.tailKeys = map[uint64]struct{}{}
		}
		for _, r := range p.rows {
			if r != nil {
				m.tailKeys[keyHash(m.KeyOf(r))] = struct{}{}
			}
		}
	}
	p.tx.tailRows += n
	return nil
}

// viewSwaps counts the view changes made outside the apply loop's
// transactions (by compactions).
var viewSwaps atomic.Int64

// canSpill takes the mirror's maint lock for the rest of the transaction,
// which redefines the mirror's view when it commits: no compaction may
// change the view meanwhile, nor may one have since the transaction began
// (DuckDB would refuse the transaction's change as a conflict).
func (w *Writer) canSpill(m *Mirror, p *pendingChanges) bool {
	if p.tx.spilling {
		return true
	}
	if !m.maint.TryLock() {
		return false
	}
	if viewSwaps.Load() != w.swaps {
		m.maint.Unlock()
		return false
	}
	p.tx.spilling = true
	return true
}

func (w *Writer) finishSpill(m *Mirror, p *pendingChanges) error {
	sf := p.tx.cur
	p.tx.cur = nil
	if err := sf.finish(); err != nil {
		return err
	}
	if sf.rows == 0 {
		os.Remove(sf.path)
		return nil
	}
	p.tx.files = append(p.tx.files, sf.path)
	slog.Info("large transaction: rows written straight to a data file", "mirror", m.Namespace+"."+m.Name,
		"rows", sf.rows, "file", filepath.Base(sf.path))
	return nil
}

// spilledFiles are the mirror's spill files not yet in Iceberg, those of
// the current transaction included (but not the one being written).
func (w *Writer) spilledFiles(m *Mirror, p *pendingChanges) []string {
	var out []string
	if !p.tx.cleared {
		out = append(out, m.Spilled()...)
	}
	return append(out, p.tx.files...)
}

// EndTransaction marks the end of a source transaction with commit LSN lsn.
// Its changes stay in the open DuckDB transaction until Sync, so that
// several small source transactions share one DuckDB commit.
func (w *Writer) EndTransaction(lsn uint64) {
	for _, m := range w.touched {
		w.pending[m].lsn = lsn
	}
}

// Pending reports whether changes await Sync.
func (w *Writer) Pending() bool { return w.inTx }

// Sync writes out what is pending and commits the DuckDB transaction: the
// mirrors changed now hold every source transaction ended so far. It must
// be called between source transactions.
func (w *Writer) Sync(ctx context.Context) error {
	if !w.inTx {
		return nil
	}
	spills := map[*Mirror][]string{}
	forms := map[*Mirror]viewForm{}
	redefined := map[*Mirror]bool{}
	defer func() {
		for m := range redefined { // the view as it is now, also after a failure
			m.viewChanging()
		}
	}()
	for _, m := range w.touched {
		p := w.pending[m]
		if err := w.apply(ctx, m, p); err != nil {
			w.Rollback()
			return err
		}
		if p.tx.cur != nil {
			if err := w.finishSpill(m, p); err != nil {
				w.Rollback()
				return &MirrorError{Mirror: m, Err: err}
			}
		}
		var ddl []string
		if len(p.tx.files) > 0 || p.tx.cleared && len(m.Spilled()) > 0 {
			// The view reads the spill files from this commit on.
			spilled := w.spilledFiles(m, p)
			ddl = append(ddl, m.tailDDL(spilled))
			spills[m] = spilled
		}
		if f := p.tx.form(m); f > m.form {
			ddl = append(ddl, m.formDDL(f))
			forms[m] = f
		}
		if len(ddl) == 0 {
			continue
		}
		m.viewChanging()
		redefined[m] = true
		if _, err := w.conn.ExecContext(ctx, strings.Join(ddl, ";\n")); err != nil {
			w.Rollback()
			return fmt.Errorf("%s.%s: redefine the view: %w", m.Namespace, m.Name, err)
		}
	}
	if err := w.execAll(ctx, "COMMIT"); err != nil {
		w.Rollback()
		return err
	}
	for _, m := range w.touched {
		p := w.pending[m]
		if spilled, ok := spills[m]; ok {
			m.setSpilled(spilled)
		}
		if f, ok := forms[m]; ok {
			m.setForm(f)
		}
		if redefined[m] {
			// Before the changes are visible: a query that waits for them
			// never finds the version the view had before.
			m.viewChanging()
		}
		m.appliedLSN.Store(p.lsn)
		if p.tx.spilling {
			m.maint.Unlock()
		}
	}
	clear(w.pending) // so that reset keeps the spill files
	w.reset()
	return nil
}

// Rollback abandons the current transaction's changes.
func (w *Writer) Rollback() {
	if w.inTx {
		w.conn.ExecContext(context.Background(), "ROLLBACK")
	}
	w.reset()
}

func (w *Writer) reset() {
	w.inTx = false
	if w.ddl {
		// committed or rolled back: the catalog as it is now
		w.ddl = false
		catalogChanged()
	}
	for m, p := range w.pending {
		// Abandoned: its spill files were never committed.
		if p.tx.cur != nil {
			p.tx.cur.abandon()
		}
		for _, f := range p.tx.files {
			os.Remove(f)
		}
		if p.tx.spilling {
			m.maint.Unlock()
		}
	}
	clear(w.pending)
	w.touched = w.touched[:0]
}
