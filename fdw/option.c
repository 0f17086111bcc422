/*-------------------------------------------------------------------------
 *
 * option.c
 *		  Validation of the mooncake_fdw options, and lookups of their values.
 *
 * Options:
 *	server			host, port		TCP address of a sidecar on another host;
 *									both or neither (neither: the local Unix
 *									socket in the data directory)
 *	foreign table	namespace, table	the Iceberg table; default: the
 *									foreign table's schema and name
 *	foreign table	path, format	files of the data lake instead of a
 *									mirror: a file, glob or directory, and
 *									parquet, csv, json, iceberg or delta
 *									(a table's directory); reading local files
 *									takes superuser or pg_read_server_files
 *	foreign table	paths			instead of path: several, as a text array
 *									literal ('{/a.csv,/b.csv}')
 *	foreign table	header, delimiter...	options of the file reader
 *	column			attnum			the number of the source column a
 *									mirror's column follows
 * The wrapper and user mappings take no options.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <limits.h>

#include "access/reloptions.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "commands/defrem.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "access/table.h"
#include "parser/parse_type.h"
#include "utils/syscache.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/fmgroids.h"

#include "pg_mooncake.h"

/* An option and the catalog of the object it belongs to */
typedef struct MooncakeOption
{
	const char *keyword;		/* option name */
	Oid			optcontext;		/* pg_foreign_server or pg_foreign_table */
} MooncakeOption;

static const MooncakeOption valid_options[] = {
	{"host", ForeignServerRelationId},
	{"port", ForeignServerRelationId},
	{"namespace", ForeignTableRelationId},
	{"table", ForeignTableRelationId},
	{"attnum", AttributeRelationId},
	{"path", ForeignTableRelationId},
	{"paths", ForeignTableRelationId},
	{"format", ForeignTableRelationId},
	{"columnstore", ForeignTableRelationId},
	{NULL, InvalidOid}
};

/* Options of the file readers, passed on to the sidecar (sql/lake) */
static const char *const reader_options[] = {
	"header", "delimiter", "delim", "sep", "quote", "escape", "nullstr", "null",
	"compression", "auto_detect", "skip", "dateformat", "timestampformat",
	"hive_partitioning", "union_by_name", "all_varchar", "ignore_errors",
	"max_line_size", "sample_size", "new_line", "json_format", "maximum_depth",
	"binary_as_string", "snapshot_id", "version", NULL
};

static bool
is_reader_option(const char *keyword)
{
	const char *const *opt;

	for (opt = reader_options; *opt != NULL; opt++)
		if (strcmp(*opt, keyword) == 0)
			return true;
	return false;
}

PG_FUNCTION_INFO_V1(mooncake_fdw_validator);

static bool
is_valid_option(const char *keyword, Oid context)
{
	const MooncakeOption *opt;

	for (opt = valid_options; opt->keyword != NULL; opt++)
	{
		if (opt->optcontext == context && strcmp(opt->keyword, keyword) == 0)
			return true;
	}
	return context == ForeignTableRelationId && is_reader_option(keyword);
}

static void
report_invalid_option(const char *keyword, Oid context)
{
	const MooncakeOption *opt;
	StringInfoData buf;

	initStringInfo(&buf);
	for (opt = valid_options; opt->keyword != NULL; opt++)
	{
		if (opt->optcontext == context)
			appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "",
							 opt->keyword);
	}

	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
			 errmsg("invalid option \"%s\"", keyword),
			 buf.len > 0
			 ? errhint("Valid options in this context are: %s", buf.data)
			 : errhint("There are no valid options in this context.")));
}

static void
check_port(const char *value)
{
	char	   *end;
	long		port;

	errno = 0;
	port = strtol(value, &end, 10);
	if (value[0] == '\0' || *end != '\0' || errno != 0 ||
		port < 1 || port > 65535)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"port\": \"%s\"", value),
				 errhint("The port must be an integer between 1 and 65535.")));
}

/*
 * Validate the options of a CREATE or ALTER of a wrapper, server, user
 * mapping or foreign table; the list holds all options the object will have.
 */
