package catalog

import (
	"context"
	gosql "database/sql"
	"fmt"
	"os"
	"strconv"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/pgmooncake/mooncake/sidecar/metrics"
)

// A source's schema changes reach its mirrors in two ways (cdc decides
// which). A change that keeps the rows as they are (a column added
// without a default, dropped or renamed, a type widened as Iceberg allows)
// is a Reshape: the mirror's pending changes are flushed, then the Iceberg
// schema evolves (field IDs stay, so old data files need no rewrite and
// old snapshots keep their schema) and the DuckDB objects are rebuilt for
// the new columns. Any other change (a table rewrite, a type changed
// incompatibly, a new key) is a Replace: the source is copied again and
// its rows replace the mirror's files in one Iceberg commit.

// evolveSchema stages in tx the Iceberg schema change from cur to cols.
// Columns whose ID is a field of cur keep it (renamed or widened as
// needed); the others are added and get their new IDs; fields of cur
// that no column keeps are dropped. It returns cols with every ID set and
// the schema the transaction commits.
func evolveSchema(tx *table.Transaction, cur *iceberg.Schema, cols []Column) ([]Column, *iceberg.Schema, error) {
	us := tx.UpdateSchema(true, true)
	keep := map[int]bool{}
	for _, c := range cols {
		if c.ID != 0 {
			if _, ok := cur.FindFieldByID(c.ID); ok {
				keep[c.ID] = true
			}
		}
	}
	// Renames onto a name another field has (two columns swapping names,
	// a column renamed to a dropped one's name) first go to names of their
	// own, in a schema update of the same transaction.
	var clash bool
	for _, c := range cols {
		if !keep[c.ID] {
			continue
		}
		f, _ := cur.FindFieldByID(c.ID)
		if g, ok := cur.FindFieldByName(c.Name); f.Name != c.Name && ok && g.ID != c.ID {
			clash = true
		}
	}
	if clash {
		for _, c := range cols {
			if f, _ := cur.FindFieldByID(c.ID); keep[c.ID] && f.Name != c.Name {
				us.RenameColumn([]string{f.Name}, fmt.Sprintf("mooncake renaming field %d", c.ID))
			}
		}
		if err := us.Commit(); err != nil {
			return nil, nil, fmt.Errorf("evolve the iceberg schema: %w", err)
		}
		st, err := tx.StagedTable()
		if err != nil {
			return nil, nil, err
		}
		cur = st.Schema()
		us = tx.UpdateSchema(true, true)
	}
	for _, f := range cur.Fields() {
		if !keep[f.ID] {
			us.DeleteColumn([]string{f.Name})
		}
	}
	for _, c := range cols {
		if !keep[c.ID] {
			continue
		}
		f, _ := cur.FindFieldByID(c.ID)
		if f.Name != c.Name {
			us.RenameColumn([]string{f.Name}, c.Name)
		}
		if t := c.Type.IcebergType(); !f.Type.Equals(t) {
			us.UpdateColumn([]string{f.Name}, table.ColumnUpdate{FieldType: iceberg.Optional[iceberg.Type]{Val: t, Valid: true}})
		}
	}
	for _, c := range cols {
		if !keep[c.ID] {
			us.AddColumn([]string{c.Name}, c.Type.IcebergType(), "", false, nil)
		}
	}
	if err := us.Commit(); err != nil {
		return nil, nil, fmt.Errorf("evolve the iceberg schema: %w", err)
	}
	st, err := tx.StagedTable()
	if err != nil {
		return nil, nil, err
	}
	sc := st.Schema()
	out := make([]Column, len(cols))
	for i, c := range cols {
		if !keep[c.ID] {
			f, ok := sc.FindFieldByName(c.Name)
			if !ok {
				return nil, nil, fmt.Errorf("evolve the iceberg schema: column %q was not added", c.Name)
			}
			c.ID = f.ID
		}
		out[i] = c
	}
	return out, sc, nil
}

