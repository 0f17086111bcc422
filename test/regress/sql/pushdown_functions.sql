-- Functions pushed down, and the session time zone.
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

CREATE TABLE s(id int PRIMARY KEY, ts timestamp, tz timestamptz, d date, t text);
INSERT INTO s VALUES (1, '2024-03-31 01:30', '2024-03-31 00:30+00', '2024-02-29', 'héllo'),
  (2, '2024-12-31 23:59:59', '2024-03-31 12:00+00', '2024-03-01', ''), (3, 'infinity', '-infinity', 'infinity', NULL);
CALL mooncake.create_table('sm', 's');

EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM sm WHERE date_trunc('day', ts) = '2024-03-31' AND length(t) = 5;
SELECT id FROM sm WHERE date_trunc('day', ts) = '2024-03-31' AND length(t) = 5;
SELECT id, date_trunc('week', ts), date_part('dow', ts), extract(doy FROM d), extract(year FROM ts) FROM sm ORDER BY id;
-- timestamptz under the session's time zone
SET TimeZone = 'Europe/Paris';
EXPLAIN (VERBOSE, COSTS OFF) SELECT id, date_trunc('day', tz) FROM sm WHERE date_trunc('day', tz) = '2024-03-31';
SELECT id, date_trunc('day', tz) FROM sm WHERE date_trunc('day', tz) = '2024-03-31' ORDER BY id;
SELECT date_trunc('day', tz), count(*) FROM sm GROUP BY 1 ORDER BY 1;
-- under UTC, timestamptz arithmetic runs on microseconds (no time zone
-- library), with the same results, infinities included
SET TimeZone = 'UTC';
EXPLAIN (VERBOSE, COSTS OFF) SELECT date_trunc('month', d), count(*) FROM sm GROUP BY 1;
SELECT date_trunc('month', d), count(*) FROM sm GROUP BY 1 ORDER BY 1;
SELECT id, date_trunc('week', tz), tz::date, tz::timestamp, d::timestamptz, ts::timestamptz FROM sm ORDER BY id;
RESET TimeZone;
-- date arithmetic and COALESCE, CASE
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM sm WHERE d + 1 = '2024-03-01' OR coalesce(t, 'none') = 'none';
SELECT id FROM sm WHERE d + 1 = '2024-03-01' OR coalesce(t, 'none') = 'none' ORDER BY id;
SELECT CASE WHEN id > 1 THEN 'big' ELSE 'small' END AS k, count(*) FROM sm GROUP BY 1 ORDER BY 1;
-- functions DuckDB does not run the same stay here
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM sm WHERE upper(t) = 'HÉLLO';
SELECT id FROM sm WHERE upper(t) = 'HÉLLO';

CALL mooncake.drop_table('sm');
DROP TABLE s;
DROP FUNCTION wait_for;
