/*-------------------------------------------------------------------------
 *
 * ddl.c
 *		  Reads the ALTER TABLE commands of a mirrored source, for the
 *		  extension's ddl_command_end trigger; runs the DDL of a mirror's
 *		  foreign table with its column types given by OID.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "nodes/plannodes.h"
#include "parser/parser.h"
#include "tcop/deparse_utility.h"
#include "tcop/dest.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

#include "pg_mooncake.h"

PG_FUNCTION_INFO_V1(mooncake_plain_type_changes);
PG_FUNCTION_INFO_V1(mooncake_execute_typed);
PG_FUNCTION_INFO_V1(mooncake_enables_row_security);
PG_FUNCTION_INFO_V1(mooncake_changes_type_values);

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

/*
 * Whether an ALTER TABLE command enables row-level security (ENABLE ROW
 * LEVEL SECURITY): a mirror of the table would show every row to whoever
 * may read it. Takes the command column of pg_event_trigger_ddl_commands().
 */
Datum
mooncake_enables_row_security(PG_FUNCTION_ARGS)
{
	CollectedCommand *cmd = (CollectedCommand *) PG_GETARG_POINTER(0);
	ListCell   *lc;

	if (cmd->type != SCT_AlterTable)
		PG_RETURN_BOOL(false);
	foreach(lc, cmd->d.alterTable.subcmds)
	{
		CollectedATSubcmd *sub = (CollectedATSubcmd *) lfirst(lc);
		AlterTableCmd *atc = (AlterTableCmd *) sub->parsetree;

		if (IsA(atc, AlterTableCmd) && atc->subtype == AT_EnableRowSecurity)
			PG_RETURN_BOOL(true);
	}
	PG_RETURN_BOOL(false);
}

/*
 * Whether an ALTER TYPE command changes how existing values of the type
 * print (mirrors hold types they have no form of their own for as text):
 * RENAME VALUE of an enum, ADD, DROP or ALTER ATTRIBUTE of a composite.
 * ADD VALUE, RENAME TO, RENAME ATTRIBUTE, OWNER TO, SET SCHEMA and SET
 * (...) do not. Takes the command column of pg_event_trigger_ddl_commands().
 */
Datum
mooncake_changes_type_values(PG_FUNCTION_ARGS)
{
	CollectedCommand *cmd = (CollectedCommand *) PG_GETARG_POINTER(0);

	if (cmd->type == SCT_AlterTable)
		PG_RETURN_BOOL(true);
	if (cmd->parsetree != NULL && IsA(cmd->parsetree, AlterEnumStmt))
		PG_RETURN_BOOL(((AlterEnumStmt *) cmd->parsetree)->oldVal != NULL);
	PG_RETURN_BOOL(false);
}

/*
 * The placeholder type names of mooncake.execute_typed: mooncake_type_N
 * stands for the Nth type given (1-based).
 */
#define TYPE_PLACEHOLDER "mooncake_type_"

/* IvorySQL's setting of the session's SQL dialect ("pg" or "oracle") */
#define COMPATIBLE_MODE_GUC "ivorysql.compatible_mode"

typedef struct TypedArgs
{
	Oid		   *types;
	int32	   *typmods;
	int			n;
} TypedArgs;

/* Put the type a placeholder stands for into a column definition. */
static void
fill_column_type(ColumnDef *def, TypedArgs *args)
{
	TypeName   *tn;
	const char *name;
	int			i;
	char	   *end;

	if (def == NULL || !IsA(def, ColumnDef) || def->typeName == NULL)
		return;
	tn = def->typeName;
	if (list_length(tn->names) != 1 || tn->typmods != NIL || tn->arrayBounds != NIL)
		return;
	name = strVal(linitial(tn->names));
	if (pg_strncasecmp(name, TYPE_PLACEHOLDER, strlen(TYPE_PLACEHOLDER)) != 0)
		return;
	i = (int) strtol(name + strlen(TYPE_PLACEHOLDER), &end, 10);
	if (*end != '\0' || i < 1 || i > args->n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("type placeholder \"%s\" has no type", name)));
	def->typeName = makeTypeNameFromOid(args->types[i - 1], args->typmods[i - 1]);
	def->typeName->location = tn->location;
}

