package delta

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Snapshot is the state of a table at one version.
type Snapshot struct {
	Version          int64
	Schema           []Field  // logical columns in table order
	PartitionColumns []string // logical names
	ColumnMapping    string   // "none", "name" or "id"
	Configuration    map[string]string
	Files            []File // sorted by path
}

// File is a data file of the snapshot.
type File struct {
	Path            string             // absolute: the table root joined with the URL-decoded path
	Size            int64              // bytes
	PartitionValues map[string]*string // logical column name -> value text as the log gives it (nil = NULL)
	NumRecords      int64              // rows in the file (deleted ones included), -1 if unknown
	DeletionVector  *DeletionVector    // nil when none
}

// Reader features this package implements.
var supportedReaderFeatures = map[string]bool{
	"deletionVectors":     true,
	"columnMapping":       true,
	"timestampNtz":        true,
	"v2Checkpoint":        true,
	"vacuumProtocolCheck": true, // a check for writers that vacuum; nothing to do to read
}

type logAction struct {
	Add                *addAction      `json:"add"`
	Remove             *removeAction   `json:"remove"`
	MetaData           *metaDataAction `json:"metaData"`
	Protocol           *protocolAction `json:"protocol"`
	Sidecar            *sidecarAction  `json:"sidecar"`
	CheckpointMetadata json.RawMessage `json:"checkpointMetadata"`
}

type addAction struct {
	Path            string             `json:"path"`
	PartitionValues map[string]*string `json:"partitionValues"`
	Size            int64              `json:"size"`
	Stats           *string            `json:"stats"`
	DeletionVector  *DeletionVector    `json:"deletionVector"`
	numRecords      *int64             // stats_parsed.numRecords of a checkpoint
}

type removeAction struct {
	Path           string          `json:"path"`
	DeletionVector *DeletionVector `json:"deletionVector"`
}

type metaDataAction struct {
	ID     string `json:"id"`
	Format struct {
		Provider string `json:"provider"`
	} `json:"format"`
	SchemaString     string             `json:"schemaString"`
	PartitionColumns []string           `json:"partitionColumns"`
	Configuration    map[string]*string `json:"configuration"`
}

type protocolAction struct {
	MinReaderVersion int      `json:"minReaderVersion"`
	MinWriterVersion int      `json:"minWriterVersion"`
	ReaderFeatures   []string `json:"readerFeatures"`
}

type sidecarAction struct {
	Path        string `json:"path"`
	SizeInBytes int64  `json:"sizeInBytes"`
}

type lastCheckpoint struct {
	Version int64  `json:"version"`
	Parts   *int64 `json:"parts"`
}

var (
	commitName         = regexp.MustCompile(`^(\d{20})\.json$`)
	classicName        = regexp.MustCompile(`^(\d{20})\.checkpoint\.parquet$`)
	multiPartName      = regexp.MustCompile(`^(\d{20})\.checkpoint\.(\d{10})\.(\d{10})\.parquet$`)
	uuidNamedName      = regexp.MustCompile(`^(\d{20})\.checkpoint\.([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\.(json|parquet)$`)
	lastCheckpointName = "_last_checkpoint"
)

// checkpointSet is what the listing holds for one checkpoint version.
type checkpointSet struct {
	version int64
	classic string
	uuid    []string
	parts   map[int64]map[int64]string // number of parts -> part -> name
}

// files returns the names of a complete checkpoint, or nil. A classic
// checkpoint is preferred, then a UUID-named one, then the multi-part set
// _last_checkpoint names, then the complete multi-part set with the most
// parts.

// ErrNoVersion is the error of a version the table does not have.
var ErrNoVersion = errors.New("no such version")

func (c *checkpointSet) files(hintParts int64) []string {
	if c.classic != "" {
		return []string{c.classic}
	}
	if len(c.uuid) > 0 {
		return []string{slices.Min(c.uuid)}
	}
	complete := func(p int64) []string {
		set := c.parts[p]
		if int64(len(set)) != p {
			return nil
		}
		names := make([]string, 0, p)
		for i := int64(1); i <= p; i++ {
			n, ok := set[i]
			if !ok {
				return nil
			}
			names = append(names, n)
		}
		return names
	}
	if hintParts > 0 {
		if names := complete(hintParts); names != nil {
			return names
		}
	}
	counts := make([]int64, 0, len(c.parts))
	for p := range c.parts {
		counts = append(counts, p)
	}
	slices.SortFunc(counts, func(a, b int64) int { return cmp.Compare(b, a) })
	for _, p := range counts {
		if names := complete(p); names != nil {
			return names
		}
	}
	return nil
}