Datum
mooncake_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);
	bool		has_host = false;
	bool		has_port = false;
	bool		has_path = false;
	bool		has_paths = false;
	bool		has_format = false;
	bool		has_mirror = false;
	bool		has_reader = false;
	List	   *paths = NIL;
	ListCell   *cell;

	foreach(cell, options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);
		char	   *value = defGetString(def);

		if (!is_valid_option(def->defname, catalog))
			report_invalid_option(def->defname, catalog);

		if (strcmp(def->defname, "port") == 0)
		{
			check_port(value);
			has_port = true;
		}
		else if (strcmp(def->defname, "host") == 0)
			has_host = true;
		else if (strcmp(def->defname, "path") == 0)
		{
			has_path = true;
			paths = list_make1(value);
		}
		else if (strcmp(def->defname, "paths") == 0)
		{
			/* several paths (lake.c: a function called with an array) */
			paths = mooncake_option_paths(value);
			has_paths = true;
		}
		else if (strcmp(def->defname, "format") == 0)
		{
			has_format = true;
			if (strcmp(value, "parquet") != 0 && strcmp(value, "csv") != 0 &&
				strcmp(value, "json") != 0 && strcmp(value, "iceberg") != 0 &&
				strcmp(value, "delta") != 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for option \"format\": \"%s\"", value),
						 errhint("The formats are parquet, csv, json, iceberg and delta.")));
		}
		else if (strcmp(def->defname, "namespace") == 0 ||
				 strcmp(def->defname, "table") == 0)
			has_mirror = true;
		else if (strcmp(def->defname, "columnstore") == 0)
		{
			if (!mooncake_creating_columnstore)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
						 errmsg("the option \"columnstore\" is set by CREATE TABLE ... USING columnstore only")));
		}
		else if (catalog == ForeignTableRelationId)
			has_reader = true;

		if (value[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("value of option \"%s\" must not be empty",
							def->defname)));
	}

	if (has_paths)
	{
		if (has_path)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("options \"path\" and \"paths\" exclude each other")));
		has_path = true;
	}
	if (has_path || has_format || has_reader)
	{
		if (!has_path || !has_format)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_DYNAMIC_PARAMETER_VALUE_NEEDED),
					 errmsg("options \"path\" and \"format\" must be given together"),
					 errhint("Reader options such as header or delimiter go with them.")));
		if (has_mirror)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a foreign table reads either files (path) or a mirror (namespace, table), not both")));
		foreach(cell, paths)
			mooncake_check_read_path(lfirst(cell), "create");
	}

	if (has_host != has_port)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_DYNAMIC_PARAMETER_VALUE_NEEDED),
				 errmsg("options \"host\" and \"port\" must be given together"),
				 errhint("Without both, the sidecar is reached through its Unix socket in the data directory.")));

	PG_RETURN_VOID();
}

/*
 * As file_fdw: naming files of the server to read is for superusers and
 * roles with privileges of pg_read_server_files. verb says what the role
 * was doing with foreign tables ("create", "import").
 */
void
mooncake_check_read_server_files(const char *verb)
{
	if (!superuser() && !has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read files of the server"),
				 strcmp(verb, "read") == 0 ?
				 errdetail("Only superusers and roles with privileges of pg_read_server_files may read files of the server.") :
				 errdetail("Only superusers and roles with privileges of pg_read_server_files may %s foreign tables reading files.",
						   verb)));
}

/*
 * A path naming objects of an object store (s3://bucket/key) rather than
 * files of the server.
 */
bool
mooncake_is_remote_path(const char *path)
{
	return strstr(path, "://") != NULL;
}

/*
 * The "bucket/key" of an object store URL, or of the fixed part of a
 * pattern (up to its first wildcard), in a form to compare with others:
 * no scheme (s3://, s3a://, ... all name the same objects here), %XX
 * decoded, empty and "." segments dropped. Conservative: two paths that
 * may name the same objects compare equal.
 */
