/*-------------------------------------------------------------------------
 *
 * privilege.c
 *		  The requests to the sidecar that users may make, each checked
 *		  against PostgreSQL's privileges here, in the backend.
 *
 * The raw mooncake.sidecar_request() is for superusers only. Everything a
 * user does goes through these functions, which check the current user's
 * privileges (GetUserId(): they are not SECURITY DEFINER, so no caller can
 * pretend to be another role) and build the request themselves from the
 * objects they checked, so that a caller cannot ask for more than it was
 * allowed:
 *	create_request		create a mirror: superuser, or a member of
 *						mooncake_user owning the source; a source with row
 *						level security only when the caller opts in
 *	attach_request		record the new mirror's foreign table and its
 *						dependency on the source: owner of both
 *	mirror_request		resync or optimize a mirror: owner of its foreign
 *						table
 *	list_request		the mirrors, for mooncake.columnstore_tables, which
 *						shows each only to roles that may read it
 *	progress_request	the copies under way, for mooncake.copy_progress,
 *						which filters them as pg_stat_progress_copy would
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/catalog.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "executor/spi.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "pg_mooncake.h"

PG_FUNCTION_INFO_V1(mooncake_check_create);
PG_FUNCTION_INFO_V1(mooncake_create_request);
PG_FUNCTION_INFO_V1(mooncake_attach_request);
PG_FUNCTION_INFO_V1(mooncake_mirror_request);
PG_FUNCTION_INFO_V1(mooncake_list_request);
PG_FUNCTION_INFO_V1(mooncake_progress_request);

/*
 * search_path pg_catalog, pg_temp until AtEOXact_GUC(true, the returned
 * nest level): for SPI queries of the extension's own, whose operators
 * (oid = regclass, varchar = text: no exact match in pg_catalog) would
 * otherwise be resolved in whatever schema comes first, public included.
 */
