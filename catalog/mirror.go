package catalog

import (
	"context"
	gosql "database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/apache/iceberg-go/table"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmooncake/mooncake/sidecar/metrics"
)

// Column is one column of a mirror, in the source's column order.
type Column struct {
	Name    string     // column name, as in PostgreSQL
	Type    ColumnType // resolved type
	NotNull bool       // declared NOT NULL in the source
	ID      int        // Iceberg field ID: stays with the column through renames and promotions
	AttNum  int        // the source column's attnum (0: not known, mirrors of an older version)
}

// columnJSON is one column in the mooncake.columns property: enough to
// rebuild its ColumnType without asking PostgreSQL. Mirrors created before
// kind was recorded have only name, oid, typmod and not_null; their types
// resolve as they did then.
type columnJSON struct {
	Name     string `json:"name"`
	OID      uint32 `json:"oid"`            // base type OID (a domain's base type)
	Typmod   int32  `json:"typmod"`         // base type typmod
	TypeName string `json:"type,omitempty"` // the source column's type, as format_type names it
	Kind     string `json:"kind,omitempty"` // storage kind (Kind.String)
	NotNull  bool   `json:"not_null,omitempty"`
	FieldID  int    `json:"field_id,omitempty"` // Iceberg field ID; absent: the column's position + 1
	AttNum   int    `json:"attnum,omitempty"`   // source attnum; absent: match by name
}

func encodeColumns(cols []Column, key []string) (string, string, error) {
	js := make([]columnJSON, len(cols))
	for i, c := range cols {
		js[i] = columnJSON{Name: c.Name, OID: c.Type.OID, Typmod: c.Type.Typmod, TypeName: c.Type.Name,
			Kind: c.Type.Kind.String(), NotNull: c.NotNull, FieldID: c.ID, AttNum: c.AttNum}
	}
	a, err := json.Marshal(js)
	if err != nil {
		return "", "", err
	}
	b, err := json.Marshal(key)
	return string(a), string(b), err
}

func decodeColumns(colsJSON, keyJSON string) ([]Column, []int, error) {
	var js []columnJSON
	if err := json.Unmarshal([]byte(colsJSON), &js); err != nil {
		return nil, nil, fmt.Errorf("bad %s property: %w", PropColumns, err)
	}
	cols := make([]Column, len(js))
	for i, c := range js {
		var t ColumnType
		var err error
		if c.Kind == "" {
			t, err = legacyType(c.OID, c.Typmod, c.TypeName)
		} else {
			var k Kind
			if k, err = ParseKind(c.Kind); err == nil {
				t, err = StoredType(c.OID, c.Typmod, k, c.TypeName)
			}
		}
		if err != nil {
			return nil, nil, fmt.Errorf("bad %s property, column %q: %w", PropColumns, c.Name, err)
		}
		id := c.FieldID
		if id == 0 {
			id = i + 1 // mirrors created before field IDs were recorded numbered them so
		}
		cols[i] = Column{Name: c.Name, Type: t, NotNull: c.NotNull, ID: id, AttNum: c.AttNum}
	}
	var keyNames []string
	if err := json.Unmarshal([]byte(keyJSON), &keyNames); err != nil {
		return nil, nil, fmt.Errorf("bad %s property: %w", PropKey, err)
	}
	key, err := keyIndexes(cols, keyNames)
	return cols, key, err
}

