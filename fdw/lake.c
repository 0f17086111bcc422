/*-------------------------------------------------------------------------
 *
 * lake.c
 *		  The data lake functions: mooncake.read_parquet, read_csv, read_json,
 *		  iceberg_scan and delta_scan in FROM, with a column definition list.
 *
 * A planner hook turns each call into a scan of a foreign table on server
 * mooncake with the options path and format (option.c), made once per
 * session in pg_temp for each distinct call (files, options, columns):
 * the query then gets the whole pushdown of foreign tables (filters, joins
 * with mirrors and other files, aggregates, ORDER BY, LIMIT run in DuckDB)
 * and EXPLAIN shows it. The call's arguments must be constants. Creating
 * the foreign table checks what CREATE FOREIGN TABLE checks: reading
 * server files takes superuser or pg_read_server_files.
 *
 * The functions themselves only raise an error: a call the hook could not
 * turn into a scan (arguments that are not constants, a call outside FROM).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "commands/defrem.h"
#include "commands/dbcommands.h"
#include "foreign/foreign.h"
#include "utils/json.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/planner.h"
#include "parser/parsetree.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "pg_mooncake.h"

#define LAKE_FUNCTION_SYMBOL "mooncake_read_files"

static planner_hook_type prev_planner = NULL;

PG_FUNCTION_INFO_V1(mooncake_read_files);

/*
 * Called only when the planner hook left the call alone.
 */
Datum
mooncake_read_files(PG_FUNCTION_ARGS)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("%s must be called in FROM with constant arguments",
					get_func_name(fcinfo->flinfo->fn_oid)),
			 errhint("Write FROM %s('path') AS (column type, ...).",
					 get_func_name(fcinfo->flinfo->fn_oid))));
	PG_RETURN_NULL();
}

/* Whether funcid is one of the lake functions (by its C symbol) */
static bool
is_lake_function(Oid funcid, char **format)
{
	HeapTuple	tup;
	bool		isnull;
	Datum		d;
	bool		result = false;

	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	if (!HeapTupleIsValid(tup))
		return false;
	if (((Form_pg_proc) GETSTRUCT(tup))->prolang == ClanguageId)
	{
		d = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_prosrc, &isnull);
		if (!isnull && strcmp(TextDatumGetCString(d), LAKE_FUNCTION_SYMBOL) == 0)
		{
			char	   *name = NameStr(((Form_pg_proc) GETSTRUCT(tup))->proname);

			result = true;
			if (strcmp(name, "read_parquet") == 0)
				*format = "parquet";
			else if (strcmp(name, "read_csv") == 0)
				*format = "csv";
			else if (strcmp(name, "read_json") == 0)
				*format = "json";
			else if (strcmp(name, "iceberg_scan") == 0)
				*format = "iceberg";
			else if (strcmp(name, "delta_scan") == 0)
				*format = "delta";
			else
				result = false;
		}
	}
	ReleaseSysCache(tup);
	return result;
}

/* A constant argument as text, or NULL for a NULL constant */
static char *
const_text(Node *arg, const char *name)
{
	Node	   *value = eval_const_expressions(NULL, arg);
	Const	   *c;
	Oid			out;
	bool		varlena;

	if (!IsA(value, Const))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("argument \"%s\" of a data lake function must be a constant", name)));
	c = (Const *) value;
	if (c->constisnull)
		return NULL;
	getTypeOutputInfo(c->consttype, &out, &varlena);
	return OidOutputFunctionCall(out, c->constvalue);
}

static void
append_option(StringInfo buf, const char *name, const char *value)
{
	appendStringInfo(buf, ", %s %s", quote_identifier(name), quote_literal_cstr(value));
}

/*
 * The temporary foreign table of a call with its column definition list;
 * made when this session has none for the same call yet.
 */
