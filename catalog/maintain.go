package catalog

import (
	"cmp"
	"context"
	gosql "database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/pgmooncake/mooncake/sidecar/metrics"
)

// Maintenance thresholds: frequent flushes make small files, which a
// compaction merges into one (applying the position deletes).
const (
	compactFiles       = 16
	compactDeleteFiles = 8
	orphanAge          = time.Hour
)

// SnapshotRetention is how long snapshots replaced by later ones, and the
// files only they reference, are kept, so that queries and read pins that
// started on them can finish (the sidecar's --snapshot-retention).
var SnapshotRetention = 5 * time.Minute

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
//
// full rewrites every data file into one (optimize_table); otherwise the
// data files rewritten are those a delete file names and the smaller ones
// (tieredRewrite): a large file no delete names stays as it is, so a
// mirror taking inserts is not rewritten whole every few flushes.
func (m *Mirror) Compact(ctx context.Context, duck *gosql.DB, full bool) (bool, error) {
	start := time.Now()
	done, err := m.compact(ctx, duck, full)
	if err != nil && ctx.Err() == nil {
		metrics.Default.Error(metrics.ErrCompaction)
	}
	if done {
		metrics.Default.Compacted(m.Database, m.Namespace, m.Name, time.Since(start))
	}
	return done, err
}

