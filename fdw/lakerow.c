/*-------------------------------------------------------------------------
 *
 * lakerow.c
 *		  mooncake.row: the rows of mooncake.read_csv, whose columns are the
 *		  file's own, read by name as r['column'].
 *
 * mooncake.read_csv(...) returns SETOF mooncake.row, a type whose values
 * are never made: its subscript r['column'] takes one constant text
 * subscript and is text. After parse analysis a hook asks the sidecar for
 * the file's columns (describe_files) and turns each such call in FROM
 * into a scan of the same session-temporary foreign table the planner
 * hook of lake.c makes for a column definition list, with the file's
 * columns and the PostgreSQL types that hold them:
 *
 *	r['c']				the column c, as text
 *	r['c']::type		the column c cast to type (when PostgreSQL has a cast
 *						from its type; through text otherwise)
 *	SELECT *, SELECT r.*, SELECT r
 *						one output column for each of the file's (in the
 *						statement's own SELECT list only)
 *
 * so filters, joins, aggregates and orderings on the columns are pushed to
 * DuckDB as for any foreign table. A column the file lacks is 42703; the
 * row used as a value in any other way is 0A000.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/subscripting.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "parser/parse_coerce.h"
#include "parser/parse_collate.h"
#include "parser/parse_expr.h"
#include "parser/parse_node.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "pg_mooncake.h"

PG_FUNCTION_INFO_V1(mooncake_row_in);
PG_FUNCTION_INFO_V1(mooncake_row_out);
PG_FUNCTION_INFO_V1(mooncake_row_subscript);

#define ROW_HINT "Read its columns as r['column'] (text; r['column']::type for another type); SELECT * expands them in the outermost SELECT list only."

/*
 * A value of mooncake.row is never made: these only explain why.
 */
Datum
mooncake_row_in(PG_FUNCTION_ARGS)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("mooncake.row has no values of its own"),
			 errhint("It is the row of mooncake.read_csv in FROM. " ROW_HINT)));
	PG_RETURN_NULL();
}

Datum
mooncake_row_out(PG_FUNCTION_ARGS)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("mooncake.row has no values of its own"),
			 errhint("It is the row of mooncake.read_csv in FROM. " ROW_HINT)));
	PG_RETURN_NULL();
}

/*
 * r['column']: one subscript, the column's name as text; the value is
 * text. Parse analysis then replaces it by the column (see above).
 */
static void
row_subscript_transform(SubscriptingRef *sbsref, List *indirection,
						ParseState *pstate, bool isSlice, bool isAssignment)
{
	A_Indices  *ai;
	Node	   *sub;

	if (isAssignment)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the columns of a mooncake.row cannot be assigned")));
	if (list_length(indirection) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("a mooncake.row takes one subscript, a column name")));
	ai = linitial_node(A_Indices, indirection);
	if (isSlice || ai->is_slice || ai->uidx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("a mooncake.row takes no slices, only a column name")));
	sub = transformExpr(pstate, ai->uidx, pstate->p_expr_kind);
	sub = coerce_to_target_type(pstate, sub, exprType(sub), TEXTOID, -1,
								COERCION_IMPLICIT, COERCE_IMPLICIT_CAST, -1);
	if (sub == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the subscript of a mooncake.row must be a column name (text)"),
				 parser_errposition(pstate, exprLocation(ai->uidx))));
	sbsref->refupperindexpr = list_make1(sub);
	sbsref->reflowerindexpr = NIL;
	sbsref->refrestype = TEXTOID;
	sbsref->reftypmod = -1;
}

static void
row_subscript_exec_setup(const SubscriptingRef *sbsref,
						 struct SubscriptingRefState *sbsrefstate,
						 struct SubscriptExecSteps *methods)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("r['column'] reads only rows of mooncake.read_csv in FROM"),
			 errhint("The call's arguments must be constants.")));
}

static const SubscriptRoutines row_subscript_routines = {
	.transform = row_subscript_transform,
	.exec_setup = row_subscript_exec_setup,
	.fetch_strict = true,
	.fetch_leakproof = true,
	.store_leakproof = false
};

Datum
mooncake_row_subscript(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(&row_subscript_routines);
}

/* ---------------------------------------------------------------------
 * The rewrite after parse analysis
 * ---------------------------------------------------------------------
 */

static post_parse_analyze_hook_type prev_post_parse_analyze = NULL;

