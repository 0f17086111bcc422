package catalog

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	icebergio "github.com/apache/iceberg-go/io"
	"github.com/jackc/pgx/v5/pgconn"
)

// Tables on an object store (a warehouse or a table location on S3) keep a
// local copy of their files: DuckDB writes and reads files of the server
// only. Each remote object s3://<bucket>/<key> has the local path
// <root>/<bucket>/<key>; new files are written there, uploaded before the
// metadata naming them is committed, and files missing locally (a new
// server, a wiped disk) are fetched whole before they are read. Table
// files are never rewritten in place (every name is new), so a local copy
// is never stale.

// ObjectStore moves whole files between the local copies and the object
// store, with the credentials of a database (its secrets).
type ObjectStore interface {
	Download(ctx context.Context, database, uri, local string) error
	Upload(ctx context.Context, database, uri, local string) error
	Delete(ctx context.Context, database string, uris []string) error
	// List names every object under a prefix, with size and time.
	List(ctx context.Context, database, prefix string) ([]ObjectInfo, error)
}

// ObjectInfo is an object List found.
type ObjectInfo struct {
	URI      string
	Size     int64
	Modified time.Time
}

var objects struct {
	mu    sync.RWMutex
	store ObjectStore
	root  string
}

// SetObjectStore configures where tables on object stores go: store moves
// the files, root holds their local copies.
func SetObjectStore(store ObjectStore, root string) {
	objects.mu.Lock()
	objects.store, objects.root = store, filepath.Clean(root)
	objects.mu.Unlock()
}

func objectStore() (ObjectStore, string, error) {
	objects.mu.RLock()
	defer objects.mu.RUnlock()
	if objects.store == nil {
		return nil, "", &pgconn.PgError{Code: "0A000", Message: "this sidecar keeps no tables on object stores"}
	}
	return objects.store, objects.root, nil
}

// propDatabase is the catalog property naming the database whose secrets
// a table's files are read and written with.
const propDatabase = "mooncake.database"

// IsRemote tells whether a location is on an object store.
func IsRemote(loc string) bool {
	_, ok := cutS3(loc)
	return ok
}

func cutS3(loc string) (string, bool) {
	for _, p := range []string{"s3://", "s3a://", "s3n://"} {
		if len(loc) >= len(p) && strings.EqualFold(loc[:len(p)], p) {
			return loc[len(p):], true
		}
	}
	return "", false
}

// NormalizeLocation writes an object store location as s3://bucket/key
// (no trailing slash), a local one as a clean absolute path.
func NormalizeLocation(loc string) (string, error) {
	if rest, ok := cutS3(loc); ok {
		rest = strings.Trim(rest, "/")
		bucket, key, _ := strings.Cut(rest, "/")
		if bucket == "" {
			return "", &pgconn.PgError{Code: "22023", Message: fmt.Sprintf("location %q names no bucket", loc)}
		}
		for _, seg := range strings.Split(key, "/") {
			if (seg == "" && key != "") || seg == "." || seg == ".." {
				return "", &pgconn.PgError{Code: "22023", Message: fmt.Sprintf("location %q has an empty, . or .. segment", loc)}
			}
		}
		if key == "" {
			return "s3://" + bucket, nil
		}
		return "s3://" + bucket + "/" + key, nil
	}
	if strings.Contains(loc, "://") && !strings.HasPrefix(loc, "file://") {
		scheme, _, _ := strings.Cut(loc, "://")
		return "", &pgconn.PgError{Code: "0A000", Message: fmt.Sprintf("location %q: the scheme %s:// is not supported", loc, scheme),
			Hint: "Give a directory of the server or an s3:// URL."}
	}
	p := strings.TrimPrefix(loc, "file://")
	if !filepath.IsAbs(p) {
		return "", &pgconn.PgError{Code: "22023", Message: fmt.Sprintf("location %q is not an absolute path", loc)}
	}
	return filepath.Clean(p), nil
}

// joinLoc joins a location and path segments: with slashes for an object
// store (filepath.Join would fold "s3://" into "s3:/").
func joinLoc(loc string, elem ...string) string {
	if IsRemote(loc) {
		return strings.TrimRight(loc, "/") + "/" + path.Join(elem...)
	}
	return filepath.Join(append([]string{localPath(loc)}, elem...)...)
}

