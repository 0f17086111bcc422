/*-------------------------------------------------------------------------
 *
 * iceberg_meta.c
 *		  The metadata of Iceberg tables: mooncake.iceberg_request(what,
 *		  path, snapshot_id), the JSON answer of the sidecar's
 *		  iceberg_metadata request, which the SQL functions
 *		  iceberg_snapshots(path) and iceberg_metadata(path) turn into rows
 *		  (pg_mooncake--0.2.0.sql).
 *
 * The sidecar reads the table's metadata file, manifest lists and
 * manifests with sql/lake/iceberg. Reading files of the server takes what
 * iceberg_scan takes: superuser or the privileges of pg_read_server_files.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "commands/dbcommands.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "pg_mooncake.h"

PG_FUNCTION_INFO_V1(mooncake_iceberg_request);

/*
 * mooncake.iceberg_request(what text, path text, snapshot_id bigint)
 * returns jsonb: {"rows":[...]}, the snapshots ("snapshots") or the
 * manifest entries of a snapshot ("entries", the current one when
 * snapshot_id is NULL) of the Iceberg table at path (its directory or a
 * metadata file; relative to the data directory unless absolute).
 */
Datum
mooncake_iceberg_request(PG_FUNCTION_ARGS)
{
	char	   *what;
	char	   *path;
	StringInfoData request;
	ForeignServer *server;
	char	   *host = NULL;
	char	   *port = NULL;
	char	   *answer;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("what must not be NULL")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the path of an Iceberg table must not be NULL")));
	what = text_to_cstring(PG_GETARG_TEXT_PP(0));
	path = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (strcmp(what, "snapshots") != 0 && strcmp(what, "entries") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("what must be \"snapshots\" or \"entries\", not \"%s\"", what)));

	/*
	 * As iceberg_scan (and file_fdw): files of the server for trusted
	 * roles; s3:// paths also for members of mooncake_user.
	 */
	if (mooncake_is_remote_path(path))
		mooncake_check_read_remote(path, "read");
	else if (!superuser() && !has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read files of the server"),
				 errdetail("Only superusers and roles with privileges of pg_read_server_files may read Iceberg tables of the server.")));

	if (path[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the path of an Iceberg table must not be empty")));
	if (!is_absolute_path(path) && !mooncake_is_remote_path(path))
		path = psprintf("%s/%s", DataDir, path);

	initStringInfo(&request);
	appendStringInfoString(&request, "{\"op\":\"iceberg_metadata\",\"database\":");
	escape_json(&request, get_database_name(MyDatabaseId));
	appendStringInfoString(&request, ",\"what\":");
	escape_json(&request, what);
	appendStringInfoString(&request, ",\"files\":{\"format\":\"iceberg\",\"paths\":[");
	escape_json(&request, path);
	appendStringInfoString(&request, "]");
	if (!PG_ARGISNULL(2))
		appendStringInfo(&request, ",\"options\":{\"snapshot_id\":\"" INT64_FORMAT "\"}",
						 PG_GETARG_INT64(2));
	appendStringInfoString(&request, "}}");

	server = GetForeignServerByName(MOONCAKE_SERVER_NAME, true);
	if (server != NULL)
		mooncake_get_endpoint(server->serverid, &host, &port);
	answer = mooncake_request(host, port, "iceberg_metadata", NULL, request.data);

	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(answer)));
}
