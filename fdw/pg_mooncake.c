/*-------------------------------------------------------------------------
 *
 * pg_mooncake.c
 *		  Module initialization: configuration parameters, the registration
 *		  of the sidecar supervisor, and the utility hook of partition.c.
 *
 * The library is loaded in two ways: through shared_preload_libraries at
 * postmaster start, where it also registers the background worker that runs
 * the sidecar, and on demand by a backend that calls one of its functions
 * (CREATE EXTENSION, a query on a foreign table). The parameters are all
 * PGC_POSTMASTER: they only describe how the sidecar is started, which
 * happens once per postmaster.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "miscadmin.h"
#include "utils/guc.h"

#include "pg_mooncake.h"

PG_MODULE_MAGIC;

/* GUC variables */
bool		mooncake_enable_bgworker = true;	/* run the sidecar with CDC? */
char	   *mooncake_sidecar_path = NULL;	/* sidecar executable, "" = default */
char	   *mooncake_sidecar_listen = NULL; /* extra TCP address, "" = none */
char	   *mooncake_sidecar_secret_file = NULL;	/* TCP secret, "" = default */
char	   *mooncake_sidecar_ssl_cert_file = NULL; /* TLS of the TCP listener */
char	   *mooncake_sidecar_ssl_key_file = NULL;
bool		mooncake_sidecar_listen_insecure = false;	/* no TLS off loopback */
int			mooncake_sidecar_sslmode = MOONCAKE_SSL_DISABLE;	/* backends' TLS */
char	   *mooncake_sidecar_sslrootcert = NULL;	/* CA of verify-ca/-full */
int			mooncake_flush_interval = 10000;	/* ms between Iceberg commits */
int			mooncake_read_wait_timeout = 10000;
int			mooncake_plan_cache_time = 1000;
bool		mooncake_explain_scan_request = false;	/* for the Flight service */
char	   *mooncake_flight_listen = NULL;	/* Arrow Flight SQL address */
char	   *mooncake_flight_tls_cert = NULL;
char	   *mooncake_flight_tls_key = NULL;
char	   *mooncake_metrics_listen = NULL; /* Prometheus metrics, "" = off */
int			mooncake_lake_cache_size = 1024;	/* MB of remote objects cached */
char	   *mooncake_warehouse = NULL;	/* where new Iceberg tables go */
int			mooncake_flight_token_ttl = 3600;	/* s a Flight token lives unused */ /* ms a read waits for its session's writes */

void		_PG_init(void);

/* A warehouse is an absolute directory of the server or an s3:// prefix. */
static bool
check_warehouse(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if (strstr(*newval, "://") != NULL)
	{
		if (pg_strncasecmp(*newval, "s3://", 5) == 0 || pg_strncasecmp(*newval, "s3a://", 6) == 0 ||
			pg_strncasecmp(*newval, "s3n://", 6) == 0)
			return true;
		GUC_check_errmsg("pg_mooncake.warehouse must be an absolute path or an s3:// URL");
		return false;
	}
	if (!is_absolute_path(*newval))
	{
		GUC_check_errmsg("pg_mooncake.warehouse must be an absolute path");
		return false;
	}
	return true;
}

static const struct config_enum_entry sslmode_options[] = {
	{"disable", MOONCAKE_SSL_DISABLE, false},
	{"require", MOONCAKE_SSL_REQUIRE, false},
	{"verify-ca", MOONCAKE_SSL_VERIFY_CA, false},
	{"verify-full", MOONCAKE_SSL_VERIFY_FULL, false},
	{NULL, 0, false}
};