// shapeProperties are the table properties recording a mirror's columns,
// key and source.
func shapeProperties(cols []Column, key []string, full bool, source string, schemaLSN uint64, schemaSeq int64) (iceberg.Properties, error) {
	colsJSON, keyJSON, err := encodeColumns(cols, key)
	if err != nil {
		return nil, err
	}
	identity := "key"
	if full {
		identity = "full"
	}
	return iceberg.Properties{PropColumns: colsJSON, PropKey: keyJSON, PropIdentity: identity, PropSource: source,
		PropSchemaLSN: strconv.FormatUint(schemaLSN, 10), PropSchemaSeq: strconv.FormatInt(schemaSeq, 10)}, nil
}

// allSchemaChanges is the schemaSeq of a mirror whose columns follow every
// schema change of the transaction at its schemaLSN: a copy as of that
// LSN, or a mirror older than schemaSeq.
const allSchemaChanges = 1 << 40

// SchemaFollows says whether the mirror's columns follow the schema change
// message seq (1 the first) of the source transaction committed at lsn:
// the change is applied already.
func (m *Mirror) SchemaFollows(lsn uint64, seq int) bool {
	at := m.schemaLSN.Load()
	return lsn < at || lsn == at && int64(seq) <= m.schemaSeq.Load()
}

// SchemaLSN is the commit LSN of the last source schema change the mirror
// follows; changes at or before it are applied already.
func (m *Mirror) SchemaLSN() uint64 { return m.schemaLSN.Load() }

// KeyNames returns the names of the mirror's key columns.
func (m *Mirror) KeyNames() []string {
	out := make([]string, len(m.Key))
	for i, k := range m.Key {
		out[i] = m.Columns[k].Name
	}
	return out
}

// Reshape changes the mirror's columns to cols (same rows; see above) as
// of the source schema change committed at lsn, its seq'th message. conn is the apply loop's
// DuckDB connection, outside a transaction; the apply loop calls it
// between source transactions, after its last Sync.
func (s *Set) Reshape(ctx context.Context, conn *gosql.Conn, m *Mirror, cols []Column, key []string, source string, lsn uint64, seq int) error {
	m.maint.Lock()
	defer m.maint.Unlock()
	if m.dirty.Load() {
		if err := m.flushLocked(ctx, conn); err != nil {
			return fmt.Errorf("flush before the schema change: %w", err)
		}
	}
	m.mu.Lock()
	tbl := m.tbl
	m.mu.Unlock()
	tx := tbl.NewTransaction()
	cols, _, err := evolveSchema(tx, tbl.Schema(), cols)
	if err != nil {
		return err
	}
	keyIdx, err := keyIndexes(cols, key)
	if err != nil {
		return err
	}
	props, err := shapeProperties(cols, key, m.Full, source, lsn, int64(seq))
	if err != nil {
		return err
	}
	if err := tx.SetProperties(props); err != nil {
		return err
	}
	newTbl, err := tx.Commit(ctx)
	if err != nil {
		return fmt.Errorf("commit the schema change: %w", err)
	}
	m.mu.Lock()
	files, delFiles := m.files, m.delFiles
	m.tbl = newTbl
	m.mu.Unlock()
	if err := s.rebuild(ctx, conn, m, cols, keyIdx, files, delFiles); err != nil {
		return fmt.Errorf("%w: %v", ErrInconsistent, err)
	}
	m.Source = source
	m.schemaLSN.Store(lsn)
	m.schemaSeq.Store(int64(seq))
	return nil
}