static char *
object_prefix(const char *url, bool pattern)
{
	const char *p = strstr(url, "://");
	StringInfoData out;

	p = p ? p + 3 : url;
	initStringInfo(&out);
	for (; *p; p++)
	{
		char		c = *p;

		if (pattern && (c == '*' || c == '?' || c == '[' || c == '{'))
			break;
		if (c == '%' && isxdigit((unsigned char) p[1]) && isxdigit((unsigned char) p[2]))
		{
			char		hex[3] = {p[1], p[2], '\0'};

			c = (char) strtol(hex, NULL, 16);
			p += 2;
		}
		appendStringInfoChar(&out, c);
	}
	/* drop empty and "." segments: "a//b/./c" -> "a/b/c" */
	{
		char	   *src = out.data;
		char	   *dst = out.data;

		while (*src)
		{
			if (*src == '/' && (dst == out.data || dst[-1] == '/'))
				src++;
			else if (*src == '.' && (dst == out.data || dst[-1] == '/') &&
					 (src[1] == '/' || src[1] == '\0'))
				src++;
			else
				*dst++ = *src++;
		}
		*dst = '\0';
	}
	return out.data;
}

/*
 * The Iceberg table of the catalog (a mirror or a columnstore table, on an
 * object store) whose directory path may reach into, NULL when none: its
 * files are read through its foreign table, whose privileges apply, not as
 * objects. pattern: path may hold wildcards (a glob reaching into the
 * directory counts); inside_only: only a path in (or at) the directory
 * counts, not one above it, and only of a table the current role does
 * not own (a location a role gave its own tables may be shared).
 */
static char *
object_store_table(const char *path, bool pattern, bool inside_only)
{
	MooncakeAsOwner as;
	Oid			argtypes[2] = {TEXTOID, OIDOID};
	Datum		values[2];
	MemoryContext cxt = CurrentMemoryContext;
	char	   *found = NULL;

	values[0] = CStringGetTextDatum(object_prefix(path, pattern));
	values[1] = ObjectIdGetDatum(GetUserId());
	mooncake_as_owner_begin(&as);
	if (SPI_execute_with_args(psprintf(
		"SELECT format('%%I.%%I', table_namespace, table_name) FROM ("
		" SELECT table_namespace, table_name,"
		"  regexp_replace(regexp_replace(metadata_location, '/metadata/[^/]*$', ''), '^[A-Za-z0-9+.-]*://', '') AS dir"
		" FROM mooncake.iceberg_tables"
		" WHERE metadata_location LIKE '%%://%%') t"
		" WHERE (starts_with($1, t.dir || '/') OR $1 = t.dir%s)%s"
		" ORDER BY 1 LIMIT 1",
		inside_only ? "" : " OR starts_with(t.dir, $1)",
		/* a location may be shared with the caller's own tables */
		inside_only ?
		" AND NOT EXISTS (SELECT FROM mooncake.columnstore_relations c JOIN pg_class k ON k.oid = c.relid"
		"  WHERE c.table_namespace = t.table_namespace AND c.table_name = t.table_name"
		"  AND pg_has_role($2, k.relowner, 'USAGE'))"
		" AND NOT EXISTS (SELECT FROM pg_foreign_table f JOIN pg_class k ON k.oid = f.ftrelid"
		"  WHERE ('namespace=' || t.table_namespace) = ANY (f.ftoptions)"
		"  AND ('table=' || t.table_name) = ANY (f.ftoptions) AND pg_has_role($2, k.relowner, 'USAGE'))" : ""),
		2, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the catalog");
	if (SPI_processed > 0)
		found = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	mooncake_as_owner_end(&as);
	return found;
}

/*
 * Reading an object store with the secrets a superuser made
 * (mooncake.create_secret) is for superusers and roles with privileges of
 * mooncake_user or pg_read_server_files; the objects of the catalog's own
 * Iceberg tables (mirrors, columnstore tables) only for the first and the
 * last, as their files of the server are: others read those tables
 * through their foreign tables.
 */
void
mooncake_check_read_remote(const char *path, const char *verb)
{
	Oid			user_role = get_role_oid("mooncake_user", true);
	char	   *table;

	if (superuser() || has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
		return;
	if (!OidIsValid(user_role) || !has_privs_of_role(GetUserId(), user_role))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read objects of an object store"),
				 strcmp(verb, "read") == 0 ?
				 errdetail("Only superusers and roles with privileges of mooncake_user or pg_read_server_files may read s3:// paths.") :
				 errdetail("Only superusers and roles with privileges of mooncake_user or pg_read_server_files may %s foreign tables reading s3:// paths.",
						   verb)));
	table = object_store_table(path, true, false);
	if (table != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read \"%s\" as objects", path),
				 errdetail("It reaches into the files of the columnstore table %s.", table),
				 errhint("Query the table itself, whose privileges apply; superusers and roles with privileges of pg_read_server_files may read its files.")));
}