// localPath is where the server keeps a location's file: the path itself
// for a local location, the local copy of an object.
func localPath(loc string) string {
	if rest, ok := cutS3(loc); ok {
		_, root, err := objectStore()
		if err != nil {
			root = filepath.Join(os.TempDir(), "mooncake-no-object-store")
		}
		segs := strings.Split(rest, "/")
		for i, s := range segs {
			if s == "" || s == "." || s == ".." {
				segs[i] = "%" + url.PathEscape(s) + "%" // never a way out of the root
			}
		}
		return filepath.Join(append([]string{root}, segs...)...)
	}
	return strings.TrimPrefix(loc, "file://")
}

// remoteOf is the object whose local copy is local, for a table at loc
// (local itself when the table is local).
func remoteOf(loc, local string) string {
	if !IsRemote(loc) {
		return local
	}
	_, root, _ := objectStore()
	rel, err := filepath.Rel(root, local)
	if err != nil || strings.HasPrefix(rel, "..") {
		return local
	}
	return "s3://" + filepath.ToSlash(rel)
}

// localSQL is a DuckDB expression turning the object paths of a column
// (expr, the file_path of a position delete file) into their local copies'
// paths; remoteSQL the reverse. Both leave other paths alone.
func localSQL(expr string) string {
	_, root, err := objectStore()
	if err != nil {
		return expr
	}
	return "regexp_replace(" + expr + ", '^s3://', " + QuoteLiteral(root+"/") + ")"
}

func remoteSQL(expr string) string {
	_, root, err := objectStore()
	if err != nil {
		return expr
	}
	return "CASE WHEN starts_with(" + expr + ", " + QuoteLiteral(root+"/") + ") THEN 's3://' || substr(" + expr + ", " +
		fmt.Sprint(len(root)+2) + ") ELSE " + expr + " END"
}

// fetch makes sure the local copy of the object uri is there (database
// empty: the one ctx names).
func fetch(ctx context.Context, database, uri string) (string, error) {
	if database == "" {
		database, _ = ctx.Value(databaseKey{}).(string)
	}
	local := localPath(uri)
	if !IsRemote(uri) {
		return local, nil
	}
	if _, err := os.Stat(local); err == nil {
		return local, nil
	}
	store, _, err := objectStore()
	if err != nil {
		return "", err
	}
	if err := store.Download(ctx, database, uri, local); err != nil {
		return "", err
	}
	return local, nil
}

