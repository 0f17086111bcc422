/*-------------------------------------------------------------------------
 *
 * status.c
 *		  SQL-callable functions that talk to the sidecar directly:
 *		  mooncake.bgworker_status() and mooncake.sidecar_request(json).
 *
 * bgworker_status() is a health check: it never raises because the
 * sidecar is down or broken, it answers false and null instead. It looks at
 * the local Unix socket only, the one the background worker's sidecar
 * listens on.
 *
 * sidecar_request() sends any non-scan request and returns the JSON answer;
 * it reaches the sidecar the server "mooncake" points to. The SQL script
 * revokes it from PUBLIC.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"

#include <sys/stat.h>

#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"

#include "pg_mooncake.h"

/* How long bgworker_status() waits for the sidecar's answer */
#define STATUS_TIMEOUT_MS	5000

PG_FUNCTION_INFO_V1(mooncake_bgworker_status);
PG_FUNCTION_INFO_V1(mooncake_sidecar_request);

/*
 * Ask the local sidecar for its status; NULL when it does not answer.
 */
static char *
query_status(void)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	MemoryContext reqcxt;
	MooncakeConnection *conn;
	char	   *answer = NULL;

	/* an error (a cancel) aborts the transaction, which closes the socket */
	reqcxt = AllocSetContextCreate(CurTransactionContext,
								   "mooncake status request",
								   ALLOCSET_SMALL_SIZES);
	MemoryContextSwitchTo(reqcxt);

	conn = mooncake_try_connect(NULL, NULL, "status", NULL);
	if (conn != NULL)
	{
		char	   *json;

		json = mooncake_try_request(conn, "{\"op\":\"status\"}",
									STATUS_TIMEOUT_MS);
		if (json != NULL)
		{
			MemoryContextSwitchTo(oldcxt);
			answer = pstrdup(json);
		}
	}

	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(reqcxt);
	return answer;
}

static bool
is_integer(const char *s)
{
	if (*s == '-')
		s++;
	if (*s == '\0')
		return false;
	return strspn(s, "0123456789") == strlen(s);
}

/*
 * mooncake.bgworker_status() returns json
 */
Datum
mooncake_bgworker_status(PG_FUNCTION_ARGS)
{
	struct stat st;
	bool		socket_exists;
	char	   *answer;
	char	   *pid = NULL;
	char	   *version = NULL;
	char	   *flight = NULL;
	char	   *metrics = NULL;
	StringInfoData buf;

	socket_exists = stat(mooncake_socket_path(), &st) == 0 &&
		S_ISSOCK(st.st_mode);
	answer = socket_exists ? query_status() : NULL;
	if (answer != NULL)
	{
		pid = mooncake_json_field(answer, "pid");
		version = mooncake_json_field(answer, "version");
		flight = mooncake_json_field(answer, "flight");
		if (flight != NULL && flight[0] == '\0')
			flight = NULL;
		metrics = mooncake_json_field(answer, "metrics");
		if (metrics != NULL && metrics[0] == '\0')
			metrics = NULL;
	}

	initStringInfo(&buf);
	appendStringInfo(&buf,
					 "{\"guc_enabled\": %s, \"socket_exists\": %s, \"socket_listening\": %s, \"pid\": ",
					 mooncake_enable_bgworker ? "true" : "false",
					 socket_exists ? "true" : "false",
					 answer != NULL ? "true" : "false");
	if (pid != NULL && is_integer(pid))
		appendStringInfoString(&buf, pid);
	else
		appendStringInfoString(&buf, "null");
	appendStringInfoString(&buf, ", \"version\": ");
	if (version != NULL)
		escape_json(&buf, version);
	else
		appendStringInfoString(&buf, "null");
	appendStringInfo(&buf, ", \"flight_listening\": %s, \"flight_address\": ",
					 flight != NULL ? "true" : "false");
	if (flight != NULL)
		escape_json(&buf, flight);
	else
		appendStringInfoString(&buf, "null");
	appendStringInfo(&buf, ", \"metrics_listening\": %s, \"metrics_address\": ",
					 metrics != NULL ? "true" : "false");
	if (metrics != NULL)
		escape_json(&buf, metrics);
	else
		appendStringInfoString(&buf, "null");
	appendStringInfoChar(&buf, '}');

	PG_RETURN_TEXT_P(cstring_to_text(buf.data));
}

/*
 * mooncake.sidecar_request(request json) returns json
 */
Datum
mooncake_sidecar_request(PG_FUNCTION_ARGS)
{
	char	   *request;
	ForeignServer *server;
	char	   *host = NULL;
	char	   *port = NULL;
	char	   *op;
	char	   *answer;

	/*
	 * Raw requests act on any mirror of any database: only superusers send
	 * them, whatever EXECUTE grants say. Users go through the checked
	 * requests of privilege.c.
	 */
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function sidecar_request"),
				 errdetail("Only superusers may send raw requests to the mooncake sidecar.")));
	request = text_to_cstring(PG_GETARG_TEXT_PP(0));
	op = mooncake_json_field(request, "op");
	if (op == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a mooncake sidecar request must be a JSON object with a field \"op\"")));
	if (strcmp(op, "scan") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("sidecar_request cannot run a scan"),
				 errhint("Query the foreign table instead.")));

	server = GetForeignServerByName(MOONCAKE_SERVER_NAME, true);
	if (server != NULL)
		mooncake_get_endpoint(server->serverid, &host, &port);

	answer = mooncake_request(host, port, op, NULL, request);
	PG_RETURN_TEXT_P(cstring_to_text(answer));
}
