package catalog

import (
	"context"
	gosql "database/sql"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"

	"path"
	"path/filepath"
	"strings"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	"github.com/apache/iceberg-go/table"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Table properties and snapshot summary keys written by mooncake.
const (
	PropSource    = "mooncake.source"            // qualified name of the source table
	PropSourceOID = "mooncake.source-oid"        // OID of the source table
	PropColumns   = "mooncake.columns"           // PostgreSQL types of the columns, JSON
	PropKey       = "mooncake.key"               // replica identity column names, JSON
	PropState     = "mooncake.state"             // "syncing" until the initial copy is committed, then "ready"
	PropIdentity  = "mooncake.identity"          // "full" for REPLICA IDENTITY FULL sources
	SummaryLSN    = "mooncake.commit-lsn"        // last source commit LSN contained in the snapshot
	PropSchemaLSN = "mooncake.schema-lsn"        // commit LSN of the last source schema change the columns follow
	PropSchemaSeq = "mooncake.schema-seq"        // which of that transaction's schema change messages (1 the first)
	PropBroken    = "mooncake.broken"            // why the mirror stopped following its source; absent when it follows
	PropForeign   = "mooncake.foreign-table-oid" // OID of the mirror's foreign table
	PropPending   = "mooncake.pending"           // the create_table transaction, until it commits: "pid:<pid>:<xact start>" or "xid:<xid>"
	// PropNumeric is "decimal" when the numeric(p,s) columns were stored
	// as DECIMAL (catalog.DecimalType) by the last copy of the source;
	// mirrors of older versions stored them as text (NeedsDecimals).
	PropNumeric = "mooncake.numeric"
)

// CatalogSchema is the PostgreSQL schema holding the Iceberg SQL catalog's
// tables (iceberg_tables, iceberg_namespace_properties).
const CatalogSchema = "mooncake"

// Catalog is the Iceberg catalog of one PostgreSQL database.
type Catalog struct {
	Database  string // PostgreSQL database name
	warehouse string // root of this database's table data: a directory or an s3:// prefix
	db        *gosql.DB
	cat       *sqlcat.Catalog
	// identified: the catalog knows its database (identity.go), so its
	// tables are not a copy's view of another database's.
	identified bool
}

// Open connects the Iceberg SQL catalog stored in the database described by
// cfg, creating its tables in schema mooncake if needed. Table data goes
// under warehouse/<database> (a directory or an s3:// prefix; the name the
// database had when its catalog was first opened, see identity.go).
func Open(ctx context.Context, cfg *pgx.ConnConfig, warehouse string) (*Catalog, error) {
	warehouse, err := NormalizeLocation(warehouse)
	if err != nil {
		return nil, err
	}
	cfg = cfg.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["search_path"] = CatalogSchema
	cfg.RuntimeParams["application_name"] = "mooncake catalog"
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(4)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to database %q: %w", cfg.Database, err)
	}
	id, err := claimIdentity(ctx, db, cfg.Database, warehouse)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("read the catalog's owner in database %q: %w", cfg.Database, err)
	}
	dir := joinLoc(warehouse, id.directory)
	cat, err := sqlcat.NewCatalog("mooncake", db, sqlcat.Postgres, iceberg.Properties{
		"warehouse":  dir,
		propDatabase: cfg.Database,
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open iceberg catalog in database %q: %w", cfg.Database, err)
	}
	return &Catalog{Database: cfg.Database, warehouse: dir, db: db, cat: cat, identified: id.known}, nil
}

// Close releases the catalog's connections.
func (c *Catalog) Close() error {
	c.cat.Close()
	return c.db.Close()
}

// RemoveWarehouse deletes the database's directory in the warehouse, once
// its tables are gone: the whole directory on disk, nothing more on an
// object store (each table was removed by RemoveTableAt, as listed by
// TablesToRemove: another database may have been given the same prefix,
// identity.go). A catalog without an identity removes the whole prefix,
// as before it had one.
func (c *Catalog) RemoveWarehouse(ctx context.Context) error {
	if c.identified && IsRemote(c.warehouse) {
		return nil
	}
	return removeTree(ctx, c.Database, c.warehouse)
}

// columnstoreTables names the catalog's columnstore tables of their own
// (CREATE TABLE ... USING columnstore), "namespace\x00table": they are not
// mirrors, and their rows may name metadata of transactions still open.
func (c *Catalog) columnstoreTables(ctx context.Context) map[string]bool {
	out := map[string]bool{}
	rows, err := c.db.QueryContext(ctx, "SELECT table_namespace, table_name FROM "+CatalogSchema+".columnstore_relations")
	if err != nil {
		return out // an extension without them
	}
	defer rows.Close()
	for rows.Next() {
		var ns, t string
		if rows.Scan(&ns, &t) == nil {
			out[ns+"\x00"+t] = true
		}
	}
	return out
}

// Ident is the Iceberg identifier of a mirror: namespace and table name.
func Ident(namespace, name string) table.Identifier { return table.Identifier{namespace, name} }

