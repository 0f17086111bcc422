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
-- stay local: char(n) (blank-padded), numeric, jsonb
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM sm WHERE bp = 'ab' AND n > 0 AND j IS NOT NULL;
SELECT id FROM sm WHERE bp = 'ab' AND n > 0 AND j IS NOT NULL;
-- every type comes back as PostgreSQL wrote it
SELECT * FROM sm ORDER BY id;
SELECT min(d), max(ts), max(tz), min(tm), max(i2), min(f4) FROM sm;

CALL mooncake.drop_table('sm');
DROP TABLE s;
DROP FUNCTION wait_for;
