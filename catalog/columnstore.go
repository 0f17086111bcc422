package catalog

import (
	"context"
	gosql "database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
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
	return joinLoc(c.warehouse, pathSegment(namespace), pathSegment(name)+"-"+newID())
}

// CreateColumnstore writes the first metadata file of a new columnstore
// table at location (a directory of the server or an s3:// prefix): format v2, unpartitioned, the
// columns as optional fields with IDs 1, 2, ... stored as mirrors store
// them (ColumnType.IcebergType), recorded in PropColumns. It returns the
// metadata file's path. Column types are resolved by the caller
// (ResolveType, domains to their base type), as for mirrors.
func CreateColumnstore(ctx context.Context, cols []Column, location string) (string, error) {
	return CreateColumnstoreIn(ctx, cols, location, false)
}

// CreateColumnstoreIn is CreateColumnstore recording whether location is
// a directory made for the table alone (owned: ColumnstoreLocation), which
// a DROP TABLE removes whole, or one the user gave, of which it removes
// the table's files only (PropLocationOwned, PurgeDropped).
func CreateColumnstoreIn(ctx context.Context, cols []Column, location string, owned bool) (string, error) {
	if len(cols) == 0 {
		return "", pgError("0A000", "a columnstore table needs at least one column", "", "")
	}
	location, err := NormalizeLocation(location)
	if err != nil {
		return "", err
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
		PropLocationOwned:                 map[bool]string{true: "1", false: "0"}[owned],
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
	fsys, err := icebergio.LoadFS(ctx, ioProps(ctx), loc)
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
	return metadataPath(loc), nil
}

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
	local, err := fetch(ctx, "", metadataLocation)
	if err == nil {
		_, err = os.Stat(local)
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || sqlState(err) == "58P01" {
			return nil, nil, pgError("58P01", fmt.Sprintf("columnstore metadata file %q does not exist", metadataLocation), "", "")
		}
		return nil, nil, err
	}
	cat := &stagingCatalog{baseLoc: metadataLocation}
	tbl, err := table.NewFromLocation(ctx, table.Identifier{"columnstore"}, metadataLocation,
		icebergio.LoadFSFunc(ioProps(ctx), metadataLocation), cat)
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
	if len(rows) == 0 {
		if _, err := rowPositions(cols, names, rows); err != nil {
			return Appended{}, err
		}
		return Appended{MetadataLocation: base}, nil
	}
	if nan := nanColumns(cols, names, rows); len(nan) > 0 {
		if base, err = ColumnstoreAsText(ctx, duck, base, nan); err != nil {
			return Appended{}, err
		}
		if tbl, cols, err = LoadColumnstore(ctx, base); err != nil {
			return Appended{}, err
		}
	}
	df, path, n, err := writeRows(ctx, duck, tbl, cols, names, rows)
	if err != nil {
		return Appended{}, err
	}
	tx := tbl.NewTransaction()
	if err := tx.AddDataFiles(ctx, []iceberg.DataFile{df}, nil); err != nil {
		os.Remove(path)
		return Appended{}, err
	}
	newTbl, err := tx.Commit(ctx)
	if err != nil {
		os.Remove(path)
		return Appended{}, fmt.Errorf("write columnstore metadata: %w", err)
	}
	return Appended{MetadataLocation: metadataPath(newTbl.MetadataLocation()), Rows: n, DataFiles: 1}, nil
}

// rowPositions checks rows against the table's columns and returns, per
// table column, the index of its value in a row (-1: not sent, NULL).
func rowPositions(cols []Column, names []string, rows [][]*string) ([]int, error) {
	pos := make([]int, len(cols))
	for i := range pos {
		pos[i] = -1
	}
	for j, n := range names {
		i := columnIndex(cols, n)
		if i < 0 {
			return nil, pgError("42703", fmt.Sprintf("column %q of the columnstore table does not exist", n), "", "")
		}
		if pos[i] >= 0 {
			return nil, pgError("42701", fmt.Sprintf("column %q is given more than once", n), "", "")
		}
		pos[i] = j
	}
	for r, row := range rows {
		if len(row) != len(names) {
			return nil, pgError("08P01", fmt.Sprintf("row %d has %d values for %d columns", r+1, len(row), len(names)), "", "")
		}
		for i, c := range cols {
			if c.NotNull && (pos[i] < 0 || row[pos[i]] == nil) {
				return nil, pgError("23502", fmt.Sprintf("null value in column %q of the columnstore table violates not-null constraint", c.Name), "", "")
			}
		}
	}
	return pos, nil
}

