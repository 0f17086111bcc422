// Package lake makes files of the data lake (Parquet, CSV, JSON; Iceberg
// and Delta tables) relations the query planner reads like mirrors
// (sql.Relation): their columns typed as the foreign table or the
// function's column list declares them, and a DuckDB view producing them
// in a mirror's stored form, so that filters, joins, aggregates, ORDER BY
// and LIMIT over them run in DuckDB.
package lake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5/pgconn"

	"golang.org/x/sync/errgroup"

	"github.com/pgmooncake/mooncake/catalog"
	"github.com/pgmooncake/mooncake/sql"
	"github.com/pgmooncake/mooncake/sql/lake/remote"
)

// Spec names files and how to read them, as the FDW sends it for a
// foreign table with a path (or a read_* function).
type Spec struct {
	Format  string            `json:"format"`            // parquet, csv or json
	Paths   []string          `json:"paths"`             // files, globs or directories (hive partitioned)
	Options map[string]string `json:"options,omitempty"` // reader options, lower case names
	Columns []Column          `json:"columns,omitempty"` // declared columns; none: the files' own
	// Object: one column holding each JSON object whole (read_json AS (data jsonb)).
	Object bool `json:"object,omitempty"`
	// RowID adds the column ctid to an Iceberg table's rows (iceberg.Scan
	// RowID): the scan of an UPDATE or DELETE of a columnstore table.
	RowID bool `json:"rowid,omitempty"`
	// Remote resolves s3:// paths (set by the service, not sent).
	Remote *Remote `json:"-"`
}

// Remote is how a spec's s3:// paths are read: the sidecar's cache of
// remote objects, and the secrets of the database the query comes from.
type Remote struct {
	Store   *remote.Store
	Secrets func(ctx context.Context) ([]*remote.Secret, error)
	Key     string // the database, for caches
}

// Column is a declared column: its name and PostgreSQL type.
type Column struct {
	Name   string `json:"name"`
	OID    uint32 `json:"type"`
	Typmod int32  `json:"typmod"`
	Type   string `json:"type_name,omitempty"` // format_type, for messages
}

// ParseSpec reads a spec sent as JSON; r reads its s3:// paths (nil:
// none may be given).
func ParseSpec(b []byte, r *Remote) (*Spec, error) {
	var s Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, &pgconn.PgError{Code: "08P01", Message: "malformed files specification: " + err.Error()}
	}
	s.Remote = r
	return &s, s.check()
}

func (s *Spec) check() error {
	switch s.Format {
	case "parquet", "csv", "json", "iceberg", "delta":
	case "":
		return &pgconn.PgError{Code: "22023", Message: "the files' format is missing", Hint: "Give the option format: parquet, csv or json."}
	default:
		return &pgconn.PgError{Code: "22023", Message: fmt.Sprintf("unknown file format %q", s.Format), Hint: "The formats are parquet, csv, json, iceberg and delta."}
	}
	if len(s.Paths) == 0 {
		return &pgconn.PgError{Code: "22023", Message: "no path given"}
	}
	if (s.Format == "iceberg" || s.Format == "delta") && len(s.Paths) != 1 {
		return &pgconn.PgError{Code: "22023", Message: "an " + s.Format + " table is one path"}
	}
	for _, p := range s.Paths {
		if p == "" {
			return &pgconn.PgError{Code: "22023", Message: "a path is empty"}
		}
		if remote.IsRemote(p) {
			if _, err := remote.ParseURL(p); err != nil {
				return err
			}
			if s.Remote == nil {
				return &pgconn.PgError{Code: "0A000", Message: fmt.Sprintf("path %q: remote paths are not read here", p)}
			}
			continue
		}
		if !filepath.IsAbs(p) {
			return &pgconn.PgError{Code: "22023", Message: fmt.Sprintf("path %q is not absolute", p)}
		}
	}
	for k := range s.Options {
		if _, ok := readerOptions[s.Format][k]; !ok {
			return &pgconn.PgError{Code: "22023", Message: fmt.Sprintf("unknown option %q of the %s reader", k, s.Format),
				Hint: "Options of " + s.Format + ": " + strings.Join(optionNames(s.Format), ", ") + "."}
		}
	}
	if v, ok := s.Options["auto_detect"]; ok && s.Format == "csv" {
		if b, err := parseBool(v); err == nil && !b {
			// DuckDB then wants every column's type from the caller
			return &pgconn.PgError{Code: "0A000", Message: "auto_detect => false is not supported: the CSV reader detects the files' layout and columns",
				Hint: "Fix the layout with the options delimiter, quote, escape, header and skip instead; a foreign table with format 'csv' declares the columns' types."}
		}
	}
	return nil
}

