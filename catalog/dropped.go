package catalog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/apache/iceberg-go/table"
)

// Files of dropped columnstore tables. DROP TABLE (also DROP SCHEMA ...
// CASCADE, DROP OWNED) of a columnstore table deletes its catalog row and,
// in the same transaction, records its last committed metadata file in
// mooncake.dropped_columnstore. Once that transaction has committed, the
// backend asks the sidecar to purge the database (a rolled back drop
// leaves no row, and the table keeps its files); the sidecar also purges
// every database it opens, so a crash between the commit and the removal
// only delays it. PurgeDropped removes each recorded table's files, then
// its row: a purge cut short is done again from the row.
//
// Which files are the table's: a table whose directory the sidecar made
// for it (the default location, <warehouse>/<database>/<schema>/<table>-<id>,
// recorded as PropLocationOwned "1") loses the whole directory. A table
// created at a location the user gave (PropLocationOwned "0") may share it
// with anything else: only the files its metadata references (its data
// and delete files, manifests, manifest lists and metadata files) are
// removed, then the data/ and metadata/ directories and the location
// itself if they are left empty. So is a directory in which another table
// of the catalog keeps its metadata (a location given twice): the other
// table's files are never touched.

// PropLocationOwned records whether a columnstore table's location is a
// directory made for it alone ("1") or one the user gave ("0").
const PropLocationOwned = "mooncake.location-owned"

// droppedTable is the table listing dropped columnstore tables whose files
// are still to be removed.
const droppedTable = CatalogSchema + ".dropped_columnstore"