func keyIndexes(cols []Column, names []string) ([]int, error) {
	key := make([]int, 0, len(names))
	for _, n := range names {
		found := false
		for i, c := range cols {
			if c.Name == n {
				key, found = append(key, i), true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("key column %q is not a column of the mirror", n)
		}
	}
	return key, nil
}

var mirrorSeq atomic.Int64

// Mirror is one columnstore mirror: an Iceberg table plus its DuckDB tail.
//
// Only the apply goroutine of the mirror's database writes to the tail and
// flushes; readers go through the DuckDB view, whose definition and the
// tail's contents change together in DuckDB transactions.
type Mirror struct {
	Database  string // PostgreSQL database
	Namespace string // Iceberg namespace (the foreign table's schema)
	Name      string // Iceberg table name (the foreign table's name)
	Source    string // qualified source table name
	SourceOID uint32 // source table OID
	// ForeignOID is the OID of the mirror's foreign table (0 for mirrors
	// of an older version, found by name).
	ForeignOID uint32
	Columns    []Column // columns in source order
	Key        []int    // replica identity columns, indexes into Columns
	// Full is set for REPLICA IDENTITY FULL: the key is every column, rows
	// may repeat, and a delete removes one matching row, located by position.
	Full bool

	id   int64 // suffix of the DuckDB internal tables
	gen  int64 // generation of the tail and fdel tables; a flush starts a new one
	sgen int64 // generation of the staging tables
	// form is the view's committed form (see viewForm); only the apply
	// loop and its flushes change it (setForm).
	form viewForm
	// formNow is form for readers outside the apply loop (FilesOnly).
	formNow atomic.Int32
	// viewVer is the version of the mirror's DuckDB view (ViewVersion).
	viewVer atomic.Int64
	// staged counts rows through the staging tables since they were created
	staged int
	// tailKeys holds hashes of the keys of the rows put in the tail since
	// the last flush: a delete whose key is not there needs no tail lookup.
	// Only the apply loop uses it; a false hit only costs the lookup.
	tailKeys map[uint64]struct{}
	ready    chan struct{}
	// decimals is set when the last copy of the source stored numeric(p,s)
	// columns as DECIMAL where it could (PropNumeric).
	decimals atomic.Bool

	maint sync.Mutex // held by a compaction; flushes skip the mirror meanwhile

	layouts layoutCache // of the current data files (scanFiles)

	mu       sync.Mutex   // guards the fields below
	tbl      *table.Table // current Iceberg table
	files    []string     // data files of the current snapshot
	delFiles []string     // position delete files of the current snapshot
	// delTargets maps position delete files (those of the current
	// snapshot, or of the one being committed) to the data files they
	// delete rows of (deleteTargets; a delete file never changes).
	delTargets map[string][]string
	spilled    []string // spill files: data files in the view, not yet in Iceberg
	failed     error    // set when the initial copy failed, or the mirror is broken
	pending    string   // the create_table transaction not known to have committed (PropPending)

	catchCh   chan struct{} // while a new copy of the source is made: closed when the mirror follows again
	catchFrom uint64        // the source commit from which the mirror is behind

	appliedLSN atomic.Uint64 // last source commit LSN applied to the tail or files
	flushedLSN atomic.Uint64 // last source commit LSN committed to Iceberg
	tailRows   atomic.Int64  // rows in the tail (approximate: inserts applied since flush)
	fileRows   atomic.Int64  // rows in the data files, from Iceberg metadata
	ranges     []ColumnRange // of the data files' columns, from Iceberg metadata (mu)
	dirty      atomic.Bool   // tail, or deleted keys, hold changes not yet flushed
	dropped    atomic.Bool   // the mirror was dropped: nothing is written for it any more (set under maint)
	schemaLSN  atomic.Uint64 // commit LSN of the last source schema change applied
	// schemaSeq is which of that transaction's schema change messages
	// (1 the first) the columns follow; allSchemaChanges: all of them.
	schemaSeq  atomic.Int64
	flushFails int              // flushes failed in a row (apply loop only)
	applied    *metrics.Applied // counters of the changes applied (apply loop only; see counters)
}

func newMirror(database, namespace, name string, cols []Column, key []int) *Mirror {
	return &Mirror{
		Database: database, Namespace: namespace, Name: name,
		Columns: cols, Key: key,
		id:    mirrorSeq.Add(1),
		ready: make(chan struct{}),
	}
}

// counters are the metrics' counters of the changes applied to the
// mirror's database, looked up on first use by the apply loop.
func (m *Mirror) counters() *metrics.Applied {
	if m.applied == nil {
		m.applied = metrics.Default.AppliedFor(m.Database)
	}
	return m.applied
}

// DuckCatalog is the DuckDB catalog (attached in-memory database) that holds
// the views and tails of one PostgreSQL database.
func DuckCatalog(database string) string { return QuoteIdent(duckCatalogName(database)) }

func duckCatalogName(database string) string { return "pg_" + duckName(database) }

// duckName maps a PostgreSQL name to a DuckDB name. DuckDB compares names
// case-insensitively, so upper-case letters are written as '^' and the
// lower-case letter ('^' itself as "^^"): "T" and "t" stay apart.
func duckName(s string) string {
	if !strings.ContainsAny(s, "^ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '^':
			b.WriteString("^^")
		case r >= 'A' && r <= 'Z':
			b.WriteByte('^')
			b.WriteRune(r + ('a' - 'A'))
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// duckSchema maps a PostgreSQL schema name to the DuckDB schema of its
// mirrors' views: duckName, except for the schemas DuckDB keeps in every
// catalog (information_schema, pg_catalog: no schema of that name can be
// made there) and the one holding the mirrors' internal tables, which get
// a prefix no duckName has ('^' followed by neither '^' nor a letter).
func duckSchema(s string) string {
	switch s {
	case "information_schema", "pg_catalog", "mooncake_internal":
		return "^_" + s
	}
	return duckName(s)
}

// View is the qualified DuckDB view reading the mirror's current rows.
func (m *Mirror) View() string {
	return DuckCatalog(m.Database) + "." + QuoteIdent(duckSchema(m.Namespace)) + "." + QuoteIdent(duckName(m.Name))
}

func (m *Mirror) internal(kind string, gen int64) string {
	return DuckCatalog(m.Database) + ".mooncake_internal." + kind + "_" + strconv.FormatInt(m.id, 10) + "_" + strconv.FormatInt(gen, 10)
}

// The tail holds typed rows not yet flushed (columns c0..), fdel the typed
// keys deleted from data files since the last flush (columns k0..). Each
// flush starts new ones rather than deleting from the old: DuckDB keeps
// deleted rows of an in-memory table until it is dropped.
func (m *Mirror) tail() string { return m.internal("tail", m.gen) }
func (m *Mirror) fdel() string { return m.internal("fdel", m.gen) }

// pdel holds the positions (file_path, pos) of data file rows deleted since
// the last flush, for mirrors with Full identity.
func (m *Mirror) pdel() string { return m.internal("pdel", m.gen) }

// trunc holds a row once the source was truncated since the last flush: the
// view then hides every data file, and the next flush removes them.
func (m *Mirror) trunc() string { return m.internal("trunc", m.gen) }

// The staging tables receive text rows (stage, columns c0..) and text keys
// (kstage, columns k0..) through DuckDB's appender before they are cast
// into the tail.
func (m *Mirror) stage() string  { return m.internal("stage", m.sgen) }
func (m *Mirror) kstage() string { return m.internal("kstage", m.sgen) }

// stageName is the unqualified name of a staging table, for the appender.
func (m *Mirror) stageName(kind string) string {
	return kind + "_" + strconv.FormatInt(m.id, 10) + "_" + strconv.FormatInt(m.sgen, 10)
}

// stagingDDL creates the staging tables; with replace, it drops the current
// ones and creates the next generation.
func (m *Mirror) stagingDDL(replace bool) []string {
	var stmts []string
	if replace {
		stmts = append(stmts, "DROP TABLE "+m.stage(), "DROP TABLE "+m.kstage())
		m.sgen++
	}
	var stage, kstage []string
	for i := range m.Columns {
		stage = append(stage, colName("c", i)+" VARCHAR")
	}
	for i := range m.Key {
		kstage = append(kstage, colName("k", i)+" VARCHAR")
	}
	return append(stmts,
		"CREATE TABLE "+m.stage()+" ("+strings.Join(stage, ", ")+")",
		"CREATE TABLE "+m.kstage()+" ("+strings.Join(kstage, ", ")+")")
}

// Ready is closed once the initial copy is committed (or failed).
func (m *Mirror) Ready() <-chan struct{} { return m.ready }

// Fail marks the mirror as broken: the stream skips its changes from now on
// so the other mirrors of the database go on, and queries on it fail with
// err until it is created again.
func (m *Mirror) Fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failed == nil {
		m.failed = brokenError(m, err.Error())
	}
}

func brokenError(m *Mirror, reason string) *pgconn.PgError {
	return &pgconn.PgError{Code: "XX001", Message: fmt.Sprintf("mirror %s.%s is broken and no longer follows its source", m.Namespace, m.Name),
		Detail: reason, Hint: fmt.Sprintf("Rebuild it from its source with CALL mooncake.resync_table('%s.%s').",
			QuoteIdent(m.Namespace), QuoteIdent(m.Name))}
}

// Broken returns why the mirror stopped following its source, or "".
func (m *Mirror) Broken() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.failed.(*pgconn.PgError); ok && e.Code == "XX001" {
		return e.Detail
	}
	return ""
}

// Err returns the error of a failed initial copy, or of a broken mirror.
func (m *Mirror) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.failed
}