// rebuild gives the mirror new, empty DuckDB tables for cols and points
// its view at files: the objects get a new suffix, so that the view is
// replaced in one statement and queries planned on the old one finish.
// The set's shape version is odd while a view and the mirror's columns
// change: a query planned on one shape and bound by DuckDB on the other
// fails, and is planned and run again (ShapeVersion).
func (s *Set) rebuild(ctx context.Context, conn *gosql.Conn, m *Mirror, cols []Column, key []int, files, delFiles []string) error {
	next := &Mirror{Database: m.Database, Namespace: m.Namespace, Name: m.Name, Columns: cols, Key: key, Full: m.Full,
		id: mirrorSeq.Add(1), files: files, delFiles: delFiles}
	old := &Mirror{Database: m.Database, id: m.id, gen: m.gen, sgen: m.sgen} // names the old objects
	s.shapes.Add(1)
	m.viewChanging()
	defer m.viewChanging()
	err := next.createDuckObjects(ctx, conn)
	if err == nil {
		m.Columns, m.Key = cols, key
		m.id, m.gen, m.sgen, m.staged = next.id, 0, 0, 0
		m.setForm(next.form)
		m.viewChanging()
		m.tailKeys = nil
		m.setSpilled(nil)
		m.mu.Lock()
		m.files, m.delFiles = files, delFiles
		m.mu.Unlock()
	}
	s.shapes.Add(1)
	if err != nil {
		return err
	}
	for _, t := range []string{old.part("files"), old.part("tail")} {
		conn.ExecContext(ctx, "DROP VIEW IF EXISTS "+t)
	}
	for _, t := range []string{old.tail(), old.fdel(), old.trunc(), old.pdel(), old.stage(), old.kstage()} {
		conn.ExecContext(ctx, "DROP TABLE IF EXISTS "+t)
	}
	m.tailRows.Store(0)
	m.dirty.Store(false)
	return nil
}

// ShapeVersion changes whenever a mirror's columns and view change, and is
// odd while they do: a query that failed in DuckDB after a change of it
// may have been planned on the columns of one shape and bound on the view
// of another, and is worth planning again.
func (s *Set) ShapeVersion() uint64 { return s.shapes.Load() }

// Copy is a new copy of a mirror's source, written to a data file by
// PrepareCopy (beside the apply loop, which goes on) and swapped in by
// CommitCopy.
type Copy struct {
	Cols   []Column // the source's columns, with the field IDs they get
	Key    []string
	Full   bool
	Source string // quoted qualified name of the source
	LSN    uint64 // commits at or before it are in the copy
	Rows   int64
	paths  []string // the data files (none when the copy is empty)
	schema int      // the Iceberg schema ID the field IDs were taken from
}

// Discard removes the data file of a copy that will not be committed.
func (c *Copy) Discard() {
	if c != nil {
		for _, p := range c.paths {
			os.Remove(p)
		}
	}
}

// PrepareCopy writes a new copy of the mirror's source (the rows of cols
// that fill reads, as of lsn) to a data file, with the field IDs the
// columns get (see MatchColumns).
func (s *Set) PrepareCopy(ctx context.Context, m *Mirror, cols []Column, key []string, full bool, source string, lsn uint64, fill func(*CopyWriter) error) (*Copy, error) {
	m.mu.Lock()
	tbl := m.tbl
	m.mu.Unlock()
	// The field IDs the commit will give new columns: from a transaction
	// of the current metadata, staged and dropped.
	cols, _, err := evolveSchema(tbl.NewTransaction(), tbl.Schema(), cols)
	if err != nil {
		return nil, err
	}
	if _, err := keyIndexes(cols, key); err != nil {
		return nil, err
	}
	cols, paths, n, err := copyInto(ctx, s.Duck, cols, localPath(joinLoc(tbl.Location(), "data")), fill)
	if err != nil {
		return nil, fmt.Errorf("write the new copy: %w", err)
	}
	return &Copy{Cols: cols, Key: key, Full: full, Source: source, LSN: lsn, Rows: n, paths: paths, schema: tbl.Schema().ID}, nil
}