/* A call of read_csv in FROM made a scan of its foreign table */
typedef struct RowRel
{
	Index		varno;			/* its range table index */
	Oid			relid;			/* the foreign table */
	TupleDesc	tupdesc;		/* its columns, the file's */
	char	   *rowname;		/* the name of its one column before */
	char	   *what;			/* the files, for messages */
} RowRel;

typedef struct RowContext
{
	List	   *rels;			/* RowRel of the query being rewritten */
	int			sublevels_up;	/* how deep the mutator is below it */
	Oid			rowtype;		/* mooncake.row */
} RowContext;

/* the statement's ParseState, for error positions */
static ParseState *row_pstate = NULL;

static int
row_errposition(int location)
{
	if (row_pstate == NULL || row_pstate->p_sourcetext == NULL || location < 0)
		return 0;
	return parser_errposition(row_pstate, location);
}

/* A call of read_csv returning mooncake.row: its FuncExpr and format */
static FuncExpr *
row_call(RangeTblEntry *rte, char **format)
{
	RangeTblFunction *rtfunc;
	FuncExpr   *fexpr;

	if (rte->rtekind != RTE_FUNCTION || list_length(rte->functions) != 1)
		return NULL;
	rtfunc = linitial_node(RangeTblFunction, rte->functions);
	if (!IsA(rtfunc->funcexpr, FuncExpr))
		return NULL;
	fexpr = (FuncExpr *) rtfunc->funcexpr;
	if (fexpr->funcresulttype == RECORDOID || !fexpr->funcretset ||
		!mooncake_is_lake_function(fexpr->funcid, format))
		return NULL;
	return fexpr;
}

static bool
has_row_call_walker(Node *node, void *context)
{
	char	   *format;

	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		FuncExpr   *fexpr = row_call((RangeTblEntry *) node, &format);

		if (fexpr != NULL)
		{
			*(Oid *) context = fexpr->funcresulttype;
			return true;
		}
		return false;
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, has_row_call_walker, context,
								 QTW_EXAMINE_RTES_BEFORE);
	return expression_tree_walker(node, has_row_call_walker, context);
}

static RowRel *
row_rel(RowContext *cxt, Var *var)
{
	ListCell   *lc;

	if ((int) var->varlevelsup != cxt->sublevels_up || var->vartype != cxt->rowtype)
		return NULL;
	foreach(lc, cxt->rels)
	{
		RowRel	   *rel = lfirst(lc);

		if (rel->varno == var->varno)
			return rel;
	}
	return NULL;
}

/* The constant text subscript of r['name'], or NULL */
static char *
subscript_name(SubscriptingRef *sbsref)
{
	Node	   *value;

	if (list_length(sbsref->refupperindexpr) != 1)
		return NULL;
	value = eval_const_expressions(NULL, linitial(sbsref->refupperindexpr));
	if (!IsA(value, Const) || ((Const *) value)->constisnull)
		return NULL;
	return TextDatumGetCString(((Const *) value)->constvalue);
}

/* The column attno of rel, as a Var like the row's Var orig */
static Var *
column_var(RowRel *rel, int attno, Var *orig, int location)
{
	Form_pg_attribute att = TupleDescAttr(rel->tupdesc, attno - 1);
	Var		   *var = copyObject(orig);

	var->varattno = attno;
	var->vartype = att->atttypid;
	var->vartypmod = att->atttypmod;
	var->varcollid = att->attcollation;
	var->varnosyn = var->varno;
	var->varattnosyn = attno;
	var->location = location;
	return var;
}

static void
whole_row_error(int location)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("a row of mooncake.read_csv cannot be used as a value"),
			 errhint(ROW_HINT),
			 row_errposition(location)));
}

/* The file's columns, for messages */
static char *
column_list(TupleDesc tupdesc)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < tupdesc->natts; i++)
		appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "",
						 quote_identifier(NameStr(TupleDescAttr(tupdesc, i)->attname)));
	return buf.data;
}

/*
 * If sbsref is r['name'] of a row of cxt, the column it names (a Var of
 * its type); NULL if not.
 */