/*
 * Choosing where a new Iceberg table's files go (a location other than the
 * warehouse): a directory of the server is for those who may write the
 * server's files; an object store, written with the secrets a superuser
 * made, also for roles with privileges of mooncake_user.
 */
void
mooncake_check_table_location(const char *location)
{
	Oid			user_role = get_role_oid("mooncake_user", true);
	bool		remote = mooncake_is_remote_path(location);

	if (remote && pg_strncasecmp(location, "s3://", 5) != 0 &&
		pg_strncasecmp(location, "s3a://", 6) != 0 && pg_strncasecmp(location, "s3n://", 6) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("location \"%s\": only s3:// URLs name object stores", location),
				 errhint("Give an absolute directory of the server or an s3://bucket/prefix URL.")));
	if (!remote && !is_absolute_path(location))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("location \"%s\" is not an absolute path", location),
				 errhint("Give an absolute directory of the server or an s3://bucket/prefix URL.")));
	if (remote && !superuser())
	{
		/* not where another role's table keeps its files */
		char	   *table = object_store_table(location, false, true);

		if (table != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("location \"%s\" is in the directory of the columnstore table %s", location, table),
					 errhint("Give a location of the table's own, such as the directory above it.")));
	}
	if (superuser() || has_privs_of_role(GetUserId(), ROLE_PG_WRITE_SERVER_FILES))
		return;
	if (remote && OidIsValid(user_role) && has_privs_of_role(GetUserId(), user_role))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to choose the location of a table's files"),
			 remote ?
			 errdetail("Only superusers and roles with privileges of mooncake_user or pg_write_server_files may write s3:// locations.") :
			 errdetail("Only superusers and roles with privileges of pg_write_server_files may write files of the server.")));
}

/*
 * The privilege check for reading one path: files of the server, or
 * objects of an object store.
 */
void
mooncake_check_read_path(const char *path, const char *verb)
{
	if (mooncake_is_remote_path(path))
		mooncake_check_read_remote(path, verb);
	else
		mooncake_check_read_server_files(verb);
}

/*
 * The TCP address of the sidecar for a server: *host and *port are set, or
 * both NULL when the local Unix socket is to be used.
 */
void
mooncake_get_endpoint(Oid serverid, char **host, char **port)
{
	ForeignServer *server = GetForeignServer(serverid);
	ListCell   *cell;

	*host = NULL;
	*port = NULL;
	foreach(cell, server->options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);

		if (strcmp(def->defname, "host") == 0)
			*host = defGetString(def);
		else if (strcmp(def->defname, "port") == 0)
			*port = defGetString(def);
	}
	if (*host == NULL || *port == NULL)
		*host = *port = NULL;
}

/*
 * The Iceberg namespace and table name of a foreign table.
 */
void
mooncake_get_table_name(Oid foreigntableid, char **namespace, char **table)
{
	ForeignTable *ft = GetForeignTable(foreigntableid);
	ListCell   *cell;

	*namespace = NULL;
	*table = NULL;
	foreach(cell, ft->options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);

		if (strcmp(def->defname, "namespace") == 0)
			*namespace = defGetString(def);
		else if (strcmp(def->defname, "table") == 0)
			*table = defGetString(def);
	}
	if (*namespace == NULL)
		*namespace = get_namespace_name(get_rel_namespace(foreigntableid));
	if (*table == NULL)
		*table = get_rel_name(foreigntableid);
}

/*
 * The files a foreign table reads, as the JSON specification the sidecar
 * takes (sql/lake.Spec), or NULL for a mirror's foreign table. A relative
 * path is relative to the data directory, as COPY's.
 */