int
mooncake_pin_search_path(void)
{
	int			nest = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

void
mooncake_as_owner_begin(MooncakeAsOwner *s)
{
	GetUserIdAndSecContext(&s->saved_user, &s->saved_sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
						   s->saved_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	s->guc_nest = mooncake_pin_search_path();
	SPI_connect();
}

void
mooncake_as_owner_end(MooncakeAsOwner *s)
{
	SPI_finish();
	AtEOXact_GUC(true, s->guc_nest);
	SetUserIdAndSecContext(s->saved_user, s->saved_sec);
}

/* The role whose members may create mirrors of tables they own. */
#define MOONCAKE_USER_ROLE "mooncake_user"

static bool
owns_relation(Oid relid)
{
#if PG_VERSION_NUM >= 160000
	return object_ownercheck(RelationRelationId, relid, GetUserId());
#else
	return pg_class_ownercheck(relid, GetUserId());
#endif
}

/* Fails with 42501 unless the current user owns the relation. */
static void
check_owner(Oid relid)
{
	char		relkind = get_rel_relkind(relid);

	if (relkind == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (!owns_relation(relid))
		aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(relkind),
					   get_rel_name(relid));
}

/* Fails unless relid is a foreign table of the server mooncake. */
static void
check_columnstore_table(Oid relid)
{
	ForeignServer *server = GetForeignServerByName(MOONCAKE_SERVER_NAME, false);

	if (get_rel_relkind(relid) != RELKIND_FOREIGN_TABLE ||
		GetForeignTable(relid)->serverid != server->serverid)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a columnstore table", get_rel_name(relid))));
}

static char *
send_request(const char *op, StringInfo request)
{
	ForeignServer *server = GetForeignServerByName(MOONCAKE_SERVER_NAME, false);
	char	   *host;
	char	   *port;

	mooncake_get_endpoint(server->serverid, &host, &port);
	return mooncake_request(host, port, op, NULL, request->data);
}

static void
append_common(StringInfo buf, const char *op)
{
	mooncake_json_begin(buf, op);
	mooncake_json_add_string(buf, "database", get_database_name(MyDatabaseId));
	appendStringInfo(buf, ",\"extension\":%u", get_extension_oid("pg_mooncake", false));
}

/* The start of this backend's transaction, in seconds since 1970. */
char *
mooncake_transaction_start_epoch(void)
{
	TimestampTz ts = GetCurrentTransactionStartTimestamp();
	int64		secs = ts / USECS_PER_SEC;
	int64		usecs = ts % USECS_PER_SEC;

	if (usecs < 0)
	{
		usecs += USECS_PER_SEC;
		secs--;
	}
	secs += (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
	return psprintf(INT64_FORMAT ".%06d", secs, (int) usecs);
}

/* Fails unless the current user may create a mirror of source. */
static void
check_create(Oid source, bool allow_rls)
{
	HeapTuple	tuple;
	bool		rls;
	char		persistence;

	if (!superuser())
	{
		Oid			role = get_role_oid(MOONCAKE_USER_ROLE, true);

		if (!OidIsValid(role) || !has_privs_of_role(GetUserId(), role))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to create a mirror"),
					 errdetail("Only superusers and members of role %s may create mirrors.", MOONCAKE_USER_ROLE),
					 errhint("A superuser can run GRANT %s TO %s.", MOONCAKE_USER_ROLE,
							 GetUserNameFromId(GetUserId(), false))));
		/* As CREATE PUBLICATION ... FOR TABLE and REPLICA IDENTITY need. */
		check_owner(source);
	}

	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(source));
	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", source)));
	rls = ((Form_pg_class) GETSTRUCT(tuple))->relrowsecurity;
	persistence = ((Form_pg_class) GETSTRUCT(tuple))->relpersistence;
	ReleaseSysCache(tuple);
	if (persistence != RELPERSISTENCE_PERMANENT)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot mirror %s table \"%s\"",
						persistence == RELPERSISTENCE_TEMP ? "temporary" : "unlogged", get_rel_name(source)),
				 errdetail("Mirrors follow the changes PostgreSQL writes to the WAL, which has none of this table's."),
				 persistence == RELPERSISTENCE_UNLOGGED ?
				 errhint("Make it a logged table first: ALTER TABLE %s SET LOGGED.", get_rel_name(source)) : 0));
	if (rls && !allow_rls)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("table \"%s\" has row-level security enabled, which a mirror cannot enforce",
						get_rel_name(source)),
				 errdetail("Whoever may read the mirror would see every row of the table."),
				 errhint("Pass row_level_security => 'ignore' to mirror every row anyway.")));
}

/*
 * mooncake.check_create(source regclass, row_level_security boolean):
 * create_table checks before it changes anything.
 */
Datum
mooncake_check_create(PG_FUNCTION_ARGS)
{
	check_create(PG_GETARG_OID(0), PG_GETARG_BOOL(1));
	PG_RETURN_VOID();
}

/*
 * The SQL objects of an older pg_mooncake still call this library with the
 * arguments they declared (0.1.0's create_request had no location): fewer
 * arguments than this version declares mean ALTER EXTENSION UPDATE has not
 * run in this database yet. Never read past them.
 */
static void
require_updated_sql(FunctionCallInfo fcinfo, int nargs, const char *caller)
{
	if (PG_NARGS() < nargs)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("%s is from an older version of pg_mooncake than the library installed", caller),
				errdetail("The extension's SQL objects in this database have not been updated yet."),
				errhint("Run ALTER EXTENSION pg_mooncake UPDATE in this database."));
}

/*
 * mooncake.create_request(mirror_schema name, mirror_name name, source
 * regclass, key_index regclass, row_level_security boolean, location text)
 * returns json
 */