static Var *
subscripted_column(RowContext *cxt, SubscriptingRef *sbsref)
{
	RowRel	   *rel;
	Var		   *row;
	Node	   *sub;
	char	   *name;
	int			found = 0;
	int			i;

	if (!IsA(sbsref->refexpr, Var) || sbsref->refassgnexpr != NULL ||
		list_length(sbsref->refupperindexpr) != 1)
		return NULL;
	row = (Var *) sbsref->refexpr;
	rel = row_rel(cxt, row);
	if (rel == NULL)
		return NULL;

	sub = linitial(sbsref->refupperindexpr);
	name = subscript_name(sbsref);
	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the column name in r['column'] must be a constant, not NULL"),
				 row_errposition(exprLocation(sub))));

	/* the name as written, else the only one equal but for case */
	for (i = 0; i < rel->tupdesc->natts && found == 0; i++)
		if (strcmp(NameStr(TupleDescAttr(rel->tupdesc, i)->attname), name) == 0)
			found = i + 1;
	if (found == 0)
	{
		for (i = 0; i < rel->tupdesc->natts; i++)
			if (pg_strcasecmp(NameStr(TupleDescAttr(rel->tupdesc, i)->attname), name) == 0)
				found = found == 0 ? i + 1 : -1;
	}
	if (found <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" does not exist in %s", name, rel->what),
				 errhint("The files have the columns %s.", column_list(rel->tupdesc)),
				 row_errposition(exprLocation(sub))));
	return column_var(rel, found, row, row->location);
}

/* expr of its type as type target (typmod -1), or NULL without a cast */
static Node *
coerce_column(Node *expr, Oid target, Oid collation, int location)
{
	Oid			source = exprType(expr);
	Node	   *result;

	if (source == target)
		return expr;
	if (!can_coerce_type(1, &source, &target, COERCION_EXPLICIT))
		return NULL;
	result = coerce_to_target_type(NULL, expr, source, target, -1,
								   COERCION_EXPLICIT, COERCE_EXPLICIT_CAST, location);
	if (result == NULL)
		return NULL;
	assign_expr_collations(NULL, result);
	if (OidIsValid(collation) && exprCollation(result) != collation)
		exprSetCollation(result, collation);
	return result;
}

static Node *
row_mutator(Node *node, RowContext *cxt)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, Query))
	{
		Query	   *query;

		cxt->sublevels_up++;
		query = query_tree_mutator((Query *) node, row_mutator, cxt,
								   QTW_IGNORE_JOINALIASES);
		cxt->sublevels_up--;
		return (Node *) query;
	}
	if (IsA(node, CoerceViaIO) && IsA(((CoerceViaIO *) node)->arg, SubscriptingRef))
	{
		/* r['c']::type: the column cast to type, not through text */
		CoerceViaIO *io = (CoerceViaIO *) node;
		SubscriptingRef *sbsref = (SubscriptingRef *) io->arg;
		Var		   *col;

		if (sbsref->refrestype == TEXTOID &&
			(col = subscripted_column(cxt, sbsref)) != NULL)
		{
			Node	   *cast = coerce_column((Node *) col, io->resulttype,
											 io->resultcollid, io->location);
			CoerceViaIO *newio;

			if (cast != NULL)
				return cast;
			newio = makeNode(CoerceViaIO);
			*newio = *io;
			newio->arg = (Expr *) coerce_column((Node *) col, TEXTOID,
												sbsref->refcollid, io->location);
			return (Node *) newio;
		}
	}
	if (IsA(node, SubscriptingRef))
	{
		SubscriptingRef *sbsref = (SubscriptingRef *) node;
		Var		   *col = subscripted_column(cxt, sbsref);

		if (col != NULL)
			return coerce_column((Node *) col, TEXTOID, sbsref->refcollid,
								 exprLocation(node));
	}
	if (IsA(node, Var) && row_rel(cxt, (Var *) node) != NULL)
		whole_row_error(((Var *) node)->location);
	return expression_tree_mutator(node, row_mutator, cxt);
}

/*
 * SELECT * (or r.*, or r) in the statement's own SELECT list: one output
 * column for each of the file's.
 */
static void
expand_target_list(Query *query, RowContext *cxt)
{
	List	   *tlist = NIL;
	ListCell   *lc;
	AttrNumber	resno = 1;

	foreach(lc, query->targetList)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);
		RowRel	   *rel;

		if (IsA(tle->expr, Var) && !tle->resjunk && tle->ressortgroupref == 0 &&
			(rel = row_rel(cxt, (Var *) tle->expr)) != NULL)
		{
			Var		   *row = (Var *) tle->expr;
			int			i;

			for (i = 1; i <= rel->tupdesc->natts; i++)
			{
				TargetEntry *col;

				col = makeTargetEntry((Expr *) column_var(rel, i, row, row->location), resno++,
									  pstrdup(NameStr(TupleDescAttr(rel->tupdesc, i - 1)->attname)),
									  false);
				col->resorigtbl = rel->relid;
				col->resorigcol = i;
				tlist = lappend(tlist, col);
			}
			continue;
		}
		tle->resno = resno++;
		tlist = lappend(tlist, tle);
	}
	query->targetList = tlist;
}

