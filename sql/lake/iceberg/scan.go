package iceberg

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

// Field is a top-level column of a snapshot's schema.
type Field struct {
	ID       int    // Iceberg field ID
	Name     string // column name in that schema
	Type     string // Iceberg type: long, decimal(9, 2), list<string>, struct<...>
	Required bool
	DuckDB   string // the DuckDB type it is read as (see DuckDBType)
	// InitialDefault is the value of the column in files written before
	// it was added (format v3); nil: NULL.
	InitialDefault any

	typ  iceberg.Type
	dflt string // InitialDefault as a DuckDB constant; "" for NULL
}

// DataFile is a data file of a scan with the delete files that apply to it.
type DataFile struct {
	Path            string // as the manifest names it
	Format          string // PARQUET, AVRO, ORC
	Records         int64  // rows in the file, before deletes
	SizeBytes       int64
	SequenceNumber  int64 // data sequence number
	SpecID          int
	Partition       []PartitionValue
	PositionDeletes []string // position delete files naming rows of this file
	EqualityDeletes []EqualityDelete
}

// EqualityDelete is an equality delete file: it deletes the rows of data
// files with a lower data sequence number (in its partition, unless it is
// unpartitioned) whose values of the fields FieldIDs equal one of its rows.
type EqualityDelete struct {
	Path     string
	FieldIDs []int
	Records  int64
}

// Scan is the planned read of one snapshot.
type Scan struct {
	// RowID adds the column ctid: each row's place as a PostgreSQL tid,
	// block (file index << 17 | row >> 15), offset (row & 32767) + 1, the
	// file index in the order of the data files' paths (RowIDFiles): what
	// UPDATE and DELETE of a columnstore table name rows by.
	RowID bool

	SnapshotID     *int64 // nil: the table has no snapshot, the scan is empty
	SequenceNumber int64
	SchemaID       int
	Schema         []Field
	Files          []DataFile

	t *Table
}

// Plan plans a scan of a snapshot: nil for the current one. The scan of
// the current snapshot has the table's current schema, as Iceberg readers
// read a table (a schema change commits no snapshot: a column added since
// reads NULL, one renamed reads by its field ID); that of an older
// snapshot has the snapshot's own schema (the schema current when it was
// committed; the current one for snapshots that do not record it), and every
// live data file with the delete files that apply to it, as iceberg-go's
// planner matches them (position deletes by path, equality deletes by
// sequence number and partition).
func (t *Table) Plan(ctx context.Context, snapshotID *int64) (*Scan, error) {
	snap, err := t.snapshot(snapshotID)
	if err != nil {
		return nil, err
	}
	schema := t.meta.CurrentSchema()
	if snapshotID != nil && snap != nil && snap.SchemaID != nil {
		for _, s := range t.meta.Schemas() {
			if s.ID == *snap.SchemaID {
				schema = s
			}
		}
	}
	sc := &Scan{SchemaID: schema.ID, t: t}
	for _, f := range schema.Fields() {
		duck, err := DuckDBType(f.Type)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", f.Name, err)
		}
		fld := Field{ID: f.ID, Name: f.Name, Type: f.Type.String(), Required: f.Required, DuckDB: duck, InitialDefault: f.InitialDefault, typ: f.Type}
		if f.InitialDefault != nil {
			if fld.dflt, err = defaultLiteral(f.Type, duck, f.InitialDefault); err != nil {
				return nil, fmt.Errorf("column %q: %w", f.Name, err)
			}
		}
		sc.Schema = append(sc.Schema, fld)
	}
	if snap == nil {
		return sc, nil
	}
	id := snap.SnapshotID
	sc.SnapshotID, sc.SequenceNumber = &id, snap.SequenceNumber

	tasks, err := t.tbl.Scan(table.WithSnapshotID(id)).PlanFiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan snapshot %d: %w", id, err)
	}
	// A large file may be split in several tasks (row group ranges): one
	// file each here.
	index := map[string]int{}
	for _, task := range tasks {
		if len(task.DeletionVectorFiles) > 0 {
			return nil, fmt.Errorf("data file %s has deletion vectors (format v3), which are not supported", task.File.FilePath())
		}
		path := task.File.FilePath()
		i, seen := index[path]
		if !seen {
			i = len(sc.Files)
			index[path] = i
			df := DataFile{
				Path:      path,
				Format:    string(task.File.FileFormat()),
				Records:   task.File.Count(),
				SizeBytes: task.File.FileSizeBytes(),
				SpecID:    int(task.File.SpecID()),
				Partition: t.partition(task.File),
			}
			if task.DataSequenceNumber != nil {
				df.SequenceNumber = *task.DataSequenceNumber
			}
			sc.Files = append(sc.Files, df)
		}
		df := &sc.Files[i]
		for _, d := range task.DeleteFiles {
			if !slices.Contains(df.PositionDeletes, d.FilePath()) {
				df.PositionDeletes = append(df.PositionDeletes, d.FilePath())
			}
		}
		for _, d := range task.EqualityDeleteFiles {
			if !slices.ContainsFunc(df.EqualityDeletes, func(e EqualityDelete) bool { return e.Path == d.FilePath() }) {
				df.EqualityDeletes = append(df.EqualityDeletes, EqualityDelete{Path: d.FilePath(), FieldIDs: d.EqualityFieldIDs(), Records: d.Count()})
			}
		}
	}
	return sc, nil
}

// PlanAt plans a scan of the snapshot that was current at ts.
func (t *Table) PlanAt(ctx context.Context, ts time.Time) (*Scan, error) {
	id := t.SnapshotAt(ts)
	if id == nil {
		return nil, fmt.Errorf("table %s had no snapshot at %s", t.Location, ts.UTC().Format(time.RFC3339Nano))
	}
	return t.Plan(ctx, id)
}

// Records is the number of rows in the scan's data files, before deletes.
func (s *Scan) Records() int64 {
	var n int64
	for _, f := range s.Files {
		n += f.Records
	}
	return n
}

// RowIDFiles are the scan's data files' paths (as the manifests name
// them) in the order RowID numbers them.
func (s *Scan) RowIDFiles() []string {
	paths := make([]string, len(s.Files))
	for i, df := range s.Files {
		paths[i] = df.Path
	}
	slices.Sort(paths)
	return slices.Compact(paths)
}
