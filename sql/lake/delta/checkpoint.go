package delta

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// readCheckpoint loads the state a checkpoint holds: its live add actions
// (removes in a checkpoint are tombstones for VACUUM and change nothing
// for readers), metaData and protocol. A v2 checkpoint (UUID-named, or
// classic with a checkpointMetadata action) may keep its adds in sidecar
// files under _delta_log/_sidecars, read here too.
func (r *replay) readCheckpoint(ctx context.Context, fsys FS, names []string) error {
	var sidecars []*sidecarAction
	for _, name := range names {
		path := joinPath(r.logDir, name)
		collect := func(a *logAction) error {
			if a.Add != nil {
				if err := checkAdd(a.Add); err != nil {
					return fmt.Errorf("delta: malformed checkpoint %s: %w", path, err)
				}
				k, err := r.key(a.Add.Path, a.Add.DeletionVector)
				if err != nil {
					return fmt.Errorf("delta: malformed checkpoint %s: %w", path, err)
				}
				r.files[k] = a.Add
			}
			if a.Sidecar != nil {
				sidecars = append(sidecars, a.Sidecar)
			}
			r.takeMetaProtocol(a, path)
			return nil
		}
		var err error
		if strings.HasSuffix(name, ".json") {
			var data []byte
			data, err = fsys.ReadFile(ctx, path)
			if err != nil {
				return fmt.Errorf("delta: read %s: %w", path, err)
			}
			err = eachLine(data, path, func(a *logAction, _ int) error { return collect(a) })
		} else {
			err = readParquetActions(ctx, fsys, path, true, collect)
		}
		if err != nil {
			return err
		}
	}
	for _, sc := range sidecars {
		if sc.Path == "" {
			return fmt.Errorf("delta: checkpoint %s: a sidecar without a path", names[0])
		}
		path, err := resolvePath(joinPath(r.logDir, "_sidecars"), sc.Path)
		if err != nil {
			return fmt.Errorf("delta: checkpoint %s: sidecar: %w", names[0], err)
		}
		err = readParquetActions(ctx, fsys, path, false, func(a *logAction) error {
			if a.Add == nil {
				return nil
			}
			if err := checkAdd(a.Add); err != nil {
				return fmt.Errorf("delta: malformed sidecar %s: %w", path, err)
			}
			k, err := r.key(a.Add.Path, a.Add.DeletionVector)
			if err != nil {
				return fmt.Errorf("delta: malformed sidecar %s: %w", path, err)
			}
			r.files[k] = a.Add
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// wantedLeaf chooses the checkpoint columns the reader needs: the parts of
// add that make a File, metaData, protocol and sidecar (not remove, txn,
// commitInfo, domainMetadata, nor the parsed statistics and partition
// values but the row count).
func wantedLeaf(p []string, withMeta bool) bool {
	if len(p) < 2 {
		return false
	}
	switch p[0] {
	case "add":
		switch p[1] {
		case "path", "partitionValues", "size", "stats", "deletionVector":
			return true
		case "stats_parsed":
			return len(p) == 3 && p[2] == "numRecords"
		}
	case "metaData", "protocol", "sidecar":
		return withMeta
	}
	return false
}

// readParquetActions reads the actions of a Parquet checkpoint (or
// sidecar) and calls fn for each row holding an action the reader uses.
func readParquetActions(ctx context.Context, fsys FS, path string, withMeta bool, fn func(*logAction) error) (err error) {
	ra, size, err := fsys.Open(ctx, path)
	if err != nil {
		return fmt.Errorf("delta: open %s: %w", path, err)
	}
	if c, ok := ra.(io.Closer); ok {
		defer c.Close()
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("delta: malformed checkpoint %s: %v", path, p)
		}
	}()
	pf, err := file.NewParquetReader(io.NewSectionReader(ra, 0, size))
	if err != nil {
		return fmt.Errorf("delta: malformed checkpoint %s: %w", path, err)
	}
	defer pf.Close()
	schema := pf.MetaData().Schema
	var leaves []int
	for i := 0; i < schema.NumColumns(); i++ {
		if wantedLeaf(schema.Column(i).ColumnPath(), withMeta) {
			leaves = append(leaves, i)
		}
	}
	if len(leaves) == 0 {
		return nil
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 8192}, memory.DefaultAllocator)
	if err != nil {
		return fmt.Errorf("delta: malformed checkpoint %s: %w", path, err)
	}
	rr, err := fr.GetRecordReader(ctx, leaves, nil)
	if err != nil {
		return fmt.Errorf("delta: malformed checkpoint %s: %w", path, err)
	}
	defer rr.Release()
	for rr.Next() {
		rec := rr.RecordBatch()
		cols := map[string]arrow.Array{}
		for i, f := range rec.Schema().Fields() {
			cols[f.Name] = rec.Column(i)
		}
		for row := 0; row < int(rec.NumRows()); row++ {
			var a logAction
			if c := cols["add"]; c != nil && c.IsValid(row) {
				a.Add = addAt(c, row)
			}
			if c := cols["metaData"]; c != nil && c.IsValid(row) {
				a.MetaData = metaDataAt(c, row)
			}
			if c := cols["protocol"]; c != nil && c.IsValid(row) {
				a.Protocol = protocolAt(c, row)
			}
			if c := cols["sidecar"]; c != nil && c.IsValid(row) {
				a.Sidecar = &sidecarAction{}
				a.Sidecar.Path, _ = strAt(child(c, "path"), row)
				a.Sidecar.SizeInBytes, _ = intAt(child(c, "sizeInBytes"), row)
			}
			if a.Add == nil && a.MetaData == nil && a.Protocol == nil && a.Sidecar == nil {
				continue
			}
			if err := fn(&a); err != nil {
				return err
			}
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("delta: read checkpoint %s: %w", path, err)
	}
	return nil
}

func addAt(c arrow.Array, row int) *addAction {
	a := &addAction{}
	a.Path, _ = strAt(child(c, "path"), row)
	a.PartitionValues = strMapAt(child(c, "partitionValues"), row)
	a.Size, _ = intAt(child(c, "size"), row)
	if s, ok := strAt(child(c, "stats"), row); ok {
		a.Stats = &s
	}
	if sp := child(c, "stats_parsed"); sp != nil && sp.IsValid(row) {
		if n, ok := intAt(child(sp, "numRecords"), row); ok {
			a.numRecords = &n
		}
	}
	if dv := child(c, "deletionVector"); dv != nil && dv.IsValid(row) {
		d := &DeletionVector{}
		d.StorageType, _ = strAt(child(dv, "storageType"), row)
		d.PathOrInlineDv, _ = strAt(child(dv, "pathOrInlineDv"), row)
		if off, ok := intAt(child(dv, "offset"), row); ok {
			d.Offset = &off
		}
		d.SizeInBytes, _ = intAt(child(dv, "sizeInBytes"), row)
		d.Cardinality, _ = intAt(child(dv, "cardinality"), row)
		a.DeletionVector = d
	}
	return a
}

func metaDataAt(c arrow.Array, row int) *metaDataAction {
	m := &metaDataAction{}
	m.ID, _ = strAt(child(c, "id"), row)
	m.Format.Provider, _ = strAt(child(child(c, "format"), "provider"), row)
	m.SchemaString, _ = strAt(child(c, "schemaString"), row)
	m.PartitionColumns = strListAt(child(c, "partitionColumns"), row)
	m.Configuration = strMapAt(child(c, "configuration"), row)
	return m
}

func protocolAt(c arrow.Array, row int) *protocolAction {
	p := &protocolAction{}
	v, _ := intAt(child(c, "minReaderVersion"), row)
	p.MinReaderVersion = int(v)
	v, _ = intAt(child(c, "minWriterVersion"), row)
	p.MinWriterVersion = int(v)
	p.ReaderFeatures = strListAt(child(c, "readerFeatures"), row)
	return p
}

// child is the named field of a struct array, or nil.
func child(a arrow.Array, name string) arrow.Array {
	s, ok := a.(*array.Struct)
	if !ok {
		return nil
	}
	idx, ok := s.DataType().(*arrow.StructType).FieldIdx(name)
	if !ok {
		return nil
	}
	return s.Field(idx)
}

func strAt(a arrow.Array, i int) (string, bool) {
	if a == nil || a.IsNull(i) {
		return "", false
	}
	switch a := a.(type) {
	case *array.String:
		return a.Value(i), true
	case *array.LargeString:
		return a.Value(i), true
	case *array.StringView:
		return a.Value(i), true
	case *array.Binary:
		return string(a.Value(i)), true
	}
	return "", false
}

func intAt(a arrow.Array, i int) (int64, bool) {
	if a == nil || a.IsNull(i) {
		return 0, false
	}
	switch a := a.(type) {
	case *array.Int64:
		return a.Value(i), true
	case *array.Int32:
		return int64(a.Value(i)), true
	case *array.Int16:
		return int64(a.Value(i)), true
	case *array.Int8:
		return int64(a.Value(i)), true
	}
	return 0, false
}

func strMapAt(a arrow.Array, i int) map[string]*string {
	m, ok := a.(*array.Map)
	if !ok || m.IsNull(i) {
		return nil
	}
	start, end := m.ValueOffsets(i)
	out := make(map[string]*string, end-start)
	keys, items := m.Keys(), m.Items()
	for j := int(start); j < int(end); j++ {
		k, _ := strAt(keys, j)
		if v, ok := strAt(items, j); ok {
			out[k] = &v
		} else {
			out[k] = nil
		}
	}
	return out
}

func strListAt(a arrow.Array, i int) []string {
	l, ok := a.(*array.List)
	if !ok || l.IsNull(i) {
		return nil
	}
	start, end := l.ValueOffsets(i)
	out := make([]string, 0, end-start)
	for j := int(start); j < int(end); j++ {
		if s, ok := strAt(l.ListValues(), j); ok {
			out = append(out, s)
		}
	}
	return out
}