// CreateTable creates the Iceberg table of a new mirror, in state syncing,
// under location (a directory or an s3:// prefix; empty: the warehouse).
func (c *Catalog) CreateTable(ctx context.Context, namespace, name string, cols []Column, key []string, full bool, source string, sourceOID, foreignOID uint32, pending, location string) (*table.Table, error) {
	for _, part := range []string{namespace, name} {
		if part == "." || part == ".." || strings.Contains(part, "/") {
			return nil, pgError("42602", fmt.Sprintf("a mirror cannot be named %s.%s", QuoteIdent(namespace), QuoteIdent(name)), "",
				"Names of mirrors and of their schemas other than . and .. and without a slash name Iceberg tables.")
		}
	}
	ns := table.Identifier{namespace}
	if exists, err := c.cat.CheckNamespaceExists(ctx, ns); err != nil {
		return nil, err
	} else if !exists {
		if err := c.cat.CreateNamespace(ctx, ns, nil); err != nil && !errors.Is(err, icecat.ErrNamespaceAlreadyExists) {
			return nil, err
		}
	}
	// Fields are optional even for NOT NULL columns: DuckDB writes optional
	// Parquet columns, and constraints may change on the source.
	fields := make([]iceberg.NestedField, len(cols))
	for i, col := range cols {
		fields[i] = iceberg.NestedField{ID: col.ID, Name: col.Name, Type: col.Type.IcebergType()}
	}
	props, err := shapeProperties(cols, key, full, source, 0, 0)
	if err != nil {
		return nil, err
	}
	maps.Copy(props, iceberg.Properties{
		PropSourceOID:                     fmt.Sprint(sourceOID),
		PropForeign:                       fmt.Sprint(foreignOID),
		PropPending:                       pending,
		PropState:                         "syncing",
		PropNumeric:                       "decimal",
		"format-version":                  "2",
		"write.parquet.compression-codec": "zstd",
	})
	root := joinLoc(c.warehouse, pathSegment(namespace))
	if location != "" {
		var err error
		if root, err = NormalizeLocation(location); err != nil {
			return nil, err
		}
	}
	location = joinLoc(root, pathSegment(name)+"-"+newID()[:8])
	if !IsRemote(location) {
		if err := os.MkdirAll(location, 0o700); err != nil {
			if errors.Is(err, fs.ErrPermission) {
				return nil, pgError("42501", fmt.Sprintf("could not create directory %q: permission denied", location), "",
					"The server's operating system user must be able to write to the location.")
			}
			return nil, pgError("58030", fmt.Sprintf("could not create directory %q: %v", location, errors.Unwrap(err)), "", "")
		}
	}
	tbl, err := c.cat.CreateTable(ctx, Ident(namespace, name), iceberg.NewSchema(0, fields...),
		icecat.WithLocation(location),
		icecat.WithProperties(props))
	if err != nil {
		if errors.Is(err, icecat.ErrTableAlreadyExists) {
			return nil, pgError("42P07", fmt.Sprintf("an iceberg table %s.%s already exists", namespace, name),
				"", "Drop the old mirror first, or choose another name.")
		}
		return nil, err
	}
	return tbl, nil
}

// LoadTable loads a mirror's Iceberg table.
func (c *Catalog) LoadTable(ctx context.Context, namespace, name string) (*table.Table, error) {
	return c.cat.LoadTable(ctx, Ident(namespace, name))
}

// DropTable removes a mirror's Iceberg table from the catalog and deletes its
// directory.
func (c *Catalog) DropTable(ctx context.Context, namespace, name string) error {
	tbl, err := c.cat.LoadTable(ctx, Ident(namespace, name))
	if err != nil {
		return err
	}
	if err := c.cat.DropTable(ctx, Ident(namespace, name)); err != nil {
		return err
	}
	return c.RemoveTableFiles(ctx, tbl.Location())
}

// RemoveTableFiles deletes the files of a dropped table: its directory in
// the warehouse, or a directory of the table's own location made for it
// (the name ends in -<id>; a location given by hand holds the table's
// files under such a directory).
func (c *Catalog) RemoveTableFiles(ctx context.Context, loc string) error {
	if loc == "" || loc == c.warehouse || !strings.Contains(path.Base(filepath.ToSlash(loc)), "-") {
		return nil
	}
	return removeTree(ctx, c.Database, loc)
}

// ListTables returns the identifiers of all Iceberg tables in the catalog.
func (c *Catalog) ListTables(ctx context.Context) ([]table.Identifier, error) {
	namespaces, err := c.cat.ListNamespaces(ctx, nil)
	if err != nil {
		return nil, err
	}
	var out []table.Identifier
	for _, ns := range namespaces {
		for ident, err := range c.cat.ListTables(ctx, ns) {
			if err != nil {
				return nil, err
			}
			out = append(out, ident)
		}
	}
	return out, nil
}