static Oid
lake_table(const char *format, FuncExpr *fexpr, RangeTblFunction *rtfunc)
{
	HeapTuple	tup;
	Datum		namesd;
	bool		isnull;
	Datum	   *names = NULL;
	int			nnames = 0;
	ListCell   *lc;
	ListCell   *lt;
	ListCell   *lm;
	int			i = 0;
	StringInfoData cols;
	StringInfoData opts;
	StringInfoData ddl;
	char	   *relname;
	Oid			relid;
	bool		has_path = false;

	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fexpr->funcid));
	namesd = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_proargnames, &isnull);
	if (!isnull)
		deconstruct_array(DatumGetArrayTypeP(namesd), TEXTOID, -1, false, TYPALIGN_INT,
						  &names, NULL, &nnames);
	ReleaseSysCache(tup);

	initStringInfo(&opts);
	appendStringInfo(&opts, "format %s", quote_literal_cstr(format));
	foreach(lc, fexpr->args)
	{
		Node	   *arg = lfirst(lc);
		const char *name;
		char	   *value;

		if (IsA(arg, NamedArgExpr))
		{
			name = ((NamedArgExpr *) arg)->name;
			arg = (Node *) ((NamedArgExpr *) arg)->arg;
		}
		else if (i < nnames)
			name = TextDatumGetCString(names[i]);
		else
			name = "?";
		i++;
		value = const_text(arg, name);
		if (value == NULL)
			continue;			/* the reader's default */
		if (strcmp(name, "path") == 0)
		{
			has_path = true;
			append_option(&opts, "path", value);
		}
		else if (strcmp(name, "format") == 0)
			append_option(&opts, "json_format", value);
		else
			append_option(&opts, name, value);
	}
	if (!has_path)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the path of a data lake function must not be NULL")));

	if (rtfunc->funccolnames == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("a column definition list is required for %s", get_func_name(fexpr->funcid))));
	initStringInfo(&cols);
	forthree(lc, rtfunc->funccolnames, lt, rtfunc->funccoltypes, lm, rtfunc->funccoltypmods)
	{
		if (cols.len > 0)
			appendStringInfoString(&cols, ", ");
		appendStringInfo(&cols, "%s %s", quote_identifier(strVal(lfirst(lc))),
						 format_type_with_typemod(lfirst_oid(lt), lfirst_int(lm)));
	}

	/* the same call in this session reads through the same table */
	relname = psprintf("mooncake_lake_%08x%08x",
					   hash_bytes((unsigned char *) opts.data, opts.len),
					   hash_bytes((unsigned char *) cols.data, cols.len));
	relid = get_relname_relid(relname, LookupCreationNamespace("pg_temp"));
	if (!OidIsValid(relid))
	{
		initStringInfo(&ddl);
		appendStringInfo(&ddl, "CREATE FOREIGN TABLE pg_temp.%s (%s) SERVER mooncake OPTIONS (%s)",
						 relname, cols.data, opts.data);
		SPI_connect();
		if (SPI_execute(ddl.data, false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "could not create the foreign table of a data lake function");
		SPI_finish();
		CommandCounterIncrement();
		relid = get_relname_relid(relname, LookupCreationNamespace("pg_temp"));
	}
	return relid;
}

static bool rewrite_walker(Node *node, void *context);

static void
rewrite_query(Query *query)
{
	ListCell   *lc;

	foreach(lc, query->rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);
		RangeTblFunction *rtfunc;
		char	   *format = NULL;
		Oid			relid;
		int			natts;
		int			i;

		if (rte->rtekind != RTE_FUNCTION || list_length(rte->functions) != 1 ||
			rte->funcordinality)
			continue;
		rtfunc = linitial_node(RangeTblFunction, rte->functions);
		if (!IsA(rtfunc->funcexpr, FuncExpr) ||
			!is_lake_function(((FuncExpr *) rtfunc->funcexpr)->funcid, &format))
			continue;
		relid = lake_table(format, (FuncExpr *) rtfunc->funcexpr, rtfunc);
		LockRelationOid(relid, AccessShareLock);
		natts = list_length(rtfunc->funccolnames);

		rte->rtekind = RTE_RELATION;
		rte->relid = relid;
		rte->relkind = RELKIND_FOREIGN_TABLE;
		rte->rellockmode = AccessShareLock;
		rte->inh = false;
		rte->functions = NIL;
		rte->lateral = false;
		rte->requiredPerms = ACL_SELECT;
		rte->checkAsUser = InvalidOid;
		rte->selectedCols = NULL;
		for (i = 1; i <= natts; i++)
			rte->selectedCols = bms_add_member(rte->selectedCols,
											   i - FirstLowInvalidHeapAttributeNumber);
	}
	query_tree_walker(query, rewrite_walker, NULL, 0);
}

static bool
rewrite_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
	{
		rewrite_query((Query *) node);
		return false;
	}
	return expression_tree_walker(node, rewrite_walker, context);
}

static PlannedStmt *
lake_planner(Query *parse, const char *query_string, int cursorOptions,
			 ParamListInfo boundParams)
{
	rewrite_query(parse);
	if (prev_planner)
		return prev_planner(parse, query_string, cursorOptions, boundParams);
	return standard_planner(parse, query_string, cursorOptions, boundParams);
}

