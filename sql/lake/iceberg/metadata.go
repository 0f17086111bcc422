package iceberg

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

// File contents, as manifest entries name them.
const (
	ContentData            = "DATA"
	ContentPositionDeletes = "POSITION_DELETES"
	ContentEqualityDeletes = "EQUALITY_DELETES"
)

// ManifestEntry is one entry of a snapshot's manifests: a data or delete
// file and its state in the snapshot. It is a row of iceberg_metadata.
type ManifestEntry struct {
	ManifestPath    string
	ManifestContent string // "data" or "deletes"
	// ManifestSequenceNumber is the sequence number of the snapshot that
	// added the manifest (0 in format v1).
	ManifestSequenceNumber int64
	// Status is ADDED (by the snapshot that wrote the manifest), EXISTING
	// or DELETED (removed by that snapshot; not part of it any more).
	Status             string
	SnapshotID         int64 // the snapshot that added or deleted the file
	SequenceNumber     int64 // the file's data sequence number (0 in format v1)
	FileSequenceNumber *int64
	Content            string // DATA, POSITION_DELETES or EQUALITY_DELETES
	Path               string // as the manifest names it
	Format             string // PARQUET, AVRO, ORC, PUFFIN
	SpecID             int
	Partition          []PartitionValue
	RecordCount        int64
	FileSizeBytes      int64
	EqualityIDs        []int // equality delete files: the compared field IDs
}

// PartitionValue is one field of a file's partition tuple.
type PartitionValue struct {
	Name      string // the partition field's name
	Transform string // identity, day, bucket[4], ...
	SourceID  int    // the field ID of the column it is derived from
	Value     any    // as iceberg-go decodes it: int32, int64, string, ...; nil for NULL
	Text      string // the value as Iceberg shows it in paths ("2024-03-02", "null")
}

// Metadata lists every entry of the manifests of a snapshot (nil: the
// current one), deleted entries included, in manifest order. A table
// without snapshots has none.
func (t *Table) Metadata(ctx context.Context, snapshotID *int64) ([]ManifestEntry, error) {
	snap, err := t.snapshot(snapshotID)
	if err != nil || snap == nil {
		return nil, err
	}
	fio := tableIO{t}
	manifests, err := snap.Manifests(fio)
	if err != nil {
		return nil, fmt.Errorf("read manifest list of snapshot %d: %w", snap.SnapshotID, err)
	}
	var out []ManifestEntry
	for _, m := range manifests {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for e, err := range m.Entries(fio, false) {
			if err != nil {
				return nil, fmt.Errorf("read manifest %s: %w", m.FilePath(), err)
			}
			df := e.DataFile()
			me := ManifestEntry{
				ManifestPath:           m.FilePath(),
				ManifestContent:        m.ManifestContent().String(),
				ManifestSequenceNumber: max(m.SequenceNum(), 0),
				Status:                 entryStatus(e.Status()),
				SnapshotID:             e.SnapshotID(),
				SequenceNumber:         e.SequenceNum(),
				FileSequenceNumber:     e.FileSequenceNum(),
				Content:                contentName(df.ContentType()),
				Path:                   df.FilePath(),
				Format:                 string(df.FileFormat()),
				SpecID:                 int(df.SpecID()),
				Partition:              t.partition(df),
				RecordCount:            df.Count(),
				FileSizeBytes:          df.FileSizeBytes(),
				EqualityIDs:            df.EqualityFieldIDs(),
			}
			out = append(out, me)
		}
	}
	return out, nil
}

func entryStatus(s iceberg.ManifestEntryStatus) string {
	switch s {
	case iceberg.EntryStatusADDED:
		return "ADDED"
	case iceberg.EntryStatusEXISTING:
		return "EXISTING"
	case iceberg.EntryStatusDELETED:
		return "DELETED"
	}
	return fmt.Sprint(int(s))
}

func contentName(c iceberg.ManifestEntryContent) string {
	switch c {
	case iceberg.EntryContentData:
		return ContentData
	case iceberg.EntryContentPosDeletes:
		return ContentPositionDeletes
	case iceberg.EntryContentEqDeletes:
		return ContentEqualityDeletes
	}
	return fmt.Sprint(int(c))
}

// partition is a file's partition tuple in the order of its spec.
func (t *Table) partition(df iceberg.DataFile) []PartitionValue {
	spec := t.meta.PartitionSpecByID(int(df.SpecID()))
	if spec == nil {
		return nil
	}
	values := df.Partition()
	var out []PartitionValue
	for _, f := range spec.Fields() {
		pv := PartitionValue{Name: f.Name, Transform: f.Transform.String(), Value: values[f.FieldID]}
		if len(f.SourceIDs) > 0 {
			pv.SourceID = f.SourceIDs[0]
		}
		var srcType iceberg.Type
		if fld, ok := t.fieldByID(pv.SourceID); ok {
			srcType = fld.Type
		}
		if pv.Value == nil {
			pv.Text = "null"
		} else if srcType != nil {
			pv.Text = f.Transform.ToHumanStrType(srcType, pv.Value)
		} else {
			pv.Text = fmt.Sprint(pv.Value)
		}
		out = append(out, pv)
	}
	return out
}

// fieldByID finds a top-level or nested field by ID in the current schema,
// else in the most recent schema that has it (a dropped column).
func (t *Table) fieldByID(id int) (iceberg.NestedField, bool) {
	if f, ok := t.meta.CurrentSchema().FindFieldByID(id); ok {
		return f, true
	}
	schemas := t.meta.Schemas()
	for i := len(schemas) - 1; i >= 0; i-- {
		if f, ok := schemas[i].FindFieldByID(id); ok {
			return f, true
		}
	}
	return iceberg.NestedField{}, false
}

// ErrNoSnapshot is the error of a snapshot ID the table does not have.
var ErrNoSnapshot = errors.New("no such snapshot")

// snapshot resolves a snapshot ID (nil: the current snapshot, which is nil
// for a table without snapshots).
func (t *Table) snapshot(id *int64) (*table.Snapshot, error) {
	if id == nil {
		return t.meta.CurrentSnapshot(), nil
	}
	s := t.meta.SnapshotByID(*id)
	if s == nil {
		return nil, fmt.Errorf("table %s has no snapshot %d: %w", t.Location, *id, ErrNoSnapshot)
	}
	return s, nil
}