/*
 * mooncake.execute_typed(ddl, types, typmods) runs one CREATE FOREIGN
 * TABLE or ALTER FOREIGN TABLE command whose column types are the
 * placeholders mooncake_type_1, mooncake_type_2, ...: each becomes the
 * type of that OID and typmod in the parse tree itself. A mirror's columns
 * get exactly their source's types, whatever the type's printed name reads
 * as under the session's parser (IvorySQL's Oracle mode reads
 * format_type()'s "char" or VARCHAR2(10 CHAR) otherwise, or not at all).
 * The command runs as the caller, as EXECUTE would.
 */
Datum
mooncake_execute_typed(PG_FUNCTION_ARGS)
{
	char	   *ddl = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ArrayType  *types = PG_GETARG_ARRAYTYPE_P(1);
	ArrayType  *typmods = PG_GETARG_ARRAYTYPE_P(2);
	TypedArgs	args;
	Datum	   *tv;
	Datum	   *mv;
	bool	   *tnull;
	bool	   *mnull;
	int			nt;
	int			nm;
	List	   *stmts;
	RawStmt    *raw;
	Node	   *stmt;
	PlannedStmt *pstmt;
	ListCell   *lc;
	int			i;
	int			nest;

	deconstruct_array(types, OIDOID, sizeof(Oid), true, TYPALIGN_INT, &tv, &tnull, &nt);
	deconstruct_array(typmods, INT4OID, sizeof(int32), true, TYPALIGN_INT, &mv, &mnull, &nm);
	if (nt != nm)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%d types and %d typmods", nt, nm)));
	args.n = nt;
	args.types = palloc(sizeof(Oid) * (nt + 1));
	args.typmods = palloc(sizeof(int32) * (nt + 1));
	for (i = 0; i < nt; i++)
	{
		if (tnull[i] || mnull[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("types and typmods must not be null")));
		args.types[i] = DatumGetObjectId(tv[i]);
		args.typmods[i] = DatumGetInt32(mv[i]);
	}

	/*
	 * The command is PostgreSQL SQL: parse it as such also in a session
	 * whose parser is another (IvorySQL's Oracle mode, which would read the
	 * quoted "table" option as TABLE).
	 */
	nest = NewGUCNestLevel();
	if (GetConfigOption(COMPATIBLE_MODE_GUC, true, false) != NULL)
		(void) set_config_option(COMPATIBLE_MODE_GUC, "pg", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	stmts = raw_parser(ddl, RAW_PARSE_DEFAULT);
	AtEOXact_GUC(true, nest);
	if (list_length(stmts) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mooncake.execute_typed runs exactly one command")));
	raw = linitial_node(RawStmt, stmts);
	stmt = raw->stmt;
	if (IsA(stmt, CreateForeignTableStmt))
	{
		foreach(lc, ((CreateForeignTableStmt *) stmt)->base.tableElts)
			fill_column_type((ColumnDef *) lfirst(lc), &args);
	}
	else if (IsA(stmt, AlterTableStmt) &&
			 ((AlterTableStmt *) stmt)->objtype == OBJECT_FOREIGN_TABLE)
	{
		foreach(lc, ((AlterTableStmt *) stmt)->cmds)
		{
			AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

			if (cmd->subtype == AT_AddColumn || cmd->subtype == AT_AlterColumnType)
				fill_column_type((ColumnDef *) cmd->def, &args);
		}
	}
	else if (!(IsA(stmt, RenameStmt) &&
			   ((RenameStmt *) stmt)->renameType == OBJECT_COLUMN &&
			   ((RenameStmt *) stmt)->relationType == OBJECT_FOREIGN_TABLE))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("mooncake.execute_typed runs CREATE FOREIGN TABLE and ALTER FOREIGN TABLE only")));

	pstmt = makeNode(PlannedStmt);
	pstmt->commandType = CMD_UTILITY;
	pstmt->canSetTag = false;
	pstmt->utilityStmt = stmt;
	pstmt->stmt_location = raw->stmt_location;
	pstmt->stmt_len = raw->stmt_len;
	ProcessUtility(pstmt, ddl, false, PROCESS_UTILITY_QUERY, NULL, NULL, None_Receiver, NULL);
	CommandCounterIncrement();
	PG_RETURN_VOID();
}
