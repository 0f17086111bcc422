-- The manual's "Querying the Data Lake" examples on local files that
-- COPY writes here (relative paths are relative to the data directory):
-- CSV and JSON lines. Parquet, Iceberg and Delta files written by other
-- tools are tested in test/lake_test.go. explain_verbose shows EXPLAIN
-- (VERBOSE, COSTS OFF) with the data directory, which differs between runs,
-- as $PGDATA.
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
CREATE FUNCTION explain_verbose(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q LOOP
    RETURN NEXT regexp_replace(replace(line, current_setting('data_directory'), '$PGDATA'),
                               'pg_temp_[0-9]+', 'pg_temp', 'g');
  END LOOP;
END $$;

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

-- Querying CSV files, as the manual writes it: each row is a mooncake.row,
-- r['column'] its column as text (cast for another type), SELECT * all of
-- them with the file's names and types. The plans show the DuckDB SQL.
SELECT explain_verbose($$
SELECT r['user_id']::INT, r['event_type'], r['created_at']::TIMESTAMP
FROM mooncake.read_csv('lake_events.csv', auto_detect => true) r
WHERE r['created_at']::TIMESTAMP > '2023-01-01'
$$);
SELECT r['user_id']::INT, r['event_type'], r['created_at']::TIMESTAMP
FROM mooncake.read_csv('lake_events.csv', auto_detect => true) r
WHERE r['created_at']::TIMESTAMP > '2023-01-01';

-- The manual's option spelling is not PostgreSQL syntax (a comparison with
-- a column named header); named arguments are:
\set VERBOSITY default
SELECT * FROM mooncake.read_csv('lake_events.csv', HEADER=TRUE, DELIMITER=',', AUTO_DETECT=TRUE);
\set VERBOSITY terse
SELECT explain_verbose($$
SELECT * FROM mooncake.read_csv('lake_events.csv', header => true, delimiter => ',', auto_detect => true)
$$);
SELECT * FROM mooncake.read_csv('lake_events.csv', header => true, delimiter => ',', auto_detect => true);

-- r['column'] in GROUP BY, ORDER BY and aggregates, pushed to DuckDB
SELECT explain_verbose($$
SELECT r['event_type'] AS event_type, count(*), max(r['created_at']::timestamp)
FROM mooncake.read_csv('lake_events.csv') r
GROUP BY r['event_type'] ORDER BY 1
$$);
SELECT r['event_type'] AS event_type, count(*), max(r['created_at']::timestamp)
FROM mooncake.read_csv('lake_events.csv') r
GROUP BY r['event_type'] ORDER BY 1;
-- r.* and r expand as *; text comparisons; a cast with no direct path goes through text
SELECT r.*, r['user_id'] || '!' AS t FROM mooncake.read_csv('lake_events.csv') r
WHERE r['event_type'] = 'click' ORDER BY r['user_id']::int DESC LIMIT 2;
SELECT r, r['created_at']::date AS day, r['user_id']::numeric(5,1) AS n
FROM mooncake.read_csv('lake_events.csv') AS r WHERE r['user_id']::int < 3 ORDER BY 2;
-- in subqueries, CTEs and sublinks
WITH clicks AS (SELECT r['user_id']::int AS id FROM mooncake.read_csv('lake_events.csv') r
                WHERE r['event_type'] = 'click')
SELECT id, (SELECT count(*) FROM mooncake.read_csv('lake_events.csv') s WHERE s['user_id']::int <= c.id) AS upto
FROM clicks c WHERE id IN (SELECT x['user_id']::int FROM mooncake.read_csv('lake_events.csv') x) ORDER BY 1;
SELECT count(*) FROM (SELECT r['event_type'] FROM mooncake.read_csv('lake_events.csv') r) s;
-- prepared statements
PREPARE recent(timestamp) AS
  SELECT r['user_id']::int AS user_id FROM mooncake.read_csv('lake_events.csv') r
  WHERE r['created_at']::timestamp > $1 ORDER BY 1;
EXECUTE recent('2023-01-07');
EXECUTE recent('2023-01-08');
DEALLOCATE recent;

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

-- Joining with PostgreSQL tables
CREATE TABLE users (id int PRIMARY KEY, name text, email text);
INSERT INTO users SELECT g, 'user ' || g, 'u' || g || '@example.com' FROM generate_series(1, 5) g;
SELECT explain_verbose($$
SELECT u.name, u.email, e['event_type'], e['created_at']::timestamp
FROM users u
JOIN mooncake.read_csv('lake_events.csv', header => true) e ON u.id = e['user_id']::int
WHERE e['created_at']::timestamp > '2023-01-01'
$$);
SELECT u.name, u.email, e['event_type'], e['created_at']::timestamp
FROM users u
JOIN mooncake.read_csv('lake_events.csv', header => true) e ON u.id = e['user_id']::int
WHERE e['created_at']::timestamp > '2023-01-01'
ORDER BY u.name;
SELECT u.name, e.* FROM users u LEFT JOIN mooncake.read_csv('lake_events.csv') e
  ON u.id = e['user_id']::int AND e['event_type'] = 'click' ORDER BY 1;