// writeRows writes rows (at least one) as one Parquet data file of the
// table, as a mirror's large transaction is written (a spill file: Arrow
// batches of text cast by DuckDB, Parquet with field IDs).
func writeRows(ctx context.Context, duck *gosql.DB, tbl *table.Table, cols []Column, names []string, rows [][]*string) (iceberg.DataFile, string, int64, error) {
	pos, err := rowPositions(cols, names, rows)
	if err != nil {
		return nil, "", 0, err
	}
	m := newMirror("", "", "", cols, nil)
	m.tbl = tbl
	sf, err := startSpill(ctx, duck, m)
	if err != nil {
		return nil, "", 0, err
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
		return nil, "", 0, appendError(ctx, duck, cols, pos, rows, err)
	}
	df, err := m.dataFile(ctx, tbl, sf.path)
	if err != nil {
		os.Remove(sf.path)
		return nil, "", 0, err
	}
	return df, sf.path, sf.rows, nil
}

// ModifyColumnstore deletes rows of the columnstore table whose metadata
// file is base and appends others (an UPDATE's new rows, a DELETE's none):
// one position delete file, one data file, one snapshot, in a new metadata
// file. Rows to delete are named as the scan of ids (a metadata file, base
// or an earlier version of the same transaction) numbered them
// (iceberg.Scan.RowID): file index, row number.
func ModifyColumnstore(ctx context.Context, duck *gosql.DB, base, ids string, deletes [][2]int64,
	names []string, rows [][]*string) (Appended, error) {
	tbl, cols, err := LoadColumnstore(ctx, base)
	if err != nil {
		return Appended{}, err
	}
	if len(deletes) == 0 && len(rows) == 0 {
		return Appended{MetadataLocation: base}, nil
	}
	if nan := nanColumns(cols, names, rows); len(nan) > 0 {
		// The deletes name rows of the files the columns' rewrite
		// replaces: they go first, then the rewrite, then the rows.
		del, err := ModifyColumnstore(ctx, duck, base, ids, deletes, nil, nil)
		if err != nil {
			return Appended{}, err
		}
		text, err := ColumnstoreAsText(ctx, duck, del.MetadataLocation, nan)
		if err != nil {
			return Appended{}, err
		}
		add, err := AppendColumnstore(ctx, duck, text, names, rows)
		if err != nil {
			return Appended{}, err
		}
		return Appended{MetadataLocation: add.MetadataLocation, Rows: del.Rows + add.Rows, DataFiles: del.DataFiles + add.DataFiles}, nil
	}
	var files []string
	if len(deletes) > 0 {
		idsTbl := tbl
		if ids != base {
			if idsTbl, _, err = LoadColumnstore(ctx, ids); err != nil {
				return Appended{}, err
			}
		}
		if idsTbl.CurrentSnapshot() != nil {
			tasks, err := idsTbl.Scan().PlanFiles(ctx)
			if err != nil {
				return Appended{}, fmt.Errorf("plan columnstore files: %w", err)
			}
			for _, t := range tasks {
				files = append(files, t.File.FilePath())
			}
		}
		slices.Sort(files)
		files = slices.Compact(files)
		// Files written again since the scan (ColumnstoreAsText, by an
		// earlier batch of the same UPDATE): the same rows at the same
		// positions, in the new files.
		renamed := RenamedFiles(tbl.Properties())
		for i, f := range files {
			if n, ok := renamed[f]; ok {
				files[i] = n
			}
		}
	}
	tx := tbl.NewTransaction()
	rd := tx.NewRowDelta(nil)
	var written []string
	cleanup := func() {
		for _, p := range written {
			os.Remove(p)
		}
	}
	var n int64
	if len(rows) > 0 {
		df, path, cnt, err := writeRows(ctx, duck, tbl, cols, names, rows)
		if err != nil {
			return Appended{}, err
		}
		written = append(written, path)
		rd.AddRows(df)
		n = cnt
	}
	if len(deletes) > 0 {
		delPath, cnt, err := writePositionDeletes(ctx, duck, tbl, files, deletes)
		if err != nil {
			cleanup()
			return Appended{}, err
		}
		written = append(written, delPath)
		fi, err := os.Stat(delPath)
		if err != nil {
			cleanup()
			return Appended{}, err
		}
		uris, err := publish(ctx, "", tbl.Location(), delPath)
		if err != nil {
			cleanup()
			return Appended{}, err
		}
		b, err := iceberg.NewDataFileBuilder(*iceberg.UnpartitionedSpec, iceberg.EntryContentPosDeletes, uris[0],
			iceberg.ParquetFile, nil, nil, nil, cnt, fi.Size())
		if err != nil {
			cleanup()
			return Appended{}, err
		}
		rd.AddDeletes(b.Build())
		n += cnt
	}
	if err := rd.Commit(ctx); err != nil {
		cleanup()
		return Appended{}, fmt.Errorf("stage columnstore snapshot: %w", err)
	}
	newTbl, err := tx.Commit(ctx)
	if err != nil {
		cleanup()
		return Appended{}, fmt.Errorf("write columnstore metadata: %w", err)
	}
	return Appended{MetadataLocation: metadataPath(newTbl.MetadataLocation()), Rows: n, DataFiles: len(written)}, nil
}

