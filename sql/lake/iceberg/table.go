package iceberg

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	pathpkg "path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"golang.org/x/sync/errgroup"
)

// Table is an Iceberg table read from its metadata file.
type Table struct {
	MetadataFile  string // the metadata file read, a local path
	Location      string // the table's location as its metadata records it
	Dir           string // the local directory the table's files are read from
	FormatVersion int

	tbl  *table.Table
	meta table.Metadata
	// moved is set when the table's files were found under Dir rather
	// than at Location: paths under Location are read under Dir.
	moved bool

	// remote reads a table on an object store (OpenRemote); locals maps
	// the paths of its data and delete files to their local copies.
	remote Remote
	ctx    context.Context
	locals map[string]string
}

// Remote reaches a table on an object store: each file is fetched whole
// into a local copy.
type Remote interface {
	Local(ctx context.Context, url string) (string, error)
	// DataFile is a local copy of a Parquet data file of a known size for
	// DuckDB: it must hold what DuckDB reads when the query runs.
	DataFile(ctx context.Context, url string, size int64) (string, error)
	List(ctx context.Context, dir string) ([]string, error) // names of the files in dir
}

// OpenRemote is Open for a table on an object store: path is its
// directory's URL or its metadata file's. The metadata file is chosen as
// Open chooses it; the files are read through r. FetchFiles makes a scan's
// data and delete files local before ReadSQL.
func OpenRemote(ctx context.Context, path string, r Remote) (*Table, error) {
	path = strings.TrimRight(path, "/")
	metaFile := path
	if !isMetadataFile(pathpkg.Base(path)) {
		dir := path + "/metadata"
		names, err := r.List(ctx, dir)
		if err != nil {
			if names, err = r.List(ctx, path); err != nil {
				return nil, err
			}
			dir = path
		}
		if metaFile, err = pickRemoteMetadata(ctx, r, dir, names); err != nil {
			return nil, err
		}
	}
	t := &Table{MetadataFile: metaFile, remote: r, ctx: ctx, locals: map[string]string{}}
	if err := t.load(ctx, pathpkg.Base(pathpkg.Dir(pathpkg.Dir(metaFile)))); err != nil {
		return nil, err
	}
	t.Dir = t.Location
	return t, nil
}

// load reads the metadata file through the table's IO.
func (t *Table) load(ctx context.Context, name string) error {
	fsF := func(context.Context) (icebergio.IO, error) { return tableIO{t}, nil }
	tbl, err := table.NewFromLocation(ctx, table.Identifier{name}, t.MetadataFile, fsF, nil)
	if err != nil {
		return fmt.Errorf("read iceberg metadata %s: %w", t.MetadataFile, err)
	}
	t.tbl = tbl
	t.meta = tbl.Metadata()
	t.FormatVersion = t.meta.Version()
	t.Location = t.meta.Location()
	return nil
}

