-- Aggregates pushed down to DuckDB, with PostgreSQL's result types.
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

CREATE TABLE s(id int PRIMARY KEY, g int, i int, b bigint, f float8, t text COLLATE "C", ok bool);
INSERT INTO s SELECT x, x % 3, CASE WHEN x % 5 = 0 THEN NULL ELSE x * 7 - 30 END, x * 1000000000000,
  x / 4.0, CASE WHEN x % 4 = 0 THEN NULL ELSE 'v' || (x % 6) END, x % 2 = 0 FROM generate_series(1, 20) x;
CALL mooncake.create_table('sm', 's');

EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*), count(i), count(DISTINCT t), sum(i), sum(b), min(f), max(t), bool_and(ok), bool_or(ok) FROM sm;
SELECT count(*), count(i), count(DISTINCT t), sum(i), sum(b), min(f), max(t), bool_and(ok), bool_or(ok) FROM sm;
-- avg of integers is numeric, with PostgreSQL's scale
EXPLAIN (VERBOSE, COSTS OFF) SELECT avg(i), avg(b) FROM sm;
SELECT avg(i), avg(b) FROM sm;
SELECT avg(i), avg(b) FROM s;
-- FILTER and ORDER BY inside aggregates
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*) FILTER (WHERE ok), string_agg(t, ',' ORDER BY t DESC, id), array_agg(i ORDER BY id) FROM sm;
SELECT count(*) FILTER (WHERE ok), string_agg(t, ',' ORDER BY t DESC, id), array_agg(i ORDER BY id) FROM sm;
-- ordered-set aggregates
EXPLAIN (VERBOSE, COSTS OFF) SELECT percentile_cont(0.3) WITHIN GROUP (ORDER BY f), percentile_disc(0.3) WITHIN GROUP (ORDER BY i) FROM sm;
SELECT percentile_cont(0.3) WITHIN GROUP (ORDER BY f), percentile_disc(0.3) WITHIN GROUP (ORDER BY i) FROM sm;
-- sums and averages of double precision (and averages of real) run in
-- DuckDB, which adds in its own order as a parallel plan of PostgreSQL's
-- could (the last digits can differ from PostgreSQL's order); a sum that
-- overflows from finite values raises PostgreSQL's error
EXPLAIN (VERBOSE, COSTS OFF) SELECT g, sum(f), avg(f), avg(f) FILTER (WHERE ok) FROM sm GROUP BY g ORDER BY g;
SELECT g, sum(f), avg(f), avg(f) FILTER (WHERE ok) FROM sm GROUP BY g ORDER BY g;
SELECT g, sum(f), avg(f), avg(f) FILTER (WHERE ok) FROM s GROUP BY g ORDER BY g;
CREATE TABLE huge(id int PRIMARY KEY, f float8);
INSERT INTO huge VALUES (1, 1e308), (2, 1e308), (3, NULL);
CALL mooncake.create_table('huge_m', 'huge');
SELECT sum(f) FROM huge_m;
SELECT avg(f) FROM huge_m;
SELECT sum(f) FROM huge;
UPDATE huge SET f = 'Infinity' WHERE id = 3;
SELECT sum(f), avg(f) FROM huge_m;
UPDATE huge SET f = 'NaN' WHERE id = 3;
SELECT sum(f), avg(f) FROM huge_m;
SELECT sum(f), avg(f) FROM huge_m WHERE id = 42;
CALL mooncake.drop_table('huge_m');
DROP TABLE huge;
-- sums of real (added in single precision), DISTINCT and ordered sums of
-- floats, stddev and variance of floats and bigints stay in PostgreSQL
-- (the plan of sum(DISTINCT f), which PostgreSQL 16+ presorts, left out)
EXPLAIN (VERBOSE, COSTS OFF) SELECT sum(f::real), stddev(f), variance(b) FROM sm;
SELECT sum(f::real), sum(DISTINCT f), stddev(f), variance(b) FROM sm;
-- stddev and variance of integers: DuckDB sums exactly, the sidecar
-- divides and takes the square root as PostgreSQL's numeric does
EXPLAIN (VERBOSE, COSTS OFF) SELECT g, stddev(i), variance(i), stddev_pop(i) FILTER (WHERE id > 3), var_pop(i) FROM sm GROUP BY g ORDER BY g;
SELECT g, stddev(i), variance(i), stddev_pop(i) FILTER (WHERE id > 3), var_pop(i) FROM sm GROUP BY g ORDER BY g;
SELECT g, stddev(i), variance(i), stddev_pop(i) FILTER (WHERE id > 3), var_pop(i) FROM s GROUP BY g ORDER BY g;
SELECT variance(i) FILTER (WHERE id = 1), stddev(i) FILTER (WHERE id < 0), var_pop(i) FILTER (WHERE id = 1) FROM sm;
-- an output expression DuckDB cannot compute is computed here from pushed aggregates
EXPLAIN (VERBOSE, COSTS OFF) SELECT sum(i)::float8 / count(*) FROM sm;
SELECT sum(i)::float8 / count(*) FROM sm;
-- aggregates over no rows
SELECT count(*), sum(i), avg(i), max(t) FROM sm WHERE id < 0;

CALL mooncake.drop_table('sm');
DROP TABLE s;
DROP FUNCTION wait_for;
