package catalog

import (
	"path/filepath"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/schema"
)

// How a mirror's view reads its data files.
//
// readFiles reads them by Iceberg field ID (read_parquet's schema
// parameter), which is always right: a column renamed since a file was
// written, added after it or promoted to a wider type reads as it should.
// But DuckDB then splits the work between its threads by file only: a
// mirror whose rows are in one big file (after its initial copy or a
// compaction) is scanned by one thread however many the machine has.
// Without that parameter DuckDB scans a file's row groups in parallel.
//
// So the view reads files by name where it can: a file's layout (the name
// of each top-level column in the file, by field ID, from its footer;
// files never change, so it is read once) tells which physical column
// holds each of the mirror's columns. Files of the same layout are read
// together by name, each column cast to its current type (a no-op for
// files written since the last promotion, what a wider type needs for the
// others) and missing columns as NULL, exactly what the field-ID read
// gives. The groups, few in practice (files written before and after a
// rename), are put together with UNION ALL; more than maxLayouts of them,
// or a file whose layout cannot be read locally, and the view reads by
// field ID as before.

// maxLayouts is the most groups of files of different layouts the view
// reads by name.
const maxLayouts = 3

// layout is how a data file holds the mirror's columns.
type layout struct {
	names map[int]string // top-level field ID -> column name in the file
	key   string         // the whole schema of the file: files read together have the same
}

// layoutCache keeps the layouts of a mirror's current files.
type layoutCache struct {
	mu    sync.Mutex
	files map[string]layout
}

// of gives the layouts of files (ok false when one cannot be read), and
// keeps only theirs: the view is always defined over all current files.
func (lc *layoutCache) of(files []string) ([]layout, bool) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	kept := make(map[string]layout, len(files))
	out := make([]layout, len(files))
	ok := true
	for i, f := range files {
		l, found := lc.files[f]
		if !found {
			if l, found = readLayout(f); !found {
				ok = false
				continue
			}
		}
		kept[f], out[i] = l, l
	}
	lc.files = kept
	return out, ok
}

// readLayout reads the layout of the local Parquet file path; ok is false
// when it cannot, or a top-level column has no field ID.
func readLayout(path string) (layout, bool) {
	if !filepath.IsAbs(path) {
		return layout{}, false
	}
	r, err := file.OpenParquetFile(path, false)
	if err != nil {
		return layout{}, false
	}
	defer r.Close()
	root := r.MetaData().Schema.Root()
	l := layout{names: make(map[int]string, root.NumFields())}
	for i := 0; i < root.NumFields(); i++ {
		n := root.Field(i)
		if n.FieldID() < 0 {
			return layout{}, false
		}
		l.names[int(n.FieldID())] = n.Name()
	}
	var b strings.Builder
	schema.PrintSchema(root, &b, 0)
	l.key = b.String()
	return l, true
}

// scanFiles is the table expression of readFiles (same columns, named by
// fileCol, plus filename and file_row_number with pos), reading the files
// by name where their layouts allow it. Read by name, a file's own column
// named filename or file_row_number would hide the virtual column of that
// name: with pos, such files are read by field ID.
func (m *Mirror) scanFiles(files []string, pos bool) string {
	ls, ok := m.layouts.of(files)
	if !ok {
		return m.readFiles(files)
	}
	if pos {
		for _, l := range ls {
			for _, name := range l.names {
				if n := strings.ToLower(name); n == "filename" || n == "file_row_number" {
					return m.readFiles(files)
				}
			}
		}
	}
	type group struct {
		l     layout
		files []string
	}
	var groups []*group
	byKey := map[string]*group{}
	for i, f := range files {
		g := byKey[ls[i].key]
		if g == nil {
			if len(groups) == maxLayouts {
				return m.readFiles(files)
			}
			g = &group{l: ls[i]}
			byKey[ls[i].key] = g
			groups = append(groups, g)
		}
		g.files = append(g.files, f)
	}
	parts := make([]string, len(groups))
	for k, g := range groups {
		cols := make([]string, 0, len(m.Columns)+2)
		for i, c := range m.Columns {
			src := "NULL"
			if name, ok := g.l.names[c.ID]; ok {
				src = "r." + QuoteIdent(name)
			}
			cols = append(cols, "CAST("+src+" AS "+c.Type.DuckDBType()+") AS "+m.fileCol(i))
		}
		if pos {
			cols = append(cols, "r.filename", "r.file_row_number")
		}
		parts[k] = "SELECT " + strings.Join(cols, ", ") + " FROM read_parquet(" + stringList(g.files) + ") r"
	}
	return "(" + strings.Join(parts, " UNION ALL ") + ")"
}
