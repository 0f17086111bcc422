package service

import (
	"context"
	"encoding/json"

	"github.com/pgmooncake/mooncake/catalog"
)

// Columnstore tables (CREATE TABLE ... USING columnstore): the sidecar
// writes their files and returns metadata locations; the backend commits
// them to the catalog in the user's transaction (see catalog/columnstore.go).

// columnstoreColumn is a column of a columnstore request. For a domain the
// backend sends the base type and its typmod (getBaseTypeAndTypmod), as
// mirrors store domains; type_name is the column's own type.
type columnstoreColumn struct {
	Name     string `json:"name"`
	TypeOID  uint32 `json:"type_oid"`
	Typmod   int32  `json:"typmod"`
	TypeName string `json:"type_name"`
	NotNull  bool   `json:"not_null"`
}

type columnstoreRequest struct {
	Database         string              `json:"database"`
	Namespace        string              `json:"namespace"`
	Table            string              `json:"table"`
	Columns          []columnstoreColumn `json:"columns"`
	Location         string              `json:"location"`
	MetadataLocation string              `json:"metadata_location"`
	Rows             [][]*string         `json:"rows"`
	IDsLocation      string              `json:"ids_location"` // columnstore_modify: the metadata the row ids are of
	Deletes          [][2]int64          `json:"deletes"`      // columnstore_modify: file index, row number
}

func decodeColumnstore(req *Request) (*columnstoreRequest, error) {
	var r columnstoreRequest
	if err := json.Unmarshal(req.raw, &r); err != nil {
		return nil, userError("08P01", "malformed %s request: %v", req.Op, err)
	}
	req.raw = nil
	return &r, nil
}

// columnstoreCreate writes the first metadata file of a new columnstore
// table; it neither adds a catalog row nor registers anything.
func (s *server) columnstoreCreate(ctx context.Context, req *Request) (any, error) {
	r, err := decodeColumnstore(req)
	if err != nil {
		return nil, err
	}
	if r.Database == "" || r.Namespace == "" || r.Table == "" || len(r.Columns) == 0 {
		return nil, userError("08P01", "columnstore_create needs database, namespace, table and columns")
	}
	d, err := s.dbs.getExt(ctx, r.Database, req.Extension)
	if err != nil {
		return nil, err
	}
	cols := make([]catalog.Column, len(r.Columns))
	for i, c := range r.Columns {
		if c.Name == "" || c.TypeOID == 0 {
			return nil, userError("08P01", "columnstore_create: column %d needs a name and a type_oid", i+1)
		}
		// The mapping of mirrors (cdc.ResolveColumnType once domains are
		// resolved).
		t, err := catalog.ResolveType(c.TypeOID, c.Typmod, c.TypeName)
		if err != nil {
			e := userError("0A000", "column %q has type %s, which columnstore tables do not support yet", c.Name, c.TypeName)
			return nil, e
		}
		cols[i] = catalog.Column{Name: c.Name, Type: t, NotNull: c.NotNull}
	}
	location := r.Location
	if location == "" {
		location = d.mirrors.Catalog.ColumnstoreLocation(r.Namespace, r.Table)
	}
	meta, err := catalog.CreateColumnstore(ctx, cols, location)
	if err != nil {
		return nil, err
	}
	return map[string]any{"metadata_location": meta, "location": location}, nil
}

// columnstoreAppend writes rows as a new data file and snapshot of a
// columnstore table, in a new metadata file; the base one stays as it is.
func (s *server) columnstoreAppend(ctx context.Context, req *Request) (any, error) {
	r, err := decodeColumnstore(req)
	if err != nil {
		return nil, err
	}
	if r.MetadataLocation == "" || len(r.Columns) == 0 {
		return nil, userError("08P01", "columnstore_append needs metadata_location and columns")
	}
	if r.Database != "" {
		if _, err := s.dbs.getExt(ctx, r.Database, req.Extension); err != nil {
			return nil, err
		}
	}
	names := make([]string, len(r.Columns))
	for i, c := range r.Columns {
		names[i] = c.Name
	}
	rows := r.Rows
	r.Rows = nil
	res, err := catalog.AppendColumnstore(ctx, s.dbs.engine.DB, r.MetadataLocation, names, rows)
	if err != nil {
		return nil, err
	}
	return map[string]any{"metadata_location": res.MetadataLocation, "rows": res.Rows, "data_files": res.DataFiles}, nil
}

// columnstoreTruncate empties a columnstore table: a new snapshot without
// its data files, in a new metadata file.
func (s *server) columnstoreTruncate(ctx context.Context, req *Request) (any, error) {
	r, err := decodeColumnstore(req)
	if err != nil {
		return nil, err
	}
	if r.MetadataLocation == "" {
		return nil, userError("08P01", "columnstore_truncate needs metadata_location")
	}
	if r.Database != "" {
		if _, err := s.dbs.getExt(ctx, r.Database, req.Extension); err != nil {
			return nil, err
		}
	}
	loc, err := catalog.TruncateColumnstore(ctx, r.MetadataLocation)
	if err != nil {
		return nil, err
	}
	return map[string]any{"metadata_location": loc}, nil
}

// columnstoreModify deletes rows of a columnstore table (named by the row
// ids of an UPDATE's or DELETE's scan) and appends others (an UPDATE's new
// rows), in one snapshot of a new metadata file.
func (s *server) columnstoreModify(ctx context.Context, req *Request) (any, error) {
	r, err := decodeColumnstore(req)
	if err != nil {
		return nil, err
	}
	if r.MetadataLocation == "" || r.IDsLocation == "" {
		return nil, userError("08P01", "columnstore_modify needs metadata_location and ids_location")
	}
	if r.Database != "" {
		if _, err := s.dbs.getExt(ctx, r.Database, req.Extension); err != nil {
			return nil, err
		}
	}
	names := make([]string, len(r.Columns))
	for i, c := range r.Columns {
		names[i] = c.Name
	}
	rows := r.Rows
	r.Rows = nil
	res, err := catalog.ModifyColumnstore(ctx, s.dbs.engine.DB, r.MetadataLocation, r.IDsLocation, r.Deletes, names, rows)
	if err != nil {
		return nil, err
	}
	return map[string]any{"metadata_location": res.MetadataLocation, "rows": res.Rows}, nil
}
