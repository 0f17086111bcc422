package service

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/pgmooncake/mooncake/catalog"
	"github.com/pgmooncake/mooncake/sql"
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
	AttNum   int    `json:"attnum"` // columnstore_alter: the foreign table column's attnum
	Enc      string `json:"enc"`    // columnstore_load: the encoding of the column's values
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
	// The rows, nearly all of an append's bytes, are read by parseTextRows;
	// the other members (the rows replaced by null) by encoding/json.
	rest, rows, err := cutMember(req.raw, "rows")
	if err == nil {
		err = json.Unmarshal(rest, &r)
	}
	if err == nil && rows != nil {
		r.Rows, err = parseTextRows(rows)
	}
	if err != nil {
		return nil, userError("08P01", "malformed %s request: %v", req.Op, err)
	}
	req.raw = nil
	return &r, nil
}

// cutMember finds the member name of the JSON object doc: it returns doc
// with that member's value replaced by null, and the value (nil when doc
// has no such member). Member names with escapes are never taken for name.
func cutMember(doc []byte, name string) (rest, value []byte, err error) {
	i := skipSpace(doc, 0)
	if i >= len(doc) || doc[i] != '{' {
		return nil, nil, errors.New("not a JSON object")
	}
	i = skipSpace(doc, i+1)
	if i < len(doc) && doc[i] == '}' {
		return doc, nil, nil
	}
	for i < len(doc) {
		if doc[i] != '"' {
			return nil, nil, fmt.Errorf("expected a member name at offset %d", i)
		}
		end, err := skipValue(doc, i)
		if err != nil {
			return nil, nil, err
		}
		key := doc[i+1 : end-1]
		i = skipSpace(doc, end)
		if i >= len(doc) || doc[i] != ':' {
			return nil, nil, fmt.Errorf("expected ':' at offset %d", i)
		}
		start := skipSpace(doc, i+1)
		if end, err = skipValue(doc, start); err != nil {
			return nil, nil, err
		}
		if string(key) == name {
			rest = make([]byte, 0, len(doc)-(end-start)+4)
			rest = append(append(append(rest, doc[:start]...), "null"...), doc[end:]...)
			return rest, doc[start:end], nil
		}
		i = skipSpace(doc, end)
		if i < len(doc) && doc[i] == '}' {
			return doc, nil, nil
		}
		if i >= len(doc) || doc[i] != ',' {
			return nil, nil, fmt.Errorf("expected ',' or '}' at offset %d", i)
		}
		i = skipSpace(doc, i+1)
	}
	return nil, nil, errors.New("unexpected end of JSON input")
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the offset just past the JSON value starting at b[i]
// (strings and nesting followed; scalars end at a delimiter). It checks
// structure only as far as finding the end needs.
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errors.New("unexpected end of JSON input")
	}
	switch b[i] {
	case '"':
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1, nil
			}
		}
		return 0, errors.New("unterminated string")
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, err := skipValue(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errors.New("unterminated array or object")
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
		j++
	}
	if j == i {
		return 0, fmt.Errorf("unexpected %q at offset %d", b[i], i)
	}
	return j, nil
}