// writePositionDeletes writes an Iceberg position delete file of the rows
// (file index into files, row number), sorted as the format asks.
func writePositionDeletes(ctx context.Context, duck *gosql.DB, tbl *table.Table, files []string, deletes [][2]int64) (string, int64, error) {
	type del struct {
		path string
		pos  int64
	}
	dels := make([]del, len(deletes))
	for i, d := range deletes {
		if d[0] < 0 || d[0] >= int64(len(files)) || d[1] < 0 {
			return "", 0, pgError("22023", fmt.Sprintf("row id (%d, %d) names no row of the columnstore table", d[0], d[1]), "", "")
		}
		dels[i] = del{files[d[0]], d[1]}
	}
	slices.SortFunc(dels, func(a, b del) int {
		if c := strings.Compare(a.path, b.path); c != 0 {
			return c
		}
		return int(min(max(a.pos-b.pos, -1), 1))
	})
	dels = slices.Compact(dels)
	dir := localPath(joinLoc(tbl.Location(), "data"))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", 0, err
	}
	csvPath := filepath.Join(dir, "deletes-"+newID()+".csv")
	f, err := os.Create(csvPath)
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(csvPath)
	w := csv.NewWriter(f)
	for _, d := range dels {
		w.Write([]string{d.path, strconv.FormatInt(d.pos, 10)})
	}
	w.Flush()
	if err := errors.Join(w.Error(), f.Close()); err != nil {
		return "", 0, err
	}
	delPath := filepath.Join(dir, "deletes-"+newID()+".parquet")
	q := "COPY (SELECT file_path, pos FROM read_csv(" + QuoteLiteral(csvPath) +
		", columns = {'file_path': 'VARCHAR', 'pos': 'BIGINT'}, header = false, quote = '\"', escape = '\"', auto_detect = false)) TO " +
		QuoteLiteral(delPath) + " (" + parquetOptions + ", FIELD_IDS {'file_path': " + strconv.Itoa(fieldIDDeleteFilePath) +
		", 'pos': " + strconv.Itoa(fieldIDDeletePos) + "})"
	if _, err := duck.ExecContext(ctx, q); err != nil {
		os.Remove(delPath)
		return "", 0, fmt.Errorf("write delete file: %w", err)
	}
	return delPath, int64(len(dels)), nil
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

