package catalog

import (
	"context"
	gosql "database/sql"
	"fmt"
	"log/slog"
	"os"
	"strconv"
)

// The catalog lives in its database, and a database can be copied
// (CREATE DATABASE ... TEMPLATE, a file-level copy) or renamed. The row of
// mooncake.database_identity says which database the catalog's tables
// belong to (its OID) and which directory of the warehouse holds them, so
// that:
//   - a renamed database keeps its directory (a new database of the old
//     name gets another one when the old one holds files; on an object
//     store, where that cannot be seen, the tables are removed one by one
//     rather than the directory, see RemoveWarehouse);
//   - a copy does not take over the original's tables: their Iceberg
//     files are the original's, which the copy would otherwise change,
//     compact and remove. The copy's catalog forgets them (detach), and
//     its mirrors' and columnstore tables' foreign tables then say so.

// identity is the catalog's owner and its directory in the warehouse.
type identity struct {
	oid       uint32
	directory string // a path segment under the warehouse
	detached  int    // tables a copy's catalog forgot when it was opened
	known     bool   // the catalog has the identity table (else it cannot tell a copy)
}

// claimIdentity reads (or records) the catalog's owner. Catalogs of
// extension versions without the identity table use the database's name.
func claimIdentity(ctx context.Context, db *gosql.DB, database, warehouse string) (identity, error) {
	id := identity{directory: pathSegment(database)}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return id, err
	}
	defer tx.Rollback()
	var has bool
	if err := tx.QueryRowContext(ctx, `SELECT d.oid, to_regclass('`+CatalogSchema+`.database_identity') IS NOT NULL
		FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()`).Scan(&id.oid, &has); err != nil {
		return id, err
	}
	if !has {
		return id, nil
	}
	if _, err := tx.ExecContext(ctx, "LOCK TABLE "+CatalogSchema+".database_identity IN SHARE ROW EXCLUSIVE MODE"); err != nil {
		return id, err
	}
	id.known = true
	var owner uint32
	var dir string
	err = tx.QueryRowContext(ctx, "SELECT database_oid, directory FROM "+CatalogSchema+".database_identity").Scan(&owner, &dir)
	switch {
	case err == nil && owner == id.oid:
		id.directory = dir
		return id, nil
	case err == nil:
		// A copy of database owner: forget the original's tables.
		if id.detached, err = detach(ctx, tx); err != nil {
			return id, err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+CatalogSchema+".database_identity"); err != nil {
			return id, err
		}
		if id.detached > 0 {
			slog.Warn("this database is a copy of another one (CREATE DATABASE ... TEMPLATE): its catalog forgot the original's tables, whose files stay the original's",
				"database", database, "original_oid", owner, "tables", id.detached)
		}
	case err != gosql.ErrNoRows:
		return id, err
	}
	var tables bool
	if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM "+CatalogSchema+".iceberg_tables)").Scan(&tables); err != nil {
		return id, err
	}
	if !tables && !IsRemote(warehouse) && directoryInUse(joinLoc(warehouse, id.directory)) {
		// A database of this name had it (it was renamed since, or
		// dropped while the sidecar was not there to remove its files).
		id.directory = pathSegment(database) + "." + strconv.FormatUint(uint64(id.oid), 10)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO "+CatalogSchema+".database_identity (database_oid, directory) VALUES ($1, $2)",
		id.oid, id.directory); err != nil {
		return id, err
	}
	return id, tx.Commit()
}

// detach empties a copied catalog, leaving the files alone.
func detach(ctx context.Context, tx *gosql.Tx) (int, error) {
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM "+CatalogSchema+".iceberg_tables").Scan(&n); err != nil {
		return 0, err
	}
	for _, t := range []string{"iceberg_tables", "iceberg_namespace_properties", "dropped_columnstore"} {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`DO $$BEGIN IF to_regclass('%[1]s.%[2]s') IS NOT NULL THEN DELETE FROM %[1]s.%[2]s; END IF; END$$`,
			CatalogSchema, t)); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// directoryInUse tells whether the local directory loc holds anything.
// (On an object store the database's secrets, which a new database has
// none of yet, would be needed to look: there the catalog removes its
// tables one by one instead of the whole directory, see RemoveWarehouse.)
func directoryInUse(loc string) bool {
	entries, err := os.ReadDir(localPath(loc))
	return err == nil && len(entries) > 0
}
