package catalog

import (
	"context"
	gosql "database/sql"
	"errors"
	"math"
	"slices"
	"strings"
	"time"
)

// Unchanged TOASTed values. An UPDATE that leaves a value stored out of line
// (TOASTed) unchanged does not carry it in the replication stream: the new
// row must take the value the mirror holds for the row. Reading it costs a
// scan of the mirror's data files, whatever the number of rows read: DuckDB
// writes a large column's values into pages of up to 100 MB, and has to
// decompress the whole page to reach one value. Read row by row, that scan
// made the apply fall far behind OLTP that updates such rows one at a time
// (the 6.4 kB values of a 20,000-row table: 0.13 s a row).
//
// So the writer reads them late, all of a batch at once: Update leaves the
// columns empty in the pending row and notes a lookup of the row's key; the
// next apply of the batch reads every lookup's values in one join, before it
// applies the batch's own deletes, so each value is the row's as of just
// before the batch, which is just before its update: an update of a row
// changed earlier in the batch takes the values of the pending row instead
// (or waits for the same lookup).

// lookup is a row whose current values the batch reads back, by key.
type lookup struct {
	key  []*string
	cols []int     // the columns to read
	vals []*string // their values, once read (nil: NULL, or the row was not found)
}

// hole is a column of a pending row waiting for a lookup: the row takes
// lk.vals[j] as column col.
type hole struct {
	col int
	lk  *lookup
	j   int
}

// Update replaces the row with the given key (text values in key order) by
// row. The columns listed in unchanged are values the update left as they
// were and the source did not send (unchanged TOAST values): they keep the
// row's current values, as of just before the update, read when the batch
// is applied.
func (w *Writer) Update(ctx context.Context, m *Mirror, key, row []*string, unchanged []int) error {
	p, err := w.begin(ctx, m)
	if err != nil {
		return err
	}
	var holes []hole
	if len(unchanged) > 0 {
		if len(m.Key) == 0 || m.Full {
			// With REPLICA IDENTITY FULL the old row comes whole (PostgreSQL
			// inlines its TOASTed values) and gives them; anything else has
			// a key.
			return &MirrorError{Mirror: m, Err: errUnchangedWithoutKey}
		}
		holes = p.keep(key, row, unchanged)
	}
	p.delete(key)
	p.insert(m, row, holes)
	m.counters().Update.Inc()
	if len(p.rows)+len(p.keys) >= maxPendingRows {
		return w.apply(ctx, m, p)
	}
	return nil
}

var errUnchangedWithoutKey = errors.New("an unchanged TOAST value and no key to read it by")

// keep gives row the current values of the unchanged columns of the row
// with key: those of the pending row with that key if the batch holds one,
// else the holes of a lookup to be read at the next apply.
func (p *pendingChanges) keep(key, row []*string, unchanged []int) []hole {
	var holes []hole
	k := keyString(key)
	if i, ok := p.inserted[k]; ok {
		// Inserted or updated earlier in the batch: its values, or the
		// same lookups as its own.
		for _, c := range unchanged {
			if j := slices.IndexFunc(p.holes[i], func(h hole) bool { return h.col == c }); j >= 0 {
				holes = append(holes, p.holes[i][j])
			} else {
				row[c] = p.rows[i][c]
			}
		}
		return holes
	}
	// No pending row with the key: the row is as it was before the batch
	// (one deleted in the batch cannot be updated without being inserted
	// again), which is what the lookup reads, before the batch's deletes.
	lk := p.byKey[k]
	if lk == nil {
		if p.byKey == nil {
			p.byKey = map[string]*lookup{}
		}
		lk = &lookup{key: key}
		p.byKey[k] = lk
		p.lookups = append(p.lookups, lk)
	}
	for _, c := range unchanged {
		j := slices.Index(lk.cols, c)
		if j < 0 {
			j = len(lk.cols)
			lk.cols = append(lk.cols, c)
		}
		holes = append(holes, hole{col: c, lk: lk, j: j})
	}
	return holes
}

// forgetLookups drops the batch's lookups and holes (its rows are gone).
func (p *pendingChanges) forgetLookups() {
	p.lookups = p.lookups[:0]
	clear(p.byKey)
	clear(p.holes)
}

// LookupDelay is how long a batch of transactions may grow while it holds
// unchanged TOAST values to read back: as long as the last read of the
// data files for them took, so that such reads, whose cost hardly depends
// on the number of rows, take about half the apply's time at most however
// fast the source commits. Until a read was timed, it is unbounded (the
// caller bounds it). It is 0 when the pending batch reads none.
func (w *Writer) LookupDelay() time.Duration {
	for _, p := range w.pending {
		if len(p.lookups) > 0 {
			if w.lookupCost == 0 {
				return math.MaxInt64
			}
			return w.lookupCost
		}
	}
	return 0
}

