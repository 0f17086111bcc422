package catalog

import (
	"context"
	gosql "database/sql"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/apache/iceberg-go/table"

	"github.com/pgmooncake/mooncake/sidecar/metrics"
)

// Set is the mirrors of one PostgreSQL database: its Iceberg catalog and the
// DuckDB catalog holding the mirrors' views and tails.
type Set struct {
	Catalog *Catalog
	Duck    *gosql.DB // the sidecar's DuckDB database

	mu      sync.RWMutex
	mirrors map[[2]string]*Mirror // by namespace, name

	shapes atomic.Uint64 // ShapeVersion
}

// OpenSet attaches the database's DuckDB catalog and loads every mirror
// recorded in its Iceberg catalog. A mirror whose initial copy never
// completed is dropped.
func OpenSet(ctx context.Context, cat *Catalog, duck *gosql.DB) (*Set, error) {
	s := &Set{Catalog: cat, Duck: duck, mirrors: map[[2]string]*Mirror{}}
	if _, err := duck.ExecContext(ctx, "ATTACH IF NOT EXISTS ':memory:' AS "+DuckCatalog(cat.Database)); err != nil {
		return nil, fmt.Errorf("attach duckdb catalog: %w", err)
	}
	idents, err := cat.ListTables(ctx)
	if err != nil {
		return nil, fmt.Errorf("list mirrors: %w", err)
	}
	conn, err := duck.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	columnstore := cat.columnstoreTables(ctx)
	for _, ident := range idents {
		if len(ident) != 2 {
			continue
		}
		if columnstore[ident[0]+"\x00"+ident[1]] {
			continue // a columnstore table of its own, not a mirror: the backend keeps its state
		}
		tbl, err := cat.cat.LoadTable(ctx, ident)
		if err != nil {
			return nil, fmt.Errorf("load mirror %s.%s: %w", ident[0], ident[1], err)
		}
		props := tbl.Properties()
		if _, ok := props[PropSource]; !ok {
			continue // not a mirror
		}
		if props[PropState] != "ready" {
			slog.Warn("dropping mirror whose initial copy did not complete", "database", cat.Database, "mirror", ident[0]+"."+ident[1])
			if err := cat.DropTable(ctx, ident[0], ident[1]); err != nil {
				return nil, err
			}
			continue
		}
		m, err := mirrorFromTable(ctx, cat.Database, tbl)
		if err != nil {
			return nil, fmt.Errorf("load mirror %s.%s: %w", ident[0], ident[1], err)
		}
		if err := m.createDuckObjects(ctx, conn); err != nil {
			return nil, err
		}
		close(m.ready)
		s.mirrors[[2]string{m.Namespace, m.Name}] = m
	}
	return s, nil
}

func mirrorFromTable(ctx context.Context, database string, tbl *table.Table) (*Mirror, error) {
	props := tbl.Properties()
	cols, key, err := decodeColumns(props[PropColumns], props[PropKey])
	if err != nil {
		return nil, err
	}
	ident := tbl.Identifier()
	m := newMirror(database, ident[len(ident)-2], ident[len(ident)-1], cols, key)
	m.Source = props[PropSource]
	m.Full = props[PropIdentity] == "full"
	oid, _ := strconv.ParseUint(props[PropSourceOID], 10, 32)
	m.SourceOID = uint32(oid)
	if v, err := strconv.ParseUint(props[PropForeign], 10, 32); err == nil {
		m.ForeignOID = uint32(v)
	}
	m.pending = props[PropPending]
	m.decimals.Store(props[PropNumeric] == "decimal")
	if v, ok := props[PropSchemaLSN]; ok {
		lsn, _ := strconv.ParseUint(v, 10, 64)
		m.schemaLSN.Store(lsn)
	}
	m.schemaSeq.Store(allSchemaChanges)
	if v, ok := props[PropSchemaSeq]; ok {
		if seq, err := strconv.ParseInt(v, 10, 64); err == nil {
			m.schemaSeq.Store(seq)
		}
	}
	if reason := props[PropBroken]; reason != "" {
		m.failed = brokenError(m, reason)
	}
	if err := m.setTable(ctx, tbl); err != nil {
		return nil, err
	}
	m.appliedLSN.Store(m.flushedLSN.Load())
	return m, nil
}

// setTable makes tbl the mirror's current Iceberg table, reading its data
// and delete files and the LSN recorded in its snapshot summary.
func (m *Mirror) setTable(ctx context.Context, tbl *table.Table) error {
	var files, delFiles []string
	var rows int64
	var lsn uint64
	var ranges []ColumnRange
	if snap := tbl.CurrentSnapshot(); snap != nil {
		data, deletes, err := currentFiles(ctx, tbl)
		if err != nil {
			return fmt.Errorf("plan files: %w", err)
		}
		var uris []string
		for _, f := range data {
			uris = append(uris, f.FilePath())
			files = append(files, localPath(f.FilePath()))
			rows += f.Count()
		}
		for _, d := range deletes {
			uris = append(uris, d.FilePath())
			delFiles = append(delFiles, localPath(d.FilePath()))
		}
		// A table on an object store is read from local copies.
		if err := fetchAll(ctx, m.Database, uris); err != nil {
			return fmt.Errorf("fetch the files of %s.%s: %w", m.Namespace, m.Name, err)
		}
		ranges = fileRanges(tbl.Schema(), m.Columns, data)
		if snap.Summary != nil {
			if v, ok := snap.Summary.Properties[SummaryLSN]; ok {
				lsn, _ = strconv.ParseUint(v, 10, 64)
			}
		}
	}
	m.mu.Lock()
	m.tbl, m.files, m.delFiles, m.ranges = tbl, files, delFiles, ranges
	m.mu.Unlock()
	m.fileRows.Store(rows)
	m.flushedLSN.Store(lsn)
	return nil
}

