-- The manual's "Querying the Data Lake" examples on local files that
-- COPY writes here (relative paths are relative to the data directory):
-- CSV and JSON lines. Parquet, Iceberg and Delta files written by other
-- tools are tested in test/lake_test.go. Plans are shown without VERBOSE:
-- the DuckDB SQL names the data directory, which differs between runs.
CREATE EXTENSION pg_mooncake;
\set VERBOSITY terse

CREATE FUNCTION wait_for(q text, expected text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE got text;
BEGIN
  FOR i IN 1..1000 LOOP
    EXECUTE q INTO got;
    IF got IS NOT DISTINCT FROM expected THEN RETURN got; END IF;
    PERFORM pg_sleep(0.01);
  END LOOP;
  RETURN got;
END $$;
SELECT wait_for($$SELECT (mooncake.bgworker_status()->>'socket_listening')$$, 'true');

-- Files in ISO dates, as other tools write them
SET DateStyle = 'ISO, MDY';
DO $$
BEGIN
  EXECUTE format($q$COPY (SELECT g AS user_id, CASE WHEN g %% 3 = 0 THEN 'click' ELSE 'view' END AS event_type,
                               timestamp '2022-12-28 10:00' + g * interval '1 day' AS created_at
                          FROM generate_series(1, 12) g)
                    TO %L WITH (FORMAT csv, HEADER)$q$, current_setting('data_directory') || '/lake_events.csv');
  EXECUTE format($q$COPY (SELECT json_build_object('user_id', g, 'event_type', CASE WHEN g %% 3 = 0 THEN 'click' ELSE 'view' END,
                                                 'created_at', timestamp '2022-12-28 10:00' + g * interval '1 day')
                          FROM generate_series(1, 12) g)
                    TO %L$q$, current_setting('data_directory') || '/lake_events.json');
END $$;

-- Querying CSV files, with a column definition list
EXPLAIN (COSTS OFF)
SELECT user_id, event_type, created_at
FROM mooncake.read_csv('lake_events.csv', header => true) AS (user_id INT, event_type TEXT, created_at TIMESTAMP)
WHERE created_at > '2023-01-01';
SELECT user_id, event_type, created_at
FROM mooncake.read_csv('lake_events.csv', header => true) AS (user_id INT, event_type TEXT, created_at TIMESTAMP)
WHERE created_at > '2023-01-01';

-- The manual's option spelling is not PostgreSQL syntax (a comparison with
-- a column named header); named arguments are:
SELECT * FROM mooncake.read_csv('lake_events.csv', HEADER=TRUE, DELIMITER=',', AUTO_DETECT=TRUE) AS (user_id int);
SELECT * FROM mooncake.read_csv('lake_events.csv', HEADER => TRUE, DELIMITER => ',', AUTO_DETECT => TRUE)
  AS (user_id int, event_type text) ORDER BY user_id LIMIT 3;

-- Querying JSON files, as the manual writes it
EXPLAIN (COSTS OFF)
SELECT
  json_extract_path_text(data, 'user_id')::INT AS user_id,
  json_extract_path_text(data, 'event_type') AS event_type,
  json_extract_path_text(data, 'created_at')::TIMESTAMP AS created_at
FROM mooncake.read_json('lake_events.json') AS (data JSONB)
WHERE json_extract_path_text(data, 'created_at')::TIMESTAMP > '2023-01-01';
SELECT
  json_extract_path_text(data, 'user_id')::INT AS user_id,
  json_extract_path_text(data, 'event_type') AS event_type,
  json_extract_path_text(data, 'created_at')::TIMESTAMP AS created_at
FROM mooncake.read_json('lake_events.json') AS (data JSONB)
WHERE json_extract_path_text(data, 'created_at')::TIMESTAMP > '2023-01-01'
ORDER BY 1;

-- JSON with the objects' own columns; an aggregate runs in DuckDB
EXPLAIN (COSTS OFF)
SELECT event_type, count(*) FROM mooncake.read_json('lake_events.json') AS (event_type text, user_id int)
GROUP BY event_type ORDER BY 1;
SELECT event_type, count(*) FROM mooncake.read_json('lake_events.json') AS (event_type text, user_id int)
GROUP BY event_type ORDER BY 1;

-- Joining with PostgreSQL tables (the alias goes before the column list)
CREATE TABLE users (id int PRIMARY KEY, name text, email text);
INSERT INTO users SELECT g, 'user ' || g, 'u' || g || '@example.com' FROM generate_series(1, 5) g;
SELECT u.name, u.email, e.event_type, e.created_at
FROM users u
JOIN mooncake.read_csv('lake_events.csv', header => true) AS e (user_id INT, event_type TEXT, created_at TIMESTAMP)
  ON u.id = e.user_id