// optKind is how a reader option's value is written in DuckDB SQL.
type optKind int

const (
	optBool optKind = iota
	optString
	optInt
)

// readerOptions are the options each reader takes: the name users give
// (as pg_duckdb and DuckDB spell them), DuckDB's name and the value's kind.
var readerOptions = map[string]map[string]struct {
	duck string
	kind optKind
}{
	"parquet": {
		"hive_partitioning": {"hive_partitioning", optBool},
		"union_by_name":     {"union_by_name", optBool},
		"binary_as_string":  {"binary_as_string", optBool},
	},
	"csv": {
		"header":            {"header", optBool},
		"delimiter":         {"delim", optString},
		"delim":             {"delim", optString},
		"sep":               {"delim", optString},
		"quote":             {"quote", optString},
		"escape":            {"escape", optString},
		"nullstr":           {"nullstr", optString},
		"null":              {"nullstr", optString},
		"compression":       {"compression", optString},
		"auto_detect":       {"auto_detect", optBool},
		"skip":              {"skip", optInt},
		"dateformat":        {"dateformat", optString},
		"timestampformat":   {"timestampformat", optString},
		"hive_partitioning": {"hive_partitioning", optBool},
		"union_by_name":     {"union_by_name", optBool},
		"all_varchar":       {"all_varchar", optBool},
		"ignore_errors":     {"ignore_errors", optBool},
		"max_line_size":     {"max_line_size", optInt},
		"sample_size":       {"sample_size", optInt},
		"new_line":          {"new_line", optString},
	},
	"iceberg": {
		"snapshot_id": {"", optInt},
	},
	"delta": {
		"version": {"", optInt},
	},
	"json": {
		"json_format":       {"format", optString},
		"compression":       {"compression", optString},
		"hive_partitioning": {"hive_partitioning", optBool},
		"union_by_name":     {"union_by_name", optBool},
		"dateformat":        {"dateformat", optString},
		"timestampformat":   {"timestampformat", optString},
		"sample_size":       {"sample_size", optInt},
		"maximum_depth":     {"maximum_depth", optInt},
		"ignore_errors":     {"ignore_errors", optBool},
	},
}

