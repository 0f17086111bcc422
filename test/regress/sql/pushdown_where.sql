-- Conditions pushed down to DuckDB, and those that stay in PostgreSQL.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_mooncake;
RESET client_min_messages;
\set VERBOSITY terse
CREATE OR REPLACE FUNCTION wait_for(q text, expected text) RETURNS text LANGUAGE plpgsql AS $$
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

CREATE TABLE w(id int PRIMARY KEY, b bigint, s smallint, f float8, t text, tc text COLLATE "C",
  n numeric, d date, ts timestamp, tz timestamptz, ok bool);
INSERT INTO w VALUES
  (1, 10, 1, 1.5, 'apple', 'apple', 1.50, '2024-01-31', '2024-01-31 10:00', '2024-01-31 10:00+00', true),
  (2, 20, 2, -0.5, 'Banana', 'Banana', 2.00, '2024-02-29', '2024-02-29 23:59', '2024-02-29 23:59+00', false),
  (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (4, -7, -7, 1e300, 'a_b\c', 'a_b\c', -3, 'infinity', '-infinity', 'infinity', true);
CALL mooncake.create_table('wm', 'w');

EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM wm WHERE b > 5 AND s < 2;
SELECT id FROM wm WHERE b > 5 AND s < 2 ORDER BY id;
-- integer division truncates, division by zero is an error
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM wm WHERE b / 2 = -3;
SELECT id FROM wm WHERE b / 2 = -3;
-- text: equality under any collation, ordering only under "C"
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM wm WHERE t = 'apple' AND tc < 'b' AND t < 'b';
SELECT id FROM wm WHERE t = 'apple' AND tc < 'b' AND t < 'b';
-- LIKE escapes with a backslash; ILIKE stays local
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM wm WHERE t LIKE 'a\_b%' OR t ILIKE 'BAN%';
SELECT id FROM wm WHERE t LIKE 'a\_b%' OR t ILIKE 'BAN%' ORDER BY id;
-- numeric is stored as text: its comparisons stay local
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM wm WHERE n > 1;
SELECT id FROM wm WHERE n > 1 ORDER BY id;
-- IS NULL, IN lists, booleans
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM wm WHERE n IS NULL OR id IN (1, 4) OR ok IS FALSE;
SELECT id FROM wm WHERE n IS NULL OR id IN (1, 4) OR ok IS FALSE ORDER BY id;
-- floats compare, but arithmetic on them stays local (DuckDB overflows to infinity)
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM wm WHERE f > 1 AND f * 10 > 1;
SELECT id FROM wm WHERE f > 1 AND f * 10 > 1 ORDER BY id;
-- stable functions and parameters are computed by PostgreSQL once
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM wm WHERE d < current_date AND tz < now();
SELECT id FROM wm WHERE d < current_date AND tz < now() ORDER BY id;
PREPARE p(int) AS SELECT id FROM wm WHERE b > $1 ORDER BY id;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE p(5);
EXECUTE p(5);
EXECUTE p(-100);
RESET plan_cache_mode;
-- dates and timestamps, under the session's time zone
SET TimeZone = 'America/New_York';
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM wm WHERE tz::date = '2024-01-31' AND date_trunc('month', ts) = '2024-02-01';
SELECT id FROM wm WHERE tz::date = '2024-01-31' OR date_trunc('month', ts) = '2024-02-01' ORDER BY id;
SELECT id FROM wm WHERE extract(year FROM d) = 2024 ORDER BY id;
RESET TimeZone;

CALL mooncake.drop_table('wm');
DROP TABLE w;

-- row estimates of a mirror never analyzed: from its data files' column
-- bounds (values spread evenly between them), rows not yet flushed all
-- counted; once analyzed, from PostgreSQL's statistics
CREATE FUNCTION plan_rows(q text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE j json;
BEGIN
  EXECUTE 'EXPLAIN (FORMAT JSON) ' || q INTO j;
  RETURN (j->0->'Plan'->>'Plan Rows')::bigint;
END $$;
CREATE TABLE est(id int PRIMARY KEY, d date, ts timestamptz, f float8);
INSERT INTO est SELECT g, date '2024-01-01' + g % 100, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute',
  CASE WHEN g % 4 = 0 THEN NULL ELSE g / 10.0 END FROM generate_series(1, 10000) g;
CALL mooncake.create_table('est_m', 'est');
SELECT plan_rows('SELECT * FROM est_m');
SELECT plan_rows('SELECT * FROM est_m WHERE id <= 1000');
SELECT plan_rows('SELECT * FROM est_m WHERE id BETWEEN 101 AND 200');
SELECT plan_rows($$SELECT * FROM est_m WHERE d >= date '2024-03-01'$$);
SELECT plan_rows($$SELECT * FROM est_m WHERE ts < timestamptz '2024-01-01 12:00:00+00'$$);
SELECT plan_rows('SELECT * FROM est_m WHERE f > 500');
SELECT plan_rows('SELECT * FROM est_m WHERE id = 20000');
INSERT INTO est SELECT g, date '2024-06-01', now(), 1 FROM generate_series(10001, 10500) g;
SELECT wait_for($$SELECT count(*)::text FROM est_m$$, '10500');
SELECT plan_rows('SELECT * FROM est_m WHERE id > 10000');
ANALYZE est_m;
SELECT plan_rows('SELECT * FROM est_m WHERE id <= 1000') BETWEEN 900 AND 1100 AS from_statistics;
CALL mooncake.drop_table('est_m');
DROP TABLE est;
DROP FUNCTION plan_rows;
DROP FUNCTION wait_for;
