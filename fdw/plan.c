/*-------------------------------------------------------------------------
 *
 * plan.c
 *		  Serialize the planner's pieces (quals, targets, grouping, aggregates,
 *		  sort keys, limits) as the JSON expression trees of
 *		  sidecar/PROTOCOL.md ("Query trees").
 *
 * Nothing here decides what DuckDB can run: every node is written with its
 * type OIDs, operator and function names and collation class, and the
 * sidecar answers which pieces it takes. A node kind with no JSON form
 * makes its piece stay local. A subexpression that reads no column of the
 * query and is not volatile (now(), current_date, a prepared statement's
 * $1, a stable function of constants) becomes an exec-time parameter: the
 * executor computes it once when the scan starts and sends its value, so
 * PostgreSQL, not DuckDB, evaluates it.
 *
 * Values travel as their type's text output under fixed settings (DateStyle
 * ISO, IntervalStyle postgres, extra_float_digits 3, TimeZone UTC), so the
 * sidecar reads them the same whatever the session's settings.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_aggregate.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/pg_locale.h"
#include "utils/syscache.h"

#include "pg_mooncake.h"

static bool serialize(StringInfo buf, Node *node, MooncakeSerializer *cxt);

/*
 * Fixed output settings for values sent to the sidecar; returns the GUC
 * nest level to pass to mooncake_reset_transmission_modes.
 */
