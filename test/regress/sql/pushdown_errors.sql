-- Errors DuckDB raises as PostgreSQL does.
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

CREATE TABLE s(id int PRIMARY KEY, v int, b bigint, t text);
INSERT INTO s VALUES (1, 0, 9223372036854775807, 'x\'), (2, 2147483647, 1, 'y');
CALL mooncake.create_table('sm', 's');

-- the same errors as PostgreSQL, from DuckDB
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM sm WHERE 10 / v > 1;
SELECT id FROM sm WHERE 10 / v > 1;
SELECT id FROM sm WHERE 10 % v > 1;
SELECT id FROM sm WHERE v + v > 1;
SELECT id FROM sm WHERE b * id > 1;
SELECT id FROM sm WHERE v::smallint > 1;
-- a range no value is in: DuckDB would skip computing 10 / v, the error
-- comes from PostgreSQL evaluating the second bound
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM sm WHERE 10 / v BETWEEN 7 AND -1;
SELECT id FROM sm WHERE 10 / v BETWEEN 7 AND -1;
SELECT id FROM sm ORDER BY id LIMIT -1;
-- the sidecar refuses what it cannot run identically; the query still works
SELECT id FROM sm WHERE t ILIKE 'X%' ORDER BY id;
-- an ordering that fails on rows a local condition drops is computed here
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM sm WHERE t ILIKE 'Y%' ORDER BY 10 / v;
SELECT id FROM sm WHERE t ILIKE 'Y%' ORDER BY 10 / v;
SELECT sum(v)::numeric / 3 FROM sm;
-- strings of conflicting implicit collations: compared here, with
-- PostgreSQL's error
CREATE TABLE sc(id int PRIMARY KEY, a text COLLATE "C", b text COLLATE "POSIX");
INSERT INTO sc VALUES (1, 'x', 'y');
CALL mooncake.create_table('scm', 'sc');
SELECT wait_for($$SELECT count(*) FROM scm$$, '1');
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM scm WHERE a < b;
SELECT id FROM scm WHERE a < b;
SELECT id FROM scm WHERE a < b COLLATE "C";
CALL mooncake.drop_table('scm');
DROP TABLE sc;

CALL mooncake.drop_table('sm');
DROP TABLE s;
DROP FUNCTION wait_for;
