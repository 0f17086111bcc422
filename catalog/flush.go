package catalog

import (
	"context"
	gosql "database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/pgmooncake/mooncake/sidecar/metrics"
)

// Field IDs of the position delete file columns, fixed by the Iceberg spec.
const (
	fieldIDDeleteFilePath = 2147483546
	fieldIDDeletePos      = 2147483545
)

// PropSyncLSN records the consistent point of the initial copy: changes
// committed at or before it are in the copy.
const PropSyncLSN = "mooncake.sync-lsn"

// ErrInconsistent wraps a failure after which the mirror's DuckDB state no
// longer matches Iceberg: the caller must reload the database's mirrors.
var ErrInconsistent = errors.New("mirror state must be reloaded")

// newDataPath is the local path of a new file of the mirror (for a table
// on an object store, the local copy of the object it becomes).
func (m *Mirror) newDataPath(kind string) string {
	m.mu.Lock()
	loc := m.tbl.Location()
	m.mu.Unlock()
	return localPath(joinLoc(loc, "data", kind+"-"+newID()+".parquet"))
}

// isRemote tells whether the mirror's table is on an object store.
func (m *Mirror) isRemote() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tbl != nil && IsRemote(m.tbl.Location())
}

// delRead reads position delete files as (file_path, pos), file_path the
// local path of the data file (a table on an object store names objects).
func (m *Mirror) delRead(delFiles []string) string {
	if !m.isRemote() {
		return "read_parquet(" + stringList(delFiles) + ")"
	}
	return "(SELECT " + localSQL("file_path") + " AS file_path, pos FROM read_parquet(" + stringList(delFiles) + "))"
}

// delPath is the file_path a position delete file records for a data
// file's local path expr.
func (m *Mirror) delPath(expr string) string {
	if !m.isRemote() {
		return expr
	}
	return remoteSQL(expr)
}

// fieldIDs is the FIELD_IDS option of a DuckDB COPY writing the mirror's
// columns under their own names.
func (m *Mirror) fieldIDs() string { return fieldIDs(m.Columns) }

func fieldIDs(cols []Column) string {
	var ids []string
	for _, c := range cols {
		ids = append(ids, QuoteLiteral(c.Name)+": "+strconv.Itoa(c.ID))
	}
	return "{" + strings.Join(ids, ", ") + "}"
}

const parquetOptions = "FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880"

// bulkParquetOptions are those of the data files of copies of sources,
// written while the rows arrive: zstd's fastest level, which on the
// copy's table of test/bench compresses in 0.7× the time of the default
// level for 2% more bytes (optimize_table rewrites files at the default
// level). Columnstore loads keep the default: on TestColumnstoreLoad's
// table the fastest level saved no measurable time and took 17% more bytes.
const bulkParquetOptions = "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1, ROW_GROUP_SIZE 122880"