func optionNames(format string) []string {
	var out []string
	for k := range readerOptions[format] {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// source is the DuckDB relation of the files' rows: a reader call, or
// for an Iceberg or Delta table the query reading its current (or chosen)
// snapshot's Parquet files. Remote objects are listed and made local
// (rem), held in the cache until rem.release is called.
func (s *Spec) source(ctx context.Context) (string, *fetched, error) {
	switch s.Format {
	case "iceberg", "delta":
		var src string
		var rfs *remoteFS
		var kinds map[string]catalog.Kind
		var err error
		if s.Format == "iceberg" {
			src, rfs, kinds, err = icebergSource(ctx, s)
		} else {
			src, rfs, err = deltaSource(ctx, s)
		}
		if err != nil || rfs == nil {
			return src, &fetched{release: func() {}, kinds: kinds}, err
		}
		return src, &fetched{data: rfs.data, whole: rfs.whole, keep: rfs.keep, release: rfs.release, kinds: kinds}, nil
	}
	paths, rem, err := s.resolve(ctx)
	if err != nil {
		return "", nil, err
	}
	src, err := s.reader(paths)
	if err != nil {
		rem.release()
		return "", nil, err
	}
	rem.local = paths
	return src, rem, nil
}

// csvSniffOptions are the options of a CSV spec that decide how DuckDB
// detects a file's layout (sniff_csv takes them as read_csv does).
var csvSniffOptions = []string{"header", "delimiter", "delim", "sep", "quote", "escape", "nullstr", "null",
	"compression", "new_line", "sample_size", "max_line_size"}

// checkCSVLayout refuses CSV files whose layout DuckDB finds only by
// skipping lines that were not asked to be skipped (option skip): a
// malformed file (an unterminated quote, rows of other widths) would
// otherwise read as the few rows that fit, and the others would go
// missing without a word. A file that starts with lines that are not data
// (a title) is read with skip => N.
func (s *Spec) checkCSVLayout(ctx context.Context, e *sql.Engine, local []string) error {
	if s.Format != "csv" || len(local) == 0 {
		return nil
	}
	if _, ok := s.Options["skip"]; ok {
		return nil
	}
	if v, ok := s.Options["auto_detect"]; ok {
		if b, err := parseBool(v); err == nil && !b {
			return nil
		}
	}
	// the file read_csv detects the layout of: the first of the first path
	var first string
	err := e.DB.QueryRowContext(ctx, "SELECT file FROM glob("+catalog.QuoteLiteral(local[0])+") ORDER BY file LIMIT 1").Scan(&first)
	if err != nil {
		return nil // no such file: the reader says so
	}
	args := []string{catalog.QuoteLiteral(first)}
	for _, k := range csvSniffOptions {
		v, ok := s.Options[k]
		if !ok {
			continue
		}
		o := readerOptions["csv"][k]
		switch o.kind {
		case optBool:
			b, err := parseBool(v)
			if err != nil {
				return nil // the reader reports the bad option
			}
			v = strconv.FormatBool(b)
		case optInt:
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || n < 0 {
				return nil
			}
			v = strconv.FormatInt(n, 10)
		default:
			v = catalog.QuoteLiteral(v)
		}
		args = append(args, o.duck+" = "+v)
	}
	var skipped int64
	if err := e.DB.QueryRowContext(ctx, "SELECT SkipRows FROM sniff_csv("+strings.Join(args, ", ")+")").Scan(&skipped); err != nil {
		return fileError(err, s)
	}
	if skipped == 0 {
		return nil
	}
	return &pgconn.PgError{Code: "22P04",
		Message: fmt.Sprintf("could not read csv file %s: its first %d lines do not fit the layout of the lines after them", s.names(), skipped),
		Detail:  "Reading it would skip them: an unterminated quote or rows with more or fewer fields than the others make a file read this way, as would a title above the data.",
		Hint:    fmt.Sprintf("If those lines are not data, pass skip => %d; otherwise correct the file.", skipped)}
}

// fetched are the remote objects a relation reads: Parquet data files,
// of which a query fetches the column chunks it reads, and files read
// whole (CSV, JSON; an Iceberg or Delta table's metadata and delete
// files).
type fetched struct {
	data  []*remote.Object
	whole []*remote.Object
	// keep chooses, for the relation's columns a query uses (by the
	// names the files' relation gives them), the top-level columns of a
	// data file to fetch (by name and Parquet field id); nil: the files'
	// columns of the same names.
	keep    func(used []string) func(name string, fieldID int32) bool
	release func()
	// local are the paths the reader reads (remote objects' local copies).
	local []string
	// kinds is how the columns of a table mooncake wrote are stored, by
	// name (catalog.StoredKinds); nil for other files.
	kinds map[string]catalog.Kind
}

func (f *fetched) all() []*remote.Object { return append(slices.Clone(f.data), f.whole...) }

// resolve makes the spec's paths local: the objects of its s3:// paths
// (an object, a glob, a directory) are listed, and the local copies get
// what DuckDB reads to bind a query (a Parquet object's footer; a CSV or
// JSON object whole). They stay in the cache until release is called.
func (s *Spec) resolve(ctx context.Context) ([]string, *fetched, error) {
	if !slices.ContainsFunc(s.Paths, remote.IsRemote) {
		return s.Paths, &fetched{release: func() {}}, nil
	}
	secrets, err := s.Remote.Secrets(ctx)
	if err != nil {
		return nil, nil, err
	}
	sess := s.Remote.Store.Session(secrets)
	var paths []string
	var objs []*remote.Object
	for _, p := range s.Paths {
		if !remote.IsRemote(p) {
			paths = append(paths, p)
			continue
		}
		found, err := sess.Expand(ctx, p)
		if err != nil {
			return nil, nil, err
		}
		for _, o := range found {
			paths = append(paths, o.Local)
		}
		objs = append(objs, found...)
	}
	rem := &fetched{release: s.Remote.Store.Pin(objs)}
	if s.Format == "parquet" {
		rem.data = objs
	} else {
		rem.whole = objs
	}
	if err := s.fetch(ctx, rem, nil); err != nil {
		rem.release()
		return nil, nil, err
	}
	return paths, rem, nil
}

// fetch makes the local copies of rem's objects hold what a query reads:
// of data files, the footer and the column chunks keep chooses (nil: the
// footer only); the others whole.
func (s *Spec) fetch(ctx context.Context, rem *fetched, keep func(name string, fieldID int32) bool) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, o := range rem.whole {
		g.Go(func() error { return s.Remote.Store.Whole(gctx, o) })
	}
	for _, o := range rem.data {
		g.Go(func() error {
			if keep == nil {
				_, err := s.Remote.Store.Footer(gctx, o)
				return err
			}
			return s.Remote.Store.ColumnsWhere(gctx, o, keep)
		})
	}
	return g.Wait()
}

// reader is the DuckDB table function call reading the files at paths.
func (s *Spec) reader(local []string) (string, error) {
	paths := make([]string, len(local))
	for i, p := range local {
		paths[i] = catalog.QuoteLiteral(p)
	}
	fn := "read_" + s.Format
	if s.Object {
		fn = "read_json_objects"
	}
	args := []string{"[" + strings.Join(paths, ", ") + "]"}
	keys := make([]string, 0, len(s.Options))
	for k := range s.Options {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		o := readerOptions[s.Format][k]
		if s.Object && o.duck != "format" && o.duck != "compression" && o.duck != "hive_partitioning" && o.duck != "maximum_depth" && o.duck != "ignore_errors" {
			continue // read_json_objects takes fewer options
		}
		v := s.Options[k]
		switch o.kind {
		case optBool:
			b, err := parseBool(v)
			if err != nil {
				return "", &pgconn.PgError{Code: "22023", Message: fmt.Sprintf("option %q: %q is not a boolean", k, v)}
			}
			v = strconv.FormatBool(b)
		case optInt:
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || n < 0 {
				return "", &pgconn.PgError{Code: "22023", Message: fmt.Sprintf("option %q: %q is not a non-negative integer", k, v)}
			}
			v = strconv.FormatInt(n, 10)
		default:
			v = catalog.QuoteLiteral(v)
		}
		args = append(args, o.duck+" = "+v)
	}
	if s.Format == "csv" && len(s.Columns) > 0 {
		// Without a header the declared columns name the file's, in order.
		if h, ok := s.Options["header"]; ok {
			if b, err := parseBool(h); err == nil && !b {
				names := make([]string, len(s.Columns))
				for i, c := range s.Columns {
					names[i] = catalog.QuoteLiteral(c.Name)
				}
				args = append(args, "names = ["+strings.Join(names, ", ")+"]")
			}
		}
	}
	if s.Format == "parquet" && !s.Object {
		if _, ok := s.Options["union_by_name"]; !ok {
			args = append(args, "union_by_name = true")
		}
	}
	return fn + "(" + strings.Join(args, ", ") + ")", nil
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "t", "on", "yes", "1":
		return true, nil
	case "false", "f", "off", "no", "0":
		return false, nil
	}
	return false, errors.New("not a boolean")
}