// AppliedLSN is the last source commit LSN whose changes the mirror holds.
func (m *Mirror) AppliedLSN() uint64 { return m.appliedLSN.Load() }

// FlushedLSN is the last source commit LSN committed to Iceberg.
func (m *Mirror) FlushedLSN() uint64 { return m.flushedLSN.Load() }

// Dirty reports whether the mirror holds changes not yet in Iceberg.
func (m *Mirror) Dirty() bool { return m.dirty.Load() }

// TailRows is the number of rows inserted since the last flush.
func (m *Mirror) TailRows() int64 { return m.tailRows.Load() }

// EstimatedRows is the number of rows in the mirror, from Iceberg metadata
// plus the tail; deletes not yet compacted are not subtracted.
func (m *Mirror) EstimatedRows() int64 { return m.fileRows.Load() + m.tailRows.Load() }

// MetadataLocation is the location of the current Iceberg metadata file.
func (m *Mirror) MetadataLocation() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tbl == nil {
		return ""
	}
	return m.tbl.MetadataLocation()
}

// Spilled returns the mirror's spill files not yet committed to Iceberg.
func (m *Mirror) Spilled() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.spilled
}

func (m *Mirror) setSpilled(files []string) {
	m.mu.Lock()
	m.spilled = files
	m.mu.Unlock()
}

