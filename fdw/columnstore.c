/*-------------------------------------------------------------------------
 *
 * columnstore.c
 *	  Columnstore tables of their own: CREATE TABLE ... USING columnstore
 *	  (and CREATE TABLE ... USING columnstore AS SELECT) makes an Iceberg
 *	  table in the database's catalog and a foreign table on server
 *	  mooncake that reads and writes it.
 *
 *	  Writes follow PostgreSQL's transactions. The sidecar only writes
 *	  files: each statement's rows become a data file and a new, uncommitted
 *	  metadata file based on the one before (columnstore_load for INSERT
 *	  and COPY, columnstore_modify for UPDATE and DELETE). The
 *	  backend keeps, per table written in the transaction, the newest such
 *	  metadata location, reads the table at it (the transaction sees its
 *	  own writes), restores it when a savepoint is rolled back, and at
 *	  commit makes it the table's metadata_location in mooncake.iceberg_tables
 *	  -- in the same transaction, so that a crash at any moment leaves all
 *	  or none of a committed transaction's writes. Writers of one table are
 *	  serialized by the catalog row's lock, taken at the first write.
 *
 *	  Everything else reads the committed metadata location of the row as
 *	  the reading transaction's snapshot sees it, through the data lake's
 *	  Iceberg reader (format iceberg): the same pushdown as mirrors.
 *
 *	  ALTER TABLE (finish_alter) and TRUNCATE are versions like writes. A
 *	  version that is never committed (its transaction or savepoint rolled
 *	  back) has its files removed by the backend (the sidecar lists them
 *	  with each write); mooncake.remove_orphan_files removes what a crash
 *	  left.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <unistd.h>

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/comment.h"
#include "commands/copy.h"
/*
 * libpq/libpq.h (the wire protocol's reads, COPY FROM STDIN) includes the
 * GSSAPI headers when the server was built with GSSAPI, which the build
 * machine may lack; nothing here reads the connection's GSSAPI state.
 */
#undef ENABLE_GSS
#include "libpq/libpq.h"
#include "libpq/pqformat.h"
#include "parser/parse_relation.h"
#include "storage/fd.h"
#include "storage/lmgr.h"
#include "tcop/dest.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "utils/acl.h"
#include "catalog/pg_foreign_table.h"
#include "commands/defrem.h"
#include "commands/tablecmds.h"
#include "executor/executor.h"
#include "optimizer/appendinfo.h"
#include "optimizer/optimizer.h"
#include "access/sysattr.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "parser/parse_node.h"
#include "parser/parse_type.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "port/pg_bswap.h"
#include "utils/date.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "pg_mooncake.h"

PG_FUNCTION_INFO_V1(mooncake_columnstore_am_handler);
PG_FUNCTION_INFO_V1(mooncake_columnstore_stats);
PG_FUNCTION_INFO_V1(mooncake_columnstore_sweep);
PG_FUNCTION_INFO_V1(mooncake_columnstore_dropped);
PG_FUNCTION_INFO_V1(mooncake_mirror_dropped);

/* the foreign table option marking a columnstore table */
#define COLUMNSTORE_OPTION "columnstore"

/* rows sent to the sidecar in one request, at most */
#define APPEND_BYTES (16 * 1024 * 1024)

/* bytes of values in one chunk of a columnstore_load, about */
#define LOAD_CHUNK_BYTES (1024 * 1024)
/* the largest chunk the sidecar reads (a frame of at most 64 MB) */
#define LOAD_FRAME_MAX (64 * 1024 * 1024)

/* A columnstore table written in this transaction. */
typedef struct CsWrite
{
	Oid			relid;
	char	   *namespace;		/* its Iceberg identity */
	char	   *table;
	char	   *base;			/* metadata_location when first written */
	List	   *versions;		/* CsVersion, newest first */
	int			dropped;		/* 0, or the subtransaction level that dropped the table */
} CsWrite;

/*
 * The table's metadata after a statement of subtransaction level nest,
 * and the files the version's writes made (removed if it rolls back).
 */
typedef struct CsVersion
{
	int			nest;
	char	   *location;
	List	   *files;			/* paths, from the sidecar's new_files */
} CsVersion;

static List *cs_writes = NIL;	/* CsWrite, in TopTransactionContext */
static List *cs_created = NIL;	/* CsVersion: first metadata files of tables created */
bool		mooncake_creating_columnstore = false;	/* the validator lets the option pass */
static bool cs_callbacks = false;

/*
 * The columnstore_purge request sent to the sidecar once a transaction
 * that dropped columnstore tables has committed, and where to send it (in
 * TopMemoryContext: no catalog lookup is possible after the commit).
 */
static char *cs_purge_request = NULL;
static char *cs_purge_host = NULL;
static char *cs_purge_port = NULL;

/*
 * The drop_table requests sent to the sidecar once a transaction that
 * dropped foreign tables has committed (char *, in TopMemoryContext), to
 * cs_purge_host and cs_purge_port.
 */
static List *mirror_drops = NIL;
static ProcessUtility_hook_type prev_utility = NULL;

static CsWrite *begin_write(Oid relid);
static char *table_dir(const char *location);
static void register_callbacks(void);
static bool capture_endpoint(void);

/*
 * The access methods columnstore and mooncake exist so that pg_am lists
 * them and CREATE TABLE ... USING names them; the utility hook turns every
 * such table into a foreign table before PostgreSQL sees the access method,
 * so no relation is ever made with it. (Heap's routine is returned for the
 * validation of the handler only.)
 */
Datum
mooncake_columnstore_am_handler(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(GetHeapamTableAmRoutine());
}

static bool
is_columnstore_am(const char *am)
{
	return am != NULL && (strcmp(am, "columnstore") == 0 || strcmp(am, "mooncake") == 0);
}

/*
 * Is relid a columnstore table (a foreign table of server mooncake with
 * the option columnstore)?
 */
bool
mooncake_is_columnstore(Oid relid)
{
	ForeignTable *ft;
	ListCell   *lc;

	if (get_rel_relkind(relid) != RELKIND_FOREIGN_TABLE)
		return false;
	ft = GetForeignTable(relid);
	foreach(lc, ft->options)
	{
		if (strcmp(((DefElem *) lfirst(lc))->defname, COLUMNSTORE_OPTION) == 0)
			return true;
	}
	return false;
}

/*
 * The catalog identity and committed metadata location of a columnstore
 * table; *lock takes the catalog row's lock (FOR UPDATE): the first write
 * of a transaction. Strings are palloc'd in the caller's context.
 */
static void
catalog_row(Oid relid, bool lock, char **namespace, char **table, char **location)
{
	MooncakeAsOwner s;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};
	MemoryContext cxt = CurrentMemoryContext;
	int			rc;

	mooncake_as_owner_begin(&s);
	rc = SPI_execute_with_args(psprintf(
		"SELECT c.table_namespace, c.table_name, t.metadata_location "
		"FROM mooncake.columnstore_relations c "
		"JOIN mooncake.iceberg_tables t ON t.catalog_name = 'mooncake' "
		" AND t.table_namespace = c.table_namespace AND t.table_name = c.table_name "
		"WHERE c.relid = $1%s", lock ? " FOR UPDATE OF t" : ""),
							   1, argtypes, values, NULL, false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("columnstore table \"%s\" has no Iceberg table in the catalog",
						get_rel_name(relid)),
				 errdetail("A database copied from another (CREATE DATABASE ... TEMPLATE while the sidecar was not running) keeps its columnstore tables' definitions, not their files, which stay the original's."),
				 errhint("Drop the table and restore it from the original database: pg_dump --include-foreign-data=mooncake --table %s carries its rows.",
						 quote_identifier(get_rel_name(relid)))));
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		*namespace = SPI_getvalue(tup, desc, 1);
		*table = SPI_getvalue(tup, desc, 2);
		*location = SPI_getvalue(tup, desc, 3);
		MemoryContextSwitchTo(old);
	}
	mooncake_as_owner_end(&s);
}

static CsWrite *
find_write(Oid relid)
{
	ListCell   *lc;

	foreach(lc, cs_writes)
	{
		CsWrite    *w = lfirst(lc);

		if (w->relid == relid)
			return w;
	}
	return NULL;
}

/*
 * The metadata location a scan of a columnstore table reads: the
 * transaction's own newest version when it wrote the table, else the
 * committed one its snapshot sees.
 */
char *
mooncake_columnstore_location(Oid relid)
{
	CsWrite    *w = find_write(relid);
	char	   *ns;
	char	   *tbl;
	char	   *loc;

	if (w != NULL)
		return pstrdup(((CsVersion *) linitial(w->versions))->location);
	catalog_row(relid, false, &ns, &tbl, &loc);
	if (loc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("columnstore table \"%s\" has no metadata location", get_rel_name(relid))));
	return loc;
}


/*
 * A planned query's JSON with the metadata location of each columnstore
 * table it reads made the one this transaction sees now: a plan made in
 * an earlier statement or transaction (a prepared statement, a function's
 * cached plan) reads the table as of now, its own writes included. The
 * files JSON of a columnstore table is written by mooncake_files_json as
 * {"format":"iceberg","columnstore":<oid>,"paths":["<location>"] ...
 */
char *
mooncake_columnstore_refresh(const char *query)
{
	const char *marker = "\"columnstore\":";
	const char *p = query;
	const char *hit;
	StringInfoData out;

	if (strstr(query, marker) == NULL)
		return (char *) query;
	initStringInfo(&out);
	while ((hit = strstr(p, marker)) != NULL)
	{
		char	   *end;
		Oid			relid = (Oid) strtoul(hit + strlen(marker), &end, 10);
		const char *paths = end;
		const char *close;

		if (strncmp(paths, ",\"paths\":[", 10) != 0 || (close = strstr(paths + 10, "\"]")) == NULL)
		{
			/* not ours (a string that holds the marker): as it is */
			appendBinaryStringInfo(&out, p, (hit + strlen(marker)) - p);
			p = hit + strlen(marker);
			continue;
		}
		appendBinaryStringInfo(&out, p, (paths + 10) - p);
		escape_json(&out, mooncake_columnstore_location(relid));
		p = close + 1;
	}
	appendStringInfoString(&out, p);
	return out.data;
}

/*
 * Start a columnstore request to the sidecar: its op, the database, the
 * extension (the sidecar forgets a dropped extension's state before it
 * writes) and the metadata location it works from. The caller adds its
 * own fields and the closing brace.
 */
static void
begin_cs_request(StringInfo req, const char *op, const char *location)
{
	initStringInfo(req);
	appendStringInfo(req, "{\"op\":\"%s\",\"database\":", op);
	escape_json(req, get_database_name(MyDatabaseId));
	appendStringInfo(req, ",\"extension\":%u", get_extension_oid("pg_mooncake", false));
	appendStringInfoString(req, ",\"metadata_location\":");
	escape_json(req, location);
}

/*
 * mooncake.columnstore_stats(regclass): the live rows (data rows minus
 * position deletes) and files of a columnstore table at the metadata this
 * transaction sees, from its current snapshot's summary (the sidecar's
 * columnstore_stats), as JSON; NULL for a relation that is no columnstore
 * table or that the user may not read.
 */
Datum
mooncake_columnstore_stats(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	StringInfoData req;
	char	   *host;
	char	   *port;

	if (!mooncake_is_columnstore(relid))
		PG_RETURN_NULL();
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK &&
		pg_attribute_aclcheck_all(relid, GetUserId(), ACL_SELECT, ACLMASK_ANY) != ACLCHECK_OK)
		PG_RETURN_NULL();
	begin_cs_request(&req, "columnstore_stats", mooncake_columnstore_location(relid));
	appendStringInfoChar(&req, '}');
	mooncake_get_endpoint(GetForeignTable(relid)->serverid, &host, &port);
	PG_RETURN_TEXT_P(cstring_to_text(mooncake_request(host, port, "columnstore_stats",
													  get_rel_name(relid), req.data)));
}

/*
 * mooncake.remove_orphan_files(regclass, interval): remove the files under
 * a columnstore table's directory that no committed metadata references
 * (files of transactions that rolled back without removing them, or whose
 * backend crashed) and that are older than older_than. Its owner only. It
 * takes the table's catalog row lock, as a writer does, so that no other
 * transaction's writes are in the making; the transaction's own writes
 * are referenced by its own newest version. Returns how many it removed.
 */
Datum
mooncake_columnstore_sweep(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	float8		seconds = DatumGetFloat8(DirectFunctionCall2(interval_part,
															 CStringGetTextDatum("epoch"),
															 PG_GETARG_DATUM(1)));
	CsWrite    *w;
	StringInfoData req;
	char	   *host;
	char	   *port;
	char	   *answer;
	char	   *removed;

	if (!mooncake_is_columnstore(relid))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a columnstore table of its own", get_rel_name(relid)),
				 errhint("A mirror's orphaned files are removed by mooncake.optimize_table.")));
#if PG_VERSION_NUM >= 160000
	if (!object_ownercheck(RelationRelationId, relid, GetUserId()))
#else
	if (!pg_class_ownercheck(relid, GetUserId()))
#endif
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_FOREIGN_TABLE, get_rel_name(relid));
	if (seconds < 0 || isnan(seconds))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("older_than must not be negative")));
	w = begin_write(relid);
	{
		/* a directory shared with another table is not the table's own */
		char	   *dir = table_dir(w->base);
		MooncakeAsOwner as;
		Oid			argtypes[3] = {TEXTOID, TEXTOID, TEXTOID};
		Datum		values[3];

		if (dir == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("the metadata location of columnstore table \"%s\" is not in a metadata directory",
							get_rel_name(relid))));
		values[0] = CStringGetTextDatum(psprintf("%s/", dir));
		values[1] = CStringGetTextDatum(w->namespace);
		values[2] = CStringGetTextDatum(w->table);
		mooncake_as_owner_begin(&as);
		if (SPI_execute_with_args(
			"SELECT 1 FROM mooncake.iceberg_tables WHERE starts_with(metadata_location, $1) "
			"AND NOT (catalog_name = 'mooncake' AND table_namespace = $2 AND table_name = $3)",
			3, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read the catalog");
		if (SPI_processed > 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("columnstore table \"%s\" shares its directory with another Iceberg table", get_rel_name(relid)),
					 errhint("Its unreferenced files may be the other table's: remove them by hand.")));
		mooncake_as_owner_end(&as);
	}
	begin_cs_request(&req, "columnstore_sweep", ((CsVersion *) linitial(w->versions))->location);
	appendStringInfo(&req, ",\"older_than_seconds\":%.6f}", isinf(seconds) ? 1e15 : seconds);
	mooncake_get_endpoint(GetForeignTable(relid)->serverid, &host, &port);
	answer = mooncake_request(host, port, "columnstore_sweep", get_rel_name(relid), req.data);
	removed = mooncake_json_field(answer, "removed");
	PG_RETURN_INT64(removed ? strtoll(removed, NULL, 10) : 0);
}