void
_PG_init(void)
{
	DefineCustomBoolVariable("pg_mooncake.enable_bgworker",
							 "Runs the mooncake sidecar with change data capture.",
							 "When off, the sidecar still runs but only serves "
							 "reads (no logical replication is needed).",
							 &mooncake_enable_bgworker,
							 true,
							 PGC_POSTMASTER,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("pg_mooncake.sidecar_path",
							   "Path of the mooncake-sidecar executable.",
							   "Empty means mooncake-sidecar in the directory "
							   "of the postgres executable.",
							   &mooncake_sidecar_path,
							   "",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("pg_mooncake.sidecar_listen",
							   "TCP address (host:port) the sidecar also listens on.",
							   "Empty means the sidecar listens only on its "
							   "Unix socket in the data directory.",
							   &mooncake_sidecar_listen,
							   "",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("pg_mooncake.sidecar_secret_file",
							   "File holding the secret of the sidecar's TCP listener.",
							   "Backends that reach the sidecar over TCP (server mooncake "
							   "with options host and port) send it first. Empty means "
							   "pg_mooncake/sidecar.secret in the data directory, which "
							   "the local sidecar creates when it listens on TCP.",
							   &mooncake_sidecar_secret_file,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("pg_mooncake.sidecar_ssl_cert_file",
							   "Certificate (PEM) of the sidecar's TCP listener.",
							   "With pg_mooncake.sidecar_ssl_key_file, the listener of "
							   "pg_mooncake.sidecar_listen speaks TLS. A relative path is "
							   "relative to the data directory.",
							   &mooncake_sidecar_ssl_cert_file,
							   "",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("pg_mooncake.sidecar_ssl_key_file",
							   "Private key (PEM, mode 0600) of pg_mooncake.sidecar_ssl_cert_file.",
							   NULL,
							   &mooncake_sidecar_ssl_key_file,
							   "",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomBoolVariable("pg_mooncake.sidecar_listen_insecure",
							 "Lets the sidecar listen without TLS on an address other hosts can reach.",
							 "Without TLS the secret and the rows cross the network "
							 "in clear; only for a network you trust.",
							 &mooncake_sidecar_listen_insecure,
							 false,
							 PGC_POSTMASTER,
							 GUC_SUPERUSER_ONLY,
							 NULL, NULL, NULL);

	DefineCustomEnumVariable("pg_mooncake.sidecar_sslmode",
							 "Whether backends speak TLS to a sidecar reached over TCP, and what they verify.",
							 "disable, require (TLS without verification), verify-ca "
							 "(the certificate is signed by pg_mooncake.sidecar_sslrootcert) "
							 "or verify-full (also for the server's host option), as libpq's sslmode.",
							 &mooncake_sidecar_sslmode,
							 MOONCAKE_SSL_DISABLE,
							 sslmode_options,
							 PGC_SIGHUP,
							 GUC_SUPERUSER_ONLY,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("pg_mooncake.sidecar_sslrootcert",
							   "Root certificates (PEM) that sign the sidecar's certificate.",
							   "Used by sslmode verify-ca and verify-full.",
							   &mooncake_sidecar_sslrootcert,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("mooncake.read_wait_timeout",
							"How long a query on a mirror waits for the mirror to "
							"catch up with the session's last commit.",
							"A query on a mirror sees every transaction the session "
							"committed before it; if the mirror has not applied the "
							"last one within this time, the query fails. 0 means "
							"do not wait.",
							&mooncake_read_wait_timeout,
							10000, 0, 3600 * 1000,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("mooncake.explain_scan_request",
							 "EXPLAIN shows the request a scan on a mirror sends.",
							 "Used by the Arrow Flight service, which runs that request "
							 "itself when the scan is the whole plan.",
							 &mooncake_explain_scan_request,
							 false,
							 PGC_USERSET,
							 GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("pg_mooncake.flight_listen",
							   "TCP address (host:port) of the Arrow Flight SQL service.",
							   "Empty turns the service off.",
							   &mooncake_flight_listen,
							   "127.0.0.1:8815",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("pg_mooncake.metrics_listen",
							   "TCP address (host:port) where the sidecar serves Prometheus metrics on /metrics.",
							   "Empty turns the endpoint off. It has no authentication: "
							   "keep it on a loopback or private address.",
							   &mooncake_metrics_listen,
							   "",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("pg_mooncake.flight_tls_cert",
							   "Certificate (PEM) of the Arrow Flight SQL service.",
							   "With pg_mooncake.flight_tls_key, the service speaks TLS. "
							   "A relative path is relative to the data directory.",
							   &mooncake_flight_tls_cert,
							   "",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("pg_mooncake.flight_tls_key",
							   "Private key (PEM, mode 0600) of pg_mooncake.flight_tls_cert.",
							   NULL,
							   &mooncake_flight_tls_key,
							   "",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("pg_mooncake.plan_cache_time",
							"How long a backend keeps the sidecar's answers to planning a query on mirrors.",
							"A query planned again within this time, in the same "
							"session, with the same text, TimeZone and foreign tables, "
							"is planned without asking the sidecar; its row estimates "
							"may be that much older. Altering a foreign table or "
							"committing a transaction in the session drops what is "
							"kept. 0 asks every time.",
							&mooncake_plan_cache_time,
							1000, 0, 3600 * 1000,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_mooncake.flight_token_ttl",
							"How long a bearer token of the Arrow Flight SQL service lives unused.",
							NULL,
							&mooncake_flight_token_ttl,
							3600, 1, 7 * 24 * 3600,
							PGC_POSTMASTER,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomStringVariable("pg_mooncake.warehouse",
							   "Directory or s3:// prefix where new mirrors and columnstore tables keep their Iceberg files.",
							   "Empty: pg_mooncake/warehouse in the data directory. Tables keep "
							   "the location they were made in. Takes effect when the sidecar starts.",
							   &mooncake_warehouse,
							   "",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   check_warehouse, NULL, NULL);

	DefineCustomIntVariable("pg_mooncake.lake_cache_size",
							"Size limit of the sidecar's local cache of objects read from object stores (s3:// paths).",
							"Queries fetch only the byte ranges they read; the least "
							"recently used objects leave the cache first. Takes effect "
							"when the sidecar starts.",
							&mooncake_lake_cache_size,
							1024, 16, INT_MAX / 2,
							PGC_POSTMASTER,
							GUC_UNIT_MB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_mooncake.flush_interval",
							"How often replicated changes are committed to Iceberg.",
							"Each commit makes one Iceberg snapshot per changed "
							"mirror; queries see changes before they are committed. "
							"Shorter means fresher snapshots for other engines and "
							"more small files to compact.",
							&mooncake_flush_interval,
							10000, 100, 3600 * 1000,
							PGC_POSTMASTER,
							GUC_UNIT_MS | GUC_SUPERUSER_ONLY,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("pg_mooncake");
	MarkGUCPrefixReserved("mooncake");

	/* ATTACH, DETACH, DROP and TRUNCATE of partitions of mirrored tables */
	mooncake_install_partition_hook();
	mooncake_install_columnstore_hook();

	/* the data lake functions in FROM, as foreign table scans */
	mooncake_install_lake_hook();

	if (process_shared_preload_libraries_in_progress)
		mooncake_register_supervisor();
}