// FileColumn is a column of the files, as DuckDB reads them.
type FileColumn struct {
	Name     string `json:"name"`
	DuckType string `json:"duckdb_type"`
	PGType   string `json:"type"` // the PostgreSQL type that holds it best
	// money: a money column of a table mooncake wrote, stored as its
	// 64-bit integer (cents), not as an amount.
	money bool
}

// withKinds marks the columns of a table mooncake wrote whose stored form
// is not their value (money's integer), and names their PostgreSQL type.
func withKinds(cols []FileColumn, kinds map[string]catalog.Kind) []FileColumn {
	if kinds == nil {
		return cols
	}
	out := slices.Clone(cols)
	for i, c := range out {
		if kinds[c.Name] == catalog.KindMoney && duckCategory(c.DuckType) == catInt {
			out[i].money, out[i].PGType = true, "money"
		}
	}
	return out
}

// describe lists the columns of the files' relation src (cached
// briefly: planning a query asks more than once).
func describe(ctx context.Context, e *sql.Engine, s *Spec, src string) ([]FileColumn, error) {
	rd := src
	key := rd
	descMu.Lock()
	if d, ok := descCache[key]; ok && time.Since(d.at) < descTTL {
		descMu.Unlock()
		return d.cols, nil
	}
	descMu.Unlock()
	rows, err := e.DB.QueryContext(ctx, "DESCRIBE SELECT * FROM "+rd)
	if err != nil {
		return nil, fileError(err, s)
	}
	defer rows.Close()
	var cols []FileColumn
	names, _ := rows.Columns()
	for rows.Next() {
		vals := make([]any, len(names))
		ptrs := make([]any, len(names))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		name, _ := vals[0].(string)
		typ, _ := vals[1].(string)
		cols = append(cols, FileColumn{Name: name, DuckType: typ, PGType: pgTypeOf(typ)})
	}
	if err := rows.Err(); err != nil {
		return nil, fileError(err, s)
	}
	descMu.Lock()
	if len(descCache) > 256 {
		descCache = map[string]described{}
	}
	descCache[key] = described{cols: cols, at: time.Now()}
	descMu.Unlock()
	return cols, nil
}