/*
 * mooncake.columnstore_dropped(relid): called by the sql_drop event
 * trigger for each columnstore table a statement drops, after it recorded
 * the table in mooncake.dropped_columnstore. The transaction's own writes
 * of the table are not committed (their files are removed at commit), and
 * once the transaction has committed, the sidecar is asked to remove the
 * dropped tables' files (catalog/dropped.go). A rollback undoes both.
 */
Datum
mooncake_columnstore_dropped(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	CsWrite    *w = find_write(relid);

	register_callbacks();
	if (w != NULL && w->dropped == 0)
		w->dropped = GetCurrentTransactionNestLevel();
	if (cs_purge_request == NULL && capture_endpoint())
	{
		StringInfoData req;

		begin_cs_request(&req, "columnstore_purge", "");
		appendStringInfoChar(&req, '}');
		cs_purge_request = MemoryContextStrdup(TopMemoryContext, req.data);
		pfree(req.data);
	}
	PG_RETURN_VOID();
}

/*
 * Where the requests sent after the commit go (server mooncake's sidecar),
 * kept in TopMemoryContext: no catalog lookup is possible after the commit.
 * False without the server.
 */
static bool
capture_endpoint(void)
{
	ForeignServer *server;
	char	   *host;
	char	   *port;

	if (cs_purge_host != NULL || cs_purge_port != NULL)
		return true;
	server = GetForeignServerByName("mooncake", true);
	if (server == NULL)
		return false;
	mooncake_get_endpoint(server->serverid, &host, &port);
	cs_purge_host = host ? MemoryContextStrdup(TopMemoryContext, host) : NULL;
	cs_purge_port = port ? MemoryContextStrdup(TopMemoryContext, port) : NULL;
	return true;
}

/*
 * mooncake.mirror_dropped(relid, schema, name): called by the sql_drop
 * event trigger for each foreign table other than a columnstore table a
 * statement drops (it cannot tell a mirror's from another FDW's: their
 * options are gone). Nothing happens before the commit: a drop that rolls
 * back, whole or to a savepoint, leaves the mirror as it was. Once the
 * transaction has committed, the sidecar is asked to drop the mirror of
 * that foreign table, which it does only if the foreign table no longer
 * exists; when it cannot be asked, it finds such mirrors itself
 * (reconcile in sidecar/service).
 */
Datum
mooncake_mirror_dropped(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	StringInfoData req;

	register_callbacks();
	if (!capture_endpoint())
		PG_RETURN_VOID();
	initStringInfo(&req);
	appendStringInfoString(&req, "{\"op\":\"drop_table\",\"database\":");
	escape_json(&req, get_database_name(MyDatabaseId));
	appendStringInfo(&req, ",\"extension\":%u,\"foreign_table_oid\":%u,\"namespace\":",
					 get_extension_oid("pg_mooncake", false), relid);
	escape_json(&req, text_to_cstring(PG_GETARG_TEXT_PP(1)));
	appendStringInfoString(&req, ",\"table\":");
	escape_json(&req, text_to_cstring(PG_GETARG_TEXT_PP(2)));
	appendStringInfoChar(&req, '}');
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		mirror_drops = lappend(mirror_drops, pstrdup(req.data));
		MemoryContextSwitchTo(old);
	}
	pfree(req.data);
	PG_RETURN_VOID();
}

static void
forget_purge(void)
{
	list_free_deep(mirror_drops);
	mirror_drops = NIL;
	if (cs_purge_request)
		pfree(cs_purge_request);
	if (cs_purge_host)
		pfree(cs_purge_host);
	if (cs_purge_port)
		pfree(cs_purge_port);
	cs_purge_request = cs_purge_host = cs_purge_port = NULL;
}

/*
 * After the commit of a drop: ask the sidecar to remove the files. It
 * answers at once and removes them in the background. Nothing may fail
 * here (the transaction has committed): a sidecar that cannot be reached
 * removes them when it starts.
 */
static void
send_purge(void)
{
	MemoryContext old = CurrentMemoryContext;

	PG_TRY();
	{
		(void) mooncake_request(cs_purge_host, cs_purge_port, "columnstore_purge",
								"dropped columnstore tables", cs_purge_request);
	}
	PG_CATCH();
	{
		ErrorData  *e;

		MemoryContextSwitchTo(old);
		e = CopyErrorData();
		FlushErrorState();
		ereport(WARNING,
				(errmsg("could not remove the files of the dropped columnstore tables yet: %s", e->message),
				 errhint("The sidecar removes them when it starts.")));
		FreeErrorData(e);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
}

/*
 * After the commit of foreign tables' drops: ask the sidecar to drop their
 * mirrors. Nothing may fail here; a failure is only logged, as the sidecar
 * finds the mirrors whose foreign tables are gone by itself.
 */
static void
send_mirror_drops(void)
{
	MemoryContext old = CurrentMemoryContext;
	ListCell   *lc;

	foreach(lc, mirror_drops)
	{
		PG_TRY();
		{
			(void) mooncake_request(cs_purge_host, cs_purge_port, "drop_table",
									"the mirror of a dropped foreign table", lfirst(lc));
		}
		PG_CATCH();
		{
			ErrorData  *e;

			MemoryContextSwitchTo(old);
			e = CopyErrorData();
			FlushErrorState();
			elog(DEBUG1, "could not ask the sidecar to drop a mirror: %s", e->message);
			FreeErrorData(e);
		}
		PG_END_TRY();
		MemoryContextSwitchTo(old);
	}
}

/* Transactions */

/*
 * The directory of a columnstore table whose metadata file is location
 * (<dir>/metadata/<file>), or NULL.
 */
static char *
table_dir(const char *location)
{
	char	   *dir = pstrdup(location);
	char	   *slash = strrchr(dir, '/');

	if (slash == NULL)
		return NULL;
	*slash = '\0';
	slash = strrchr(dir, '/');
	if (slash == NULL || strcmp(slash, "/metadata") != 0 || slash == dir)
		return NULL;
	*slash = '\0';
	return dir;
}

/*
 * Remove the files of a version that will never be committed (its
 * transaction or subtransaction rolled back): only paths under the
 * table's directory, ignoring failures (a sidecar on another host wrote
 * them; the sweep, mooncake.remove_orphan_files, removes what is left).
 * Runs in abort callbacks: it must not fail.
 */
static void
remove_version_files(const char *base, CsVersion *v)
{
	char	   *dir = table_dir(base);
	size_t		len;
	ListCell   *lc;

	if (dir == NULL)
		return;
	len = strlen(dir);
	foreach(lc, v->files)
	{
		const char *path = lfirst(lc);

		if (strncmp(path, dir, len) == 0 && path[len] == '/' && strstr(path, "/../") == NULL)
			(void) unlink(path);
	}
	list_free_deep(v->files);
	v->files = NIL;
}

/* Remember the files the sidecar's answer says a write made. */
static void
record_files(CsWrite *w, const char *answer)
{
	char	   *files = mooncake_json_field(answer, "new_files");
	CsVersion  *v = linitial(w->versions);
	MemoryContext old;
	char	   *line;
	char	   *save = NULL;

	if (files == NULL || files[0] == '\0')
		return;
	old = MemoryContextSwitchTo(TopTransactionContext);
	for (line = strtok_r(files, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
		v->files = lappend(v->files, pstrdup(line));
	MemoryContextSwitchTo(old);
}

/* The first metadata file of a table created and rolled back, and its directories. */
static void
remove_created(CsVersion *v)
{
	char	   *dir = table_dir(v->location);

	if (dir == NULL)
		return;
	(void) unlink(v->location);
	(void) rmdir(psprintf("%s/metadata", dir));
	(void) rmdir(psprintf("%s/data", dir));
	(void) rmdir(dir);
}

static void
cs_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			foreach(lc, cs_writes)
			{
				CsWrite    *w = lfirst(lc);
				char	   *newest = ((CsVersion *) linitial(w->versions))->location;
				MooncakeAsOwner s;
				Oid			argtypes[4] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID};
				Datum		values[4];
				int			rc;

				if (strcmp(newest, w->base) == 0 || w->dropped)
					continue;	/* rolled back to where it began, or dropped */
				values[0] = CStringGetTextDatum(newest);
				values[1] = CStringGetTextDatum(w->base);
				values[2] = CStringGetTextDatum(w->namespace);
				values[3] = CStringGetTextDatum(w->table);
				/* commit runs its callbacks without a snapshot: SPI needs one */
				PushActiveSnapshot(GetTransactionSnapshot());
				mooncake_as_owner_begin(&s);
				rc = SPI_execute_with_args(
					"UPDATE mooncake.iceberg_tables SET metadata_location = $1, "
					"previous_metadata_location = $2 "
					"WHERE catalog_name = 'mooncake' AND table_namespace = $3 "
					"AND table_name = $4 AND metadata_location = $2",
					4, argtypes, values, NULL, false, 0);
				if (rc != SPI_OK_UPDATE || SPI_processed != 1)
					ereport(ERROR,
							(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
							 errmsg("could not commit the writes to columnstore table \"%s.%s\": it changed meanwhile",
									w->namespace, w->table)));
				mooncake_as_owner_end(&s);
				PopActiveSnapshot();
			}
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (cs_writes != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot prepare a transaction that wrote a columnstore table")));
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			/* the files of a rolled back transaction: nothing references them */
			foreach(lc, cs_writes)
			{
				CsWrite    *w = lfirst(lc);
				ListCell   *lv;

				foreach(lv, w->versions)
					remove_version_files(w->base, lfirst(lv));
			}
			foreach(lc, cs_created)
				remove_created(lfirst(lc));
			cs_writes = NIL;
			cs_created = NIL;
			forget_purge();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			/* the writes of tables dropped: nothing references them */
			foreach(lc, cs_writes)
			{
				CsWrite    *w = lfirst(lc);
				ListCell   *lv;

				if (!w->dropped)
					continue;
				foreach(lv, w->versions)
					remove_version_files(w->base, lfirst(lv));
			}
			cs_writes = NIL;
			cs_created = NIL;
			if (cs_purge_request)
				send_purge();
			if (mirror_drops != NIL)
				send_mirror_drops();
			forget_purge();
			break;
		case XACT_EVENT_PREPARE:
			cs_writes = NIL;
			cs_created = NIL;
			forget_purge();
			break;
	}
}

static void
cs_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	int			nest = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;
	foreach(lc, cs_writes)
	{
		CsWrite    *w = lfirst(lc);

		if (w->dropped >= nest)
			w->dropped = event == SUBXACT_EVENT_COMMIT_SUB ? nest - 1 : 0;
		while (w->versions != NIL && ((CsVersion *) linitial(w->versions))->nest >= nest)
		{
			CsVersion  *v = linitial(w->versions);

			if (event == SUBXACT_EVENT_COMMIT_SUB)
			{
				/* the parent keeps it */
				v->nest = nest - 1;
				break;
			}
			remove_version_files(w->base, v);
			w->versions = list_delete_first(w->versions);
		}
	}
	foreach(lc, cs_created)
	{
		CsVersion  *v = lfirst(lc);

		if (v->nest < nest)
			continue;
		if (event == SUBXACT_EVENT_COMMIT_SUB)
			v->nest = nest - 1;
		else
		{
			remove_created(v);
			cs_created = foreach_delete_current(cs_created, lc);
		}
	}
}

static void
register_callbacks(void)
{
	if (!cs_callbacks)
	{
		RegisterXactCallback(cs_xact_callback, NULL);
		RegisterSubXactCallback(cs_subxact_callback, NULL);
		cs_callbacks = true;
	}
}

/* Writes */

typedef struct CsModify
{
	Relation	rel;
	CsWrite    *write;
	int			natts;
	AttrNumber *attnums;		/* the columns written */
	FmgrInfo   *out;
	StringInfoData rows;
	int64		nrows;
	/* UPDATE and DELETE: the rows to delete, by their ctid */
	AttrNumber	ctid_attno;		/* in the subplan's output */
	char	   *ids_location;	/* the metadata the scan numbered rows by */
	StringInfoData deletes;
	int64		ndeletes;
	/* DELETE ... RETURNING: the deleted rows' columns the scan returns */
	int			nreturning;
	AttrNumber *returning_attnums;	/* of the table */
	AttrNumber *returning_junk; /* in the subplan's output */
	struct CsLoad *load;		/* INSERT and COPY: rows streamed */
	/* INSERT ... SELECT run in DuckDB (insert_scan) */
	int		   *insert_source;	/* per attribute: its column of the scan's answer, -1 NULL */
	bool		set_tag;		/* the statement counts the rows */
} CsModify;

/* Start (or continue) the transaction's writes of relid. */
static CsWrite *
begin_write(Oid relid)
{
	CsWrite    *w = find_write(relid);
	MemoryContext old;
	char	   *ns;
	char	   *tbl;
	char	   *loc;
	CsVersion  *v;

	if (w != NULL)
		return w;
	register_callbacks();
	/* the row's lock serializes the table's writers until commit */
	catalog_row(relid, true, &ns, &tbl, &loc);
	old = MemoryContextSwitchTo(TopTransactionContext);
	w = palloc0(sizeof(CsWrite));
	w->relid = relid;
	w->namespace = pstrdup(ns);
	w->table = pstrdup(tbl);
	w->base = pstrdup(loc);
	v = palloc0(sizeof(CsVersion));
	v->nest = 1;
	v->location = pstrdup(loc);
	w->versions = list_make1(v);
	cs_writes = lappend(cs_writes, w);
	MemoryContextSwitchTo(old);
	return w;
}

/* Record the table's new metadata at the current subtransaction level. */
static void
add_version(CsWrite *w, const char *location)
{
	int			nest = GetCurrentTransactionNestLevel();
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	CsVersion  *v = linitial(w->versions);

	if (v->nest == nest)
		v->location = pstrdup(location);
	else
	{
		v = palloc0(sizeof(CsVersion));
		v->nest = nest;
		v->location = pstrdup(location);
		w->versions = lcons(v, w->versions);
	}
	MemoryContextSwitchTo(old);
}

