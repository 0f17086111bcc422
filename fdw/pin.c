/*-------------------------------------------------------------------------
 *
 * pin.c
 *		  Which moment of the mirrors a scan reads: the read pins the
 *		  sidecar keeps for a transaction or a statement.
 *
 * A mirror changes as the sidecar applies its source's commits, so two
 * reads of it at different moments may see different rows. PostgreSQL
 * gives a REPEATABLE READ or SERIALIZABLE transaction one snapshot for all
 * its statements, and a READ COMMITTED statement one snapshot for all its
 * scans. The sidecar keeps the mirrors as they were at the first scan of
 * such a transaction or statement (its read pin, sidecar/service/pins.go)
 * when the scan request names it:
 *
 * - "pin_xact", the transaction's start, in a REPEATABLE READ or
 *   SERIALIZABLE transaction;
 * - "pin_xact" (the transaction's start) and "pin_stmt" (a number of this
 *   backend) for a READ COMMITTED statement whose plan may read the
 *   mirrors more than once: two or more scans of this wrapper, or one with
 *   exec-time parameters (rescanned with new values). A single scan is one
 *   DuckDB query, which reads one moment by itself, and needs no pin.
 *
 * Every scan request also carries "pid" and "pin_live", the statement pins
 * of this backend whose statements are still running (a function called
 * by a statement runs statements of its own): the sidecar ends this
 * backend's other pins. Once a scan of the transaction or statement has
 * had an answer, its later scans say "pin_again": the sidecar then fails
 * them with 40001 if the pin is gone (the sidecar restarted, or DuckDB
 * failed a statement and aborted the pin's transaction) rather than read
 * the mirrors at another moment.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "nodes/plannodes.h"
#include "utils/memutils.h"

#include "pg_mooncake.h"

/* A running statement that pins the mirrors, by its executor state. */
typedef struct StatementPin
{
	EState	   *estate;
	int64		id;				/* 0: the statement needs no pin */
	TimestampTz xact;			/* GetCurrentTransactionStartTimestamp() */
	bool		answered;		/* a scan has had an answer on the pin */
	struct StatementPin *next;
} StatementPin;

static StatementPin *statement_pins = NULL;
static int64 last_pin_id = 0;

/* the start of the transaction whose scans have had an answer on its pin */
static TimestampTz xact_answered = 0;

/* The executor state's memory is going: its statement has ended. */
static void
statement_pin_gone(void *arg)
{
	StatementPin **link = &statement_pins;

	while (*link != NULL)
	{
		if (*link == arg)
		{
			StatementPin *gone = *link;

			*link = gone->next;
			pfree(gone);
			return;
		}
		link = &(*link)->next;
	}
}

typedef struct PlanCount
{
	Oid			fdwid;			/* this wrapper */
	int			scans;			/* its scans in the plan */
	bool		parameterized;	/* one of them has exec-time parameters */
} PlanCount;

static void count_plan(Plan *plan, PlanCount *count);

static void
count_plans(List *plans, PlanCount *count)
{
	ListCell   *lc;

	foreach(lc, plans)
		count_plan((Plan *) lfirst(lc), count);
}

/* Counts the wrapper's scans in plan and below it. */
static void
count_plan(Plan *plan, PlanCount *count)
{
	if (plan == NULL)
		return;
	check_stack_depth();
	switch (nodeTag(plan))
	{
		case T_ForeignScan:
			{
				ForeignScan *fs = (ForeignScan *) plan;

				if (OidIsValid(fs->fs_server) &&
					GetForeignServer(fs->fs_server)->fdwid == count->fdwid)
				{
					count->scans++;
					if (fs->fdw_exprs != NIL)
						count->parameterized = true;
				}
				break;
			}
		case T_Append:
			count_plans(((Append *) plan)->appendplans, count);
			break;
		case T_MergeAppend:
			count_plans(((MergeAppend *) plan)->mergeplans, count);
			break;
		case T_BitmapAnd:
			count_plans(((BitmapAnd *) plan)->bitmapplans, count);
			break;
		case T_BitmapOr:
			count_plans(((BitmapOr *) plan)->bitmapplans, count);
			break;
		case T_SubqueryScan:
			count_plan(((SubqueryScan *) plan)->subplan, count);
			break;
		case T_CustomScan:
			count_plans(((CustomScan *) plan)->custom_plans, count);
			break;
		default:
			break;
	}
	count_plan(plan->lefttree, count);
	count_plan(plan->righttree, count);
}

/*
 * The pin of the statement whose executor state is estate: made at its
 * first scan of this wrapper (serverid is that scan's server).
 */
static StatementPin *
statement_pin(EState *estate, Oid serverid)
{
	StatementPin *sp;
	PlanCount	count = {0};
	MemoryContextCallback *cb;

	for (sp = statement_pins; sp != NULL; sp = sp->next)
		if (sp->estate == estate)
			return sp;

	count.fdwid = GetForeignServer(serverid)->fdwid;
	if (estate->es_plannedstmt != NULL)
	{
		count_plan(estate->es_plannedstmt->planTree, &count);
		count_plans(estate->es_plannedstmt->subplans, &count);
	}
	sp = MemoryContextAllocZero(TopMemoryContext, sizeof(StatementPin));
	sp->estate = estate;
	if (count.scans > 1 || count.parameterized)
	{
		sp->id = ++last_pin_id;
		sp->xact = GetCurrentTransactionStartTimestamp();
	}
	sp->next = statement_pins;
	statement_pins = sp;

	/* forgotten when the executor state's memory goes */
	cb = MemoryContextAlloc(estate->es_query_cxt, sizeof(MemoryContextCallback));
	cb->func = statement_pin_gone;
	cb->arg = sp;
	MemoryContextRegisterResetCallback(estate->es_query_cxt, cb);
	return sp;
}

/*
 * Adds the scan request's pin fields for a scan of serverid in the
 * statement of estate.
 */
void
mooncake_append_pin(StringInfo buf, EState *estate, Oid serverid)
{
	StatementPin *sp;
	bool		first = true;

	appendStringInfo(buf, ",\"pid\":%d", MyProcPid);
	if (IsolationUsesXactSnapshot())
	{
		TimestampTz xact = GetCurrentTransactionStartTimestamp();

		appendStringInfo(buf, ",\"pin_xact\":" INT64_FORMAT "%s", (int64) xact,
						 xact == xact_answered ? ",\"pin_again\":true" : "");
		return;
	}
	sp = statement_pin(estate, serverid);
	if (sp->id != 0)
		appendStringInfo(buf, ",\"pin_xact\":" INT64_FORMAT ",\"pin_stmt\":" INT64_FORMAT "%s",
						 (int64) sp->xact, sp->id, sp->answered ? ",\"pin_again\":true" : "");
	appendStringInfoString(buf, ",\"pin_live\":[");
	for (sp = statement_pins; sp != NULL; sp = sp->next)
	{
		if (sp->id == 0)
			continue;
		appendStringInfo(buf, "%s" INT64_FORMAT, first ? "" : ",", sp->id);
		first = false;
	}
	appendStringInfoChar(buf, ']');
}

/*
 * A scan of the statement of estate has had its answer (the sidecar has
 * run its query on the pin): the later scans of its transaction or
 * statement read on that pin or not at all.
 */
void
mooncake_pin_answered(EState *estate)
{
	StatementPin *sp;

	if (IsolationUsesXactSnapshot())
	{
		xact_answered = GetCurrentTransactionStartTimestamp();
		return;
	}
	for (sp = statement_pins; sp != NULL; sp = sp->next)
		if (sp->estate == estate)
			sp->answered = true;
}
