/* pg_mooncake--0.1.0.sql: the SQL surface of pg_mooncake */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION pg_mooncake" to load this file. \quit

CREATE SCHEMA mooncake;
COMMENT ON SCHEMA mooncake IS 'pg_mooncake: columnstore tables and their tools';

-- The foreign data wrapper and its one server

CREATE FUNCTION mooncake.fdw_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME', 'mooncake_fdw_handler'
LANGUAGE C STRICT;

CREATE FUNCTION mooncake.fdw_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME', 'mooncake_fdw_validator'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER mooncake_fdw
  HANDLER mooncake.fdw_handler
  VALIDATOR mooncake.fdw_validator;
COMMENT ON FOREIGN DATA WRAPPER mooncake_fdw IS
  'columnstore tables: Iceberg tables read through the mooncake sidecar';

CREATE SERVER mooncake FOREIGN DATA WRAPPER mooncake_fdw;
COMMENT ON SERVER mooncake IS
  'the mooncake sidecar: the local one, or the one at the options host and port';

-- Talking to the sidecar

CREATE FUNCTION mooncake.bgworker_status()
RETURNS json
AS 'MODULE_PATHNAME', 'mooncake_bgworker_status'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION mooncake.bgworker_status() IS
  'is the mooncake sidecar running and answering on its socket?';

CREATE FUNCTION mooncake.sidecar_request(request json)
RETURNS json
AS 'MODULE_PATHNAME', 'mooncake_sidecar_request'
LANGUAGE C STRICT VOLATILE;
REVOKE EXECUTE ON FUNCTION mooncake.sidecar_request(json) FROM PUBLIC;
COMMENT ON FUNCTION mooncake.sidecar_request(json) IS
  'send one request to the mooncake sidecar and return its JSON answer';

-- Creating a columnstore table

-- The Iceberg catalog of this database's mirrors, in the layout of the
-- Iceberg SQL catalog (iceberg-go, pyiceberg's SqlCatalog, Spark's
-- JdbcCatalog read it). Part of the extension: DROP EXTENSION removes it,
-- pg_dump keeps its rows.
CREATE TABLE mooncake.iceberg_tables (
  catalog_name varchar NOT NULL,
  table_namespace varchar NOT NULL,
  table_name varchar NOT NULL,
  iceberg_type varchar,
  metadata_location varchar,
  previous_metadata_location varchar,
  PRIMARY KEY (catalog_name, table_namespace, table_name)
);
CREATE TABLE mooncake.iceberg_namespace_properties (
  catalog_name varchar NOT NULL,
  namespace varchar NOT NULL,
  property_key varchar NOT NULL,
  property_value varchar,
  PRIMARY KEY (catalog_name, namespace, property_key)
);
SELECT pg_catalog.pg_extension_config_dump('mooncake.iceberg_tables', '');
SELECT pg_catalog.pg_extension_config_dump('mooncake.iceberg_namespace_properties', '');
COMMENT ON TABLE mooncake.iceberg_tables IS
  'Iceberg SQL catalog: the mirrors'' tables and their current metadata files';

CREATE PROCEDURE mooncake.create_table(table_name text, source text, key_index text DEFAULT NULL,
                                       replica_identity_full boolean DEFAULT false)
LANGUAGE plpgsql
AS $$
DECLARE
  src regclass;
  src_kind "char";
  src_schema name;
  src_name name;
  parts text[];
  target_schema text;
  target_name text;
  columns text;
BEGIN
  src := pg_catalog.to_regclass(source);
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
  IF src_kind NOT IN ('r', 'p') THEN
    RAISE EXCEPTION USING
      ERRCODE = '42809',
      MESSAGE = pg_catalog.format('%s is not a table', src);
  END IF;

  parts := pg_catalog.parse_ident(table_name);
  IF pg_catalog.array_length(parts, 1) = 1 THEN
    target_schema := pg_catalog.current_schema();
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
  ELSIF replica_identity_full THEN
    -- Opt-in: every column identifies a row (WAL then logs whole old rows).
    EXECUTE pg_catalog.format('ALTER TABLE %s REPLICA IDENTITY FULL', src);
    COMMIT;
  END IF;

  -- The sidecar checks the source (key, column types), creates the Iceberg
  -- table, copies the rows and starts following the source's changes.
  PERFORM mooncake.sidecar_request(pg_catalog.json_build_object(
    'op', 'create_table',
    'database', pg_catalog.current_database(),
    'mirror_schema', target_schema,
    'mirror_name', target_name,
    'source_schema', src_schema,
    'source_name', src_name,
    'key_index', CASE WHEN key_index IS NOT NULL
                      THEN pg_catalog.format('%I.%I', src_schema, key_index)::regclass::oid::bigint END));

  SELECT pg_catalog.string_agg(
           pg_catalog.format('%I %s%s%s',
             a.attname,
             pg_catalog.format_type(a.atttypid, a.atttypmod),
             CASE WHEN a.attcollation <> t.typcollation
                  THEN pg_catalog.format(' COLLATE %I.%I', cn.nspname, co.collname)
                  ELSE '' END,
             CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END),
           ', ' ORDER BY a.attnum)
    INTO columns
    FROM pg_catalog.pg_attribute a
    JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
    LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
   WHERE a.attrelid = src AND a.attnum > 0 AND NOT a.attisdropped;

  EXECUTE pg_catalog.format(
    'CREATE FOREIGN TABLE %I.%I (%s) SERVER mooncake OPTIONS (namespace %L, "table" %L)',
    target_schema, target_name, COALESCE(columns, ''),
    target_schema, target_name);
