// Package delta reads the transaction log of a Delta Lake table written by
// another tool and plans its files for DuckDB, which here reads only
// Parquet.
//
// Load replays the log as of a version (the newest by default): it reads
// _last_checkpoint when present, the newest complete checkpoint not newer
// than the version (classic single-file, multi-part, or a v2 checkpoint
// with its sidecars, in Parquet or JSON), then the JSON commits after it,
// keeping the newest action for each logical file, identified by its path
// and deletion vector. The newest metaData and protocol win. A table whose
// protocol needs a reader version above 3, or a reader feature this
// package does not implement, is refused with the feature's name; the
// implemented features are deletionVectors, columnMapping (modes name and
// id), timestampNtz, v2Checkpoint and vacuumProtocolCheck.
//
// A Snapshot lists the table's logical columns with their Delta types and
// physical names, its partition columns and its data files with partition
// values, row counts and deletion vectors. DeletionVector.Positions decodes
// a vector (inline, or stored in a file next to the data) into the deleted
// row positions, and Snapshot.ReadSQL turns the snapshot into one DuckDB
// query over read_parquet: partition values become typed constants,
// deleted positions are removed by file_row_number, physical column names
// become logical ones, and columns missing from older files read as NULL.
//
// The files are reached through FS (LocalFS for the local disk), so that
// an object store can be plugged in later.
package delta
