/*-------------------------------------------------------------------------
 *
 * pg_mooncake.h
 *		  Declarations shared by the files of the pg_mooncake extension.
 *
 * The extension is a thin layer: a foreign data wrapper whose tables are
 * Iceberg tables served by the mooncake sidecar (a separate process, started
 * and watched by our background worker), plus the SQL surface around it.
 * Everything the sidecar is asked travels over the protocol described in
 * sidecar/PROTOCOL.md; this header groups the pieces by the file that
 * implements them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_MOONCAKE_H
#define PG_MOONCAKE_H

#include "access/tupdesc.h"
#include "executor/tuptable.h"
#include "nodes/execnodes.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/pathnodes.h"

/* PostgreSQL 18 replaced pg_attribute_noreturn() by a prefix, pg_noreturn */
#if PG_VERSION_NUM >= 180000
#define MOONCAKE_NORETURN_BEGIN pg_noreturn
#define MOONCAKE_NORETURN_END
#else
#define MOONCAKE_NORETURN_BEGIN
#define MOONCAKE_NORETURN_END pg_attribute_noreturn()
#endif

/* Name of the socket file inside <DataDir>/pg_mooncake/ */
#define MOONCAKE_DIR_NAME		"pg_mooncake"
#define MOONCAKE_SOCKET_NAME	"sidecar.sock"

/* Name of the foreign server the extension script creates */
#define MOONCAKE_SERVER_NAME	"mooncake"

/* in pg_mooncake.c */
extern bool mooncake_enable_bgworker;
extern char *mooncake_sidecar_path;
extern char *mooncake_sidecar_listen;
extern char *mooncake_sidecar_secret_file;
extern char *mooncake_sidecar_ssl_cert_file;
extern char *mooncake_sidecar_ssl_key_file;
extern bool mooncake_sidecar_listen_insecure;
extern int	mooncake_sidecar_sslmode;
extern char *mooncake_sidecar_sslrootcert;

/* values of pg_mooncake.sidecar_sslmode */
typedef enum MooncakeSSLMode
{
	MOONCAKE_SSL_DISABLE,
	MOONCAKE_SSL_REQUIRE,
	MOONCAKE_SSL_VERIFY_CA,
	MOONCAKE_SSL_VERIFY_FULL
} MooncakeSSLMode;
extern int	mooncake_flush_interval;
extern int	mooncake_read_wait_timeout;
extern int	mooncake_plan_cache_time;
extern bool mooncake_explain_scan_request;
extern char *mooncake_flight_listen;
extern char *mooncake_metrics_listen;
extern char *mooncake_flight_tls_cert;
extern char *mooncake_flight_tls_key;
extern int	mooncake_flight_token_ttl;
extern int	mooncake_lake_cache_size;
extern char *mooncake_warehouse;

/* in bgworker.c */
extern void mooncake_register_supervisor(void);
extern PGDLLEXPORT void mooncake_supervisor_main(Datum main_arg);

/* in option.c */
extern void mooncake_get_endpoint(Oid serverid, char **host, char **port);
extern char *mooncake_files_json(Oid foreigntableid);
extern char *mooncake_files_target(Oid foreigntableid);
extern List *mooncake_option_paths(const char *value);
/*
 * SPI as the bootstrap superuser (privilege.c): the catalog tables are not
 * granted. search_path is pg_catalog's alone meanwhile, so that no
 * operator or function of a schema a user may create in is ever resolved.
 */
typedef struct MooncakeAsOwner
{
	Oid			saved_user;
	int			saved_sec;
	int			guc_nest;
} MooncakeAsOwner;
extern void mooncake_as_owner_begin(MooncakeAsOwner *s);
extern void mooncake_as_owner_end(MooncakeAsOwner *s);
extern int	mooncake_pin_search_path(void);
extern void mooncake_check_read_server_files(const char *verb);
extern bool mooncake_is_remote_path(const char *path);
extern void mooncake_check_read_remote(const char *path, const char *verb);
extern void mooncake_check_table_location(const char *location);
extern void mooncake_check_read_path(const char *path, const char *verb);
extern void mooncake_get_table_name(Oid foreigntableid,
									char **namespace, char **table);

/* in lake.c */
typedef struct MooncakeLakeCall
{
	const char *format;			/* parquet, csv, json, iceberg, delta */
	Oid			funcid;			/* the function called */
	List	   *paths;			/* the paths as given (char *) */
	List	   *options;		/* DefElem (String): path or paths, reader options */
} MooncakeLakeCall;

extern void mooncake_install_lake_hook(void);
extern bool mooncake_is_lake_function(Oid funcid, char **format);
extern void mooncake_lake_call_options(const char *format, FuncExpr *fexpr,
									   MooncakeLakeCall *call);
extern Oid	mooncake_lake_relation(MooncakeLakeCall *call, const char *cols);
extern char *mooncake_lake_describe(MooncakeLakeCall *call);
extern void mooncake_lake_rte_to_relation(Query *query, RangeTblEntry *rte,
										  Oid relid, int natts);

/* in lakerow.c */
extern void mooncake_install_lake_row_hook(void);
extern List *mooncake_import_foreign_schema(ImportForeignSchemaStmt *stmt, Oid serverOid);

/* pin.c: the read pin a scan request names */
extern void mooncake_append_pin(StringInfo buf, EState *estate, Oid serverid);
extern void mooncake_pin_answered(EState *estate);

/* in partition.c */
extern void mooncake_install_partition_hook(void);