void
mooncake_install_lake_hook(void)
{
	prev_planner = planner_hook;
	planner_hook = lake_planner;
}

/*
 * IMPORT FOREIGN SCHEMA files FROM SERVER mooncake INTO s OPTIONS (path
 * '...', format '...' [, table 'name'] [, reader options]): one foreign
 * table over the files, with the columns the sidecar reads in them and the
 * PostgreSQL types that hold them. The remote schema's name is not used.
 */
List *
mooncake_import_foreign_schema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	StringInfoData spec;
	StringInfoData request;
	StringInfoData opts;
	StringInfoData ddl;
	char	   *path = NULL;
	char	   *format = NULL;
	char	   *table = NULL;
	char	   *host;
	char	   *port;
	char	   *answer;
	char	   *columns;
	bool		first = true;
	ListCell   *lc;

	initStringInfo(&opts);
	initStringInfo(&spec);
	appendStringInfoString(&spec, "\"options\":{");
	foreach(lc, stmt->options)
	{
		DefElem    *def = lfirst_node(DefElem, lc);
		char	   *value = defGetString(def);

		if (strcmp(def->defname, "path") == 0)
			path = value;
		else if (strcmp(def->defname, "format") == 0)
			format = value;
		else if (strcmp(def->defname, "table") == 0)
		{
			table = value;
			continue;
		}
		else
		{
			if (!first)
				appendStringInfoChar(&spec, ',');
			first = false;
			escape_json(&spec, def->defname);
			appendStringInfoChar(&spec, ':');
			escape_json(&spec, value);
		}
		appendStringInfo(&opts, "%s%s %s", opts.len > 0 ? ", " : "",
						 quote_identifier(def->defname), quote_literal_cstr(value));
	}
	appendStringInfoChar(&spec, '}');
	if (path == NULL || format == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_DYNAMIC_PARAMETER_VALUE_NEEDED),
				 errmsg("IMPORT FOREIGN SCHEMA on server mooncake needs the options path and format")));
	if (mooncake_is_remote_path(path))
		mooncake_check_read_remote("import");
	else
		mooncake_check_read_server_files("import");
	if (!is_absolute_path(path) && !mooncake_is_remote_path(path))
		path = psprintf("%s/%s", DataDir, path);
	if (table == NULL)
	{
		char	   *base = pstrdup(path);
		char	   *slash;
		char	   *dot;

		while (strlen(base) > 1 && base[strlen(base) - 1] == '/')
			base[strlen(base) - 1] = '\0';
		slash = strrchr(base, '/');
		table = slash ? slash + 1 : base;
		dot = strchr(table, '.');
		if (dot != NULL && dot != table)
			*dot = '\0';
		if (strpbrk(table, "*?[{") != NULL || table[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_FDW_DYNAMIC_PARAMETER_VALUE_NEEDED),
					 errmsg("name the table with the option table"),
					 errdetail("The path \"%s\" names no single table.", path)));
	}

	/* LIMIT TO and EXCEPT name the one table */
	if (stmt->list_type != FDW_IMPORT_SCHEMA_ALL)
	{
		bool		listed = false;

		foreach(lc, stmt->table_list)
			if (strcmp(((RangeVar *) lfirst(lc))->relname, table) == 0)
				listed = true;
		if (listed != (stmt->list_type == FDW_IMPORT_SCHEMA_LIMIT_TO))
			return NIL;
	}

	initStringInfo(&request);
	appendStringInfoString(&request, "{\"op\":\"describe_files\",\"database\":");
	escape_json(&request, get_database_name(MyDatabaseId));
	appendStringInfoString(&request, ",\"files\":{\"format\":");
	escape_json(&request, format);
	appendStringInfoString(&request, ",\"paths\":[");
	escape_json(&request, path);
	appendStringInfo(&request, "],%s}}", spec.data);

	mooncake_get_endpoint(serverOid, &host, &port);
	answer = mooncake_request(host, port, "describe_files", NULL, request.data);
	columns = mooncake_json_field(answer, "columns_sql");
	if (columns == NULL || columns[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("the files at \"%s\" have no columns", path)));

	initStringInfo(&ddl);
	appendStringInfo(&ddl, "CREATE FOREIGN TABLE %s (%s) SERVER %s OPTIONS (%s)",
					 quote_identifier(table), columns,
					 quote_identifier(GetForeignServer(serverOid)->servername), opts.data);
	/* the path as given, relative paths stay relative to the data directory */
	return list_make1(ddl.data);
}
