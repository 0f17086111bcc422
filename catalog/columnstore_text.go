package catalog

import (
	"context"
	gosql "database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

// A columnstore table stores a numeric(p,s) column (p <= 38) as Iceberg
// decimal(p,s), DECIMAL(p,s) in its Parquet files, as mirrors do
// (DecimalType): DuckDB computes on it at its own speed and other engines
// read decimals. No DECIMAL holds NaN, which numeric(p,s) accepts (it
// refuses the infinities): the first write bringing NaN into such a column
// stores the column as its text from then on (ColumnstoreAsText), in the
// same PostgreSQL transaction as the write, so that a rollback keeps the
// decimals. A column stored as text stays so.

// decimalAsText is the PostgreSQL text (numeric_out's) of a DECIMAL of type
// t in expr: DuckDB writes no 0 before the point of a DECIMAL(p,p).
func decimalAsText(expr string, t ColumnType) string {
	s := "CAST(" + expr + " AS VARCHAR)"
	if t.Precision == t.Scale {
		s = "regexp_replace(" + s + `, '^(-?)\.', '\10.')`
	}
	return s
}

// nanColumns are the names of the columns stored as DECIMAL to which rows
// (values of the columns named, in order; PostgreSQL text, nil for NULL)
// bring NaN.
func nanColumns(cols []Column, names []string, rows [][]*string) []string {
	var out []string
	for j, n := range names {
		i := columnIndex(cols, n)
		if i < 0 || cols[i].Type.Kind != KindDecimal {
			continue
		}
		for _, r := range rows {
			if j < len(r) && cols[i].Type.IsNaN(r[j]) {
				out = append(out, n)
				break
			}
		}
	}
	return out
}

// PropRenamedFiles records, for a columnstore table whose files
// ColumnstoreAsText wrote again, the new path of each old data file
// (JSON object): the rows keep their positions, so the row ids a scan of
// an older version gave (an UPDATE's, whose later batches still name the
// files its scan read) name the same rows of the new files.
const PropRenamedFiles = "mooncake.renamed-files"

// ColumnstoreAsText stores the columns named (DECIMAL ones) of the
// columnstore table whose metadata file is base as their text, in a new
// metadata file of the next version: the columns become Iceberg strings
// under new field IDs, each data file is written again (every row at its
// position, the columns as numeric_out's text) and the delete files again
// with the new files' paths (PropRenamedFiles). base is left as it is; a
// table without such columns keeps base.
func ColumnstoreAsText(ctx context.Context, duck *gosql.DB, base string, names []string) (string, error) {
	tbl, cols, err := LoadColumnstore(ctx, base)
	if err != nil {
		return "", err
	}
	next := append([]Column(nil), cols...)
	changed := false
	for _, n := range names {
		i := columnIndex(cols, n)
		if i < 0 || cols[i].Type.Kind != KindDecimal {
			continue
		}
		next[i].Type, next[i].ID = cols[i].Type.AsText(), 0 // a new field
		changed = true
	}
	if !changed {
		return base, nil
	}
	tx := tbl.NewTransaction()
	next, schema, err := evolveSchema(tx, tbl.Schema(), next)
	if err != nil {
		return "", err
	}
	oldData, oldDeletes, err := currentFiles(ctx, tbl)
	if err != nil {
		return "", err
	}
	props := iceberg.Properties{}
	var written []string
	fail := func(err error) (string, error) {
		for _, p := range written {
			os.Remove(p)
		}
		return "", fmt.Errorf("store columns of the columnstore table as text: %w", err)
	}
	if len(oldData) > 0 {
		dir := localPath(joinLoc(tbl.Location(), "data"))
		for _, f := range oldData {
			p, err := rewriteColumnstore(ctx, duck, dir, cols, next, f.FilePath())
			if err != nil {
				return fail(err)
			}
			written = append(written, p)
		}
		uris, err := publish(ctx, "", tbl.Location(), written...)
		if err != nil {
			return fail(err)
		}
		fs, err := tbl.FS(ctx)
		if err != nil {
			return fail(err)
		}
		renamed := RenamedFiles(tbl.Properties())
		moved := map[string]string{}
		var added []iceberg.DataFile
		for i, f := range oldData {
			df, err := table.FileToDataFile(ctx, fs, uris[i], schema, tbl.Spec(), 0, tbl.Properties())
			if err != nil {
				return fail(err)
			}
			added = append(added, df)
			moved[f.FilePath()] = uris[i]
		}
		if err := tx.ReplaceFiles(ctx, oldData, added, oldDeletes, nil); err != nil {
			return fail(err)
		}
		if len(oldDeletes) > 0 {
			del, n, err := renameDeletes(ctx, duck, dir, oldDeletes, moved)
			if err != nil {
				return fail(err)
			}
			written = append(written, del)
			fi, err := os.Stat(del)
			if err != nil {
				return fail(err)
			}
			duris, err := publish(ctx, "", tbl.Location(), del)
			if err != nil {
				return fail(err)
			}
			b, err := iceberg.NewDataFileBuilder(*iceberg.UnpartitionedSpec, iceberg.EntryContentPosDeletes, duris[0],
				iceberg.ParquetFile, nil, nil, nil, n, fi.Size())
			if err != nil {
				return fail(err)
			}
			rd := tx.NewRowDelta(nil)
			rd.AddDeletes(b.Build())
			if err := rd.Commit(ctx); err != nil {
				return fail(err)
			}
		}
		for old, cur := range renamed {
			if n, ok := moved[cur]; ok {
				renamed[old] = n
			}
		}
		for old, n := range moved {
			renamed[old] = n
		}
		b, err := json.Marshal(renamed)
		if err != nil {
			return fail(err)
		}
		props[PropRenamedFiles] = string(b)
	}
	colsJSON, _, err := encodeColumns(next, nil)
	if err != nil {
		return fail(err)
	}
	props[PropColumns] = colsJSON
	if err := tx.SetProperties(props); err != nil {
		return fail(err)
	}
	newTbl, err := tx.Commit(ctx)
	if err != nil {
		return fail(fmt.Errorf("write columnstore metadata: %w", err))
	}
	// The columns added come last; other engines list the fields in the
	// order of the columns: one more version puts them back in place.
	if newTbl, _, err = LoadColumnstore(ctx, metadataPath(newTbl.MetadataLocation())); err != nil {
		return "", err
	}
	tx = newTbl.NewTransaction()
	us := tx.UpdateSchema(true, true)
	for i, c := range next {
		if i == 0 {
			us.MoveFirst([]string{c.Name})
		} else {
			us.MoveAfter([]string{c.Name}, []string{next[i-1].Name})
		}
	}
	if err := us.Commit(); err != nil {
		return "", fmt.Errorf("order the columnstore table's fields: %w", err)
	}
	if newTbl, err = tx.Commit(ctx); err != nil {
		return "", fmt.Errorf("write columnstore metadata: %w", err)
	}
	return metadataPath(newTbl.MetadataLocation()), nil
}

// RenamedFiles is a columnstore table's PropRenamedFiles: old data file
// path to new one.
func RenamedFiles(props iceberg.Properties) map[string]string {
	out := map[string]string{}
	if v := props[PropRenamedFiles]; v != "" {
		json.Unmarshal([]byte(v), &out)
	}
	return out
}

// rewriteColumnstore writes the data file at path (every row, in its
// order: its row numbers stay), read as columns from, to a new data file
// in dir as columns to: the same columns in the same order, those that
// became text (from a DECIMAL) as numeric_out's text, under to's field
// IDs. It returns the new file's local path.
func rewriteColumnstore(ctx context.Context, duck *gosql.DB, dir string, from, to []Column, path string) (string, error) {
	m := newMirror("", "", "", from, nil)
	sel := make([]string, len(from))
	for i, c := range from {
		e := "p." + m.fileCol(i)
		if c.Type.Kind == KindDecimal && to[i].Type.Kind == KindText {
			e = decimalAsText(e, c.Type)
		}
		sel[i] = e + " AS " + QuoteIdent(to[i].Name)
	}
	local, err := fetch(ctx, "", path)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "data-"+newID()+".parquet")
	q := "SELECT " + strings.Join(sel, ", ") + " FROM " + m.readFiles([]string{local}) + " p ORDER BY p.file_row_number"
	if _, err := duck.ExecContext(ctx, "COPY ("+q+") TO "+QuoteLiteral(out)+" ("+parquetOptions+", FIELD_IDS "+fieldIDs(to)+")"); err != nil {
		os.Remove(out)
		return "", fmt.Errorf("rewrite a data file of the columnstore table: %s", Redact(err.Error()))
	}
	return out, nil
}

