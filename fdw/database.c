/*-------------------------------------------------------------------------
 *
 * database.c
 *		  Statements on a whole database that PostgreSQL runs only when no
 *		  other session is connected to it: DROP DATABASE, ALTER DATABASE
 *		  ... RENAME TO and SET TABLESPACE, CREATE DATABASE ... TEMPLATE.
 *
 * The sidecar keeps connections to each database with mirrors or
 * columnstore tables (its catalog, its replication stream), which would
 * make these statements fail with "database is being accessed by other
 * users". The utility hook (columnstore.c) asks the sidecar of this
 * server, before the statement runs, to close them and to stay out of the
 * database until this backend's transaction ends; it then opens the
 * database again (under its new name), or removes the files of a dropped
 * one. The sidecar refuses the copy of a database that has mirrors or
 * columnstore tables: the copy's catalog would name the original's files.
 *
 * A server without a running sidecar (no socket) runs the statement as
 * PostgreSQL does.
 *
 * DROP EXTENSION pg_mooncake first has the sidecar look at the tables kept
 * outside the warehouse directory, whose files it removes once the
 * extension is gone.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"

#include <sys/stat.h>

#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "utils/acl.h"
#include "lib/stringinfo.h"

#include "pg_mooncake.h"

/*
 * Would PostgreSQL let the current user run the statement? Asking the
 * sidecar for a statement PostgreSQL then refuses only pauses the
 * database's replication; this spares that for the obvious cases.
 */
static bool
may_run(Oid dboid, const char *what)
{
	if (strcmp(what, "template") == 0)
		return have_createdb_privilege();
#if PG_VERSION_NUM >= 160000
	return object_ownercheck(DatabaseRelationId, dboid, GetUserId());
#else
	return pg_database_ownercheck(dboid, GetUserId());
#endif
}

void
mooncake_release_database(const char *dbname, const char *what)
{
	StringInfoData req;
	char	   *current;
	struct stat st;

	if (dbname == NULL || !OidIsValid(get_database_oid(dbname, true)))
		return;					/* PostgreSQL says it does not exist */
	current = get_database_name(MyDatabaseId);
	if (current == NULL || strcmp(current, dbname) == 0)
		return;					/* PostgreSQL refuses the current database */
	if (stat(mooncake_socket_path(), &st) != 0)
		return;					/* no sidecar on this server */
	if (!may_run(get_database_oid(dbname, true), what))
		return;					/* PostgreSQL refuses the statement */

	initStringInfo(&req);
	mooncake_json_begin(&req, "release_database");
	mooncake_json_add_string(&req, "database", current);
	mooncake_json_add_string(&req, "table", dbname);
	mooncake_json_add_string(&req, "what", what);
	appendStringInfo(&req, ",\"pid\":%d", MyProcPid);
	mooncake_json_add_string(&req, "creator_start", mooncake_transaction_start_epoch());
	appendStringInfoChar(&req, '}');

	/* an E frame (the copy of a database with tables) raises here */
	(void) mooncake_local_request("release_database", req.data);
	pfree(req.data);
}

/*
 * Before DROP EXTENSION pg_mooncake: the sidecar, which removes the
 * database's files once it sees the extension gone, looks now at which
 * tables lie outside the warehouse directory (their catalog goes with the
 * extension). Nothing fails here: without a sidecar, or the extension,
 * the statement runs as PostgreSQL's.
 */
void
mooncake_before_drop_extension(void)
{
	StringInfoData req;
	Oid			ext = get_extension_oid("pg_mooncake", true);
	struct stat st;

	if (!OidIsValid(ext) || stat(mooncake_socket_path(), &st) != 0)
		return;
	initStringInfo(&req);
	mooncake_json_begin(&req, "before_drop_extension");
	mooncake_json_add_string(&req, "database", get_database_name(MyDatabaseId));
	appendStringInfo(&req, ",\"extension\":%u}", ext);
	(void) mooncake_local_request("before_drop_extension", req.data);
	pfree(req.data);
}
