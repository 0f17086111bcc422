/*-------------------------------------------------------------------------
 *
 * fdw.c
 *		  The FdwRoutine callbacks of mooncake_fdw: scans of columnstore
 *		  tables, and the joins, aggregations, orderings and limits over them
 *		  that DuckDB runs.
 *
 * Planning sends the planner's pieces to the sidecar as JSON trees
 * (plan.c) and asks which it runs ("plan"): the conditions of a scan one by
 * one, then a join of two mirrors, an aggregation, an ordering or a limit
 * whole. What it runs becomes a ForeignScan whose query the sidecar turns
 * into DuckDB SQL; the rest is evaluated here. Execution opens one
 * connection per scan on the first fetch, sends "scan" with the values of
 * the exec-time parameters and turns the answer's rows into tuples; a
 * rescan with unchanged parameters replays the rows kept, otherwise it
 * hangs up and starts over. EXPLAIN VERBOSE shows the DuckDB SQL
 * ("explain"). ANALYZE takes its sample in DuckDB.
 *
 * The tables are read-only here: writes reach them through the source
 * table and logical replication, so there are no modify callbacks.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"

#include "access/htup_details.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "catalog/pg_class.h"
#include "commands/vacuum.h"
#include "commands/dbcommands.h"
#include "commands/explain.h"
#if PG_VERSION_NUM >= 180000
#include "commands/explain_format.h"
#include "commands/explain_state.h"
#endif
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "optimizer/tlist.h"
#include "utils/selfuncs.h"
#include "utils/syscache.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"
#include "common/hashfn.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/timestamp.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "pg_mooncake.h"

/* Cost of asking the sidecar to start a scan */
#define MOONCAKE_STARTUP_COST	10.0
/* Cost of producing and shipping one row, on top of cpu_tuple_cost */
#define MOONCAKE_ROW_COST		0.001
/* Cost of DuckDB reading one row of a mirror */
#define MOONCAKE_SCAN_COST		0.0001

/* What ForeignScan.fdw_private holds, by position */
enum FdwScanPrivateIndex
{
	FdwScanPrivateQuery,		/* the query's JSON tree (String) */
	FdwScanPrivateAttnos,		/* scan tuple attributes the rows fill (IntList) */
	FdwScanPrivateTarget,		/* the Iceberg table, for messages (String) */
	FdwScanPrivateParams		/* the exec-time parameters' expressions */
};

/* What a ForeignPath's fdw_private holds: the pieces beyond its relation */
enum FdwPathPrivateIndex
{
	FdwPathPrivateOrdered,		/* ORDER BY pushed down (Integer) */
	FdwPathPrivateLimit			/* LIMIT / OFFSET pushed down (Integer) */
};

/*
 * Planner state of a foreign relation or of an aggregation over one, in
 * RelOptInfo.fdw_private.
 */
typedef struct MooncakeRelInfo
{
	Relids		relids;			/* the base relations read */
	/* a base relation */
	Index		relid;			/* its range table index */
	Oid			ftoid;			/* its foreign table */
	char	   *namespace;		/* Iceberg namespace */
	char	   *table;			/* Iceberg table name */
	char	   *files;			/* files read instead (sql/lake.Spec JSON), or NULL */
	double		table_rows;		/* rows in the table, from the sidecar */
	List	   *remote_conds;	/* RestrictInfos DuckDB evaluates (for a join:
								 * the conditions above it, in its WHERE) */
	List	   *local_conds;	/* RestrictInfos evaluated here */
	char	   *target;			/* the Iceberg tables read, for messages */
	bool		refused;		/* a join DuckDB cannot run: ignore */
	/* a join of two relations of the same server (scan_relid 0) */
	bool		joined;			/* is this a join? */
	RelOptInfo *outerrel;		/* its left side */
	RelOptInfo *innerrel;		/* its right side */
	JoinType	jointype;		/* JOIN_INNER, _LEFT, _RIGHT, _FULL, _SEMI or _ANTI */
	List	   *joinclauses;	/* the ON conditions (clauses) */
	/* an aggregation (UPPERREL_GROUP_AGG) */
	bool		grouped;		/* is this an aggregation? */
	RelOptInfo *input;			/* the base relation it aggregates */
	List	   *group_exprs;	/* GROUP BY expressions */
	List	   *tlist;			/* fdw_scan_tlist: the columns DuckDB returns
								 * (of an aggregation or a join) */
	List	   *having_remote;	/* HAVING conditions DuckDB evaluates */
	List	   *having_local;	/* HAVING conditions evaluated here */
} MooncakeRelInfo;

/* Executor state of one scan, in node->fdw_state */
typedef struct MooncakeScanState
{
	char	   *host;			/* sidecar TCP host, NULL for the socket */
	char	   *port;			/* sidecar TCP port */
	char	   *target;			/* "namespace.table", for messages */
	char	   *relname;		/* relation name, for decoding errors */
	char	   *query;			/* the query's JSON tree */
	List	   *param_exprs;	/* ExprStates of the exec-time parameters */
	List	   *param_types;	/* their type OIDs */
	int			ncolumns;		/* columns fetched */
	AttrNumber *attnums;		/* their attribute numbers */
	MemoryContext conncxt;		/* connection and decoder; reset hangs up */
	MemoryContext rowcxt;		/* values of the current row */
	MooncakeConnection *conn;	/* open connection, or NULL */
	MooncakeRowDecoder *decoder;	/* from the answer's T frame */
	const char *frame;			/* current D frame payload */
	uint32		framelen;		/* its length */
	uint32		offset;			/* next row in it */
	bool		done;			/* has the C frame arrived? */
	/* rescans without changed parameters replay the rows kept here */
	Tuplestorestate *store;		/* the rows, when rescans are expected */
	TupleTableSlot *replay_slot;	/* reads store */
	bool		store_complete; /* store holds the whole answer */
	bool		replaying;		/* rows come from store */
	/* an INSERT into a columnstore table may take the rows in DuckDB */
	MooncakeDivertFn divert;	/* tried at the first row, or NULL */
	void	   *divert_arg;
	int64		diverted;		/* rows the divert took, -1 if none */
} MooncakeScanState;

PG_FUNCTION_INFO_V1(mooncake_fdw_handler);

static char *
table_target(const char *namespace, const char *table)
{
	return psprintf("%s.%s", quote_identifier(namespace),
					quote_identifier(table));
}

static void
append_database(StringInfo buf)
{
	mooncake_json_add_string(buf, "database",
							 get_database_name(MyDatabaseId));
}

static MooncakeRelInfo *
base_info(MooncakeRelInfo *info)
{
	return info->grouped ? (MooncakeRelInfo *) info->input->fdw_private : info;
}

static bool
append_expr_list(StringInfo buf, const char *key, List *exprs,
				 MooncakeSerializer *cxt)
{
	ListCell   *lc;

	appendStringInfo(buf, ",\"%s\":[", key);
	foreach(lc, exprs)
	{
		Expr	   *expr = (Expr *) lfirst(lc);

		if (IsA(expr, RestrictInfo))
			expr = ((RestrictInfo *) expr)->clause;
		if (lc != list_head(exprs))
			appendStringInfoChar(buf, ',');
		if (!mooncake_serialize_expr(buf, expr, cxt))
			return false;
	}
	appendStringInfoChar(buf, ']');
	return true;
}

/*
 * The mirrors scan reads, as "rels" entries.
 */
static void
append_rels(StringInfo buf, MooncakeRelInfo *scan, bool first)
{
	if (scan->joined)
	{
		append_rels(buf, (MooncakeRelInfo *) scan->outerrel->fdw_private, first);
		append_rels(buf, (MooncakeRelInfo *) scan->innerrel->fdw_private, false);
		return;
	}
	if (!first)
		appendStringInfoChar(buf, ',');
	appendStringInfo(buf, "{\"id\":%u,\"oid\":%u", scan->relid, scan->ftoid);
	mooncake_json_add_string(buf, "namespace", scan->namespace);
	mooncake_json_add_string(buf, "table", scan->table);
	if (scan->files != NULL)
		appendStringInfo(buf, ",\"files\":%s", scan->files);
	appendStringInfoChar(buf, '}');
}

/*
 * The join tree of scan, a "from" item.
 */