/* Send the rows gathered to the sidecar: a data file, a new metadata file. */
static void
flush_rows(CsModify *m)
{
	CsVersion  *v;
	StringInfoData req;
	char	   *host;
	char	   *port;
	char	   *answer;
	char	   *loc;
	TupleDesc	desc = RelationGetDescr(m->rel);
	int			i;

	if (m->nrows == 0 && m->ndeletes == 0)
		return;
	v = linitial(m->write->versions);
	begin_cs_request(&req, m->ids_location != NULL ? "columnstore_modify" : "columnstore_append", v->location);
	if (m->ids_location != NULL)
	{
		appendStringInfoString(&req, ",\"ids_location\":");
		escape_json(&req, m->ids_location);
		appendStringInfoString(&req, ",\"deletes\":[");
		appendBinaryStringInfo(&req, m->deletes.data, m->deletes.len);
		appendStringInfoChar(&req, ']');
	}
	appendStringInfoString(&req, ",\"columns\":[");
	for (i = 0; i < m->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, m->attnums[i] - 1);

		if (i > 0)
			appendStringInfoChar(&req, ',');
		appendStringInfoString(&req, "{\"name\":");
		escape_json(&req, NameStr(att->attname));
		appendStringInfo(&req, ",\"type_oid\":%u,\"typmod\":%d}", att->atttypid, att->atttypmod);
	}
	appendStringInfoString(&req, "],\"rows\":[");
	appendBinaryStringInfo(&req, m->rows.data, m->rows.len);
	appendStringInfoString(&req, "]}");
	mooncake_get_endpoint(GetForeignTable(RelationGetRelid(m->rel))->serverid, &host, &port);
	answer = mooncake_request(host, port, m->ids_location ? "columnstore_modify" : "columnstore_append",
							  RelationGetRelationName(m->rel), req.data);
	loc = mooncake_json_field(answer, "metadata_location");
	if (loc == NULL || loc[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("the sidecar answered columnstore_append without a metadata location")));
	add_version(m->write, loc);
	record_files(m->write, answer);
	pfree(req.data);
	resetStringInfo(&m->rows);
	m->nrows = 0;
	if (m->ids_location != NULL)
	{
		resetStringInfo(&m->deletes);
		m->ndeletes = 0;
	}
}

/* The junk column of a DELETE ... RETURNING's scan holding column attnum. */
static char *
returning_junk_name(AttrNumber attnum)
{
	return psprintf("mooncake_returning_%d", (int) attnum);
}

static CsModify *
begin_modify(Relation rel)
{
	CsModify   *m = palloc0(sizeof(CsModify));
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;

	m->rel = rel;
	m->write = begin_write(RelationGetRelid(rel));
	m->attnums = palloc(sizeof(AttrNumber) * desc->natts);
	m->out = palloc(sizeof(FmgrInfo) * desc->natts);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Oid			typout;
		bool		varlena;

		if (att->attisdropped)
			continue;
		getTypeOutputInfo(att->atttypid, &typout, &varlena);
		fmgr_info(typout, &m->out[m->natts]);
		m->attnums[m->natts++] = att->attnum;
	}
	initStringInfo(&m->rows);
	return m;
}

/* Add a row: its values as their types print them, under fixed settings. */
static void
add_row(CsModify *m, TupleTableSlot *slot)
{
	int			nest;
	int			i;

	slot_getallattrs(slot);
	nest = mooncake_set_transmission_modes();
	if (m->nrows > 0)
		appendStringInfoChar(&m->rows, ',');
	appendStringInfoChar(&m->rows, '[');
	for (i = 0; i < m->natts; i++)
	{
		int			a = m->attnums[i] - 1;

		if (i > 0)
			appendStringInfoChar(&m->rows, ',');
		if (slot->tts_isnull[a])
			appendStringInfoString(&m->rows, "null");
		else
			escape_json(&m->rows, OutputFunctionCall(&m->out[i], slot->tts_values[a]));
	}
	appendStringInfoChar(&m->rows, ']');
	mooncake_reset_transmission_modes(nest);
	m->nrows++;
	if (m->rows.len >= APPEND_BYTES)
		flush_rows(m);
}


/*
 * INSERT and COPY stream their rows to the sidecar (columnstore_load, see
 * sidecar/PROTOCOL.md): one connection per statement and table, opened at
 * the first row; the rows go in chunks of about LOAD_CHUNK_BYTES, column
 * by column, values in binary where the type has a fixed layout, and the
 * sidecar writes them to a data file while the backend produces the next
 * ones. The end of the statement sends the end of the rows with the
 * table's version to build on and waits for the new metadata file. An
 * error of the sidecar comes back at once; the backend looks for it after
 * each chunk. The connection lives in a context of the (sub)transaction:
 * an error anywhere closes it, and the sidecar drops the rows.
 */
typedef enum LoadEnc
{
	ENC_BOOL,
	ENC_INT2,
	ENC_INT4,
	ENC_INT8,
	ENC_FLOAT4,
	ENC_FLOAT8,
	ENC_DATE,
	ENC_TIME,
	ENC_TIMESTAMP,
	ENC_UUID,
	ENC_BYTES,
	ENC_TEXT,
	ENC_NUMERIC
} LoadEnc;

static const char *const load_enc_names[] = {
	"bool", "int2", "int4", "int8", "float4", "float8", "date", "time",
	"timestamp", "uuid", "bytes", "text", "numeric"
};

typedef struct CsLoad
{
	MemoryContext cxt;			/* owns the connection and the buffers */
	MemoryContext rowcxt;		/* output functions' and detoasting's garbage */
	MooncakeConnection *conn;	/* NULL until the first row */
	LoadEnc    *enc;			/* per column written */
	bool	   *utf8;			/* per column: its bytes are text */
	bool		modes;			/* some text output depends on settings */
	bool		convert;		/* text must be converted to UTF-8 */
	StringInfoData *vals;		/* per column: the chunk's values */
	StringInfoData *valid;		/* per column: the chunk's validity bitmap */
	int			nrows;			/* rows in the chunk */
	size_t		bytes;			/* bytes of values in the chunk */
	StringInfoData frame;
} CsLoad;

static LoadEnc
load_enc(Oid typid)
{
	switch (getBaseType(typid))
	{
		case BOOLOID:
			return ENC_BOOL;
		case INT2OID:
			return ENC_INT2;
		case INT4OID:
			return ENC_INT4;
		case INT8OID:
		case CASHOID:
			return ENC_INT8;
		case FLOAT4OID:
			return ENC_FLOAT4;
		case FLOAT8OID:
			return ENC_FLOAT8;
		case DATEOID:
			return ENC_DATE;
		case TIMEOID:
			return ENC_TIME;
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return ENC_TIMESTAMP;
		case UUIDOID:
			return ENC_UUID;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case BYTEAOID:
			return ENC_BYTES;
		case NUMERICOID:
			return ENC_NUMERIC;
		default:
			return ENC_TEXT;
	}
}

/* Types whose text output depends on no setting. */
static bool
output_is_fixed(Oid typid)
{
	Oid			base = getBaseType(typid);

	return base == JSONOID || base == JSONBOID;
}

static CsLoad *
load_create(CsModify *m)
{
	TupleDesc	desc = RelationGetDescr(m->rel);
	CsLoad	   *l = palloc0(sizeof(CsLoad));
	int			enc = GetDatabaseEncoding();
	int			i;

	l->cxt = AllocSetContextCreate(CurTransactionContext, "mooncake columnstore load",
								   ALLOCSET_DEFAULT_SIZES);
	l->rowcxt = AllocSetContextCreate(l->cxt, "mooncake columnstore load values",
									  ALLOCSET_DEFAULT_SIZES);
	l->convert = enc != PG_UTF8 && enc != PG_SQL_ASCII;
	l->enc = MemoryContextAlloc(l->cxt, sizeof(LoadEnc) * m->natts);
	l->utf8 = MemoryContextAlloc(l->cxt, sizeof(bool) * m->natts);
	l->vals = MemoryContextAlloc(l->cxt, sizeof(StringInfoData) * m->natts);
	l->valid = MemoryContextAlloc(l->cxt, sizeof(StringInfoData) * m->natts);
	for (i = 0; i < m->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, m->attnums[i] - 1);
		MemoryContext old = MemoryContextSwitchTo(l->cxt);

		l->enc[i] = load_enc(att->atttypid);
		l->utf8[i] = getBaseType(att->atttypid) != BYTEAOID;
		if (l->enc[i] == ENC_TEXT && !output_is_fixed(att->atttypid))
			l->modes = true;
		initStringInfo(&l->vals[i]);
		initStringInfo(&l->valid[i]);
		MemoryContextSwitchTo(old);
	}
	{
		MemoryContext old = MemoryContextSwitchTo(l->cxt);

		initStringInfo(&l->frame);
		MemoryContextSwitchTo(old);
	}
	return l;
}

/* Open the connection and send the request: the columns and encodings. */
static void
load_open(CsModify *m)
{
	CsLoad	   *l = m->load;
	TupleDesc	desc = RelationGetDescr(m->rel);
	StringInfoData req;
	char	   *host;
	char	   *port;
	int			i;
	MemoryContext old;

	begin_cs_request(&req, "columnstore_load", ((CsVersion *) linitial(m->write->versions))->location);
	appendStringInfoString(&req, ",\"columns\":[");
	for (i = 0; i < m->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, m->attnums[i] - 1);

		if (i > 0)
			appendStringInfoChar(&req, ',');
		appendStringInfoString(&req, "{\"name\":");
		escape_json(&req, NameStr(att->attname));
		appendStringInfo(&req, ",\"type_oid\":%u,\"typmod\":%d,\"enc\":\"%s\"}",
						 att->atttypid, att->atttypmod, load_enc_names[l->enc[i]]);
	}
	appendStringInfoString(&req, "]}");
	mooncake_get_endpoint(GetForeignTable(RelationGetRelid(m->rel))->serverid, &host, &port);
	old = MemoryContextSwitchTo(l->cxt);
	l->conn = mooncake_connect(host, port, "columnstore_load", RelationGetRelationName(m->rel));
	mooncake_send_request(l->conn, req.data);
	MemoryContextSwitchTo(old);
	pfree(req.data);
}

/* Send the chunk gathered, then raise the sidecar's error if it sent one. */
static void
load_send_chunk(CsModify *m)
{
	CsLoad	   *l = m->load;
	uint32		n;
	int			i;

	if (l->nrows == 0)
		return;
	resetStringInfo(&l->frame);
	n = pg_hton32((uint32) l->nrows);
	appendBinaryStringInfo(&l->frame, (char *) &n, 4);
	for (i = 0; i < m->natts; i++)
	{
		n = pg_hton32((uint32) (l->valid[i].len + l->vals[i].len));
		appendBinaryStringInfo(&l->frame, (char *) &n, 4);
		appendBinaryStringInfo(&l->frame, l->valid[i].data, l->valid[i].len);
		appendBinaryStringInfo(&l->frame, l->vals[i].data, l->vals[i].len);
		resetStringInfo(&l->valid[i]);
		resetStringInfo(&l->vals[i]);
	}
	if (l->frame.len > LOAD_FRAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a row is too large for columnstore table \"%s\"", RelationGetRelationName(m->rel)),
				 errdetail("The values of a row take more than %d MB.", LOAD_FRAME_MAX / (1024 * 1024) - 1)));
	mooncake_send_frame(l->conn, 'B', l->frame.data, l->frame.len);
	l->nrows = 0;
	l->bytes = 0;
	MemoryContextReset(l->rowcxt);
	mooncake_check_early_answer(l->conn);
}

/* Append n bytes (no terminating NUL: the chunk buffers hold binary). */
static inline void
put_bytes(StringInfo buf, const void *p, int n)
{
	if (buf->len + n >= buf->maxlen)
		enlargeStringInfo(buf, n);
	memcpy(buf->data + buf->len, p, n);
	buf->len += n;
}

static inline void
append_be16(StringInfo buf, uint16 v)
{
	v = pg_hton16(v);
	put_bytes(buf, &v, 2);
}

static inline void
append_be32(StringInfo buf, uint32 v)
{
	v = pg_hton32(v);
	put_bytes(buf, &v, 4);
}

static inline void
append_be64(StringInfo buf, uint64 v)
{
	v = pg_hton64(v);
	put_bytes(buf, &v, 8);
}

/* A variable-length value: its length and bytes, in UTF-8. */
static inline void
append_bytes(CsLoad *l, StringInfo buf, const char *p, int len, bool text)
{
	if (text && l->convert)
	{
		char	   *u = pg_server_to_any(p, len, PG_UTF8);

		if (u != p)
		{
			p = u;
			len = strlen(u);
		}
	}
	append_be32(buf, (uint32) len);
	put_bytes(buf, p, len);
}

/*
 * A numeric in its binary send format (int16 ndigits, weight, sign and
 * dscale, then the base-10000 digits), read from its stored form: a header
 * word that tells a special value (NaN, +-Infinity), the short form (sign,
 * dscale and a 7-bit weight in the word) or the long form (sign and dscale
 * in the word, an int16 weight after it), then the digits.
 */
static void
append_numeric(StringInfo buf, Datum d)
{
	struct varlena *v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(d));
	const char *p = VARDATA_ANY(v);
	int			len = VARSIZE_ANY_EXHDR(v);
	uint16		head;
	int16		weight = 0;
	uint16		sign;
	uint16		dscale = 0;
	int			ndigits = 0;
	const char *digits = NULL;
	int			i;

	memcpy(&head, p, sizeof(head));
	if ((head & 0xC000) == 0xC000)
		sign = head & 0xF000;	/* NaN 0xC000, Infinity 0xD000, -Infinity 0xF000 */
	else if ((head & 0x8000) != 0)
	{
		sign = (head & 0x2000) ? 0x4000 : 0;
		dscale = (head & 0x1F80) >> 7;
		weight = (int16) ((head & 0x0040) ? (~0x003F | (head & 0x003F)) : (head & 0x003F));
		digits = p + 2;
		ndigits = (len - 2) / 2;
	}
	else
	{
		sign = head & 0xC000;
		dscale = head & 0x3FFF;
		memcpy(&weight, p + 2, sizeof(weight));
		digits = p + 4;
		ndigits = (len - 4) / 2;
	}
	append_be32(buf, (uint32) (8 + 2 * ndigits));
	append_be16(buf, (uint16) ndigits);
	append_be16(buf, (uint16) weight);
	append_be16(buf, sign);
	append_be16(buf, dscale);
	for (i = 0; i < ndigits; i++)
	{
		int16		digit;

		memcpy(&digit, digits + 2 * i, sizeof(digit));
		append_be16(buf, (uint16) digit);
	}
}