// renameDeletes writes the rows of position delete files, their data files
// renamed as moved says, to one new delete file in dir (sorted as the
// format asks), and returns its local path and row count.
func renameDeletes(ctx context.Context, duck *gosql.DB, dir string, deletes []iceberg.DataFile, moved map[string]string) (string, int64, error) {
	var locals []string
	for _, d := range deletes {
		local, err := fetch(ctx, "", d.FilePath())
		if err != nil {
			return "", 0, err
		}
		locals = append(locals, local)
	}
	var when []string
	for old, n := range moved {
		when = append(when, "WHEN "+QuoteLiteral(old)+" THEN "+QuoteLiteral(n))
	}
	out := filepath.Join(dir, "deletes-"+newID()+".parquet")
	q := "SELECT DISTINCT CASE file_path " + strings.Join(when, " ") + " ELSE file_path END AS file_path, pos FROM read_parquet(" +
		stringList(locals) + ") ORDER BY file_path, pos"
	if _, err := duck.ExecContext(ctx, "COPY ("+q+") TO "+QuoteLiteral(out)+" ("+parquetOptions+", FIELD_IDS {'file_path': "+
		strconv.Itoa(fieldIDDeleteFilePath)+", 'pos': "+strconv.Itoa(fieldIDDeletePos)+"})"); err != nil {
		os.Remove(out)
		return "", 0, fmt.Errorf("rewrite the delete files of the columnstore table: %s", Redact(err.Error()))
	}
	var n int64
	if err := duck.QueryRowContext(ctx, "SELECT count(*) FROM read_parquet("+QuoteLiteral(out)+")").Scan(&n); err != nil {
		os.Remove(out)
		return "", 0, err
	}
	return out, n, nil
}
