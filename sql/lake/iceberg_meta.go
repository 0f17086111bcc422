package lake

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmooncake/mooncake/sql/lake/iceberg"
	"github.com/pgmooncake/mooncake/sql/lake/remote"
)

// SnapshotRow is a row of iceberg_snapshots(path): a snapshot of an
// Iceberg table, with DuckDB's iceberg extension's columns.
type SnapshotRow struct {
	SequenceNumber int64  `json:"sequence_number"` // 0 in format v1
	SnapshotID     int64  `json:"snapshot_id"`
	TimestampMs    string `json:"timestamp_ms"` // the commit time, UTC, to the millisecond
	ManifestList   string `json:"manifest_list"`
	Operation      string `json:"operation"` // append, overwrite, delete, replace; "" when not recorded
}

// MetadataRow is a row of iceberg_metadata(path): an entry of a
// snapshot's manifests (a data or delete file and its state), with
// DuckDB's iceberg extension's columns.
type MetadataRow struct {
	ManifestPath           string `json:"manifest_path"`
	ManifestSequenceNumber int64  `json:"manifest_sequence_number"`
	ManifestContent        string `json:"manifest_content"` // DATA or DELETE
	Status                 string `json:"status"`           // ADDED, EXISTING, DELETED
	Content                string `json:"content"`          // DATA, POSITION_DELETES, EQUALITY_DELETES
	FilePath               string `json:"file_path"`
	FileFormat             string `json:"file_format"` // PARQUET, AVRO, ORC, PUFFIN
	RecordCount            int64  `json:"record_count"`
	DataSequenceNumber     *int64 `json:"data_sequence_number"`
	FileSequenceNumber     *int64 `json:"file_sequence_number"`
}

// openIceberg opens the Iceberg table of a spec with one path (its
// directory or a metadata file); errors as iceberg_scan's.
// The caller calls release when done reading the table.
func openIceberg(ctx context.Context, s *Spec) (t *iceberg.Table, release func(), err error) {
	if s.Format != "iceberg" {
		return nil, nil, &pgconn.PgError{Code: "22023", Message: "the Iceberg metadata functions read format iceberg, not " + s.Format}
	}
	if err := s.check(); err != nil {
		return nil, nil, err
	}
	if !remote.IsRemote(s.Paths[0]) {
		t, err := iceberg.Open(ctx, s.Paths[0])
		if err != nil {
			return nil, nil, tableError(err, s)
		}
		return t, func() {}, nil
	}
	// On an object store: its metadata files through the cache, kept
	// there while they are read.
	rfs, err := s.remoteFS(ctx)
	if err != nil {
		return nil, nil, err
	}
	t, err = iceberg.OpenRemote(ctx, s.Paths[0], rfs)
	if err != nil {
		rfs.release()
		return nil, nil, tableError(err, s)
	}
	return t, rfs.release, nil
}

// IcebergSnapshots lists the snapshots of an Iceberg table in commit
// order (the order of its metadata's snapshot list).
func IcebergSnapshots(ctx context.Context, s *Spec) ([]SnapshotRow, error) {
	t, release, err := openIceberg(ctx, s)
	if err != nil {
		return nil, err
	}
	defer release()
	rows := []SnapshotRow{}
	for _, sn := range t.Snapshots() {
		rows = append(rows, SnapshotRow{
			SequenceNumber: sn.SequenceNumber,
			SnapshotID:     sn.ID,
			TimestampMs:    sn.Timestamp.UTC().Format("2006-01-02T15:04:05.000Z"),
			ManifestList:   sn.ManifestList,
			Operation:      sn.Operation,
		})
	}
	return rows, nil
}

// IcebergMetadata lists the manifest entries of a snapshot of an Iceberg
// table (the option snapshot_id; the current snapshot without it), in
// manifest order, deleted entries included. A table without snapshots has
// none.
func IcebergMetadata(ctx context.Context, s *Spec) ([]MetadataRow, error) {
	snap, err := intOption(s, "snapshot_id")
	if err != nil {
		return nil, err
	}
	t, release, err := openIceberg(ctx, s)
	if err != nil {
		return nil, err
	}
	defer release()
	if snap != nil && !hasSnapshot(t, *snap) {
		return nil, &pgconn.PgError{Code: "22023", Message: "iceberg table " + s.names() + " has no snapshot " + s.Options["snapshot_id"],
			Hint: "iceberg_snapshots(path) lists its snapshots."}
	}
	entries, err := t.Metadata(ctx, snap)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, tableError(err, s)
	}
	rows := make([]MetadataRow, 0, len(entries))
	for _, e := range entries {
		mc := strings.ToUpper(e.ManifestContent)
		if mc == "DELETES" {
			mc = "DELETE" // as DuckDB spells it
		}
		r := MetadataRow{
			ManifestPath:           e.ManifestPath,
			ManifestSequenceNumber: e.ManifestSequenceNumber,
			ManifestContent:        mc,
			Status:                 e.Status,
			Content:                e.Content,
			FilePath:               e.Path,
			FileFormat:             strings.ToUpper(e.Format),
			RecordCount:            e.RecordCount,
			FileSequenceNumber:     e.FileSequenceNumber,
		}
		if e.SequenceNumber >= 0 {
			seq := e.SequenceNumber
			r.DataSequenceNumber = &seq
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func hasSnapshot(t *iceberg.Table, id int64) bool {
	for _, sn := range t.Snapshots() {
		if sn.ID == id {
			return true
		}
	}
	return false
}