/* Add a row to the load's chunk. */
static void
load_row(CsModify *m, TupleTableSlot *slot)
{
	CsLoad	   *l = m->load;
	int			nest = 0;
	int			i;
	MemoryContext old;

	if (l->conn == NULL)
		load_open(m);
	slot_getallattrs(slot);
	old = MemoryContextSwitchTo(l->rowcxt);
	if (l->modes)
		nest = mooncake_set_transmission_modes();
	for (i = 0; i < m->natts; i++)
	{
		int			a = m->attnums[i] - 1;
		StringInfo	valid = &l->valid[i];
		StringInfo	buf = &l->vals[i];
		Datum		d = slot->tts_values[a];
		int			before = buf->len;

		if ((l->nrows & 7) == 0)
			appendStringInfoChar(valid, '\0');
		if (slot->tts_isnull[a])
			continue;
		valid->data[valid->len - 1] |= (char) (1 << (l->nrows & 7));
		switch (l->enc[i])
		{
			case ENC_BOOL:
				{
					char		b = DatumGetBool(d) ? 1 : 0;

					put_bytes(buf, &b, 1);
					break;
				}
			case ENC_INT2:
				append_be16(buf, (uint16) DatumGetInt16(d));
				break;
			case ENC_INT4:
				append_be32(buf, (uint32) DatumGetInt32(d));
				break;
			case ENC_INT8:
				append_be64(buf, (uint64) DatumGetInt64(d));
				break;
			case ENC_FLOAT4:
				{
					float4		f = DatumGetFloat4(d);
					uint32		u;

					memcpy(&u, &f, 4);
					append_be32(buf, u);
					break;
				}
			case ENC_FLOAT8:
				{
					float8		f = DatumGetFloat8(d);
					uint64		u;

					memcpy(&u, &f, 8);
					append_be64(buf, u);
					break;
				}
			case ENC_DATE:
				append_be32(buf, (uint32) DatumGetDateADT(d));
				break;
			case ENC_TIME:
				append_be64(buf, (uint64) DatumGetTimeADT(d));
				break;
			case ENC_TIMESTAMP:
				append_be64(buf, (uint64) DatumGetTimestamp(d));
				break;
			case ENC_UUID:
				put_bytes(buf, DatumGetUUIDP(d)->data, UUID_LEN);
				break;
			case ENC_BYTES:
				{
					struct varlena *v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(d));

					append_bytes(l, buf, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v), l->utf8[i]);
					break;
				}
			case ENC_NUMERIC:
				append_numeric(buf, d);
				break;
			case ENC_TEXT:
				{
					char	   *s = OutputFunctionCall(&m->out[i], d);

					append_bytes(l, buf, s, strlen(s), true);
					break;
				}
		}
		l->bytes += buf->len - before;
	}
	if (l->modes)
		mooncake_reset_transmission_modes(nest);
	MemoryContextSwitchTo(old);
	l->nrows++;
	if (l->bytes >= LOAD_CHUNK_BYTES)
		load_send_chunk(m);
}

/* The end of the statement: the last chunk, the end, the new version. */
static void
load_finish(CsModify *m)
{
	CsLoad	   *l = m->load;
	StringInfoData end;
	char	   *answer;
	char	   *loc;

	if (l->conn == NULL)
	{
		MemoryContextDelete(l->cxt);
		m->load = NULL;
		return;					/* no rows */
	}
	load_send_chunk(m);
	initStringInfo(&end);
	appendStringInfoString(&end, "{\"metadata_location\":");
	escape_json(&end, ((CsVersion *) linitial(m->write->versions))->location);
	appendStringInfoChar(&end, '}');
	{
		char	   *utf8 = pg_server_to_any(end.data, end.len, PG_UTF8);

		mooncake_send_frame(l->conn, 'F', utf8, strlen(utf8));
	}
	answer = mooncake_read_answer(l->conn);
	loc = mooncake_json_field(answer, "metadata_location");
	if (loc == NULL || loc[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("the sidecar answered columnstore_load without a metadata location")));
	add_version(m->write, loc);
	record_files(m->write, answer);
	MemoryContextDelete(l->cxt);
	m->load = NULL;
}

/*
 * INSERT INTO columnstore_table SELECT ..., the SELECT a scan of the
 * wrapper pushed down whole (a mirror, a columnstore table, the data
 * lake's files, their joins and aggregates): at the scan's first row the
 * sidecar is asked to run the scan's query in DuckDB straight into the
 * table's data files (columnstore_insert_scan), without PostgreSQL's rows.
 * It does so only when that gives exactly the rows PostgreSQL would
 * insert: the scan's columns of the target columns' types, every value one
 * the row path keeps as it is (no NUL in text, dates and timestamps of
 * years 1 to 9999, varchar(n) values within n); else it answers
 * "fallback" before writing anything and the rows go the usual way.
 */
static int64
insert_scan(ForeignScanState *node, const char *scan_request, void *arg)
{
	CsModify   *m = (CsModify *) arg;
	TupleDesc	desc = RelationGetDescr(m->rel);
	StringInfoData req;
	char	   *host;
	char	   *port;
	char	   *answer;
	char	   *fallback;
	char	   *loc;
	char	   *rows;
	int64		n;
	bool		first = true;
	int			i;

	begin_cs_request(&req, "columnstore_insert_scan", ((CsVersion *) linitial(m->write->versions))->location);
	appendStringInfoString(&req, ",\"columns\":[");
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped)
			continue;
		if (!first)
			appendStringInfoChar(&req, ',');
		first = false;
		appendStringInfoString(&req, "{\"name\":");
		escape_json(&req, NameStr(att->attname));
		appendStringInfo(&req, ",\"source\":%d}", m->insert_source[i]);
	}
	appendStringInfo(&req, "],\"scan\":%s}", scan_request);
	mooncake_get_endpoint(GetForeignTable(RelationGetRelid(m->rel))->serverid, &host, &port);
	answer = mooncake_request(host, port, "columnstore_insert_scan", RelationGetRelationName(m->rel), req.data);
	fallback = mooncake_json_field(answer, "fallback");
	if (fallback != NULL && fallback[0] != '\0')
	{
		ereport(DEBUG1,
				(errmsg_internal("INSERT INTO %s takes its rows from PostgreSQL: %s",
								 RelationGetRelationName(m->rel), fallback)));
		return -1;
	}
	loc = mooncake_json_field(answer, "metadata_location");
	if (loc == NULL || loc[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("the sidecar answered columnstore_insert_scan without a metadata location")));
	add_version(m->write, loc);
	record_files(m->write, answer);
	rows = mooncake_json_field(answer, "rows");
	n = rows != NULL ? (int64) strtou64(rows, NULL, 10) : 0;
	if (m->set_tag)
		node->ss.ps.state->es_processed += n;
	ereport(DEBUG1,
			(errmsg_internal("INSERT INTO %s ... SELECT was run by DuckDB: " INT64_FORMAT " rows",
							 RelationGetRelationName(m->rel), n)));
	return n;
}

/* Offer the INSERT's scan to insert_scan, when the scan feeds it as it is. */
static void
offer_insert_scan(ModifyTableState *mtstate, CsModify *m)
{
	ModifyTable *plan = (ModifyTable *) mtstate->ps.plan;
	TupleDesc	desc = RelationGetDescr(m->rel);
	int		   *source;

	/* (ri_returningList and ri_WithCheckOptions are set after this) */
	if (plan->returningLists != NIL || plan->withCheckOptionLists != NIL ||
		plan->onConflictAction != ONCONFLICT_NONE || list_length(plan->resultRelations) != 1 ||
		(desc->constr != NULL && desc->constr->has_generated_stored))
		return;
	source = palloc(sizeof(int) * Max(desc->natts, 1));
	if (!mooncake_scan_feeds(outerPlanState(mtstate), desc, source))
		return;
	m->insert_source = source;
	m->set_tag = plan->canSetTag;
	mooncake_scan_divert(outerPlanState(mtstate), insert_scan, m);
}

void
mooncake_columnstore_begin_modify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
								  List *fdw_private, int subplan_index, int eflags)
{
	CsModify   *m;

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	m = begin_modify(rinfo->ri_RelationDesc);
	if (mtstate->operation == CMD_INSERT)
	{
		m->load = load_create(m);
		offer_insert_scan(mtstate, m);
	}
	if (mtstate->operation == CMD_UPDATE || mtstate->operation == CMD_DELETE)
	{
		Plan	   *subplan = outerPlanState(mtstate)->plan;

		m->ctid_attno = ExecFindJunkAttributeInTlist(subplan->targetlist, "ctid");
		if (!AttributeNumberIsValid(m->ctid_attno))
			elog(ERROR, "the scan of columnstore table \"%s\" returns no ctid",
				 RelationGetRelationName(rinfo->ri_RelationDesc));
		/* the version the statement's scan reads, numbering its rows */
		m->ids_location = pstrdup(((CsVersion *) linitial(m->write->versions))->location);
		initStringInfo(&m->deletes);
		/* (ri_returningList is set after this callback) */
		if (mtstate->operation == CMD_DELETE &&
			((ModifyTable *) mtstate->ps.plan)->returningLists != NIL)
		{
			/* the columns RETURNING reads, as the scan returns them */
			TupleDesc	desc = RelationGetDescr(rinfo->ri_RelationDesc);
			int			i;

			m->returning_attnums = palloc(sizeof(AttrNumber) * desc->natts);
			m->returning_junk = palloc(sizeof(AttrNumber) * desc->natts);
			for (i = 1; i <= desc->natts; i++)
			{
				AttrNumber	junk = ExecFindJunkAttributeInTlist(subplan->targetlist,
																returning_junk_name(i));

				if (!AttributeNumberIsValid(junk))
					continue;
				m->returning_attnums[m->nreturning] = i;
				m->returning_junk[m->nreturning++] = junk;
			}
		}
	}
	rinfo->ri_FdwState = m;
}

/*
 * The row ids of UPDATE and DELETE: the scan's ctid of the row. A DELETE
 * ... RETURNING also has the scan return the columns its RETURNING list
 * reads (all of them for a whole-row reference), as junk columns named by
 * returning_junk_name: the deleted row is rebuilt from them (UPDATE gets
 * the whole row from PostgreSQL already, for the columns it keeps).
 */
void
mooncake_columnstore_update_targets(PlannerInfo *root, Index rtindex,
									RangeTblEntry *target_rte, Relation target_relation)
{
	Var		   *var = makeVar(rtindex, SelfItemPointerAttributeNumber, TIDOID, -1, InvalidOid, 0);

	add_row_identity_var(root, var, rtindex, "ctid");
	if (root->parse->commandType == CMD_DELETE && root->parse->returningList != NIL &&
		rtindex == (Index) root->parse->resultRelation)
	{
		TupleDesc	desc = RelationGetDescr(target_relation);
		Bitmapset  *attrs = NULL;
		bool		whole_row;
		int			i;

		pull_varattnos((Node *) root->parse->returningList, rtindex, &attrs);
		whole_row = bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, attrs);
		for (i = 1; i <= desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i - 1);

			if (att->attisdropped ||
				!(whole_row || bms_is_member(i - FirstLowInvalidHeapAttributeNumber, attrs)))
				continue;
			add_row_identity_var(root, makeVar(rtindex, i, att->atttypid, att->atttypmod,
											   att->attcollation, 0),
								 rtindex, returning_junk_name(i));
		}
	}
}

List *
mooncake_columnstore_plan_modify(PlannerInfo *root, ModifyTable *plan,
								 Index resultRelation, int subplan_index)
{
	/* the columns come from the scan of the statement's own target only */
	if (plan->operation == CMD_DELETE && plan->returningLists != NIL &&
		resultRelation != (Index) root->parse->resultRelation)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("DELETE ... RETURNING on a columnstore table is supported only when it is the statement's own target"),
				 errhint("SELECT the rows first, in the same transaction.")));
	return NIL;
}

/* Add the ctid of the row planSlot carries to the rows to delete. */
static void
add_delete(CsModify *m, TupleTableSlot *planSlot)
{
	bool		isnull;
	Datum		d = ExecGetJunkAttribute(planSlot, m->ctid_attno, &isnull);
	ItemPointer tid;
	uint32		block;
	uint32		offset;

	if (isnull)
		elog(ERROR, "a row of columnstore table \"%s\" has no ctid", RelationGetRelationName(m->rel));
	tid = (ItemPointer) DatumGetPointer(d);
	block = ItemPointerGetBlockNumberNoCheck(tid);
	offset = ItemPointerGetOffsetNumberNoCheck(tid);
	/* block: file << 17 | row >> 15; offset: (row & 32767) + 1 */
	appendStringInfo(&m->deletes, "%s[%u," UINT64_FORMAT "]", m->ndeletes > 0 ? "," : "",
					 block >> 17, ((uint64) (block & 0x1FFFF) << 15) | (uint64) (offset - 1));
	m->ndeletes++;
}

TupleTableSlot *
mooncake_columnstore_exec_update(EState *estate, ResultRelInfo *rinfo,
								 TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	CsModify   *m = rinfo->ri_FdwState;

	add_delete(m, planSlot);
	add_row(m, slot);			/* flushes deletes and rows together */
	return slot;
}

TupleTableSlot *
mooncake_columnstore_exec_delete(EState *estate, ResultRelInfo *rinfo,
								 TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	CsModify   *m = rinfo->ri_FdwState;

	add_delete(m, planSlot);
	if (m->nreturning > 0)
	{
		/* the deleted row, for RETURNING: the columns it reads, the others NULL */
		TupleDesc	desc = slot->tts_tupleDescriptor;
		bool		isnull;
		Datum		tid = ExecGetJunkAttribute(planSlot, m->ctid_attno, &isnull);
		int			i;

		ExecClearTuple(slot);
		memset(slot->tts_isnull, true, sizeof(bool) * desc->natts);
		for (i = 0; i < m->nreturning; i++)
		{
			int			a = m->returning_attnums[i] - 1;

			slot->tts_values[a] = ExecGetJunkAttribute(planSlot, m->returning_junk[i],
													   &slot->tts_isnull[a]);
		}
		ExecStoreVirtualTuple(slot);
		if (!isnull)
		{
			/* RETURNING ctid: a heap tuple carries it, as the scan's rows do */
			ExecMaterializeSlot(slot);
			if (TTS_IS_HEAPTUPLE(slot))
				((HeapTupleTableSlot *) slot)->tuple->t_self = *(ItemPointer) DatumGetPointer(tid);
			slot->tts_tid = *(ItemPointer) DatumGetPointer(tid);
		}
	}
	if (m->deletes.len >= APPEND_BYTES)
		flush_rows(m);
	return slot;
}

