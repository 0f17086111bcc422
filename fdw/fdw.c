/*-------------------------------------------------------------------------
 *
 * fdw.c
 *		  The FdwRoutine callbacks of mooncake_fdw: plain scans of a columnstore
 *		  table with column projection.
 *
 * Planning asks the sidecar for the table's row count ("estimate"); the
 * plan carries the Iceberg table and the columns the query needs (its
 * output and its quals). All quals are evaluated here, on the rows the
 * sidecar sends back. Execution opens one connection per scan on the first
 * fetch, sends "scan" and turns the answer's rows into tuples; a rescan
 * hangs up and starts over. EXPLAIN VERBOSE shows the DuckDB SQL of the
 * scan ("explain").
 *
 * The tables are read-only here: writes reach them through the source
 * table and logical replication, so there are no modify callbacks.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"

#include "access/sysattr.h"
#include "access/table.h"
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
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "pg_mooncake.h"

/* Cost of asking the sidecar to start a scan */
#define MOONCAKE_STARTUP_COST	10.0
/* Cost of producing and shipping one row, on top of cpu_tuple_cost */
#define MOONCAKE_ROW_COST		0.001

/* What ForeignScan.fdw_private holds, by position */
enum FdwScanPrivateIndex
{
	FdwScanPrivateNamespace,	/* Iceberg namespace (String) */
	FdwScanPrivateTable,		/* Iceberg table name (String) */
	FdwScanPrivateAttnos		/* attributes to fetch, ascending (IntList) */
};

/* Planner state of one foreign relation, in baserel->fdw_private */
typedef struct MooncakeRelInfo
{
	char	   *namespace;		/* Iceberg namespace */
	char	   *table;			/* Iceberg table name */
	double		table_rows;		/* rows in the table, from the sidecar */
} MooncakeRelInfo;

/* Executor state of one scan, in node->fdw_state */
typedef struct MooncakeScanState
{
	char	   *host;			/* sidecar TCP host, NULL for the socket */
	char	   *port;			/* sidecar TCP port */
	char	   *target;			/* "namespace.table", for messages */
	char	   *request;		/* the "scan" request */
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
} MooncakeScanState;

PG_FUNCTION_INFO_V1(mooncake_fdw_handler);

static char *
table_target(const char *namespace, const char *table)
{
	return psprintf("%s.%s", quote_identifier(namespace),
					quote_identifier(table));
}

static void
append_table(StringInfo buf, const char *namespace, const char *table)
{
	mooncake_json_add_string(buf, "database",
							 get_database_name(MyDatabaseId));
	mooncake_json_add_string(buf, "namespace", namespace);
	mooncake_json_add_string(buf, "table", table);
}

/*
 * A "scan" or "explain" request for the attributes attnos of tupdesc.
 */
static char *
build_scan_request(const char *op, const char *namespace, const char *table,
				   TupleDesc tupdesc, List *attnos)
{
	StringInfoData buf;
	ListCell   *lc;
	bool		first = true;

	initStringInfo(&buf);
	mooncake_json_begin(&buf, op);
	append_table(&buf, namespace, table);
	appendStringInfoString(&buf, ",\"columns\":[");
	foreach(lc, attnos)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, lfirst_int(lc) - 1);
		int32		typmod = att->atttypmod;
		Oid			typid = getBaseTypeAndTypmod(att->atttypid, &typmod);

		/* the sidecar knows base types; a domain's checks run on decoding */
		appendStringInfoString(&buf, first ? "{\"name\":" : ",{\"name\":");
		escape_json(&buf, NameStr(att->attname));
		appendStringInfo(&buf, ",\"type_oid\":%u,\"typmod\":%d}",
						 typid, typmod);
		first = false;
	}
	appendStringInfoChar(&buf, ']');
	if (strcmp(op, "scan") == 0)
	{
		/*
		 * Read-your-writes: the sidecar answers once it has applied this
		 * session's last commit, or fails after read_wait_timeout.
		 */
		appendStringInfo(&buf, ",\"commit_lsn\":" UINT64_FORMAT ",\"wait_ms\":%d",
						 (uint64) XactLastCommitEnd, mooncake_read_wait_timeout);
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

static void
mooncakeGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel,
						  Oid foreigntableid)
{
	MooncakeRelInfo *info = palloc0(sizeof(MooncakeRelInfo));
	ForeignTable *ft = GetForeignTable(foreigntableid);
	char	   *host;
	char	   *port;
	StringInfoData request;
	char	   *answer;
	char	   *rows;
	char	   *end;
	Selectivity sel;

	mooncake_get_table_name(foreigntableid, &info->namespace, &info->table);
	mooncake_get_endpoint(ft->serverid, &host, &port);

	initStringInfo(&request);
	mooncake_json_begin(&request, "estimate");
	append_table(&request, info->namespace, info->table);
	appendStringInfoChar(&request, '}');

	answer = mooncake_request(host, port, "estimate",
							  table_target(info->namespace, info->table),
							  request.data);
	rows = mooncake_json_field(answer, "rows");
	if (rows != NULL)
		info->table_rows = strtod(rows, &end);
	if (rows == NULL || *end != '\0' || end == rows || info->table_rows < 0)
		mooncake_protocol_violation(NULL,
									"The answer to \"estimate\" has no valid \"rows\".");

	baserel->tuples = info->table_rows;
	sel = clauselist_selectivity(root, baserel->baserestrictinfo, 0,
								 JOIN_INNER, NULL);
	baserel->rows = clamp_row_est(info->table_rows * sel);
	baserel->fdw_private = info;
}