// FileCounts returns the number of data and delete files of the current
// snapshot.
func (m *Mirror) FileCounts() (data, deletes int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.files), len(m.delFiles)
}

// ColumnIndex finds a column by name.
// Cols is the mirror's columns (sql.Relation).
func (m *Mirror) Cols() []Column { return m.Columns }

// Describe names the mirror in messages (sql.Relation).
func (m *Mirror) Describe() string { return "mirror " + m.Namespace + "." + m.Name }

func (m *Mirror) ColumnIndex(name string) int {
	for i, c := range m.Columns {
		if c.Name == name {
			return i
		}
	}
	return -1
}

func colName(prefix string, i int) string { return prefix + strconv.Itoa(i) }

// createDuckObjects creates the mirror's DuckDB tables and its view.
func (m *Mirror) createDuckObjects(ctx context.Context, conn *gosql.Conn) error {
	m.viewChanging()
	defer m.viewChanging()
	stmts := append([]string{
		"CREATE SCHEMA IF NOT EXISTS " + DuckCatalog(m.Database) + ".mooncake_internal",
		"CREATE SCHEMA IF NOT EXISTS " + DuckCatalog(m.Database) + "." + QuoteIdent(duckSchema(m.Namespace)),
	}, m.generationDDL(m.gen)...)
	stmts = append(stmts, m.stagingDDL(false)...)
	// The tables are new and empty: only spill files can hold rows.
	form := formFiles
	if len(m.spilled) > 0 {
		form = formTail
	}
	m.form = form
	stmts = append(stmts, m.viewDDL(m.files, m.delFiles, m.deleteTargets(ctx, conn, m.delFiles), m.spilled, form)...)
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			m.formNow.Store(int32(formFull)) // whatever view is there: read it afresh
			return fmt.Errorf("create duckdb objects of %s.%s: %w", m.Namespace, m.Name, err)
		}
	}
	m.setForm(form)
	return nil
}

