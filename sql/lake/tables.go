package lake

import (
	"context"
	"errors"
	"io/fs"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmooncake/mooncake/sql/lake/delta"
	"github.com/pgmooncake/mooncake/sql/lake/iceberg"
)

// tableError maps an error opening an Iceberg or Delta table.
func tableError(err error, s *Spec) error {
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr):
		return err
	case errors.Is(err, fs.ErrNotExist):
		return &pgconn.PgError{Code: "58P01", Message: "could not open " + s.Format + " table " + s.names() + ": no such table", Detail: err.Error()}
	}
	return &pgconn.PgError{Code: "22P04", Message: "could not read " + s.Format + " table " + s.names(), Detail: err.Error()}
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

// icebergSource plans an Iceberg table's snapshot with iceberg-go.
func icebergSource(ctx context.Context, s *Spec) (string, error) {
	snap, err := intOption(s, "snapshot_id")
	if err != nil {
		return "", err
	}
	t, err := iceberg.Open(ctx, s.Paths[0])
	if err != nil {
		return "", tableError(err, s)
	}
	scan, err := t.Plan(ctx, snap)
	if err != nil {
		return "", tableError(err, s)
	}
	q, err := scan.ReadSQL()
	if err != nil {
		return "", tableError(err, s)
	}
	return "(" + q + ")", nil
}

// deltaSource replays a Delta table's log to a version.
func deltaSource(ctx context.Context, s *Spec) (string, error) {
	version, err := intOption(s, "version")
	if err != nil {
		return "", err
	}
	fsys := delta.LocalFS()
	snap, err := delta.Load(ctx, fsys, s.Paths[0], version)
	if err != nil {
		return "", tableError(err, s)
	}
	deleted := map[string][]uint64{}
	for _, f := range snap.Files {
		if f.DeletionVector == nil {
			continue
		}
		pos, err := f.DeletionVector.Positions(ctx, fsys, s.Paths[0])
		if err != nil {
			return "", tableError(err, s)
		}
		deleted[f.Path] = pos
	}
	q, err := snap.ReadSQL(deleted)
	if err != nil {
		return "", tableError(err, s)
	}
	return "(" + q + ")", nil
}