// CompleteSync finishes a mirror's creation: it writes the rows of the
// initial copy (those fill reads, as of syncLSN, the last commit LSN
// contained in the copy) to Parquet files (one per reading session),
// commits them to Iceberg with the state ready and syncLSN, and opens the
// mirror to the apply loop.
func (s *Set) CompleteSync(ctx context.Context, m *Mirror, syncLSN uint64, fill func(*CopyWriter) error) (rows int64, err error) {
	defer func() {
		if err != nil {
			m.mu.Lock()
			m.failed = err
			m.mu.Unlock()
			close(m.ready)
		}
	}()
	conn, err := s.Duck.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()

	cols, paths, n, err := copyInto(ctx, s.Duck, m.Columns, filepath.Dir(m.newDataPath("data")), fill)
	if err != nil {
		return 0, fmt.Errorf("write initial copy: %w", err)
	}
	removeFiles := func() {
		for _, p := range paths {
			os.Remove(p)
		}
	}
	m.mu.Lock()
	tbl := m.tbl
	m.mu.Unlock()
	tx := tbl.NewTransaction()
	asText := !slices.Equal(cols, m.Columns)
	if asText {
		// Columns that hold NaN are stored as text: the schema says so
		// before the files are added.
		if _, _, err := evolveSchema(tx, tbl.Schema(), cols); err != nil {
			removeFiles()
			return 0, err
		}
		props, err := shapeProperties(cols, m.KeyNames(), m.Full, m.Source, m.SchemaLSN(), m.schemaSeq.Load())
		if err == nil {
			err = tx.SetProperties(props)
		}
		if err != nil {
			removeFiles()
			return 0, err
		}
	}
	props := iceberg.Properties{SummaryLSN: strconv.FormatUint(syncLSN, 10)}
	if len(paths) > 0 {
		st, err := tx.StagedTable()
		if err != nil {
			removeFiles()
			return 0, err
		}
		var dfs []iceberg.DataFile
		for _, p := range paths {
			df, err := newDataFile(ctx, m.Database, st.Table, st.Schema(), p)
			if err != nil {
				removeFiles()
				return 0, err
			}
			dfs = append(dfs, df)
		}
		if err := tx.AddDataFiles(ctx, dfs, props); err != nil {
			removeFiles()
			return 0, err
		}
		ranges := fileRanges(st.Schema(), cols, dfs)
		m.mu.Lock()
		m.ranges = ranges
		m.mu.Unlock()
	}
	if err := tx.SetProperties(iceberg.Properties{PropState: "ready", PropSyncLSN: strconv.FormatUint(syncLSN, 10)}); err != nil {
		return 0, err
	}
	newTbl, err := tx.Commit(ctx)
	if err != nil {
		removeFiles()
		return 0, fmt.Errorf("commit initial copy: %w", err)
	}
	if err := m.setTable(ctx, newTbl); err != nil {
		return 0, err
	}
	m.flushedLSN.Store(syncLSN)
	m.appliedLSN.Store(syncLSN)
	if asText {
		// New DuckDB objects of the new column types.
		if err := s.rebuild(ctx, conn, m, cols, m.Key, m.files, m.delFiles); err != nil {
			return 0, fmt.Errorf("%w: %v", ErrInconsistent, err)
		}
	} else {
		m.viewChanging()
		err := execTx(ctx, conn, m.viewDDL(m.files, m.delFiles, nil, nil, formFiles))
		m.viewChanging()
		if err != nil {
			return 0, fmt.Errorf("%w: %v", ErrInconsistent, err)
		}
		m.setForm(formFiles)
	}
	close(m.ready)
	return n, nil
}

// currentFiles returns the data files and the delete files of the table's
// current snapshot.
func currentFiles(ctx context.Context, tbl *table.Table) (data, deletes []iceberg.DataFile, err error) {
	if tbl.CurrentSnapshot() == nil {
		return nil, nil, nil
	}
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		return nil, nil, err
	}
	// A data file larger than the table's split size comes in several
	// tasks, one per part: take each file once.
	seen := map[string]bool{}
	for _, t := range tasks {
		if !seen[t.File.FilePath()] {
			seen[t.File.FilePath()] = true
			data = append(data, t.File)
		}
		for _, d := range t.DeleteFiles {
			if !seen[d.FilePath()] {
				seen[d.FilePath()] = true
				deletes = append(deletes, d)
			}
		}
	}
	return data, deletes, nil
}

// dataFile makes the Iceberg entry of a new data file of the mirror, at
// its local path (uploaded first for a table on an object store).
func (m *Mirror) dataFile(ctx context.Context, tbl *table.Table, path string) (iceberg.DataFile, error) {
	return newDataFile(ctx, m.Database, tbl, tbl.Schema(), path)
}

func newDataFile(ctx context.Context, database string, tbl *table.Table, schema *iceberg.Schema, path string) (iceberg.DataFile, error) {
	uris, err := publish(ctx, database, tbl.Location(), path)
	if err != nil {
		return nil, err
	}
	fs, err := tbl.FS(ctx)
	if err != nil {
		return nil, err
	}
	return table.FileToDataFile(ctx, fs, uris[0], schema, tbl.Spec(), 0, tbl.Properties())
}