WHERE e.created_at > '2023-01-01'
ORDER BY u.name;

-- Files as foreign tables, declared and imported
CREATE FOREIGN TABLE events (user_id int, event_type text, created_at timestamp)
  SERVER mooncake OPTIONS (path 'lake_events.csv', format 'csv', header 'true');
EXPLAIN (COSTS OFF) SELECT event_type, max(created_at) FROM events GROUP BY 1 ORDER BY 1;
SELECT event_type, max(created_at) FROM events GROUP BY 1 ORDER BY 1;
CREATE SCHEMA lake;
IMPORT FOREIGN SCHEMA files FROM SERVER mooncake INTO lake OPTIONS (path 'lake_events.csv', format 'csv', header 'true');
\d lake.lake_events
SELECT count(*), min(created_at) FROM lake.lake_events;

-- Errors
SELECT * FROM mooncake.read_csv('no_such_file.csv') AS (a int);
-- a value the declared type cannot read: the column, not the value
SELECT * FROM mooncake.read_csv('lake_events.csv', header => true) AS (event_type int);
SELECT * FROM mooncake.read_csv('lake_events.csv', header => true) AS (no_such_column int);
SELECT * FROM mooncake.read_json('lake_events.json') AS (created_at bytea);
SELECT mooncake.read_csv('lake_events.csv');
CREATE FOREIGN TABLE bad (a int) SERVER mooncake OPTIONS (path 'x.orc', format 'orc');
CREATE FOREIGN TABLE bad (a int) SERVER mooncake OPTIONS (path 'x.csv');
CREATE FOREIGN TABLE bad (a int) SERVER mooncake OPTIONS (path 'x.csv', format 'csv', table 't');
CREATE ROLE lake_reader;
GRANT USAGE ON FOREIGN SERVER mooncake TO lake_reader;
SET ROLE lake_reader;
SELECT * FROM mooncake.read_csv('lake_events.csv', header => true) AS (user_id int);
RESET ROLE;
-- still answering
SELECT count(*) FROM events;
DROP OWNED BY lake_reader;
DROP ROLE lake_reader;
-- Iceberg metadata: a mirror is an Iceberg table (its snapshot ids and
-- file names differ between runs: counts, sums and column names only)
CREATE TABLE lake_items (id int PRIMARY KEY, label text);
INSERT INTO lake_items SELECT g, 'item ' || g FROM generate_series(1, 7) g;
CALL mooncake.create_table('lake_items_m', 'lake_items');
CREATE TEMP TABLE lake_items_meta AS
  SELECT metadata_location AS path FROM mooncake.columnstore_tables WHERE table_name = 'lake_items_m';
SELECT * FROM iceberg_snapshots((SELECT path FROM lake_items_meta)) LIMIT 0;
SELECT count(*) >= 1 AS snapshots, bool_and(snapshot_id IS NOT NULL AND timestamp_ms <= now()) AS ids_and_times,
       max(sequence_number) = count(*) AS numbered
  FROM iceberg_snapshots((SELECT path FROM lake_items_meta));
SELECT * FROM iceberg_metadata((SELECT path FROM lake_items_meta)) LIMIT 0;
SELECT manifest_content, content, file_format, sum(record_count) AS rows
  FROM iceberg_metadata((SELECT path FROM lake_items_meta))
 WHERE status <> 'DELETED' GROUP BY 1, 2, 3;
-- the current snapshot is the last one
SELECT count(*) FROM iceberg_metadata((SELECT path FROM lake_items_meta),
  (SELECT snapshot_id FROM iceberg_snapshots((SELECT path FROM lake_items_meta)) ORDER BY sequence_number DESC LIMIT 1))
  EXCEPT ALL SELECT count(*) FROM iceberg_metadata((SELECT path FROM lake_items_meta));
SELECT * FROM iceberg_snapshots('no_such_table');
SELECT * FROM iceberg_metadata('lake_events.csv');
CREATE ROLE lake_meta_reader;
SET ROLE lake_meta_reader;
SELECT * FROM iceberg_snapshots('no_such_table');
RESET ROLE;
DROP ROLE lake_meta_reader;
DROP TABLE lake_items_meta;
CALL mooncake.drop_table('lake_items_m');
DROP TABLE lake_items;

-- Leave the database as the next test expects it: without the extension.
DROP SCHEMA lake CASCADE;
DROP TABLE users;
DROP FUNCTION wait_for;
DROP EXTENSION pg_mooncake CASCADE;
