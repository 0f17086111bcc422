/*-------------------------------------------------------------------------
 *
 * lake.c
 *		  The data lake functions: mooncake.read_parquet, read_json,
 *		  iceberg_scan and delta_scan in FROM, with a column definition list;
 *		  mooncake.read_csv, whose rows are mooncake.row (lakerow.c).
 *
 * A planner hook turns each call into a scan of a foreign table on server
 * mooncake with the options path (or paths, for an array of them) and
 * format (option.c), made once per session in pg_temp for each distinct
 * call (files, options, columns):
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
#include "nodes/makefuncs.h"
#include "parser/parse_relation.h"
#include "parser/parsetree.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "tcop/tcopprot.h"
#include "utils/elog.h"
#include "utils/formatting.h"
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
	Oid			funcid = fcinfo->flinfo->fn_oid;

	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("%s must be called in FROM with constant arguments",
					get_func_name(funcid)),
			 get_func_rettype(funcid) == RECORDOID
			 ? errhint("Write FROM %s('path') AS (column type, ...).", get_func_name(funcid))
			 : errhint("Write FROM %s('path') r and read its columns as r['column'].",
					   get_func_name(funcid))));
	PG_RETURN_NULL();
}

/* Whether funcid is one of the lake functions (by its C symbol) */
bool
mooncake_is_lake_function(Oid funcid, char **format)
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

/* A constant argument, or NULL for a NULL constant */
static Const *
const_arg(Node *arg, const char *name)
{
	Node	   *value = eval_const_expressions(NULL, arg);

	if (!IsA(value, Const))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("argument \"%s\" of a data lake function must be a constant", name)));
	if (((Const *) value)->constisnull)
		return NULL;
	return (Const *) value;
}

static char *
const_text(Const *c)
{
	Oid			out;
	bool		varlena;

	getTypeOutputInfo(c->consttype, &out, &varlena);
	return OidOutputFunctionCall(out, c->constvalue);
}

/*
 * The path argument: one path (option path), or an array of them (option
 * paths, a text array literal), none NULL or empty.
 */
static void
path_arg(Const *c, MooncakeLakeCall *call)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;

	if (c->consttype == TEXTOID)
	{
		call->paths = list_make1(TextDatumGetCString(c->constvalue));
		call->options = lappend(call->options,
								makeDefElem("path", (Node *) makeString(linitial(call->paths)), -1));
		return;
	}
	deconstruct_array(DatumGetArrayTypeP(c->constvalue), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the array of paths of a data lake function must not be empty")));
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("the paths of a data lake function must not be NULL"),
					 errdetail("Element %d of the array is NULL.", i + 1)));
		call->paths = lappend(call->paths, TextDatumGetCString(elems[i]));
		if (((char *) llast(call->paths))[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the paths of a data lake function must not be empty"),
					 errdetail("Element %d of the array is empty.", i + 1)));
	}
	call->options = lappend(call->options,
							makeDefElem("paths", (Node *) makeString(const_text(c)), -1));
}

/*
 * The foreign table options a call of a lake function stands for: its
 * path or paths and its reader options, in the order of its arguments.
 * The arguments must be constants; NULL ones take the reader's default.
 */
void
mooncake_lake_call_options(const char *format, FuncExpr *fexpr, MooncakeLakeCall *call)
{
	HeapTuple	tup;
	Datum		namesd;
	bool		isnull;
	Datum	   *names = NULL;
	int			nnames = 0;
	ListCell   *lc;
	int			i = 0;

	memset(call, 0, sizeof(*call));
	call->format = format;
	call->funcid = fexpr->funcid;

	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fexpr->funcid));
	namesd = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_proargnames, &isnull);
	if (!isnull)
		deconstruct_array(DatumGetArrayTypeP(namesd), TEXTOID, -1, false, TYPALIGN_INT,
						  &names, NULL, &nnames);
	ReleaseSysCache(tup);

	foreach(lc, fexpr->args)
	{
		Node	   *arg = lfirst(lc);
		const char *name;
		Const	   *value;

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
		value = const_arg(arg, name);
		if (value == NULL)
			continue;			/* the reader's default */
		if (strcmp(name, "path") == 0)
			path_arg(value, call);
		else
			call->options = lappend(call->options,
									makeDefElem(pstrdup(strcmp(name, "format") == 0 ? "json_format" : name),
												(Node *) makeString(const_text(value)), -1));
	}
	if (call->paths == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the path of a data lake function must not be NULL")));
}

static void
append_option(StringInfo buf, const char *name, const char *value)
{
	appendStringInfo(buf, ", %s %s", quote_identifier(name), quote_literal_cstr(value));
}