// CommitCopy swaps a prepared copy in: one Iceberg commit replaces every
// data and delete file with it (and evolves the schema), then the mirror's
// DuckDB objects are rebuilt empty over it. Changes committed after the
// copy's LSN follow as usual. It also repairs a broken mirror. conn is the
// apply loop's connection, between transactions.
func (s *Set) CommitCopy(ctx context.Context, conn *gosql.Conn, m *Mirror, c *Copy) error {
	m.maint.Lock()
	defer m.maint.Unlock()
	m.mu.Lock()
	tbl := m.tbl
	m.mu.Unlock()
	fail := func(err error) error {
		c.Discard()
		return err
	}
	if tbl.Schema().ID != c.schema {
		return fail(fmt.Errorf("the schema of %s.%s changed while its source was copied", m.Namespace, m.Name))
	}
	tx := tbl.NewTransaction()
	cols, schema, err := evolveSchema(tx, tbl.Schema(), c.Cols)
	if err != nil {
		return fail(err)
	}
	keyIdx, err := keyIndexes(cols, c.Key)
	if err != nil {
		return fail(err)
	}
	var added []iceberg.DataFile
	var newFiles []string
	for _, p := range c.paths {
		df, err := newDataFile(ctx, m.Database, tbl, schema, p)
		if err != nil {
			return fail(err)
		}
		added, newFiles = append(added, df), append(newFiles, p)
	}
	oldData, oldDeletes, err := currentFiles(ctx, tbl)
	if err != nil {
		return fail(err)
	}
	snap := iceberg.Properties{SummaryLSN: strconv.FormatUint(c.LSN, 10), "mooncake.operation": "resync"}
	switch {
	case len(oldData) > 0:
		err = tx.ReplaceFiles(ctx, oldData, added, oldDeletes, snap)
	case len(added) > 0:
		err = tx.AddDataFiles(ctx, added, snap)
	}
	if err != nil {
		return fail(fmt.Errorf("stage the new copy: %w", err))
	}
	props, err := shapeProperties(cols, c.Key, c.Full, c.Source, c.LSN, allSchemaChanges)
	if err != nil {
		return fail(err)
	}
	props[PropNumeric] = "decimal"
	if err := tx.SetProperties(props); err != nil {
		return fail(err)
	}
	if err := tx.RemoveProperties([]string{PropBroken}); err != nil {
		return fail(err)
	}
	newTbl, err := tx.Commit(ctx)
	if err != nil {
		return fail(fmt.Errorf("commit the new copy: %w", err))
	}
	spilled := m.Spilled()
	if err := m.setTable(ctx, newTbl); err != nil {
		return fmt.Errorf("%w: %v", ErrInconsistent, err)
	}
	m.Full = c.Full
	if err := s.rebuild(ctx, conn, m, cols, keyIdx, newFiles, nil); err != nil {
		return fmt.Errorf("%w: %v", ErrInconsistent, err)
	}
	for _, f := range spilled {
		removeAfterReads(f)
	}
	m.mu.Lock()
	m.ranges = fileRanges(schema, cols, added)
	m.failed = nil
	m.mu.Unlock()
	m.decimals.Store(true)
	m.Source = c.Source
	m.fileRows.Store(c.Rows)
	m.flushedLSN.Store(c.LSN)
	m.appliedLSN.Store(c.LSN)
	m.schemaLSN.Store(c.LSN)
	m.schemaSeq.Store(allSchemaChanges)
	return nil
}

// BeginCatchUp marks the mirror as behind the stream from the source
// commit at lsn on, while a new copy of its source is made: a reader that
// committed at or after lsn waits for EndCatchUp (CatchUp).
func (m *Mirror) BeginCatchUp(lsn uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.catchCh == nil {
		m.catchCh, m.catchFrom = make(chan struct{}), lsn
	}
}

// EndCatchUp marks the mirror as following the stream again.
func (m *Mirror) EndCatchUp() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.catchCh != nil {
		close(m.catchCh)
		m.catchCh = nil
	}
}

// CatchUp returns, while the mirror is behind the stream, the commit LSN
// from which it is, and a channel closed when it follows again.
func (m *Mirror) CatchUp() (uint64, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.catchFrom, m.catchCh
}

// MatchColumns gives the columns of a new copy of the source (cols, with
// their attnums) the field IDs of the mirror's columns they continue: same
// attnum (or, for columns of older mirrors without one, same name). A
// column whose type changed keeps its field too, with the new type: the
// copy replaces every data file in the same commit, so no file of the
// current snapshot holds the old type, while older snapshots keep their
// own schema. The field order stays the source's column order. The other
// columns get 0: new fields.
func (m *Mirror) MatchColumns(cols []Column) []Column {
	out := make([]Column, len(cols))
	for i, c := range cols {
		c.ID = 0
		for _, o := range m.Columns {
			if o.AttNum != 0 && o.AttNum == c.AttNum || o.AttNum == 0 && o.Name == c.Name {
				c.ID = o.ID
				break
			}
		}
		out[i] = c
	}
	return out
}