/*
 * r['c'] (or a cast of it) in the statement's own SELECT list, named as
 * PostgreSQL names it (r, after the row): named c instead.
 */
static void
name_target_list(Query *query, RowContext *cxt)
{
	ListCell   *lc;

	foreach(lc, query->targetList)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);
		Node	   *expr = (Node *) tle->expr;
		RowRel	   *rel;
		char	   *name;

		if (tle->resjunk || tle->resname == NULL)
			continue;
		for (;;)
		{
			if (IsA(expr, CoerceViaIO))
				expr = (Node *) ((CoerceViaIO *) expr)->arg;
			else if (IsA(expr, RelabelType))
				expr = (Node *) ((RelabelType *) expr)->arg;
			else if (IsA(expr, CoerceToDomain))
				expr = (Node *) ((CoerceToDomain *) expr)->arg;
			else if (IsA(expr, FuncExpr) &&
					 ((FuncExpr *) expr)->funcformat != COERCE_EXPLICIT_CALL &&
					 ((FuncExpr *) expr)->args != NIL)
				expr = linitial(((FuncExpr *) expr)->args);
#if PG_VERSION_NUM >= 180000
			/* a grouped expression: a Var of the query's group RTE */
			else if (IsA(expr, Var) && ((Var *) expr)->varlevelsup == 0 &&
					 rt_fetch(((Var *) expr)->varno, query->rtable)->rtekind == RTE_GROUP)
				expr = list_nth(rt_fetch(((Var *) expr)->varno, query->rtable)->groupexprs,
								((Var *) expr)->varattno - 1);
#endif
			else
				break;
		}
		if (!IsA(expr, SubscriptingRef) ||
			!IsA(((SubscriptingRef *) expr)->refexpr, Var) ||
			(rel = row_rel(cxt, (Var *) ((SubscriptingRef *) expr)->refexpr)) == NULL ||
			strcmp(tle->resname, rel->rowname) != 0 ||
			(name = subscript_name((SubscriptingRef *) expr)) == NULL)
			continue;
		tle->resname = name;
	}
}

/*
 * The joins' alias Vars of a row now name the first column: no query
 * reads the row through a join's alias (the final check refuses it).
 */
static void
fix_join_aliases(Query *query, RowContext *cxt)
{
	ListCell   *lc;

	foreach(lc, query->rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);
		ListCell   *lv;

		if (rte->rtekind != RTE_JOIN)
			continue;
		foreach(lv, rte->joinaliasvars)
		{
			Node	   *alias = lfirst(lv);
			RowRel	   *rel;

			if (alias != NULL && IsA(alias, Var) &&
				(rel = row_rel(cxt, (Var *) alias)) != NULL)
				lfirst(lv) = column_var(rel, 1, (Var *) alias, -1);
		}
	}
}

static bool rewrite_nested_walker(Node *node, void *context);

/* csv file "x.csv", csv files "a.csv", "b.csv": the call's, for messages */
static char *
files_name(MooncakeLakeCall *call)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfo(&buf, "%s %s", call->format,
					 list_length(call->paths) == 1 ? "file" : "files");
	foreach(lc, call->paths)
	{
		appendStringInfoString(&buf, lc == list_head(call->paths) ? " " : ", ");
		appendStringInfoChar(&buf, '"');
		appendStringInfoString(&buf, lfirst(lc));
		appendStringInfoChar(&buf, '"');
	}
	return buf.data;
}

/*
 * Make each read_csv call in query's FROM a scan of its foreign table and
 * rewrite what reads its rows, at this level and in the queries below;
 * then do the same for the queries below.
 */