static bool
append_from(StringInfo buf, MooncakeRelInfo *scan, MooncakeSerializer *cxt)
{
	const char *kind;

	if (!scan->joined)
	{
		appendStringInfo(buf, "{\"rel\":%u}", scan->relid);
		return true;
	}
	switch (scan->jointype)
	{
		case JOIN_INNER:
			kind = "inner";
			break;
		case JOIN_LEFT:
			kind = "left";
			break;
		case JOIN_RIGHT:
			kind = "right";
			break;
		case JOIN_FULL:
			kind = "full";
			break;
		case JOIN_SEMI:
			kind = "semi";
			break;
		case JOIN_ANTI:
			kind = "anti";
			break;
		default:
			return false;
	}
	appendStringInfo(buf, "{\"join\":\"%s\",\"left\":", kind);
	if (!append_from(buf, (MooncakeRelInfo *) scan->outerrel->fdw_private, cxt))
		return false;
	appendStringInfoString(buf, ",\"right\":");
	if (!append_from(buf, (MooncakeRelInfo *) scan->innerrel->fdw_private, cxt))
		return false;
	if (!append_expr_list(buf, "on", scan->joinclauses, cxt))
		return false;
	appendStringInfoChar(buf, '}');
	return true;
}

/*
 * The JSON tree of a query on info's relation (PROTOCOL.md, "Query trees"):
 * targets are the columns returned, where the pushed conditions, having
 * those of an aggregation; ordered and limited add the query's ORDER BY
 * and LIMIT. Exec-time parameters are appended to *params. NULL when some
 * piece has no JSON form. The caller has set the transmission modes.
 */
