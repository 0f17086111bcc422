-- Which column types take part in pushed-down expressions.
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

CREATE TABLE s(id int PRIMARY KEY, i2 smallint, i8 bigint, f4 real, d date, ts timestamp, tz timestamptz, tm time, u uuid, vc varchar(10), bp char(4), n numeric(10,2), j jsonb);
INSERT INTO s VALUES
 (1, 1, 1, 1.5, '2024-01-01', '2024-01-01 00:00', '2024-01-01 00:00+00', '10:00', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'ab', 'ab', 1.25, '{"a":1}'),
 (2, -2, -2, -2.5, '0044-03-15 BC', '2024-06-30 12:30', '2024-06-30 12:30+02', '23:59:59', NULL, 'cd', 'cd', -1.00, NULL);
CALL mooncake.create_table('sm', 's');

-- pushed: ints, floats, dates, timestamps, time, uuid equality, varchar
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM sm WHERE i2 = 1 AND i8 > 0 AND f4 > 1 AND d > '2023-12-31' AND ts < '2025-01-01' AND tm < '11:00' AND u = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11' AND vc = 'ab';
SELECT id FROM sm WHERE i2 = 1 AND i8 > 0 AND f4 > 1 AND d > '2023-12-31' AND ts < '2025-01-01' AND tm < '11:00' AND u = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11' AND vc = 'ab';
SELECT id FROM sm WHERE d < '0001-01-01' AND extract(year FROM d) = -44;
-- stay local: char(n) (blank-padded), jsonb; numeric(p,s) is pushed
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM sm WHERE bp = 'ab' AND n > 0 AND j IS NOT NULL;
SELECT id FROM sm WHERE bp = 'ab' AND n > 0 AND j IS NOT NULL;
-- every type comes back as PostgreSQL wrote it
SELECT * FROM sm ORDER BY id;
SELECT min(d), max(ts), max(tz), min(tm), max(i2), min(f4) FROM sm;

CALL mooncake.drop_table('sm');
DROP TABLE s;

-- numeric(p,s): compared, ordered, grouped and aggregated in DuckDB, NaN
-- equal to itself and above every number; unconstrained numeric stays local
CREATE TABLE nt(id int PRIMARY KEY, g int, n numeric(10,2), u numeric);
INSERT INTO nt VALUES (1, 1, NULL, NULL), (2, 1, 'NaN', 'NaN'), (3, 1, -1.5, -1.5), (4, 2, 0, 0), (5, 2, 2.25, 2.25),
 (6, 2, 12.5, 12.5), (7, 3, 2.25, 2.25), (8, 3, -99999999.99, -99999999.99), (9, 3, 0.01, 0.01), (10, 4, NULL, NULL);
CALL mooncake.create_table('ntm', 'nt');
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM ntm WHERE n > 0 ORDER BY id;
SELECT id FROM ntm WHERE n > 0 ORDER BY id;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id, n FROM ntm WHERE n = 'NaN' OR n BETWEEN -1.5 AND 2.251 OR n IN (12.5, 99999999.99) ORDER BY id;
SELECT id, n FROM ntm WHERE n = 'NaN' OR n BETWEEN -1.5 AND 2.251 OR n IN (12.5, 99999999.99) ORDER BY id;
SELECT id, n FROM ntm WHERE n < 'NaN' AND n <> 0 ORDER BY id;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id, n FROM ntm ORDER BY n, id;
SELECT id, n FROM ntm ORDER BY n, id;
SELECT id, n FROM ntm ORDER BY n DESC, id;
EXPLAIN (VERBOSE, COSTS OFF) SELECT g, count(n), min(n), max(n), sum(n), avg(n), sum(n) FILTER (WHERE n < 100), avg(n) FILTER (WHERE n < 100)
  FROM ntm GROUP BY g ORDER BY g;
SELECT g, count(n), min(n), max(n), sum(n), avg(n), sum(n) FILTER (WHERE n < 100), avg(n) FILTER (WHERE n < 100)
  FROM ntm GROUP BY g ORDER BY g;