int
mooncake_set_transmission_modes(void)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("datestyle", "ISO", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("intervalstyle", "postgres", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("extra_float_digits", "3", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("timezone", "UTC", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (mooncake_has_oracle_formats())
		mooncake_set_oracle_formats();
	return nestlevel;
}

/*
 * IvorySQL's Oracle-compatible DATE and TIMESTAMPs print and parse by
 * settings of the session (nls_date_format: DATE without its time of day
 * by default). Whether this server has them.
 */
bool
mooncake_has_oracle_formats(void)
{
	return GetConfigOption("nls_date_format", true, false) != NULL;
}

/*
 * Set them, in the current GUC nest level, to the lossless forms the
 * sidecar's sessions use too (cdc/sync.go).
 */
void
mooncake_set_oracle_formats(void)
{
	(void) set_config_option("nls_date_format", "SYYYY-MM-DD HH24:MI:SS", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("nls_timestamp_format", "SYYYY-MM-DD HH24:MI:SS.FF6", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("nls_timestamp_tz_format", "SYYYY-MM-DD HH24:MI:SS.FF6 TZH:TZM",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
}

/*
 * Whether the text of a type is read under those settings: on IvorySQL,
 * the types outside pg_catalog (its Oracle types are in sys).
 */
bool
mooncake_type_needs_oracle_formats(Oid typid)
{
	HeapTuple	tup;
	Oid			nsp;

	if (!mooncake_has_oracle_formats())
		return false;
	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for type %u", typid);
	nsp = ((Form_pg_type) GETSTRUCT(tup))->typnamespace;
	ReleaseSysCache(tup);
	return nsp != PG_CATALOG_NAMESPACE;
}

/*
 * A new GUC nest level with the Oracle formats set, and TimeZone UTC (the
 * sidecar's sessions print TIMESTAMP WITH LOCAL TIME ZONE in UTC, without
 * an offset); end it with mooncake_reset_transmission_modes.
 */
int
mooncake_push_oracle_formats(void)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("timezone", "UTC", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	mooncake_set_oracle_formats();
	return nestlevel;
}

void
mooncake_reset_transmission_modes(int nestlevel)
{
	AtEOXact_GUC(true, nestlevel);
}

/*
 * The session's TimeZone name, as sent with plans and scans.
 */
const char *
mooncake_session_timezone(void)
{
	return pg_get_timezone_name(session_timezone);
}

/*
 * Append "value": the text of a datum of type typid (or null), written
 * under the transmission modes, which the caller has set.
 */
void
mooncake_append_value(StringInfo buf, Oid typid, Datum value, bool isnull)
{
	Oid			typoutput;
	bool		typisvarlena;

	appendStringInfoString(buf, ",\"value\":");
	if (isnull)
	{
		appendStringInfoString(buf, "null");
		return;
	}
	getTypeOutputInfo(typid, &typoutput, &typisvarlena);
	escape_json(buf, OidOutputFunctionCall(typoutput, value));
}

static const char *
collation_class(Oid collid)
{
	if (!OidIsValid(collid))
		return NULL;
#if PG_VERSION_NUM >= 180000
	if (pg_newlocale_from_collation(collid)->collate_is_c)
		return "c";
#else
	if (lc_collate_is_c(collid))
		return "c";
#endif
	return get_collation_isdeterministic(collid) ? "det" : "nondet";
}

/*
 * True when a node's input collation could not be determined although some
 * argument is of a collatable type (two columns of conflicting implicit
 * collations). PostgreSQL raises 42P22 if such a node compares strings, so
 * it is never shipped: evaluated locally it raises that error as on the heap.
 */
static bool
collation_indeterminate(Oid collid, List *args)
{
	ListCell   *lc;

	if (OidIsValid(collid))
		return false;
	foreach(lc, args)
	{
		Node	   *arg = (Node *) lfirst(lc);

		if (IsA(arg, TargetEntry))
			arg = (Node *) ((TargetEntry *) arg)->expr;
		if (type_is_collatable(exprType(arg)))
			return true;
	}
	return false;
}

static void
begin_node(StringInfo buf, const char *kind, Oid type, int32 typmod)
{
	appendStringInfoString(buf, "{\"k\":");
	escape_json(buf, kind);
	if (OidIsValid(type))
		appendStringInfo(buf, ",\"type\":%u", type);
	if (typmod >= 0)
		appendStringInfo(buf, ",\"typmod\":%d", typmod);
}

static void
add_incoll(StringInfo buf, Oid collid)
{
	const char *cls = collation_class(collid);

	if (cls)
		appendStringInfo(buf, ",\"incoll\":\"%s\"", cls);
}

static void
add_name(StringInfo buf, const char *name, Oid nspid)
{
	appendStringInfoString(buf, ",\"name\":");
	escape_json(buf, name);
	appendStringInfoString(buf, ",\"schema\":");
	escape_json(buf, get_namespace_name(nspid));
}

static void
add_operator(StringInfo buf, Oid opno)
{
	HeapTuple	tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(opno));
	Form_pg_operator form;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for operator %u", opno);
	form = (Form_pg_operator) GETSTRUCT(tup);
	add_name(buf, NameStr(form->oprname), form->oprnamespace);
	ReleaseSysCache(tup);
}

static bool
serialize_args(StringInfo buf, List *args, MooncakeSerializer *cxt)
{
	ListCell   *lc;

	appendStringInfoString(buf, ",\"args\":[");
	foreach(lc, args)
	{
		if (lc != list_head(args))
			appendStringInfoChar(buf, ',');
		if (!serialize(buf, (Node *) lfirst(lc), cxt))
			return false;
	}
	appendStringInfoChar(buf, ']');
	return true;
}

/*
 * A subexpression PostgreSQL computes when the scan starts: it reads no
 * column, runs no aggregate, subplan or volatile function.
 */
static bool
is_exec_param(Node *node)
{
	if (IsA(node, Const))
		return false;
	return !contain_var_clause(node) &&
		!contain_agg_clause(node) &&
		!contain_window_function(node) &&
		!contain_subplans(node) &&
		!contain_volatile_functions(node) &&
		!expression_returns_set(node);
}

static void
serialize_param(StringInfo buf, Node *node, MooncakeSerializer *cxt)
{
	ListCell   *lc;
	int			id = 0;

	foreach(lc, *cxt->params)
	{
		if (equal(lfirst(lc), node))
			break;
		id++;
	}
	if (lc == NULL)
		*cxt->params = lappend(*cxt->params, node);
	begin_node(buf, "param", exprType(node), exprTypmod(node));
	appendStringInfo(buf, ",\"id\":%d}", id);
}

/*
 * Append the sort keys of sortclauses (SortGroupClauses over tlist).
 */
bool
mooncake_serialize_sort(StringInfo buf, List *sortclauses, List *tlist,
						MooncakeSerializer *cxt)
{
	ListCell   *lc;

	appendStringInfoChar(buf, '[');
	foreach(lc, sortclauses)
	{
		SortGroupClause *sgc = lfirst_node(SortGroupClause, lc);
		Node	   *expr = (Node *) get_sortgroupclause_expr(sgc, tlist);
		char	   *opname = get_opname(sgc->sortop);

		if (lc != list_head(sortclauses))
			appendStringInfoChar(buf, ',');
		appendStringInfoString(buf, "{\"expr\":");
		if (opname == NULL || !serialize(buf, expr, cxt))
			return false;
		appendStringInfoString(buf, ",\"op\":");
		escape_json(buf, opname);
		appendStringInfo(buf, ",\"nulls_first\":%s}",
						 sgc->nulls_first ? "true" : "false");
	}
	appendStringInfoChar(buf, ']');
	return true;
}

static bool
serialize_aggref(StringInfo buf, Aggref *agg, MooncakeSerializer *cxt)
{
	HeapTuple	tup;
	Form_pg_proc proc;
	ListCell   *lc;
	bool		first = true;
	bool		ok;

	if (!cxt->aggs_ok || agg->aggsplit != AGGSPLIT_SIMPLE || agg->aggvariadic ||
		agg->agglevelsup != 0)
		return false;
	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(agg->aggfnoid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for function %u", agg->aggfnoid);
	proc = (Form_pg_proc) GETSTRUCT(tup);
	if (collation_indeterminate(agg->inputcollid, agg->args))
	{
		ReleaseSysCache(tup);
		return false;
	}
	begin_node(buf, "agg", agg->aggtype, -1);
	add_name(buf, NameStr(proc->proname), proc->pronamespace);
	ReleaseSysCache(tup);
	add_incoll(buf, agg->inputcollid);
	if (agg->aggstar)
		appendStringInfoString(buf, ",\"star\":true");
	if (agg->aggdistinct != NIL)
		appendStringInfoString(buf, ",\"distinct\":true");

	/* the arguments; for an ordered-set aggregate, its sorted input */
	appendStringInfoString(buf, ",\"args\":[");
	foreach(lc, agg->args)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);

		if (tle->resjunk)
			continue;
		if (!first)
			appendStringInfoChar(buf, ',');
		first = false;
		if (!serialize(buf, (Node *) tle->expr, cxt))
			return false;
	}
	appendStringInfoChar(buf, ']');

	if (agg->aggorder != NIL)
	{
		appendStringInfoString(buf, ",\"order\":");
		if (!mooncake_serialize_sort(buf, agg->aggorder, agg->args, cxt))
			return false;
	}
	if (agg->aggdirectargs != NIL)
	{
		appendStringInfoString(buf, ",\"direct\":");
		/* serialize_args writes ,"args": - write the list by hand */
		appendStringInfoChar(buf, '[');
		foreach(lc, agg->aggdirectargs)
		{
			if (lc != list_head(agg->aggdirectargs))
				appendStringInfoChar(buf, ',');
			if (!serialize(buf, (Node *) lfirst(lc), cxt))
				return false;
		}
		appendStringInfoChar(buf, ']');
	}
	if (agg->aggfilter)
	{
		bool		saved = cxt->aggs_ok;

		appendStringInfoString(buf, ",\"filter\":");
		cxt->aggs_ok = false;
		ok = serialize(buf, (Node *) agg->aggfilter, cxt);
		cxt->aggs_ok = saved;
		if (!ok)
			return false;
	}
	appendStringInfoChar(buf, '}');
	return true;
}

static bool
serialize(StringInfo buf, Node *node, MooncakeSerializer *cxt)
{
	if (node == NULL)
		return false;
	check_stack_depth();

	if (is_exec_param(node))
	{
		serialize_param(buf, node, cxt);
		return true;
	}

	switch (nodeTag(node))
	{
		case T_Var:
			{
				Var		   *var = (Var *) node;
				RangeTblEntry *rte;
				char	   *attname;

				if (var->varlevelsup != 0 ||
					(var->varattno <= 0 && var->varattno != SelfItemPointerAttributeNumber) ||
					!bms_is_member(var->varno, cxt->relids))
					return false;
				rte = planner_rt_fetch(var->varno, cxt->root);
				/* ctid: the row ids of a columnstore table (columnstore.c) */
				attname = var->varattno == SelfItemPointerAttributeNumber ? "ctid" :
					get_attname(rte->relid, var->varattno, false);
				begin_node(buf, "var", var->vartype, var->vartypmod);
				add_incoll(buf, var->varcollid);
				appendStringInfo(buf, ",\"rel\":%u,\"col\":", var->varno);
				escape_json(buf, attname);
				appendStringInfoChar(buf, '}');
				return true;
			}
		case T_Const:
			{
				Const	   *c = (Const *) node;

				begin_node(buf, "const", c->consttype, c->consttypmod);
				mooncake_append_value(buf, c->consttype, c->constvalue,
									  c->constisnull);
				appendStringInfoChar(buf, '}');
				return true;
			}
		case T_OpExpr:
			{
				OpExpr	   *op = (OpExpr *) node;

				if (op->opretset ||
					collation_indeterminate(op->inputcollid, op->args))
					return false;
				begin_node(buf, "op", op->opresulttype, -1);
				add_operator(buf, op->opno);
				add_incoll(buf, op->inputcollid);
				if (!serialize_args(buf, op->args, cxt))
					return false;
				appendStringInfoChar(buf, '}');
				return true;
			}
		case T_FuncExpr:
			{
				FuncExpr   *fn = (FuncExpr *) node;
				const char *format;

				if (fn->funcretset || fn->funcvariadic ||
					collation_indeterminate(fn->inputcollid, fn->args))
					return false;
				switch (fn->funcformat)
				{
					case COERCE_EXPLICIT_CAST:
						format = "cast";
						break;
					case COERCE_IMPLICIT_CAST:
						format = "implicit";
						break;
					case COERCE_SQL_SYNTAX:
						format = "sql";
						break;
					default:
						format = "call";
						break;
				}
				begin_node(buf, "func", fn->funcresulttype, exprTypmod(node));
				add_name(buf, get_func_name(fn->funcid),
						 get_func_namespace(fn->funcid));
				add_incoll(buf, fn->inputcollid);
				appendStringInfo(buf, ",\"format\":\"%s\"", format);
				if (!serialize_args(buf, fn->args, cxt))
					return false;
				appendStringInfoChar(buf, '}');
				return true;
			}
		case T_BoolExpr:
			{
				BoolExpr   *b = (BoolExpr *) node;

				begin_node(buf, b->boolop == AND_EXPR ? "and" :
						   b->boolop == OR_EXPR ? "or" : "not", InvalidOid, -1);
				if (!serialize_args(buf, b->args, cxt))
					return false;
				appendStringInfoChar(buf, '}');
				return true;
			}
		case T_NullTest:
			{
				NullTest   *nt = (NullTest *) node;

				if (nt->argisrow)
					return false;
				begin_node(buf, nt->nulltesttype == IS_NULL ? "isnull" : "notnull",
						   InvalidOid, -1);
				if (!serialize_args(buf, list_make1(nt->arg), cxt))
					return false;
				appendStringInfoChar(buf, '}');
				return true;
			}
		case T_BooleanTest:
			{
				BooleanTest *bt = (BooleanTest *) node;
				static const char *const kinds[] = {
					[IS_TRUE] = "istrue",[IS_NOT_TRUE] = "isnottrue",
					[IS_FALSE] = "isfalse",[IS_NOT_FALSE] = "isnotfalse",
					[IS_UNKNOWN] = "isunknown",[IS_NOT_UNKNOWN] = "isnotunknown",
				};

				begin_node(buf, kinds[bt->booltesttype], InvalidOid, -1);
				if (!serialize_args(buf, list_make1(bt->arg), cxt))
					return false;
				appendStringInfoChar(buf, '}');
				return true;
			}
		case T_ScalarArrayOpExpr:
			{
				ScalarArrayOpExpr *sa = (ScalarArrayOpExpr *) node;
				Oid			elemtype = get_base_element_type(exprType(lsecond(sa->args)));

				if (!OidIsValid(elemtype) ||
					collation_indeterminate(sa->inputcollid, sa->args))
					return false;
				begin_node(buf, sa->useOr ? "any" : "all", BOOLOID, -1);
				add_operator(buf, sa->opno);
				add_incoll(buf, sa->inputcollid);
				appendStringInfo(buf, ",\"elemtype\":%u", elemtype);
				if (!serialize_args(buf, sa->args, cxt))
					return false;
				appendStringInfoChar(buf, '}');
				return true;
			}
		case T_ArrayExpr:
			{
				ArrayExpr  *a = (ArrayExpr *) node;

				if (a->multidims)
					return false;
				begin_node(buf, "array", a->array_typeid, -1);
				appendStringInfo(buf, ",\"elemtype\":%u", a->element_typeid);
				if (!serialize_args(buf, a->elements, cxt))
					return false;
				appendStringInfoChar(buf, '}');
				return true;
			}
		case T_RelabelType:
			{
				RelabelType *r = (RelabelType *) node;

				begin_node(buf, "relabel", r->resulttype, r->resulttypmod);
				if (!serialize_args(buf, list_make1(r->arg), cxt))
					return false;
				appendStringInfoChar(buf, '}');
				return true;
			}
		case T_CoerceViaIO:
			{
				CoerceViaIO *c = (CoerceViaIO *) node;

				begin_node(buf, "coerceio", c->resulttype, -1);
				if (!serialize_args(buf, list_make1(c->arg), cxt))
					return false;
				appendStringInfoChar(buf, '}');
				return true;
			}
		case T_CaseExpr:
			{
				CaseExpr   *ce = (CaseExpr *) node;
				List	   *args = NIL;
				ListCell   *lc;

				/* CASE x WHEN ...: its tests read a CaseTestExpr, not sent */
				if (ce->arg != NULL)
					return false;
				foreach(lc, ce->args)
				{
					CaseWhen   *w = lfirst_node(CaseWhen, lc);

					args = lappend(args, w->expr);
					args = lappend(args, w->result);
				}
				args = lappend(args, ce->defresult);
				begin_node(buf, "case", ce->casetype, -1);
				if (!serialize_args(buf, args, cxt))
					return false;
				appendStringInfoChar(buf, '}');
				return true;
			}
		case T_CoalesceExpr:
			{
				CoalesceExpr *c = (CoalesceExpr *) node;

				begin_node(buf, "coalesce", c->coalescetype, -1);
				if (!serialize_args(buf, c->args, cxt))
					return false;
				appendStringInfoChar(buf, '}');
				return true;
			}
		case T_Aggref:
			return serialize_aggref(buf, (Aggref *) node, cxt);
		default:
			return false;
	}
}

/*
 * Append the JSON tree of expr to buf. Returns false, leaving buf with
 * garbage after its original length, when some node has no JSON form.
 * The caller has set the transmission modes.
 */
bool
mooncake_serialize_expr(StringInfo buf, Expr *expr, MooncakeSerializer *cxt)
{
	return serialize(buf, (Node *) expr, cxt);
}

/*
 * Serialize expr alone: its JSON text, or NULL when it has none.
 */
char *
mooncake_expr_json(Expr *expr, MooncakeSerializer *cxt)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (!serialize(&buf, (Node *) expr, cxt))
		return NULL;
	return buf.data;
}

/*
 * A column of relation rel (range table index) as a "var" node.
 */
void
mooncake_serialize_column(StringInfo buf, Index rel, Form_pg_attribute att)
{
	begin_node(buf, "var", att->atttypid, att->atttypmod);
	add_incoll(buf, att->attcollation);
	appendStringInfo(buf, ",\"rel\":%u,\"col\":", rel);
	escape_json(buf, NameStr(att->attname));
	appendStringInfoChar(buf, '}');
}