// TruncateColumnstore empties the columnstore table whose metadata file is
// base: a new snapshot without its data files, in a new metadata file of
// the next version (base is left as it is). A table without rows keeps
// base.
func TruncateColumnstore(ctx context.Context, base string) (string, error) {
	tbl, _, err := LoadColumnstore(ctx, base)
	if err != nil {
		return "", err
	}
	if tbl.CurrentSnapshot() == nil {
		return base, nil
	}
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		return "", fmt.Errorf("plan columnstore files: %w", err)
	}
	var files []iceberg.DataFile
	seen := map[string]bool{}
	for _, t := range tasks {
		if !seen[t.File.FilePath()] {
			seen[t.File.FilePath()] = true
			files = append(files, t.File)
		}
	}
	if len(files) == 0 {
		return base, nil
	}
	// The delete files go too: they name rows of the files removed, and
	// left live they would still count in the snapshot summary's
	// total-position-deletes (ColumnstoreStats).
	var deletes []iceberg.DataFile
	for _, t := range tasks {
		for _, d := range t.DeleteFiles {
			if !seen[d.FilePath()] {
				seen[d.FilePath()] = true
				deletes = append(deletes, d)
			}
		}
	}
	tx := tbl.NewTransaction()
	if err := tx.ReplaceFiles(ctx, files, nil, deletes, nil); err != nil {
		return "", fmt.Errorf("truncate columnstore table: %w", err)
	}
	newTbl, err := tx.Commit(ctx)
	if err != nil {
		return "", fmt.Errorf("write columnstore metadata: %w", err)
	}
	return metadataPath(newTbl.MetadataLocation()), nil
}

// AlterColumnstore changes the columns of the columnstore table whose
// metadata file is base to cols (the foreign table's columns after an
// ALTER TABLE, in attnum order; Column.AttNum set, Column.ID ignored): a
// new metadata file of the next version with the evolved Iceberg schema
// and the mooncake.columns property, no new snapshot (base is left as it
// is). A column keeps its field ID by its attnum, so a renamed or widened
// column reads its old files; a column added reads NULL from them, one
// dropped is not read. Type changes must keep every stored value as it is:
// Iceberg's promotions (int to long, float to double), the same Iceberg
// type (varchar(n) to text, smallint to integer, numeric of more digits:
// all stored alike), else 0A000.
func AlterColumnstore(ctx context.Context, duck *gosql.DB, base string, cols []Column) (string, error) {
	tbl, cur, err := LoadColumnstore(ctx, base)
	if err != nil {
		return "", err
	}
	if len(cols) == 0 {
		return "", pgError("0A000", "a columnstore table needs at least one column", "",
			"Add a column before dropping the last one.")
	}
	byAtt := map[int]Column{}
	for _, c := range cur {
		if c.AttNum > 0 {
			byAtt[c.AttNum] = c
		}
	}
	// A numeric stored as DECIMAL that becomes one no DECIMAL holds
	// (numeric without a typmod, or of more than 38 digits: every value of
	// the old type is one of the new) is stored as its text first.
	var asText []string
	for _, c := range cols {
		old, ok := byAtt[c.AttNum]
		if ok && c.AttNum > 0 && old.Type.Kind == KindDecimal && c.Type.OID == OIDNumeric && c.Type.Kind != KindDecimal {
			asText = append(asText, old.Name)
		}
	}
	if len(asText) > 0 {
		if base, err = ColumnstoreAsText(ctx, duck, base, asText); err != nil {
			return "", err
		}
		if tbl, cur, err = LoadColumnstore(ctx, base); err != nil {
			return "", err
		}
		for _, c := range cur {
			if c.AttNum > 0 {
				byAtt[c.AttNum] = c
			}
		}
	}
	lower := map[string]string{}
	out := make([]Column, len(cols))
	for i, c := range cols {
		if other, dup := lower[strings.ToLower(c.Name)]; dup {
			return "", pgError("42701", fmt.Sprintf("columns %q and %q differ only in case, which the columnstore cannot tell apart", other, c.Name), "", "")
		}
		lower[strings.ToLower(c.Name)] = c.Name
		c.ID = 0
		if old, ok := byAtt[c.AttNum]; ok && c.AttNum > 0 {
			if old.Type.Kind == KindText && c.Type.Kind == KindDecimal && old.Type.OID == c.Type.OID {
				c.Type = c.Type.AsText() // stored as text (it held NaN, or was made before decimals): stays so
			}
			if err := checkPromotion(old, c); err != nil {
				return "", err
			}
			c.ID = old.ID
		}
		out[i] = c
	}
	tx := tbl.NewTransaction()
	out, _, err = evolveSchema(tx, tbl.Schema(), out)
	if err != nil {
		return "", err
	}
	colsJSON, _, err := encodeColumns(out, nil)
	if err != nil {
		return "", err
	}
	if err := tx.SetProperties(iceberg.Properties{PropColumns: colsJSON}); err != nil {
		return "", err
	}
	newTbl, err := tx.Commit(ctx)
	if err != nil {
		return "", fmt.Errorf("write columnstore metadata: %w", err)
	}
	return metadataPath(newTbl.MetadataLocation()), nil
}