/*
 * The temporary foreign table of a call with the columns cols (SQL: "name
 * type, ..."); made when this session has none for the same call yet.
 */
Oid
mooncake_lake_relation(MooncakeLakeCall *call, const char *cols)
{
	StringInfoData opts;
	StringInfoData ddl;
	ListCell   *lc;
	char	   *relname;
	Oid			relid;

	/*
	 * Every call, by the current role: the session's table of the same call
	 * may have been made by another (SET ROLE), and the check comes before
	 * the foreign server's own.
	 */
	foreach(lc, call->paths)
		mooncake_check_read_path(lfirst(lc), "read");

	initStringInfo(&opts);
	appendStringInfo(&opts, "format %s", quote_literal_cstr(call->format));
	foreach(lc, call->options)
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		append_option(&opts, def->defname, strVal(def->arg));
	}

	/* the same call in this session reads through the same table */
	relname = psprintf("mooncake_lake_%08x%08x",
					   hash_bytes((unsigned char *) opts.data, opts.len),
					   hash_bytes((const unsigned char *) cols, strlen(cols)));
	relid = get_relname_relid(relname, LookupCreationNamespace("pg_temp"));
	if (!OidIsValid(relid))
	{
		initStringInfo(&ddl);
		appendStringInfo(&ddl, "CREATE FOREIGN TABLE pg_temp.%s (%s) SERVER mooncake OPTIONS (%s)",
						 relname, cols, opts.data);
		SPI_connect();
		if (SPI_execute(ddl.data, false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "could not create the foreign table of a data lake function");
		SPI_finish();
		CommandCounterIncrement();
		relid = get_relname_relid(relname, LookupCreationNamespace("pg_temp"));
	}
	return relid;
}

/*
 * The files' own columns, as the sidecar reads them (describe_files): SQL
 * for CREATE FOREIGN TABLE, "name type, ...". Naming files of the server
 * takes what creating their foreign table takes.
 */
char *
mooncake_lake_describe(MooncakeLakeCall *call)
{
	StringInfoData request;
	ListCell   *lc;
	bool		first = true;
	Oid			serverOid = get_foreign_server_oid(MOONCAKE_SERVER_NAME, false);
	char	   *host;
	char	   *port;
	char	   *answer;
	char	   *columns;

	foreach(lc, call->paths)
		mooncake_check_read_path(lfirst(lc), "read");

	initStringInfo(&request);
	appendStringInfoString(&request, "{\"op\":\"describe_files\",\"database\":");
	escape_json(&request, get_database_name(MyDatabaseId));
	appendStringInfoString(&request, ",\"files\":{\"format\":");
	escape_json(&request, call->format);
	appendStringInfoString(&request, ",\"paths\":[");
	foreach(lc, call->paths)
	{
		char	   *path = lfirst(lc);

		if (!is_absolute_path(path) && !mooncake_is_remote_path(path))
			path = psprintf("%s/%s", DataDir, path);
		if (lc != list_head(call->paths))
			appendStringInfoChar(&request, ',');
		escape_json(&request, path);
	}
	appendStringInfoString(&request, "],\"options\":{");
	foreach(lc, call->options)
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		if (strcmp(def->defname, "path") == 0 || strcmp(def->defname, "paths") == 0)
			continue;
		if (!first)
			appendStringInfoChar(&request, ',');
		first = false;
		escape_json(&request, def->defname);
		appendStringInfoChar(&request, ':');
		escape_json(&request, strVal(def->arg));
	}
	appendStringInfoString(&request, "}}}");

	mooncake_get_endpoint(serverOid, &host, &port);
	answer = mooncake_request(host, port, "describe_files", NULL, request.data);
	columns = mooncake_json_field(answer, "columns_sql");
	if (columns == NULL || columns[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("the files at \"%s\" have no columns", (char *) linitial(call->paths))));
	return columns;
}

/*
 * Turn the function RTE of a lake call into a scan of its foreign table
 * relid, of natts columns, read with SELECT privilege.
 */
