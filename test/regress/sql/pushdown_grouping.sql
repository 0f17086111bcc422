-- GROUP BY and HAVING.
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

CREATE TABLE s(id int PRIMARY KEY, g int, d date, t text, tc text COLLATE "C", n numeric, v int);
INSERT INTO s SELECT x, x % 3, date '2024-01-01' + x * 10, 'k' || (x % 4), 'k' || (x % 4), x % 2, x FROM generate_series(1, 30) x;
INSERT INTO s VALUES (31, NULL, NULL, NULL, NULL, NULL, NULL);
CALL mooncake.create_table('sm', 's');

EXPLAIN (VERBOSE, COSTS OFF) SELECT g, count(*), sum(v) FROM sm GROUP BY g ORDER BY g;
SELECT g, count(*), sum(v) FROM sm GROUP BY g ORDER BY g;
-- HAVING
EXPLAIN (VERBOSE, COSTS OFF) SELECT t, count(*) FROM sm GROUP BY t HAVING sum(v) > 100 ORDER BY t;
SELECT t, count(*) FROM sm GROUP BY t HAVING sum(v) > 100 ORDER BY t;
-- time series: grouping by month
EXPLAIN (VERBOSE, COSTS OFF) SELECT date_trunc('month', d::timestamp) AS m, count(*), max(v) FROM sm GROUP BY 1 ORDER BY 1;
SELECT date_trunc('month', d::timestamp) AS m, count(*), max(v) FROM sm GROUP BY 1 ORDER BY 1;
SELECT extract(month FROM d) AS m, avg(v) FROM sm GROUP BY 1 ORDER BY 1 NULLS FIRST;
-- grouping by numeric (stored as text) stays in PostgreSQL
EXPLAIN (VERBOSE, COSTS OFF) SELECT n, count(*) FROM sm GROUP BY n ORDER BY n;
SELECT n, count(*) FROM sm GROUP BY n ORDER BY n;
-- ORDER BY of a text key pushed only under "C"
EXPLAIN (VERBOSE, COSTS OFF) SELECT tc, count(*) FROM sm GROUP BY tc ORDER BY tc DESC LIMIT 2;
SELECT tc, count(*) FROM sm GROUP BY tc ORDER BY tc DESC LIMIT 2;

CALL mooncake.drop_table('sm');
DROP TABLE s;
DROP FUNCTION wait_for;
