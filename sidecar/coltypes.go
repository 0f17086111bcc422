package main

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/pgmooncake/mooncake/catalog"
)

// resolveColumnType maps a source column's type to how a mirror stores it.
// conn is the connection inspecting the source, for looking up what a type
// is (domain, enum, array...).
func resolveColumnType(ctx context.Context, conn *pgx.Conn, oid uint32, typmod int32, typeName string) (catalog.ColumnType, error) {
	return catalog.ResolveType(oid, typmod, typeName)
}