static char *
build_query(PlannerInfo *root, MooncakeRelInfo *info, List *targets,
			List *where, List *having, bool ordered, bool limited,
			List **params)
{
	MooncakeRelInfo *base = base_info(info);
	MooncakeSerializer cxt = {root, base->relids, params, false};
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"rels\":[");
	append_rels(&buf, base, true);
	appendStringInfoString(&buf, "],\"from\":");
	if (!append_from(&buf, base, &cxt))
		return NULL;
	if (!append_expr_list(&buf, "where", where, &cxt))
		return NULL;
	/* conditions kept here: DuckDB must not compute what they may drop */
	if (base->local_conds != NIL)
		appendStringInfoString(&buf, ",\"local_where\":true");
	cxt.aggs_ok = info->grouped;
	if (!append_expr_list(&buf, "targets", targets, &cxt))
		return NULL;
	if (info->grouped)
	{
		appendStringInfoString(&buf, ",\"grouped\":true");
		if (!append_expr_list(&buf, "group_by", info->group_exprs, &cxt) ||
			!append_expr_list(&buf, "having", having, &cxt))
			return NULL;
	}
	if (ordered)
	{
		appendStringInfoString(&buf, ",\"order_by\":");
		if (!mooncake_serialize_sort(&buf, root->parse->sortClause,
									 root->processed_tlist, &cxt))
			return NULL;
	}
	if (limited)
	{
		Query	   *parse = root->parse;

		cxt.aggs_ok = false;
		if (parse->limitCount)
		{
			appendStringInfoString(&buf, ",\"limit\":");
			if (!mooncake_serialize_expr(&buf, (Expr *) parse->limitCount, &cxt))
				return NULL;
		}
		if (parse->limitOffset)
		{
			appendStringInfoString(&buf, ",\"offset\":");
			if (!mooncake_serialize_expr(&buf, (Expr *) parse->limitOffset, &cxt))
				return NULL;
		}
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * The WAL position now: the foreign table's columns this query sees were
 * committed before it. Should the sidecar not know a column the query
 * reads (a schema change another session just committed), it waits until
 * the mirror has applied the WAL up to here and plans again.
 */
static void
append_now_lsn(StringInfo buf)
{
	appendStringInfo(buf, ",\"now_lsn\":" UINT64_FORMAT, (uint64) GetXLogInsertRecPtr());
}

/*
 * The sidecar's answers to "plan", kept for pg_mooncake.plan_cache_time: a
 * query planned again and again (psql, clients without prepared
 * statements, dashboards) asks the sidecar once in that time rather than
 * at each planning. An answer follows from the request: the query, the
 * session's TimeZone and the mirrors' columns, which the foreign tables'
 * columns follow; its row estimates may be that much older. Any relcache
 * invalidation (a foreign table altered, as when a mirror follows a schema
 * change of its source) or change of a foreign server drops every answer,
 * and an answer is not used after the session has committed anything since
 * (the sidecar plans on the mirrors as of the session's last commit).
 */
typedef struct PlanAnswer
{
	uint64		hash;			/* hash table key: of the request's key */
	char	   *key;			/* the request's key, in plan_cache_cxt */
	char	   *answer;			/* in plan_cache_cxt */
	TimestampTz at;				/* when the sidecar answered */
	XLogRecPtr	commit;			/* XactLastCommitEnd then */
} PlanAnswer;

#define PLAN_CACHE_MAX	256

static HTAB *plan_answers = NULL;
static MemoryContext plan_cache_cxt = NULL;
static bool plan_cache_callbacks = false;

static void
plan_cache_reset(void)
{
	plan_answers = NULL;
	if (plan_cache_cxt != NULL)
		MemoryContextReset(plan_cache_cxt);
}

static void
plan_cache_relcache_inval(Datum arg, Oid relid)
{
	plan_cache_reset();
}

static void
plan_cache_syscache_inval(Datum arg, int cacheid, uint32 hashvalue)
{
	plan_cache_reset();
}

/* The answer kept for key, or NULL */
static char *
plan_cache_get(const char *key, uint64 hash)
{
	PlanAnswer *e;

	if (plan_answers == NULL)
		return NULL;
	e = (PlanAnswer *) hash_search(plan_answers, &hash, HASH_FIND, NULL);
	if (e == NULL || strcmp(e->key, key) != 0 || e->commit != XactLastCommitEnd ||
		TimestampDifferenceExceeds(e->at, GetCurrentTimestamp(), mooncake_plan_cache_time))
		return NULL;
	return pstrdup(e->answer);
}

static void
plan_cache_put(const char *key, uint64 hash, const char *answer)
{
	PlanAnswer *e;
	bool		found;

	if (!plan_cache_callbacks)
	{
		CacheRegisterRelcacheCallback(plan_cache_relcache_inval, (Datum) 0);
		CacheRegisterSyscacheCallback(FOREIGNSERVEROID, plan_cache_syscache_inval, (Datum) 0);
		plan_cache_callbacks = true;
	}
	if (plan_cache_cxt == NULL)
		plan_cache_cxt = AllocSetContextCreate(TopMemoryContext, "mooncake plan answers",
											   ALLOCSET_SMALL_SIZES);
	if (plan_answers != NULL && hash_get_num_entries(plan_answers) >= PLAN_CACHE_MAX)
		plan_cache_reset();
	if (plan_answers == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(PlanAnswer);
		ctl.hcxt = plan_cache_cxt;
		plan_answers = hash_create("mooncake plan answers", 64, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	e = (PlanAnswer *) hash_search(plan_answers, &hash, HASH_ENTER, &found);
	if (found)
	{
		pfree(e->key);
		pfree(e->answer);
	}
	e->key = MemoryContextStrdup(plan_cache_cxt, key);
	e->answer = MemoryContextStrdup(plan_cache_cxt, answer);
	e->at = GetCurrentTimestamp();
	e->commit = XactLastCommitEnd;
}

/*
 * Ask the sidecar which pieces of query it runs ("plan"); returns its
 * JSON answer.
 */
static char *
ask_plan(Oid serverid, MooncakeRelInfo *info, const char *query)
{
	MooncakeRelInfo *base = base_info(info);
	StringInfoData request;
	StringInfoData key;
	uint64		hash = 0;
	char	   *host;
	char	   *port;
	char	   *answer;

	if (mooncake_plan_cache_time > 0)
	{
		initStringInfo(&key);
		appendStringInfo(&key, "%u\n%s\n%s", serverid, mooncake_session_timezone(), query);
		hash = hash_bytes_extended((const unsigned char *) key.data, key.len, 0);
		answer = plan_cache_get(key.data, hash);
		if (answer != NULL)
			return answer;
	}
	mooncake_get_endpoint(serverid, &host, &port);
	initStringInfo(&request);
	mooncake_json_begin(&request, "plan");
	append_database(&request);
	mooncake_json_add_string(&request, "timezone", mooncake_session_timezone());

	/*
	 * Planned on the mirror's columns as of this session's last commit: a
	 * schema change the session committed is applied first.
	 */
	appendStringInfo(&request, ",\"commit_lsn\":" UINT64_FORMAT ",\"wait_ms\":%d",
					 (uint64) XactLastCommitEnd, mooncake_read_wait_timeout);
	append_now_lsn(&request);
	appendStringInfo(&request, ",\"query\":%s}", query);
	answer = mooncake_request(host, port, "plan", base->target, request.data);
	if (mooncake_plan_cache_time > 0)
		plan_cache_put(key.data, hash, answer);
	return answer;
}

static bool
answer_ok(const char *answer)
{
	char	   *ok = mooncake_json_field(answer, "ok");

	return ok != NULL && strcmp(ok, "true") == 0;
}

/*
 * The flags of the answer's field (one '0' or '1' per piece sent).
 */
static char *
answer_flags(const char *answer, const char *field, int n)
{
	char	   *flags = mooncake_json_field(answer, field);

	if (flags == NULL || strlen(flags) != (size_t) n)
		mooncake_protocol_violation(NULL,
									psprintf("The answer to \"plan\" has no valid \"%s\".", field));
	return flags;
}

/*
 * The share of baserel's rows its conditions keep. PostgreSQL's own
 * estimate, except for a mirror never analyzed: its statistics are then
 * defaults, and the sidecar's estimates from the data files' column
 * bounds ("where_sel", one per candidate, -1 where unknown) serve for the
 * pushed conditions they cover.
 */
static Selectivity
where_selectivity(PlannerInfo *root, RelOptInfo *baserel, Oid relid,
				  List *candidates, const char *flags, const char *sels)
{
	HeapTuple	tp;
	bool		analyzed = true;
	Selectivity sel = 1.0;
	List	   *covered = NIL;
	List	   *rest = NIL;
	const char *p = sels;
	ListCell   *lc;
	int			i = 0;

	tp = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (HeapTupleIsValid(tp))
	{
		analyzed = ((Form_pg_class) GETSTRUCT(tp))->reltuples >= 0;
		ReleaseSysCache(tp);
	}
	if (analyzed || sels == NULL || *sels == '\0')
		return clauselist_selectivity(root, baserel->baserestrictinfo, 0,
									  JOIN_INNER, NULL);
	foreach(lc, candidates)
	{
		char	   *end;
		double		s = strtod(p, &end);

		if (end == p)
			break;				/* fewer estimates than candidates */
		p = (*end == ',') ? end + 1 : end;
		if (flags[i++] == '1' && s >= 0 && s <= 1)
		{
			sel *= s;
			covered = lappend(covered, lfirst(lc));
		}
	}
	foreach(lc, baserel->baserestrictinfo)
	{
		if (!list_member_ptr(covered, lfirst(lc)))
			rest = lappend(rest, lfirst(lc));
	}
	return sel * clauselist_selectivity(root, rest, 0, JOIN_INNER, NULL);
}

static void
mooncakeGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel,
						  Oid foreigntableid)
{
	MooncakeRelInfo *info = palloc0(sizeof(MooncakeRelInfo));
	List	   *candidates = NIL;
	List	   *scratch = NIL;
	MooncakeSerializer cxt = {root, NULL, &scratch, false};
	char	   *query;
	char	   *answer;
	char	   *rows;
	char	   *end;
	char	   *flags;
	ListCell   *lc;
	int			nest;
	int			i = 0;
	Selectivity sel;

	mooncake_get_table_name(foreigntableid, &info->namespace, &info->table);
	info->ftoid = foreigntableid;
	info->files = mooncake_files_json(foreigntableid);
	/*
	 * The scan of a columnstore table's UPDATE or DELETE returns each row's
	 * ctid, its place in the table's files (columnstore.c).
	 */
	if (info->files != NULL && root->parse->resultRelation == baserel->relid &&
		(root->parse->commandType == CMD_UPDATE || root->parse->commandType == CMD_DELETE))
		info->files = psprintf("{\"rowid\":true,%s", info->files + 1);
	info->target = info->files ? mooncake_files_target(foreigntableid)
		: table_target(info->namespace, info->table);
	info->relid = baserel->relid;
	info->relids = bms_make_singleton(baserel->relid);
	cxt.relids = info->relids;
	baserel->fdw_private = info;

	/* the conditions with a JSON form are offered to the sidecar */
	nest = mooncake_set_transmission_modes();
	foreach(lc, baserel->baserestrictinfo)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

		if (mooncake_expr_json(rinfo->clause, &cxt) != NULL)
			candidates = lappend(candidates, rinfo);
		else
			info->local_conds = lappend(info->local_conds, rinfo);
	}
	scratch = NIL;
	query = build_query(root, info, NIL, candidates, NIL, false, false, &scratch);
	mooncake_reset_transmission_modes(nest);
	if (query == NULL)
		elog(ERROR, "cannot serialize the conditions on a mooncake table");

	answer = ask_plan(baserel->serverid, info, query);
	flags = answer_flags(answer, "where", list_length(candidates));
	foreach(lc, candidates)
	{
		if (flags[i++] == '1')
			info->remote_conds = lappend(info->remote_conds, lfirst(lc));
		else
			info->local_conds = lappend(info->local_conds, lfirst(lc));
	}
	rows = mooncake_json_field(answer, "rows");
	if (rows != NULL)
		info->table_rows = strtod(rows, &end);
	if (rows == NULL || *end != '\0' || end == rows || info->table_rows < 0)
		mooncake_protocol_violation(NULL,
									"The answer to \"plan\" has no valid \"rows\".");

	baserel->tuples = info->table_rows;
	sel = where_selectivity(root, baserel, foreigntableid, candidates, flags,
							mooncake_json_field(answer, "where_sel"));
	baserel->rows = clamp_row_est(info->table_rows * sel);
}

/*
 * Costs of a scan of baserel: DuckDB reads every row, ships those passing
 * the pushed conditions, and the local ones run here.
 */
static void
base_costs(PlannerInfo *root, RelOptInfo *baserel, Cost *startup, Cost *total)
{
	MooncakeRelInfo *info = (MooncakeRelInfo *) baserel->fdw_private;
	Selectivity sel = clauselist_selectivity(root, info->remote_conds,
											 baserel->relid, JOIN_INNER, NULL);
	double		shipped = clamp_row_est(info->table_rows * sel);
	QualCost	local;

	cost_qual_eval(&local, info->local_conds, root);
	*startup = MOONCAKE_STARTUP_COST + local.startup;
	*total = *startup + info->table_rows * MOONCAKE_SCAN_COST +
		shipped * (MOONCAKE_ROW_COST + cpu_tuple_cost + local.per_tuple);
}

static ForeignPath *
make_path(PlannerInfo *root, RelOptInfo *rel, PathTarget *target, double rows,
		  Cost startup, Cost total, List *pathkeys, List *fdw_private)
{
	if (IS_JOIN_REL(rel) && target == NULL)
		return create_foreign_join_path(root, rel, NULL, rows,
#if PG_VERSION_NUM >= 180000
										0,
#endif
										startup, total, pathkeys, NULL, NULL,
#if PG_VERSION_NUM >= 170000
										NIL,
#endif
										fdw_private);
	if (IS_SIMPLE_REL(rel) && target == NULL)
		return create_foreignscan_path(root, rel, NULL, rows,
#if PG_VERSION_NUM >= 180000
									   0,
#endif
									   startup, total, pathkeys, NULL, NULL,
#if PG_VERSION_NUM >= 170000
									   NIL,
#endif
									   fdw_private);
	return create_foreign_upper_path(root, rel, target, rows,
#if PG_VERSION_NUM >= 180000
									 0,
#endif
									 startup, total, pathkeys, NULL,
#if PG_VERSION_NUM >= 170000
									 NIL,
#endif
									 fdw_private);
}

static void
mooncakeGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel,
						Oid foreigntableid)
{
	Cost		startup;
	Cost		total;

	base_costs(root, baserel, &startup, &total);
	add_path(baserel, (Path *) make_path(root, baserel, NULL, baserel->rows,
										 startup, total, NIL, NIL));
}

/*
 * Costs of a join run in DuckDB: both sides read, the result shipped.
 */
static void
join_costs(RelOptInfo *joinrel, Cost *startup, Cost *total)
{
	MooncakeRelInfo *info = (MooncakeRelInfo *) joinrel->fdw_private;

	*startup = MOONCAKE_STARTUP_COST;
	*total = *startup + info->table_rows * MOONCAKE_SCAN_COST +
		joinrel->rows * (MOONCAKE_ROW_COST + cpu_tuple_cost);
}

/*
 * A join of two relations of a mooncake server runs in DuckDB when every
 * condition of both sides and of the join does. The conditions of a side
 * that the join may null-extend go into the ON clause (they filter that
 * side before the join), those of a preserved side and those above the
 * join into the WHERE clause. A full join is pushed only when neither side
 * has conditions of its own. Semi and anti joins (EXISTS, NOT EXISTS) run as
 * DuckDB's SEMI and ANTI joins, the inner side's conditions in their ON.
 */
