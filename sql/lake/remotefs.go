package lake

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmooncake/mooncake/sql/lake/remote"
)

// remoteFS reads an Iceberg or Delta table on an object store: each file
// the readers open is fetched whole into the cache and read there; the
// objects stay in the cache until release.
type remoteFS struct {
	store *remote.Store
	sess  *remote.Session

	mu       sync.Mutex
	data     []*remote.Object // Parquet data files: footers fetched, columns when a query runs
	whole    []*remote.Object // files fetched whole
	releases []func()
	keep     func(used []string) func(name string, fieldID int32) bool
}

func (s *Spec) remoteFS(ctx context.Context) (*remoteFS, error) {
	secrets, err := s.Remote.Secrets(ctx)
	if err != nil {
		return nil, err
	}
	return &remoteFS{store: s.Remote.Store, sess: s.Remote.Store.Session(secrets)}, nil
}

// notExist marks an object store's "no such object" as fs.ErrNotExist,
// which the table readers test for.
func notExist(err error) error {
	if pgErr, ok := err.(*pgconn.PgError); ok && pgErr.Code == "58P01" {
		return fmt.Errorf("%w: %s", fs.ErrNotExist, pgErr.Message)
	}
	return err
}

// hold pins o, has fetch make its local copy hold what is read, and keeps
// it (in *list) until release.
func (f *remoteFS) hold(o *remote.Object, list *[]*remote.Object, fetch func(*remote.Object) error) (string, error) {
	release := f.store.Pin([]*remote.Object{o})
	if err := fetch(o); err != nil {
		release()
		return "", notExist(err)
	}
	f.mu.Lock()
	*list = append(*list, o)
	f.releases = append(f.releases, release)
	f.mu.Unlock()
	return o.Local, nil
}

// fetchWhole fetches an object whole and keeps it.
func (f *remoteFS) fetchWhole(ctx context.Context, o *remote.Object) (string, error) {
	return f.hold(o, &f.whole, func(o *remote.Object) error { return f.store.Whole(ctx, o) })
}

// DataFile is a local copy of an immutable Parquet data file of a known
// size, holding its footer; the columns a query reads come before it
// runs (Files.Prepare).
func (f *remoteFS) DataFile(ctx context.Context, url string, size int64) (string, error) {
	o, err := f.sess.Known(url, size)
	if err != nil {
		return "", err
	}
	return f.hold(o, &f.data, func(o *remote.Object) error {
		_, err := f.store.Footer(ctx, o)
		return err
	})
}

// Local is a local copy of the object at url.
func (f *remoteFS) Local(ctx context.Context, url string) (string, error) {
	o, err := f.sess.Stat(ctx, url)
	if err != nil {
		return "", notExist(err)
	}
	return f.fetchWhole(ctx, o)
}

// release lets the objects go.
func (f *remoteFS) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.releases {
		r()
	}
	f.releases = nil
}

// The delta.FS of the table.

func (f *remoteFS) ReadFile(ctx context.Context, path string) ([]byte, error) {
	local, err := f.Local(ctx, path)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(local)
}

func (f *remoteFS) Open(ctx context.Context, path string) (io.ReaderAt, int64, error) {
	local, err := f.Local(ctx, path)
	if err != nil {
		return nil, 0, err
	}
	file, err := os.Open(local)
	if err != nil {
		return nil, 0, err
	}
	st, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, 0, err
	}
	return file, st.Size(), nil
}

func (f *remoteFS) List(ctx context.Context, dir string) ([]string, error) {
	names, err := f.sess.List(ctx, dir)
	if err == nil && len(names) == 0 {
		return nil, fmt.Errorf("%w: %s", fs.ErrNotExist, dir)
	}
	return names, err
}