// Flush commits the mirror's unflushed changes as one Iceberg snapshot: the
// tail as a new data file, keys deleted from older data files as a position
// delete file. Then, in one DuckDB transaction, the view moves to the new
// files and the tail and deleted keys are emptied. conn is the apply loop's
// connection, not inside a transaction.
func (m *Mirror) Flush(ctx context.Context, conn *gosql.Conn) error {
	if !m.dirty.Load() {
		return nil
	}
	if !m.maint.TryLock() {
		return nil // compacting: the changes wait in the tail
	}
	defer m.maint.Unlock()
	start := time.Now()
	if err := m.flushLocked(ctx, conn); err != nil {
		m.flushFails++
		metrics.Default.Error(metrics.ErrFlush)
		return err
	}
	m.flushFails = 0
	if !m.dropped.Load() {
		metrics.Default.Flushed(m.Database, m.Namespace, m.Name, time.Since(start))
	}
	return nil
}

// FlushFailed is how many flushes of the mirror failed in a row.
func (m *Mirror) FlushFailed() int { return m.flushFails }

// flushLocked is Flush for a caller holding the maint lock.
func (m *Mirror) flushLocked(ctx context.Context, conn *gosql.Conn) error {
	if m.dropped.Load() {
		return nil
	}
	lsn := m.appliedLSN.Load()
	m.mu.Lock()
	tbl, files, delFiles := m.tbl, m.files, m.delFiles
	m.mu.Unlock()

	var truncated bool
	if err := conn.QueryRowContext(ctx, "SELECT count(*) > 0 FROM "+m.trunc()).Scan(&truncated); err != nil {
		return err
	}
	var written []string
	cleanup := func() {
		for _, p := range written {
			os.Remove(p)
		}
	}
	if err := os.MkdirAll(localPath(joinLoc(tbl.Location(), "data")), 0o700); err != nil {
		return err
	}

	// Data file from the tail.
	var out []string
	for i, c := range m.Columns {
		out = append(out, colName("c", i)+" AS "+QuoteIdent(c.Name))
	}
	dataPath := m.newDataPath("data")
	var nData int64
	if err := conn.QueryRowContext(ctx, "COPY (SELECT "+strings.Join(out, ", ")+" FROM "+m.tail()+") TO "+
		QuoteLiteral(dataPath)+" ("+parquetOptions+", FIELD_IDS "+m.fieldIDs()+")").Scan(&nData); err != nil {
		return fmt.Errorf("write data file: %w", err)
	}
	written = append(written, dataPath)

	// Spill files go to Iceberg as they are, except those with deleted
	// rows, which are rewritten without them.
	spilled, spillRows, rewritten, err := m.finalSpills(ctx, conn)
	if err != nil {
		cleanup()
		return err
	}
	written = append(written, rewritten...)

	// Position deletes for keys deleted from the current data files.
	var nDel int64
	delPath := m.newDataPath("delete")
	if len(files) > 0 && m.Full && !truncated {
		if err := conn.QueryRowContext(ctx, "COPY (SELECT "+m.delPath("file_path")+" AS file_path, pos FROM "+m.pdel()+" WHERE file_path IN (SELECT unnest("+
			stringList(files)+")) ORDER BY file_path, pos) TO "+
			QuoteLiteral(delPath)+" ("+parquetOptions+", FIELD_IDS {'file_path': "+strconv.Itoa(fieldIDDeleteFilePath)+
			", 'pos': "+strconv.Itoa(fieldIDDeletePos)+"})").Scan(&nDel); err != nil {
			cleanup()
			return fmt.Errorf("write delete file: %w", err)
		}
		written = append(written, delPath)
	} else if len(files) > 0 && len(m.Key) > 0 && !truncated {
		var eq []string
		for i, k := range m.Key {
			eq = append(eq, "f."+colName("k", i)+" = p."+m.fileCol(k))
		}
		q := "SELECT " + m.delPath("p.filename") + " AS file_path, p.file_row_number AS pos FROM " + m.readFiles(files) +
			" p WHERE EXISTS (SELECT 1 FROM " + m.fdel() + " f WHERE " +
			strings.Join(eq, " AND ") + ")"
		if len(delFiles) > 0 {
			q += " AND NOT EXISTS (SELECT 1 FROM " + m.delRead(delFiles) +
				" d WHERE d.file_path = p.filename AND d.pos = p.file_row_number)"
		}
		q += " ORDER BY file_path, pos"
		if err := conn.QueryRowContext(ctx, "COPY ("+q+") TO "+QuoteLiteral(delPath)+" ("+parquetOptions+
			", FIELD_IDS {'file_path': "+strconv.Itoa(fieldIDDeleteFilePath)+", 'pos': "+strconv.Itoa(fieldIDDeletePos)+"})").Scan(&nDel); err != nil {
			cleanup()
			return fmt.Errorf("write delete file: %w", err)
		}
		written = append(written, delPath)
	}

	tx := tbl.NewTransaction()
	props := iceberg.Properties{SummaryLSN: strconv.FormatUint(lsn, 10)}
	newFiles, newDelFiles := files, delFiles
	var added []iceberg.DataFile
	staged := false // whether the transaction changes the table at all
	if nData > 0 {
		df, err := m.dataFile(ctx, tbl, dataPath)
		if err != nil {
			cleanup()
			return err
		}
		added = append(added, df)
		newFiles = append(append([]string(nil), files...), dataPath)
	}
	for _, path := range spilled {
		df, err := m.dataFile(ctx, tbl, path)
		if err != nil {
			cleanup()
			return err
		}
		added = append(added, df)
		newFiles = append(append([]string(nil), newFiles...), path)
	}
	switch {
	case truncated:
		// Every current file goes; only the tail written since stays.
		oldData, oldDeletes, err := currentFiles(ctx, tbl)
		if err != nil {
			cleanup()
			return err
		}
		newFiles, newDelFiles = nil, nil
		if nData > 0 {
			newFiles = []string{dataPath}
		}
		newFiles = append(newFiles, spilled...)
		if len(oldData) > 0 {
			err, staged = tx.ReplaceFiles(ctx, oldData, added, oldDeletes, props), true
		} else if len(added) > 0 {
			err, staged = tx.AddDataFiles(ctx, added, props), true
		}
		if err != nil {
			cleanup()
			return fmt.Errorf("stage iceberg snapshot: %w", err)
		}
	case len(added) > 0 || nDel > 0:
		staged = true
		rd := tx.NewRowDelta(props)
		rd.AddRows(added...)
		if nDel > 0 {
			fi, err := os.Stat(delPath)
			if err != nil {
				cleanup()
				return err
			}
			uris, err := publish(ctx, m.Database, tbl.Location(), delPath)
			if err != nil {
				cleanup()
				return err
			}
			b, err := iceberg.NewDataFileBuilder(*iceberg.UnpartitionedSpec, iceberg.EntryContentPosDeletes, uris[0],
				iceberg.ParquetFile, nil, nil, nil, nDel, fi.Size())
			if err != nil {
				cleanup()
				return err
			}
			rd.AddDeletes(b.Build())
			newDelFiles = append(append([]string(nil), delFiles...), delPath)
		}
		if err := rd.Commit(ctx); err != nil {
			cleanup()
			return fmt.Errorf("stage iceberg snapshot: %w", err)
		}
	}
	// Changes that cancelled out (a row inserted and deleted again) leave
	// nothing to commit; replaying them after a restart is harmless.
	newTbl := tbl
	if staged {
		var err error
		if newTbl, err = tx.Commit(ctx); err != nil {
			cleanup()
			return fmt.Errorf("commit iceberg snapshot: %w", err)
		}
	}
	if nData == 0 {
		os.Remove(dataPath)
	}
	if nDel == 0 && len(written) > 1 {
		os.Remove(delPath)
	}

	// Swap the view to the new files and a new, empty tail atomically for
	// readers; then drop the old tail.
	oldTail, oldFdel, oldTrunc, oldPdel := m.tail(), m.fdel(), m.trunc(), m.pdel()
	swap := m.generationDDL(m.gen + 1)
	m.gen++ // the view reads the new generation's tables
	m.viewChanging()
	targets := m.deleteTargets(ctx, conn, newDelFiles)
	err = execTx(ctx, conn, append(swap, m.viewDDL(newFiles, newDelFiles, targets, nil, formFiles)...))
	m.viewChanging()
	if err != nil {
		return fmt.Errorf("%w: swap view after commit: %v", ErrInconsistent, err)
	}
	m.setForm(formFiles)
	for _, t := range []string{oldTail, oldFdel, oldTrunc, oldPdel} {
		_, err := conn.ExecContext(ctx, "DROP TABLE "+t)
		catalogChanged()
		if err != nil {
			return fmt.Errorf("%w: drop old tail: %v", ErrInconsistent, err)
		}
	}
	// Deletes leave the ranges wider than need be, never narrower.
	ranges := fileRanges(tbl.Schema(), m.Columns, added)
	m.mu.Lock()
	switch {
	case !truncated && len(added) == 0:
		ranges = m.ranges
	case !truncated:
		ranges = mergeRanges(m.ranges, ranges)
	}
	replaced := m.spilled
	m.tbl, m.files, m.delFiles, m.spilled, m.ranges = newTbl, newFiles, newDelFiles, nil, ranges
	m.mu.Unlock()
	for _, f := range replaced {
		if !slices.Contains(spilled, f) {
			removeAfterReads(f) // rewritten without its deleted rows
		}
	}
	if truncated {
		m.fileRows.Store(nData + spillRows)
	} else {
		m.fileRows.Add(nData + spillRows)
	}
	m.tailRows.Store(0)
	m.tailKeys = nil
	m.flushedLSN.Store(lsn)
	m.dirty.Store(false)
	return nil
}

