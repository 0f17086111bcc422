package lake

import (
	"context"
	"errors"
	"io/fs"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmooncake/mooncake/catalog"
	"github.com/pgmooncake/mooncake/sql/lake/delta"
	"github.com/pgmooncake/mooncake/sql/lake/iceberg"
	"github.com/pgmooncake/mooncake/sql/lake/remote"
)

// tableError maps an error opening an Iceberg or Delta table.
func tableError(err error, s *Spec) error {
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr):
		return err
	case errors.Is(err, iceberg.ErrNoSnapshot), errors.Is(err, delta.ErrNoVersion):
		return &pgconn.PgError{Code: "22023", Message: "could not read " + s.Format + " table " + s.names() + ": " + lastClause(err), Detail: err.Error()}
	case errors.Is(err, fs.ErrNotExist):
		return &pgconn.PgError{Code: "58P01", Message: "could not open " + s.Format + " table " + s.names() + ": no such table", Detail: err.Error()}
	}
	return &pgconn.PgError{Code: "22P04", Message: "could not read " + s.Format + " table " + s.names(), Detail: err.Error()}
}

// lastClause is what an error chain says last: "table x has no version 7
// (the newest is 3)" of "delta: table x has no version 7 (the newest is
// 3): no such version", without the package prefix.
func lastClause(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": no such "); i >= 0 {
		msg = msg[:i]
	}
	if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(msg, "delta:") {
		msg = msg[i+2:]
	}
	return msg
}

func intOption(s *Spec, name string) (*int64, error) {
	v, ok := s.Options[name]
	if !ok {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil, &pgconn.PgError{Code: "22023", Message: "option " + name + ": " + strconv.Quote(v) + " is not an integer"}
	}
	return &n, nil
}

// icebergSource plans an Iceberg table's snapshot with iceberg-go. A
// table on an object store is read through the cache (rfs).
func icebergSource(ctx context.Context, s *Spec) (string, *remoteFS, map[string]catalog.Kind, error) {
	snap, err := intOption(s, "snapshot_id")
	if err != nil {
		return "", nil, nil, err
	}
	var t *iceberg.Table
	var rfs *remoteFS
	fail := func(err error) (string, *remoteFS, map[string]catalog.Kind, error) {
		if rfs != nil {
			rfs.release()
		}
		return "", nil, nil, tableError(err, s)
	}
	if remote.IsRemote(s.Paths[0]) {
		if rfs, err = s.remoteFS(ctx); err != nil {
			return "", nil, nil, err
		}
		t, err = iceberg.OpenRemote(ctx, s.Paths[0], rfs)
	} else {
		t, err = iceberg.Open(ctx, s.Paths[0])
	}
	if err != nil {
		return fail(err)
	}
	scan, err := t.Plan(ctx, snap)
	if err != nil {
		return fail(err)
	}
	scan.RowID = s.RowID
	if err := t.FetchFiles(ctx, scan); err != nil {
		return fail(err)
	}
	if rfs != nil {
		// A query fetches the columns it reads by field id (every
		// column of a file without field ids, which a name mapping reads).
		rfs.keep = func(used []string) func(string, int32) bool {
			ids := scan.FieldIDs(used)
			return func(_ string, fid int32) bool { return fid < 0 || ids[fid] }
		}
	}
	q, err := scan.ReadSQL()
	if err != nil {
		return fail(err)
	}
	// A table mooncake wrote (a mirror, a columnstore table) records how
	// its columns are stored: by the names the scan gives them.
	var kinds map[string]catalog.Kind
	if byID := catalog.StoredKinds(t.Iceberg().Properties()); byID != nil {
		kinds = map[string]catalog.Kind{}
		for _, f := range scan.Schema {
			if k, ok := byID[f.ID]; ok {
				kinds[f.Name] = k
			}
		}
	}
	return "(" + q + ")", rfs, kinds, nil
}

// deltaSource replays a Delta table's log to a version. A table on an
// object store is read through the cache (rfs: its files stay there
// until rfs is released).
func deltaSource(ctx context.Context, s *Spec) (string, *remoteFS, error) {
	version, err := intOption(s, "version")
	if err != nil {
		return "", nil, err
	}
	fsys := delta.LocalFS()
	root := s.Paths[0]
	var rfs *remoteFS
	if remote.IsRemote(root) {
		if rfs, err = s.remoteFS(ctx); err != nil {
			return "", nil, err
		}
		fsys, root = rfs, strings.TrimRight(root, "/")
	}
	fail := func(err error) (string, *remoteFS, error) {
		if rfs != nil {
			rfs.release()
		}
		return "", nil, tableError(err, s)
	}
	snap, err := delta.Load(ctx, fsys, root, version)
	if err != nil {
		return fail(err)
	}
	deleted := map[string][]uint64{}
	for _, f := range snap.Files {
		if f.DeletionVector == nil {
			continue
		}
		pos, err := f.DeletionVector.Positions(ctx, fsys, root)
		if err != nil {
			return fail(err)
		}
		deleted[f.Path] = pos
	}
	if rfs != nil {
		// The data files are read from the cache: their footers now,
		// the columns a query reads before it runs, by physical name or
		// field id.
		phys := map[string]string{}
		ids := map[string]int32{}
		for _, f := range snap.Schema {
			phys[f.Name] = f.PhysicalName
			if f.FieldID != 0 {
				ids[f.Name] = int32(f.FieldID)
			}
		}
		rfs.keep = func(used []string) func(string, int32) bool {
			names, fids := map[string]bool{}, map[int32]bool{}
			for _, u := range used {
				names[phys[u]] = true
				if id, ok := ids[u]; ok {
					fids[id] = true
				}
			}
			return func(name string, fid int32) bool { return names[name] || (fid >= 0 && fids[fid]) }
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(8)
		locals := make([]string, len(snap.Files))
		for i, f := range snap.Files {
			g.Go(func() (err error) {
				locals[i], err = rfs.DataFile(gctx, f.Path, f.Size)
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return fail(err)
		}
		for i := range snap.Files {
			if pos, ok := deleted[snap.Files[i].Path]; ok {
				delete(deleted, snap.Files[i].Path)
				deleted[locals[i]] = pos
			}
			snap.Files[i].Path = locals[i]
		}
	}
	q, err := snap.ReadSQL(deleted)
	if err != nil {
		return fail(err)
	}
	return "(" + q + ")", rfs, nil
}