static void
mooncakeGetForeignJoinPaths(PlannerInfo *root, RelOptInfo *joinrel,
							RelOptInfo *outerrel, RelOptInfo *innerrel,
							JoinType jointype, JoinPathExtraData *extra)
{
	MooncakeRelInfo *outer = (MooncakeRelInfo *) outerrel->fdw_private;
	MooncakeRelInfo *inner = (MooncakeRelInfo *) innerrel->fdw_private;
	MooncakeRelInfo *info;
	List	   *params = NIL;
	List	   *joinclauses = NIL;
	List	   *otherclauses = NIL;
	ListCell   *lc;
	char	   *query;
	int			nest;
	Cost		startup;
	Cost		total;

	/* considered already, with the sides the other way round */
	if (joinrel->fdw_private != NULL)
		return;
	info = palloc0(sizeof(MooncakeRelInfo));
	info->refused = true;
	joinrel->fdw_private = info;

	if (outer == NULL || inner == NULL || outer->refused || inner->refused ||
		outer->grouped || inner->grouped ||
		outer->local_conds != NIL || inner->local_conds != NIL ||
		root->rowMarks != NIL)
		return;
	if (jointype != JOIN_INNER && jointype != JOIN_LEFT &&
		jointype != JOIN_RIGHT && jointype != JOIN_FULL &&
		jointype != JOIN_SEMI && jointype != JOIN_ANTI)
		return;
	if (jointype == JOIN_FULL &&
		(outer->remote_conds != NIL || inner->remote_conds != NIL))
		return;
	/* only plain columns come out (no PlaceHolderVars of lower joins) */
	foreach(lc, joinrel->reltarget->exprs)
	{
		Var		   *var = (Var *) lfirst(lc);

		if (!IsA(var, Var))
			return;
		/* a semi or anti join returns no column of its inner side */
		if ((jointype == JOIN_SEMI || jointype == JOIN_ANTI) &&
			bms_is_member(var->varno, innerrel->relids))
			return;
	}

	info->joined = true;
	info->outerrel = outerrel;
	info->innerrel = innerrel;
	info->jointype = jointype;
	info->relids = joinrel->relids;
	info->table_rows = outer->table_rows + inner->table_rows;
	info->target = psprintf("%s, %s", outer->target, inner->target);

	if (jointype == JOIN_SEMI)
		joinclauses = extract_actual_clauses(extra->restrictlist, false);
	else if (IS_OUTER_JOIN(jointype))
		extract_actual_join_clauses(extra->restrictlist, joinrel->relids,
									&joinclauses, &otherclauses);
	else
		otherclauses = extract_actual_clauses(extra->restrictlist, false);
	switch (jointype)
	{
		case JOIN_INNER:
			otherclauses = list_concat(otherclauses, outer->remote_conds);
			otherclauses = list_concat(otherclauses, inner->remote_conds);
			break;
		case JOIN_LEFT:
		case JOIN_SEMI:
		case JOIN_ANTI:
			joinclauses = list_concat(joinclauses, inner->remote_conds);
			otherclauses = list_concat(otherclauses, outer->remote_conds);
			break;
		case JOIN_RIGHT:
			joinclauses = list_concat(joinclauses, outer->remote_conds);
			otherclauses = list_concat(otherclauses, inner->remote_conds);
			break;
		default:
			break;
	}
	info->joinclauses = joinclauses;
	info->remote_conds = otherclauses;
	info->tlist = add_to_flat_tlist(NIL, joinrel->reltarget->exprs);

	nest = mooncake_set_transmission_modes();
	query = build_query(root, info, get_tlist_exprs(info->tlist, true),
						info->remote_conds, NIL, false, false, &params);
	mooncake_reset_transmission_modes(nest);
	if (query == NULL || !answer_ok(ask_plan(joinrel->serverid, info, query)))
		return;
	info->refused = false;

	join_costs(joinrel, &startup, &total);
	add_path(joinrel, (Path *) make_path(root, joinrel, NULL, joinrel->rows,
										 startup, total, NIL, NIL));
}

/*
 * Add expr's Vars and aggregates to *tlist; false when a Var is not a
 * grouping expression (DuckDB could not return it).
 */
static bool
add_pulled(List **tlist, Expr *expr, List *group_exprs)
{
	ListCell   *lc;
	List	   *pulled = pull_var_clause((Node *) expr,
										 PVC_INCLUDE_AGGREGATES |
										 PVC_RECURSE_PLACEHOLDERS);

	foreach(lc, pulled)
	{
		Node	   *n = lfirst(lc);

		if (IsA(n, Var) && !list_member(group_exprs, n))
			return false;
	}
	*tlist = add_to_flat_tlist(*tlist, pulled);
	return true;
}

/*
 * Aggregation over a base relation whose conditions all run in DuckDB.
 */
static void
add_grouped_path(PlannerInfo *root, RelOptInfo *input_rel,
				 RelOptInfo *grouped_rel, GroupPathExtraData *extra)
{
	MooncakeRelInfo *in = (MooncakeRelInfo *) input_rel->fdw_private;
	MooncakeRelInfo *info;
	Query	   *parse = root->parse;
	List	   *targets = grouped_rel->reltarget->exprs;
	List	   *having = (List *) extra->havingQual;
	List	   *params = NIL;
	ListCell   *lc;
	char	   *query;
	char	   *answer;
	char	   *tflags;
	char	   *hflags;
	int			nest;
	int			i;
	double		rows;
	Cost		startup;
	Cost		total;

	if (in->grouped || in->local_conds != NIL || parse->groupingSets ||
		parse->hasTargetSRFs || extra->patype != PARTITIONWISE_AGGREGATE_NONE)
		return;

	info = palloc0(sizeof(MooncakeRelInfo));
	info->grouped = true;
	info->input = input_rel;
	info->relids = in->relids;
	foreach(lc, parse->groupClause)
		info->group_exprs = lappend(info->group_exprs,
									get_sortgroupclause_expr(lfirst_node(SortGroupClause, lc),
															 root->processed_tlist));

	/* first ask with every output column and HAVING condition whole */
	nest = mooncake_set_transmission_modes();
	query = build_query(root, info, targets, in->remote_conds, having,
						false, false, &params);
	mooncake_reset_transmission_modes(nest);
	if (query == NULL)
		return;
	answer = ask_plan(input_rel->serverid, info, query);
	if (answer_ok(answer))
	{
		info->tlist = add_to_flat_tlist(NIL, targets);
		info->having_remote = having;
	}
	else
	{
		/* then with what was refused split into its columns and aggregates */
		tflags = answer_flags(answer, "targets", list_length(targets));
		hflags = answer_flags(answer, "having", list_length(having));
		i = 0;
		foreach(lc, targets)
		{
			Expr	   *expr = (Expr *) lfirst(lc);

			if (tflags[i++] == '1')
				info->tlist = add_to_flat_tlist(info->tlist, list_make1(expr));
			else if (!add_pulled(&info->tlist, expr, info->group_exprs))
				return;
		}
		i = 0;
		foreach(lc, having)
		{
			Expr	   *expr = (Expr *) lfirst(lc);

			if (hflags[i++] == '1')
				info->having_remote = lappend(info->having_remote, expr);
			else
			{
				info->having_local = lappend(info->having_local, expr);
				if (!add_pulled(&info->tlist, expr, info->group_exprs))
					return;
			}
		}
		params = NIL;
		nest = mooncake_set_transmission_modes();
		query = build_query(root, info, get_tlist_exprs(info->tlist, true),
							in->remote_conds, info->having_remote,
							false, false, &params);
		mooncake_reset_transmission_modes(nest);
		if (query == NULL || !answer_ok(ask_plan(input_rel->serverid, info, query)))
			return;
	}
	grouped_rel->fdw_private = info;

	rows = info->group_exprs == NIL ? 1 :
		estimate_num_groups(root, info->group_exprs, input_rel->rows, NULL, NULL);
	rows = clamp_row_est(rows);
	grouped_rel->rows = rows;
	startup = MOONCAKE_STARTUP_COST + in->table_rows * MOONCAKE_SCAN_COST;
	total = startup + rows * (MOONCAKE_ROW_COST + cpu_tuple_cost);
	add_path(grouped_rel, (Path *) make_path(root, grouped_rel,
											 grouped_rel->reltarget, rows,
											 startup, total, NIL, NIL));
}

/*
 * Does the sidecar run rel's query with the query's ORDER BY (ordered)
 * and LIMIT (limited) added?
 */
