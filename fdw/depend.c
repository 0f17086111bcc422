/*-------------------------------------------------------------------------
 *
 * depend.c
 *		  Records that a mirror's foreign table depends on its source table,
 *		  and reads the ALTER TABLE commands of a mirrored source.
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
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "tcop/deparse_utility.h"
#include "utils/array.h"
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

PG_FUNCTION_INFO_V1(mooncake_plain_type_changes);

/*
 * The attnums of the columns whose type an ALTER TABLE command changed
 * without a USING expression (a plain cast of each value). A table rewrite
 * made only by such changes to wider types (int to bigint, real to double
 * precision) keeps every value, so a mirror can evolve its schema instead
 * of copying its source again. Takes the command column of
 * pg_event_trigger_ddl_commands(); other commands give an empty array.
 */
Datum
mooncake_plain_type_changes(PG_FUNCTION_ARGS)
{
	CollectedCommand *cmd = (CollectedCommand *) PG_GETARG_POINTER(0);
	Datum	   *attnums = NULL;
	int			n = 0;
	ListCell   *lc;

	if (cmd->type == SCT_AlterTable)
	{
		attnums = palloc(sizeof(Datum) * (list_length(cmd->d.alterTable.subcmds) + 1));
		foreach(lc, cmd->d.alterTable.subcmds)
		{
			CollectedATSubcmd *sub = (CollectedATSubcmd *) lfirst(lc);
			AlterTableCmd *atc = (AlterTableCmd *) sub->parsetree;
			ColumnDef  *def;

			if (!IsA(atc, AlterTableCmd) || atc->subtype != AT_AlterColumnType)
				continue;
			def = (ColumnDef *) atc->def;
			if (def == NULL || !IsA(def, ColumnDef) ||
				def->raw_default != NULL || def->cooked_default != NULL)
				continue;
			if (sub->address.objectSubId > 0)
				attnums[n++] = Int16GetDatum((int16) sub->address.objectSubId);
		}
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(attnums, n, INT2OID, sizeof(int16), true, TYPALIGN_SHORT));
}