void
mooncake_columnstore_begin_insert(ModifyTableState *mtstate, ResultRelInfo *rinfo)
{
	CsModify   *m = begin_modify(rinfo->ri_RelationDesc);

	m->load = load_create(m);
	rinfo->ri_FdwState = m;
}

TupleTableSlot *
mooncake_columnstore_exec_insert(EState *estate, ResultRelInfo *rinfo,
								 TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	CsModify   *m = rinfo->ri_FdwState;

	load_row(m, slot);			/* begin_modify and begin_insert made the load */
	return slot;
}

void
mooncake_columnstore_end_modify(EState *estate, ResultRelInfo *rinfo)
{
	CsModify   *m = rinfo->ri_FdwState;

	if (m != NULL && m->load != NULL)
		load_finish(m);
	else if (m != NULL)
		flush_rows(m);
}

/*
 * TRUNCATE of columnstore tables (PostgreSQL checks the privilege and
 * takes the locks): each a new, empty version, committed as writes are.
 * Mirrors are emptied through their source.
 */
void
mooncake_columnstore_truncate(List *rels, DropBehavior behavior, bool restart_seqs)
{
	ListCell   *lc;

	foreach(lc, rels)
	{
		Relation	rel = lfirst(lc);
		CsWrite    *w;
		StringInfoData req;
		char	   *host;
		char	   *port;
		char	   *answer;
		char	   *loc;

		if (!mooncake_is_columnstore(RelationGetRelid(rel)))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot truncate mirror \"%s\"", RelationGetRelationName(rel)),
					 errhint("A mirror follows its source: truncate the source.")));
		w = begin_write(RelationGetRelid(rel));
		begin_cs_request(&req, "columnstore_truncate", ((CsVersion *) linitial(w->versions))->location);
		appendStringInfoChar(&req, '}');
		mooncake_get_endpoint(GetForeignTable(RelationGetRelid(rel))->serverid, &host, &port);
		answer = mooncake_request(host, port, "columnstore_truncate", RelationGetRelationName(rel), req.data);
		loc = mooncake_json_field(answer, "metadata_location");
		if (loc == NULL || loc[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("the sidecar answered columnstore_truncate without a metadata location")));
		add_version(w, loc);
		record_files(w, answer);
	}
}

/* DDL */

/* A column constraint columnstore tables do not take: refused. */
static void
refuse_column_constraint(const char *colname, ConstrType contype)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("column \"%s\": columnstore tables do not take %s constraints", colname,
					contype == CONSTR_PRIMARY ? "PRIMARY KEY" :
					contype == CONSTR_UNIQUE ? "UNIQUE" :
					contype == CONSTR_FOREIGN ? "REFERENCES" :
					contype == CONSTR_CHECK ? "CHECK" : "such"),
			 errhint("Columnstore tables keep no indexes and check NOT NULL only.")));
}

/* A column comment LIKE ... INCLUDING COMMENTS copies: the new column's number. */
typedef struct CsLikeComment
{
	AttrNumber	attnum;
	char	   *comment;
} CsLikeComment;

/*
 * The table elements of a CREATE TABLE with its LIKE clauses replaced by
 * the columns they copy, as PostgreSQL copies them: names, types,
 * collations and NOT NULL always, defaults with INCLUDING DEFAULTS,
 * column comments with INCLUDING COMMENTS (into *comments, set once the
 * table exists). What a columnstore table cannot keep is refused when
 * the LIKE asks for it and the source has it: indexes, CHECK constraints,
 * identity and generated columns. STORAGE, COMPRESSION and STATISTICS
 * concern a heap's storage and are left out.
 */
static List *
expand_like(List *elts, List **comments)
{
	List	   *out = NIL;
	AttrNumber	attnum = 0;
	ListCell   *lc;

	foreach(lc, elts)
	{
		Node	   *elt = lfirst(lc);
		TableLikeClause *like;
		Relation	rel;
		TupleDesc	desc;
		AclResult	aclresult;
		int			i;

		if (!IsA(elt, TableLikeClause))
		{
			if (IsA(elt, ColumnDef))
				attnum++;
			out = lappend(out, elt);
			continue;
		}
		like = (TableLikeClause *) elt;
		rel = relation_openrv(like->relation, AccessShareLock);
		if (rel->rd_rel->relkind != RELKIND_RELATION &&
			rel->rd_rel->relkind != RELKIND_VIEW &&
			rel->rd_rel->relkind != RELKIND_MATVIEW &&
			rel->rd_rel->relkind != RELKIND_COMPOSITE_TYPE &&
			rel->rd_rel->relkind != RELKIND_FOREIGN_TABLE &&
			rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("relation \"%s\" is invalid in LIKE clause", RelationGetRelationName(rel)),
					 errdetail_relkind_not_supported(rel->rd_rel->relkind)));
		if (rel->rd_rel->relkind == RELKIND_COMPOSITE_TYPE)
		{
#if PG_VERSION_NUM >= 160000
			aclresult = object_aclcheck(TypeRelationId, rel->rd_rel->reltype, GetUserId(), ACL_USAGE);
#else
			aclresult = pg_type_aclcheck(rel->rd_rel->reltype, GetUserId(), ACL_USAGE);
#endif
			if (aclresult != ACLCHECK_OK)
				aclcheck_error(aclresult, OBJECT_TYPE, RelationGetRelationName(rel));
		}
		else
		{
			aclresult = pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_SELECT);
			if (aclresult != ACLCHECK_OK)
				aclcheck_error(aclresult, get_relkind_objtype(rel->rd_rel->relkind), RelationGetRelationName(rel));
		}
		desc = RelationGetDescr(rel);
		if ((like->options & CREATE_TABLE_LIKE_INDEXES) && rel->rd_rel->relhasindex)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("columnstore tables keep no indexes: LIKE \"%s\" cannot include its indexes", RelationGetRelationName(rel)),
					 errhint("Write LIKE %s EXCLUDING INDEXES (INCLUDING ALL EXCLUDING INDEXES for the rest).", RelationGetRelationName(rel))));
		if ((like->options & CREATE_TABLE_LIKE_CONSTRAINTS) && desc->constr != NULL && desc->constr->num_check > 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("columnstore tables check NOT NULL only: LIKE \"%s\" cannot include its CHECK constraints", RelationGetRelationName(rel)),
					 errhint("Write LIKE %s EXCLUDING CONSTRAINTS.", RelationGetRelationName(rel))));
		for (i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);
			ColumnDef  *def;

			if (att->attisdropped)
				continue;
			if ((like->options & CREATE_TABLE_LIKE_IDENTITY) && att->attidentity)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("columnstore tables cannot have identity columns: LIKE \"%s\" cannot include column \"%s\"'s identity",
								RelationGetRelationName(rel), NameStr(att->attname)),
						 errhint("Write LIKE %s EXCLUDING IDENTITY.", RelationGetRelationName(rel))));
			if ((like->options & CREATE_TABLE_LIKE_GENERATED) && att->attgenerated)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("LIKE \"%s\" cannot include the generation expression of column \"%s\" in a columnstore table",
								RelationGetRelationName(rel), NameStr(att->attname)),
						 errhint("Write LIKE %s EXCLUDING GENERATED: the column is then a plain column.", RelationGetRelationName(rel))));
			def = makeColumnDef(NameStr(att->attname), att->atttypid, att->atttypmod, att->attcollation);
			def->is_not_null = att->attnotnull;
			if ((like->options & CREATE_TABLE_LIKE_DEFAULTS) && att->atthasdef && !att->attgenerated &&
				desc->constr != NULL)
			{
				int			d;

				for (d = 0; d < desc->constr->num_defval; d++)
					if (desc->constr->defval[d].adnum == att->attnum)
						def->cooked_default = stringToNode(desc->constr->defval[d].adbin);
			}
			out = lappend(out, def);
			attnum++;
			if (like->options & CREATE_TABLE_LIKE_COMMENTS)
			{
				char	   *comment = GetComment(att->attrelid, RelationRelationId, att->attnum);

				if (comment != NULL)
				{
					CsLikeComment *c = palloc(sizeof(CsLikeComment));

					c->attnum = attnum;
					c->comment = comment;
					*comments = lappend(*comments, c);
				}
			}
		}
		relation_close(rel, NoLock);
	}
	return out;
}

/*
 * Create a columnstore table from a CREATE TABLE's parse tree: the
 * Iceberg table's first metadata file (the sidecar), its catalog row and
 * the foreign table, all in the current transaction but the file.
 */