static bool
sidecar_runs(PlannerInfo *root, RelOptInfo *rel, bool ordered, bool limited)
{
	MooncakeRelInfo *info = (MooncakeRelInfo *) rel->fdw_private;
	MooncakeRelInfo *base = base_info(info);
	List	   *params = NIL;
	List	   *targets = info->grouped ? get_tlist_exprs(info->tlist, true) : NIL;
	char	   *query;
	int			nest;

	nest = mooncake_set_transmission_modes();
	query = build_query(root, info, targets, base->remote_conds,
						info->having_remote, ordered, limited, &params);
	mooncake_reset_transmission_modes(nest);
	return query != NULL && answer_ok(ask_plan(rel->serverid, info, query));
}

static void
rel_costs(PlannerInfo *root, RelOptInfo *rel, Cost *startup, Cost *total)
{
	MooncakeRelInfo *info = (MooncakeRelInfo *) rel->fdw_private;

	if (info->grouped)
	{
		*startup = MOONCAKE_STARTUP_COST +
			base_info(info)->table_rows * MOONCAKE_SCAN_COST;
		*total = *startup + rel->rows * (MOONCAKE_ROW_COST + cpu_tuple_cost);
	}
	else if (info->joined)
		join_costs(rel, startup, total);
	else
		base_costs(root, rel, startup, total);
}

static void
add_ordered_path(PlannerInfo *root, RelOptInfo *input_rel,
				 RelOptInfo *ordered_rel)
{
	Cost		startup;
	Cost		total;
	double		rows = input_rel->rows;

	if (root->parse->sortClause == NIL || root->sort_pathkeys == NIL ||
		!sidecar_runs(root, input_rel, true, false))
		return;
	rel_costs(root, input_rel, &startup, &total);
	/* DuckDB sorts before the first row comes */
	startup += rows * cpu_operator_cost * 0.1;
	total += rows * cpu_operator_cost * 0.1;
	add_path(ordered_rel, (Path *) make_path(root, input_rel,
											 root->upper_targets[UPPERREL_ORDERED],
											 rows, startup, total,
											 root->sort_pathkeys,
											 list_make2(makeInteger(1), makeInteger(0))));
}

static void
add_final_path(PlannerInfo *root, RelOptInfo *input_rel,
			   RelOptInfo *final_rel, FinalPathExtraData *extra)
{
	Query	   *parse = root->parse;
	RelOptInfo *rel = input_rel;
	MooncakeRelInfo *info;
	bool		ordered = false;
	double		rows;
	double		fetched;
	Cost		startup;
	Cost		total;

	if (!extra->limit_needed || parse->rowMarks || parse->hasTargetSRFs ||
		parse->limitOption != LIMIT_OPTION_COUNT)
		return;
	if (parse->sortClause != NIL)
	{
		ListCell   *lc;

		/* the ORDER BY must be pushed down too */
		rel = NULL;
		foreach(lc, input_rel->pathlist)
		{
			Path	   *path = (Path *) lfirst(lc);

			if (IsA(path, ForeignPath) && ((ForeignPath *) path)->fdw_private != NIL &&
				path->parent->fdw_private != NULL)
			{
				rel = path->parent;
				break;
			}
		}
		if (rel == NULL)
			return;
		ordered = true;
	}
	info = (MooncakeRelInfo *) rel->fdw_private;
	if (info == NULL || info->refused || info->local_conds != NIL ||
		info->having_local != NIL ||
		!sidecar_runs(root, rel, ordered, true))
		return;
	rel_costs(root, rel, &startup, &total);
	/*
	 * As a Limit node over the scan would be costed (the fraction of the
	 * rows fetched: a tenth when the count is not a constant), halved: DuckDB
	 * stops early and fewer rows cross the socket.
	 */
	rows = rel->rows;
	fetched = rows * 0.1;
	if (parse->limitCount == NULL ||
		(IsA(parse->limitCount, Const) && ((Const *) parse->limitCount)->constisnull))
		fetched = rows;
	else if (IsA(parse->limitCount, Const))
		fetched = (double) DatumGetInt64(((Const *) parse->limitCount)->constvalue);
	rows = clamp_row_est(Min(rows, fetched));
	if (parse->limitOffset && IsA(parse->limitOffset, Const) &&
		!((Const *) parse->limitOffset)->constisnull)
		fetched += (double) DatumGetInt64(((Const *) parse->limitOffset)->constvalue);
	if (rel->rows > 0 && fetched < rel->rows)
		total = startup + (total - startup) * (fetched / rel->rows);
	total = startup + (total - startup) * 0.5;
	add_path(final_rel, (Path *) make_path(root, rel,
										   root->upper_targets[UPPERREL_FINAL],
										   rows, startup, total,
										   ordered ? root->sort_pathkeys : NIL,
										   list_make2(makeInteger(ordered), makeInteger(1))));
}

static void
mooncakeGetForeignUpperPaths(PlannerInfo *root, UpperRelationKind stage,
							 RelOptInfo *input_rel, RelOptInfo *output_rel,
							 void *extra)
{
	/* the final stage finds the pushed-down ordering in input_rel's paths */
	if ((input_rel->fdw_private == NULL && stage != UPPERREL_FINAL) ||
		(input_rel->fdw_private != NULL &&
		 ((MooncakeRelInfo *) input_rel->fdw_private)->refused) ||
		output_rel->fdw_private != NULL)
		return;
	switch (stage)
	{
		case UPPERREL_GROUP_AGG:
			add_grouped_path(root, input_rel, output_rel,
							 (GroupPathExtraData *) extra);
			break;
		case UPPERREL_ORDERED:
			add_ordered_path(root, input_rel, output_rel);
			break;
		case UPPERREL_FINAL:
			add_final_path(root, input_rel, output_rel,
						   (FinalPathExtraData *) extra);
			break;
		default:
			break;
	}
}

static ForeignScan *
mooncakeGetForeignPlan(PlannerInfo *root, RelOptInfo *foreignrel,
					   Oid foreigntableid, ForeignPath *best_path,
					   List *tlist, List *scan_clauses, Plan *outer_plan)
{
	MooncakeRelInfo *info = (MooncakeRelInfo *) foreignrel->fdw_private;
	MooncakeRelInfo *base = base_info(info);
	bool		ordered = false;
	bool		limited = false;
	List	   *params = NIL;
	List	   *attnos = NIL;
	List	   *local;
	List	   *targets = NIL;
	List	   *scan_tlist = NIL;
	Index		scan_relid;
	char	   *query;
	ListCell   *lc;
	int			nest;
	int			i;

	if (best_path->fdw_private != NIL)
	{
		ordered = intVal(list_nth(best_path->fdw_private, FdwPathPrivateOrdered));
		limited = intVal(list_nth(best_path->fdw_private, FdwPathPrivateLimit));
	}

	if (IS_SIMPLE_REL(foreignrel))
	{
		Index		relid = foreignrel->relid;
		Bitmapset  *attrs = NULL;
		bool		whole_row;
		Relation	rel;
		TupleDesc	tupdesc;

		local = NIL;
		foreach(lc, scan_clauses)
		{
			RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

			if (!list_member_ptr(info->remote_conds, rinfo))
				local = lappend(local, rinfo);
		}

		/* the columns the query reads: its output and the local quals */
		pull_varattnos((Node *) foreignrel->reltarget->exprs, relid, &attrs);
		foreach(lc, local)
			pull_varattnos((Node *) lfirst_node(RestrictInfo, lc)->clause,
						   relid, &attrs);
		whole_row = bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, attrs);

		rel = table_open(foreigntableid, NoLock);
		tupdesc = RelationGetDescr(rel);
		for (i = 1; i <= tupdesc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(tupdesc, i - 1);

			if (att->attisdropped)
				continue;
			if (whole_row ||
				bms_is_member(i - FirstLowInvalidHeapAttributeNumber, attrs))
			{
				attnos = lappend_int(attnos, i);
				targets = lappend(targets,
								  makeVar(relid, i, att->atttypid, att->atttypmod,
										  att->attcollation, 0));
			}
		}
		table_close(rel, NoLock);
		if (bms_is_member(SelfItemPointerAttributeNumber - FirstLowInvalidHeapAttributeNumber, attrs))
		{
			/* the row ids of a columnstore table's UPDATE or DELETE */
			attnos = lappend_int(attnos, SelfItemPointerAttributeNumber);
			targets = lappend(targets, makeVar(relid, SelfItemPointerAttributeNumber, TIDOID, -1, InvalidOid, 0));
		}
		local = extract_actual_clauses(local, false);
		scan_relid = relid;
	}
	else
	{
		/* an aggregation or a join: the rows are fdw_scan_tlist's columns */
		scan_tlist = info->tlist;
		targets = get_tlist_exprs(scan_tlist, true);
		for (i = 1; i <= list_length(scan_tlist); i++)
			attnos = lappend_int(attnos, i);
		local = info->having_local;
		scan_relid = 0;
	}

	nest = mooncake_set_transmission_modes();
	query = build_query(root, info, targets, base->remote_conds,
						info->having_remote, ordered, limited, &params);
	mooncake_reset_transmission_modes(nest);
	if (query == NULL)
		elog(ERROR, "cannot serialize a planned mooncake query");

	return make_foreignscan(tlist,
							local,
							scan_relid,
							params,
							list_make4(makeString(query), attnos,
									   makeString(base->target),
									   copyObject(params)),
							scan_tlist,
							NIL,	/* no remote quals to recheck */
							outer_plan);
}

