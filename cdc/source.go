package cdc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmooncake/mooncake/catalog"
)

// Source is what a mirror needs to know of its source table: its columns,
// as a mirror stores them, and how its rows are identified.
type Source struct {
	OID       uint32
	Qualified string           // quoted schema.name
	Columns   []catalog.Column // in attnum order; ID is left 0
	Key       []string         // names of the replica identity columns
	Full      bool             // REPLICA IDENTITY FULL
	// Partitioned is a partitioned table: its rows are those of its
	// partitions, whose changes arrive under its OID (the publication
	// publishes via the partition root), and a copy reads them all.
	Partitioned bool
}

// Querier is a connection that can run catalog queries: a *pgx.Conn, or
// a pgx.Tx reading in a copy's snapshot.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func sourceError(code, format string, args ...any) *pgconn.PgError {
	return &pgconn.PgError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// noKeyHint tells how to give a source without a primary key a way to
// identify rows.
const noKeyHint = "Add a primary key, or name a unique index of NOT NULL columns: CALL mooncake.create_table(name, source, key_index => 'index_name'), or opt in to REPLICA IDENTITY FULL with replica_identity_full => true."

// LookupSource finds a source table by schema and name; see InspectSource.
func LookupSource(ctx context.Context, q Querier, schema, name string, keyIndex uint32) (*Source, error) {
	var oid uint32
	err := q.QueryRow(ctx, `SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2`, schema, name).Scan(&oid)
	if err == pgx.ErrNoRows {
		return nil, sourceError("42P01", "source table %s does not exist", pgx.Identifier{schema, name}.Sanitize())
	} else if err != nil {
		return nil, err
	}
	return InspectSource(ctx, q, oid, keyIndex)
}