// checkPromotion refuses a type change of a column whose stored values
// would not read back as the new type: only Iceberg's promotions and
// changes within one stored type pass.
func checkPromotion(old, c Column) error {
	from, to := old.Type.IcebergType(), c.Type.IcebergType()
	ok := from.Equals(to) ||
		(from.Equals(iceberg.PrimitiveTypes.Int32) && to.Equals(iceberg.PrimitiveTypes.Int64)) ||
		(from.Equals(iceberg.PrimitiveTypes.Float32) && to.Equals(iceberg.PrimitiveTypes.Float64))
	if fd, isDec := from.(iceberg.DecimalType); isDec {
		if td, toDec := to.(iceberg.DecimalType); toDec {
			ok = td.Scale() == fd.Scale() && td.Precision() >= fd.Precision()
		}
	}
	// values kept as their text must be read by the same input function
	if ok && (old.Type.Kind == KindText || c.Type.Kind == KindText) && old.Type.OID != c.Type.OID {
		ok = false
	}
	if ok && old.Type.Kind != c.Type.Kind && !(old.Type.Kind == KindInt16 && c.Type.Kind == KindInt32) &&
		!(from.Equals(iceberg.PrimitiveTypes.Int32) && to.Equals(iceberg.PrimitiveTypes.Int64) && c.Type.Kind == KindInt64) &&
		!(old.Type.Kind == KindFloat32 && c.Type.Kind == KindFloat64) {
		ok = false
	}
	if !ok {
		return pgError("0A000", fmt.Sprintf("cannot change the type of column %q of a columnstore table from %s to %s",
			c.Name, typeName(old.Type), typeName(c.Type)), "",
			"A columnstore table's column can only widen as Iceberg allows: integer to bigint, real to double precision, more digits for numeric, a longer varchar.")
	}
	return nil
}

// ColumnstoreStats are a columnstore table's figures at one metadata file.
type ColumnstoreStats struct {
	Rows        int64 // live rows: data rows minus position deletes
	DataFiles   int
	DeleteFiles int
}

// ColumnstoreStatsAt reads the figures of the current snapshot of the
// columnstore table whose metadata file is loc from its summary
// (total-records minus total-position-deletes, as each deleted row is
// deleted once: writers of a table are serialized and a scan never
// returns a deleted row; TRUNCATE removes the delete files with the data
// files); without those totals, from the manifests.
func ColumnstoreStatsAt(ctx context.Context, loc string) (ColumnstoreStats, error) {
	tbl, _, err := LoadColumnstore(ctx, loc)
	if err != nil {
		return ColumnstoreStats{}, err
	}
	snap := tbl.CurrentSnapshot()
	if snap == nil {
		return ColumnstoreStats{}, nil
	}
	if snap.Summary != nil {
		p := snap.Summary.Properties
		total := func(key string) (int64, bool) {
			v, err := strconv.ParseInt(p[key], 10, 64)
			return v, err == nil
		}
		recs, ok1 := total("total-records")
		dels, ok2 := total("total-position-deletes")
		files, ok3 := total("total-data-files")
		delFiles, ok4 := total("total-delete-files")
		if ok1 && ok2 && ok3 && ok4 {
			return ColumnstoreStats{Rows: max(recs-dels, 0), DataFiles: int(files), DeleteFiles: int(delFiles)}, nil
		}
	}
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		return ColumnstoreStats{}, fmt.Errorf("plan columnstore files: %w", err)
	}
	var st ColumnstoreStats
	seen := map[string]bool{}
	for _, t := range tasks {
		if !seen[t.File.FilePath()] {
			seen[t.File.FilePath()] = true
			st.Rows += t.File.Count()
			st.DataFiles++
		}
		for _, d := range t.DeleteFiles {
			if !seen[d.FilePath()] {
				seen[d.FilePath()] = true
				st.Rows -= d.Count()
				st.DeleteFiles++
			}
		}
	}
	st.Rows = max(st.Rows, 0)
	return st, nil
}
