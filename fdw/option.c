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
 *	column			attnum			the number of the source column a
 *									mirror's column follows
 * The wrapper and user mappings take no options.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/reloptions.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "utils/lsyscache.h"

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
	{NULL, InvalidOid}
};

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
	return false;
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

		if (value[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("value of option \"%s\" must not be empty",
							def->defname)));
	}

	if (has_host != has_port)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_DYNAMIC_PARAMETER_VALUE_NEEDED),
				 errmsg("options \"host\" and \"port\" must be given together"),
				 errhint("Without both, the sidecar is reached through its Unix socket in the data directory.")));

	PG_RETURN_VOID();
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