Datum
mooncake_create_request(PG_FUNCTION_ARGS)
{
	char	   *mirror_schema;
	char	   *mirror_name;
	Oid			source;
	Oid			key_index;
	char	   *location;
	Oid			nsp;
	StringInfoData buf;

	require_updated_sql(fcinfo, 6, "mooncake.create_table");
	mirror_schema = NameStr(*PG_GETARG_NAME(0));
	mirror_name = NameStr(*PG_GETARG_NAME(1));
	source = PG_GETARG_OID(2);
	key_index = PG_ARGISNULL(3) ? InvalidOid : PG_GETARG_OID(3);
	location = PG_ARGISNULL(5) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(5));

	check_create(source, PG_GETARG_BOOL(4));
	/* the mirror is a table of mirror_schema, as its foreign table will be */
	nsp = get_namespace_oid(mirror_schema, false);
	if ((IsCatalogNamespace(nsp) || IsToastNamespace(nsp)) && !allowSystemTableMods)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to create \"%s.%s\"", mirror_schema, mirror_name),
				 errdetail("System catalog modifications are currently disallowed.")));
	if (isAnyTempNamespace(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot create a mirror in a temporary schema"),
				 errdetail("A mirror outlives the session; its foreign table would not."),
				 errhint("Choose a permanent schema.")));
	if (!superuser())
	{
		AclResult	acl;

#if PG_VERSION_NUM >= 160000
		acl = object_aclcheck(NamespaceRelationId, nsp, GetUserId(), ACL_CREATE);
#else
		acl = pg_namespace_aclcheck(nsp, GetUserId(), ACL_CREATE);
#endif
		if (acl != ACLCHECK_OK)
			aclcheck_error(acl, OBJECT_SCHEMA, mirror_schema);
	}
	if (location != NULL)
		mooncake_check_table_location(location);

	initStringInfo(&buf);
	append_common(&buf, "create_table");
	mooncake_json_add_string(&buf, "mirror_schema", mirror_schema);
	mooncake_json_add_string(&buf, "mirror_name", mirror_name);
	mooncake_json_add_string(&buf, "source_schema", get_namespace_name(get_rel_namespace(source)));
	mooncake_json_add_string(&buf, "source_name", get_rel_name(source));
	if (OidIsValid(key_index))
		appendStringInfo(&buf, ",\"key_index\":%u", key_index);
	if (location != NULL)
		mooncake_json_add_string(&buf, "location", location);
	appendStringInfo(&buf, ",\"creator_pid\":%d", MyProcPid);
	mooncake_json_add_string(&buf, "creator_start", mooncake_transaction_start_epoch());
	/* the copy's progress comes as NOTICEs while we wait */
	appendStringInfoString(&buf, ",\"notices\":true");
	appendStringInfoChar(&buf, '}');
	PG_RETURN_TEXT_P(cstring_to_text(send_request("create_table", &buf)));
}

/*
 * mooncake.attach_request(mirror regclass, source regclass) returns json
 *
 * The foreign table create_table made is the mirror's, and depends on the
 * source: DROP TABLE of the source then fails naming the mirror, or drops
 * it with CASCADE. The sidecar only attaches a mirror this backend's
 * transaction created.
 */
Datum
mooncake_attach_request(PG_FUNCTION_ARGS)
{
	Oid			mirror = PG_GETARG_OID(0);
	Oid			source = PG_GETARG_OID(1);
	ObjectAddress dependent;
	ObjectAddress referenced;
	char	   *namespace;
	char	   *table;
	StringInfoData buf;

	check_columnstore_table(mirror);
	if (!superuser())
	{
		check_owner(mirror);
		check_owner(source);
	}
	if (get_rel_relkind(source) != RELKIND_RELATION &&
		get_rel_relkind(source) != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", get_rel_name(source))));
	ObjectAddressSet(dependent, RelationRelationId, mirror);
	ObjectAddressSet(referenced, RelationRelationId, source);
	recordDependencyOn(&dependent, &referenced, DEPENDENCY_NORMAL);

	mooncake_get_table_name(mirror, &namespace, &table);
	initStringInfo(&buf);
	append_common(&buf, "attach");
	mooncake_json_add_string(&buf, "namespace", namespace);
	mooncake_json_add_string(&buf, "table", table);
	appendStringInfo(&buf, ",\"foreign_table_oid\":%u", mirror);
	appendStringInfo(&buf, ",\"creator_pid\":%d", MyProcPid);
	mooncake_json_add_string(&buf, "creator_start", mooncake_transaction_start_epoch());
	appendStringInfo(&buf, ",\"creator_xid\":\"" UINT64_FORMAT "\"",
					 U64FromFullTransactionId(GetTopFullTransactionId()));
	appendStringInfoChar(&buf, '}');
	PG_RETURN_TEXT_P(cstring_to_text(send_request("attach", &buf)));
}

/*
 * mooncake.mirror_request(op text, mirror regclass) returns json: the
 * operations on one mirror its owner may ask for.
 */
Datum
mooncake_mirror_request(PG_FUNCTION_ARGS)
{
	char	   *op = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid			mirror = PG_GETARG_OID(1);
	char	   *namespace;
	char	   *table;
	StringInfoData buf;

	if (strcmp(op, "resync_table") != 0 && strcmp(op, "optimize") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown mirror operation \"%s\"", op)));
	check_columnstore_table(mirror);
	if (!superuser())
		check_owner(mirror);
	mooncake_get_table_name(mirror, &namespace, &table);
	initStringInfo(&buf);
	append_common(&buf, op);
	mooncake_json_add_string(&buf, "namespace", namespace);
	mooncake_json_add_string(&buf, "table", table);
	appendStringInfo(&buf, ",\"foreign_table_oid\":%u", mirror);
	if (strcmp(op, "resync_table") == 0)
		appendStringInfo(&buf, ",\"pid\":%d,\"notices\":true", MyProcPid);
	appendStringInfoChar(&buf, '}');
	PG_RETURN_TEXT_P(cstring_to_text(send_request(op, &buf)));
}