type described struct {
	cols []FileColumn
	at   time.Time
}

const descTTL = 2 * time.Second

var (
	descMu    sync.Mutex // guards descCache and openCache
	descCache = map[string]described{}
	openCache = map[string]opened{}
)

// Describe lists the files' own columns with the PostgreSQL types that
// hold them (IMPORT FOREIGN SCHEMA, read_* without a column list).
func Describe(ctx context.Context, e *sql.Engine, s *Spec) ([]FileColumn, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	src, rem, err := s.source(ctx)
	if err != nil {
		return nil, err
	}
	defer rem.release()
	if err := s.checkCSVLayout(ctx, e, rem.local); err != nil {
		return nil, err
	}
	cols, err := describe(ctx, e, s, src)
	return withKinds(cols, rem.kinds), err
}

// fileError maps DuckDB's errors about files to PostgreSQL's SQLSTATEs:
// a missing file 58P01, an unreadable or malformed one 22P04.
func fileError(err error, s *Spec) error {
	var de *duckdb.Error
	if !errors.As(err, &de) {
		return err
	}
	msg, _, _ := strings.Cut(de.Msg, "\n")
	what := s.names()
	msg = "Paths: " + strings.Join(s.Paths, ", ") + ". " + msg
	switch {
	case strings.Contains(msg, "No files found"), strings.Contains(msg, "No such file"), strings.Contains(msg, "does not exist"):
		return &pgconn.PgError{Code: "58P01", Message: fmt.Sprintf("could not open %s file %s: no such file", s.Format, what), Detail: catalog.Redact(msg)}
	case strings.Contains(msg, "Permission denied"):
		return &pgconn.PgError{Code: "42501", Message: fmt.Sprintf("could not open %s file %s: permission denied", s.Format, what)}
	case de.Type == duckdb.ErrorTypeIO, de.Type == duckdb.ErrorTypeInvalidInput, de.Type == duckdb.ErrorTypeConversion,
		de.Type == duckdb.ErrorTypeSerialization, de.Type == duckdb.ErrorTypeParser:
		return &pgconn.PgError{Code: "22P04", Message: fmt.Sprintf("could not read %s file %s", s.Format, what), Detail: catalog.Redact(msg)}
	}
	return err
}

// oidTID is PostgreSQL's tid type, of the row ids of columnstore tables.
const oidTID = 27

// Files is a set of files read as a relation (sql.Relation).
type Files struct {
	spec    *Spec
	view    string
	cols    []catalog.Column
	rows    int64
	rem     *fetched          // the remote objects read, if any
	fileCol map[string]string // declared column -> the files' column it reads
}

