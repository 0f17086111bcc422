package catalog

import (
	"context"
	gosql "database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/pgmooncake/mooncake/sidecar/metrics"
)

// Maintenance thresholds: frequent flushes make small files, which a
// compaction merges into one (applying the position deletes); snapshots and
// the files only they reference are kept for snapshotRetention so queries
// that started on them can finish.
const (
	compactFiles       = 16
	compactDeleteFiles = 8
	snapshotRetention  = 5 * time.Minute
	orphanAge          = time.Hour
)

// Busy reports whether a compaction or flush of the mirror is running.
func (m *Mirror) Busy() bool {
	if m.maint.TryLock() {
		m.maint.Unlock()
		return false
	}
	return true
}

// NeedsCompaction reports whether the mirror has enough small files, or
// delete files, to be worth compacting.
func (m *Mirror) NeedsCompaction() bool {
	if m.Full {
		return false
	}
	data, deletes := m.FileCounts()
	return data >= compactFiles || deletes >= compactDeleteFiles
}

// Compact rewrites the mirror's data files, minus the rows their position
// deletes remove, into one file, and commits that as one Iceberg snapshot
// replacing them. Replication goes on meanwhile: the mirror's flushes wait
// (its changes stay visible in the tail), readers switch to the new file
// atomically with the view. Then it expires old snapshots and removes
// orphaned files. It returns whether it compacted.
func (m *Mirror) Compact(ctx context.Context, duck *gosql.DB) (bool, error) {
	start := time.Now()
	done, err := m.compact(ctx, duck)
	if err != nil && ctx.Err() == nil {
		metrics.Default.Error(metrics.ErrCompaction)
	}
	if done {
		metrics.Default.Compacted(m.Database, m.Namespace, m.Name, time.Since(start))
	}
	return done, err
}

func (m *Mirror) compact(ctx context.Context, duck *gosql.DB) (bool, error) {
	if !m.maint.TryLock() {
		return false, nil
	}
	defer m.maint.Unlock()
	if m.dropped.Load() {
		return false, nil
	}

	m.mu.Lock()
	tbl, files, delFiles := m.tbl, m.files, m.delFiles
	m.mu.Unlock()
	// Mirrors with Full identity record deletes by file position while they
	// are applied, so their files are not rewritten under them.
	if m.Full || (len(files) < 2 && len(delFiles) == 0) {
		return false, m.expire(ctx)
	}
	conn, err := duck.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()

	q := "SELECT " + m.fileColumns("p") + " FROM " + m.readFiles(files) + " p"
	if len(delFiles) > 0 {
		q += " WHERE NOT EXISTS (SELECT 1 FROM " + m.delRead(delFiles) +
			" d WHERE d.file_path = p.filename AND d.pos = p.file_row_number)"
	}
	path := m.newDataPath("data")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, err
	}
	var n int64
	if err := conn.QueryRowContext(ctx, "COPY ("+q+") TO "+QuoteLiteral(path)+" ("+parquetOptions+", FIELD_IDS "+m.fieldIDs()+")").Scan(&n); err != nil {
		os.Remove(path)
		return false, fmt.Errorf("write compacted file: %w", err)
	}
	oldData, oldDeletes, err := currentFiles(ctx, tbl)
	if err != nil {
		os.Remove(path)
		return false, err
	}
	var added []iceberg.DataFile
	var newFiles []string
	if n > 0 {
		df, err := m.dataFile(ctx, tbl, path)
		if err != nil {
			os.Remove(path)
			return false, err
		}
		added, newFiles = []iceberg.DataFile{df}, []string{path}
	} else {
		os.Remove(path)
	}
	tx := tbl.NewTransaction()
	// The snapshot holds the same source changes as the one it replaces.
	props := iceberg.Properties{SummaryLSN: strconv.FormatUint(m.flushedLSN.Load(), 10), "mooncake.operation": "compaction"}
	if err := tx.ReplaceFiles(ctx, oldData, added, oldDeletes, props); err != nil {
		os.Remove(path)
		return false, fmt.Errorf("stage compaction: %w", err)
	}
	newTbl, err := tx.Commit(ctx)
	if err != nil {
		os.Remove(path)
		return false, fmt.Errorf("commit compaction: %w", err)
	}
	// Only the files part changes: the apply loop keeps changing the
	// view's form and the tail part meanwhile.
	m.viewChanging()
	_, err = conn.ExecContext(ctx, m.filesDDL(newFiles, nil))
	m.viewChanging()
	if err != nil {
		return false, fmt.Errorf("%w: swap view after compaction: %v", ErrInconsistent, err)
	}
	viewSwaps.Add(1)
	m.mu.Lock()
	m.tbl, m.files, m.delFiles = newTbl, newFiles, nil
	m.mu.Unlock()
	m.fileRows.Store(n)
	return true, m.expire(ctx)
}

// expire drops snapshots older than snapshotRetention (keeping the current
// one) with the files only they reference, then files in the table's
// directory that no snapshot references and are older than orphanAge
// (leftovers of a crash between writing a file and committing it).
func (m *Mirror) expire(ctx context.Context) error {
	m.mu.Lock()
	tbl := m.tbl
	m.mu.Unlock()
	if len(tbl.Metadata().Snapshots()) > 1 {
		tx := tbl.NewTransaction()
		if err := tx.ExpireSnapshots(table.WithOlderThan(snapshotRetention), table.WithRetainLast(1)); err != nil {
			return fmt.Errorf("expire snapshots: %w", err)
		}
		newTbl, err := tx.Commit(ctx)
		if err != nil {
			return fmt.Errorf("commit snapshot expiry: %w", err)
		}
		m.mu.Lock()
		if m.tbl == tbl {
			m.tbl = newTbl
		}
		m.mu.Unlock()
		tbl = newTbl
	}
	if _, err := tbl.DeleteOrphanFiles(ctx, table.WithFilesOlderThan(orphanAge)); err != nil {
		return fmt.Errorf("remove orphan files: %w", err)
	}
	return nil
}