/*
 * A "scan" or "explain" request for the query; a scan carries the values
 * of the exec-time parameters, computed now.
 */
static char *
build_request(ForeignScanState *node, MooncakeScanState *state, const char *op)
{
	StringInfoData buf;
	bool		scan = strcmp(op, "scan") == 0;

	initStringInfo(&buf);
	mooncake_json_begin(&buf, op);
	append_database(&buf);
	mooncake_json_add_string(&buf, "timezone", mooncake_session_timezone());
	if (scan)
	{
		ExprContext *econtext = node->ss.ps.ps_ExprContext;
		ListCell   *lc;
		ListCell   *lt;
		int			nest;
		int			nparams = list_length(state->param_exprs);
		Datum	   *values = palloc(sizeof(Datum) * (nparams + 1));
		bool	   *nulls = palloc(sizeof(bool) * (nparams + 1));
		int			i = 0;

		/*
		 * Read-your-writes: the sidecar answers once it has applied this
		 * session's last commit, or fails after read_wait_timeout.
		 */
		appendStringInfo(&buf, ",\"commit_lsn\":" UINT64_FORMAT ",\"wait_ms\":%d",
						 (uint64) XactLastCommitEnd, mooncake_read_wait_timeout);
		append_now_lsn(&buf);

		/*
		 * Which moment of the mirrors the scan reads: its transaction's or
		 * its statement's (pin.c).
		 */
		mooncake_append_pin(&buf, node->ss.ps.state,
							castNode(ForeignScan, node->ss.ps.plan)->fs_server);

		/*
		 * The values are computed under the session's settings (TimeZone,
		 * DateStyle...), then written under the transmission modes.
		 */
		foreach(lc, state->param_exprs)
		{
			values[i] = ExecEvalExpr((ExprState *) lfirst(lc), econtext, &nulls[i]);
			i++;
		}
		appendStringInfoString(&buf, ",\"params\":[");
		nest = mooncake_set_transmission_modes();
		i = 0;
		foreach(lt, state->param_types)
		{
			if (i > 0)
				appendStringInfoChar(&buf, ',');
			appendStringInfo(&buf, "{\"type\":%u", lfirst_oid(lt));
			mooncake_append_value(&buf, lfirst_oid(lt), values[i], nulls[i]);
			appendStringInfoChar(&buf, '}');
			i++;
		}
		mooncake_reset_transmission_modes(nest);
		appendStringInfoChar(&buf, ']');
	}
	appendStringInfo(&buf, ",\"query\":%s}", scan ? mooncake_columnstore_refresh(state->query) : state->query);
	return buf.data;
}

static MooncakeScanState *
scan_state_create(ForeignScanState *node)
{
	ForeignScan *plan = castNode(ForeignScan, node->ss.ps.plan);
	MooncakeScanState *state = palloc0(sizeof(MooncakeScanState));
	List	   *attnos;
	ListCell   *lc;
	int			i = 0;

	state->query = strVal(list_nth(plan->fdw_private, FdwScanPrivateQuery));
	state->target = strVal(list_nth(plan->fdw_private, FdwScanPrivateTarget));
	attnos = (List *) list_nth(plan->fdw_private, FdwScanPrivateAttnos);
	mooncake_get_endpoint(plan->fs_server, &state->host, &state->port);
	state->relname = node->ss.ss_currentRelation ?
		RelationGetRelationName(node->ss.ss_currentRelation) : state->target;
	state->ncolumns = list_length(attnos);
	state->attnums = palloc(sizeof(AttrNumber) * Max(state->ncolumns, 1));
	foreach(lc, attnos)
		state->attnums[i++] = (AttrNumber) lfirst_int(lc);
	return state;
}

static void
mooncakeBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *plan = castNode(ForeignScan, node->ss.ps.plan);
	EState	   *estate = node->ss.ps.state;
	MooncakeScanState *state;
	List	   *params;
	ListCell   *lc;

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	state = scan_state_create(node);
	/*
	 * The parameters are evaluated from fdw_private's copy, not from
	 * fdw_exprs: over an aggregation (fdw_scan_tlist set), setrefs.c turns
	 * an expression of fdw_exprs that is also a grouping key into a
	 * reference to the scan tuple, which does not exist when the scan
	 * starts. fdw_exprs still tells the executor which parameters the scan
	 * depends on (when to rescan).
	 */
	params = copyObject((List *) list_nth(plan->fdw_private, FdwScanPrivateParams));
	fix_opfuncids((Node *) params);
	state->param_exprs = ExecInitExprList(params, (PlanState *) node);
	foreach(lc, params)
		state->param_types = lappend_oid(state->param_types,
										 exprType((Node *) lfirst(lc)));
	state->conncxt = AllocSetContextCreate(estate->es_query_cxt,
										   "mooncake scan connection",
										   ALLOCSET_DEFAULT_SIZES);
	state->rowcxt = AllocSetContextCreate(estate->es_query_cxt,
										  "mooncake scan row",
										  ALLOCSET_DEFAULT_SIZES);

	/*
	 * The inner side of a nested loop is rescanned once per outer row: keep
	 * the rows (up to work_mem in memory, then in a temporary file) so that
	 * a rescan with the same parameter values does not ask the sidecar again.
	 */
	if (eflags & EXEC_FLAG_REWIND)
	{
		state->store = tuplestore_begin_heap(false, false, work_mem);
		state->replay_slot =
			ExecInitExtraTupleSlot(estate,
								   node->ss.ss_ScanTupleSlot->tts_tupleDescriptor,
								   &TTSOpsMinimalTuple);
	}
	node->fdw_state = state;
}

/*
 * Connect, send the scan request and read the row description.
 */
static void
start_scan(ForeignScanState *node, MooncakeScanState *state)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(state->conncxt);
	const char *payload;
	uint32		len;
	char		type;

	char	   *request = build_request(node, state, "scan");

	state->conn = mooncake_connect(state->host, state->port, "scan",
								   state->target);
	mooncake_send_request(state->conn, request);

	type = mooncake_read_frame(state->conn, &payload, &len);
	if (type != 'T')
		mooncake_protocol_violation(state->conn,
									psprintf("Expected a row description, got a message of type %d.",
											 (int) (unsigned char) type));
	mooncake_pin_answered(node->ss.ps.state);
	state->decoder = mooncake_row_decoder_create(state->relname,
												 node->ss.ss_ScanTupleSlot->tts_tupleDescriptor,
												 state->ncolumns,
												 state->attnums,
												 payload, len);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * Forget the current answer and hang up.
 */
static void
reset_scan(MooncakeScanState *state)
{
	MemoryContextReset(state->conncxt);
	state->conn = NULL;
	state->decoder = NULL;
	state->frame = NULL;
	state->framelen = 0;
	state->offset = 0;
}

static TupleTableSlot *mooncakeIterateForeignScan(ForeignScanState *node);

/*
 * Whether ps is a scan of this wrapper that an INSERT into a table of
 * target's columns takes its rows from as they are: no condition evaluated
 * here, each output column either a column of the sidecar's answer of the
 * target attribute's type and typmod, or NULL. source[i] gets, per
 * attribute i of target, the index of its column in the answer, or -1 for
 * NULL (and a dropped attribute).
 */