// Open makes the relation of a spec: the declared columns are checked
// against the files' (42703 for a column the files lack, 42804 for one
// of a type the declared one cannot hold), or taken from the files when
// none is declared.
func Open(ctx context.Context, e *sql.Engine, s *Spec) (*Files, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	// A query's plan, explain and scan requests open the same files: the
	// relation (its columns and row count) is kept briefly rather than
	// read three times. Not an Iceberg or Delta table's: its view lists
	// the snapshot's files, and a new snapshot is seen at once.
	if s.Format == "iceberg" || s.Format == "delta" {
		return open(ctx, e, s)
	}
	keyb, _ := json.Marshal(s)
	key := string(keyb)
	if s.Remote != nil {
		key += "\x00" + s.Remote.Key
	}
	descMu.Lock()
	if o, ok := openCache[key]; ok && time.Since(o.at) < descTTL {
		descMu.Unlock()
		return o.files, nil
	}
	descMu.Unlock()
	f, err := open(ctx, e, s)
	if err != nil {
		return nil, err
	}
	descMu.Lock()
	if len(openCache) > 256 {
		openCache = map[string]opened{}
	}
	openCache[key] = opened{files: f, at: time.Now()}
	descMu.Unlock()
	return f, nil
}

type opened struct {
	files *Files
	at    time.Time
}

func open(ctx context.Context, e *sql.Engine, s *Spec) (*Files, error) {
	rd, rem, err := s.source(ctx)
	if err != nil {
		return nil, err
	}
	defer rem.release()
	if err := s.checkCSVLayout(ctx, e, rem.local); err != nil {
		return nil, err
	}
	fileCols, err := describe(ctx, e, s, rd)
	if err != nil {
		return nil, err
	}
	fileCols = withKinds(fileCols, rem.kinds)
	decl := s.Columns
	if s.Format == "json" && !s.Object && len(decl) == 1 && (decl[0].OID == oidJSON || decl[0].OID == oidJSONB) &&
		!slices.ContainsFunc(fileCols, func(fc FileColumn) bool { return fc.Name == decl[0].Name }) {
		// one json column the objects do not have: each object whole
		whole := *s
		whole.Object = true
		return open(ctx, e, &whole)
	}
	if len(decl) == 0 {
		for _, fc := range fileCols {
			oid, typmod := pgTypeOID(fc.PGType)
			decl = append(decl, Column{Name: fc.Name, OID: oid, Typmod: typmod, Type: fc.PGType})
		}
	}
	f := &Files{spec: s, rem: rem, fileCol: map[string]string{}}
	var sel []string
	for i, d := range decl {
		ct, err := columnType(d)
		if err != nil {
			return nil, err
		}
		var src FileColumn
		switch {
		case s.Object:
			if len(decl) != 1 || (d.OID != oidJSON && d.OID != oidJSONB && d.OID != catalog.OIDText) {
				return nil, &pgconn.PgError{Code: "42804", Message: "read_json of whole objects returns one column of type jsonb, json or text"}
			}
			src = FileColumn{Name: "json", DuckType: "JSON"}
		default:
			idx := slices.IndexFunc(fileCols, func(fc FileColumn) bool { return fc.Name == d.Name })
			if idx < 0 {
				idx = slices.IndexFunc(fileCols, func(fc FileColumn) bool { return strings.EqualFold(fc.Name, d.Name) })
			}
			if idx < 0 {
				return nil, &pgconn.PgError{Code: "42703", Message: fmt.Sprintf("column %q does not exist in %s", d.Name, f.Describe()),
					Hint: "The files have the columns " + columnNames(fileCols) + "."}
			}
			src = fileCols[idx]
			ct = exactDecimal(ct, src.DuckType)
		}
		expr, err := castColumn(catalog.QuoteIdent(src.Name), src.DuckType, ct, d)
		if src.money && ct.Kind == catalog.KindMoney {
			expr = catalog.QuoteIdent(src.Name) // already money's integer
		}
		if err != nil {
			return nil, err
		}
		sel = append(sel, expr+" AS "+catalog.QuoteIdent(d.Name))
		f.fileCol[d.Name] = src.Name
		f.cols = append(f.cols, catalog.Column{Name: d.Name, Type: ct, ID: i + 1, AttNum: i + 1})
	}
	if s.RowID && s.Format == "iceberg" {
		ct, err := catalog.ResolveType(oidTID, -1, "tid")
		if err != nil {
			return nil, err
		}
		sel = append(sel, `CAST("ctid" AS VARCHAR) AS "ctid"`)
		f.cols = append(f.cols, catalog.Column{Name: "ctid", Type: ct, ID: len(f.cols) + 1, AttNum: -1})
		f.fileCol["ctid"] = "ctid"
	}
	if len(sel) == 0 {
		sel = []string{"NULL AS mooncake_no_column"}
	}
	f.view = "(SELECT " + strings.Join(sel, ", ") + " FROM " + rd + ")"
	f.rows = estimateRows(ctx, e, s, rem.data)
	return f, nil
}

