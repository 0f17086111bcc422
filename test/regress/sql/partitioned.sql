-- A partitioned source is mirrored as one table: the rows of all its
-- partitions, those created, attached and detached later included.
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

-- The mirror and its source hold the same rows, both ways.
CREATE FUNCTION same_rows(m regclass, s regclass) RETURNS text LANGUAGE plpgsql AS $$
DECLARE a bigint; b bigint; n bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM (SELECT * FROM %s EXCEPT ALL SELECT * FROM %s) x', m, s) INTO a;
  EXECUTE format('SELECT count(*) FROM (SELECT * FROM %s EXCEPT ALL SELECT * FROM %s) x', s, m) INTO b;
  EXECUTE format('SELECT count(*) FROM %s', s) INTO n;
  RETURN format('%s rows; %s only in the mirror, %s only in the source', n, a, b);
END $$;

-- A publication made by an older version lacks publish_via_partition_root:
-- the sidecar sets it before it publishes a partitioned table.
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_publication WHERE pubname = 'mooncake_pub') THEN
    ALTER PUBLICATION mooncake_pub SET (publish_via_partition_root = false);
  ELSE
    CREATE PUBLICATION mooncake_pub;
  END IF;
END $$;

CREATE TABLE events (id int, day date, v text, PRIMARY KEY (id, day)) PARTITION BY RANGE (day);
CREATE TABLE events_jan PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
CREATE TABLE events_feb PARTITION OF events FOR VALUES FROM ('2024-02-01') TO ('2024-03-01');
INSERT INTO events SELECT g, date '2024-01-01' + g % 59, 'v' || g FROM generate_series(1, 100) g;
CALL mooncake.create_table('events_mirror', 'events');
SELECT pubviaroot FROM pg_publication WHERE pubname = 'mooncake_pub';
SELECT same_rows('events_mirror', 'events');
SELECT count(*) FROM events_mirror WHERE day < '2024-02-01';

-- Inserts into the partitioned table and into a partition, updates within
-- a partition, updates of the partition key moving rows between
-- partitions, deletes.
INSERT INTO events VALUES (101, '2024-01-15', 'new');
INSERT INTO events_feb VALUES (102, '2024-02-15', 'direct');
UPDATE events SET v = 'upd' WHERE id BETWEEN 1 AND 10;
UPDATE events SET day = '2024-02-20' WHERE id BETWEEN 11 AND 15 AND day < '2024-02-01';
UPDATE events SET day = '2024-01-20', v = 'moved back' WHERE id = 40;
DELETE FROM events WHERE id BETWEEN 90 AND 95;
SELECT * FROM events_mirror WHERE id IN (1, 11, 40, 101, 102) ORDER BY id;
SELECT same_rows('events_mirror', 'events');

-- A partition created later.
CREATE TABLE events_mar PARTITION OF events FOR VALUES FROM ('2024-03-01') TO ('2024-04-01');
INSERT INTO events VALUES (201, '2024-03-05', 'march');
UPDATE events SET day = '2024-03-10' WHERE id = 1;
SELECT * FROM events_mirror WHERE day >= '2024-03-01' ORDER BY id;
SELECT same_rows('events_mirror', 'events');

-- ATTACH of a table that already holds rows: the mirror copies its source
-- again.
CREATE TABLE events_apr (id int, day date, v text, PRIMARY KEY (id, day));
INSERT INTO events_apr SELECT g, date '2024-04-01' + g % 30, 'apr' FROM generate_series(300, 319) g;
ALTER TABLE events ATTACH PARTITION events_apr FOR VALUES FROM ('2024-04-01') TO ('2024-05-01');
SELECT count(*) FROM events_mirror WHERE day >= '2024-04-01';
INSERT INTO events_apr VALUES (320, '2024-04-30', 'after attach');
SELECT same_rows('events_mirror', 'events');

-- DETACH: the partition's rows leave the mirror, and its later changes do
-- not reach it.
ALTER TABLE events DETACH PARTITION events_jan;
SELECT count(*) FROM events_mirror WHERE day < '2024-02-01';
INSERT INTO events_jan VALUES (400, '2024-01-02', 'detached');
SELECT count(*) FROM events_mirror WHERE id = 400;
SELECT same_rows('events_mirror', 'events');

-- DETACH ... CONCURRENTLY (two transactions) and ATTACH back.
ALTER TABLE events DETACH PARTITION events_mar CONCURRENTLY;
SELECT count(*) FROM events_mirror WHERE day >= '2024-03-01' AND day < '2024-04-01';
SELECT same_rows('events_mirror', 'events');
ALTER TABLE events ATTACH PARTITION events_mar FOR VALUES FROM ('2024-03-01') TO ('2024-04-01');
SELECT same_rows('events_mirror', 'events');

-- TRUNCATE of one partition (the change stream carries none for a
-- partition published through its partitioned table), and of the whole.
TRUNCATE events_feb;
SELECT count(*) FROM events_mirror WHERE day >= '2024-02-01' AND day < '2024-03-01';
SELECT same_rows('events_mirror', 'events');
INSERT INTO events VALUES (500, '2024-02-02', 'after truncate');
SELECT same_rows('events_mirror', 'events');

-- DROP TABLE of a partition.
DROP TABLE events_mar;
SELECT count(*) FROM events_mirror WHERE day >= '2024-03-01' AND day < '2024-04-01';
SELECT same_rows('events_mirror', 'events');