// PurgeDropped removes the files of the columnstore tables dropped by
// committed transactions and forgets them; it returns how many it purged.
// A database whose extension has no such table purges nothing.
func (c *Catalog) PurgeDropped(ctx context.Context) (int, error) {
	rows, err := c.db.QueryContext(ctx, "SELECT metadata_location FROM "+droppedTable)
	if err != nil {
		if sqlState(err) == "42P01" {
			return 0, nil
		}
		return 0, err
	}
	var locs []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			rows.Close()
			return 0, err
		}
		locs = append(locs, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, l := range locs {
		if err := c.purgeColumnstore(ctx, l); err != nil {
			errs = append(errs, fmt.Errorf("remove the files of dropped columnstore table %s: %w", Redact(l), err))
			continue
		}
		if _, err := c.db.ExecContext(ctx, "DELETE FROM "+droppedTable+" WHERE metadata_location = $1", l); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// defaultDirName is the name of a directory ColumnstoreLocation makes.
var defaultDirName = regexp.MustCompile(`-[0-9a-f]{32}$`)

// purgeColumnstore removes the files of the dropped columnstore table
// whose last committed metadata file is metaLoc.
func (c *Catalog) purgeColumnstore(ctx context.Context, metaLoc string) error {
	tbl, _, err := LoadColumnstore(ctx, metaLoc)
	if err != nil {
		if sqlState(err) == "58P01" {
			return nil // removed already: the metadata file goes last
		}
		return err
	}
	loc := strings.TrimRight(tbl.Location(), "/")
	if loc == "" || loc == c.warehouse {
		return nil
	}
	shared, err := c.sharedLocation(ctx, loc)
	if err != nil {
		return err
	}
	owned := false
	switch tbl.Properties()[PropLocationOwned] {
	case "1":
		owned = !shared
	case "":
		// made before the property: the default location's shape
		owned = !shared && strings.HasPrefix(loc, c.warehouse+"/") && defaultDirName.MatchString(path.Base(filepath.ToSlash(loc)))
	}
	return removeColumnstoreFiles(ctx, c.Database, tbl, metaLoc, loc, owned)
}

// removeColumnstoreFiles removes the directory loc of a columnstore table
// made for it (owned), or else only the files its metadata references
// there, the metadata file last.
func removeColumnstoreFiles(ctx context.Context, database string, tbl *table.Table, metaLoc, loc string, owned bool) error {
	if owned {
		return removeTree(ctx, database, loc)
	}
	files, err := tableFiles(ctx, tbl, metaLoc)
	if err != nil {
		return err
	}
	// the table's own files only, the metadata file last
	var mine []string
	for _, f := range files {
		if !IsRemote(f) {
			f = localPath(f)
		}
		if under(f, joinLoc(loc, "data")) || under(f, joinLoc(loc, "metadata")) {
			mine = append(mine, f)
		}
	}
	if IsRemote(loc) {
		store, _, err := objectStore()
		if err != nil {
			return err
		}
		for chunk := range slices.Chunk(mine, 1000) {
			if err := store.Delete(ctx, database, chunk); err != nil {
				return err
			}
			for _, u := range chunk {
				os.Remove(localPath(u))
			}
		}
	} else {
		for _, f := range mine {
			if err := os.Remove(localPath(f)); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
	}
	lp := localPath(loc)
	os.Remove(filepath.Join(lp, "data"))
	os.Remove(filepath.Join(lp, "metadata"))
	os.Remove(lp)
	return nil
}

// under tells whether file is in dir itself (not below it).
func under(file, dir string) bool {
	rest, ok := strings.CutPrefix(file, strings.TrimRight(dir, "/")+"/")
	return ok && rest != "" && !strings.Contains(rest, "/")
}

// sharedLocation tells whether another table of the catalog keeps its
// metadata under loc.
func (c *Catalog) sharedLocation(ctx context.Context, loc string) (bool, error) {
	var n int
	err := c.db.QueryRowContext(ctx, "SELECT count(*) FROM "+CatalogSchema+".iceberg_tables WHERE starts_with(metadata_location, $1)",
		strings.TrimRight(loc, "/")+"/").Scan(&n)
	return n > 0, err
}

// TablesToRemove returns the metadata files of the catalog's tables that
// removing the database's warehouse directory (RemoveWarehouse) leaves,
// when the extension or the database goes: on disk, those kept outside
// that directory (a location given to create_table or CREATE TABLE ...
// WITH (location = ...)); on an object store, all of them.
//
// A catalog that cannot tell whether it is a copy of another database's
// (no identity table) lists none: the files may be the other's.
func (c *Catalog) TablesToRemove(ctx context.Context) ([]string, error) {
	if !c.identified {
		return nil, nil
	}
	q := "SELECT metadata_location FROM " + CatalogSchema + ".iceberg_tables WHERE $1 OR NOT starts_with(metadata_location, $2)"
	rows, err := c.db.QueryContext(ctx, q, IsRemote(c.warehouse), strings.TrimRight(c.warehouse, "/")+"/")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var l *string
		if err := rows.Scan(&l); err != nil {
			return nil, err
		}
		if l != nil && *l != "" {
			out = append(out, *l)
		}
	}
	return out, rows.Err()
}

// Outside tells whether the table of metadata file metaLoc is one
// TablesToRemove would list.
func (c *Catalog) Outside(metaLoc string) bool {
	return c.identified && (IsRemote(c.warehouse) || !strings.HasPrefix(metaLoc, strings.TrimRight(c.warehouse, "/")+"/"))
}

// RemoveTableAt removes the files of the table whose metadata file is
// metaLoc, once its catalog is gone (DROP EXTENSION, DROP DATABASE): a
// mirror's directory (made for it: <location>/<name>-<id>), a columnstore
// table's directory made for it, or else the files its metadata names.
func RemoveTableAt(ctx context.Context, database, metaLoc string) error {
	ctx = WithDatabase(ctx, database)
	loc := metaLoc
	for range 2 { // <location>/metadata/<file>
		if i := strings.LastIndex(loc, "/"); i > 0 {
			loc = loc[:i]
		}
	}
	tbl, _, err := LoadColumnstore(ctx, metaLoc)
	switch {
	case err == nil:
		loc = strings.TrimRight(tbl.Location(), "/")
		owned := tbl.Properties()[PropLocationOwned] == "1" ||
			(tbl.Properties()[PropLocationOwned] == "" && defaultDirName.MatchString(path.Base(filepath.ToSlash(loc))))
		return removeColumnstoreFiles(ctx, database, tbl, metaLoc, loc, owned)
	case sqlState(err) == "58P01":
		return nil // gone already
	case sqlState(err) == "42809":
		// a mirror
		if !strings.Contains(path.Base(loc), "-") || !strings.Contains(metaLoc, "/metadata/") {
			return nil
		}
		return removeTree(ctx, database, loc)
	default:
		return err
	}
}
