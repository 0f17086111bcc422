package catalog

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

// Files of columnstore versions nobody commits. A write of a columnstore
// table (append, modify, truncate, alter) leaves files that only its new
// metadata file references: when its transaction rolls back, the backend
// removes them (CreatedFiles tells it which). The files of a transaction
// whose backend crashed, or whose removal failed, are removed by
// SweepColumnstore: every file under the table's data/ and metadata/
// directories that the committed metadata (its snapshots, their manifest
// lists, manifests and files, and the previous metadata files it logs)
// does not reference, and that is older than a grace period.

// CreatedFiles lists the files that the columnstore version newLoc has
// and its base does not: newLoc itself and, for each snapshot newLoc adds,
// its manifest list, its new manifests and the data and delete files
// they add. newLoc == base (nothing written) gives none.
func CreatedFiles(ctx context.Context, base, newLoc string) ([]string, error) {
	if newLoc == base || newLoc == "" {
		return nil, nil
	}
	baseTbl, _, err := LoadColumnstore(ctx, base)
	if err != nil {
		return nil, err
	}
	newTbl, _, err := LoadColumnstore(ctx, newLoc)
	if err != nil {
		return nil, err
	}
	out := []string{localPath(newLoc)}
	old := map[int64]bool{}
	for _, s := range baseTbl.Metadata().Snapshots() {
		old[s.SnapshotID] = true
	}
	oldManifests := map[string]bool{}
	fsys, err := newTbl.FS(ctx)
	if err != nil {
		return nil, err
	}
	if cur := baseTbl.CurrentSnapshot(); cur != nil {
		ms, err := cur.Manifests(fsys)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			oldManifests[m.FilePath()] = true
		}
	}
	for _, s := range newTbl.Metadata().Snapshots() {
		if old[s.SnapshotID] {
			continue
		}
		out = append(out, localPath(s.ManifestList))
		ms, err := s.Manifests(fsys)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if oldManifests[m.FilePath()] {
				continue
			}
			out = append(out, localPath(m.FilePath()))
			entries, err := m.FetchEntries(fsys, true)
			if err != nil {
				return nil, err
			}
			for _, e := range entries {
				if e.Status() == iceberg.EntryStatusADDED && e.SnapshotID() == s.SnapshotID {
					out = append(out, localPath(e.DataFile().FilePath()))
				}
			}
		}
	}
	return out, nil
}

// referencedFiles are the files the metadata file loc references, loc
// and the previous metadata files it logs included, as local paths.
func referencedFiles(ctx context.Context, tbl *table.Table, loc string) (map[string]bool, error) {
	files, err := tableFiles(ctx, tbl, loc)
	if err != nil {
		return nil, err
	}
	ref := make(map[string]bool, len(files))
	for _, f := range files {
		ref[filepath.Clean(localPath(f))] = true
	}
	return ref, nil
}

// tableFiles lists the files the metadata file loc references, as the
// metadata names them: every snapshot's data and delete files, manifests
// and manifest list, then the previous metadata files it logs, and loc
// itself last.
func tableFiles(ctx context.Context, tbl *table.Table, loc string) ([]string, error) {
	var out []string
	fsys, err := tbl.FS(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, s := range tbl.Metadata().Snapshots() {
		ms, err := s.Manifests(fsys)
		if err != nil {
			return nil, fmt.Errorf("read the manifests of snapshot %d: %w", s.SnapshotID, err)
		}
		for _, m := range ms {
			if seen[m.FilePath()] {
				continue
			}
			entries, err := m.FetchEntries(fsys, false)
			if err != nil {
				return nil, fmt.Errorf("read manifest %s: %w", m.FilePath(), err)
			}
			for _, e := range entries {
				add(e.DataFile().FilePath())
			}
			add(m.FilePath())
		}
		add(s.ManifestList)
	}
	for e := range tbl.Metadata().PreviousFiles() {
		add(e.MetadataFile)
	}
	add(loc)
	return out, nil
}

// SweepColumnstore removes the files in the data/ and metadata/
// directories (not in directories below them) of the columnstore table whose committed metadata file is
// loc that loc does not reference and that were last modified more than
// olderThan ago; it returns the paths removed. The caller holds the
// table's catalog row lock, so that no writer's files are in the making
// (the grace period is a second guard).
func SweepColumnstore(ctx context.Context, loc string, olderThan time.Duration) ([]string, error) {
	tbl, _, err := LoadColumnstore(ctx, loc)
	if err != nil {
		return nil, err
	}
	ref, err := referencedFiles(ctx, tbl, loc)
	if err != nil {
		return nil, err
	}
	cutoff := time.Now().Add(-olderThan)
	if IsRemote(tbl.Location()) {
		return sweepObjects(ctx, tbl.Location(), ref, cutoff)
	}
	root := filepath.Clean(localPath(tbl.Location()))
	var removed []string
	for _, dir := range []string{"data", "metadata"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) {
					return nil
				}
				return err
			}
			if d.IsDir() {
				if p == filepath.Join(root, dir) {
					return nil
				}
				// the table's files are not nested; a load's directory
				// (LoadCSV, LoadQuery) left by a sidecar killed meanwhile goes
				if info, err := d.Info(); err == nil && dir == "data" && strings.HasPrefix(d.Name(), "load-") && info.ModTime().Before(cutoff) {
					if os.RemoveAll(p) == nil {
						removed = append(removed, p)
					}
				}
				return filepath.SkipDir
			}
			if ref[filepath.Clean(p)] {
				return nil
			}
			info, err := d.Info()
			if err != nil || info.ModTime().After(cutoff) {
				return nil
			}
			if !strings.HasPrefix(p, root+string(filepath.Separator)) {
				return nil
			}
			if err := os.Remove(p); err == nil {
				removed = append(removed, p)
			}
			return nil
		})
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// sweepObjects is SweepColumnstore for a table on an object store: the
// objects directly under its data/ and metadata/ prefixes, and their
// local copies.
func sweepObjects(ctx context.Context, loc string, ref map[string]bool, cutoff time.Time) ([]string, error) {
	store, _, err := objectStore()
	if err != nil {
		return nil, err
	}
	db, _ := ctx.Value(databaseKey{}).(string)
	var removed []string
	for _, dir := range []string{"data", "metadata"} {
		prefix := joinLoc(loc, dir)
		list, err := store.List(ctx, db, prefix)
		if err != nil {
			return removed, err
		}
		var gone []string
		for _, o := range list {
			rest := strings.TrimPrefix(o.URI, prefix+"/")
			if rest == o.URI || strings.Contains(rest, "/") || ref[filepath.Clean(localPath(o.URI))] || o.Modified.After(cutoff) {
				continue // not directly in the directory, referenced, or too new
			}
			gone = append(gone, o.URI)
		}
		if len(gone) == 0 {
			continue
		}
		if err := store.Delete(ctx, db, gone); err != nil {
			return removed, err
		}
		for _, u := range gone {
			os.Remove(localPath(u))
		}
		removed = append(removed, gone...)
	}
	return removed, nil
}