// Get returns the mirror namespace.name, or nil.
func (s *Set) Get(namespace, name string) *Mirror {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.mirrors[[2]string{namespace, name}]
}

// All returns every mirror of the database.
func (s *Set) All() []*Mirror {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Mirror, 0, len(s.mirrors))
	for _, m := range s.mirrors {
		out = append(out, m)
	}
	return out
}

// ByForeignTable returns the mirror whose foreign table has the given OID,
// or nil.
func (s *Set) ByForeignTable(oid uint32) *Mirror {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, m := range s.mirrors {
		if m.ForeignOID == oid {
			return m
		}
	}
	return nil
}

// BySource returns the mirrors of the source table with the given OID.
func (s *Set) BySource(oid uint32) []*Mirror {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*Mirror
	for _, m := range s.mirrors {
		if m.SourceOID == oid {
			out = append(out, m)
		}
	}
	return out
}

// Create creates a new mirror in state syncing: its Iceberg table, its
// DuckDB objects, registered so that the apply loop waits for it. The caller
// completes it with CompleteSync or abandons it with Drop.
func (s *Set) Create(ctx context.Context, namespace, name string, cols []Column, keyNames []string, full bool, source string, sourceOID, foreignOID uint32, pending, location string) (*Mirror, error) {
	cols = slices.Clone(cols)
	for i := range cols {
		cols[i].ID = i + 1
	}
	key, err := keyIndexes(cols, keyNames)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if _, ok := s.mirrors[[2]string{namespace, name}]; ok {
		s.mu.Unlock()
		return nil, pgError("42P07", fmt.Sprintf("mirror %s.%s already exists", namespace, name), "", "")
	}
	m := newMirror(s.Catalog.Database, namespace, name, cols, key)
	m.Source, m.SourceOID, m.Full, m.ForeignOID, m.pending = source, sourceOID, full, foreignOID, pending
	m.decimals.Store(true)
	s.mirrors[[2]string{namespace, name}] = m
	s.mu.Unlock()

	fail := func(err error) (*Mirror, error) {
		s.mu.Lock()
		delete(s.mirrors, [2]string{namespace, name})
		s.mu.Unlock()
		return nil, err
	}
	tbl, err := s.Catalog.CreateTable(ctx, namespace, name, cols, keyNames, full, source, sourceOID, foreignOID, pending, location)
	if err != nil {
		return fail(err)
	}
	if err := m.setTable(ctx, tbl); err != nil {
		return fail(err)
	}
	conn, err := s.Duck.Conn(ctx)
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	if err := m.createDuckObjects(ctx, conn); err != nil {
		s.Catalog.DropTable(ctx, namespace, name)
		return fail(err)
	}
	return m, nil
}

// Close drops the mirrors' DuckDB objects and releases the catalog, leaving
// Iceberg untouched.
func (s *Set) Close(ctx context.Context) {
	s.mu.Lock()
	mirrors := s.mirrors
	s.mirrors = map[[2]string]*Mirror{}
	s.mu.Unlock()
	if conn, err := s.Duck.Conn(ctx); err == nil {
		for _, m := range mirrors {
			m.dropDuckObjects(ctx, conn)
		}
		conn.Close()
	}
	s.Duck.ExecContext(ctx, "DETACH DATABASE IF EXISTS "+DuckCatalog(s.Catalog.Database))
	s.Catalog.Close()
}

// Drop removes a mirror: from the set, DuckDB, the catalog and the
// warehouse.
func (s *Set) Drop(ctx context.Context, m *Mirror) error {
	s.mu.Lock()
	delete(s.mirrors, [2]string{m.Namespace, m.Name})
	s.mu.Unlock()
	select {
	case <-m.ready:
	default:
		m.mu.Lock()
		m.failed = pgError("42P01", fmt.Sprintf("mirror %s.%s was dropped", m.Namespace, m.Name), "", "")
		m.mu.Unlock()
		close(m.ready)
	}
	// A flush or compaction under way ends first; later ones see the
	// mirror dropped and write nothing (their files would outlive it).
	m.maint.Lock()
	m.dropped.Store(true)
	m.maint.Unlock()
	metrics.Default.ForgetMirror(m.Database, m.Namespace, m.Name)
	if conn, err := s.Duck.Conn(ctx); err == nil {
		m.dropDuckObjects(ctx, conn)
		conn.Close()
	}
	return s.Catalog.DropTable(ctx, m.Namespace, m.Name)
}