// readUnchanged reads the values of the batch's lookups and fills the
// pending rows' holes with them. It runs before the batch's changes are
// written to DuckDB, which then holds every row as of just before the
// batch. A row is read where its current version is: the tail (rows
// changed since the last flush; its keys are known), then the spill files
// of the current transaction (not in the view yet), then the view, whose
// data files only the remaining keys need. A row found nowhere gives NULLs.
func (w *Writer) readUnchanged(ctx context.Context, m *Mirror, p *pendingChanges) error {
	if len(p.lookups) == 0 {
		return nil
	}
	defer p.forgetLookups()
	todo := slices.Clone(p.lookups)
	var cols []int // every column some lookup reads, in column order
	for _, lk := range todo {
		for _, c := range lk.cols {
			if !slices.Contains(cols, c) {
				cols = append(cols, c)
			}
		}
	}
	slices.Sort(cols)
	byName := func(c int) string { return QuoteIdent(m.Columns[c].Name) }

	var err error
	if slices.ContainsFunc(todo, func(lk *lookup) bool { _, ok := m.tailKeys[keyHash(lk.key)]; return ok }) {
		if todo, err = w.lookupIn(ctx, m, todo, cols, m.tail(), func(c int) string { return colName("c", c) }); err != nil {
			return err
		}
	}
	if len(todo) > 0 && p.tx.cur != nil && p.tx.cur.mayHold(lookupKeys(todo)) {
		// A row may be in the spill file being written: finish it, so that
		// it can be read.
		if err := w.finishSpill(m, p); err != nil {
			return err
		}
	}
	if len(todo) > 0 && len(p.tx.files) > 0 {
		from := "(SELECT * FROM " + m.readFiles(p.tx.files) + " p WHERE NOT EXISTS (SELECT 1 FROM " +
			m.pdel() + " x WHERE x.file_path = p.filename AND x.pos = p.file_row_number))"
		if todo, err = w.lookupIn(ctx, m, todo, cols, from, m.fileCol); err != nil {
			return err
		}
	}
	if len(todo) > 0 {
		start := time.Now()
		if todo, err = w.lookupIn(ctx, m, todo, cols, m.View(), byName); err != nil {
			return err
		}
		w.lookupCost = time.Since(start)
	}
	for _, lk := range todo {
		lk.vals = make([]*string, len(lk.cols)) // not found: NULL, as the row holds no value
	}
	for i, holes := range p.holes {
		if row := p.rows[i]; row != nil {
			for _, h := range holes {
				row[h.col] = h.lk.vals[h.j]
			}
		}
	}
	return nil
}

func lookupKeys(lks []*lookup) [][]*string {
	keys := make([][]*string, len(lks))
	for i, lk := range lks {
		keys[i] = lk.key
	}
	return keys
}

// lookupIn reads columns cols of the rows of from (whose column c is
// name(c)) with the lookups' keys, in one join, and returns the lookups it
// did not find.
func (w *Writer) lookupIn(ctx context.Context, m *Mirror, lks []*lookup, cols []int, from string, name func(c int) string) ([]*lookup, error) {
	// The keys arrive as text columns k0..; each is matched cast to its
	// column's type and returned as it came (t0..), to find its lookup.
	var keys, match, sel []string
	for i, c := range m.Key {
		k := colName("k", i)
		keys = append(keys, k+" AS "+colName("t", i), m.Columns[c].Type.CastFromText(k)+" AS "+k)
		match = append(match, "s."+name(c)+" = l."+k)
		sel = append(sel, "l."+colName("t", i))
	}
	for _, c := range cols {
		sel = append(sel, m.Columns[c].Type.CastToText("s."+name(c)))
	}
	byKey := make(map[string]*lookup, len(lks))
	for _, lk := range lks {
		byKey[keyString(lk.key)] = lk
	}
	err := w.withKeys(ctx, m, lookupKeys(lks), func(rel string) error {
		rows, err := w.query(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM (SELECT "+strings.Join(keys, ", ")+
			" FROM "+rel+") l JOIN "+from+" s ON "+strings.Join(match, " AND "))
		if err != nil {
			return err
		}
		defer rows.Close()
		vals := make([]gosql.NullString, len(m.Key)+len(cols))
		dest := make([]any, len(vals))
		for i := range vals {
			dest[i] = &vals[i]
		}
		key := make([]*string, len(m.Key))
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			for i := range key {
				key[i] = nullString(vals[i])
			}
			lk := byKey[keyString(key)]
			if lk == nil || lk.vals != nil {
				continue // a key is one row, found once
			}
			lk.vals = make([]*string, len(lk.cols))
			for j, c := range lk.cols {
				lk.vals[j] = nullString(vals[len(m.Key)+slices.Index(cols, c)])
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(lks, func(lk *lookup) bool { return lk.vals != nil }), nil
}

func nullString(v gosql.NullString) *string {
	if !v.Valid {
		return nil
	}
	s := v.String
	return &s
}

// withKeys makes keys (text values in key order) readable by fn as the
// relation rel, with text columns k0..: through the mirror's Arrow key feed
// when it has one, else its key staging table.
func (w *Writer) withKeys(ctx context.Context, m *Mirror, keys [][]*string, fn func(rel string) error) error {
	if kf := w.kfeeds[m]; kf != nil {
		kf.r.q = append(kf.r.q, textBatch(kf.r.schema, keys))
		defer kf.r.reset()
		return fn(kf.view)
	}
	if err := w.appendRows(m, m.stageName("kstage"), keys); err != nil {
		return err
	}
	m.staged += len(keys)
	err := fn(m.kstage())
	if e := w.execAll(ctx, "DELETE FROM "+m.kstage()); err == nil {
		err = e
	}
	return err
}