func (m *Mirror) compact(ctx context.Context, duck *gosql.DB, full bool) (bool, error) {
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
	oldData, oldDeletes, err := currentFiles(ctx, tbl)
	if err != nil {
		return false, err
	}
	rewrite := files
	if !full {
		var targets map[string][]string
		if len(delFiles) > 0 {
			if targets = m.deleteTargets(ctx, conn, delFiles); targets == nil {
				targets = map[string][]string{"": files} // unknown: every file
			}
		}
		rewrite = tieredRewrite(files, oldData, targets)
		if len(rewrite) < 2 && len(delFiles) == 0 {
			return false, m.expire(ctx)
		}
		if len(rewrite) == 0 {
			rewrite = files // delete files naming none of them: they go all the same
		}
	}
	inRewrite := map[string]bool{}
	for _, f := range rewrite {
		inRewrite[f] = true
	}
	var replaced []iceberg.DataFile
	var kept []string
	var keptRows int64
	for _, df := range oldData {
		if inRewrite[localPath(df.FilePath())] {
			replaced = append(replaced, df)
		} else {
			kept = append(kept, localPath(df.FilePath()))
			keptRows += df.Count()
		}
	}
	if len(replaced) != len(rewrite) || len(kept)+len(rewrite) != len(files) {
		// the view's files are not the snapshot's: rewrite them all
		rewrite, replaced, kept, keptRows = files, oldData, nil, 0
	}

	q := "SELECT " + m.fileColumns("p") + " FROM " + m.readFiles(rewrite) + " p"
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
	var added []iceberg.DataFile
	newFiles := kept
	if n > 0 {
		df, err := m.dataFile(ctx, tbl, path)
		if err != nil {
			os.Remove(path)
			return false, err
		}
		added, newFiles = []iceberg.DataFile{df}, append(append([]string(nil), kept...), path)
	} else {
		os.Remove(path)
	}
	tx := tbl.NewTransaction()
	// The snapshot holds the same source changes as the one it replaces.
	props := iceberg.Properties{SummaryLSN: strconv.FormatUint(m.flushedLSN.Load(), 10), "mooncake.operation": "compaction"}
	if err := tx.ReplaceFiles(ctx, replaced, added, oldDeletes, props); err != nil {
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
	_, err = conn.ExecContext(ctx, m.filesDDL(newFiles, nil, nil))
	m.viewChanging()
	if err != nil {
		return false, fmt.Errorf("%w: swap view after compaction: %v", ErrInconsistent, err)
	}
	viewSwaps.Add(1)
	m.mu.Lock()
	m.tbl, m.files, m.delFiles = newTbl, newFiles, nil
	m.mu.Unlock()
	m.fileRows.Store(n + keptRows)
	return true, m.expire(ctx)
}

// expire drops snapshots older than SnapshotRetention (keeping the current
// one) with the files only they reference, then files in the table's
// directory that no snapshot references and are older than orphanAge
// (leftovers of a crash between writing a file and committing it).
func (m *Mirror) expire(ctx context.Context) error {
	m.mu.Lock()
	tbl := m.tbl
	m.mu.Unlock()
	if len(tbl.Metadata().Snapshots()) > 1 {
		tx := tbl.NewTransaction()
		cutoff := expiryCutoff(tbl.Metadata().Snapshots(), time.Now())
		if err := tx.ExpireSnapshots(table.WithOlderThan(time.Since(cutoff)), table.WithRetainLast(1)); err != nil {
			return fmt.Errorf("expire snapshots: %w", err)
		}
		newTbl, err := tx.Commit(ctx)
		if newTbl != nil {
			// The catalog took the new metadata, whatever became of the
			// removal of the files that follows it.
			m.mu.Lock()
			if m.tbl == tbl {
				m.tbl = newTbl
			}
			m.mu.Unlock()
			tbl = newTbl
		}
		if err = withoutMissingFiles(err); err != nil {
			return fmt.Errorf("commit snapshot expiry: %w", err)
		}
	}
	if _, err := tbl.DeleteOrphanFiles(ctx, table.WithFilesOlderThan(orphanAge)); err != nil {
		return fmt.Errorf("remove orphan files: %w", err)
	}
	return nil
}

// tieredRewrite is which of files (the view's data files; data, their
// Iceberg entries) a compaction that is not full rewrites: every file a
// delete file names (targets: delete file to data files; the delete files
// all go; a target "" means they are not known: every file), and of the
// others, from the largest down, every one from the first that is smaller
// than what the compaction writes besides it. A file stays as long as it
// is at least as large as the rest, so a row is rewritten about as many
// times as the table doubles, not at every compaction. With compactFiles
// files or more, at least the smaller half goes. The result keeps files'
// order.
func tieredRewrite(files []string, data []iceberg.DataFile, targets map[string][]string) []string {
	if _, unknown := targets[""]; unknown {
		return files
	}
	size := map[string]int64{}
	for _, df := range data {
		size[localPath(df.FilePath())] = df.FileSizeBytes()
	}
	rewrite := map[string]bool{}
	for _, fs := range targets {
		for _, f := range fs {
			rewrite[f] = true
		}
	}
	var besides int64 // bytes written besides the file considered
	var rest []string
	for _, f := range files {
		if _, known := size[f]; !known {
			rewrite[f] = true
		}
		besides += size[f]
		if !rewrite[f] {
			rest = append(rest, f)
		}
	}
	slices.SortStableFunc(rest, func(a, b string) int { return cmp.Compare(size[b], size[a]) })
	for i, f := range rest {
		besides -= size[f]
		if size[f] < besides {
			for _, g := range rest[i:] {
				rewrite[g] = true
			}
			break
		}
	}
	n := 0
	for _, f := range files {
		if rewrite[f] {
			n++
		}
	}
	if n < 2 && len(files) >= compactFiles {
		for _, g := range rest[len(rest)/2:] {
			rewrite[g] = true
		}
	}
	var out []string
	for _, f := range files {
		if rewrite[f] {
			out = append(out, f)
		}
	}
	return out
}

// readSlack covers the moments between a snapshot's creation and the swap
// of the DuckDB view to its files: a read that began then reads the files
// of the snapshot before.
const readSlack = 10 * time.Second

// expiryCutoff is the time before which snapshots (of snaps, the table's)
// expire: SnapshotRetention ago, or earlier when a query or read pin that
// began since may still read an older snapshot: the one current when the
// oldest of them began (a REPEATABLE READ transaction reads the moment of
// its first read for as long as it lasts, as the heap's snapshot holds
// back VACUUM).
func expiryCutoff(snaps []table.Snapshot, now time.Time) time.Time {
	cutoff := now.Add(-SnapshotRetention)
	since, ok := OldestRead()
	if !ok {
		return cutoff
	}
	since = since.Add(-readSlack)
	var read *table.Snapshot // the snapshot current at since
	for i := range snaps {
		if at := time.UnixMilli(snaps[i].TimestampMs); !at.After(since) && (read == nil || snaps[i].TimestampMs > read.TimestampMs) {
			read = &snaps[i]
		}
	}
	if read == nil {
		// older than every snapshot: keep them all
		for i := range snaps {
			if read == nil || snaps[i].TimestampMs < read.TimestampMs {
				read = &snaps[i]
			}
		}
	}
	if read != nil {
		// the snapshot read stays: its time is not older than the cutoff
		// (the expiry takes its cutoff a moment after this one)
		if at := time.UnixMilli(read.TimestampMs).Add(-time.Second); at.Before(cutoff) {
			cutoff = at
		}
	}
	return cutoff
}

// withoutMissingFiles is err without its parts that say a file to remove
// was not there: the removal that follows an expiry lists again the files
// a compaction replaced, which the expiry of the snapshots before that
// compaction removed already (manifests keep them as deleted entries).
func withoutMissingFiles(err error) error {
	switch e := err.(type) {
	case nil:
		return nil
	case interface{ Unwrap() []error }:
		var rest []error
		for _, part := range e.Unwrap() {
			if part = withoutMissingFiles(part); part != nil {
				rest = append(rest, part)
			}
		}
		return errors.Join(rest...)
	case interface{ Unwrap() error }:
		if errors.Is(err, fs.ErrNotExist) && withoutMissingFiles(e.Unwrap()) == nil {
			return nil
		}
		return err
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
