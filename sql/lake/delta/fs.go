package delta

import (
	"context"
	"io"
	"os"
	"strings"
)

// FS is how the reader reaches the table's files: local disk now, S3 later.
// Paths are the table root joined with "/" and a relative name; a missing
// file or directory is an error wrapping fs.ErrNotExist.
type FS interface {
	// ReadFile returns a whole small file (JSON commits, deletion vector
	// files, _last_checkpoint).
	ReadFile(ctx context.Context, path string) ([]byte, error)
	// Open returns a checkpoint Parquet file and its size. When the
	// io.ReaderAt is also an io.Closer, the reader closes it when done.
	Open(ctx context.Context, path string) (io.ReaderAt, int64, error)
	// List returns the names of the files in a directory (_delta_log/).
	List(ctx context.Context, dir string) ([]string, error)
}

// LocalFS is the local file system.
func LocalFS() FS { return localFS{} }

type localFS struct{}

func (localFS) ReadFile(ctx context.Context, path string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}

func (localFS) Open(ctx context.Context, path string) (io.ReaderAt, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

func (localFS) List(ctx context.Context, dir string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// joinPath joins a table root (a local path or a URL) and a relative path
// with one "/".
func joinPath(root, rel string) string {
	if rel == "" {
		return root
	}
	return strings.TrimRight(root, "/") + "/" + strings.TrimLeft(rel, "/")
}