void
mooncake_lake_rte_to_relation(Query *query, RangeTblEntry *rte, Oid relid, int natts)
{
	Bitmapset  *cols = NULL;
	int			i;
#if PG_VERSION_NUM >= 160000
	RTEPermissionInfo *perminfo;
#endif

	LockRelationOid(relid, AccessShareLock);
	for (i = 1; i <= natts; i++)
		cols = bms_add_member(cols, i - FirstLowInvalidHeapAttributeNumber);

	rte->rtekind = RTE_RELATION;
	rte->relid = relid;
	rte->relkind = RELKIND_FOREIGN_TABLE;
	rte->rellockmode = AccessShareLock;
	rte->inh = false;
	rte->functions = NIL;
	rte->funcordinality = false;
	rte->lateral = false;
#if PG_VERSION_NUM >= 160000
	perminfo = addRTEPermissionInfo(&query->rteperminfos, rte);
	perminfo->requiredPerms = ACL_SELECT;
	perminfo->checkAsUser = InvalidOid;
	perminfo->selectedCols = cols;
#else
	rte->requiredPerms = ACL_SELECT;
	rte->checkAsUser = InvalidOid;
	rte->selectedCols = cols;
#endif
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
		FuncExpr   *fexpr;
		char	   *format = NULL;
		MooncakeLakeCall call;
		StringInfoData cols;
		ListCell   *ln;
		ListCell   *lt;
		ListCell   *lm;

		if (rte->rtekind != RTE_FUNCTION || list_length(rte->functions) != 1 ||
			rte->funcordinality)
			continue;
		rtfunc = linitial_node(RangeTblFunction, rte->functions);
		if (!IsA(rtfunc->funcexpr, FuncExpr))
			continue;
		fexpr = (FuncExpr *) rtfunc->funcexpr;
		/* read_csv's rows (mooncake.row) were made scans in parse analysis */
		if (fexpr->funcresulttype != RECORDOID ||
			!mooncake_is_lake_function(fexpr->funcid, &format))
			continue;
		mooncake_lake_call_options(format, fexpr, &call);

		if (rtfunc->funccolnames == NIL)
			ereport(ERROR,
					(errcode(ERRCODE_SYNTAX_ERROR),
					 errmsg("a column definition list is required for %s", get_func_name(fexpr->funcid))));
		initStringInfo(&cols);
		forthree(ln, rtfunc->funccolnames, lt, rtfunc->funccoltypes, lm, rtfunc->funccoltypmods)
		{
			if (cols.len > 0)
				appendStringInfoString(&cols, ", ");
			appendStringInfo(&cols, "%s %s", quote_identifier(strVal(lfirst(ln))),
							 format_type_with_typemod(lfirst_oid(lt), lfirst_int(lm)));
		}
		mooncake_lake_rte_to_relation(query, rte, mooncake_lake_relation(&call, cols.data),
									  list_length(rtfunc->funccolnames));
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

/*
 * The manual writes reader options as DuckDB does, read_csv('f.csv',
 * HEADER=TRUE): PostgreSQL parses HEADER=TRUE as a comparison with a
 * column named header, which does not exist. That error gets a hint
 * naming the PostgreSQL spelling (header => true) when the statement calls
 * a data lake function and the missing column is one of their options.
 */
static emit_log_hook_type prev_emit_log = NULL;

static const char *const lake_option_names[] = {
	"header", "auto_detect", "delimiter", "delim", "sep", "quote", "escape", "nullstr",
	"skip", "compression", "all_varchar", "dateformat", "timestampformat",
	"hive_partitioning", "union_by_name", "ignore_errors", "new_line", "binary_as_string",
	"format", "maximum_depth", "snapshot_id", "version", "sample_size", "max_line_size",
	NULL
};

static void
lake_option_hint(ErrorData *edata)
{
	const char *open;
	const char *close;
	char	   *name;
	char	   *query;
	bool		option = false;

	if (prev_emit_log)
		prev_emit_log(edata);
	if (edata->elevel < ERROR || edata->sqlerrcode != ERRCODE_UNDEFINED_COLUMN ||
		edata->hint != NULL || edata->message == NULL || debug_query_string == NULL ||
		strncmp(edata->message, "column \"", 8) != 0)
		return;
	open = edata->message + 7;
	close = strchr(open + 1, '"');
	if (close == NULL || strcmp(close, "\" does not exist") != 0)
		return;
	name = pnstrdup(open + 1, close - open - 1);
	for (int i = 0; lake_option_names[i] != NULL && !option; i++)
		option = strcmp(name, lake_option_names[i]) == 0;
	if (!option)
		return;
	query = asc_tolower(debug_query_string, strlen(debug_query_string));
	if (strstr(query, "read_csv") == NULL && strstr(query, "read_parquet") == NULL &&
		strstr(query, "read_json") == NULL && strstr(query, "iceberg_scan") == NULL &&
		strstr(query, "delta_scan") == NULL)
		return;
	edata->hint = psprintf("Options of the data lake functions are named arguments: write %s => value, not %s = value.",
						   name, name);
}

void
mooncake_install_lake_hook(void)
{
	prev_planner = planner_hook;
	planner_hook = lake_planner;
	prev_emit_log = emit_log_hook;
	emit_log_hook = lake_option_hint;
	mooncake_install_lake_row_hook();
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
		mooncake_check_read_remote(path, "import");
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