static void
mooncakeGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel,
						Oid foreigntableid)
{
	MooncakeRelInfo *info = (MooncakeRelInfo *) baserel->fdw_private;
	Cost		startup_cost;
	Cost		run_cost;
	ForeignPath *path;

	startup_cost = MOONCAKE_STARTUP_COST + baserel->baserestrictcost.startup;
	run_cost = info->table_rows *
		(MOONCAKE_ROW_COST + cpu_tuple_cost +
		 baserel->baserestrictcost.per_tuple);

	path = create_foreignscan_path(root, baserel,
								   NULL,	/* default pathtarget */
								   baserel->rows,
#if PG_VERSION_NUM >= 180000
								   0,	/* no disabled nodes */
#endif
								   startup_cost,
								   startup_cost + run_cost,
								   NIL, /* no pathkeys */
								   NULL,	/* no outer rel */
								   NULL,	/* no extra plan */
#if PG_VERSION_NUM >= 170000
								   NIL, /* no fdw_restrictinfo */
#endif
								   NIL);	/* no fdw_private */
	add_path(baserel, (Path *) path);
}

static ForeignScan *
mooncakeGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel,
					   Oid foreigntableid, ForeignPath *best_path,
					   List *tlist, List *scan_clauses, Plan *outer_plan)
{
	MooncakeRelInfo *info = (MooncakeRelInfo *) baserel->fdw_private;
	Index		relid = baserel->relid;
	Bitmapset  *attrs = NULL;
	List	   *attnos = NIL;
	bool		whole_row;
	Relation	rel;
	TupleDesc	tupdesc;
	ListCell   *lc;
	int			i;

	/* the columns the query reads: its output and the quals we run here */
	pull_varattnos((Node *) baserel->reltarget->exprs, relid, &attrs);
	foreach(lc, scan_clauses)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

		pull_varattnos((Node *) rinfo->clause, relid, &attrs);
	}
	whole_row = bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, attrs);

	rel = table_open(foreigntableid, NoLock);
	tupdesc = RelationGetDescr(rel);
	for (i = 1; i <= tupdesc->natts; i++)
	{
		if (TupleDescAttr(tupdesc, i - 1)->attisdropped)
			continue;
		if (whole_row ||
			bms_is_member(i - FirstLowInvalidHeapAttributeNumber, attrs))
			attnos = lappend_int(attnos, i);
	}
	table_close(rel, NoLock);

	/* every qual stays local */
	scan_clauses = extract_actual_clauses(scan_clauses, false);

	return make_foreignscan(tlist,
							scan_clauses,
							relid,
							NIL,	/* no expressions to evaluate */
							list_make3(makeString(info->namespace),
									   makeString(info->table),
									   attnos),
							NIL,	/* scan tuples are the relation's */
							NIL,	/* no remote quals to recheck */
							outer_plan);
}