-- Arrays of paths
DO $$
BEGIN
  EXECUTE format($q$COPY (SELECT g AS user_id, 'signup' AS event_type, timestamp '2023-02-01' + g * interval '1 hour' AS created_at
                          FROM generate_series(13, 15) g)
                    TO %L WITH (FORMAT csv, HEADER)$q$, current_setting('data_directory') || '/lake_more.csv');
END $$;
SELECT explain_verbose($$
SELECT r['event_type'], count(*) FROM mooncake.read_csv(ARRAY['lake_events.csv', 'lake_more.csv']) r GROUP BY 1
$$);
SELECT r['event_type'], count(*) FROM mooncake.read_csv(ARRAY['lake_events.csv', 'lake_more.csv']) r GROUP BY 1 ORDER BY 1;
SELECT count(*), max(user_id) FROM mooncake.read_json(ARRAY['lake_events.json', 'lake_events.json']) AS (user_id int);
CREATE FOREIGN TABLE both_files (user_id int, event_type text)
  SERVER mooncake OPTIONS (paths '{lake_events.csv,lake_more.csv}', format 'csv', header 'true');
EXPLAIN (COSTS OFF) SELECT count(*) FROM both_files;
SELECT count(*), max(user_id) FROM both_files;
SELECT count(*) FROM mooncake.read_json(ARRAY[]::text[]) AS (user_id int);
SELECT count(*) FROM mooncake.read_json(ARRAY['lake_events.json', NULL]) AS (user_id int);
SELECT count(*) FROM mooncake.read_csv(ARRAY['lake_events.csv', '']) r;
CREATE FOREIGN TABLE bad (a int) SERVER mooncake OPTIONS (paths '{}', format 'csv');
CREATE FOREIGN TABLE bad (a int) SERVER mooncake OPTIONS (paths '{a.csv,NULL}', format 'csv');
CREATE FOREIGN TABLE bad (a int) SERVER mooncake OPTIONS (path 'a.csv', paths '{a.csv}', format 'csv');

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
SELECT * FROM mooncake.read_csv('no_such_file.csv') r;
-- a column the file lacks, with the file's columns; the row used whole
\set VERBOSITY default
SELECT r['user_id'], r['nope'] FROM mooncake.read_csv('lake_events.csv') r;
SELECT count(r) FROM mooncake.read_csv('lake_events.csv') r;
\set VERBOSITY terse
SELECT 1 FROM mooncake.read_csv('lake_events.csv') r WHERE r IS NOT NULL;
SELECT (SELECT s FROM mooncake.read_csv('lake_events.csv') s LIMIT 1);
SELECT * FROM (SELECT * FROM mooncake.read_csv('lake_events.csv') r) s;
SELECT r['user_id':'created_at'] FROM mooncake.read_csv('lake_events.csv') r;
SELECT r[1] FROM mooncake.read_csv('lake_events.csv') r;
SELECT r['a']['b'] FROM mooncake.read_csv('lake_events.csv') r;
-- read_csv has the file's columns: no column definition list
SELECT * FROM mooncake.read_csv('lake_events.csv') AS (user_id int);
-- a value the declared type cannot read: the column, not the value
CREATE FOREIGN TABLE wrong_type (event_type int) SERVER mooncake OPTIONS (path 'lake_events.csv', format 'csv', header 'true');
SELECT * FROM wrong_type;
SELECT * FROM mooncake.read_json('lake_events.json') AS (no_such_column int);
SELECT * FROM mooncake.read_json('lake_events.json') AS (created_at bytea);
SELECT mooncake.read_csv('lake_events.csv');
SELECT 'x'::mooncake.row;
CREATE FOREIGN TABLE bad (a int) SERVER mooncake OPTIONS (path 'x.orc', format 'orc');
CREATE FOREIGN TABLE bad (a int) SERVER mooncake OPTIONS (path 'x.csv');
CREATE FOREIGN TABLE bad (a int) SERVER mooncake OPTIONS (path 'x.csv', format 'csv', table 't');
CREATE ROLE lake_reader;
GRANT USAGE ON FOREIGN SERVER mooncake TO lake_reader;
SET ROLE lake_reader;
SELECT * FROM mooncake.read_csv('lake_events.csv', header => true) r;
SELECT * FROM mooncake.read_parquet(ARRAY['a.parquet', 'b.parquet']) AS (a int);
RESET ROLE;
-- still answering
SELECT count(*) FROM events;
DROP FOREIGN TABLE wrong_type, both_files;
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
DROP FUNCTION explain_verbose;
DROP EXTENSION pg_mooncake CASCADE;