bool
mooncake_scan_feeds(PlanState *ps, TupleDesc target, int *source)
{
	ForeignScanState *node;
	ForeignScan *plan;
	MooncakeScanState *state;
	ListCell   *lc;
	int			i = 0;

	if (!IsA(ps, ForeignScanState))
		return false;
	node = (ForeignScanState *) ps;
	if (node->fdwroutine == NULL ||
		node->fdwroutine->IterateForeignScan != mooncakeIterateForeignScan ||
		node->fdw_state == NULL)
		return false;
	plan = castNode(ForeignScan, ps->plan);
	state = (MooncakeScanState *) node->fdw_state;
	if (plan->scan.plan.qual != NIL || state->store != NULL)
		return false;
	foreach(lc, plan->scan.plan.targetlist)
	{
		TargetEntry *te = lfirst_node(TargetEntry, lc);
		Form_pg_attribute att;
		Node	   *expr = (Node *) te->expr;

		if (te->resjunk)
			continue;
		if (i >= target->natts)
			return false;
		att = TupleDescAttr(target, i);
		source[i] = -1;
		if (IsA(expr, Const) && ((Const *) expr)->constisnull)
		{
			i++;
			continue;
		}
		if (att->attisdropped || !IsA(expr, Var))
			return false;
		{
			Var		   *var = (Var *) expr;
			Index		scanvar = plan->fdw_scan_tlist != NIL ? INDEX_VAR : plan->scan.scanrelid;
			int			j;

			if (var->varno != scanvar || var->varattno <= 0 || var->varlevelsup != 0 ||
				var->vartype != att->atttypid || var->vartypmod != att->atttypmod)
				return false;
			for (j = 0; j < state->ncolumns; j++)
				if (state->attnums[j] == var->varattno)
					source[i] = j;
			if (source[i] < 0)
				return false;
		}
		i++;
	}
	return i == target->natts;
}

/*
 * Have fn offered the scan's request (as "scan" would send it) before its
 * first row: when fn takes the rows (it returns how many, else -1), the
 * scan returns none, and EXPLAIN ANALYZE tells how many DuckDB inserted.
 */
void
mooncake_scan_divert(PlanState *ps, MooncakeDivertFn fn, void *arg)
{
	MooncakeScanState *state = (MooncakeScanState *) ((ForeignScanState *) ps)->fdw_state;

	state->divert = fn;
	state->divert_arg = arg;
	state->diverted = -1;
}

static TupleTableSlot *
mooncakeIterateForeignScan(ForeignScanState *node)
{
	MooncakeScanState *state = (MooncakeScanState *) node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	MemoryContext oldcxt;

	ExecClearTuple(slot);
	MemoryContextReset(state->rowcxt);

	if (state->replaying)
	{
		if (tuplestore_gettupleslot(state->store, true, false,
									state->replay_slot))
			ExecCopySlot(slot, state->replay_slot);
		return slot;
	}

	if (state->divert != NULL)
	{
		MooncakeDivertFn divert = state->divert;

		state->divert = NULL;
		state->diverted = divert(node, build_request(node, state, "scan"), state->divert_arg);
		if (state->diverted >= 0)
		{
			state->done = true; /* the rows went elsewhere */
			return slot;
		}
	}
	if (state->conn == NULL && !state->done)
		start_scan(node, state);

	while (state->offset >= state->framelen)
	{
		const char *payload;
		uint32		len;
		char		type;

		if (state->done)
			return slot;

		type = mooncake_read_frame(state->conn, &payload, &len);
		if (type == 'D')
		{
			state->frame = payload;
			state->framelen = len;
			state->offset = 0;
		}
		else if (type == 'C')
		{
			reset_scan(state);
			state->done = true;
			state->store_complete = state->store != NULL;
		}
		else
			mooncake_protocol_violation(state->conn,
										psprintf("Expected rows, got a message of type %d.",
												 (int) (unsigned char) type));
	}

	oldcxt = MemoryContextSwitchTo(state->rowcxt);
	mooncake_decode_row(state->decoder, state->frame, state->framelen,
						&state->offset, slot);
	MemoryContextSwitchTo(oldcxt);

	ExecStoreVirtualTuple(slot);
	{
		ItemPointerData tid;

		if (mooncake_decoded_tid(state->decoder, &tid))
		{
			/* a heap tuple carries it, as the executor reads ctid */
			ExecMaterializeSlot(slot);
			((HeapTupleTableSlot *) slot)->tuple->t_self = tid;
			slot->tts_tid = tid;
		}
	}
	if (state->store != NULL)
		tuplestore_puttupleslot(state->store, slot);
	return slot;
}

static void
mooncakeReScanForeignScan(ForeignScanState *node)
{
	MooncakeScanState *state = (MooncakeScanState *) node->fdw_state;

	if (state == NULL)
		return;
	if (state->store_complete && node->ss.ps.chgParam == NULL)
	{
		tuplestore_rescan(state->store);
		state->replaying = true;
		return;
	}
	reset_scan(state);
	state->done = false;
	state->replaying = false;
	state->store_complete = false;
	if (state->store != NULL)
		tuplestore_clear(state->store);
}

static void
mooncakeEndForeignScan(ForeignScanState *node)
{
	MooncakeScanState *state = (MooncakeScanState *) node->fdw_state;

	if (state == NULL)
		return;
	if (state->store != NULL)
		tuplestore_end(state->store);
	MemoryContextDelete(state->conncxt);
	MemoryContextDelete(state->rowcxt);
	node->fdw_state = NULL;
}

/*
 * For the Arrow Flight service (mooncake.explain_scan_request): the scan
 * request this node would send, and how the node's output columns come
 * from the scan's columns. Flight runs the request itself and streams
 * DuckDB's Arrow when this node is the whole plan. Only when every output
 * column is a scan column as it is (no projection computed here), no
 * condition is left for PostgreSQL to check and the scan has no exec-time
 * parameters; otherwise nothing is shown and the query runs in PostgreSQL.
 */
static void
explain_scan_request(ForeignScanState *node, MooncakeScanState *state,
					 ExplainState *es)
{
	ForeignScan *plan = castNode(ForeignScan, node->ss.ps.plan);
	int			varno = plan->scan.scanrelid > 0 ? (int) plan->scan.scanrelid : INDEX_VAR;
	StringInfoData out;
	ListCell   *lc;
	bool		first = true;

	/* conditions PostgreSQL evaluates on the scan's rows, or parameters */
	if (plan->scan.plan.qual != NIL ||
		list_nth(plan->fdw_private, FdwScanPrivateParams) != NIL)
		return;
	initStringInfo(&out);
	appendStringInfoChar(&out, '[');
	foreach(lc, plan->scan.plan.targetlist)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);
		Var		   *var = (Var *) tle->expr;
		int			col = -1;
		int			i;

		if (tle->resjunk)
			continue;
		if (!IsA(var, Var) || var->varno != varno || var->varlevelsup != 0)
			return;
		for (i = 0; i < state->ncolumns; i++)
			if (state->attnums[i] == var->varattno)
				col = i;
		if (col < 0)
			return;
		if (!first)
			appendStringInfoChar(&out, ',');
		first = false;
		appendStringInfo(&out, "{\"col\":%d,\"type\":%u,\"typmod\":%d}",
						 col, var->vartype, var->vartypmod);
	}
	appendStringInfoChar(&out, ']');
	ExplainPropertyText("Mooncake Scan Request",
						build_request(node, state, "scan"), es);
	ExplainPropertyText("Mooncake Output", out.data, es);
}

static void
mooncakeExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	ForeignScan *plan = castNode(ForeignScan, node->ss.ps.plan);
	MooncakeScanState *state = scan_state_create(node);

	ExplainPropertyText("Mooncake Table", state->target, es);
	if (es->analyze && node->fdw_state != NULL &&
		((MooncakeScanState *) node->fdw_state)->divert_arg != NULL &&
		((MooncakeScanState *) node->fdw_state)->diverted >= 0)
		ExplainPropertyInteger("Rows Inserted by DuckDB", NULL,
							   ((MooncakeScanState *) node->fdw_state)->diverted, es);

	if (es->verbose)
	{
		char	   *answer;
		char	   *sql;

		answer = mooncake_request(state->host, state->port, "explain",
								  state->target,
								  build_request(node, state, "explain"));
		sql = mooncake_json_field(answer, "sql");
		if (sql == NULL)
			mooncake_protocol_violation(NULL,
										"The answer to \"explain\" has no \"sql\".");
		ExplainPropertyText("DuckDB SQL", sql, es);
	}
	if (mooncake_explain_scan_request)
		explain_scan_request(node, state, es);
	(void) plan;
}

/*
 * ANALYZE's sample: DuckDB draws targrows rows at random from the whole
 * mirror (reservoir sampling), so that PostgreSQL has the columns'
 * statistics (distinct values, most common values, histograms) to plan
 * with. A mirror has no dead rows.
 */
