package catalog

import (
	"context"
	gosql "database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
)

// Columnstore tables (CREATE TABLE ... USING columnstore) are Iceberg tables
// of the catalog that PostgreSQL writes transactionally: the sidecar only
// writes their files (data files, metadata JSON files) and returns metadata
// locations; the backend commits the newest one to the catalog row in the
// user's transaction. Nothing here touches the catalog or the sidecar's
// memory: a version nobody commits is simply forgotten.

// PropColumnstore marks a columnstore table (value "1"). Such a table has
// no PropSource, so OpenSet does not take it for a mirror.
const PropColumnstore = "mooncake.columnstore"

// appendBatchRows is how many rows go to DuckDB per Arrow batch when a
// columnstore table is appended to.
const appendBatchRows = 8192

// ColumnstoreLocation is the default location of a new columnstore table:
// <warehouse>/<database>/<namespace>/<table>-<uuid>.
func (c *Catalog) ColumnstoreLocation(namespace, name string) string {
	return filepath.Join(c.warehouse, pathSegment(namespace), pathSegment(name)+"-"+newID())
}

// CreateColumnstore writes the first metadata file of a new columnstore
// table at location (a local directory): format v2, unpartitioned, the
// columns as optional fields with IDs 1, 2, ... stored as mirrors store
// them (ColumnType.IcebergType), recorded in PropColumns. It returns the
// metadata file's path. Column types are resolved by the caller
// (ResolveType, domains to their base type), as for mirrors.
func CreateColumnstore(ctx context.Context, cols []Column, location string) (string, error) {
	if len(cols) == 0 {
		return "", pgError("0A000", "a columnstore table needs at least one column", "", "")
	}
	if strings.Contains(location, "://") && !strings.HasPrefix(location, "file://") {
		return "", pgError("0A000", "columnstore tables on object stores are not supported yet", "",
			"Leave the location empty to keep the table in the sidecar's warehouse.")
	}
	location = strings.TrimSuffix(strings.TrimPrefix(location, "file://"), "/")
	if !filepath.IsAbs(location) {
		return "", pgError("22023", fmt.Sprintf("columnstore table location %q is not an absolute path", location), "", "")
	}
	lower := map[string]string{}
	fields := make([]iceberg.NestedField, len(cols))
	cols = append([]Column(nil), cols...)
	for i := range cols {
		c := &cols[i]
		// DuckDB, which reads the table, compares names case-insensitively.
		if other, dup := lower[strings.ToLower(c.Name)]; dup {
			return "", pgError("42701", fmt.Sprintf("columns %q and %q differ only in case, which the columnstore cannot tell apart", other, c.Name), "", "")
		}
		lower[strings.ToLower(c.Name)] = c.Name
		c.ID, c.AttNum = i+1, i+1
		// Optional even when NOT NULL, as for mirrors: the constraint is
		// PostgreSQL's, and append checks it.
		fields[i] = iceberg.NestedField{ID: c.ID, Name: c.Name, Type: c.Type.IcebergType()}
	}
	colsJSON, _, err := encodeColumns(cols, nil)
	if err != nil {
		return "", err
	}
	props := iceberg.Properties{
		PropColumnstore:                   "1",
		PropColumns:                       colsJSON,
		PropKey:                           "[]",
		"format-version":                  "2",
		"write.parquet.compression-codec": "zstd",
	}
	meta, err := table.NewMetadata(iceberg.NewSchema(0, fields...), iceberg.UnpartitionedSpec, table.UnsortedSortOrder, location, props)
	if err != nil {
		return "", err
	}
	return writeMetadata(ctx, meta, 0)
}

// writeMetadata writes meta as the table's metadata file of the given
// version, <location>/metadata/<version>-<uuid>.metadata.json, with the IO
// iceberg-go's catalog uses; it returns its location.
func writeMetadata(ctx context.Context, meta table.Metadata, version int) (string, error) {
	provider, err := table.LoadLocationProvider(meta.Location(), meta.Properties())
	if err != nil {
		return "", err
	}
	loc, err := provider.NewTableMetadataFileLocation(version)
	if err != nil {
		return "", err
	}
	fsys, err := icebergio.LoadFS(ctx, meta.Properties(), loc)
	if err != nil {
		return "", err
	}
	wfs, ok := fsys.(icebergio.WriteFileIO)
	if !ok {
		return "", errors.New("the table's file system cannot be written")
	}
	out, err := wfs.Create(loc)
	if err != nil {
		return "", err
	}
	if err := json.NewEncoder(out).Encode(meta); err != nil {
		out.Close()
		os.Remove(localPath(loc))
		return "", err
	}
	if err := out.Close(); err != nil {
		os.Remove(localPath(loc))
		return "", err
	}
	return localPath(loc), nil
}