// generationDDL creates the tail and fdel tables of generation gen.
func (m *Mirror) generationDDL(gen int64) []string {
	var tail, fdel, keys []string
	for i, c := range m.Columns {
		tail = append(tail, colName("c", i)+" "+c.Type.DuckDBType())
	}
	for i, k := range m.Key {
		fdel = append(fdel, colName("k", i)+" "+m.Columns[k].Type.DuckDBType())
		keys = append(keys, colName("c", k))
	}
	stmts := []string{
		"CREATE TABLE " + m.internal("tail", gen) + " (" + strings.Join(tail, ", ") + ")",
		"CREATE TABLE " + m.internal("fdel", gen) + " (" + strings.Join(fdel, ", ") + ")",
		"CREATE TABLE " + m.internal("trunc", gen) + " (truncated BOOLEAN)",
		"CREATE TABLE " + m.internal("pdel", gen) + " (file_path VARCHAR, pos BIGINT)",
	}
	if len(keys) > 0 {
		name := "tail_key_" + strconv.FormatInt(m.id, 10) + "_" + strconv.FormatInt(gen, 10)
		stmts = append(stmts, "CREATE INDEX "+QuoteIdent(name)+" ON "+m.internal("tail", gen)+" ("+strings.Join(keys, ", ")+")")
	}
	return stmts
}

// dropDuckObjects removes the mirror's DuckDB tables and view.
func (m *Mirror) dropDuckObjects(ctx context.Context, conn *gosql.Conn) {
	m.viewChanging()
	defer m.viewChanging()
	for _, s := range []string{
		"DROP VIEW IF EXISTS " + m.View(),
		"DROP VIEW IF EXISTS " + m.part("files"),
		"DROP VIEW IF EXISTS " + m.part("tail"),
		"DROP TABLE IF EXISTS " + m.tail(),
		"DROP TABLE IF EXISTS " + m.fdel(),
		"DROP TABLE IF EXISTS " + m.trunc(),
		"DROP TABLE IF EXISTS " + m.pdel(),
		"DROP TABLE IF EXISTS " + m.stage(),
		"DROP TABLE IF EXISTS " + m.kstage(),
	} {
		conn.ExecContext(ctx, s)
	}
}

// fileCol is the name under which readFiles exposes column i: its field
// ID, so that no user column name can collide with the reader's own
// columns (filename, file_row_number) and renamed columns are found in
// files written before the rename.
func (m *Mirror) fileCol(i int) string { return "f" + strconv.Itoa(m.Columns[i].ID) }

// readFiles reads Parquet data files of the mirror by Iceberg field ID:
// each column is found by its ID whatever its name in the file, files
// written before a column was added read it as NULL, and older, narrower
// types are widened to the column's type. Its rows also have the virtual
// columns filename and file_row_number, the position a delete names: the
// file's own columns are renamed (fileCol), so none of them, whatever the
// source calls it, hides those. (The options filename and file_row_number
// would add the same columns, but DuckDB refuses them for a file with a
// column of either name.)
func (m *Mirror) readFiles(files []string) string {
	fields := make([]string, len(m.Columns))
	for i, c := range m.Columns {
		fields[i] = strconv.Itoa(c.ID) + ": {name: " + QuoteLiteral(m.fileCol(i)) + ", type: " +
			QuoteLiteral(c.Type.DuckDBType()) + ", default_value: NULL}"
	}
	return "read_parquet(" + stringList(files) + ", schema = MAP {" + strings.Join(fields, ", ") + "})"
}

// fileColumns selects every column of rows read by readFiles under alias,
// named as the mirror's columns.
func (m *Mirror) fileColumns(alias string) string {
	cols := make([]string, len(m.Columns))
	for i, c := range m.Columns {
		cols[i] = alias + "." + m.fileCol(i) + " AS " + QuoteIdent(c.Name)
	}
	return strings.Join(cols, ", ")
}