EXPLAIN (VERBOSE, COSTS OFF) SELECT n, count(*) FROM ntm GROUP BY n ORDER BY n DESC;
SELECT n, count(*) FROM ntm GROUP BY n ORDER BY n DESC;
SELECT sum(n), avg(n), max(n) FILTER (WHERE n < 'NaN') FROM ntm WHERE n <> 'NaN';
SELECT g, sum(n) FROM ntm GROUP BY g HAVING max(n) > 12 ORDER BY g;
-- + - * of numeric(p,s): exact, with PostgreSQL's scales and NaN; a sum that
-- could outgrow one DECIMAL(38) is summed in one, and should DuckDB report an
-- overflow, again in parts added up exactly
EXPLAIN (VERBOSE, COSTS OFF) SELECT id, n * n, n - 0.005, 1 - n FROM ntm WHERE n * 2 > 1 ORDER BY id;
SELECT id, n * n, n - 0.005, 1 - n FROM ntm WHERE n * 2 > 1 ORDER BY id;
EXPLAIN (VERBOSE, COSTS OFF) SELECT g, sum(n * (1 - n)), avg(n * n * n) FROM ntm GROUP BY g ORDER BY g;
SELECT g, sum(n * (1 - n)), avg(n * n * n) FROM ntm GROUP BY g ORDER BY g;
SELECT g, sum(n * (1 - n)), avg(n * n * n) FROM nt GROUP BY g ORDER BY g;
-- products wider than 38 digits by their declared types (TPC-H's charge)
-- are summed alike; NaN with NULL is NULL
CREATE TABLE wt(id int PRIMARY KEY, a numeric(30,4), b numeric(20,2), c numeric(15,2));
INSERT INTO wt VALUES (1, '99999999999999999999999999.9999', '999999999999999999.99', 1),
 (2, '99999999999999999999999999.9999', '-0.01', 2), (3, 'NaN', NULL, 3), (4, 1, 'NaN', NULL), (5, NULL, 5, 'NaN');
CALL mooncake.create_table('wtm', 'wt');
EXPLAIN (VERBOSE, COSTS OFF) SELECT sum(c * (1 - c) * (1 + c)) FILTER (WHERE id < 5), avg(a * b) FILTER (WHERE id < 3) FROM wtm;
SELECT sum(c * (1 - c) * (1 + c)) FILTER (WHERE id < 5), avg(a * b) FILTER (WHERE id < 3), sum(a * b) FILTER (WHERE id <> 4) FROM wtm;
SELECT sum(c * (1 - c) * (1 + c)) FILTER (WHERE id < 5), avg(a * b) FILTER (WHERE id < 3), sum(a * b) FILTER (WHERE id <> 4) FROM wt;
-- ordered in DuckDB too (by NULL, NaN, then the value or its parts)
EXPLAIN (VERBOSE, COSTS OFF) SELECT id, sum(a * b) AS s FROM wtm GROUP BY id ORDER BY s DESC NULLS LAST, id LIMIT 4;
SELECT id, sum(a * b) AS s FROM wtm GROUP BY id ORDER BY s DESC NULLS LAST, id LIMIT 4;
SELECT id, sum(a * b) AS s FROM wt GROUP BY id ORDER BY s DESC NULLS LAST, id LIMIT 4;
SELECT id, sum(c * (1 - c)) AS s FROM wtm GROUP BY id ORDER BY s, id;
SELECT id, sum(c * (1 - c)) AS s FROM wt GROUP BY id ORDER BY s, id;
SELECT sum(a * b), sum(c * c * c), sum(a + b) FROM wtm;
SELECT sum(a * b), sum(c * c * c), sum(a + b) FROM wt;
CALL mooncake.drop_table('wtm');
DROP TABLE wt;
-- stay local: unconstrained numeric, round(), division
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM ntm WHERE u > 0 ORDER BY id;
EXPLAIN (VERBOSE, COSTS OFF) SELECT sum(n / 2), max(round(n)) FROM ntm;
SELECT sum(n / 2), max(round(n)) FROM ntm;
CALL mooncake.drop_table('ntm');
DROP TABLE nt;
DROP FUNCTION wait_for;