// Promotes reports whether a column stored as from holds values of to
// through an Iceberg type promotion (int to long, float to double): the
// values of a rewrite that casts from to to are the old values, widened.
func Promotes(from, to ColumnType) bool {
	ft, tt := from.IcebergType(), to.IcebergType()
	return ft.Equals(iceberg.PrimitiveTypes.Int32) && tt.Equals(iceberg.PrimitiveTypes.Int64) ||
		ft.Equals(iceberg.PrimitiveTypes.Float32) && tt.Equals(iceberg.PrimitiveTypes.Float64)
}

// Widens reports whether a column stored as from can hold values of to by
// Iceberg schema evolution, without rewriting data files: the same
// storage, or a promotion Iceberg allows (int to long, float to double,
// decimal(p,s) to decimal(q,s) with q > p) that DuckDB's reads widen too.
func Widens(from, to ColumnType) bool {
	if from.Kind == to.Kind && from.DuckDBType() == to.DuckDBType() && from.IcebergType().Equals(to.IcebergType()) {
		return true
	}
	if from.Kind == KindDecimal && to.Kind == KindDecimal {
		// numeric(p,s) to numeric(q,s), q > p: the same values, which
		// PostgreSQL does not rewrite; Iceberg promotes decimal(p,s) to
		// decimal(q,s), and reads cast the files' DECIMALs.
		return from.Scale == to.Scale && from.Precision <= to.Precision
	}
	ft, tt := from.IcebergType(), to.IcebergType()
	switch {
	case ft.Equals(iceberg.PrimitiveTypes.Int32) && tt.Equals(iceberg.PrimitiveTypes.Int64):
	case ft.Equals(iceberg.PrimitiveTypes.Float32) && tt.Equals(iceberg.PrimitiveTypes.Float64):
	case ft.Equals(iceberg.PrimitiveTypes.String) && tt.Equals(iceberg.PrimitiveTypes.String):
		// Text of either type: varchar(n) to varchar(m) or text, and
		// numeric precision changes, keep the value's text.
		return from.Kind == to.Kind
	default:
		return false
	}
	return true
}

// Break marks the mirror broken for good, with the reason: it survives
// restarts (a table property), reads fail with XX001 and the reason, and
// the replication stream skips the mirror until Replace repairs it.
func (s *Set) Break(ctx context.Context, m *Mirror, reason string) error {
	m.mu.Lock()
	m.failed = brokenError(m, reason)
	m.mu.Unlock()
	metrics.Default.Error(metrics.ErrMirrorBroken)
	if err := s.setProperties(ctx, m, iceberg.Properties{PropBroken: reason}); err != nil {
		return fmt.Errorf("record that %s.%s is broken: %w", m.Namespace, m.Name, err)
	}
	return nil
}

// SetForeignTable records the OID of the mirror's foreign table, and the
// create_table transaction (PropPending) still to commit.
func (s *Set) SetForeignTable(ctx context.Context, m *Mirror, oid uint32, pending string) error {
	if err := s.setProperties(ctx, m, iceberg.Properties{PropForeign: strconv.FormatUint(uint64(oid), 10), PropPending: pending}); err != nil {
		return err
	}
	m.mu.Lock()
	m.pending = pending
	m.mu.Unlock()
	m.ForeignOID = oid
	return nil
}

// Pending is the create_table transaction of the mirror not yet known to
// have committed ("" once it has).
func (m *Mirror) Pending() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pending
}

// Committed records that the mirror's create_table transaction committed.
func (s *Set) Committed(ctx context.Context, m *Mirror) error {
	if err := s.setProperties(ctx, m, iceberg.Properties{PropPending: ""}); err != nil {
		return err
	}
	m.mu.Lock()
	m.pending = ""
	m.mu.Unlock()
	return nil
}

// setProperties commits table properties of the mirror's Iceberg table.
func (s *Set) setProperties(ctx context.Context, m *Mirror, props iceberg.Properties) error {
	m.maint.Lock()
	defer m.maint.Unlock()
	m.mu.Lock()
	tbl := m.tbl
	m.mu.Unlock()
	tx := tbl.NewTransaction()
	if err := tx.SetProperties(props); err != nil {
		return err
	}
	newTbl, err := tx.Commit(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.tbl = newTbl
	m.mu.Unlock()
	return nil
}
