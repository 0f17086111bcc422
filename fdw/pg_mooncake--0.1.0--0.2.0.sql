/* pg_mooncake--0.1.0--0.2.0.sql: pg_mooncake 0.1.0 to 0.2.0 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pg_mooncake UPDATE TO '0.2.0'" to load this file. \quit

-- Leaves exactly the objects pg_mooncake--0.2.0.sql creates (test/upgrade_test.go
-- compares the two). Catalog tables, mirrors and their foreign tables are
-- untouched: the 0.2.0 sidecar reads the mirrors 0.1.0 wrote as they are.

-- create_table and create_request take a location: the routines of 0.1.0
-- are renamed, their successors created, the privileges granted on them
-- carried over, and then they are dropped.
ALTER FUNCTION mooncake.create_request(name, name, regclass, regclass, boolean)
  RENAME TO create_request_0_1_0;
ALTER PROCEDURE mooncake.create_table(text, text, text, boolean, text)
  RENAME TO create_table_0_1_0;

CREATE FUNCTION mooncake.create_request(mirror_schema name, mirror_name name, source regclass,
                                        key_index regclass, row_level_security boolean, location text)
RETURNS json
AS 'MODULE_PATHNAME', 'mooncake_create_request'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION mooncake.create_request(name, name, regclass, regclass, boolean, text) IS
  'ask the sidecar to create a mirror of source (owner of source, member of mooncake_user)';

CREATE FUNCTION mooncake.columnstore_stats(tbl regclass)
RETURNS json
AS 'MODULE_PATHNAME', 'mooncake_columnstore_stats'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION mooncake.columnstore_stats(regclass) IS
  'the live rows and the files of a columnstore table of its own, from its current Iceberg snapshot''s summary';

CREATE FUNCTION mooncake.remove_orphan_files(table_name regclass, older_than pg_catalog.interval DEFAULT '1 hour')
RETURNS bigint
AS 'MODULE_PATHNAME', 'mooncake_columnstore_sweep'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION mooncake.remove_orphan_files(regclass, pg_catalog.interval) IS
  'remove the files of a columnstore table of its own that no committed metadata references (rolled back or crashed writes) and that are older than older_than; returns how many';

-- Runs one CREATE or ALTER FOREIGN TABLE whose column types are the
-- placeholders mooncake_type_1, mooncake_type_2, ..., given as OIDs and
-- typmods: a mirror's columns get exactly their source's types whatever
-- their printed names read as under the session's parser. Runs as the
-- caller, as EXECUTE would.
CREATE FUNCTION mooncake.execute_typed(ddl text, types oid[], typmods int4[]) RETURNS void
AS 'MODULE_PATHNAME', 'mooncake_execute_typed'
LANGUAGE C STRICT;
COMMENT ON FUNCTION mooncake.execute_typed(text, oid[], int4[]) IS
  'run one CREATE or ALTER FOREIGN TABLE whose column types are the placeholders mooncake_type_N, given by OID and typmod';

CREATE PROCEDURE mooncake.create_table(table_name text, source text, key_index text DEFAULT NULL,
                                       replica_identity_full boolean DEFAULT false,
                                       row_level_security text DEFAULT 'refuse',
                                       location text DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
  src regclass;
  src_kind text;
  src_schema name;
  src_name name;
  parts text[];
  target_schema text;
  target_name text;
  columns text;
  column_types oid[];
  column_typmods int4[];
  ft regclass;
  grantee oid;
  col name;
  -- The caller's search_path resolves the names given; then the
  -- procedure's own statements run with pg_catalog's alone, so that no
  -- operator of a schema other roles may create in is resolved here.
  caller_path text := pg_catalog.current_setting('search_path');
  caller_schema name := pg_catalog.current_schema();
  src_label text; -- the source as the caller's search_path prints it
BEGIN
  BEGIN
    -- parse_ident: to_regclass gives NULL for a name that does not parse
    -- since PostgreSQL 16, an error before
    PERFORM pg_catalog.parse_ident(source);
    src := pg_catalog.to_regclass(source);
  EXCEPTION WHEN invalid_name OR invalid_parameter_value THEN
    RAISE EXCEPTION USING
      ERRCODE = '42602',
      MESSAGE = pg_catalog.format('invalid source table name: %L', source),
      HINT = 'Write it as in SQL: a name with capitals, spaces or other characters goes in double quotes, as in ''"My Table"'' or ''my_schema."My Table"''.';
  END;
  src_label := src::text;
  PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
  IF table_name IS NULL OR source IS NULL OR replica_identity_full IS NULL OR row_level_security IS NULL THEN
    RAISE EXCEPTION USING
      ERRCODE = '22004',
      MESSAGE = pg_catalog.format('argument %s of mooncake.create_table must not be NULL',
                                  CASE WHEN table_name IS NULL THEN 'table_name'
                                       WHEN source IS NULL THEN 'source'
                                       WHEN replica_identity_full IS NULL THEN 'replica_identity_full'
                                       ELSE 'row_level_security' END);
  END IF;
  IF row_level_security NOT IN ('refuse', 'ignore') THEN
    RAISE EXCEPTION USING
      ERRCODE = '22023',
      MESSAGE = pg_catalog.format('invalid value for argument row_level_security: %s', row_level_security),
      HINT = 'Use ''refuse'' (the default) or ''ignore''.';
  END IF;
  IF src IS NULL THEN
    RAISE EXCEPTION USING
      ERRCODE = '42P01',
      MESSAGE = pg_catalog.format('source table %s does not exist', source);
  END IF;

  SELECT c.relkind, n.nspname, c.relname
    INTO src_kind, src_schema, src_name
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE c.oid = src;
  IF src_kind = 'f' AND EXISTS (SELECT FROM pg_catalog.pg_foreign_table f
                                  JOIN pg_catalog.pg_foreign_server s ON s.oid = f.ftserver
                                 WHERE f.ftrelid = src AND s.srvname = 'mooncake') THEN
    RAISE EXCEPTION USING
      ERRCODE = '42809',
      MESSAGE = pg_catalog.format('%s is a columnstore table, not a table that can be mirrored', src_label),
      HINT = 'A columnstore table is columnar already: query it directly. Mirrors are of heap tables.';
  END IF;
  IF src_kind NOT IN ('r', 'p') THEN
    RAISE EXCEPTION USING
      ERRCODE = '42809',
      MESSAGE = pg_catalog.format('%s is not a table', src_label);
  END IF;
  IF src_kind = 'r' AND EXISTS (SELECT FROM pg_catalog.pg_inherits i WHERE i.inhparent = src) THEN
    RAISE EXCEPTION USING
      ERRCODE = '0A000',
      MESSAGE = pg_catalog.format('%s has inheritance children, whose rows a mirror would not hold', src_label),
      HINT = 'Mirror each table of the hierarchy on its own, or make it a partitioned table, whose partitions mirrors follow.';
  END IF;
  -- Only the source's owner (in role mooncake_user) or a superuser, and
  -- row-level security only when asked: before anything changes.
  PERFORM mooncake.check_create(src, row_level_security = 'ignore');
  -- Each partition logs its old rows by its own replica identity, whatever
  -- the partitioned table's says: mirrors of a partitioned table locate
  -- rows by its primary key, which every partition has.
  IF src_kind = 'p' AND (key_index IS NOT NULL OR replica_identity_full) THEN
    RAISE EXCEPTION USING
      ERRCODE = '0A000',
      MESSAGE = pg_catalog.format('%s is a partitioned table: key_index and replica_identity_full do not apply to it', src_label),
      HINT = 'Give the partitioned table a primary key (it includes the partition key).';
  END IF;

  BEGIN
    parts := pg_catalog.parse_ident(table_name);
  EXCEPTION WHEN invalid_name OR invalid_parameter_value THEN
    RAISE EXCEPTION USING
      ERRCODE = '42602',
      MESSAGE = pg_catalog.format('invalid table name: %L', table_name),
      HINT = 'Write it as in SQL: a name with capitals, spaces or other characters goes in double quotes, as in ''"My Table"'' or ''my_schema."My Table"''.';
  END;
  IF pg_catalog.array_length(parts, 1) = 1 THEN
    target_schema := caller_schema;
    target_name := parts[1];
    IF target_schema IS NULL THEN
      RAISE EXCEPTION USING
        ERRCODE = '3F000',
        MESSAGE = 'no schema has been selected to create in';
    END IF;
  ELSIF pg_catalog.array_length(parts, 1) = 2 THEN
    target_schema := parts[1];
    target_name := parts[2];
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_namespace
                    WHERE nspname = target_schema) THEN
      RAISE EXCEPTION USING
        ERRCODE = '3F000',
        MESSAGE = pg_catalog.format('schema "%s" does not exist', target_schema);
    END IF;
  ELSE
    RAISE EXCEPTION USING
      ERRCODE = '42602',
      MESSAGE = pg_catalog.format('improper table name: %s', table_name),
      HINT = 'Give a table name, optionally qualified with a schema name.';
  END IF;

  IF pg_catalog.octet_length(target_name) >= 64 THEN
    RAISE EXCEPTION USING
      ERRCODE = '42622',
      MESSAGE = pg_catalog.format('table name "%s" is too long', target_name);
  END IF;

  IF EXISTS (SELECT FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = target_schema AND c.relname = target_name) THEN
    RAISE EXCEPTION USING
      ERRCODE = '42P07',
      MESSAGE = pg_catalog.format('relation "%s.%s" already exists',
                                  target_schema, target_name),
      HINT = 'Choose another name for the columnstore table, or drop the existing relation first.';
  END IF;

  -- The simplified edition (wal_level below logical, or the sidecar run
  -- without change data capture) has no mirrors: say so before anything
  -- changes. A sidecar on another host (the server's options host and
  -- port) judges for itself.
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_foreign_server fs, pg_catalog.pg_options_to_table(fs.srvoptions) o
                  WHERE fs.srvname = 'mooncake' AND o.option_name = 'host') THEN
    IF pg_catalog.current_setting('wal_level') <> 'logical' THEN
      RAISE EXCEPTION USING
        ERRCODE = '55000',
        MESSAGE = pg_catalog.format('mooncake.create_table needs wal_level = logical, not %s',
                                    pg_catalog.current_setting('wal_level')),
        DETAIL = 'Without logical decoding pg_mooncake runs as its simplified edition: columnstore tables and data lake reads, no mirrors.',
        HINT = 'Set wal_level = logical (and pg_mooncake.enable_bgworker = on) in postgresql.conf and restart the server.';
    END IF;
    IF pg_catalog.current_setting('pg_mooncake.enable_bgworker', true) = 'off' THEN
      RAISE EXCEPTION USING
        ERRCODE = '55000',
        MESSAGE = 'mooncake.create_table needs pg_mooncake.enable_bgworker = on',
        DETAIL = 'With it off the sidecar runs as the simplified edition: columnstore tables and data lake reads, no mirrors.',
        HINT = 'Set pg_mooncake.enable_bgworker = on in postgresql.conf and restart the server.';
    END IF;
  END IF;

  -- The initial copy waits for transactions that have written to end:
  -- this one would wait for itself.
  IF pg_catalog.txid_current_if_assigned() IS NOT NULL THEN
    RAISE EXCEPTION USING
      ERRCODE = '25001',
      MESSAGE = 'mooncake.create_table cannot run in a transaction that has already written',
      HINT = 'Call it in its own transaction.';
  END IF;

  -- Opt-in: locate rows by a unique index of NOT NULL columns. PostgreSQL
  -- checks the index is fit to be the replica identity; the change is
  -- committed before the copy starts, so it must not run in a transaction
  -- block.
  IF key_index IS NOT NULL AND replica_identity_full THEN
    RAISE EXCEPTION USING
      ERRCODE = '22023',
      MESSAGE = 'key_index and replica_identity_full exclude each other';
  ELSIF key_index IS NOT NULL THEN
    EXECUTE pg_catalog.format('ALTER TABLE %s REPLICA IDENTITY USING INDEX %I', src, key_index);
    COMMIT;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
  ELSIF replica_identity_full THEN
    -- Opt-in: every column identifies a row (WAL then logs whole old rows).
    EXECUTE pg_catalog.format('ALTER TABLE %s REPLICA IDENTITY FULL', src);
    COMMIT;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
  END IF;

  -- The sidecar checks the source (key, column types), creates the Iceberg
  -- table, copies the rows and starts following the source's changes.
  -- Should this transaction end without attaching the mirror below
  -- (rolled back, failed), the sidecar drops the mirror.
  PERFORM mooncake.create_request(target_schema, target_name, src,
    CASE WHEN key_index IS NOT NULL
         THEN pg_catalog.format('%I.%I', src_schema, key_index)::regclass END,
    row_level_security = 'ignore', location);

  -- The columns' types go by OID (mooncake.execute_typed), never by their
  -- printed names, which another parser mode may read otherwise.
  SELECT pg_catalog.string_agg(
           pg_catalog.format('%I mooncake_type_%s OPTIONS (attnum %L)%s%s',
             c.attname, c.n, c.attnum,
             CASE WHEN c.attcollation <> c.typcollation
                  THEN pg_catalog.format(' COLLATE %I.%I', c.collschema, c.collname)
                  ELSE '' END,
             CASE WHEN c.attnotnull THEN ' NOT NULL' ELSE '' END),
           ', ' ORDER BY c.n),
         pg_catalog.array_agg(c.atttypid ORDER BY c.n),
         pg_catalog.array_agg(c.atttypmod ORDER BY c.n)
    INTO columns, column_types, column_typmods
    FROM (SELECT a.attname, a.attnum, a.atttypid, a.atttypmod, a.attcollation, a.attnotnull,
                 t.typcollation, cn.nspname AS collschema, co.collname,
                 pg_catalog.row_number() OVER (ORDER BY a.attnum) AS n
            FROM pg_catalog.pg_attribute a
            JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
            LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
            LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
           WHERE a.attrelid = src AND a.attnum > 0 AND NOT a.attisdropped) c;

  PERFORM mooncake.execute_typed(pg_catalog.format(
    'CREATE FOREIGN TABLE %I.%I (%s) SERVER mooncake OPTIONS (namespace %L, "table" %L)',
    target_schema, target_name, COALESCE(columns, ''),
    target_schema, target_name),
    COALESCE(column_types, '{}'), COALESCE(column_typmods, '{}'));
  ft := pg_catalog.format('%I.%I', target_schema, target_name)::regclass;
  -- The mirror starts with the source's privileges: whoever may read the
  -- source, or some of its columns, may read the same of the mirror.
  FOR grantee IN SELECT DISTINCT a.grantee
                   FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
                  WHERE c.oid = src AND a.privilege_type = 'SELECT'
                 UNION SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = src
  LOOP
    CONTINUE WHEN grantee = (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = ft);
    EXECUTE pg_catalog.format('GRANT SELECT ON %s TO %s', ft,
      CASE WHEN grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(grantee)) END);
  END LOOP;
  FOR col, grantee IN SELECT a.attname, x.grantee
                        FROM pg_catalog.pg_attribute a, pg_catalog.aclexplode(a.attacl) x
                       WHERE a.attrelid = src AND a.attnum > 0 AND NOT a.attisdropped
                         AND x.privilege_type = 'SELECT'
  LOOP
    EXECUTE pg_catalog.format('GRANT SELECT (%I) ON %s TO %s', col, ft,
      CASE WHEN grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(grantee)) END);
  END LOOP;
  -- The foreign table is the mirror's, and depends on the source: DROP
  -- TABLE of the source now fails naming the mirror, or drops it with
  -- CASCADE; the DDL triggers find the source's mirrors this way. The
  -- sidecar keeps the mirror once this transaction commits.
  PERFORM mooncake.attach_request(ft, src);
  PERFORM pg_catalog.set_config('search_path', caller_path, true);
END;
$$;
COMMENT ON PROCEDURE mooncake.create_table(text, text, text, boolean, text, text) IS
  'create the columnstore table table_name, a mirror of the table source (owned by you; you must be a superuser or a member of mooncake_user); key_index names a unique index of NOT NULL columns to locate rows by when source has no primary key (it becomes the source''s replica identity); replica_identity_full => true sets REPLICA IDENTITY FULL instead; row_level_security => ''ignore'' mirrors a table with row-level security, every row visible to whoever may read the mirror; location => ''s3://bucket/prefix'' (or a directory of the server) keeps the Iceberg table there rather than in pg_mooncake.warehouse';

-- A routine whose privileges were changed (GRANT or REVOKE since CREATE
-- EXTENSION) keeps them under its new signature. They are the user's, not
-- the extension's: no initial privileges recorded for them, as for a fresh
-- install.
DO $$
DECLARE
  r record;
  a record;
BEGIN
  FOR r IN SELECT o.proacl, v.new,
                  CASE n.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END AS kind
             FROM (VALUES
                    ('mooncake.create_request_0_1_0(name, name, regclass, regclass, boolean)'::pg_catalog.regprocedure,
                     'mooncake.create_request(name, name, regclass, regclass, boolean, text)'::pg_catalog.regprocedure),
                    ('mooncake.create_table_0_1_0(text, text, text, boolean, text)'::pg_catalog.regprocedure,
                     'mooncake.create_table(text, text, text, boolean, text, text)'::pg_catalog.regprocedure)) AS v(old, new)
             JOIN pg_catalog.pg_proc o ON o.oid = v.old
             JOIN pg_catalog.pg_proc n ON n.oid = v.new
            WHERE o.proacl IS NOT NULL
  LOOP
    EXECUTE pg_catalog.format('REVOKE ALL ON %s %s FROM PUBLIC', r.kind, r.new);
    FOR a IN SELECT * FROM pg_catalog.aclexplode(r.proacl) LOOP
      EXECUTE pg_catalog.format('GRANT EXECUTE ON %s %s TO %s%s', r.kind, r.new,
        CASE WHEN a.grantee = 0 THEN 'PUBLIC'
             ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END,
        CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
    DELETE FROM pg_catalog.pg_init_privs i
     WHERE i.classoid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND i.objoid = r.new;
  END LOOP;
END;
$$;
DROP FUNCTION mooncake.create_request_0_1_0(name, name, regclass, regclass, boolean);
DROP PROCEDURE mooncake.create_table_0_1_0(text, text, text, boolean, text);

-- Mirror DDL through execute_typed (column types by OID and typmod).
CREATE OR REPLACE FUNCTION mooncake.align_foreign_table(ft oid, src oid) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  r record;
  fq text := ft::regclass::text;
BEGIN
  IF NOT EXISTS (SELECT FROM pg_attribute a, pg_options_to_table(a.attfdwoptions) o
                  WHERE a.attrelid = ft AND a.attnum > 0 AND o.option_name = 'attnum') THEN
    RETURN; -- made by an older version, without attnums
  END IF;
  FOR r IN SELECT a.attname AS ftname, s.attname AS srcname, s.attnum AS srcnum,
                  a.atttypid AS fttype, a.atttypmod AS fttypmod,
                  s.atttypid AS srctype, s.atttypmod AS srctypmod,
                  a.attcollation AS ftcoll, s.attcollation AS srccoll,
                  cn.nspname AS collschema, co.collname,
                  a.attnotnull AS ftnotnull, s.attnotnull AS srcnotnull
             FROM pg_attribute a
             LEFT JOIN pg_attribute s
               ON s.attrelid = src AND NOT s.attisdropped
              AND s.attnum = (SELECT o.option_value::int FROM pg_options_to_table(a.attfdwoptions) o
                               WHERE o.option_name = 'attnum')
             LEFT JOIN pg_collation co ON co.oid = s.attcollation
             LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
            WHERE a.attrelid = ft AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
  LOOP
    IF r.srcnum IS NULL THEN
      PERFORM mooncake.execute_typed(format('ALTER FOREIGN TABLE %s DROP COLUMN %I', fq, r.ftname), '{}', '{}');
      CONTINUE;
    END IF;
    IF r.fttype <> r.srctype OR r.fttypmod <> r.srctypmod OR r.ftcoll <> r.srccoll THEN
      PERFORM mooncake.execute_typed(
        format('ALTER FOREIGN TABLE %s ALTER COLUMN %I TYPE mooncake_type_1%s', fq, r.ftname,
               CASE WHEN r.srccoll <> 0 THEN format(' COLLATE %I.%I', r.collschema, r.collname) ELSE '' END),
        ARRAY[r.srctype], ARRAY[r.srctypmod]);
    END IF;
    IF r.ftnotnull <> r.srcnotnull THEN
      PERFORM mooncake.execute_typed(format('ALTER FOREIGN TABLE %s ALTER COLUMN %I %s NOT NULL', fq, r.ftname,
                     CASE WHEN r.srcnotnull THEN 'SET' ELSE 'DROP' END), '{}', '{}');
    END IF;
    IF r.ftname <> r.srcname THEN
      -- Through a name no column has, so that columns may swap names.
      PERFORM mooncake.execute_typed(format('ALTER FOREIGN TABLE %s RENAME COLUMN %I TO %I', fq, r.ftname,
                     'mooncake renaming ' || r.srcnum), '{}', '{}');
    END IF;
  END LOOP;
  FOR r IN SELECT a.attname AS ftname, s.attname AS srcname
             FROM pg_attribute a
             JOIN pg_attribute s ON s.attrelid = src AND s.attnum = substr(a.attname, 19)::int
            WHERE a.attrelid = ft AND a.attnum > 0 AND NOT a.attisdropped
              AND a.attname LIKE 'mooncake renaming %'
  LOOP
    PERFORM mooncake.execute_typed(format('ALTER FOREIGN TABLE %s RENAME COLUMN %I TO %I', fq, r.ftname, r.srcname), '{}', '{}');
  END LOOP;
  FOR r IN SELECT s.attnum, s.attname, s.atttypid AS srctype, s.atttypmod AS srctypmod,
                  s.attcollation AS srccoll, cn.nspname AS collschema, co.collname, s.attnotnull
             FROM pg_attribute s
             LEFT JOIN pg_collation co ON co.oid = s.attcollation
             LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
            WHERE s.attrelid = src AND s.attnum > 0 AND NOT s.attisdropped
              AND NOT EXISTS (SELECT FROM pg_attribute a, pg_options_to_table(a.attfdwoptions) o
                               WHERE a.attrelid = ft AND a.attnum > 0 AND NOT a.attisdropped
                                 AND o.option_name = 'attnum' AND o.option_value::int = s.attnum)
            ORDER BY s.attnum
  LOOP
    PERFORM mooncake.execute_typed(
      format('ALTER FOREIGN TABLE %s ADD COLUMN %I mooncake_type_1 OPTIONS (attnum %L)%s%s', fq, r.attname,
             r.attnum,
             CASE WHEN r.srccoll <> 0 THEN format(' COLLATE %I.%I', r.collschema, r.collname) ELSE '' END,
             CASE WHEN r.attnotnull THEN ' NOT NULL' ELSE '' END),
      ARRAY[r.srctype], ARRAY[r.srctypmod]);
  END LOOP;
END;
$$;

-- Live rows and files of columnstore tables of their own, through columnstore_stats.
CREATE OR REPLACE VIEW mooncake.columnstore_tables AS
SELECT t.schema_name,
       t.table_name,
       t.source,
       t.state,
       t.error,
       t.metadata_location,
       t.applied_lsn,
       t.flushed_lsn,
       t.rows,
       t.unflushed_rows,
       t.data_files,
       t.delete_files,
       GREATEST(pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), t.visible_lsn), 0)::bigint AS lag_bytes,
       CASE WHEN pg_catalog.pg_current_wal_lsn() <= t.visible_lsn OR t.last_commit_time IS NULL THEN 0
            ELSE GREATEST(pg_catalog.date_part('epoch', pg_catalog.now()) - pg_catalog.date_part('epoch', t.last_commit_time), 0)
       END::double precision AS lag_seconds
  FROM pg_catalog.json_to_recordset(
         mooncake.list_request() -> 'tables')
       AS t(foreign_table_oid oid, schema_name name, table_name name, source text, state text, error text,
            metadata_location text, applied_lsn pg_lsn, flushed_lsn pg_lsn,
            visible_lsn pg_lsn, last_commit_time timestamptz, rows bigint,
            unflushed_rows bigint, data_files int, delete_files int)
 -- Each mirror only to the roles that may read it (or some of its columns).
 WHERE pg_catalog.has_any_column_privilege(NULLIF(t.foreign_table_oid, 0), 'SELECT')
    OR (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = CURRENT_USER)
UNION ALL
-- Columnstore tables of their own: no source, always ready; rows are the
-- live rows of the current snapshot (deleted rows not counted).
SELECT s.nspname, s.relname, NULL::text, 'ready'::text, NULL::text, s.metadata_location,
       NULL::pg_lsn, NULL::pg_lsn, (s.stats ->> 'rows')::bigint, 0::bigint,
       (s.stats ->> 'data_files')::int, (s.stats ->> 'delete_files')::int, 0::bigint, 0::double precision
  FROM (SELECT n.nspname, k.relname, t.metadata_location, mooncake.columnstore_stats(c.relid::regclass) AS stats
          FROM mooncake.columnstore_relations c
          JOIN pg_catalog.pg_class k ON k.oid = c.relid
          JOIN pg_catalog.pg_namespace n ON n.oid = k.relnamespace
          JOIN mooncake.iceberg_tables t ON t.catalog_name = 'mooncake'
           AND t.table_namespace = c.table_namespace AND t.table_name = c.table_name
         WHERE pg_catalog.has_any_column_privilege(c.relid, 'SELECT')
            OR (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = CURRENT_USER)) s;

-- The copies of sources under way in the cluster (create_table's initial
-- copy, resync_table, the copies schema changes need), as the sidecar
-- counts them: like pg_stat_progress_copy.
CREATE FUNCTION mooncake.progress_request()
RETURNS json
AS 'MODULE_PATHNAME', 'mooncake_progress_request'
LANGUAGE C STRICT VOLATILE;

-- pid is the backend that asked (NULL for the copies a schema change
-- starts); rows_estimated the planner's estimate of the source's rows
-- (reltuples scaled to the table's current size); bytes_copied the size of
-- the rows read (binary COPY). A copy is shown to members of pg_read_all_stats
-- (superusers too), to the role of the backend that asked, and to roles
-- that may read the mirror.
CREATE VIEW mooncake.copy_progress AS
SELECT p.pid,
       p.database,
       p.schema_name,
       p.table_name,
       p.source,
       p.command,
       p.phase,
       p.rows_copied,
       p.rows_estimated,
       p.bytes_copied,
       p.started_at
  FROM pg_catalog.json_to_recordset(mooncake.progress_request() -> 'copies')
       AS p(pid int, database name, schema_name name, table_name name, source text,
            foreign_table_oid oid, command text, phase text, rows_copied bigint,
            rows_estimated bigint, bytes_copied bigint, started_at timestamptz)
 WHERE pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE')
    OR EXISTS (SELECT FROM pg_catalog.pg_stat_activity a
                WHERE a.pid = p.pid AND a.usesysid = (SELECT r.oid FROM pg_catalog.pg_roles r
                                                        WHERE r.rolname = CURRENT_USER))
    OR (p.database = pg_catalog.current_database()
        AND pg_catalog.has_any_column_privilege(NULLIF(p.foreign_table_oid, 0), 'SELECT'));
COMMENT ON VIEW mooncake.copy_progress IS
  'the copies of sources under way (create_table, resync_table, schema changes): phase, rows copied of the estimated rows, bytes, start';

-- Replication slots named like the mirrors' (mooncake_<database oid>, and
-- mooncake_sync_* like the temporary slots of copies) that the sidecar does
-- not use: left by a crash, a dropped extension or an older install.
-- Temporary slots go away with their session, so they are never orphans
-- (a copy's may outlive its copy by a moment, with its walsender). Each
-- database sees and drops only its own slots (a logical slot belongs to one
-- database); run the functions in each database. Superusers only.
CREATE FUNCTION mooncake.list_orphan_slots()
RETURNS TABLE(slot_name name, database name, plugin name, active_pid integer,
              restart_lsn pg_lsn, confirmed_flush_lsn pg_lsn, retained_bytes bigint, reason text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  in_use text[];
  db_oid oid;
BEGIN
  IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = CURRENT_USER) THEN
    RAISE EXCEPTION USING
      ERRCODE = '42501',
      MESSAGE = 'permission denied to list or drop orphan replication slots',
      DETAIL = 'Only superusers may list or drop replication slots of pg_mooncake.';
  END IF;
  SELECT d.oid INTO db_oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database();
  -- The slots the sidecar uses for this database: it opens the database's
  -- mirrors first, so a slot mirrors will resume from is in use even when
  -- the stream is not running.
  in_use := ARRAY(SELECT pg_catalog.json_array_elements_text(mooncake.sidecar_request(
              pg_catalog.json_build_object('op', 'slots', 'database', pg_catalog.current_database(),
                'extension', (SELECT e.oid::bigint FROM pg_catalog.pg_extension e WHERE e.extname = 'pg_mooncake')))
              -> 'in_use'));
  RETURN QUERY
  SELECT s.slot_name, s.database, s.plugin, s.active_pid, s.restart_lsn,
         s.confirmed_flush_lsn,
         pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.restart_lsn)::bigint,
         CASE WHEN s.slot_name LIKE 'mooncake\_sync\_%' THEN 'a copy''s slot that no copy of the sidecar holds'
              WHEN s.slot_name = 'mooncake_' || db_oid::text THEN 'the sidecar has no mirror in this database'
              ELSE 'not the slot of this database (mooncake_' || db_oid::text || ')' END
    FROM pg_catalog.pg_replication_slots s
   WHERE s.slot_type = 'logical'
     AND NOT s.temporary  -- gone with its session: never left behind
     AND s.database = pg_catalog.current_database()
     AND s.slot_name LIKE 'mooncake\_%'
     AND s.slot_name::text <> ALL (in_use)
   ORDER BY s.slot_name;
END;
$$;
COMMENT ON FUNCTION mooncake.list_orphan_slots() IS
  'replication slots of this database named like pg_mooncake''s that its sidecar does not use (superusers only)';
REVOKE ALL ON FUNCTION mooncake.list_orphan_slots() FROM PUBLIC;

CREATE FUNCTION mooncake.drop_orphan_slots()
RETURNS TABLE(slot_name name)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  orphan name;
BEGIN
  FOR orphan IN SELECT o.slot_name FROM mooncake.list_orphan_slots() o WHERE o.active_pid IS NULL LOOP
    BEGIN
      PERFORM pg_catalog.pg_drop_replication_slot(orphan);
      slot_name := orphan;
      RETURN NEXT;
    EXCEPTION WHEN object_in_use OR undefined_object THEN
      NULL;  -- became active, or dropped, meanwhile: never drop an active slot
    END;
  END LOOP;
END;
$$;
COMMENT ON FUNCTION mooncake.drop_orphan_slots() IS
  'drop the inactive slots list_orphan_slots() shows and return their names (superusers only)';
REVOKE ALL ON FUNCTION mooncake.drop_orphan_slots() FROM PUBLIC;

-- Columnstore tables of their own: the files of writes never committed.
CREATE OR REPLACE PROCEDURE mooncake.optimize_table(table_name text)
LANGUAGE plpgsql
AS $$
DECLARE
  ft regclass;
  caller_path text := pg_catalog.current_setting('search_path');
BEGIN
  ft := mooncake.columnstore_table(table_name, 'optimize_table');
  PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
  IF EXISTS (SELECT FROM pg_catalog.pg_foreign_table f, pg_catalog.pg_options_to_table(f.ftoptions) o
              WHERE f.ftrelid = ft AND o.option_name = 'columnstore') THEN
    -- a columnstore table of its own: the files of writes never committed
    PERFORM mooncake.remove_orphan_files(ft);
    PERFORM pg_catalog.set_config('search_path', caller_path, true);
    RETURN;
  END IF;
  PERFORM mooncake.mirror_request('optimize', ft);
  PERFORM pg_catalog.set_config('search_path', caller_path, true);
END;
$$;
COMMENT ON PROCEDURE mooncake.optimize_table(text) IS
  'compact the columnstore table''s files now, expire old snapshots and remove orphaned files';

GRANT SELECT ON mooncake.copy_progress TO PUBLIC;

-- Files of dropped columnstore tables are removed once the drop commits.
-- Columnstore tables dropped by committed transactions whose files are
-- still to be removed, by their last committed metadata file: the sidecar
-- removes the files and then the row, after the commit (a rolled back drop
-- leaves no row) or, after a crash, when it starts (catalog/dropped.go).
CREATE TABLE mooncake.dropped_columnstore (
  metadata_location varchar PRIMARY KEY,
  dropped_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
REVOKE ALL ON mooncake.dropped_columnstore FROM PUBLIC;

-- The backend's part of a drop: forget the transaction's own writes of
-- the table (nothing commits them now) and ask the sidecar, once the
-- transaction has committed, to remove the dropped tables' files.
CREATE FUNCTION mooncake.columnstore_dropped(relid oid)
RETURNS void
AS 'MODULE_PATHNAME', 'mooncake_columnstore_dropped'
LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION mooncake.columnstore_dropped(oid) FROM PUBLIC;

-- The backend's part of dropping a mirror's foreign table: once the
-- transaction has committed, ask the sidecar to drop the mirror.
CREATE FUNCTION mooncake.mirror_dropped(relid oid, schema_name text, object_name text)
RETURNS void
AS 'MODULE_PATHNAME', 'mooncake_mirror_dropped'
LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION mooncake.mirror_dropped(oid, text, text) FROM PUBLIC;

-- Dropping a columnstore table's foreign table drops its mirror: the
-- Iceberg table, its files and its place in the replication stream.
CREATE OR REPLACE FUNCTION mooncake.drop_mirrors() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT objid, schema_name, object_name
             FROM pg_catalog.pg_event_trigger_dropped_objects()
            WHERE object_type = 'foreign table'
  LOOP
    -- A columnstore table of its own: its Iceberg table leaves the
    -- catalog in the same transaction, and its files go once that
    -- transaction has committed.
    IF EXISTS (SELECT FROM mooncake.columnstore_relations c WHERE c.relid = r.objid) THEN
      INSERT INTO mooncake.dropped_columnstore (metadata_location)
      SELECT t.metadata_location FROM mooncake.iceberg_tables t JOIN mooncake.columnstore_relations c
          ON t.catalog_name = 'mooncake' AND t.table_namespace = c.table_namespace AND t.table_name = c.table_name
       WHERE c.relid = r.objid AND t.metadata_location IS NOT NULL
      ON CONFLICT DO NOTHING;
      PERFORM mooncake.columnstore_dropped(r.objid);
      DELETE FROM mooncake.iceberg_tables t USING mooncake.columnstore_relations c
       WHERE c.relid = r.objid AND t.catalog_name = 'mooncake'
         AND t.table_namespace = c.table_namespace AND t.table_name = c.table_name;
      DELETE FROM mooncake.columnstore_relations c WHERE c.relid = r.objid;
      CONTINUE;
    END IF;
    -- Any other foreign table may be a mirror's: once the transaction has
    -- committed, the sidecar drops the mirror of that foreign table, by
    -- OID (a renamed or moved foreign table drops its own mirror, and no
    -- other foreign table of its old name does). A rolled back drop
    -- leaves the mirror as it was.
    PERFORM mooncake.mirror_dropped(r.objid, r.schema_name, r.object_name);
  END LOOP;
END;
$$;

-- 0.2.0 resolves the names its procedures are given in the caller's
-- search_path and runs their own statements with pg_catalog's alone (no
-- operator of a schema other roles may create in is ever resolved there).
CREATE OR REPLACE FUNCTION mooncake.columnstore_table(table_name text, caller text) RETURNS regclass
LANGUAGE plpgsql STABLE
AS $$
DECLARE
  ft regclass;
BEGIN
  IF table_name IS NULL THEN
    RAISE EXCEPTION USING
      ERRCODE = '22004',
      MESSAGE = pg_catalog.format('argument table_name of mooncake.%s must not be NULL', caller);
  END IF;
  ft := pg_catalog.to_regclass(table_name);
  IF ft IS NULL THEN
    RAISE EXCEPTION USING
      ERRCODE = '42P01',
      MESSAGE = pg_catalog.format('columnstore table %s does not exist', table_name);
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_foreign_table f
                   JOIN pg_catalog.pg_foreign_server s ON s.oid = f.ftserver
                  WHERE f.ftrelid OPERATOR(pg_catalog.=) ft::pg_catalog.oid
                    AND s.srvname OPERATOR(pg_catalog.=) 'mooncake'::pg_catalog.name) THEN
    RAISE EXCEPTION USING
      ERRCODE = '42809',
      MESSAGE = pg_catalog.format('%s is not a columnstore table', ft);
  END IF;
  RETURN ft;
END;
$$;

CREATE OR REPLACE PROCEDURE mooncake.drop_table(table_name text)
LANGUAGE plpgsql
AS $$
DECLARE
  ft regclass;
  caller_path text := pg_catalog.current_setting('search_path');
BEGIN
  ft := mooncake.columnstore_table(table_name, 'drop_table');
  PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
  -- The event trigger below drops the mirror with its foreign table.
  EXECUTE pg_catalog.format('DROP FOREIGN TABLE %s', ft);
  PERFORM pg_catalog.set_config('search_path', caller_path, true);
END;
$$;

CREATE OR REPLACE PROCEDURE mooncake.resync_table(table_name text)
LANGUAGE plpgsql
AS $$
DECLARE
  ft regclass;
  caller_path text := pg_catalog.current_setting('search_path');
BEGIN
  ft := mooncake.columnstore_table(table_name, 'resync_table');
  PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
  PERFORM mooncake.mirror_request('resync_table', ft);
  PERFORM pg_catalog.set_config('search_path', caller_path, true);
END;
$$;

CREATE OR REPLACE FUNCTION public.iceberg_snapshots(path text)
RETURNS TABLE (sequence_number bigint, snapshot_id bigint, timestamp_ms timestamptz,
               manifest_list text, operation text)
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$
  SELECT t.sequence_number, t.snapshot_id, t.timestamp_ms, t.manifest_list, NULLIF(t.operation, '')
    FROM pg_catalog.jsonb_to_recordset(mooncake.iceberg_request('snapshots', path) -> 'rows')
         AS t(sequence_number bigint, snapshot_id bigint, timestamp_ms timestamptz,
              manifest_list text, operation text)
$$;

CREATE OR REPLACE FUNCTION public.iceberg_metadata(path text, snapshot_id bigint DEFAULT NULL)
RETURNS TABLE (manifest_path text, manifest_sequence_number bigint, manifest_content text,
               status text, content text, file_path text, file_format text, record_count bigint,
               data_sequence_number bigint, file_sequence_number bigint)
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$
  SELECT t.*
    FROM pg_catalog.jsonb_to_recordset(mooncake.iceberg_request('entries', path, snapshot_id) -> 'rows')
         AS t(manifest_path text, manifest_sequence_number bigint, manifest_content text,
              status text, content text, file_path text, file_format text, record_count bigint,
              data_sequence_number bigint, file_sequence_number bigint)
$$;

-- ALTER TABLE ... ENABLE ROW LEVEL SECURITY of a mirrored table is refused.
CREATE FUNCTION mooncake.changes_type_values(command pg_ddl_command)
RETURNS boolean
AS 'MODULE_PATHNAME', 'mooncake_changes_type_values'
LANGUAGE C STRICT STABLE;
COMMENT ON FUNCTION mooncake.changes_type_values(pg_ddl_command) IS
  'whether an ALTER TYPE command of pg_event_trigger_ddl_commands() changes how existing values print (enum RENAME VALUE, composite attributes)';

CREATE FUNCTION mooncake.enables_row_security(command pg_ddl_command)
RETURNS boolean
AS 'MODULE_PATHNAME', 'mooncake_enables_row_security'
LANGUAGE C STRICT STABLE;
COMMENT ON FUNCTION mooncake.enables_row_security(pg_ddl_command) IS
  'whether an ALTER TABLE command of pg_event_trigger_ddl_commands() enables row-level security';

CREATE OR REPLACE FUNCTION mooncake.follow_source_ddl() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  src oid;
  ft oid;
BEGIN
  -- Inheritance children of a mirrored table: a mirror holds its source's
  -- own rows, not theirs (partitions are another matter: followed).
  FOR src IN SELECT DISTINCT i.inhparent
               FROM pg_event_trigger_ddl_commands() c
               JOIN pg_inherits i ON i.inhrelid = c.objid
              WHERE c.classid = 'pg_catalog.pg_class'::regclass
  LOOP
    IF (SELECT p.relkind FROM pg_class p WHERE p.oid = src) = 'r' AND EXISTS (SELECT FROM mooncake.mirrors_of(src)) THEN
      RAISE EXCEPTION USING
        ERRCODE = '0A000',
        MESSAGE = pg_catalog.format('mirrored table %s cannot have inheritance children', src::regclass),
        DETAIL = 'Its mirrors hold its own rows, not those of its children, which queries of the table include.',
        HINT = 'Drop the mirrors first (mooncake.drop_table), or make the table a partitioned table, whose partitions mirrors follow.';
    END IF;
  END LOOP;
  -- ALTER TYPE of a type a mirrored source's columns hold (itself, an
  -- array or a domain of it, a composite with an attribute of it) that
  -- changes how its values print: mirrors hold such values as text, and
  -- no row change shows the new text: they copy their source again.
  IF EXISTS (SELECT FROM pg_event_trigger_ddl_commands() c WHERE c.command_tag = 'ALTER TYPE') THEN
    FOR src IN
      WITH RECURSIVE changed(oid) AS (
        -- an enum is reported as its type, a composite as its relation
        SELECT COALESCE(t.oid, c.objid)
          FROM pg_event_trigger_ddl_commands() c
          LEFT JOIN pg_type t ON c.classid = 'pg_catalog.pg_class'::regclass AND t.typrelid = c.objid
         WHERE c.command_tag = 'ALTER TYPE' AND mooncake.changes_type_values(c.command)
           AND (c.classid = 'pg_catalog.pg_type'::regclass OR t.oid IS NOT NULL)
        UNION
        SELECT t.oid FROM changed ch, pg_type t
         WHERE t.typelem = ch.oid OR t.typbasetype = ch.oid
            OR (t.typtype = 'c' AND EXISTS (SELECT FROM pg_attribute a
                                             WHERE a.attrelid = t.typrelid AND a.atttypid = ch.oid
                                               AND a.attnum > 0 AND NOT a.attisdropped)))
      SELECT DISTINCT a.attrelid
        FROM changed ch JOIN pg_attribute a ON a.atttypid = ch.oid
       WHERE a.attnum > 0 AND NOT a.attisdropped
    LOOP
      CONTINUE WHEN NOT EXISTS (SELECT FROM mooncake.mirrors_of(src));
      PERFORM pg_logical_emit_message(true, 'mooncake_ddl',
        json_build_object('op', 'rewrite', 'source', src::bigint,
                          'why', 'a type of its columns changed how its values print')::text);
    END LOOP;
  END IF;
  -- An ALTER TABLE of a partitioned table reaches its partitions, and is
  -- reported for the partitioned table only: a mirrored partition follows
  -- the changes of the tables above it.
  FOR src IN SELECT t.relid
               FROM (SELECT c.objid AS relid
                       FROM pg_event_trigger_ddl_commands() c
                      WHERE c.classid = 'pg_catalog.pg_class'::regclass
                     UNION
                     SELECT p.relid
                       FROM pg_event_trigger_ddl_commands() c, pg_partition_tree(c.objid) p
                      WHERE c.classid = 'pg_catalog.pg_class'::regclass
                        AND c.command_tag = 'ALTER TABLE') t
              WHERE EXISTS (SELECT FROM mooncake.mirrors_of(t.relid))
  LOOP
    -- A mirror cannot enforce row-level security: enabling it on a
    -- mirrored table would leave every row readable through the mirror.
    IF EXISTS (SELECT FROM pg_event_trigger_ddl_commands() c
                WHERE c.objid = src AND mooncake.enables_row_security(c.command)) THEN
      RAISE EXCEPTION USING
        ERRCODE = '42501',
        MESSAGE = pg_catalog.format('cannot enable row-level security on table %s: it has mirrors, which cannot enforce it', src::regclass),
        DETAIL = 'Whoever may read a mirror would see every row of the table.',
        HINT = 'Drop its mirrors first (mooncake.drop_table), or enable it and then create them again with row_level_security => ''ignore''.';
    END IF;
    -- With the columns whose type changed by a plain cast: a rewrite made
    -- only by such widenings keeps every value.
    PERFORM pg_logical_emit_message(true, 'mooncake_ddl',
      (mooncake.source_shape(src)::jsonb || jsonb_build_object('plain_type_changes',
         COALESCE((SELECT jsonb_agg(DISTINCT a)
                     FROM pg_event_trigger_ddl_commands() c,
                          unnest(mooncake.plain_type_changes(c.command)) AS a
                    WHERE c.objid = src), '[]'::jsonb)))::text);
    FOR ft IN SELECT mooncake.mirrors_of(src) LOOP
      PERFORM mooncake.align_foreign_table(ft, src);
    END LOOP;
  END LOOP;
END;
$$;

-- pg_dump leaves the Iceberg catalog's rows out (see the 0.2.0 script).
SELECT pg_catalog.pg_extension_config_dump('mooncake.iceberg_tables', 'WHERE false');
SELECT pg_catalog.pg_extension_config_dump('mooncake.iceberg_namespace_properties', 'WHERE false');

-- Which database the catalog above belongs to (its OID) and its directory
-- in the warehouse, one row written by the sidecar: a renamed database
-- keeps its directory, and a copy of the database (CREATE DATABASE ...
-- TEMPLATE) does not take over the original's tables (catalog/identity.go).
-- pg_dump leaves the row out: a restored database is a new owner.
CREATE TABLE mooncake.database_identity (
  database_oid oid NOT NULL,
  directory varchar NOT NULL
);
CREATE UNIQUE INDEX database_identity_one_row ON mooncake.database_identity ((true));
REVOKE ALL ON mooncake.database_identity FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('mooncake.database_identity', 'WHERE false');