// pickRemoteMetadata chooses the metadata file among the names of a
// remote metadata directory, as findMetadataFile does locally.
func pickRemoteMetadata(ctx context.Context, r Remote, dir string, names []string) (string, error) {
	if slices.Contains(names, "version-hint.text") {
		local, err := r.Local(ctx, dir+"/version-hint.text")
		if err != nil {
			return "", err
		}
		hint, err := os.ReadFile(local)
		if err != nil {
			return "", err
		}
		h := strings.TrimSpace(string(hint))
		if h != "" && !strings.ContainsAny(h, `/\`) && isMetadataFile(h) && slices.Contains(names, h) {
			return dir + "/" + h, nil
		}
		n, err := strconv.ParseInt(h, 10, 64)
		if err != nil {
			return "", fmt.Errorf("%s: version-hint.text holds %q, neither a version number nor a metadata file", dir, h)
		}
		var found []string
		for _, name := range names {
			if metadataVersion(name) == n {
				found = append(found, name)
			}
		}
		if len(found) == 0 {
			return "", fmt.Errorf("%s: version-hint.text names version %d, which has no metadata file", dir, n)
		}
		return latestRemote(ctx, r, dir, found)
	}
	var best []string
	bestV := int64(-1)
	for _, name := range names {
		switch v := metadataVersion(name); {
		case v > bestV:
			best, bestV = []string{name}, v
		case v == bestV && v >= 0:
			best = append(best, name)
		}
	}
	if len(best) == 0 {
		return "", fmt.Errorf("%w: %s: no iceberg metadata file (vN.metadata.json or NNNNN-<uuid>.metadata.json)", fs.ErrNotExist, dir)
	}
	return latestRemote(ctx, r, dir, best)
}

func latestRemote(ctx context.Context, r Remote, dir string, names []string) (string, error) {
	if len(names) == 1 {
		return dir + "/" + names[0], nil
	}
	locals := make([]string, len(names))
	byLocal := map[string]string{}
	for i, n := range names {
		l, err := r.Local(ctx, dir+"/"+n)
		if err != nil {
			return "", err
		}
		locals[i], byLocal[l] = l, dir+"/"+n
	}
	best, err := latestOf(locals)
	if err != nil {
		return "", err
	}
	return byLocal[best], nil
}

// FetchFiles makes the data and delete files of a scan of a remote table
// local, for ReadSQL: data files through Remote.DataFile, delete files
// whole.
func (t *Table) FetchFiles(ctx context.Context, s *Scan) error {
	if t.remote == nil {
		return nil
	}
	type file struct {
		path string
		size int64 // -1: unknown
	}
	var files []file
	seen := map[string]bool{}
	add := func(p string, size int64) {
		if !seen[p] {
			seen[p] = true
			files = append(files, file{p, size})
		}
	}
	for _, df := range s.Files {
		add(df.Path, df.SizeBytes)
		for _, p := range df.PositionDeletes {
			add(p, -1)
		}
		for _, e := range df.EqualityDeletes {
			add(e.Path, -1)
		}
	}
	locals := make([]string, len(files))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, f := range files {
		g.Go(func() (err error) {
			if f.size >= 0 {
				locals[i], err = t.remote.DataFile(gctx, f.path, f.size)
			} else {
				locals[i], err = t.remote.Local(gctx, f.path)
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i, f := range files {
		t.locals[f.path] = locals[i]
	}
	return nil
}

// FieldIDs are the field ids a scan reads of its data files for the
// columns named (by the scan's schema's names): theirs, and those the
// equality deletes compare.
func (s *Scan) FieldIDs(names []string) map[int32]bool {
	ids := map[int32]bool{}
	for _, f := range s.Schema {
		if slices.Contains(names, f.Name) {
			ids[int32(f.ID)] = true
		}
	}
	for _, df := range s.Files {
		for _, e := range df.EqualityDeletes {
			for _, id := range e.FieldIDs {
				ids[int32(id)] = true
			}
		}
	}
	return ids
}

// Open loads an Iceberg table from a metadata file or from a table
// directory.
//
// A path naming a file is read as the metadata file. A directory is a
// table directory when it has a metadata/ subdirectory (the metadata
// directory itself is accepted too), and the metadata file is chosen so:
//
//   - version-hint.text, when present, names the version: its content is a
//     file name in the metadata directory, or a number N for vN.metadata.json
//     (as Hadoop tables write it) or NNNNN-<uuid>.metadata.json (as catalogs
//     write it), compressed variants (.gz.metadata.json, .metadata.json.gz)
//     included; a hint naming no file is an error;
//   - otherwise the metadata file with the highest version number in its
//     name (vN.… or N-….metadata.json); two files with the same number (a
//     lost commit race) are told apart by their last-updated-ms, the later
//     one wins.
//
// Paths may be file:// URIs. Files are read from the local file system. A
// table whose directory was moved keeps its old location in its metadata
// and manifests: when the metadata file lies in <dir>/metadata/, <dir> is
// not the recorded location and the recorded location is no local
// directory, files under the recorded location are read under <dir>.
func Open(ctx context.Context, path string) (*Table, error) {
	path = localPath(path)
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	metaFile := path
	if st.IsDir() {
		if metaFile, err = findMetadataFile(path); err != nil {
			return nil, err
		}
	}
	metaFile, err = filepath.Abs(metaFile)
	if err != nil {
		return nil, err
	}
	t := &Table{MetadataFile: metaFile}
	if err := t.load(ctx, filepath.Base(tableDirOf(metaFile))); err != nil {
		return nil, err
	}
	t.Dir = localPath(t.Location)
	if dir := tableDirOf(metaFile); filepath.Base(filepath.Dir(metaFile)) == "metadata" && filepath.Clean(dir) != filepath.Clean(t.Dir) {
		if st, err := os.Stat(t.Dir); err != nil || !st.IsDir() || !filepath.IsAbs(t.Dir) {
			// The recorded location is not here (another machine, an
			// object store, a directory since moved): read under dir.
			t.Dir, t.moved = dir, true
		}
	}
	return t, nil
}

// tableDirOf is the table directory of a metadata file: the parent of its
// metadata/ directory.
func tableDirOf(metaFile string) string { return filepath.Dir(filepath.Dir(metaFile)) }

// localPath turns a file: URI into a local path; other strings are
// returned as they are.
func localPath(p string) string {
	switch {
	case strings.HasPrefix(p, "file://"):
		rest := p[len("file://"):]
		if strings.HasPrefix(rest, "localhost/") {
			rest = rest[len("localhost"):]
		}
		return rest
	case strings.HasPrefix(p, "file:/"):
		return p[len("file:"):]
	}
	return p
}

// local is where a path the table's metadata names is read: a local path,
// under Dir when the table was moved.
func (t *Table) local(p string) string {
	if t.remote != nil {
		if l, ok := t.locals[p]; ok {
			return l
		}
		return p
	}
	if t.moved {
		for _, prefix := range []string{t.Location, localPath(t.Location)} {
			prefix = strings.TrimSuffix(prefix, "/")
			if prefix != "" && strings.HasPrefix(p, prefix+"/") {
				return filepath.Join(t.Dir, p[len(prefix)+1:])
			}
		}
	}
	return localPath(p)
}

// tableIO is the file system iceberg-go reads the metadata, manifest lists
// and manifests through.
type tableIO struct{ t *Table }

func (f tableIO) Open(name string) (icebergio.File, error) {
	if f.t.remote != nil {
		local, err := f.t.remote.Local(f.t.ctx, name)
		if err != nil {
			return nil, err
		}
		return os.Open(local)
	}
	return os.Open(f.t.localOrSelf(name))
}

func (f tableIO) ReadFile(name string) ([]byte, error) {
	if f.t.remote != nil {
		local, err := f.t.remote.Local(f.t.ctx, name)
		if err != nil {
			return nil, err
		}
		return os.ReadFile(local)
	}
	return os.ReadFile(f.t.localOrSelf(name))
}
func (f tableIO) Remove(name string) error {
	return &fs.PathError{Op: "remove", Path: name, Err: errors.ErrUnsupported}
}

// localOrSelf is local before the metadata is loaded (the metadata file
// itself is a local path already).
func (t *Table) localOrSelf(p string) string {
	if t.meta == nil {
		return localPath(p)
	}
	return t.local(p)
}

var (
	hadoopVersion  = regexp.MustCompile(`^v(\d+)\.`)
	catalogVersion = regexp.MustCompile(`^(\d+)-`)
)

func isMetadataFile(name string) bool {
	return strings.HasSuffix(name, ".metadata.json") || strings.HasSuffix(name, ".metadata.json.gz") ||
		strings.HasSuffix(name, ".metadata.json.zstd")
}

// metadataVersion is the version number in a metadata file's name, or -1.
func metadataVersion(name string) int64 {
	if !isMetadataFile(name) {
		return -1
	}
	for _, re := range []*regexp.Regexp{hadoopVersion, catalogVersion} {
		if m := re.FindStringSubmatch(name); m != nil {
			if n, err := strconv.ParseInt(m[1], 10, 64); err == nil {
				return n
			}
		}
	}
	return -1
}

// findMetadataFile picks the metadata file of a table directory (see Open).
func findMetadataFile(dir string) (string, error) {
	metaDir := filepath.Join(dir, "metadata")
	if st, err := os.Stat(metaDir); err != nil || !st.IsDir() {
		metaDir = dir
	}
	entries, err := os.ReadDir(metaDir)
	if err != nil {
		return "", err
	}
	if hint, err := os.ReadFile(filepath.Join(metaDir, "version-hint.text")); err == nil {
		h := strings.TrimSpace(string(hint))
		if h != "" && !strings.ContainsAny(h, `/\`) && isMetadataFile(h) {
			if _, err := os.Stat(filepath.Join(metaDir, h)); err == nil {
				return filepath.Join(metaDir, h), nil
			}
		}
		n, err := strconv.ParseInt(h, 10, 64)
		if err != nil {
			return "", fmt.Errorf("%s: version-hint.text holds %q, neither a version number nor a metadata file", metaDir, h)
		}
		var found []string
		for _, e := range entries {
			if !e.IsDir() && metadataVersion(e.Name()) == n {
				found = append(found, filepath.Join(metaDir, e.Name()))
			}
		}
		if len(found) == 0 {
			return "", fmt.Errorf("%s: version-hint.text names version %d, which has no metadata file", metaDir, n)
		}
		return latestOf(found)
	}
	best, bestV := []string(nil), int64(-1)
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		switch v := metadataVersion(e.Name()); {
		case v > bestV:
			best, bestV = []string{filepath.Join(metaDir, e.Name())}, v
		case v == bestV && v >= 0:
			best = append(best, filepath.Join(metaDir, e.Name()))
		}
	}
	if len(best) == 0 {
		return "", fmt.Errorf("%s: no iceberg metadata file (vN.metadata.json or NNNNN-<uuid>.metadata.json): %w", metaDir, fs.ErrNotExist)
	}
	return latestOf(best)
}

// latestOf picks, among metadata files of one version, the one updated
// last.
func latestOf(files []string) (string, error) {
	if len(files) == 1 {
		return files[0], nil
	}
	slices.Sort(files)
	best, bestMS := "", int64(-1)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		meta, err := table.ParseMetadataBytes(data)
		if err != nil {
			continue
		}
		if ms := meta.LastUpdatedMillis(); ms > bestMS {
			best, bestMS = f, ms
		}
	}
	if best == "" {
		return "", fmt.Errorf("none of %s parses as iceberg metadata", strings.Join(files, ", "))
	}
	return best, nil
}

// SnapshotInfo describes one snapshot.
type SnapshotInfo struct {
	ID             int64
	ParentID       *int64 // nil for the first snapshot
	SequenceNumber int64  // 0 in format v1
	Timestamp      time.Time
	Operation      string            // append, overwrite, delete, replace; empty when not recorded
	Summary        map[string]string // the summary's other keys
	SchemaID       *int              // nil when not recorded (format v1 writers)
	ManifestList   string
	Current        bool
}

// Snapshots lists the table's snapshots in the order of its metadata
// (commit order).
func (t *Table) Snapshots() []SnapshotInfo {
	cur := t.meta.CurrentSnapshot()
	var out []SnapshotInfo
	for _, s := range t.meta.Snapshots() {
		info := SnapshotInfo{
			ID:             s.SnapshotID,
			ParentID:       s.ParentSnapshotID,
			SequenceNumber: s.SequenceNumber,
			Timestamp:      time.UnixMilli(s.TimestampMs).UTC(),
			SchemaID:       s.SchemaID,
			ManifestList:   s.ManifestList,
			Current:        cur != nil && cur.SnapshotID == s.SnapshotID,
			Summary:        map[string]string{},
		}
		if s.Summary != nil {
			info.Operation = string(s.Summary.Operation)
			for k, v := range s.Summary.Properties {
				info.Summary[k] = v
			}
		}
		out = append(out, info)
	}
	return out
}

// CurrentSnapshotID is the current snapshot's ID, or nil for a table
// without snapshots.
func (t *Table) CurrentSnapshotID() *int64 {
	if s := t.meta.CurrentSnapshot(); s != nil {
		id := s.SnapshotID
		return &id
	}
	return nil
}

// SnapshotAt is the ID of the snapshot current at ts (the last one
// committed at or before it, by the snapshot log), or nil when the table
// had none then.
func (t *Table) SnapshotAt(ts time.Time) *int64 {
	if s := t.tbl.SnapshotAsOf(ts.UnixMilli(), true); s != nil {
		id := s.SnapshotID
		return &id
	}
	return nil
}

// Iceberg is iceberg-go's table, for what this package does not wrap.
func (t *Table) Iceberg() *table.Table { return t.tbl }