// InspectSource reads a source table's columns and row identity as q sees
// them (in a copy's snapshot, they are the columns of the copied rows).
// keyIndex, when not 0, is the OID of the unique index the caller made the
// replica identity. Columns a mirror cannot follow are refused, naming
// the column.
func InspectSource(ctx context.Context, q Querier, oid uint32, keyIndex uint32) (*Source, error) {
	src := &Source{OID: oid}
	var relkind, replident string
	err := q.QueryRow(ctx, `SELECT format('%I.%I', n.nspname, c.relname), c.relkind::text, c.relreplident::text
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1`, oid).
		Scan(&src.Qualified, &relkind, &replident)
	if err == pgx.ErrNoRows {
		return nil, sourceError("42P01", "source table with OID %d does not exist", oid)
	} else if err != nil {
		return nil, err
	}
	switch relkind {
	case "r":
	case "p":
		src.Partitioned = true
	default:
		return nil, sourceError("42809", "%s is not a table", src.Qualified)
	}
	var inCatalog bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
		WHERE d.classid = 'pg_class'::regclass AND d.objid = $1 AND d.refclassid = 'pg_extension'::regclass
		AND e.extname = 'pg_mooncake')`, oid).Scan(&inCatalog); err != nil {
		return nil, err
	}
	if inCatalog {
		return nil, sourceError("42809", "%s belongs to extension pg_mooncake and cannot be mirrored", src.Qualified)
	}

	type attr struct {
		name, typeName, generated string
		oid                       uint32
		typmod                    int32
		attnum                    int
		notNull                   bool
	}
	var attrs []attr
	rows, err := q.Query(ctx, `SELECT attname, attnum, atttypid, atttypmod, format_type(atttypid, atttypmod), attnotnull, attgenerated::text
		FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, oid)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var a attr
		if err := rows.Scan(&a.name, &a.attnum, &a.oid, &a.typmod, &a.typeName, &a.notNull, &a.generated); err != nil {
			rows.Close()
			return nil, err
		}
		attrs = append(attrs, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var version int
	if err := q.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return nil, err
	}
	lower := map[string]string{}
	for _, a := range attrs {
		switch {
		case a.generated == "v":
			// PostgreSQL 18's virtual generated columns are computed when
			// read: no WAL, nothing to replicate.
			return nil, &pgconn.PgError{Code: "0A000",
				Message: fmt.Sprintf("column %q of %s is a virtual generated column, which mooncake mirrors cannot follow", a.name, src.Qualified),
				Detail:  "A virtual generated column's values are computed when read; logical replication never sends them.",
				Hint:    "Make the column STORED, or mirror a table without it."}
		case a.generated != "" && version < 180000:
			// Logical replication before PostgreSQL 18 does not carry
			// stored generated columns: their values would be NULL.
			return nil, &pgconn.PgError{Code: "0A000",
				Message: fmt.Sprintf("column %q of %s is a generated column, which mooncake mirrors cannot follow", a.name, src.Qualified),
				Detail:  "Logical replication before PostgreSQL 18 does not send the values of generated columns.",
				Hint:    "Mirror a table without generated columns, make the column a plain column filled by a trigger, or use PostgreSQL 18."}
		}
		t, err := ResolveColumnType(ctx, q, a.oid, a.typmod, a.typeName)
		if err != nil {
			var e *pgconn.PgError
			if !errors.As(err, &e) {
				return nil, err
			}
			return nil, &pgconn.PgError{Code: e.Code, Message: fmt.Sprintf("column %q of %s has type %s, which mooncake mirrors do not support yet",
				a.name, src.Qualified, a.typeName), Detail: e.Detail}
		}
		if other, dup := lower[strings.ToLower(a.name)]; dup {
			return nil, sourceError("42701", "columns %q and %q of %s differ only in case, which the columnstore cannot tell apart", other, a.name, src.Qualified)
		}
		lower[strings.ToLower(a.name)] = a.name
		src.Columns = append(src.Columns, catalog.Column{Name: a.name, Type: t, NotNull: a.notNull, AttNum: a.attnum})
	}
	if len(src.Columns) == 0 {
		return nil, sourceError("0A000", "table %s has no columns to mirror", src.Qualified)
	}

	if src.Partitioned {
		return src, inspectPartitioned(ctx, q, src, keyIndex)
	}
	var keyQuery string
	switch {
	case keyIndex != 0:
		// Named by the caller, who made it the replica identity in the same
		// transaction (PostgreSQL checked it is unique and NOT NULL).
		keyQuery = fmt.Sprintf("indexrelid = %d", keyIndex)
	case replident == "d":
		keyQuery = "indisprimary"
	case replident == "i":
		keyQuery = "indisreplident"
	case replident == "f":
		// Every column identifies a row; rows may repeat.
		src.Full = true
		for _, c := range src.Columns {
			src.Key = append(src.Key, c.Name)
		}
		return src, nil
	default:
		return nil, &pgconn.PgError{Code: "55000", Message: fmt.Sprintf("table %s has REPLICA IDENTITY NOTHING, so its updates and deletes cannot be mirrored", src.Qualified),
			Hint: noKeyHint}
	}
	rows, err = q.Query(ctx, `SELECT a.attname FROM pg_index i
		CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		WHERE i.indrelid = $1 AND i.`+keyQuery+` ORDER BY k.ord`, oid)
	if err != nil {
		return nil, err
	}
	src.Key, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	if len(src.Key) == 0 {
		return nil, &pgconn.PgError{Code: "55000", Message: fmt.Sprintf("table %s has no primary key", src.Qualified),
			Detail: "A mirror locates updated and deleted rows by the source's primary key or replica identity index.",
			Hint:   noKeyHint}
	}
	return src, nil
}