func localPath(loc string) string { return strings.TrimPrefix(loc, "file://") }

var metadataFileName = regexp.MustCompile(`^(\d+)-[0-9a-fA-F-]{36}(?:\.\w+)?\.metadata\.json$`)

// stagingCatalog is the table.CatalogIO of a columnstore table being
// appended to: a commit applies the updates to the base metadata and writes
// them as the next metadata file, leaving the catalog alone.
type stagingCatalog struct {
	base    table.Metadata
	baseLoc string
	newLoc  string
	tbl     *table.Table
}

func (c *stagingCatalog) LoadTable(context.Context, table.Identifier) (*table.Table, error) {
	return c.tbl, nil
}

func (c *stagingCatalog) CommitTable(ctx context.Context, _ table.Identifier, reqs []table.Requirement, updates []table.Update) (table.Metadata, string, error) {
	for _, r := range reqs {
		if err := r.Validate(c.base); err != nil {
			return nil, "", err
		}
	}
	m := metadataFileName.FindStringSubmatch(path.Base(c.baseLoc))
	if m == nil {
		return nil, "", fmt.Errorf("metadata file name %q does not carry a version", path.Base(c.baseLoc))
	}
	version, _ := strconv.Atoi(m[1])
	meta, err := table.UpdateTableMetadata(c.base, updates, c.baseLoc)
	if err != nil {
		return nil, "", err
	}
	loc, err := writeMetadata(ctx, meta, version+1)
	if err != nil {
		return nil, "", err
	}
	c.newLoc = loc
	return meta, loc, nil
}

// LoadColumnstore reads a columnstore table's metadata file (any version,
// committed or not) and its columns.
func LoadColumnstore(ctx context.Context, metadataLocation string) (*table.Table, []Column, error) {
	if _, err := os.Stat(localPath(metadataLocation)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, pgError("58P01", fmt.Sprintf("columnstore metadata file %q does not exist", metadataLocation), "", "")
		}
		return nil, nil, err
	}
	cat := &stagingCatalog{baseLoc: metadataLocation}
	tbl, err := table.NewFromLocation(ctx, table.Identifier{"columnstore"}, metadataLocation,
		icebergio.LoadFSFunc(nil, metadataLocation), cat)
	if err != nil {
		return nil, nil, fmt.Errorf("read columnstore metadata %s: %w", metadataLocation, err)
	}
	cat.base, cat.tbl = tbl.Metadata(), tbl
	props := tbl.Properties()
	if props[PropColumnstore] != "1" {
		return nil, nil, pgError("42809", fmt.Sprintf("%s is not the metadata of a columnstore table", metadataLocation), "", "")
	}
	cols, _, err := decodeColumns(props[PropColumns], props[PropKey])
	if err != nil {
		return nil, nil, err
	}
	return tbl, cols, nil
}

// Appended is the outcome of AppendColumnstore.
type Appended struct {
	MetadataLocation string // the new metadata file (the base's when nothing was appended)
	Rows             int64
	DataFiles        int
}