static void
mooncakeBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *plan = castNode(ForeignScan, node->ss.ps.plan);
	EState	   *estate = node->ss.ps.state;
	Relation	rel = node->ss.ss_currentRelation;
	MooncakeScanState *state;
	char	   *namespace;
	char	   *table;
	List	   *attnos;
	ListCell   *lc;
	int			i = 0;

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	namespace = strVal(list_nth(plan->fdw_private, FdwScanPrivateNamespace));
	table = strVal(list_nth(plan->fdw_private, FdwScanPrivateTable));
	attnos = (List *) list_nth(plan->fdw_private, FdwScanPrivateAttnos);

	state = palloc0(sizeof(MooncakeScanState));
	mooncake_get_endpoint(plan->fs_server, &state->host, &state->port);
	state->target = table_target(namespace, table);
	state->request = build_scan_request("scan", namespace, table,
										RelationGetDescr(rel), attnos);
	state->ncolumns = list_length(attnos);
	state->attnums = palloc(sizeof(AttrNumber) * Max(state->ncolumns, 1));
	foreach(lc, attnos)
		state->attnums[i++] = (AttrNumber) lfirst_int(lc);

	state->conncxt = AllocSetContextCreate(estate->es_query_cxt,
										   "mooncake scan connection",
										   ALLOCSET_DEFAULT_SIZES);
	state->rowcxt = AllocSetContextCreate(estate->es_query_cxt,
										  "mooncake scan row",
										  ALLOCSET_DEFAULT_SIZES);
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

	state->conn = mooncake_connect(state->host, state->port, "scan",
								   state->target);
	mooncake_send_request(state->conn, state->request);

	type = mooncake_read_frame(state->conn, &payload, &len);
	if (type != 'T')
		mooncake_protocol_violation(state->conn,
									psprintf("Expected a row description, got a message of type %d.",
											 (int) (unsigned char) type));
	state->decoder = mooncake_row_decoder_create(RelationGetRelationName(node->ss.ss_currentRelation),
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

static TupleTableSlot *
mooncakeIterateForeignScan(ForeignScanState *node)
{
	MooncakeScanState *state = (MooncakeScanState *) node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	MemoryContext oldcxt;

	ExecClearTuple(slot);
	MemoryContextReset(state->rowcxt);

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

	return ExecStoreVirtualTuple(slot);
}

static void
mooncakeReScanForeignScan(ForeignScanState *node)
{
	MooncakeScanState *state = (MooncakeScanState *) node->fdw_state;

	if (state == NULL)
		return;
	reset_scan(state);
	state->done = false;
}

static void
mooncakeEndForeignScan(ForeignScanState *node)
{
	MooncakeScanState *state = (MooncakeScanState *) node->fdw_state;

	if (state == NULL)
		return;
	MemoryContextDelete(state->conncxt);
	MemoryContextDelete(state->rowcxt);
	node->fdw_state = NULL;
}

static void
mooncakeExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	ForeignScan *plan = castNode(ForeignScan, node->ss.ps.plan);
	char	   *namespace;
	char	   *table;
	char	   *target;

	namespace = strVal(list_nth(plan->fdw_private, FdwScanPrivateNamespace));
	table = strVal(list_nth(plan->fdw_private, FdwScanPrivateTable));
	target = table_target(namespace, table);

	ExplainPropertyText("Mooncake Table", target, es);

	if (es->verbose)
	{
		List	   *attnos = (List *) list_nth(plan->fdw_private,
											   FdwScanPrivateAttnos);
		char	   *host;
		char	   *port;
		char	   *request;
		char	   *answer;
		char	   *sql;

		mooncake_get_endpoint(plan->fs_server, &host, &port);
		request = build_scan_request("explain", namespace, table,
									 RelationGetDescr(node->ss.ss_currentRelation),
									 attnos);
		answer = mooncake_request(host, port, "explain", target, request);
		sql = mooncake_json_field(answer, "sql");
		if (sql == NULL)
			mooncake_protocol_violation(NULL,
										"The answer to \"explain\" has no \"sql\".");
		ExplainPropertyText("DuckDB SQL", sql, es);
	}
}

/*
 * ANALYZE cannot sample the table here; the sidecar knows its statistics.
 */
static bool
mooncakeAnalyzeForeignTable(Relation relation, AcquireSampleRowsFunc *func,
							BlockNumber *totalpages)
{
	return false;
}

/*
 * Columnstore tables are written through their source table only.
 */
static int
mooncakeIsForeignRelUpdatable(Relation rel)
{
	return 0;
}

Datum
mooncake_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	routine->GetForeignRelSize = mooncakeGetForeignRelSize;
	routine->GetForeignPaths = mooncakeGetForeignPaths;
	routine->GetForeignPlan = mooncakeGetForeignPlan;
	routine->BeginForeignScan = mooncakeBeginForeignScan;
	routine->IterateForeignScan = mooncakeIterateForeignScan;
	routine->ReScanForeignScan = mooncakeReScanForeignScan;
	routine->EndForeignScan = mooncakeEndForeignScan;
	routine->ExplainForeignScan = mooncakeExplainForeignScan;
	routine->AnalyzeForeignTable = mooncakeAnalyzeForeignTable;
	routine->IsForeignRelUpdatable = mooncakeIsForeignRelUpdatable;

	PG_RETURN_POINTER(routine);
}