func stringList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = QuoteLiteral(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// The mirror's view (View) reads two parts, each a view of its own: the
// live rows of the data files as of the last flush (filesPart: the data
// files minus their delete files, and minus the rows deleted by position
// since the last flush for Full identity), and the rows not yet flushed
// (tailPart: the spill files and the tail). How the view combines them is
// its form, which follows what the tables of the current generation hold,
// in the same DuckDB transactions that change them: a query reads only
// what can hold rows, so a mirror that took no change since its last
// flush is read as its data files alone, without the deleted keys' anti
// join (which reads every key) or the tail.
type viewForm int

const (
	formFiles viewForm = iota // nothing since the last flush: the data files
	formTail                  // rows inserted or spilled: plus the tail part
	formFull                  // rows deleted by key, or the source truncated: plus the anti join and the truncation
)

// viewDDL defines the mirror's view and its parts over the given data,
// delete and spill files, in form f (targets: deleteTargets of delFiles).
func (m *Mirror) viewDDL(files, delFiles []string, targets map[string][]string, spilled []string, f viewForm) []string {
	return []string{m.filesDDL(files, delFiles, targets), m.tailDDL(spilled), m.formDDL(f)}
}

// filesDDL defines the files part over the given data and delete files.
// With the data files each delete file names (targets, from
// deleteTargets), each data file that has deleted rows is read alone,
// without the rows at the positions its delete files name (an anti join
// on the position, an integer), and the others together as they are.
// Without targets (or for Full identity, whose rows deleted since the last
// flush are positions in any file), all data files are read with the
// file's name and position of each row, anti joined with every delete
// file: DuckDB then hashes a string and a position for every row, and
// under a filter it can plan the join the other way round (the data
// files' rows its hash table): 100 ms where the files alone take 8.
func (m *Mirror) filesDDL(files, delFiles []string, targets map[string][]string) string {
	part := "SELECT " + m.fileColumns("p")
	if len(files) == 0 {
		var nulls []string
		for _, c := range m.Columns {
			nulls = append(nulls, "CAST(NULL AS "+c.Type.DuckDBType()+") AS "+QuoteIdent(c.Name))
		}
		return "CREATE OR REPLACE VIEW " + m.part("files") + " AS SELECT " + strings.Join(nulls, ", ") + " WHERE false"
	}
	if len(delFiles) > 0 && targets != nil && !m.Full {
		return "CREATE OR REPLACE VIEW " + m.part("files") + " AS " + m.filesWithDeletes(files, delFiles, targets)
	}
	var conds []string
	if len(delFiles) > 0 {
		conds = append(conds, "NOT EXISTS (SELECT 1 FROM "+m.delRead(delFiles)+
			" d WHERE d.file_path = p.filename AND d.pos = p.file_row_number)")
	}
	if m.Full {
		conds = append(conds, "NOT EXISTS (SELECT 1 FROM "+m.pdel()+" x WHERE x.file_path = p.filename AND x.pos = p.file_row_number)")
	}
	part += " FROM " + m.scanFiles(files, len(conds) > 0) + " p"
	if len(conds) > 0 {
		part += " WHERE " + strings.Join(conds, " AND ")
	}
	return "CREATE OR REPLACE VIEW " + m.part("files") + " AS " + part
}

// filesWithDeletes is the files part's query when targets tells which
// data files each delete file names (see filesDDL).
func (m *Mirror) filesWithDeletes(files, delFiles []string, targets map[string][]string) string {
	dels := map[string][]string{} // data file: its delete files
	for _, d := range delFiles {
		for _, f := range targets[d] {
			dels[f] = append(dels[f], d)
		}
	}
	var plain []string
	var parts []string
	for _, f := range files {
		ds := dels[f]
		if len(ds) == 0 {
			plain = append(plain, f)
			continue
		}
		parts = append(parts, "SELECT "+m.fileColumns("p")+" FROM "+m.scanFiles([]string{f}, true)+
			" p ANTI JOIN (SELECT pos FROM "+m.delRead(ds)+" WHERE file_path = "+QuoteLiteral(f)+
			") d ON d.pos = p.file_row_number")
	}
	if len(plain) > 0 {
		parts = append([]string{"SELECT " + m.fileColumns("p") + " FROM " + m.scanFiles(plain, false) + " p"}, parts...)
	}
	return strings.Join(parts, " UNION ALL ")
}

// deleteTargets maps each of delFiles to the data files (local paths) it
// deletes rows of, reading those it has not seen before; nil when they
// cannot be read (filesDDL then joins every file with every delete file).
func (m *Mirror) deleteTargets(ctx context.Context, conn *gosql.Conn, delFiles []string) map[string][]string {
	if len(delFiles) == 0 || m.Full {
		return nil
	}
	m.mu.Lock()
	known := m.delTargets
	m.mu.Unlock()
	out := make(map[string][]string, len(delFiles))
	var missing []string
	for _, d := range delFiles {
		if fs, ok := known[d]; ok {
			out[d] = fs
		} else {
			missing = append(missing, d)
		}
	}
	if len(missing) > 0 {
		rows, err := conn.QueryContext(ctx, "SELECT DISTINCT d.filename, d.file_path FROM "+
			"(SELECT filename, "+m.localFilePath("file_path")+" AS file_path FROM read_parquet("+stringList(missing)+", filename = true)) d")
		if err != nil {
			return nil
		}
		for _, d := range missing {
			out[d] = nil
		}
		for rows.Next() {
			var d, f string
			if err := rows.Scan(&d, &f); err != nil {
				rows.Close()
				return nil
			}
			out[d] = append(out[d], f)
		}
		if rows.Close() != nil || rows.Err() != nil {
			return nil
		}
	}
	m.mu.Lock()
	m.delTargets = out // only the current delete files stay
	m.mu.Unlock()
	return out
}

// localFilePath is the local path of the data file a position delete's
// file_path (expr) names.
func (m *Mirror) localFilePath(expr string) string {
	if !m.isRemote() {
		return expr
	}
	return localSQL(expr)
}

// tailDDL defines the tail part over the given spill files.
func (m *Mirror) tailDDL(spilled []string) string {
	var out []string
	for i, c := range m.Columns {
		out = append(out, colName("c", i)+" AS "+QuoteIdent(c.Name))
	}
	part := "SELECT " + strings.Join(out, ", ") + " FROM " + m.tail()
	if len(spilled) > 0 {
		part = "SELECT " + m.fileColumns("p") + " FROM " + m.readFiles(spilled) +
			" p WHERE NOT EXISTS (SELECT 1 FROM " + m.pdel() +
			" x WHERE x.file_path = p.filename AND x.pos = p.file_row_number) UNION ALL " + part
	}
	return "CREATE OR REPLACE VIEW " + m.part("tail") + " AS " + part
}

// formDDL defines the view in form f.
func (m *Mirror) formDDL(f viewForm) string {
	view := "SELECT * FROM " + m.part("files")
	switch f {
	case formTail:
		view += " UNION ALL SELECT * FROM " + m.part("tail")
	case formFull:
		view = "SELECT p.* FROM " + m.part("files") + " p"
		if !m.Full && len(m.Key) > 0 {
			// Rows deleted by key since the last flush. An anti join plans
			// and runs faster in DuckDB than the equivalent NOT EXISTS.
			var eq []string
			for i, k := range m.Key {
				eq = append(eq, "f."+colName("k", i)+" = p."+QuoteIdent(m.Columns[k].Name))
			}
			view += " ANTI JOIN " + m.fdel() + " f ON " + strings.Join(eq, " AND ")
		}
		view += " WHERE NOT EXISTS (SELECT 1 FROM " + m.trunc() + ") UNION ALL SELECT * FROM " + m.part("tail")
	}
	return "CREATE OR REPLACE VIEW " + m.View() + " AS " + view
}

// viewSeq numbers the versions of the mirrors' views (ViewVersion).
var viewSeq atomic.Int64

// viewChanging gives the mirror's view a new version. It is called before
// and after every statement that redefines the view, so that a version
// read while the view changes is never current again once it has. The
// catalog epoch moves with it (CatalogEpoch).
func (m *Mirror) viewChanging() {
	m.viewVer.Store(viewSeq.Add(1))
	catalogChanged()
}

// catalogEpoch counts the changes of the mirrors' DuckDB catalogs: views
// redefined, tables made or dropped.
//
// DuckDB binds a prepared statement again when a catalog it reads changed
// after it was prepared, and it does so on every later execution too: the
// new binding is used once, never kept. A statement kept across any such
// change (the view of another mirror of the database redefined by a flush
// is one) then costs a full bind and plan each time it runs: 0.5 to 1.5 ms
// for the apply loop's inserts, about what a query costs unprepared. The
// writer's statements and the queries' kept statements (sql's stmtCache)
// are prepared again instead, once, when the epoch has moved since.
var catalogEpoch atomic.Int64

// CatalogEpoch is the number of changes of the mirrors' DuckDB catalogs so
// far (see catalogEpoch).
func CatalogEpoch() int64 { return catalogEpoch.Load() }

// catalogChanged moves the epoch: after a statement that changed a mirrors'
// DuckDB catalog, and after the commit of a transaction that did.
func catalogChanged() { catalogEpoch.Add(1) }

// ViewVersion identifies the mirror's DuckDB view as it is: no two views
// of any mirror, over time, have the same version. A prepared statement
// kept under the versions of the views it reads (sql.Scan.ReuseKey) reads
// the views it was prepared on: DuckDB does not always bind a statement
// again when a view it reads is replaced (not when the view read no table
// or file, as a mirror's without data files).
func (m *Mirror) ViewVersion() int64 { return m.viewVer.Load() }

// setForm records the view's form once DuckDB has committed it.
func (m *Mirror) setForm(f viewForm) {
	m.form = f
	m.formNow.Store(int32(f))
}

// FilesOnly reports whether the mirror's view reads its data files (and
// delete files) alone, no DuckDB table: no row since the last flush, and
// not REPLICA IDENTITY FULL (whose files part reads the positions deleted
// since the flush). A prepared statement reading such a view stays right
// while the view keeps its version (ViewVersion): DuckDB plans a query
// with the statistics of the tables it reads (a filter the tail's rows all
// pass is dropped), so a plan over the tail would go wrong as rows arrive
// without the view changing.
func (m *Mirror) FilesOnly() bool {
	return viewForm(m.formNow.Load()) == formFiles && !m.Full
}

// part names one of the view's parts. Their names carry no generation:
// they are replaced as the view is.
func (m *Mirror) part(kind string) string {
	return DuckCatalog(m.Database) + ".mooncake_internal.view_" + kind + "_" + strconv.FormatInt(m.id, 10)
}

// execTx runs statements in one DuckDB transaction on conn.
func execTx(ctx context.Context, conn *gosql.Conn, stmts []string) error {
	if _, err := conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return err
	}
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			conn.ExecContext(context.Background(), "ROLLBACK")
			return err
		}
	}
	_, err := conn.ExecContext(ctx, "COMMIT")
	return err
}

// StoredKinds reads, from the properties of an Iceberg table that mooncake
// wrote (a mirror or a columnstore table: the mooncake.columns property),
// how each field's values are stored, by field ID; nil for other tables.
// Readers of such a table as a table of the lake need it where the stored
// form is not the value itself: money is its 64-bit integer (cents), not
// an amount.
func StoredKinds(props map[string]string) map[int]Kind {
	js, ok := props[PropColumns]
	if !ok {
		return nil
	}
	cols, _, err := decodeColumns(js, "[]")
	if err != nil {
		return nil
	}
	kinds := make(map[int]Kind, len(cols))
	for _, c := range cols {
		kinds[c.ID] = c.Type.Kind
	}
	return kinds
}

// NeedsDecimals reports whether the mirror, made by an older version,
// keeps as text numeric(p,s) columns that a new copy of its source would
// store as DECIMAL (DecimalType): such mirrors are copied again once.
func (m *Mirror) NeedsDecimals() bool {
	if m.decimals.Load() {
		return false
	}
	for _, c := range m.Columns {
		if DecimalType(c.Type) != c.Type {
			return true
		}
	}
	return false
}