// parseTextRows reads the rows of an append, a JSON array of arrays of
// strings and nulls, as encoding/json would into [][]*string, but without
// its reflection and with few allocations: the text is copied once, and
// values without escapes are slices of it, their string headers allocated
// in blocks.
func parseTextRows(b []byte) ([][]*string, error) {
	if string(b) == "null" {
		return nil, nil
	}
	text := string(b) // one copy; values without escapes share it
	rows := [][]*string{}
	var slab []string
	width := 0 // values of the previous row, to size the next
	bad := func(i int) error {
		if i >= len(text) {
			return errors.New("rows: unexpected end of JSON input")
		}
		return fmt.Errorf("rows: unexpected %q at offset %d", text[i], i)
	}
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return nil, errors.New("rows: not an array")
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return rows, nil
	}
	for {
		if i >= len(b) || b[i] != '[' {
			return nil, bad(i)
		}
		row := make([]*string, 0, width)
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == ']' {
			i++
		} else {
			for {
				switch {
				case i < len(b) && b[i] == '"':
					end, escaped := i+1, false
					for end < len(b) && b[end] != '"' {
						if b[end] == '\\' {
							escaped = true
							end++
						} else if b[end] < 0x20 {
							return nil, bad(end)
						}
						end++
					}
					if end >= len(b) {
						return nil, bad(end)
					}
					if len(slab) == 0 {
						slab = make([]string, 4096)
					}
					v := &slab[0]
					slab = slab[1:]
					if escaped {
						if err := json.Unmarshal(b[i:end+1], v); err != nil {
							return nil, fmt.Errorf("rows: %w", err)
						}
					} else {
						*v = text[i+1 : end]
					}
					row = append(row, v)
					i = end + 1
				case i+4 <= len(b) && string(b[i:i+4]) == "null":
					row = append(row, nil)
					i += 4
				default:
					return nil, bad(i)
				}
				i = skipSpace(b, i)
				if i < len(b) && b[i] == ',' {
					i = skipSpace(b, i+1)
					continue
				}
				if i < len(b) && b[i] == ']' {
					i++
					break
				}
				return nil, bad(i)
			}
		}
		rows = append(rows, row)
		width = len(row)
		i = skipSpace(b, i)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			continue
		}
		if i < len(b) && b[i] == ']' {
			if i = skipSpace(b, i+1); i != len(b) {
				return nil, bad(i)
			}
			return rows, nil
		}
		return nil, bad(i)
	}
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
		cols[i] = catalog.Column{Name: c.Name, Type: catalog.DecimalType(t), NotNull: c.NotNull}
	}
	location, owned := r.Location, r.Location == ""
	if owned {
		location = d.mirrors.Catalog.ColumnstoreLocation(r.Namespace, r.Table)
	}
	meta, err := catalog.CreateColumnstoreIn(ctx, cols, location, owned)
	if err != nil {
		return nil, err
	}
	return map[string]any{"metadata_location": meta, "location": location}, nil
}

// columnstorePurge removes the files of the columnstore tables dropped by
// committed transactions (catalog.PurgeDropped), in the background: the
// backend asks right after its commit, and does not wait.
func (s *server) columnstorePurge(ctx context.Context, req *Request) (any, error) {
	if req.Database == "" {
		return nil, userError("08P01", "columnstore_purge needs database")
	}
	d, err := s.dbs.getExt(ctx, req.Database, req.Extension)
	if err != nil {
		return nil, err
	}
	go s.dbs.purgeDropped(d)
	return map[string]any{"started": true}, nil
}

// columnstoreAppend writes rows as a new data file and snapshot of a
// columnstore table, in a new metadata file; the base one stays as it is.
func (s *server) columnstoreAppend(ctx context.Context, req *Request) (any, error) {
	r, names, err := s.columnstoreWrite(ctx, req, func(r *columnstoreRequest) bool { return len(r.Columns) > 0 },
		"metadata_location and columns")
	if err != nil {
		return nil, err
	}
	rows := r.Rows
	r.Rows = nil
	res, err := catalog.AppendColumnstore(ctx, s.dbs.engine.DB, r.MetadataLocation, names, rows)
	if err != nil {
		return nil, err
	}
	return map[string]any{"metadata_location": res.MetadataLocation, "rows": res.Rows, "data_files": res.DataFiles,
		"new_files": createdFiles(ctx, r.MetadataLocation, res.MetadataLocation)}, nil
}

// columnstoreTruncate empties a columnstore table: a new snapshot without
// its data files, in a new metadata file.
func (s *server) columnstoreTruncate(ctx context.Context, req *Request) (any, error) {
	r, _, err := s.columnstoreWrite(ctx, req, func(*columnstoreRequest) bool { return true }, "metadata_location")
	if err != nil {
		return nil, err
	}
	loc, err := catalog.TruncateColumnstore(ctx, r.MetadataLocation)
	if err != nil {
		return nil, err
	}
	return map[string]any{"metadata_location": loc, "new_files": createdFiles(ctx, r.MetadataLocation, loc)}, nil
}