static Oid
create_columnstore(CreateStmt *stmt, const char *queryString, ProcessUtilityContext context,
				   ParamListInfo params, QueryEnvironment *queryEnv)
{
	CreateForeignTableStmt *f = makeNode(CreateForeignTableStmt);
	PlannedStmt *pstmt = makeNode(PlannedStmt);
	StringInfoData req;
	ListCell   *lc;
	Oid			nspid;
	char	   *nspname;
	char	   *answer;
	char	   *host;
	char	   *port;
	char	   *table;
	Oid			relid;
	bool		first = true;
	MooncakeAsOwner s;
	int			suffix = 0;
	char	   *location = NULL;	/* WITH (location = ...), else the warehouse */
	List	   *comments = NIL; /* LIKE ... INCLUDING COMMENTS */

	/* LIKE: the columns it copies (on a copy: the statement may be cached) */
	stmt = copyObject(stmt);
	stmt->tableElts = expand_like(stmt->tableElts, &comments);
	if (stmt->inhRelations != NIL || stmt->partbound != NULL || stmt->partspec != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("columnstore tables cannot be partitioned or inherit"),
				 errhint("Create a heap table and mirror it with mooncake.create_table.")));
	if (stmt->relation->relpersistence != RELPERSISTENCE_PERMANENT)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("columnstore tables cannot be temporary or unlogged")));
	if (stmt->ofTypename != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("columnstore tables cannot be typed tables")));
	foreach(lc, stmt->constraints)
	{
		Constraint *c = lfirst_node(Constraint, lc);

		if (c->contype != CONSTR_NOTNULL)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("columnstore tables do not take %s constraints",
							c->contype == CONSTR_PRIMARY ? "PRIMARY KEY" :
							c->contype == CONSTR_UNIQUE ? "UNIQUE" :
							c->contype == CONSTR_FOREIGN ? "FOREIGN KEY" :
							c->contype == CONSTR_CHECK ? "CHECK" : "table"),
					 errhint("Columnstore tables keep no indexes and check NOT NULL only.")));
	}

	foreach(lc, stmt->options)
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		if (strcmp(def->defname, "location") != 0 || def->defnamespace != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unrecognized parameter \"%s\" of a columnstore table", def->defname),
					 errhint("A columnstore table takes WITH (location = '/directory') or WITH (location = 's3://bucket/prefix').")));
		location = defGetString(def);
		/* the sidecar writes there as the server's OS user, or with the secrets */
		mooncake_check_table_location(location);
	}

	nspid = RangeVarGetCreationNamespace(stmt->relation);
	nspname = get_namespace_name(nspid);
	table = stmt->relation->relname;

	initStringInfo(&req);
	appendStringInfoString(&req, "{\"op\":\"columnstore_create\",\"database\":");
	escape_json(&req, get_database_name(MyDatabaseId));
	appendStringInfo(&req, ",\"extension\":%u", get_extension_oid("pg_mooncake", false));
	appendStringInfoString(&req, ",\"namespace\":");
	escape_json(&req, nspname);
	appendStringInfoString(&req, ",\"table\":");
	escape_json(&req, table);
	appendStringInfoString(&req, ",\"columns\":[");
	foreach(lc, stmt->tableElts)
	{
		Node	   *elt = lfirst(lc);
		ColumnDef  *col;
		Oid			typid;
		int32		typmod;
		bool		notnull;
		ListCell   *lcc;

		if (IsA(elt, Constraint))
		{
			ConstrType	contype = ((Constraint *) elt)->contype;

			if (contype == CONSTR_NOTNULL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("columnstore tables take NOT NULL on their columns only"),
						 errhint("Write NOT NULL after the column's type.")));
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("columnstore tables do not take %s constraints",
							contype == CONSTR_PRIMARY ? "PRIMARY KEY" :
							contype == CONSTR_UNIQUE ? "UNIQUE" :
							contype == CONSTR_FOREIGN ? "FOREIGN KEY" :
							contype == CONSTR_CHECK ? "CHECK" :
							contype == CONSTR_EXCLUSION ? "EXCLUDE" : "table"),
					 errhint("Columnstore tables keep no indexes and check NOT NULL only.")));
		}
		if (!IsA(elt, ColumnDef))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("columnstore tables take column definitions and LIKE only")));
		col = (ColumnDef *) elt;
		typenameTypeIdAndMod(NULL, col->typeName, &typid, &typmod);
		notnull = col->is_not_null;
		if (col->identity)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("columnstore tables cannot have identity columns")));
		foreach(lcc, col->constraints)
		{
			Constraint *c = lfirst_node(Constraint, lcc);

			if (c->contype == CONSTR_NOTNULL)
				notnull = true;
			else if (c->contype != CONSTR_NULL && c->contype != CONSTR_DEFAULT &&
					 c->contype != CONSTR_GENERATED)
				refuse_column_constraint(col->colname, c->contype);
		}
		if (!first)
			appendStringInfoChar(&req, ',');
		first = false;
		appendStringInfoString(&req, "{\"name\":");
		escape_json(&req, col->colname);
		{
			/* a domain is stored as its base type, named by its own name */
			int32		basemod = typmod;
			Oid			base = getBaseTypeAndTypmod(typid, &basemod);

			appendStringInfo(&req, ",\"type_oid\":%u,\"typmod\":%d,\"type_name\":", base, basemod);
		}
		escape_json(&req, format_type_with_typemod(typid, typmod));
		appendStringInfo(&req, ",\"not_null\":%s}", notnull ? "true" : "false");
	}
	appendStringInfoString(&req, "]");
	if (location != NULL)
	{
		appendStringInfoString(&req, ",\"location\":");
		escape_json(&req, location);
	}
	appendStringInfoChar(&req, '}');

	/* the foreign table first: PostgreSQL checks names and privileges */
	f->base = *stmt;
	f->base.type = T_CreateForeignTableStmt;	/* base is the node's head */
	f->base.accessMethod = NULL;
	f->base.options = NIL;
	f->servername = "mooncake";
	f->options = list_make1(makeDefElem(COLUMNSTORE_OPTION, (Node *) makeString("true"), -1));
	pstmt->commandType = CMD_UTILITY;
	pstmt->canSetTag = true;
	pstmt->utilityStmt = (Node *) f;
	pstmt->stmt_location = -1;
	pstmt->stmt_len = 0;
	mooncake_creating_columnstore = true;
	PG_TRY();
	{
		standard_ProcessUtility(pstmt, queryString, false, PROCESS_UTILITY_SUBCOMMAND,
								params, queryEnv, None_Receiver, NULL);
	}
	PG_FINALLY();
	{
		mooncake_creating_columnstore = false;
	}
	PG_END_TRY();
	CommandCounterIncrement();
	relid = RangeVarGetRelid(stmt->relation, NoLock, false);
	foreach(lc, comments)
	{
		CsLikeComment *c = lfirst(lc);

		CreateComments(relid, RelationRelationId, c->attnum, c->comment);
	}

	mooncake_get_endpoint(GetForeignServerByName("mooncake", false)->serverid, &host, &port);
	answer = mooncake_request(host, port, "columnstore_create", table, req.data);
	location = mooncake_json_field(answer, "metadata_location");	/* now the metadata file */
	if (location == NULL || location[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("the sidecar answered columnstore_create without a metadata location")));
	{
		/* removed, with its directories, if the transaction rolls back */
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
		CsVersion  *v = palloc0(sizeof(CsVersion));

		v->nest = GetCurrentTransactionNestLevel();
		v->location = pstrdup(location);
		cs_created = lappend(cs_created, v);
		MemoryContextSwitchTo(old);
		register_callbacks();
	}

	/* its catalog row, under a name no other Iceberg table has */
	mooncake_as_owner_begin(&s);
	for (;;)
	{
		char	   *name = suffix == 0 ? table : psprintf("%s_%d", table, suffix);
		Oid			argtypes[2] = {TEXTOID, TEXTOID};
		Datum		values[2] = {CStringGetTextDatum(nspname), CStringGetTextDatum(name)};

		if (SPI_execute_with_args("SELECT 1 FROM mooncake.iceberg_tables WHERE catalog_name = 'mooncake' "
								  "AND table_namespace = $1 AND table_name = $2",
								  2, argtypes, values, NULL, false, 1) == SPI_OK_SELECT &&
			SPI_processed == 0)
		{
			table = name;
			break;
		}
		suffix++;
	}
	{
		Oid			argtypes[4] = {TEXTOID, TEXTOID, TEXTOID, OIDOID};
		Datum		values[4] = {CStringGetTextDatum(nspname), CStringGetTextDatum(table),
		CStringGetTextDatum(location), ObjectIdGetDatum(relid)};

		if (SPI_execute_with_args(
			"INSERT INTO mooncake.iceberg_namespace_properties VALUES ('mooncake', $1, 'exists', 'true') "
			"ON CONFLICT DO NOTHING",
			1, argtypes, values, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not add the namespace of a columnstore table to the catalog");
		if (SPI_execute_with_args(
			"INSERT INTO mooncake.iceberg_tables (catalog_name, table_namespace, table_name, iceberg_type, "
			"metadata_location, previous_metadata_location) VALUES ('mooncake', $1, $2, 'TABLE', $3, NULL)",
			3, argtypes, values, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not add a columnstore table to the catalog");
		if (SPI_execute_with_args(
			"INSERT INTO mooncake.columnstore_relations VALUES ($4, $1, $2)",
			4, argtypes, values, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not record a columnstore table");
	}
	mooncake_as_owner_end(&s);
	CommandCounterIncrement();
	return relid;
}

/*
 * CREATE TABLE ... USING columnstore AS query: the table with the query's
 * columns, then INSERT INTO it the query (unless WITH NO DATA).
 */
static void
create_columnstore_as(CreateTableAsStmt *ctas, const char *queryString,
					  ProcessUtilityContext context, ParamListInfo params,
					  QueryEnvironment *queryEnv, QueryCompletion *qc)
{
	IntoClause *into = ctas->into;
	Query	   *query = castNode(Query, ctas->query);
	CreateStmt *create = makeNode(CreateStmt);
	ListCell   *lc;
	ListCell   *name = list_head(into->colNames);
	Oid			relid;
	uint64		rows = 0;

	if (ctas->objtype != OBJECT_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("materialized views cannot use the columnstore access method")));
	if (ctas->if_not_exists && OidIsValid(RangeVarGetRelid(into->rel, NoLock, true)))
	{
		ereport(NOTICE,
				(errcode(ERRCODE_DUPLICATE_TABLE),
				 errmsg("relation \"%s\" already exists, skipping", into->rel->relname)));
		return;
	}
	create->relation = into->rel;
	foreach(lc, query->targetList)
	{
		TargetEntry *te = lfirst_node(TargetEntry, lc);
		ColumnDef  *col;

		if (te->resjunk)
			continue;
		col = makeColumnDef(name ? strVal(lfirst(name)) : te->resname,
							exprType((Node *) te->expr), exprTypmod((Node *) te->expr),
							exprCollation((Node *) te->expr));
		create->tableElts = lappend(create->tableElts, col);
		if (name)
			name = lnext(into->colNames, name);
	}
	create->accessMethod = into->accessMethod;
	relid = create_columnstore(create, queryString, context, params, queryEnv);

	if (!into->skipData)
	{
		char	   *sql = psprintf("INSERT INTO %s %s",
								   quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
															  get_rel_name(relid)),
								   pg_get_querydef(query, false));

		SPI_connect();
		if (SPI_execute(sql, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not fill columnstore table \"%s\"", get_rel_name(relid));
		rows = SPI_processed;
		SPI_finish();
	}
	if (qc)
		SetQueryCompletion(qc, CMDTAG_SELECT, rows);
}

/*
 * ALTER TABLE of a columnstore table. PostgreSQL changes the foreign
 * table; then the sidecar writes the Iceberg table's evolved schema as a
 * new metadata file (columnstore_alter), a version of the table in the
 * transaction as a write's is (begin_write, add_version): committed with
 * it, gone with its rollback or a rolled back savepoint. Columns keep
 * their Iceberg field IDs by attnum, so no data file is rewritten for a
 * column added, dropped, renamed or widened. Iceberg v2 has no default for
 * the rows already written: a column added with a default gets it by an
 * UPDATE of every row in the same statement, as PostgreSQL's rewrite
 * would; NOT NULL (added or set) is checked against the rows as
 * PostgreSQL checks a heap table's.
 */
typedef struct CsAlter
{
	List	   *fill;			/* names of columns added with a default */
	List	   *check_not_null; /* names of columns that became NOT NULL */
} CsAlter;

static void
refuse_alter(Oid relid, const char *what, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("%s on columnstore table \"%s\" is not supported", what, get_rel_name(relid)),
			 errhint("%s", hint)));
}

/* The base type of a column type, with its typmod. */
static Oid
base_type(Oid typid, int32 *typmod)
{
	return getBaseTypeAndTypmod(typid, typmod);
}

/*
 * Can a column of type (from, frommod) change to (to, tomod) keeping every
 * stored value as it is, as Iceberg promotes types?
 */
static bool
type_change_allowed(Oid from, int32 frommod, Oid to, int32 tomod)
{
	from = base_type(from, &frommod);
	to = base_type(to, &tomod);
	if (from == to && frommod == tomod)
		return true;
	switch (from)
	{
		case INT2OID:
			return to == INT4OID || to == INT8OID;
		case INT4OID:
			return to == INT8OID;
		case FLOAT4OID:
			return to == FLOAT8OID;
		case NUMERICOID:
			if (to != NUMERICOID)
				return false;
			if (tomod < 0)
				return true;	/* unconstrained numeric holds them all */
			if (frommod < 0)
				return false;
			/* the same scale, as many digits or more */
			return ((tomod - VARHDRSZ) & 0x7ff) == ((frommod - VARHDRSZ) & 0x7ff) &&
				((tomod - VARHDRSZ) >> 16) >= ((frommod - VARHDRSZ) >> 16);
		case VARCHAROID:
			if (to == TEXTOID)
				return true;
			return to == VARCHAROID && (tomod < 0 || (frommod >= 0 && tomod >= frommod));
		case TEXTOID:
			return to == VARCHAROID && tomod < 0;
		default:
			return false;
	}
}

/* Check an ALTER TABLE of columnstore table relid before PostgreSQL runs it. */
static void
check_alter(Oid relid, AlterTableStmt *stmt, CsAlter *plan)
{
	ListCell   *lc;

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

		switch (cmd->subtype)
		{
			case AT_ChangeOwner:
			case AT_DropColumn:
			case AT_DropNotNull:
			case AT_ColumnDefault:	/* PostgreSQL's own: INSERT evaluates it */
				break;
			case AT_SetNotNull:
				plan->check_not_null = lappend(plan->check_not_null, pstrdup(cmd->name));
				break;
			case AT_AddColumn:
				{
					ColumnDef  *def = castNode(ColumnDef, cmd->def);
					ListCell   *lcc;
					bool		dflt = def->raw_default != NULL;
					bool		notnull = def->is_not_null;

					if (def->typeName != NULL && list_length(def->typeName->names) == 1 &&
						!def->typeName->pct_type)
					{
						const char *t = strVal(linitial(def->typeName->names));

						/* serial: a sequence's nextval as the default, NOT NULL */
						if (strcmp(t, "smallserial") == 0 || strcmp(t, "serial2") == 0 ||
							strcmp(t, "serial") == 0 || strcmp(t, "serial4") == 0 ||
							strcmp(t, "bigserial") == 0 || strcmp(t, "serial8") == 0)
							dflt = notnull = true;
					}
					if (!dflt && def->typeName != NULL)
					{
						/* a domain's default is the column's when it has none */
						Type		typ = LookupTypeName(NULL, def->typeName, NULL, true);

						if (typ != NULL)
						{
							dflt = get_typdefault(((Form_pg_type) GETSTRUCT(typ))->oid) != NULL;
							ReleaseSysCache(typ);
						}
					}
					if (def->identity)
						refuse_alter(relid, "ALTER TABLE ... ADD COLUMN ... GENERATED AS IDENTITY",
									 "Columnstore tables have no identity columns; use a sequence's nextval() as the default.");
					foreach(lcc, def->constraints)
					{
						Constraint *c = lfirst_node(Constraint, lcc);

						if (c->contype == CONSTR_NOTNULL)
							notnull = true;
						else if (c->contype == CONSTR_DEFAULT)
							dflt = dflt || (c->raw_expr != NULL &&
											!(IsA(c->raw_expr, A_Const) &&
											  ((A_Const *) c->raw_expr)->isnull));
						else if (c->contype == CONSTR_GENERATED || c->contype == CONSTR_IDENTITY)
							refuse_alter(relid, "ALTER TABLE ... ADD COLUMN ... GENERATED",
										 "Add a plain column and UPDATE it.");
						else if (c->contype != CONSTR_NULL)
							refuse_column_constraint(def->colname, c->contype);
					}
					if (dflt)
						plan->fill = lappend(plan->fill, pstrdup(def->colname));
					if (notnull)
						plan->check_not_null = lappend(plan->check_not_null, pstrdup(def->colname));
					break;
				}
			case AT_AlterColumnType:
				{
					ColumnDef  *def = castNode(ColumnDef, cmd->def);
					HeapTuple	tup;
					Oid			newtype;
					int32		newmod;

					if (def->raw_default != NULL)
						refuse_alter(relid, "ALTER TABLE ... ALTER COLUMN ... TYPE ... USING",
									 "Add a column of the new type, UPDATE it from the old one and drop the old one.");
					tup = SearchSysCacheAttName(relid, cmd->name);
					if (!HeapTupleIsValid(tup))
						break;	/* PostgreSQL says so */
					typenameTypeIdAndMod(NULL, def->typeName, &newtype, &newmod);
					if (!type_change_allowed(((Form_pg_attribute) GETSTRUCT(tup))->atttypid,
											 ((Form_pg_attribute) GETSTRUCT(tup))->atttypmod,
											 newtype, newmod))
						ereport(ERROR,
								(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
								 errmsg("cannot change the type of column \"%s\" of columnstore table \"%s\" from %s to %s",
										cmd->name, get_rel_name(relid),
										format_type_with_typemod(((Form_pg_attribute) GETSTRUCT(tup))->atttypid,
																 ((Form_pg_attribute) GETSTRUCT(tup))->atttypmod),
										format_type_with_typemod(newtype, newmod)),
								 errhint("The columns of a columnstore table only widen as Iceberg allows: smallint or integer to bigint, real to double precision, numeric to more digits of the same scale, varchar to a longer varchar or text. "
										 "Add a column of the new type, UPDATE it from the old one and drop the old one.")));
					ReleaseSysCache(tup);
					break;
				}
			case AT_SetAccessMethod:
				refuse_alter(relid, "ALTER TABLE ... SET ACCESS METHOD",
							 "Copy the rows into a table of the other access method with CREATE TABLE ... AS SELECT.");
				break;
			case AT_GenericOptions:
			case AT_AlterColumnGenericOptions:
				refuse_alter(relid, "ALTER TABLE ... OPTIONS", "The options of a columnstore table's foreign table are the extension's.");
				break;
			case AT_AddConstraint:
				refuse_alter(relid, "ALTER TABLE ... ADD CONSTRAINT",
							 "Columnstore tables keep no indexes and check NOT NULL only (ALTER COLUMN ... SET NOT NULL).");
				break;
			default:
				refuse_alter(relid, "this form of ALTER TABLE",
							 "Columnstore tables take ADD, DROP, RENAME and ALTER COLUMN (TYPE to a wider type, SET/DROP NOT NULL, SET/DROP DEFAULT), RENAME and OWNER TO.");
		}
	}
}

/*
 * After PostgreSQL altered the foreign table of columnstore table relid:
 * the Iceberg table's new schema, then the rows given their new columns'
 * defaults, then NOT NULL checked.
 */
static void
finish_alter(Oid relid, CsAlter *plan)
{
	CsWrite    *w;
	Relation	rel;
	TupleDesc	desc;
	StringInfoData req;
	char	   *host;
	char	   *port;
	char	   *answer;
	char	   *loc;
	char	   *qualified;
	bool		first = true;
	ListCell   *lc;
	int			i;

	CommandCounterIncrement();
	w = begin_write(relid);
	rel = relation_open(relid, NoLock);
	desc = RelationGetDescr(rel);
	begin_cs_request(&req, "columnstore_alter", ((CsVersion *) linitial(w->versions))->location);
	appendStringInfoString(&req, ",\"columns\":[");
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		int32		basemod = att->atttypmod;
		Oid			base;

		if (att->attisdropped)
			continue;
		base = base_type(att->atttypid, &basemod);
		if (!first)
			appendStringInfoChar(&req, ',');
		first = false;
		appendStringInfoString(&req, "{\"name\":");
		escape_json(&req, NameStr(att->attname));
		appendStringInfo(&req, ",\"type_oid\":%u,\"typmod\":%d,\"type_name\":", base, basemod);
		escape_json(&req, format_type_with_typemod(att->atttypid, att->atttypmod));
		appendStringInfo(&req, ",\"not_null\":%s,\"attnum\":%d}", att->attnotnull ? "true" : "false",
						 (int) att->attnum);
	}
	appendStringInfoString(&req, "]}");
	if (first)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("columnstore table \"%s\" needs at least one column", RelationGetRelationName(rel)),
				 errhint("Add a column before dropping the last one, or drop the table.")));
	qualified = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
										   RelationGetRelationName(rel));
	mooncake_get_endpoint(GetForeignTable(relid)->serverid, &host, &port);
	answer = mooncake_request(host, port, "columnstore_alter", RelationGetRelationName(rel), req.data);
	loc = mooncake_json_field(answer, "metadata_location");
	if (loc == NULL || loc[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("the sidecar answered columnstore_alter without a metadata location")));
	add_version(w, loc);
	record_files(w, answer);
	relation_close(rel, NoLock);

	if (plan->fill != NIL || plan->check_not_null != NIL)
	{
		SPI_connect();
		if (plan->fill != NIL)
		{
			/* the rows written before get the new columns' defaults */
			StringInfoData sql;

			initStringInfo(&sql);
			appendStringInfo(&sql, "UPDATE ONLY %s SET ", qualified);
			foreach(lc, plan->fill)
				appendStringInfo(&sql, "%s%s = DEFAULT", lc == list_head(plan->fill) ? "" : ", ",
								 quote_identifier(lfirst(lc)));
			if (SPI_execute(sql.data, false, 0) != SPI_OK_UPDATE)
				elog(ERROR, "could not give the rows of columnstore table \"%s\" their new columns' defaults",
					 get_rel_name(relid));
		}
		foreach(lc, plan->check_not_null)
		{
			char	   *col = lfirst(lc);

			/*
			 * Not "col IS NULL": the column is NOT NULL now, and the planner
			 * (17 and later) folds that test to false.
			 */
			if (SPI_execute(psprintf("SELECT 1 FROM ONLY %s WHERE pg_catalog.num_nulls(%s) > 0 LIMIT 1", qualified,
									 quote_identifier(col)), true, 1) != SPI_OK_SELECT)
				elog(ERROR, "could not check the rows of columnstore table \"%s\"", get_rel_name(relid));
			if (SPI_processed > 0)
				ereport(ERROR,
						(errcode(ERRCODE_NOT_NULL_VIOLATION),
						 errmsg("column \"%s\" of relation \"%s\" contains null values", col, get_rel_name(relid))));
		}
		SPI_finish();
	}
}