END;
$$;
COMMENT ON PROCEDURE mooncake.create_table(text, text, text, boolean) IS
  'create the columnstore table table_name, a mirror of the table source; key_index names a unique index of NOT NULL columns to locate rows by when source has no primary key (it becomes the source''s replica identity); replica_identity_full => true sets REPLICA IDENTITY FULL instead';

CREATE PROCEDURE mooncake.drop_table(table_name text)
LANGUAGE plpgsql
AS $$
DECLARE
  ft regclass;
BEGIN
  ft := pg_catalog.to_regclass(table_name);
  IF ft IS NULL THEN
    RAISE EXCEPTION USING
      ERRCODE = '42P01',
      MESSAGE = pg_catalog.format('columnstore table %s does not exist', table_name);
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_foreign_table f
                   JOIN pg_catalog.pg_foreign_server s ON s.oid = f.ftserver
                  WHERE f.ftrelid = ft AND s.srvname = 'mooncake') THEN
    RAISE EXCEPTION USING
      ERRCODE = '42809',
      MESSAGE = pg_catalog.format('%s is not a columnstore table', ft);
  END IF;
  -- The event trigger below drops the mirror with its foreign table.
  EXECUTE pg_catalog.format('DROP FOREIGN TABLE %s', ft);
END;
$$;
COMMENT ON PROCEDURE mooncake.drop_table(text) IS
  'drop the columnstore table table_name: its foreign table, Iceberg table and data';

-- Dropping a columnstore table's foreign table drops its mirror: the
-- Iceberg table, its files and its place in the replication stream.
CREATE FUNCTION mooncake.drop_mirrors() RETURNS event_trigger
LANGUAGE plpgsql
AS $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT schema_name, object_name
             FROM pg_catalog.pg_event_trigger_dropped_objects()
            WHERE object_type = 'foreign table'
  LOOP
    BEGIN
      PERFORM mooncake.sidecar_request(pg_catalog.json_build_object(
        'op', 'drop_table',
        'database', pg_catalog.current_database(),
        'namespace', r.schema_name,
        'table', r.object_name));
    EXCEPTION WHEN connection_failure OR connection_exception THEN
      RAISE WARNING 'could not drop the mirror of %.%: the mooncake sidecar is not running',
        r.schema_name, r.object_name
        USING HINT = 'A later mooncake.create_table of the same name replaces it.';
    END;
  END LOOP;
END;
$$;
CREATE EVENT TRIGGER mooncake_drop_mirrors ON sql_drop
  EXECUTE FUNCTION mooncake.drop_mirrors();

-- The mirrors of this database, as the sidecar holds them, with their lag
-- behind the source: lag_bytes is WAL written since the last change the
-- mirrors show; lag_seconds is how old the newest applied commit is when
-- there is such WAL (0 when the mirrors are caught up).
CREATE VIEW mooncake.columnstore_tables AS
SELECT t.schema_name,
       t.table_name,
       t.source,
       t.state,
       t.metadata_location,
       t.applied_lsn,
       t.flushed_lsn,
       t.rows,
       t.unflushed_rows,
       t.data_files,
       t.delete_files,
       GREATEST(pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), t.visible_lsn), 0)::bigint AS lag_bytes,
       CASE WHEN pg_catalog.pg_current_wal_lsn() <= t.visible_lsn OR t.last_commit_time IS NULL THEN 0
            ELSE GREATEST(EXTRACT(epoch FROM pg_catalog.now() - t.last_commit_time), 0)
       END::double precision AS lag_seconds
  FROM pg_catalog.json_to_recordset(
         mooncake.sidecar_request(pg_catalog.json_build_object(
           'op', 'list', 'database', pg_catalog.current_database())) -> 'tables')
       AS t(schema_name name, table_name name, source text, state text,
            metadata_location text, applied_lsn pg_lsn, flushed_lsn pg_lsn,
            visible_lsn pg_lsn, last_commit_time timestamptz, rows bigint,
            unflushed_rows bigint, data_files int, delete_files int);
COMMENT ON VIEW mooncake.columnstore_tables IS
  'the columnstore tables (mirrors) of this database: source, Iceberg metadata, progress and lag';

CREATE PROCEDURE mooncake.optimize_table(table_name text)
LANGUAGE plpgsql
AS $$
DECLARE
  ft regclass;
  opts text[];
  ns text;
  tbl text;
BEGIN
  ft := pg_catalog.to_regclass(table_name);
  SELECT f.ftoptions INTO opts
    FROM pg_catalog.pg_foreign_table f
    JOIN pg_catalog.pg_foreign_server s ON s.oid = f.ftserver
   WHERE f.ftrelid = ft AND s.srvname = 'mooncake';
  IF ft IS NULL OR NOT FOUND THEN
    RAISE EXCEPTION USING
      ERRCODE = '42P01',
      MESSAGE = pg_catalog.format('columnstore table %s does not exist', table_name);
  END IF;
  SELECT n.nspname, c.relname INTO ns, tbl
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE c.oid = ft;
  SELECT COALESCE(MAX(substr(o, 11)) FILTER (WHERE o LIKE 'namespace=%'), ns),
         COALESCE(MAX(substr(o, 7)) FILTER (WHERE o LIKE 'table=%'), tbl)
    INTO ns, tbl
    FROM pg_catalog.unnest(opts) AS o;
  PERFORM mooncake.sidecar_request(pg_catalog.json_build_object(
    'op', 'optimize',
    'database', pg_catalog.current_database(),
    'namespace', ns,
    'table', tbl));
END;
$$;
COMMENT ON PROCEDURE mooncake.optimize_table(text) IS
  'compact the columnstore table''s files now, expire old snapshots and remove orphaned files';