// finalSpills returns the spill files to add to Iceberg and their row count.
// Spill files with rows deleted (by position, in pdel) are replaced by one
// file holding their remaining rows; rewritten lists the files written.
func (m *Mirror) finalSpills(ctx context.Context, conn *gosql.Conn) (files []string, rows int64, rewritten []string, err error) {
	spilled := m.Spilled()
	if len(spilled) == 0 {
		return nil, 0, nil, nil
	}
	rs, err := conn.QueryContext(ctx, "SELECT DISTINCT file_path FROM "+m.pdel()+" WHERE file_path IN (SELECT unnest("+stringList(spilled)+"))")
	if err != nil {
		return nil, 0, nil, err
	}
	hit := map[string]bool{}
	for rs.Next() {
		var f string
		if err := rs.Scan(&f); err != nil {
			rs.Close()
			return nil, 0, nil, err
		}
		hit[f] = true
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return nil, 0, nil, err
	}
	var redo []string
	for _, f := range spilled {
		if hit[f] {
			redo = append(redo, f)
		} else {
			files = append(files, f)
		}
	}
	if len(redo) > 0 {
		path := m.newDataPath("data")
		var n int64
		q := "COPY (SELECT " + m.fileColumns("p") + " FROM " + m.readFiles(redo) +
			" p WHERE NOT EXISTS (SELECT 1 FROM " + m.pdel() +
			" x WHERE x.file_path = p.filename AND x.pos = p.file_row_number)) TO " + QuoteLiteral(path) +
			" (" + parquetOptions + ", FIELD_IDS " + m.fieldIDs() + ")"
		if err := conn.QueryRowContext(ctx, q).Scan(&n); err != nil {
			os.Remove(path)
			return nil, 0, nil, fmt.Errorf("rewrite spill files: %w", err)
		}
		if n > 0 {
			files = append(files, path)
			rewritten = []string{path}
		} else {
			os.Remove(path)
		}
	}
	for _, f := range files {
		var n int64
		if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM read_parquet("+QuoteLiteral(f)+")").Scan(&n); err != nil {
			return nil, 0, rewritten, err
		}
		rows += n
	}
	return files, rows, rewritten, nil
}