static void
refuse_on_columnstore(Oid relid, const char *what, const char *hint)
{
	if (OidIsValid(relid) && mooncake_is_columnstore(relid))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s on columnstore table \"%s\" is not supported", what, get_rel_name(relid)),
				 hint ? errhint("%s", hint) : 0));
}

/* The spool of a COPY FROM STDIN, read back by PostgreSQL's COPY. */
static FILE *spool_in = NULL;

static int
spool_read(void *outbuf, int minread, int maxread)
{
	size_t		n = fread(outbuf, 1, maxread, spool_in);

	if (n == 0 && ferror(spool_in))
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read the spooled COPY data: %m")));
	return (int) n;
}

/*
 * Receive a COPY FROM STDIN's data from the client, as PostgreSQL's COPY
 * does (CopyInResponse, then CopyData until CopyDone), into the file
 * path: the columns' count and the format (text) are announced.
 */
static void
spool_stdin(FILE *out, int natts)
{
	StringInfoData buf;
	StringInfoData msg;
	int			i;

	pq_beginmessage(&buf, 'G');
	pq_sendbyte(&buf, 0);
	pq_sendint16(&buf, natts);
	for (i = 0; i < natts; i++)
		pq_sendint16(&buf, 0);
	pq_endmessage(&buf);
	pq_flush();
	initStringInfo(&msg);
	for (;;)
	{
		int			mtype;
		int			maxlen;

		CHECK_FOR_INTERRUPTS();
		HOLD_CANCEL_INTERRUPTS();
		pq_startmsgread();
		mtype = pq_getbyte();
		if (mtype == EOF)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("unexpected EOF on client connection with an open transaction")));
		switch (mtype)
		{
			case 'd':
				maxlen = PQ_LARGE_MESSAGE_LIMIT;
				break;
			case 'c':
			case 'f':
			case 'H':
			case 'S':
				maxlen = PQ_SMALL_MESSAGE_LIMIT;
				break;
			default:
				ereport(ERROR,
						(errcode(ERRCODE_PROTOCOL_VIOLATION),
						 errmsg("unexpected message type 0x%02X during COPY from stdin", mtype)));
				maxlen = 0;		/* keep the compiler quiet */
		}
		resetStringInfo(&msg);
		if (pq_getmessage(&msg, maxlen))
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("unexpected EOF on client connection with an open transaction")));
		RESUME_CANCEL_INTERRUPTS();
		switch (mtype)
		{
			case 'd':
				if (msg.len > 0 && fwrite(msg.data, 1, msg.len, out) != (size_t) msg.len)
					ereport(ERROR,
							(errcode_for_file_access(),
							 errmsg("could not spool the COPY data: %m")));
				break;
			case 'c':
				pfree(msg.data);
				if (fflush(out) != 0)
					ereport(ERROR,
							(errcode_for_file_access(),
							 errmsg("could not spool the COPY data: %m")));
				return;
			case 'f':
				ereport(ERROR,
						(errcode(ERRCODE_QUERY_CANCELED),
						 errmsg("COPY from stdin failed: %s", pq_getmsgstring(&msg))));
				break;
			default:
				break;			/* Flush and Sync: ignored, as COPY does */
		}
	}
}

/*
 * COPY columnstore_table FROM 'file' or FROM STDIN in CSV or text format,
 * read by the sidecar's DuckDB (columnstore_load_file: in parallel, no
 * PostgreSQL rows), when nothing of what PostgreSQL's COPY would do is
 * left out: for a file, a plain file of the server and a role that may
 * read server files; for STDIN, the data of a client of the wire protocol,
 * first spooled to a file under pg_mooncake/tmp; UTF-8 in a UTF-8
 * database, the options both readers share, a role that may insert into
 * the whole table, the columns not given having no default. The sidecar
 * also reads only files and values in forms both readers read alike; for
 * anything else it answers "fallback" before it wrote anything: for a
 * file this returns false and PostgreSQL's COPY reads the file (rows
 * streamed as a load), raising its own errors for bad input; for STDIN,
 * whose data was consumed, PostgreSQL's COPY reads the spool. True when
 * the rows were loaded, as a new version of the table in the transaction.
 */
static bool
copy_into_columnstore(CopyStmt *stmt, const char *queryString, QueryCompletion *qc)
{
	ParseState *pstate;
	CopyFormatOptions opts;
	Relation	rel;
	Oid			relid;
	TupleDesc	desc;
	List	   *attnums;
	ListCell   *lc;
	Bitmapset  *given = NULL;
	CsWrite    *w;
	StringInfoData req;
	char	   *path;
	char	   *host;
	char	   *port;
	char	   *answer;
	char	   *loc;
	char	   *rows;
	char	   *fallback;
	bool		from_stdin;
	volatile bool loaded = true;
	FILE	   *volatile spool_out = NULL;
	static int	spools = 0;
	int			i;

	if (!stmt->is_from || stmt->is_program || stmt->relation == NULL ||
		stmt->query != NULL || stmt->whereClause != NULL)
		return false;
	from_stdin = stmt->filename == NULL;
	if (from_stdin && whereToSendOutput != DestRemote)
		return false;
	relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (!OidIsValid(relid) || !mooncake_is_columnstore(relid))
		return false;
	if (XactReadOnly || IsInParallelMode() ||
		(!from_stdin && !has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES)) ||
		pg_class_aclcheck(relid, GetUserId(), ACL_INSERT) != ACLCHECK_OK)
		return false;			/* COPY raises the error */
	pstate = make_parsestate(NULL);
	pstate->p_sourcetext = queryString;
	memset(&opts, 0, sizeof(opts));
	ProcessCopyOptions(pstate, &opts, true, stmt->options);
	if (opts.binary || opts.header_line == COPY_HEADER_MATCH ||
		opts.force_notnull != NIL || opts.force_null != NIL)
		return false;
#if PG_VERSION_NUM >= 160000
	if (opts.default_print != NULL || opts.force_notnull_all || opts.force_null_all)
		return false;
#endif
#if PG_VERSION_NUM >= 170000
	if (opts.on_error != COPY_ON_ERROR_STOP)
		return false;
#endif
	if (GetDatabaseEncoding() != PG_UTF8 ||
		(opts.file_encoding >= 0 ? opts.file_encoding : pg_get_client_encoding()) != PG_UTF8)
		return false;

	rel = table_open(relid, RowExclusiveLock);
	desc = RelationGetDescr(rel);
	attnums = CopyGetAttnums(desc, rel, stmt->attlist);
	foreach(lc, attnums)
		given = bms_add_member(given, lfirst_int(lc));
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || bms_is_member(att->attnum, given))
			continue;
		if (att->atthasdef || att->attnotnull || att->attgenerated || att->attidentity)
		{
			table_close(rel, NoLock);
			return false;
		}
	}

	if (from_stdin)
	{
		char	   *dir = psprintf("%s/pg_mooncake/tmp", DataDir);

		(void) MakePGDirectory(dir);
		path = psprintf("%s/copy-%d-%d.csv", dir, MyProcPid, ++spools);
		spool_out = AllocateFile(path, PG_BINARY_W);
		if (spool_out == NULL)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not create the COPY spool \"%s\": %m", path)));
		/* opened now: the sidecar sweeping its tmp at a restart leaves it readable */
		spool_in = AllocateFile(path, PG_BINARY_R);
		if (spool_in == NULL)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not open the COPY spool \"%s\": %m", path)));
	}
	else
	{
		path = stmt->filename;
		if (!is_absolute_path(path))
			path = psprintf("%s/%s", DataDir, path);
	}
	PG_TRY();
	{
		if (from_stdin)
		{
			spool_stdin(spool_out, list_length(attnums));
			FreeFile(spool_out);
			spool_out = NULL;
		}
		w = begin_write(relid);
		begin_cs_request(&req, "columnstore_load_file", ((CsVersion *) linitial(w->versions))->location);
		appendStringInfoString(&req, ",\"path\":");
		escape_json(&req, path);
		appendStringInfo(&req, ",\"text\":%s,\"delimiter\":", opts.csv_mode ? "false" : "true");
		escape_json(&req, opts.delim);
		if (opts.csv_mode)
		{
			appendStringInfoString(&req, ",\"quote\":");
			escape_json(&req, opts.quote);
			appendStringInfoString(&req, ",\"escape\":");
			escape_json(&req, opts.escape);
		}
		appendStringInfoString(&req, ",\"null\":");
		escape_json(&req, opts.null_print);
		appendStringInfo(&req, ",\"header\":%s,\"columns\":[", opts.header_line == COPY_HEADER_TRUE ? "true" : "false");
		foreach(lc, attnums)
		{
			Form_pg_attribute att = TupleDescAttr(desc, lfirst_int(lc) - 1);

			if (lc != list_head(attnums))
				appendStringInfoChar(&req, ',');
			appendStringInfoString(&req, "{\"name\":");
			escape_json(&req, NameStr(att->attname));
			appendStringInfoChar(&req, '}');
		}
		appendStringInfoString(&req, "]}");
		mooncake_get_endpoint(GetForeignTable(relid)->serverid, &host, &port);
		answer = mooncake_request(host, port, "columnstore_load_file", RelationGetRelationName(rel), req.data);
		fallback = mooncake_json_field(answer, "fallback");
		if (fallback != NULL && fallback[0] != '\0')
		{
			ereport(DEBUG1,
					(errmsg_internal("COPY %s FROM %s is read by PostgreSQL: %s",
									 RelationGetRelationName(rel), from_stdin ? "STDIN" : path, fallback)));
			if (!from_stdin)
				loaded = false; /* COPY reads the file */
			else
			{
				/* PostgreSQL's COPY reads the spooled data */
				ParseNamespaceItem *nsitem;
				CopyFromState cstate;
				uint64		processed;

				nsitem = addRangeTableEntryForRelation(pstate, rel, RowExclusiveLock, NULL, false, false);
#if PG_VERSION_NUM >= 160000
				nsitem->p_perminfo->requiredPerms = ACL_INSERT;
#else
				nsitem->p_rte->requiredPerms = ACL_INSERT;
#endif
				cstate = BeginCopyFrom(pstate, rel, NULL, NULL, false, spool_read, stmt->attlist, stmt->options);
				processed = CopyFrom(cstate);
				EndCopyFrom(cstate);
				if (qc)
					SetQueryCompletion(qc, CMDTAG_COPY, processed);
			}
		}
		else
		{
			loc = mooncake_json_field(answer, "metadata_location");
			if (loc == NULL || loc[0] == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_FDW_ERROR),
						 errmsg("the sidecar answered columnstore_load_file without a metadata location")));
			add_version(w, loc);
			record_files(w, answer);
			rows = mooncake_json_field(answer, "rows");
			ereport(DEBUG1,
					(errmsg_internal("COPY %s FROM %s was read by DuckDB: %s rows",
									 RelationGetRelationName(rel), from_stdin ? "STDIN" : path, rows ? rows : "0")));
			if (qc)
				SetQueryCompletion(qc, CMDTAG_COPY, rows ? strtou64(rows, NULL, 10) : 0);
		}
	}
	PG_FINALLY();
	{
		if (from_stdin)
		{
			if (spool_out != NULL)
				FreeFile(spool_out);
			if (spool_in != NULL)
				FreeFile(spool_in);
			spool_in = NULL;
			(void) unlink(path);
		}
	}
	PG_END_TRY();
	table_close(rel, NoLock);
	return loaded;
}

/* CREATE ... IF NOT EXISTS of a relation that exists: PostgreSQL's notice, and true. */
static bool
exists_skipping(CreateStmt *stmt)
{
	if (!stmt->if_not_exists || !OidIsValid(RangeVarGetRelid(stmt->relation, NoLock, true)))
		return false;
	ereport(NOTICE,
			(errcode(ERRCODE_DUPLICATE_TABLE),
			 errmsg("relation \"%s\" already exists, skipping", stmt->relation->relname)));
	return true;
}

