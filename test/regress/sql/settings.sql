-- Values travel between PostgreSQL and the sidecar in forms no session
-- setting changes: a session with other DateStyle, IntervalStyle,
-- TimeZone and extra_float_digits writes the source, reads the mirror
-- and filters on it, and sees exactly its source. (The pushdown tests
-- before it leave the extension.)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_mooncake;
RESET client_min_messages;
\set VERBOSITY terse

CREATE TABLE st (d date PRIMARY KEY, t timestamp, tz timestamptz, i interval, m money,
                 f float8, r real, n numeric, tm time, tt timetz);
INSERT INTO st VALUES
  ('2024-03-05', '2024-03-05 14:30:15.5', '2024-03-05 14:30:15.5+02',
   '1 year 2 mons 3 days 04:05:06.5', 1234.56, 0.1, 0.1, 1.5, '01:02:03.25', '01:02:03+05:30'),
  ('0044-03-15 BC', '0044-03-15 01:02:03 BC', '0044-03-15 01:02:03+00 BC',
   '-1 day', -5, 'NaN', '-Infinity', 'NaN', '24:00', '00:00-12');
CALL mooncake.create_table('st_m', 'st');

SET DateStyle = 'SQL, DMY';
SET IntervalStyle = 'sql_standard';
SET TimeZone = 'Asia/Kolkata';
SET extra_float_digits = -3;
INSERT INTO st VALUES ('06/07/2024', '06/07/2024 01:02:03', '06/07/2024 01:02:03',
                       '1 2:03:04', '7.5', 1e-300, 3.4e38, 0.000001, '23:59:59.999999', '12:00+01');
UPDATE st SET m = m + 1::money WHERE d = '05/03/2024';
SELECT count(*) FROM ((SELECT * FROM st EXCEPT ALL SELECT * FROM st_m)
                      UNION ALL (SELECT * FROM st_m EXCEPT ALL SELECT * FROM st)) x;
SELECT * FROM st_m ORDER BY d;
SELECT d FROM st_m WHERE d = '06/07/2024' AND t = '06/07/2024 01:02:03' AND i = '1 2:03:04'
   AND tz = '06/07/2024 01:02:03';

-- The same settings for a columnstore table of its own.
CREATE TABLE st_c (d date, t timestamp, tz timestamptz, i interval, m money,
                   f float8, r real, n numeric, tm time, tt timetz) USING columnstore;
INSERT INTO st_c SELECT * FROM st;
SELECT count(*) FROM ((SELECT * FROM st EXCEPT ALL SELECT * FROM st_c)
                      UNION ALL (SELECT * FROM st_c EXCEPT ALL SELECT * FROM st)) x;
RESET ALL;
SELECT count(*) FROM ((SELECT * FROM st EXCEPT ALL SELECT * FROM st_m)
                      UNION ALL (SELECT * FROM st_m EXCEPT ALL SELECT * FROM st)) x;

DROP EXTENSION pg_mooncake CASCADE;
DROP TABLE st;