/*
 * The sidecar's answer {"<key>": [entries]} with only the entries e for
 * which the SQL condition visible holds for the current role: what a role
 * may see of the mirrors and copies is decided here, not only by the views
 * over these functions, which any role may call directly.
 */
static text *
visible_entries(const char *answer, const char *key, const char *visible)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(answer)};
	MemoryContext cxt = CurrentMemoryContext;
	int			nest = mooncake_pin_search_path();
	bool		isnull;
	Datum		d;
	text	   *out;

	SPI_connect();
	if (SPI_execute_with_args(psprintf(
		"SELECT json_build_object(%s, COALESCE(json_agg(e), '[]'::json))::text "
		"FROM json_array_elements(($1::json) -> %s) e WHERE %s",
		quote_literal_cstr(key), quote_literal_cstr(key), visible),
							  1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not filter the sidecar's %s", key);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	{
		MemoryContext spi = MemoryContextSwitchTo(cxt);

		out = DatumGetTextPCopy(d);
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	AtEOXact_GUC(true, nest);
	return out;
}

/*
 * mooncake.list_request() returns json: the mirrors of the database that
 * the current role may read (or some columns of; superusers: all), for the
 * view columnstore_tables.
 */
Datum
mooncake_list_request(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	char	   *answer;

	initStringInfo(&buf);
	append_common(&buf, "list");
	appendStringInfoChar(&buf, '}');
	answer = send_request("list", &buf);
	if (superuser())
		PG_RETURN_TEXT_P(cstring_to_text(answer));
	PG_RETURN_TEXT_P(visible_entries(answer, "tables",
									 "has_any_column_privilege(NULLIF((e ->> 'foreign_table_oid')::oid, 0::oid), 'SELECT')"));
}

/*
 * mooncake.progress_request() returns json: the copies of sources under way
 * in the cluster that the current role may see, as pg_stat_progress_copy
 * shows copies: all to members of pg_read_all_stats, those its own
 * backends asked for, and those of mirrors of this database it may read.
 */
Datum
mooncake_progress_request(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	char	   *answer;

	initStringInfo(&buf);
	mooncake_json_begin(&buf, "progress");
	appendStringInfoChar(&buf, '}');
	answer = send_request("progress", &buf);
	if (has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS))
		PG_RETURN_TEXT_P(cstring_to_text(answer));
	PG_RETURN_TEXT_P(visible_entries(answer, "copies",
									 "EXISTS (SELECT FROM pg_stat_activity a WHERE a.pid = (e ->> 'pid')::int "
									 "AND a.usesysid = (SELECT r.oid FROM pg_roles r WHERE r.rolname = current_user)) "
									 "OR ((e ->> 'database') = current_database() "
									 "AND has_any_column_privilege(NULLIF((e ->> 'foreign_table_oid')::oid, 0::oid), 'SELECT'))"));
}