-- A partitioned partition with rows attached; TRUNCATE, DETACH and DROP
-- two levels down.
CREATE TABLE events_may (id int, day date, v text, PRIMARY KEY (id, day)) PARTITION BY RANGE (day);
CREATE TABLE events_may_a PARTITION OF events_may FOR VALUES FROM ('2024-05-01') TO ('2024-05-16');
CREATE TABLE events_may_b PARTITION OF events_may FOR VALUES FROM ('2024-05-16') TO ('2024-06-01');
INSERT INTO events_may SELECT g, date '2024-05-01' + g % 31, 'may' FROM generate_series(800, 830) g;
ALTER TABLE events ATTACH PARTITION events_may FOR VALUES FROM ('2024-05-01') TO ('2024-06-01');
SELECT count(*) FROM events_mirror WHERE day >= '2024-05-01';
UPDATE events SET day = '2024-05-30' WHERE id = 800;
SELECT same_rows('events_mirror', 'events');
TRUNCATE events_may_a;
SELECT same_rows('events_mirror', 'events');
INSERT INTO events VALUES (850, '2024-05-02', 'may again');
ALTER TABLE events_may DETACH PARTITION events_may_b;
SELECT same_rows('events_mirror', 'events');
DROP TABLE events_may_a;
SELECT same_rows('events_mirror', 'events');

-- ADD COLUMN on the partitioned table reaches every partition; the mirror
-- follows in place. With a volatile default each partition is rewritten:
-- the mirror copies its source again.
ALTER TABLE events ADD COLUMN n int;
INSERT INTO events VALUES (600, '2024-04-10', 'with n', 6);
SELECT id, day, v, n FROM events_mirror WHERE id IN (300, 600) ORDER BY id;
ALTER TABLE events ADD COLUMN r float8 DEFAULT random();
SELECT same_rows('events_mirror', 'events');
\d events_mirror

TRUNCATE events;
SELECT count(*) FROM events_mirror;
INSERT INTO events VALUES (700, '2024-02-03', 'last', 7, 0.5);
SELECT id, day, v, n, r FROM events_mirror;
SELECT source, state, error FROM mooncake.columnstore_tables WHERE table_name = 'events_mirror';

-- What cannot be mirrored, or attached, is refused.
CREATE FUNCTION sqlstate_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN others THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
CREATE TABLE nokey (id int, day date) PARTITION BY RANGE (day);
SELECT sqlstate_of($$CALL mooncake.create_table('nokey_mirror', 'nokey')$$);
SELECT sqlstate_of($$CALL mooncake.create_table('nokey_mirror', 'nokey', replica_identity_full => true)$$);
SELECT sqlstate_of($$CALL mooncake.create_table('nokey_mirror', 'nokey', key_index => 'x')$$);
-- A partition whose replica identity lacks the key logs old rows without it.
CREATE TABLE codes (id int, day date, code int NOT NULL, PRIMARY KEY (id, day)) PARTITION BY RANGE (day);
CREATE TABLE codes_2024 PARTITION OF codes FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE UNIQUE INDEX codes_2024_code ON codes_2024 (code);
ALTER TABLE codes_2024 REPLICA IDENTITY USING INDEX codes_2024_code;
SELECT sqlstate_of($$CALL mooncake.create_table('codes_mirror', 'codes')$$);
-- A partition and its partitioned table are not both mirrored: the
-- partition's changes reach the stream as the partitioned table's.
SELECT sqlstate_of($$CALL mooncake.create_table('feb_mirror', 'events_feb')$$);
CREATE TABLE lone (id int, day date, v text, n int, r float8, PRIMARY KEY (id, day));
CALL mooncake.create_table('lone_mirror', 'lone');
SELECT sqlstate_of($$ALTER TABLE events ATTACH PARTITION lone FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')$$);
-- A detached partition is a plain table, mirrored as any.
CALL mooncake.create_table('jan_mirror', 'events_jan');
INSERT INTO events_jan VALUES (401, '2024-01-03', 'plain');
SELECT same_rows('jan_mirror', 'events_jan');
-- A partition whose partitioned table is not mirrored is a plain mirror
-- too; it follows the schema changes made on the tables above it. Its
-- partitioned table cannot be mirrored then.
CREATE TABLE logs (id int, day date, msg text, PRIMARY KEY (id, day)) PARTITION BY RANGE (day);
CREATE TABLE logs_2024 PARTITION OF logs FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
INSERT INTO logs SELECT g, date '2024-01-01' + g, 'm' || g FROM generate_series(1, 10) g;
CALL mooncake.create_table('logs_2024_mirror', 'logs_2024');
ALTER TABLE logs ADD COLUMN lvl int;
ALTER TABLE logs RENAME COLUMN msg TO message;
INSERT INTO logs VALUES (11, '2024-02-01', 'm11', 3);
UPDATE logs SET lvl = 1 WHERE id <= 2;
SELECT * FROM logs_2024_mirror WHERE id IN (1, 11) ORDER BY id;
SELECT same_rows('logs_2024_mirror', 'logs_2024');
SELECT sqlstate_of($$CALL mooncake.create_table('logs_mirror', 'logs')$$);
TRUNCATE logs;
SELECT count(*) FROM logs_2024_mirror;
DROP FUNCTION sqlstate_of(text);

-- DROP TABLE of a mirrored partitioned table fails, naming the mirror;
-- CASCADE drops the mirror too.
\set VERBOSITY default
DROP TABLE events;
\set VERBOSITY terse
DROP TABLE events CASCADE;
SELECT table_name FROM mooncake.columnstore_tables
 WHERE table_name IN ('events_mirror', 'jan_mirror', 'lone_mirror', 'logs_2024_mirror') ORDER BY 1;

DROP TABLE events_jan, events_may_b, lone, nokey, codes, logs CASCADE;
SELECT count(*) FROM mooncake.columnstore_tables
 WHERE table_name IN ('events_mirror', 'jan_mirror', 'lone_mirror', 'logs_2024_mirror');

DROP FUNCTION wait_for;
DROP FUNCTION same_rows;
DROP EXTENSION pg_mooncake CASCADE;