/* columnstore.c */
extern void mooncake_install_columnstore_hook(void);
extern bool mooncake_is_columnstore(Oid relid);
extern bool mooncake_creating_columnstore;
extern char *mooncake_columnstore_location(Oid relid);
extern char *mooncake_columnstore_refresh(const char *query);
/* an INSERT's rows taken from a scan of the wrapper in DuckDB (fdw.c) */
typedef int64 (*MooncakeDivertFn) (ForeignScanState *node, const char *scan_request, void *arg);
extern bool mooncake_scan_feeds(PlanState *ps, TupleDesc target, int *source);
extern void mooncake_scan_divert(PlanState *ps, MooncakeDivertFn fn, void *arg);
extern void mooncake_columnstore_begin_modify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
											  List *fdw_private, int subplan_index, int eflags);
extern void mooncake_columnstore_begin_insert(ModifyTableState *mtstate, ResultRelInfo *rinfo);
extern TupleTableSlot *mooncake_columnstore_exec_insert(EState *estate, ResultRelInfo *rinfo,
														TupleTableSlot *slot, TupleTableSlot *planSlot);
extern void mooncake_columnstore_end_modify(EState *estate, ResultRelInfo *rinfo);
extern void mooncake_columnstore_truncate(List *rels, DropBehavior behavior, bool restart_seqs);
extern void mooncake_columnstore_update_targets(PlannerInfo *root, Index rtindex,
												RangeTblEntry *target_rte, Relation target_relation);
extern List *mooncake_columnstore_plan_modify(PlannerInfo *root, ModifyTable *plan,
											  Index resultRelation, int subplan_index);
extern TupleTableSlot *mooncake_columnstore_exec_update(EState *estate, ResultRelInfo *rinfo,
														TupleTableSlot *slot, TupleTableSlot *planSlot);
extern TupleTableSlot *mooncake_columnstore_exec_delete(EState *estate, ResultRelInfo *rinfo,
														TupleTableSlot *slot, TupleTableSlot *planSlot);

/* in plan.c */
typedef struct MooncakeSerializer
{
	PlannerInfo *root;			/* the query's planner state */
	Relids		relids;			/* the foreign relations Vars may read */
	List	  **params;			/* exec-time parameter expressions, appended */
	bool		aggs_ok;		/* may aggregates appear? */
} MooncakeSerializer;

extern bool mooncake_has_oracle_formats(void);
extern void mooncake_set_oracle_formats(void);
extern bool mooncake_type_needs_oracle_formats(Oid typid);
extern int	mooncake_push_oracle_formats(void);
extern int	mooncake_set_transmission_modes(void);
extern void mooncake_reset_transmission_modes(int nestlevel);
extern const char *mooncake_session_timezone(void);
extern void mooncake_append_value(StringInfo buf, Oid typid, Datum value,
								  bool isnull);
extern bool mooncake_serialize_expr(StringInfo buf, Expr *expr,
									MooncakeSerializer *cxt);
extern bool mooncake_serialize_sort(StringInfo buf, List *sortclauses,
									List *tlist, MooncakeSerializer *cxt);
extern char *mooncake_expr_json(Expr *expr, MooncakeSerializer *cxt);
extern void mooncake_serialize_column(StringInfo buf, Index rel,
									  Form_pg_attribute att);

/* in protocol.c */
typedef struct MooncakeConnection MooncakeConnection;

extern char *mooncake_socket_path(void);
extern MooncakeConnection *mooncake_connect(const char *host, const char *port,
											const char *op, const char *target);
extern MooncakeConnection *mooncake_try_connect(const char *host,
												const char *port,
												const char *op,
												const char *target);
extern void mooncake_disconnect(MooncakeConnection *conn);
extern void mooncake_send_request(MooncakeConnection *conn, const char *json);
extern void mooncake_send_frame(MooncakeConnection *conn, char type,
								const char *payload, size_t len);
extern void mooncake_check_early_answer(MooncakeConnection *conn);
extern char *mooncake_read_answer(MooncakeConnection *conn);
extern char mooncake_read_frame(MooncakeConnection *conn,
								const char **payload, uint32 *len);
MOONCAKE_NORETURN_BEGIN
extern void mooncake_protocol_violation(MooncakeConnection *conn,
										const char *detail) MOONCAKE_NORETURN_END;
extern char *mooncake_local_request(const char *op, const char *json);
extern char *mooncake_transaction_start_epoch(void);
extern void mooncake_release_database(const char *dbname, const char *what);
extern void mooncake_before_drop_extension(void);
extern char *mooncake_request(const char *host, const char *port,
							  const char *op, const char *target,
							  const char *json);
extern char *mooncake_try_request(MooncakeConnection *conn, const char *json,
								  int timeout_ms);
extern char *mooncake_json_field(const char *json, const char *field);
extern bool mooncake_json_is_valid(const char *json);
extern void mooncake_json_begin(StringInfo buf, const char *op);
extern void mooncake_json_add_string(StringInfo buf, const char *key,
									 const char *value);

/* in rowcodec.c */
typedef struct MooncakeRowDecoder MooncakeRowDecoder;

extern MooncakeRowDecoder *mooncake_row_decoder_create(const char *relname,
													   TupleDesc tupdesc,
													   int ncolumns,
													   const AttrNumber *attnums,
													   const char *payload,
													   uint32 len);
extern void mooncake_decode_row(MooncakeRowDecoder *decoder,
								 const char *frame, uint32 framelen,
								 uint32 *offset, TupleTableSlot *slot);
extern bool mooncake_decoded_tid(MooncakeRowDecoder *decoder, ItemPointer tid);

#endif							/* PG_MOONCAKE_H */