// Prepare fetches into the local cache what a query using cols (declared
// names) reads of the remote objects (sql.Preparer).
func (f *Files) Prepare(ctx context.Context, cols []string) (func(), error) {
	all := f.rem.all()
	if len(all) == 0 {
		return func() {}, nil
	}
	var used []string
	for _, c := range cols {
		if n, ok := f.fileCol[c]; ok {
			used = append(used, n)
		}
	}
	var keep func(name string, fieldID int32) bool
	if f.rem.keep != nil {
		keep = f.rem.keep(used)
	} else {
		names := map[string]bool{}
		for _, n := range used {
			names[strings.ToLower(n)] = true
		}
		keep = func(name string, _ int32) bool { return names[strings.ToLower(name)] }
	}
	release := f.spec.Remote.Store.Pin(all)
	if err := f.spec.fetch(ctx, f.rem, keep); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

func columnNames(cols []FileColumn) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = catalog.QuoteIdent(c.Name)
	}
	return strings.Join(names, ", ")
}

// estimateRows counts a Parquet file's rows from its footers; other
// formats are estimated from nothing better than a constant.
func estimateRows(ctx context.Context, e *sql.Engine, s *Spec, objs []*remote.Object) int64 {
	if s.Format != "parquet" {
		return 10000 // Iceberg and Delta too: their counts are in their metadata (not used yet)
	}
	if len(objs) > 0 {
		var n int64
		for _, o := range objs {
			md, err := s.Remote.Store.Footer(ctx, o)
			if err != nil {
				return 10000
			}
			n += md.NumRows
		}
		return n
	}
	paths := make([]string, len(s.Paths))
	for i, p := range s.Paths {
		paths[i] = catalog.QuoteLiteral(p)
	}
	var n *int64
	if err := e.DB.QueryRowContext(ctx, "SELECT sum(num_rows)::BIGINT FROM parquet_file_metadata(["+strings.Join(paths, ", ")+"])").Scan(&n); err != nil || n == nil {
		return 10000
	}
	return *n
}

func (f *Files) View() string                  { return f.view }
func (f *Files) Cols() []catalog.Column        { return f.cols }
func (f *Files) EstimatedRows() int64          { return f.rows }
func (f *Files) TailRows() int64               { return 0 }
func (f *Files) Ranges() []catalog.ColumnRange { return nil }

// ColumnIndex is the index of a column, -1 if none.
func (f *Files) ColumnIndex(name string) int {
	return slices.IndexFunc(f.cols, func(c catalog.Column) bool { return c.Name == name })
}

// Describe names the files in messages.
func (f *Files) Describe() string {
	if len(f.spec.Paths) == 1 {
		return fmt.Sprintf("%s file %s", f.spec.Format, f.spec.names())
	}
	return fmt.Sprintf("%s files %s", f.spec.Format, f.spec.names())
}

// names are the files' names for messages: the last part of each path
// (the whole paths go in the details).
func (s *Spec) names() string {
	out := make([]string, len(s.Paths))
	for i, p := range s.Paths {
		out[i] = strconv.Quote(filepath.Base(p))
	}
	return strings.Join(out, ", ")
}