/* The utility statement to change in place: a copy when the tree is read-only. */
static Node *
writable_utility(PlannedStmt **pstmt, bool *readOnlyTree)
{
	if (*readOnlyTree)
	{
		*pstmt = copyObject(*pstmt);
		*readOnlyTree = false;
	}
	return (*pstmt)->utilityStmt;
}

/*
 * Whether relid is a foreign table of this FDW: a mirror, a columnstore
 * table or a lake table, which statements naming a table take as one.
 */
static bool
mooncake_relation(Oid relid)
{
	ForeignDataWrapper *fdw;

	if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_FOREIGN_TABLE)
		return false;
	/* none in a database without the extension (the hook runs in all) */
	fdw = GetForeignDataWrapperByName("mooncake_fdw", true);
	return fdw != NULL && GetForeignServer(GetForeignTable(relid)->serverid)->fdwid == fdw->fdwid;
}

/* A SELECT list item: the column (or *) fields name. */
static ResTarget *
copy_target(Node *field)
{
	ColumnRef  *cr = makeNode(ColumnRef);
	ResTarget  *rt = makeNode(ResTarget);

	cr->fields = list_make1(field);
	cr->location = -1;
	rt->val = (Node *) cr;
	rt->location = -1;
	return rt;
}

static void
cs_process_utility(PlannedStmt *pstmt, const char *queryString,
				   bool readOnlyTree, ProcessUtilityContext context,
				   ParamListInfo params, QueryEnvironment *queryEnv,
				   DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;

	switch (nodeTag(parsetree))
	{
		case T_CreateStmt:
			{
				CreateStmt *stmt = (CreateStmt *) parsetree;
				const char *am = stmt->accessMethod ? stmt->accessMethod :
					(stmt->partbound == NULL ? default_table_access_method : NULL);

				/*
				 * An extension's script (ours, or any other's) makes heap
				 * tables whatever default_table_access_method a user set:
				 * a columnstore table takes no key, and the extension's
				 * own objects need PostgreSQL's tables.
				 */
				if (creating_extension && stmt->accessMethod == NULL &&
					is_columnstore_am(default_table_access_method))
				{
#if PG_VERSION_NUM < 170000
					/* before 17 a partitioned table takes no access method */
					if (stmt->partspec != NULL)
						break;
#endif
					stmt = (CreateStmt *) writable_utility(&pstmt, &readOnlyTree);
					stmt->accessMethod = pstrdup("heap");
					break;
				}
				if (is_columnstore_am(am))
				{
					if (exists_skipping(stmt))
						return;
					if (readOnlyTree)
						stmt = copyObject(stmt);
					create_columnstore(stmt, queryString, context, params, queryEnv);
					return;
				}
				break;
			}
		case T_CreateTableAsStmt:
			{
				CreateTableAsStmt *stmt = (CreateTableAsStmt *) parsetree;
				const char *am = stmt->into->accessMethod ? stmt->into->accessMethod :
					default_table_access_method;

				if (creating_extension && stmt->into->accessMethod == NULL &&
					is_columnstore_am(am))
				{
					stmt = (CreateTableAsStmt *) writable_utility(&pstmt, &readOnlyTree);
					stmt->into->accessMethod = pstrdup("heap");
					break;
				}
				if (is_columnstore_am(am))
				{
					if (readOnlyTree)
						stmt = copyObject(stmt);
					create_columnstore_as(stmt, queryString, context, params, queryEnv, qc);
					return;
				}
				break;
			}
		case T_CopyStmt:
			{
				CopyStmt   *stmt = (CopyStmt *) parsetree;

				if (!stmt->is_from && stmt->relation != NULL &&
					mooncake_relation(RangeVarGetRelid(stmt->relation, NoLock, true)))
				{
					/*
					 * COPY mirror_or_columnstore TO: PostgreSQL copies no
					 * foreign table, so it is COPY (SELECT columns FROM
					 * it) TO, which reads it as any query does.
					 */
					SelectStmt *sel = makeNode(SelectStmt);
					ListCell   *lc;

					stmt = (CopyStmt *) writable_utility(&pstmt, &readOnlyTree);
					if (stmt->attlist == NIL)
						sel->targetList = list_make1(copy_target((Node *) makeNode(A_Star)));
					foreach(lc, stmt->attlist)
						sel->targetList = lappend(sel->targetList, copy_target((Node *) makeString(strVal(lfirst(lc)))));
					sel->fromClause = list_make1(stmt->relation);
					stmt->query = (Node *) sel;
					stmt->relation = NULL;
					stmt->attlist = NIL;
					break;
				}
				if (copy_into_columnstore(stmt, queryString, qc))
					return;
				break;
			}
		case T_AlterTableStmt:
			{
				AlterTableStmt *stmt = (AlterTableStmt *) parsetree;
				ListCell   *lc;
				Oid			relid;
				CsAlter		plan = {NIL, NIL};

				foreach(lc, stmt->cmds)
				{
					AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

					if (cmd->subtype == AT_SetAccessMethod && is_columnstore_am(cmd->name))
						ereport(ERROR,
								(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
								 errmsg("ALTER TABLE ... SET ACCESS METHOD %s is not supported", cmd->name),
								 errhint("Create the columnstore table with CREATE TABLE ... USING columnstore AS SELECT.")));
				}
				relid = RangeVarGetRelid(stmt->relation, NoLock, true);
				if (!OidIsValid(relid) || !mooncake_is_columnstore(relid))
					break;
				check_alter(relid, stmt, &plan);
				if (prev_utility)
					prev_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
				else
					standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
											params, queryEnv, dest, qc);
				/* OWNER TO and a column's default leave the Iceberg table as it is */
				foreach(lc, stmt->cmds)
				{
					AlterTableType t = lfirst_node(AlterTableCmd, lc)->subtype;

					if (t != AT_ChangeOwner && t != AT_ColumnDefault)
					{
						finish_alter(relid, &plan);
						break;
					}
				}
				return;
			}
		case T_RenameStmt:
			{
				RenameStmt *stmt = (RenameStmt *) parsetree;
				Oid			relid;
				CsAlter		plan = {NIL, NIL};

				if (stmt->renameType == OBJECT_DATABASE)
				{
					mooncake_release_database(stmt->subname, "rename");
					break;
				}
				if (stmt->renameType != OBJECT_COLUMN || stmt->relation == NULL)
					break;
				relid = RangeVarGetRelid(stmt->relation, NoLock, true);
				if (!OidIsValid(relid) || !mooncake_is_columnstore(relid))
					break;
				if (prev_utility)
					prev_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
				else
					standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
											params, queryEnv, dest, qc);
				/* the column keeps its field ID under its new name */
				finish_alter(relid, &plan);
				return;
			}
		case T_CreateForeignTableStmt:
			{
				/*
				 * CREATE FOREIGN TABLE ... SERVER mooncake OPTIONS
				 * (columnstore 'true'), as pg_dump writes a columnstore
				 * table: a new columnstore table of those columns (its
				 * rows follow in COPY with pg_dump --include-foreign-data).
				 */
				CreateForeignTableStmt *stmt = (CreateForeignTableStmt *) parsetree;
				CreateStmt *create;
				ListCell   *lc;
				bool		cs = false;

				if (mooncake_creating_columnstore || strcmp(stmt->servername, "mooncake") != 0)
					break;
				foreach(lc, stmt->options)
					if (strcmp(lfirst_node(DefElem, lc)->defname, COLUMNSTORE_OPTION) == 0)
						cs = true;
				if (!cs)
					break;
				if (list_length(stmt->options) != 1 || !defGetBoolean(linitial(stmt->options)))
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("a columnstore table takes the option \"columnstore\" 'true' alone"),
							 errhint("Create it with CREATE TABLE ... USING columnstore.")));
				if (exists_skipping(&stmt->base))
					return;
				create = copyObject(&stmt->base);
				create->type = T_CreateStmt;
				create->accessMethod = NULL;
				create_columnstore(create, queryString, context, params, queryEnv);
				return;
			}
		case T_CommentStmt:
			{
				/* COMMENT ON TABLE names a mirror or columnstore table as a table */
				CommentStmt *stmt = (CommentStmt *) parsetree;

				if (stmt->objtype != OBJECT_TABLE ||
					!mooncake_relation(RangeVarGetRelid(makeRangeVarFromNameList(castNode(List, stmt->object)), NoLock, true)))
					break;
				stmt = (CommentStmt *) writable_utility(&pstmt, &readOnlyTree);
				stmt->objtype = OBJECT_FOREIGN_TABLE;
				break;
			}
		case T_LockStmt:
			{
				/*
				 * LOCK TABLE of columnstore tables: PostgreSQL locks no
				 * foreign table, so they are locked here, with LOCK's
				 * privilege rules (the others go on to PostgreSQL).
				 */
				LockStmt   *stmt = (LockStmt *) parsetree;
				List	   *rest = NIL;
				bool		any = false;
				ListCell   *lc;

				foreach(lc, stmt->relations)
				{
					RangeVar   *rv = lfirst_node(RangeVar, lc);
					Oid			relid = RangeVarGetRelid(rv, NoLock, true);
					AclMode		need;

					if (!OidIsValid(relid) || !mooncake_is_columnstore(relid))
					{
						rest = lappend(rest, rv);
						continue;
					}
					if (!any)
						RequireTransactionBlock(context == PROCESS_UTILITY_TOPLEVEL, "LOCK TABLE");
					any = true;
					if (stmt->mode == AccessShareLock)
						need = ACL_SELECT;
					else if (stmt->mode == RowExclusiveLock)
						need = ACL_INSERT | ACL_UPDATE | ACL_DELETE | ACL_TRUNCATE;
					else
						need = ACL_UPDATE | ACL_DELETE | ACL_TRUNCATE;
					if (pg_class_aclmask(relid, GetUserId(), need, ACLMASK_ANY) == 0)
						aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_FOREIGN_TABLE, rv->relname);
					if (stmt->nowait)
					{
						if (!ConditionalLockRelationOid(relid, stmt->mode))
							ereport(ERROR,
									(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
									 errmsg("could not obtain lock on relation \"%s\"", rv->relname)));
					}
					else
						LockRelationOid(relid, stmt->mode);
				}
				if (!any)
					break;
				if (rest == NIL)
					return;
				stmt = (LockStmt *) writable_utility(&pstmt, &readOnlyTree);
				stmt->relations = rest;
				break;
			}
		case T_DropdbStmt:
			mooncake_release_database(((DropdbStmt *) parsetree)->dbname, "drop");
			break;
		case T_CreatedbStmt:
			{
				ListCell   *lc;

				foreach(lc, ((CreatedbStmt *) parsetree)->options)
				{
					DefElem    *opt = lfirst_node(DefElem, lc);

					if (strcmp(opt->defname, "template") == 0 && opt->arg != NULL)
						mooncake_release_database(defGetString(opt), "template");
				}
				break;
			}
		case T_AlterDatabaseStmt:
			{
				ListCell   *lc;

				foreach(lc, ((AlterDatabaseStmt *) parsetree)->options)
				{
					DefElem    *opt = lfirst_node(DefElem, lc);

					if (strcmp(opt->defname, "tablespace") == 0)
						mooncake_release_database(((AlterDatabaseStmt *) parsetree)->dbname, "tablespace");
				}
				break;
			}
		case T_IndexStmt:
			refuse_on_columnstore(RangeVarGetRelid(((IndexStmt *) parsetree)->relation, NoLock, true),
								  "CREATE INDEX", "Columnstore tables keep no indexes: DuckDB scans them.");
			break;
		case T_CreateTrigStmt:
			refuse_on_columnstore(RangeVarGetRelid(((CreateTrigStmt *) parsetree)->relation, NoLock, true),
								  "CREATE TRIGGER", "Put the trigger on a heap table that writes the columnstore table.");
			break;
		case T_DropStmt:
			{
				DropStmt   *stmt = (DropStmt *) parsetree;
				ListCell   *lc;
				int			cs = 0;

				if (stmt->removeType == OBJECT_EXTENSION)
				{
					foreach(lc, stmt->objects)
						if (strcmp(strVal(lfirst(lc)), "pg_mooncake") == 0)
							mooncake_before_drop_extension();
					break;
				}
				if (stmt->removeType != OBJECT_TABLE)
					break;
				/* DROP TABLE of mirrors and columnstore tables drops their foreign tables */
				foreach(lc, stmt->objects)
				{
					RangeVar   *rv = makeRangeVarFromNameList(lfirst(lc));
					Oid			relid = RangeVarGetRelid(rv, NoLock, true);

					if (mooncake_relation(relid))
						cs++;
				}
				if (cs == 0)
					break;
				if (cs != list_length(stmt->objects))
				{
					/*
					 * Mirrors or columnstore tables and others: the others
					 * dropped as tables, then ours as foreign tables, in the same transaction (an error in either
					 * undoes both).
					 */
					DropStmt   *others = copyObject(stmt);
					DropStmt   *css = copyObject(stmt);
					PlannedStmt *p;

					others->objects = NIL;
					css->objects = NIL;
					css->removeType = OBJECT_FOREIGN_TABLE;
					foreach(lc, stmt->objects)
					{
						RangeVar   *rv = makeRangeVarFromNameList(lfirst(lc));
						Oid			relid = RangeVarGetRelid(rv, NoLock, true);

						if (mooncake_relation(relid))
							css->objects = lappend(css->objects, copyObject(lfirst(lc)));
						else
							others->objects = lappend(others->objects, copyObject(lfirst(lc)));
					}
					p = makeNode(PlannedStmt);
					memcpy(p, pstmt, sizeof(PlannedStmt));
					p->utilityStmt = (Node *) others;
					if (prev_utility)
						prev_utility(p, queryString, false, context, params, queryEnv, dest, qc);
					else
						standard_ProcessUtility(p, queryString, false, context, params, queryEnv, dest, qc);
					CommandCounterIncrement();
					p = makeNode(PlannedStmt);
					memcpy(p, pstmt, sizeof(PlannedStmt));
					p->utilityStmt = (Node *) css;
					pstmt = p;
					readOnlyTree = false;
					break;
				}
				stmt = (DropStmt *) writable_utility(&pstmt, &readOnlyTree);
				stmt->removeType = OBJECT_FOREIGN_TABLE;
				break;
			}
		default:
			break;
	}
	if (prev_utility)
		prev_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
}

void
mooncake_install_columnstore_hook(void)
{
	prev_utility = ProcessUtility_hook;
	ProcessUtility_hook = cs_process_utility;
}