static int
mooncake_acquire_sample_rows(Relation relation, int elevel, HeapTuple *rows,
							 int targrows, double *totalrows,
							 double *totaldeadrows)
{
	ForeignTable *ft = GetForeignTable(RelationGetRelid(relation));
	TupleDesc	tupdesc = RelationGetDescr(relation);
	AttrNumber *attnums = palloc(sizeof(AttrNumber) * Max(tupdesc->natts, 1));
	MemoryContext rowcxt;
	MemoryContext oldcxt;
	MooncakeConnection *conn;
	MooncakeRowDecoder *decoder = NULL;
	TupleTableSlot *slot;
	StringInfoData query;
	StringInfoData request;
	char	   *namespace;
	char	   *table;
	char	   *target;
	char	   *host;
	char	   *port;
	char	   *answer;
	char	   *rowcount;
	int			ncolumns = 0;
	int			n = 0;
	int			i;
	int			nest;

	/* files of the lake are not sampled (yet): ANALYZE skips them */
	if (mooncake_files_json(RelationGetRelid(relation)) != NULL)
		return false;
	mooncake_get_table_name(RelationGetRelid(relation), &namespace, &table);
	target = table_target(namespace, table);
	mooncake_get_endpoint(ft->serverid, &host, &port);

	initStringInfo(&query);
	appendStringInfo(&query, "{\"rels\":[{\"id\":1,\"oid\":%u", RelationGetRelid(relation));
	mooncake_json_add_string(&query, "namespace", namespace);
	mooncake_json_add_string(&query, "table", table);
	appendStringInfoString(&query, "}],\"from\":{\"rel\":1},\"where\":[],\"targets\":[");
	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);

		if (att->attisdropped)
			continue;
		if (ncolumns > 0)
			appendStringInfoChar(&query, ',');
		mooncake_serialize_column(&query, 1, att);
		attnums[ncolumns++] = att->attnum;
	}
	appendStringInfo(&query, "],\"sample\":%d}", targrows);

	/* the mirror's row count */
	initStringInfo(&request);
	mooncake_json_begin(&request, "plan");
	append_database(&request);
	mooncake_json_add_string(&request, "timezone", mooncake_session_timezone());
	appendStringInfo(&request, ",\"query\":%s}", query.data);
	answer = mooncake_request(host, port, "plan", target, request.data);
	rowcount = mooncake_json_field(answer, "rows");
	*totalrows = rowcount ? strtod(rowcount, NULL) : 0;
	*totaldeadrows = 0;

	/* the sample */
	resetStringInfo(&request);
	mooncake_json_begin(&request, "scan");
	append_database(&request);
	mooncake_json_add_string(&request, "timezone", mooncake_session_timezone());
	appendStringInfo(&request, ",\"commit_lsn\":" UINT64_FORMAT ",\"wait_ms\":%d,\"params\":[]",
					 (uint64) XactLastCommitEnd, mooncake_read_wait_timeout);
	nest = mooncake_set_transmission_modes();
	appendStringInfo(&request, ",\"query\":%s}", query.data);
	mooncake_reset_transmission_modes(nest);

	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "mooncake sample row",
								   ALLOCSET_DEFAULT_SIZES);
	slot = MakeSingleTupleTableSlot(tupdesc, &TTSOpsVirtual);
	conn = mooncake_connect(host, port, "scan", target);
	mooncake_send_request(conn, request.data);
	for (;;)
	{
		const char *payload;
		uint32		len;
		uint32		offset = 0;
		char		type = mooncake_read_frame(conn, &payload, &len);

		if (type == 'C')
			break;
		if (type == 'T' && decoder == NULL)
		{
			decoder = mooncake_row_decoder_create(RelationGetRelationName(relation),
												  tupdesc, ncolumns, attnums,
												  payload, len);
			continue;
		}
		if (type != 'D' || decoder == NULL)
			mooncake_protocol_violation(conn,
										psprintf("Expected rows, got a message of type %d.",
												 (int) (unsigned char) type));
		while (offset < len)
		{
#if PG_VERSION_NUM >= 180000
			vacuum_delay_point(false);
#else
			vacuum_delay_point();
#endif
			ExecClearTuple(slot);
			MemoryContextReset(rowcxt);
			oldcxt = MemoryContextSwitchTo(rowcxt);
			mooncake_decode_row(decoder, payload, len, &offset, slot);
			MemoryContextSwitchTo(oldcxt);
			ExecStoreVirtualTuple(slot);
			if (n < targrows)
				rows[n++] = heap_form_tuple(tupdesc, slot->tts_values,
											slot->tts_isnull);
		}
	}
	mooncake_disconnect(conn);
	ExecDropSingleTupleTableSlot(slot);
	MemoryContextDelete(rowcxt);

	/* a mirror smaller than the sample is read whole */
	if (n < targrows)
		*totalrows = n;
	ereport(elevel,
			(errmsg("\"%s\": a sample of %d rows of about %.0f rows taken in DuckDB",
					RelationGetRelationName(relation), n, *totalrows)));
	return n;
}

/*
 * A foreign table whose mirror is missing, or a sidecar that does not
 * answer, makes ANALYZE skip the table with a warning (as for a foreign
 * table that cannot be analyzed) rather than fail a database-wide ANALYZE.
 */
static bool
mooncakeAnalyzeForeignTable(Relation relation, AcquireSampleRowsFunc *func,
							BlockNumber *totalpages)
{
	ForeignTable *ft = GetForeignTable(RelationGetRelid(relation));
	MooncakeConnection *conn;
	StringInfoData request;
	char	   *namespace;
	char	   *table;
	char	   *target;
	char	   *host;
	char	   *port;
	char	   *answer = NULL;

	/* files of the lake are not sampled (yet): ANALYZE skips them */
	if (mooncake_files_json(RelationGetRelid(relation)) != NULL)
		return false;
	mooncake_get_table_name(RelationGetRelid(relation), &namespace, &table);
	target = table_target(namespace, table);
	mooncake_get_endpoint(ft->serverid, &host, &port);
	initStringInfo(&request);
	mooncake_json_begin(&request, "estimate");
	append_database(&request);
	appendStringInfo(&request, ",\"foreign_table_oid\":%u", RelationGetRelid(relation));
	mooncake_json_add_string(&request, "namespace", namespace);
	mooncake_json_add_string(&request, "table", table);
	appendStringInfoChar(&request, '}');
	conn = mooncake_try_connect(host, port, "estimate", target);
	if (conn != NULL)
	{
		answer = mooncake_try_request(conn, request.data, 10000);
		mooncake_disconnect(conn);
	}
	if (answer == NULL)
		return false;			/* PostgreSQL warns that it skips the table */
	*func = mooncake_acquire_sample_rows;
	*totalpages = 1;
	return true;
}

/*
 * Mirrors are written through their source table only; columnstore tables
 * of their own take INSERT (and COPY FROM), columnstore.c.
 */
static int
mooncakeIsForeignRelUpdatable(Relation rel)
{
	if (mooncake_is_columnstore(RelationGetRelid(rel)))
		return (1 << CMD_INSERT) | (1 << CMD_UPDATE) | (1 << CMD_DELETE);
	return 0;
}

Datum
mooncake_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	routine->GetForeignRelSize = mooncakeGetForeignRelSize;
	routine->GetForeignPaths = mooncakeGetForeignPaths;
	routine->GetForeignPlan = mooncakeGetForeignPlan;
	routine->GetForeignJoinPaths = mooncakeGetForeignJoinPaths;
	routine->GetForeignUpperPaths = mooncakeGetForeignUpperPaths;
	routine->BeginForeignScan = mooncakeBeginForeignScan;
	routine->IterateForeignScan = mooncakeIterateForeignScan;
	routine->ReScanForeignScan = mooncakeReScanForeignScan;
	routine->EndForeignScan = mooncakeEndForeignScan;
	routine->ExplainForeignScan = mooncakeExplainForeignScan;
	routine->AnalyzeForeignTable = mooncakeAnalyzeForeignTable;
	routine->ImportForeignSchema = mooncake_import_foreign_schema;
	routine->IsForeignRelUpdatable = mooncakeIsForeignRelUpdatable;
	routine->BeginForeignModify = mooncake_columnstore_begin_modify;
	routine->ExecForeignInsert = mooncake_columnstore_exec_insert;
	routine->EndForeignModify = mooncake_columnstore_end_modify;
	routine->BeginForeignInsert = mooncake_columnstore_begin_insert;
	routine->EndForeignInsert = mooncake_columnstore_end_modify;
	routine->ExecForeignTruncate = mooncake_columnstore_truncate;
	routine->AddForeignUpdateTargets = mooncake_columnstore_update_targets;
	routine->PlanForeignModify = mooncake_columnstore_plan_modify;
	routine->ExecForeignUpdate = mooncake_columnstore_exec_update;
	routine->ExecForeignDelete = mooncake_columnstore_exec_delete;

	PG_RETURN_POINTER(routine);
}