// fetchAll is fetch of several objects, four at a time.
func fetchAll(ctx context.Context, database string, uris []string) error {
	sem := make(chan struct{}, 4)
	errs := make(chan error, len(uris))
	var wg sync.WaitGroup
	for _, u := range uris {
		if !IsRemote(u) {
			continue
		}
		if _, err := os.Stat(localPath(u)); err == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := fetch(ctx, database, u); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// publish uploads the local copies of new files of a table at loc, before
// the commit that names them; it returns their object URIs (the local
// paths for a local table).
func publish(ctx context.Context, database, loc string, locals ...string) ([]string, error) {
	if database == "" {
		database, _ = ctx.Value(databaseKey{}).(string)
	}
	out := make([]string, len(locals))
	if !IsRemote(loc) {
		copy(out, locals)
		return out, nil
	}
	store, _, err := objectStore()
	if err != nil {
		return nil, err
	}
	errs := make([]error, len(locals))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, l := range locals {
		out[i] = remoteOf(loc, l)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = store.Upload(ctx, database, out[i], l)
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// removeTree deletes everything under a table's location (the objects and
// their local copies, or the directory).
func removeTree(ctx context.Context, database, loc string) error {
	if !IsRemote(loc) {
		return os.RemoveAll(localPath(loc))
	}
	store, _, err := objectStore()
	if err != nil {
		return err
	}
	list, err := store.List(ctx, database, loc)
	if err != nil {
		return err
	}
	var uris []string
	for _, o := range list {
		uris = append(uris, o.URI)
	}
	if len(uris) > 0 {
		if err := store.Delete(ctx, database, uris); err != nil {
			return err
		}
	}
	return os.RemoveAll(localPath(loc))
}

func init() {
	factory := func(ctx context.Context, parsed *url.URL, props map[string]string) (icebergio.IO, error) {
		db := props[propDatabase]
		if db == "" {
			db, _ = ctx.Value(databaseKey{}).(string)
		}
		return objectIO{database: db}, nil
	}
	for _, scheme := range []string{"s3", "s3a", "s3n"} {
		icebergio.Register(scheme, factory)
	}
}

type databaseKey struct{}

// ioProps are the Iceberg IO properties of files read or written for the
// database ctx names.
func ioProps(ctx context.Context) map[string]string {
	db, _ := ctx.Value(databaseKey{}).(string)
	return map[string]string{propDatabase: db}
}

// metadataPath is how a metadata file's location is kept (in the catalog,
// answered to the backend): the object's URI, or the local path.
func metadataPath(loc string) string {
	if IsRemote(loc) {
		return loc
	}
	return localPath(loc)
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// WithDatabase is ctx naming the database whose secrets the Iceberg files
// of object stores are read and written with, where no catalog says it.
func WithDatabase(ctx context.Context, database string) context.Context {
	return context.WithValue(ctx, databaseKey{}, database)
}

// objectIO is the Iceberg file IO of tables on object stores: reads from
// the local copies (fetched whole when missing), writes locally then
// uploads on close.
type objectIO struct{ database string }

const ioTimeout = 10 * time.Minute

func (o objectIO) Open(name string) (icebergio.File, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	local, err := fetch(ctx, o.database, name)
	if err != nil {
		return nil, err
	}
	return os.Open(local)
}

func (o objectIO) ReadFile(name string) ([]byte, error) {
	f, err := o.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b := make([]byte, st.Size())
	_, err = f.ReadAt(b, 0)
	return b, err
}

func (o objectIO) Remove(name string) error {
	store, _, err := objectStore()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := store.Delete(ctx, o.database, []string{name}); err != nil {
		return err
	}
	if err := os.Remove(localPath(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (o objectIO) DeleteFiles(ctx context.Context, paths []string) ([]string, error) {
	store, _, err := objectStore()
	if err != nil {
		return nil, err
	}
	if err := store.Delete(ctx, o.database, paths); err != nil {
		return nil, err
	}
	for _, p := range paths {
		os.Remove(localPath(p))
	}
	return paths, nil
}

func (o objectIO) Create(name string) (icebergio.FileWriter, error) {
	local := localPath(name)
	if err := os.MkdirAll(filepath.Dir(local), 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(filepath.Dir(local), ".write-*")
	if err != nil {
		return nil, err
	}
	return &objectWriter{File: f, io: o, name: name, local: local}, nil
}

func (o objectIO) WriteFile(name string, p []byte) error {
	w, err := o.Create(name)
	if err != nil {
		return err
	}
	if _, err := w.Write(p); err != nil {
		w.(*objectWriter).abort()
		return err
	}
	return w.Close()
}

// WalkDir lists the objects under root (orphan file removal).
func (o objectIO) WalkDir(root string, fn fs.WalkDirFunc) error {
	store, _, err := objectStore()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	list, err := store.List(ctx, o.database, root)
	if err != nil {
		return fn(root, nil, err)
	}
	for _, obj := range list {
		if err := fn(obj.URI, objectEntry{obj}, nil); err != nil {
			if errors.Is(err, fs.SkipDir) || errors.Is(err, fs.SkipAll) {
				return nil
			}
			return err
		}
	}
	return nil
}

// objectWriter writes a new object's local copy under a temporary name;
// Close uploads it and gives it its name.
type objectWriter struct {
	*os.File
	io    objectIO
	name  string
	local string
}

func (w *objectWriter) abort() {
	w.File.Close()
	os.Remove(w.File.Name())
}

func (w *objectWriter) Close() error {
	if err := w.File.Close(); err != nil {
		os.Remove(w.File.Name())
		return err
	}
	store, _, err := objectStore()
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		err = store.Upload(ctx, w.io.database, w.name, w.File.Name())
		cancel()
	}
	if err == nil {
		err = os.Rename(w.File.Name(), w.local)
	}
	if err != nil {
		os.Remove(w.File.Name())
	}
	return err
}

type objectEntry struct{ o ObjectInfo }

func (e objectEntry) Name() string               { return path.Base(e.o.URI) }
func (e objectEntry) IsDir() bool                { return false }
func (e objectEntry) Type() fs.FileMode          { return 0 }
func (e objectEntry) Info() (fs.FileInfo, error) { return e, nil }
func (e objectEntry) Size() int64                { return e.o.Size }
func (e objectEntry) Mode() fs.FileMode          { return 0o600 }
func (e objectEntry) ModTime() time.Time         { return e.o.Modified }
func (e objectEntry) Sys() any                   { return nil }
