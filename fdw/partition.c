/*-------------------------------------------------------------------------
 *
 * partition.c
 *		  Changes of a mirrored partitioned table's rows that its change
 *		  stream does not show.
 *
 * The publication mooncake_pub has publish_via_partition_root, so the row
 * changes of every partition reach the sidecar as changes of the
 * partitioned table the mirror follows. Four kinds of statements change
 * which rows a partitioned table holds without a single row change in the
 * stream:
 *
 *	- ALTER TABLE ... ATTACH PARTITION of a table that holds rows, and
 *	  DETACH PARTITION (also CONCURRENTLY, and FINALIZE);
 *	- DROP TABLE of a partition (also through DROP SCHEMA ... CASCADE,
 *	  DROP OWNED, ...);
 *	- TRUNCATE of a partition: pgoutput sends no truncate for a partition
 *	  published through its partitioned table.
 *
 * The event triggers cannot tell these apart: for ATTACH and DETACH,
 * pg_event_trigger_ddl_commands() reports one ALTER TABLE of the
 * partitioned table, like an ADD COLUMN; sql_drop reports the dropped
 * partition but not what it was a partition of (pg_inherits no longer
 * says); TRUNCATE fires no event trigger. A ProcessUtility hook sees the
 * statements themselves: once one of them has succeeded, it puts into the
 * transaction the message mooncake.follow_source_rewrite sends for a
 * rewrite ({"op":"rewrite","source":<oid>}, prefix mooncake_ddl) for every
 * partitioned table of the publication whose rows changed. The sidecar
 * then copies that source again when the transaction commits.
 *
 * The hook also keeps a partition and one of its partitioned tables from
 * both being mirrored: the changes of a partition reach the stream as
 * changes of its topmost published ancestor only, so a mirror of the
 * partition would silently stop following it. ATTACH PARTITION of such a
 * table fails; create_table refuses the same in the sidecar.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/heap.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_publication.h"
#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "replication/message.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "pg_mooncake.h"

/* The sidecar's publication (cdc.Publication) and message prefix (cdc.DDLPrefix) */
#define MOONCAKE_PUBLICATION	"mooncake_pub"
#define MOONCAKE_DDL_PREFIX		"mooncake_ddl"

static ProcessUtility_hook_type prev_process_utility = NULL;

static bool
is_published(Oid relid, Oid pubid)
{
	return SearchSysCacheExists2(PUBLICATIONRELMAP, ObjectIdGetDatum(relid),
								 ObjectIdGetDatum(pubid));
}

static char *
qualified_name(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/*
 * The published tables among relid (when with_self) and its partition
 * ancestors.
 */
static List *
published_ancestors(Oid relid, Oid pubid, bool with_self)
{
	List	   *out = NIL;
	ListCell   *lc;

	if (with_self && is_published(relid, pubid))
		out = lappend_oid(out, relid);
	if (get_rel_relispartition(relid))
	{
		foreach(lc, get_partition_ancestors(relid))
		{
			if (is_published(lfirst_oid(lc), pubid))
				out = list_append_unique_oid(out, lfirst_oid(lc));
		}
	}
	return out;
}

/*
 * ALTER TABLE parent ATTACH/DETACH PARTITION: the published tables among
 * parent and its ancestors. An ATTACH of a table that is itself published,
 * or holds a published partition, under a published table is refused.
 * *concurrent is set for DETACH ... CONCURRENTLY.
 */
static List *
altered_partitions(AlterTableStmt *stmt, Oid pubid, bool *concurrent)
{
	PartitionCmd *attach = NULL;
	bool		changes = false;
	Oid			parent;
	List	   *targets;
	ListCell   *lc;

	if (stmt->objtype != OBJECT_TABLE)
		return NIL;				/* ALTER INDEX ... ATTACH PARTITION moves no rows */
	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

		if (cmd->subtype == AT_AttachPartition)
			attach = castNode(PartitionCmd, cmd->def);
		if (cmd->subtype == AT_DetachPartition)
			*concurrent = castNode(PartitionCmd, cmd->def)->concurrent;
		if (cmd->subtype == AT_AttachPartition ||
			cmd->subtype == AT_DetachPartition ||
			cmd->subtype == AT_DetachPartitionFinalize)
			changes = true;
	}
	if (!changes)
		return NIL;
	/* Resolved as ALTER TABLE will; it reports the errors itself. */
	parent = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (!OidIsValid(parent))
		return NIL;
	targets = published_ancestors(parent, pubid, true);
	if (attach != NULL && targets != NIL)
	{
		Oid			part = RangeVarGetRelid(attach->name, NoLock, true);

		if (OidIsValid(part))
		{
			foreach(lc, find_all_inheritors(part, NoLock, NULL))
			{
				Oid			member = lfirst_oid(lc);

				if (is_published(member, pubid))
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("cannot attach %s to %s: %s and %s are both mirrored",
									qualified_name(part), qualified_name(parent),
									qualified_name(member),
									qualified_name(linitial_oid(targets))),
							 errdetail("The changes of a partition reach only the mirrors of its topmost mirrored partitioned table."),
							 errhint("Drop the mirrors of %s first.",
									 qualified_name(member))));
			}
		}
	}
	return targets;
}

/*
 * TRUNCATE: the published ancestors of the truncated partitions that are
 * not truncated themselves (a truncated published table gets its own
 * truncate message). The tables are found as TRUNCATE finds them: the
 * partitions of a partitioned table named without ONLY, and with CASCADE
 * the tables referencing them by foreign keys.
 */
