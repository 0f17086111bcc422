/*-------------------------------------------------------------------------
 *
 * ddl.c
 *		  Reads the ALTER TABLE commands of a mirrored source, for the
 *		  extension's ddl_command_end trigger.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "tcop/deparse_utility.h"
#include "utils/array.h"
#include "utils/lsyscache.h"

#include "pg_mooncake.h"

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