// Load reads the table at root as of version (nil: the newest).
//
// A root without _delta_log, or whose _delta_log holds no commit, is an
// error wrapping fs.ErrNotExist. A malformed log file is an error naming
// the file.
func Load(ctx context.Context, fsys FS, root string, version *int64) (*Snapshot, error) {
	logDir := joinPath(root, "_delta_log")
	names, err := fsys.List(ctx, logDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("delta: no Delta table at %s (no _delta_log): %w", root, err)
		}
		return nil, fmt.Errorf("delta: list %s: %w", logDir, err)
	}
	commits := map[int64]string{}
	checkpoints := map[int64]*checkpointSet{}
	hasLast := false
	cpSet := func(v int64) *checkpointSet {
		c := checkpoints[v]
		if c == nil {
			c = &checkpointSet{version: v, parts: map[int64]map[int64]string{}}
			checkpoints[v] = c
		}
		return c
	}
	for _, name := range names {
		if m := commitName.FindStringSubmatch(name); m != nil {
			commits[parseVersion(m[1])] = name
		} else if m := classicName.FindStringSubmatch(name); m != nil {
			cpSet(parseVersion(m[1])).classic = name
		} else if m := multiPartName.FindStringSubmatch(name); m != nil {
			c := cpSet(parseVersion(m[1]))
			part, parts := parseVersion(m[2]), parseVersion(m[3])
			if part < 1 || part > parts {
				continue
			}
			if c.parts[parts] == nil {
				c.parts[parts] = map[int64]string{}
			}
			c.parts[parts][part] = name
		} else if m := uuidNamedName.FindStringSubmatch(name); m != nil {
			c := cpSet(parseVersion(m[1]))
			c.uuid = append(c.uuid, name)
		} else if name == lastCheckpointName {
			hasLast = true
		}
	}
	if len(commits) == 0 && len(checkpoints) == 0 {
		return nil, fmt.Errorf("delta: no Delta table at %s: %s holds no commit: %w", root, logDir, fs.ErrNotExist)
	}

	// _last_checkpoint is a hint: the listing decides which checkpoints
	// exist; the hint picks among multi-part sets of one version. A
	// malformed or stale hint is ignored, as readers may.
	var hint lastCheckpoint
	hint.Version = -1
	if hasLast {
		if data, err := fsys.ReadFile(ctx, joinPath(logDir, lastCheckpointName)); err == nil {
			if json.Unmarshal(data, &hint) != nil {
				hint = lastCheckpoint{Version: -1}
			}
		}
	}

	latest := int64(-1)
	for v := range commits {
		latest = max(latest, v)
	}
	for v, c := range checkpoints {
		if c.files(0) != nil {
			latest = max(latest, v)
		}
	}
	target := latest
	if version != nil {
		target = *version
		if target < 0 || target > latest {
			return nil, fmt.Errorf("delta: table %s has no version %d (the newest is %d): %w", root, target, latest, ErrNoVersion)
		}
	}

	// The newest complete checkpoint not newer than the target.
	var cpVersion int64 = -1
	var cpFiles []string
	for v, c := range checkpoints {
		if v > target || v <= cpVersion {
			continue
		}
		hintParts := int64(0)
		if v == hint.Version && hint.Parts != nil {
			hintParts = *hint.Parts
		}
		if files := c.files(hintParts); files != nil {
			cpVersion, cpFiles = v, files
		}
	}
	for v := cpVersion + 1; v <= target; v++ {
		if _, ok := commits[v]; !ok {
			if cpVersion < 0 && v == 0 {
				return nil, fmt.Errorf("delta: table %s: the log has neither commit 0 nor a checkpoint at or before version %d", root, target)
			}
			return nil, fmt.Errorf("delta: table %s: commit %d is missing from %s (needed for version %d)", root, v, logDir, target)
		}
	}

	r := &replay{root: root, logDir: logDir, files: map[fileKey]*addAction{}}
	if cpVersion >= 0 {
		if err := r.readCheckpoint(ctx, fsys, cpFiles); err != nil {
			return nil, err
		}
	}
	for v := cpVersion + 1; v <= target; v++ {
		if err := r.readCommit(ctx, fsys, joinPath(logDir, commits[v])); err != nil {
			return nil, err
		}
	}
	return r.snapshot(target)
}