// columnstoreLoadFile reads a COPY FROM file in CSV or text format into a
// columnstore table with DuckDB (catalog.LoadCSV), or answers
// {"fallback": reason} when the backend is to read the file with
// PostgreSQL's COPY instead.
func (s *server) columnstoreLoadFile(ctx context.Context, req *Request) (any, error) {
	var r struct {
		columnstoreRequest
		Path      string `json:"path"`
		Text      bool   `json:"text"`
		Delimiter string `json:"delimiter"`
		Quote     string `json:"quote"`
		Escape    string `json:"escape"`
		Null      string `json:"null"`
		Header    bool   `json:"header"`
	}
	if err := json.Unmarshal(req.raw, &r); err != nil {
		return nil, userError("08P01", "malformed %s request: %v", req.Op, err)
	}
	if r.MetadataLocation == "" || r.Path == "" || len(r.Columns) == 0 {
		return nil, userError("08P01", "%s needs metadata_location, path and columns", req.Op)
	}
	if r.Database != "" {
		if _, err := s.dbs.getExt(ctx, r.Database, req.Extension); err != nil {
			return nil, err
		}
	}
	spec := catalog.CSVSpec{Path: r.Path, Text: r.Text, Delimiter: r.Delimiter, Quote: r.Quote, Escape: r.Escape, Null: r.Null, Header: r.Header}
	for _, c := range r.Columns {
		spec.Columns = append(spec.Columns, c.Name)
	}
	res, err := catalog.LoadCSV(ctx, s.dbs.engine.DB, r.MetadataLocation, spec)
	var fb *catalog.CSVFallback
	if errors.As(err, &fb) {
		reason, _, _ := strings.Cut(fb.Reason, "\n")
		return map[string]any{"fallback": reason}, nil
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"metadata_location": res.MetadataLocation, "rows": res.Rows, "data_files": res.DataFiles,
		"new_files": createdFiles(ctx, r.MetadataLocation, res.MetadataLocation)}, nil
}