static List *
truncated_partitions(TruncateStmt *stmt, Oid pubid)
{
	List	   *relids = NIL;
	List	   *targets = NIL;
	ListCell   *lc;

	foreach(lc, stmt->relations)
	{
		RangeVar   *rv = lfirst_node(RangeVar, lc);
		Oid			relid = RangeVarGetRelid(rv, NoLock, true);

		if (!OidIsValid(relid))
			continue;
		if (rv->inh)
			relids = list_concat_unique_oid(relids, find_all_inheritors(relid, NoLock, NULL));
		else
			relids = list_append_unique_oid(relids, relid);
	}
	if (stmt->behavior == DROP_CASCADE)
	{
		for (;;)
		{
			List	   *more = heap_truncate_find_FKs(relids);

			if (more == NIL)
				break;
			foreach(lc, more)
				relids = list_concat_unique_oid(relids,
												find_all_inheritors(lfirst_oid(lc), NoLock, NULL));
		}
	}
	foreach(lc, relids)
	{
		ListCell   *la;

		if (!get_rel_relispartition(lfirst_oid(lc)))
			continue;
		foreach(la, published_ancestors(lfirst_oid(lc), pubid, false))
		{
			if (!list_member_oid(relids, lfirst_oid(la)))
				targets = list_append_unique_oid(targets, lfirst_oid(la));
		}
	}
	return targets;
}

/*
 * For a DROP: every published partitioned table with its partitions (at
 * any depth), each list headed by the table itself.
 */
static List *
published_trees(Oid pubid)
{
	List	   *trees = NIL;
	ListCell   *lc;

	foreach(lc, GetPublicationRelations(pubid, PUBLICATION_PART_ROOT))
	{
		Oid			relid = lfirst_oid(lc);

		if (get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE)
			trees = lappend(trees, find_all_inheritors(relid, NoLock, NULL));
	}
	return trees;
}

static void
emit_rewrite(Oid relid, const char *reason)
{
	StringInfoData msg;

	initStringInfo(&msg);
	appendStringInfo(&msg, "{\"op\":\"rewrite\",\"source\":%u,\"why\":", relid);
	escape_json(&msg, reason);
	appendStringInfoChar(&msg, '}');
#if PG_VERSION_NUM >= 170000
	LogLogicalMessage(MOONCAKE_DDL_PREFIX, msg.data, msg.len, true, false);
#else
	LogLogicalMessage(MOONCAKE_DDL_PREFIX, msg.data, msg.len, true);
#endif
	pfree(msg.data);
}

static void
mooncake_process_utility(PlannedStmt *pstmt, const char *queryString,
						 bool readOnlyTree, ProcessUtilityContext context,
						 ParamListInfo params, QueryEnvironment *queryEnv,
						 DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	Oid			pubid = InvalidOid;
	List	   *targets = NIL;
	List	   *trees = NIL;
	const char *reason = NULL;
	bool		concurrent = false;
	ListCell   *lc;

	/*
	 * Only in a database whose mirrors follow partitioned tables, and only
	 * for the statements above: others pay one syscache lookup at most.
	 * What is collected lives in the statement's memory, which outlives
	 * the transaction DETACH ... CONCURRENTLY commits halfway.
	 */
	if (IsA(parsetree, AlterTableStmt) || IsA(parsetree, TruncateStmt) ||
		IsA(parsetree, DropStmt) || IsA(parsetree, DropOwnedStmt))
		pubid = get_publication_oid(MOONCAKE_PUBLICATION, true);
	if (OidIsValid(pubid))
	{
		switch (nodeTag(parsetree))
		{
			case T_AlterTableStmt:
				targets = altered_partitions((AlterTableStmt *) parsetree, pubid,
											 &concurrent);
				reason = "a partition was attached or detached";
				break;
			case T_TruncateStmt:
				targets = truncated_partitions((TruncateStmt *) parsetree, pubid);
				reason = "a partition was truncated";
				break;
			default:
				trees = published_trees(pubid);
				reason = "a partition was dropped";
				break;
		}
	}

	/*
	 * DETACH ... CONCURRENTLY commits a first transaction that marks the
	 * partition detached for new snapshots, then completes the detach in a
	 * second one, after the older snapshots are gone. The message goes into
	 * both: the copy made when the first commits leaves the partition's
	 * rows out, as queries of the partitioned table then do, even when the
	 * second never comes (the statement cancelled while it waits; FINALIZE
	 * completes it later, with a message of its own).
	 */
	if (concurrent)
	{
		foreach(lc, targets)
			emit_rewrite(lfirst_oid(lc), "a partition is being detached concurrently");
	}

	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context,
							 params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);

	foreach(lc, trees)
	{
		List	   *tree = lfirst(lc);
		ListCell   *lm;

		if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(linitial_oid(tree))))
			continue;			/* dropped itself, with its mirrors */
		for_each_from(lm, tree, 1)
		{
			if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(lfirst_oid(lm))))
			{
				targets = lappend_oid(targets, linitial_oid(tree));
				break;
			}
		}
	}
	foreach(lc, targets)
	{
		if (SearchSysCacheExists1(RELOID, ObjectIdGetDatum(lfirst_oid(lc))))
			emit_rewrite(lfirst_oid(lc), reason);
	}
}

void
mooncake_install_partition_hook(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = mooncake_process_utility;
}