func parseVersion(s string) int64 {
	v, _ := strconv.ParseInt(s, 10, 64)
	return v
}

type fileKey struct{ path, dv string }

type replay struct {
	root, logDir string
	meta         *metaDataAction
	metaFrom     string
	proto        *protocolAction
	protoFrom    string
	files        map[fileKey]*addAction
}

func (r *replay) key(path string, dv *DeletionVector) (fileKey, error) {
	abs, err := resolvePath(r.root, path)
	if err != nil {
		return fileKey{}, err
	}
	k := fileKey{path: abs}
	if dv != nil {
		k.dv = dv.UniqueID()
	}
	return k, nil
}

// readCommit applies one JSON commit: its removes, then its adds (a
// commit holds at most one action of a kind per logical file, and actions
// in a commit are unordered), and its metaData and protocol.
func (r *replay) readCommit(ctx context.Context, fsys FS, path string) error {
	data, err := fsys.ReadFile(ctx, path)
	if err != nil {
		return fmt.Errorf("delta: read %s: %w", path, err)
	}
	var adds []*addAction
	var removes []fileKey
	err = eachLine(data, path, func(a *logAction, line int) error {
		if a.Remove != nil {
			if a.Remove.Path == "" {
				return fmt.Errorf("delta: malformed log file %s, line %d: remove without a path", path, line)
			}
			k, err := r.key(a.Remove.Path, a.Remove.DeletionVector)
			if err != nil {
				return fmt.Errorf("delta: malformed log file %s, line %d: %w", path, line, err)
			}
			removes = append(removes, k)
		}
		if a.Add != nil {
			if err := checkAdd(a.Add); err != nil {
				return fmt.Errorf("delta: malformed log file %s, line %d: %w", path, line, err)
			}
			adds = append(adds, a.Add)
		}
		r.takeMetaProtocol(a, path)
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range removes {
		delete(r.files, k)
	}
	for _, a := range adds {
		k, err := r.key(a.Path, a.DeletionVector)
		if err != nil {
			return fmt.Errorf("delta: malformed log file %s: %w", path, err)
		}
		r.files[k] = a
	}
	return nil
}

func checkAdd(a *addAction) error {
	if a.Path == "" {
		return errors.New("add without a path")
	}
	if dv := a.DeletionVector; dv != nil {
		switch dv.StorageType {
		case "u", "i", "p":
		default:
			return fmt.Errorf("add %s: unknown deletion vector storage type %q", a.Path, dv.StorageType)
		}
	}
	return nil
}

func (r *replay) takeMetaProtocol(a *logAction, from string) {
	if a.MetaData != nil {
		r.meta, r.metaFrom = a.MetaData, from
	}
	if a.Protocol != nil {
		r.proto, r.protoFrom = a.Protocol, from
	}
}

// eachLine decodes the newline-delimited JSON actions of a log file.
func eachLine(data []byte, path string, fn func(*logAction, int) error) error {
	for i, line := range bytes.Split(data, []byte{'\n'}) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if line[0] != '{' {
			return fmt.Errorf("delta: malformed log file %s, line %d: not a JSON object", path, i+1)
		}
		var a logAction
		if err := json.Unmarshal(line, &a); err != nil {
			return fmt.Errorf("delta: malformed log file %s, line %d: %w", path, i+1, err)
		}
		if err := fn(&a, i+1); err != nil {
			return err
		}
	}
	return nil
}

// snapshot checks the protocol and builds the snapshot.
func (r *replay) snapshot(version int64) (*Snapshot, error) {
	if r.proto == nil {
		return nil, fmt.Errorf("delta: table %s: no protocol action up to version %d", r.root, version)
	}
	if r.meta == nil {
		return nil, fmt.Errorf("delta: table %s: no metaData action up to version %d", r.root, version)
	}
	p := r.proto
	switch {
	case p.MinReaderVersion < 1 || p.MinReaderVersion > 3:
		return nil, fmt.Errorf("delta: table %s needs reader version %d; supported: 1 to 3", r.root, p.MinReaderVersion)
	case p.MinReaderVersion == 3:
		var missing []string
		for _, f := range p.ReaderFeatures {
			if !supportedReaderFeatures[f] {
				missing = append(missing, f)
			}
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("delta: table %s needs reader features that are not supported: %s", r.root, strings.Join(missing, ", "))
		}
	}
	if prov := r.meta.Format.Provider; prov != "" && !strings.EqualFold(prov, "parquet") {
		return nil, fmt.Errorf("delta: table %s: data files in format %q are not supported (%s)", r.root, prov, r.metaFrom)
	}
	fields, err := parseSchema(r.meta.SchemaString)
	if err != nil {
		return nil, fmt.Errorf("delta: malformed schema in %s: %w", r.metaFrom, err)
	}
	s := &Snapshot{
		Version:          version,
		PartitionColumns: slices.Clone(r.meta.PartitionColumns),
		ColumnMapping:    "none",
		Configuration:    map[string]string{},
	}
	for k, v := range r.meta.Configuration {
		if v != nil {
			s.Configuration[k] = *v
		}
	}
	mappingAllowed := p.MinReaderVersion == 2 || (p.MinReaderVersion == 3 && slices.Contains(p.ReaderFeatures, "columnMapping"))
	if mode := s.Configuration["delta.columnMapping.mode"]; mappingAllowed && mode != "" {
		switch mode {
		case "none", "name", "id":
			s.ColumnMapping = mode
		default:
			return nil, fmt.Errorf("delta: table %s: unknown column mapping mode %q (%s)", r.root, mode, r.metaFrom)
		}
	}
	byName := map[string]structField{}
	for _, f := range fields {
		if s.ColumnMapping == "none" {
			f.physical = f.name
		}
		typ := string(f.rawType)
		if f.typ.name != "struct" && f.typ.name != "array" && f.typ.name != "map" {
			if err := json.Unmarshal(f.rawType, &typ); err != nil {
				return nil, fmt.Errorf("delta: malformed schema in %s: %w", r.metaFrom, err)
			}
		}
		s.Schema = append(s.Schema, Field{Name: f.name, Type: typ, Nullable: f.nullable, PhysicalName: f.physical, FieldID: f.id})
		byName[f.name] = f
	}
	for _, pc := range s.PartitionColumns {
		if _, ok := byName[pc]; !ok {
			return nil, fmt.Errorf("delta: malformed metaData in %s: partition column %q is not in the schema", r.metaFrom, pc)
		}
	}
	for k, a := range r.files {
		f := File{Path: k.path, Size: a.Size, NumRecords: -1, DeletionVector: a.DeletionVector}
		if len(s.PartitionColumns) > 0 {
			f.PartitionValues = make(map[string]*string, len(s.PartitionColumns))
			for _, pc := range s.PartitionColumns {
				v, ok := a.PartitionValues[byName[pc].physical]
				if !ok && s.ColumnMapping != "none" {
					v = a.PartitionValues[pc]
				}
				f.PartitionValues[pc] = v
			}
		}
		if n, ok := statsNumRecords(a); ok {
			f.NumRecords = n
		}
		s.Files = append(s.Files, f)
	}
	sort.Slice(s.Files, func(i, j int) bool { return s.Files[i].Path < s.Files[j].Path })
	return s, nil
}

func statsNumRecords(a *addAction) (int64, bool) {
	if a.Stats != nil && *a.Stats != "" {
		var st struct {
			NumRecords *int64 `json:"numRecords"`
		}
		if json.Unmarshal([]byte(*a.Stats), &st) == nil && st.NumRecords != nil {
			return *st.NumRecords, true
		}
	}
	if a.numRecords != nil {
		return *a.numRecords, true
	}
	return 0, false
}

var schemeRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)

// resolvePath turns a path of the log (an RFC 2396 URI, relative to the
// table root or absolute) into the path the FS is given.
func resolvePath(root, p string) (string, error) {
	if schemeRE.MatchString(p) {
		u, err := url.Parse(p)
		if err != nil {
			return "", fmt.Errorf("path %q: %w", p, err)
		}
		if u.Scheme == "file" {
			return u.Path, nil
		}
		return p, nil
	}
	dec, err := url.PathUnescape(p)
	if err != nil {
		return "", fmt.Errorf("path %q: %w", p, err)
	}
	if strings.HasPrefix(dec, "/") {
		return dec, nil
	}
	return joinPath(root, dec), nil
}