// columnstoreInsertScan runs an INSERT INTO columnstore_table SELECT ...
// whose SELECT is a scan the backend would stream (its request nested as
// "scan") in DuckDB, straight into the table's data files
// (catalog.LoadQuery): the scan is planned as for Flight (numeric columns
// stored as DECIMAL stay DECIMALs) and runs under the usual read pin and
// admission. It answers {"fallback": reason} when that would not give
// exactly the rows the row path stores: the backend then streams the
// scan's rows as usual.
func (s *server) columnstoreInsertScan(ctx context.Context, req *Request) (any, error) {
	var r struct {
		Database         string `json:"database"`
		MetadataLocation string `json:"metadata_location"`
		Columns          []struct {
			Name   string `json:"name"`
			Source int    `json:"source"`
		} `json:"columns"`
		Scan json.RawMessage `json:"scan"`
	}
	if err := json.Unmarshal(req.raw, &r); err != nil {
		return nil, userError("08P01", "malformed %s request: %v", req.Op, err)
	}
	if r.MetadataLocation == "" || len(r.Columns) == 0 || len(r.Scan) == 0 {
		return nil, userError("08P01", "%s needs metadata_location, columns and scan", req.Op)
	}
	if r.Database != "" {
		if _, err := s.dbs.getExt(ctx, r.Database, req.Extension); err != nil {
			return nil, err
		}
	}
	var sreq Request
	if err := json.Unmarshal(r.Scan, &sreq); err != nil || sreq.Query == nil {
		return nil, userError("08P01", "malformed scan of %s", req.Op)
	}
	sreq.raw, sreq.Arrow = r.Scan, true
	fallback := func(reason string) (any, error) {
		reason, _, _ = strings.Cut(reason, "\n")
		return map[string]any{"fallback": reason}, nil
	}
	params := sreq.Params
	if params == nil {
		params = []sql.Param{}
	}
	p, err := s.planQuery(ctx, &sreq, params, false)
	if err != nil {
		return nil, err
	}
	if !p.OK {
		return fallback(p.Reason)
	}
	sc := p.Scan
	for i := range sc.Formats {
		if (i < len(sc.AvgInt) && sc.AvgInt[i]) || (i < len(sc.Spread) && sc.Spread[i] != "") {
			return fallback("a value finished in the sidecar")
		}
	}
	tz := ""
	if p.TimeZone && !sql.IsUTC(sreq.TimeZone) {
		tz = sreq.TimeZone
	}
	done, err := p.Prepare(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	slot, err := s.queries.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer slot()
	defer catalog.BeginRead()() // the files the query reads stay until it ends
	fill := make([]catalog.QueryColumn, len(r.Columns))
	for i, c := range r.Columns {
		fill[i] = catalog.QueryColumn{Name: c.Name, Source: c.Source}
	}
	res, err := catalog.LoadQuery(ctx, s.dbs.engine.DB, r.MetadataLocation, sc.SQL, tz, fill)
	var fb *catalog.CSVFallback
	if errors.As(err, &fb) {
		return fallback(fb.Reason)
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"metadata_location": res.MetadataLocation, "rows": res.Rows, "data_files": res.DataFiles,
		"new_files": createdFiles(ctx, r.MetadataLocation, res.MetadataLocation)}, nil
}

// columnstoreModify deletes rows of a columnstore table (named by the row
// ids of an UPDATE's or DELETE's scan) and appends others (an UPDATE's new
// rows), in one snapshot of a new metadata file.
func (s *server) columnstoreModify(ctx context.Context, req *Request) (any, error) {
	r, names, err := s.columnstoreWrite(ctx, req, func(r *columnstoreRequest) bool { return r.IDsLocation != "" },
		"metadata_location and ids_location")
	if err != nil {
		return nil, err
	}
	rows := r.Rows
	r.Rows = nil
	res, err := catalog.ModifyColumnstore(ctx, s.dbs.engine.DB, r.MetadataLocation, r.IDsLocation, r.Deletes, names, rows)
	if err != nil {
		return nil, err
	}
	return map[string]any{"metadata_location": res.MetadataLocation, "rows": res.Rows,
		"new_files": createdFiles(ctx, r.MetadataLocation, res.MetadataLocation)}, nil
}

// columnstoreWrite decodes a write request of a columnstore table (append,
// truncate, modify), checks that it names what need says, and forgets a
// dropped extension's state first; names are its columns' names.
func (s *server) columnstoreWrite(ctx context.Context, req *Request, need func(*columnstoreRequest) bool, what string) (*columnstoreRequest, []string, error) {
	r, err := decodeColumnstore(req)
	if err != nil {
		return nil, nil, err
	}
	if r.MetadataLocation == "" || !need(r) {
		return nil, nil, userError("08P01", "%s needs %s", req.Op, what)
	}
	if r.Database != "" {
		if _, err := s.dbs.getExt(ctx, r.Database, req.Extension); err != nil {
			return nil, nil, err
		}
	}
	names := make([]string, len(r.Columns))
	for i, c := range r.Columns {
		names[i] = c.Name
	}
	return r, names, nil
}

// columnstoreAlter gives a columnstore table the columns of its foreign
// table after an ALTER TABLE (added, dropped, renamed, widened, NOT NULL
// set or dropped): the evolved schema in a new metadata file (see
// catalog.AlterColumnstore), which the backend commits as it commits
// writes.
func (s *server) columnstoreAlter(ctx context.Context, req *Request) (any, error) {
	r, _, err := s.columnstoreWrite(ctx, req, func(r *columnstoreRequest) bool { return len(r.Columns) > 0 },
		"metadata_location and columns")
	if err != nil {
		return nil, err
	}
	cols := make([]catalog.Column, len(r.Columns))
	for i, c := range r.Columns {
		if c.Name == "" || c.TypeOID == 0 || c.AttNum <= 0 {
			return nil, userError("08P01", "columnstore_alter: column %d needs a name, a type_oid and an attnum", i+1)
		}
		t, err := catalog.ResolveType(c.TypeOID, c.Typmod, c.TypeName)
		if err != nil {
			return nil, userError("0A000", "column %q has type %s, which columnstore tables do not support yet", c.Name, c.TypeName)
		}
		cols[i] = catalog.Column{Name: c.Name, Type: catalog.DecimalType(t), NotNull: c.NotNull, AttNum: c.AttNum}
	}
	loc, err := catalog.AlterColumnstore(ctx, s.dbs.engine.DB, r.MetadataLocation, cols)
	if err != nil {
		return nil, err
	}
	return map[string]any{"metadata_location": loc, "new_files": createdFiles(ctx, r.MetadataLocation, loc)}, nil
}

// columnstoreStats reports a columnstore table's live rows and files at a
// metadata file (mooncake.columnstore_tables).
func (s *server) columnstoreStats(ctx context.Context, req *Request) (any, error) {
	r, _, err := s.columnstoreWrite(ctx, req, func(*columnstoreRequest) bool { return true }, "metadata_location")
	if err != nil {
		return nil, err
	}
	st, err := catalog.ColumnstoreStatsAt(ctx, r.MetadataLocation)
	if err != nil {
		return nil, err
	}
	return map[string]any{"rows": st.Rows, "data_files": st.DataFiles, "delete_files": st.DeleteFiles}, nil
}

// createdFiles are the files a write of a columnstore table made (see
// catalog.CreatedFiles), one per line, for the backend to remove if its
// transaction rolls back. Paths with a line break are left out (the sweep
// removes them); an error gives none, and is logged.
func createdFiles(ctx context.Context, base, loc string) string {
	files, err := catalog.CreatedFiles(ctx, base, loc)
	if err != nil {
		slog.Warn("cannot list the files of a columnstore write", "metadata_location", loc, "err", err)
		return ""
	}
	kept := files[:0]
	for _, f := range files {
		if !strings.Contains(f, "\n") {
			kept = append(kept, f)
		}
	}
	return strings.Join(kept, "\n")
}

// columnstoreSweep removes the files of a columnstore table that its
// committed metadata does not reference and that are older than
// older_than_seconds (files of transactions that rolled back or whose
// backend crashed); the backend holds the table's catalog row lock.
func (s *server) columnstoreSweep(ctx context.Context, req *Request) (any, error) {
	var extra struct {
		OlderThan *float64 `json:"older_than_seconds"`
	}
	if err := json.Unmarshal(req.raw, &extra); err != nil {
		return nil, userError("08P01", "malformed columnstore_sweep request: %v", err)
	}
	r, _, err := s.columnstoreWrite(ctx, req, func(*columnstoreRequest) bool { return true }, "metadata_location")
	if err != nil {
		return nil, err
	}
	older := time.Hour
	if extra.OlderThan != nil {
		if *extra.OlderThan < 0 {
			return nil, userError("22023", "columnstore_sweep: older_than_seconds must not be negative")
		}
		older = time.Duration(*extra.OlderThan * float64(time.Second))
	}
	removed, err := catalog.SweepColumnstore(ctx, r.MetadataLocation, older)
	if err != nil {
		return nil, err
	}
	return map[string]any{"removed": len(removed)}, nil
}

// Frames of a columnstore_load after its request (see PROTOCOL.md).
const (
	frameChunk  = 'B' // a chunk of rows
	frameFinish = 'F' // the end of the rows: {"metadata_location": BASE}
)

// columnstoreLoad serves a columnstore_load: an INSERT's or COPY's rows,
// streamed in B frames after the request and ended by an F frame, become
// one data file (written by DuckDB while the rows arrive) and a new
// snapshot. The connection's frames are read by a goroutine of their own,
// so the backend does not wait while a chunk is decoded. An error is
// answered at once; the frames that follow are read and dropped until F,
// so that the backend, which looks for an answer after each chunk it
// sends, reads it whole. A connection closed before F abandons the load.
func (s *server) columnstoreLoad(ctx context.Context, req *Request, r *bufio.Reader, w *bufio.Writer) {
	type frame struct {
		typ     byte
		payload []byte
		err     error
	}
	frames := make(chan frame, 16) // up to 16 MB read ahead: the backend goes on while DuckDB lags
	go func() {
		defer close(frames)
		for {
			typ, payload, err := readFrame(r)
			select {
			case frames <- frame{typ, payload, err}:
			case <-ctx.Done():
				return
			}
			if err != nil || typ == frameFinish {
				return
			}
		}
	}()
	fail := func(err error) {
		writeFrame(w, frameError, errorPayload(err))
		w.Flush()
		for f := range frames {
			if f.err != nil || f.typ == frameFinish {
				return
			}
		}
	}
	cr, err := decodeColumnstore(req)
	if err == nil && (cr.MetadataLocation == "" || len(cr.Columns) == 0) {
		err = userError("08P01", "columnstore_load needs metadata_location and columns")
	}
	if err == nil && cr.Database != "" {
		_, err = s.dbs.getExt(ctx, cr.Database, req.Extension)
	}
	var l *catalog.Loader
	if err == nil {
		cols := make([]catalog.LoadColumn, len(cr.Columns))
		for i, c := range cr.Columns {
			cols[i] = catalog.LoadColumn{Name: c.Name, Enc: c.Enc}
		}
		l, err = catalog.StartLoad(ctx, s.dbs.engine.DB, cr.MetadataLocation, cols)
	}
	if err != nil {
		fail(err)
		return
	}
	for f := range frames {
		switch {
		case f.err != nil:
			l.Abandon() // the backend went away
			return
		case f.typ == frameChunk:
			if err := l.Add(f.payload); err != nil {
				l.Abandon()
				fail(err)
				return
			}
		case f.typ == frameFinish:
			var end struct {
				MetadataLocation string `json:"metadata_location"`
			}
			if err := json.Unmarshal(f.payload, &end); err != nil || end.MetadataLocation == "" {
				l.Abandon()
				fail(userError("08P01", "malformed end of columnstore_load: it needs metadata_location"))
				return
			}
			res, err := l.Finish(ctx, end.MetadataLocation)
			if err != nil {
				fail(err)
				return
			}
			b, _ := json.Marshal(map[string]any{"metadata_location": res.MetadataLocation, "rows": res.Rows, "data_files": res.DataFiles,
				"new_files": createdFiles(ctx, end.MetadataLocation, res.MetadataLocation)})
			writeFrame(w, frameJSON, b)
			w.Flush()
			return
		default:
			l.Abandon()
			fail(userError("08P01", "expected a chunk or the end of columnstore_load, got %q", f.typ))
			return
		}
	}
	l.Abandon()
}
