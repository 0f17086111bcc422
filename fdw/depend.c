/*-------------------------------------------------------------------------
 *
 * depend.c
 *		  Records that a mirror's foreign table depends on its source table.
 *
 * With the dependency in pg_depend, PostgreSQL itself refuses DROP TABLE of
 * a mirrored source (2BP01, naming the mirror) and drops the mirror's
 * foreign table with DROP TABLE ... CASCADE or DROP SCHEMA ... CASCADE;
 * the extension's sql_drop trigger then drops the mirror. The extension's
 * DDL trigger finds a source's mirrors through the same rows. Called by
 * mooncake.create_table only; EXECUTE is revoked from PUBLIC.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/dependency.h"
#include "catalog/pg_class.h"
#include "fmgr.h"
#include "utils/lsyscache.h"

#include "pg_mooncake.h"

PG_FUNCTION_INFO_V1(mooncake_depend_on_source);

Datum
mooncake_depend_on_source(PG_FUNCTION_ARGS)
{
	Oid			mirror = PG_GETARG_OID(0);
	Oid			source = PG_GETARG_OID(1);
	ObjectAddress dependent;
	ObjectAddress referenced;

	if (get_rel_relkind(mirror) != RELKIND_FOREIGN_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("relation with OID %u is not a foreign table", mirror)));
	if (get_rel_relkind(source) != RELKIND_RELATION &&
		get_rel_relkind(source) != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("relation with OID %u is not a table", source)));

	ObjectAddressSet(dependent, RelationRelationId, mirror);
	ObjectAddressSet(referenced, RelationRelationId, source);
	recordDependencyOn(&dependent, &referenced, DEPENDENCY_NORMAL);
	PG_RETURN_VOID();
}