// inspectPartitioned finds the key of a partitioned table and checks its
// partitions. Each partition logs the old rows of its updates and deletes
// by its own replica identity (a partitioned table's own setting logs
// nothing), and pgoutput sends them converted to the partitioned table's
// columns: the key is the partitioned table's primary key, which every
// partition has (an index attached to it) unless a partition was given
// another replica identity. The tree is read from pg_inherits in q's
// snapshot, as the copy will see it.
func inspectPartitioned(ctx context.Context, q Querier, src *Source, keyIndex uint32) error {
	if keyIndex != 0 {
		return sourceError("0A000", "%s is a partitioned table: key_index does not apply to it", src.Qualified)
	}
	rows, err := q.Query(ctx, `SELECT a.attname FROM pg_index i
		CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.ord`, src.OID)
	if err != nil {
		return err
	}
	if src.Key, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return err
	}
	if len(src.Key) == 0 {
		return &pgconn.PgError{Code: "55000", Message: fmt.Sprintf("partitioned table %s has no primary key", src.Qualified),
			Detail: "A mirror of a partitioned table locates updated and deleted rows by its primary key, which each partition logs.",
			Hint:   fmt.Sprintf("Add a primary key to %s; it includes the partition key.", src.Qualified)}
	}
	// Partitions that cannot be followed: foreign tables (their rows are
	// elsewhere, their changes are not logged), and partitions whose
	// replica identity index lacks a key column (their old rows would come
	// without the key).
	var name, kind string
	err = q.QueryRow(ctx, `WITH RECURSIVE tree(relid) AS (
			SELECT $1::oid
			UNION ALL SELECT i.inhrelid FROM pg_inherits i JOIN tree t ON i.inhparent = t.relid)
		SELECT format('%I.%I', n.nspname, c.relname), CASE WHEN c.relkind = 'f' THEN 'foreign' ELSE 'identity' END
		FROM tree t JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'f'
		   OR c.relkind = 'r' AND c.relreplident = 'i' AND NOT EXISTS (
			SELECT FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[])
			WHERE i.indrelid = c.oid AND i.indisreplident
			HAVING array_agg(a.attname::text) @> $2::text[])
		ORDER BY 1 LIMIT 1`, src.OID, src.Key).Scan(&name, &kind)
	switch {
	case err == pgx.ErrNoRows:
		return nil
	case err != nil:
		return err
	case kind == "foreign":
		return &pgconn.PgError{Code: "0A000", Message: fmt.Sprintf("partition %s of %s is a foreign table, which mooncake mirrors cannot follow", name, src.Qualified),
			Detail: "The changes of a foreign table are not in this server's change stream."}
	default:
		return &pgconn.PgError{Code: "55000", Message: fmt.Sprintf("partition %s of %s has a replica identity without the primary key of %s", name, src.Qualified, src.Qualified),
			Detail: "Each partition logs the old rows of its updates and deletes by its own replica identity.",
			Hint:   fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY DEFAULT (or FULL).", name)}
	}
}

// Relative is a table in the publication that is a partition ancestor or
// descendant of a source.
type Relative struct {
	OID       uint32
	Qualified string
	Ancestor  bool // a partitioned table above the source; else a partition below it
}

// PublishedRelatives lists the published tables above and below a source
// in its partition tree. With publish_via_partition_root the changes of a
// partition reach the stream only as changes of its topmost published
// ancestor: a source and such a relative cannot both be followed.
func PublishedRelatives(ctx context.Context, q Querier, oid uint32) ([]Relative, error) {
	rows, err := q.Query(ctx, `SELECT c.oid, format('%I.%I', n.nspname, c.relname), r.ancestor
		FROM (SELECT relid, true AS ancestor FROM pg_partition_ancestors($1)
		      UNION ALL SELECT relid, false FROM pg_partition_tree($1)) r
		JOIN pg_publication_rel pr ON pr.prrelid = r.relid
		JOIN pg_publication p ON p.oid = pr.prpubid AND p.pubname = $2
		JOIN pg_class c ON c.oid = r.relid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE r.relid <> $1 ORDER BY 2`, oid, Publication)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Relative, error) {
		var r Relative
		err := row.Scan(&r.OID, &r.Qualified, &r.Ancestor)
		return r, err
	})
}

// maxDomainDepth bounds the walk from a domain to its base type.
const maxDomainDepth = 64

// ResolveColumnType maps a source column's type to how a mirror stores it.
// A domain is stored as its base type (with the base type's typmod, as
// getBaseTypeAndTypmod finds it): the replication stream carries the base
// type's text, and reads give the domain's input or receive function the
// base type's form, so its checks run on decoding. numeric(p,s) with
// 0 <= s <= p <= 38 is stored as DECIMAL (catalog.DecimalType). Enums,
// arrays, composites, ranges and the types of extensions are stored as their text
// (catalog.KindText).
func ResolveColumnType(ctx context.Context, q Querier, oid uint32, typmod int32, typeName string) (catalog.ColumnType, error) {
	for range maxDomainDepth {
		var typtype string
		var baseType uint32
		var baseTypmod int32
		err := q.QueryRow(ctx, "SELECT typtype::text, typbasetype, typtypmod FROM pg_catalog.pg_type WHERE oid = $1", oid).
			Scan(&typtype, &baseType, &baseTypmod)
		if err != nil {
			return catalog.ColumnType{}, fmt.Errorf("look up type %s (oid %d): %w", typeName, oid, err)
		}
		if typtype != "d" {
			t, err := catalog.ResolveType(oid, typmod, typeName)
			return catalog.DecimalType(t), err
		}
		oid, typmod = baseType, baseTypmod
	}
	return catalog.ColumnType{}, fmt.Errorf("type %s: domains nested more than %d deep", typeName, maxDomainDepth)
}
