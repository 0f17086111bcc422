-- ORDER BY, LIMIT and OFFSET.
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

CREATE TABLE s(id int PRIMARY KEY, v int, f float8, t text, tc text COLLATE "C", n numeric);
INSERT INTO s SELECT x, CASE WHEN x % 4 = 0 THEN NULL ELSE 10 - x END, CASE WHEN x = 3 THEN 'NaN' ELSE x / 3.0 END,
  'T' || x, CASE WHEN x % 5 = 0 THEN NULL ELSE chr(96 + x) END, x * 1.5 FROM generate_series(1, 12) x;
CALL mooncake.create_table('sm', 's');

-- NULLs sort last ascending and first descending, as in PostgreSQL
EXPLAIN (VERBOSE, COSTS OFF) SELECT id, v FROM sm ORDER BY v, id;
SELECT id, v FROM sm ORDER BY v, id;
SELECT id, v FROM sm ORDER BY v DESC, id;
SELECT id, v FROM sm ORDER BY v NULLS FIRST, id LIMIT 4;
-- LIMIT and OFFSET
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM sm ORDER BY f DESC LIMIT 3 OFFSET 1;
SELECT id, f FROM sm ORDER BY f DESC LIMIT 3 OFFSET 1;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM sm LIMIT 0;
SELECT id FROM sm LIMIT 0;
-- text under a non-C collation and numeric are sorted here
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM sm ORDER BY t LIMIT 3;
SELECT id FROM sm ORDER BY t LIMIT 3;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM sm ORDER BY n DESC LIMIT 3;
SELECT id FROM sm ORDER BY n DESC LIMIT 3;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id, tc FROM sm ORDER BY tc LIMIT 4;
SELECT id, tc FROM sm ORDER BY tc LIMIT 4;
-- LIMIT with a parameter
PREPARE p(bigint) AS SELECT id FROM sm ORDER BY id LIMIT $1;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE p(2);
EXECUTE p(2);
RESET plan_cache_mode;

CALL mooncake.drop_table('sm');
DROP TABLE s;
DROP FUNCTION wait_for;