// AppendColumnstore appends rows to the columnstore table whose metadata
// file is base: one Parquet data file under <location>/data/ and a new
// snapshot, in a new metadata file of the next version. base is left as it
// is. names are the table's columns the row values are for, in order
// (columns left out are NULL); values are PostgreSQL text output (see
// ColumnType.CastFromText), nil for NULL. The rows are converted and written
// as a mirror's large transaction is (a spill file: Arrow batches of text
// cast by DuckDB on a connection of duck, Parquet with field IDs).
func AppendColumnstore(ctx context.Context, duck *gosql.DB, base string, names []string, rows [][]*string) (Appended, error) {
	tbl, cols, err := LoadColumnstore(ctx, base)
	if err != nil {
		return Appended{}, err
	}
	// pos[i]: the row value of table column i, -1 if not sent.
	pos := make([]int, len(cols))
	for i := range pos {
		pos[i] = -1
	}
	for j, n := range names {
		i := columnIndex(cols, n)
		if i < 0 {
			return Appended{}, pgError("42703", fmt.Sprintf("column %q of the columnstore table does not exist", n), "", "")
		}
		if pos[i] >= 0 {
			return Appended{}, pgError("42701", fmt.Sprintf("column %q is given more than once", n), "", "")
		}
		pos[i] = j
	}
	for r, row := range rows {
		if len(row) != len(names) {
			return Appended{}, pgError("08P01", fmt.Sprintf("row %d has %d values for %d columns", r+1, len(row), len(names)), "", "")
		}
		for i, c := range cols {
			if c.NotNull && (pos[i] < 0 || row[pos[i]] == nil) {
				return Appended{}, pgError("23502", fmt.Sprintf("null value in column %q of the columnstore table violates not-null constraint", c.Name), "", "")
			}
		}
	}
	if len(rows) == 0 {
		return Appended{MetadataLocation: base}, nil
	}

	// The spill file writer of mirrors, for a stand-in mirror of the table.
	m := newMirror("", "", "", cols, nil)
	m.tbl = tbl
	sf, err := startSpill(ctx, duck, m)
	if err != nil {
		return Appended{}, err
	}
	batch := make([][]*string, 0, min(len(rows), appendBatchRows))
	send := func() error {
		err := sf.add(m, batch)
		batch = batch[:0]
		return err
	}
	// every column sent, in the table's order (INSERT, COPY): rows as they are
	same := len(names) == len(cols)
	for i, p := range pos {
		same = same && p == i
	}
	for _, row := range rows {
		full := row
		if !same {
			full = make([]*string, len(cols))
			for i, p := range pos {
				if p >= 0 {
					full[i] = row[p]
				}
			}
		}
		batch = append(batch, full)
		if len(batch) == appendBatchRows {
			if err := send(); err != nil {
				break
			}
		}
	}
	if len(batch) > 0 {
		send() // an error comes back from finish
	}
	if err := sf.finish(); err != nil {
		os.Remove(sf.path)
		return Appended{}, appendError(ctx, duck, cols, pos, rows, err)
	}
	df, err := m.dataFile(ctx, tbl, sf.path)
	if err != nil {
		os.Remove(sf.path)
		return Appended{}, err
	}
	tx := tbl.NewTransaction()
	if err := tx.AddDataFiles(ctx, []iceberg.DataFile{df}, nil); err != nil {
		os.Remove(sf.path)
		return Appended{}, err
	}
	newTbl, err := tx.Commit(ctx)
	if err != nil {
		os.Remove(sf.path)
		return Appended{}, fmt.Errorf("write columnstore metadata: %w", err)
	}
	return Appended{MetadataLocation: localPath(newTbl.MetadataLocation()), Rows: sf.rows, DataFiles: 1}, nil
}

func columnIndex(cols []Column, name string) int {
	for i, c := range cols {
		if c.Name == name {
			return i
		}
	}
	return -1
}

// appendError turns a failed write into the error PostgreSQL would give: a
// value a column's type cannot read is 22P02, naming the column and its
// type but not the value. The column is found by casting the rows again,
// one column at a time.
func appendError(ctx context.Context, duck *gosql.DB, cols []Column, pos []int, rows [][]*string, err error) error {
	if !strings.Contains(err.Error(), "Conversion Error") && !strings.Contains(err.Error(), "Invalid Input Error") {
		return fmt.Errorf("write columnstore data file: %s", Redact(err.Error()))
	}
	conn, cerr := duck.Conn(ctx)
	if cerr == nil {
		defer conn.Close()
		for i, c := range cols {
			if pos[i] < 0 || c.Type.Kind == KindString || c.Type.Kind == KindText {
				continue
			}
			var vals [][]*string
			for _, r := range rows {
				vals = append(vals, []*string{r[pos[i]]})
			}
			failed := false
			for start := 0; start < len(vals) && !failed; start += appendBatchRows {
				b := textBatch(textSchema("c", 1), vals[start:min(start+appendBatchRows, len(vals))])
				rdr := &sliceReader{batch: b} // owns b
				rdr.schema = b.Schema()
				rdr.refs.Store(1)
				rerr := registerReader(conn, rdr, func(view string) error {
					var n int64
					return conn.QueryRowContext(ctx, "SELECT count("+c.Type.CastFromText("c0")+") FROM "+view).Scan(&n)
				})
				failed = rerr != nil
			}
			if failed {
				return pgError("22P02", fmt.Sprintf("invalid input syntax for type %s in column %q of the columnstore table", typeName(c.Type), c.Name), "", "")
			}
		}
	}
	return pgError("22P02", "invalid input syntax in a row for the columnstore table: "+Redact(err.Error()), "", "")
}

func typeName(t ColumnType) string {
	if t.Name != "" {
		return t.Name
	}
	return t.DuckDBType()
}

// sliceReader is an Arrow record reader of one batch, which it releases
// once read (or when the reader is released).
type sliceReader struct {
	chanReader
	batch arrow.RecordBatch
	done  bool
}

func (r *sliceReader) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if r.done {
		return false
	}
	r.done = true
	r.cur = r.batch
	return true
}