char *
mooncake_files_json(Oid foreigntableid)
{
	ForeignTable *ft = GetForeignTable(foreigntableid);
	Relation	rel;
	TupleDesc	tupdesc;
	StringInfoData buf;
	ListCell   *cell;
	List	   *paths = NIL;
	char	   *format = NULL;
	bool		first = true;
	int			i;

	foreach(cell, ft->options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);

		if (strcmp(def->defname, "path") == 0)
			paths = list_make1(defGetString(def));
		else if (strcmp(def->defname, "paths") == 0)
			paths = mooncake_option_paths(defGetString(def));
		else if (strcmp(def->defname, "format") == 0)
			format = defGetString(def);
	}
	initStringInfo(&buf);
	if (paths == NIL && mooncake_is_columnstore(foreigntableid))
	{
		/*
		 * A columnstore table: its Iceberg metadata, as this transaction
		 * sees it now; a scan sends it as it sees it then (see
		 * mooncake_columnstore_refresh).
		 */
		paths = list_make1(mooncake_columnstore_location(foreigntableid));
		appendStringInfo(&buf, "{\"format\":\"iceberg\",\"columnstore\":%u,\"paths\":[", foreigntableid);
	}
	else if (paths == NIL)
		return NULL;
	else
	{
		appendStringInfoString(&buf, "{\"format\":");
		escape_json(&buf, format ? format : "");
		appendStringInfoString(&buf, ",\"paths\":[");
	}
	foreach(cell, paths)
	{
		char	   *path = lfirst(cell);

		if (!is_absolute_path(path) && !mooncake_is_remote_path(path))
			path = psprintf("%s/%s", DataDir, path);
		if (cell != list_head(paths))
			appendStringInfoChar(&buf, ',');
		escape_json(&buf, path);
	}
	appendStringInfoString(&buf, "],\"options\":{");
	foreach(cell, ft->options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);

		if (!is_reader_option(def->defname))
			continue;
		if (!first)
			appendStringInfoChar(&buf, ',');
		first = false;
		escape_json(&buf, def->defname);
		appendStringInfoChar(&buf, ':');
		escape_json(&buf, defGetString(def));
	}
	appendStringInfoString(&buf, "},\"columns\":[");
	rel = table_open(foreigntableid, AccessShareLock);
	tupdesc = RelationGetDescr(rel);
	first = true;
	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		int32		typmod = att->atttypmod;
		Oid			base;

		if (att->attisdropped)
			continue;
		base = getBaseTypeAndTypmod(att->atttypid, &typmod);
		if (!first)
			appendStringInfoChar(&buf, ',');
		first = false;
		appendStringInfoString(&buf, "{\"name\":");
		escape_json(&buf, NameStr(att->attname));
		appendStringInfo(&buf, ",\"type\":%u,\"typmod\":%d,\"type_name\":", base, typmod);
		escape_json(&buf, format_type_with_typemod(base, typmod));
		appendStringInfoChar(&buf, '}');
	}
	table_close(rel, AccessShareLock);
	appendStringInfoString(&buf, "]}");
	return buf.data;
}

/*
 * How EXPLAIN and messages name the files of a foreign table: its format
 * and path as given ("csv 'events.csv'"), or NULL for a mirror's.
 */
char *
mooncake_files_target(Oid foreigntableid)
{
	ForeignTable *ft = GetForeignTable(foreigntableid);
	ListCell   *cell;
	char	   *path = NULL;
	char	   *format = "";

	foreach(cell, ft->options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);

		if (strcmp(def->defname, "path") == 0)
			path = quote_literal_cstr(defGetString(def));
		else if (strcmp(def->defname, "paths") == 0)
		{
			StringInfoData buf;
			ListCell   *lc;

			initStringInfo(&buf);
			foreach(lc, mooncake_option_paths(defGetString(def)))
				appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "",
								 quote_literal_cstr(lfirst(lc)));
			path = buf.data;
		}
		else if (strcmp(def->defname, "format") == 0)
			format = defGetString(def);
	}
	if (path == NULL)
		return mooncake_is_columnstore(foreigntableid) ? pstrdup("columnstore table") : NULL;
	return psprintf("%s %s", format, path);
}

/*
 * The option paths: a text array literal of one or more paths, none NULL
 * or empty.
 */
List *
mooncake_option_paths(const char *value)
{
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;
	List	   *paths = NIL;

	arr = DatumGetArrayTypeP(OidFunctionCall3(F_ARRAY_IN, CStringGetDatum(value),
											  ObjectIdGetDatum(TEXTOID), Int32GetDatum(-1)));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"paths\": no path given")));
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("invalid value for option \"paths\": a path is NULL")));
		paths = lappend(paths, TextDatumGetCString(elems[i]));
		if (((char *) llast(paths))[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for option \"paths\": a path is empty")));
	}
	return paths;
}