static void
rewrite_row_query(Query *query, bool top, Oid rowtype)
{
	RowContext	cxt;
	ListCell   *lc;
	Index		rti = 0;

	memset(&cxt, 0, sizeof(cxt));
	cxt.rowtype = rowtype;
	foreach(lc, query->rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);
		MooncakeLakeCall call;
		FuncExpr   *fexpr;
		char	   *format;
		RowRel	   *rel;
		Relation	r;
		List	   *colnames = NIL;
		int			i;

		rti++;
		fexpr = row_call(rte, &format);
		if (fexpr == NULL)
			continue;
		if (rte->funcordinality)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("mooncake.read_csv does not take WITH ORDINALITY"),
					 row_errposition(fexpr->location)));
		mooncake_lake_call_options(format, fexpr, &call);

		rel = palloc0(sizeof(RowRel));
		rel->varno = rti;
		rel->relid = mooncake_lake_relation(&call, mooncake_lake_describe(&call));
		r = relation_open(rel->relid, AccessShareLock);
		rel->tupdesc = CreateTupleDescCopy(RelationGetDescr(r));
		relation_close(r, NoLock);
		rel->rowname = pstrdup(strVal(linitial(rte->eref->colnames)));
		rel->what = files_name(&call);
		for (i = 0; i < rel->tupdesc->natts; i++)
			colnames = lappend(colnames,
							   makeString(pstrdup(NameStr(TupleDescAttr(rel->tupdesc, i)->attname))));

		mooncake_lake_rte_to_relation(query, rte, rel->relid, rel->tupdesc->natts);
		rte->eref = makeAlias(rte->eref->aliasname, colnames);
		if (rte->alias != NULL)
			rte->alias->colnames = NIL;
		cxt.rels = lappend(cxt.rels, rel);
	}
	if (cxt.rels != NIL)
	{
		fix_join_aliases(query, &cxt);
		if (top && query->commandType == CMD_SELECT)
		{
			name_target_list(query, &cxt);
			expand_target_list(query, &cxt);
		}
		query_tree_mutator(query, row_mutator, &cxt,
						   QTW_DONT_COPY_QUERY | QTW_IGNORE_JOINALIASES);
	}
	query_tree_walker(query, rewrite_nested_walker, &rowtype, 0);
}

static bool
rewrite_nested_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
	{
		rewrite_row_query((Query *) node, false, *(Oid *) context);
		return false;
	}
	return expression_tree_walker(node, rewrite_nested_walker, context);
}

/* What is left of mooncake.row after the rewrite is an error */
static bool
check_no_row_walker(Node *node, void *context)
{
	Oid			rowtype = *(Oid *) context;

	if (node == NULL)
		return false;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, check_no_row_walker, context,
								 QTW_IGNORE_JOINALIASES);
	if ((IsA(node, Var) && ((Var *) node)->vartype == rowtype) ||
		(IsA(node, SubscriptingRef) && ((SubscriptingRef *) node)->refcontainertype == rowtype))
		whole_row_error(exprLocation(node));
	return expression_tree_walker(node, check_no_row_walker, context);
}

static void
rewrite_statement(Query *query)
{
	Oid			rowtype = InvalidOid;

	if (query->commandType == CMD_UTILITY)
	{
		Node	   *stmt = query->utilityStmt;
		Node	   *inner = NULL;

		if (stmt == NULL)
			return;
		if (IsA(stmt, ExplainStmt))
			inner = ((ExplainStmt *) stmt)->query;
		else if (IsA(stmt, CreateTableAsStmt))
			inner = ((CreateTableAsStmt *) stmt)->query;
		else if (IsA(stmt, DeclareCursorStmt))
			inner = ((DeclareCursorStmt *) stmt)->query;
		if (inner != NULL && IsA(inner, Query))
			rewrite_statement((Query *) inner);
		return;
	}
	/* most statements read no read_csv: only a walk over them */
	if (!query_tree_walker(query, has_row_call_walker, &rowtype, QTW_EXAMINE_RTES_BEFORE))
		return;
	rewrite_row_query(query, true, rowtype);
	query_tree_walker(query, check_no_row_walker, &rowtype, QTW_IGNORE_JOINALIASES);
}

static void
lake_row_post_parse_analyze(ParseState *pstate, Query *query, JumbleState *jstate)
{
	ParseState *saved = row_pstate;

	if (prev_post_parse_analyze)
		prev_post_parse_analyze(pstate, query, jstate);
	row_pstate = pstate;
	PG_TRY();
	{
		rewrite_statement(query);
	}
	PG_FINALLY();
	{
		row_pstate = saved;
	}
	PG_END_TRY();
}

void
mooncake_install_lake_row_hook(void)
{
	prev_post_parse_analyze = post_parse_analyze_hook;
	post_parse_analyze_hook = lake_row_post_parse_analyze;
}
