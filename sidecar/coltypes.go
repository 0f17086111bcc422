package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgmooncake/mooncake/catalog"
)

// maxDomainDepth bounds the walk from a domain to its base type.
const maxDomainDepth = 64

// resolveColumnType maps a source column's type to how a mirror stores it.
// conn is the connection inspecting the source. A domain is stored as its
// base type (with the base type's typmod, as getBaseTypeAndTypmod finds
// it): the replication stream carries the base type's text, and reads give
// the domain's input or receive function the base type's form, so its
// checks run on decoding. Enums, arrays, composites, ranges and the types
// of extensions are stored as their text (catalog.KindText).
func resolveColumnType(ctx context.Context, conn *pgx.Conn, oid uint32, typmod int32, typeName string) (catalog.ColumnType, error) {
	for range maxDomainDepth {
		var typtype string
		var baseType uint32
		var baseTypmod int32
		err := conn.QueryRow(ctx, "SELECT typtype::text, typbasetype, typtypmod FROM pg_catalog.pg_type WHERE oid = $1", oid).
			Scan(&typtype, &baseType, &baseTypmod)
		if err != nil {
			return catalog.ColumnType{}, fmt.Errorf("look up type %s (oid %d): %w", typeName, oid, err)
		}
		if typtype != "d" {
			return catalog.ResolveType(oid, typmod, typeName)
		}
		oid, typmod = baseType, baseTypmod
	}
	return catalog.ColumnType{}, fmt.Errorf("type %s: domains nested more than %d deep", typeName, maxDomainDepth)
}
