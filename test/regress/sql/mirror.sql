-- The manual's trades example, end to end: a mirror follows its source.
CREATE EXTENSION pg_mooncake;
\set VERBOSITY terse

-- Wait (up to 10 s) until a query returns the expected value.
CREATE FUNCTION wait_for(q text, expected text) RETURNS text LANGUAGE plpgsql AS $$
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

CREATE TABLE trades(
  id bigint PRIMARY KEY,
  symbol text,
  time timestamp,
  price real
);
INSERT INTO trades VALUES (0, 'INTC', '2024-06-05 09:55:00', 30);
CALL mooncake.create_table('trades_iceberg', 'trades');

-- The foreign table has the source's columns.
\d trades_iceberg

INSERT INTO trades VALUES
  (1, 'AMD', '2024-06-05 10:00:00', 119),
  (2, 'AMZN', '2024-06-05 10:05:00', 207),
  (3, 'AAPL', '2024-06-05 10:10:00', 203),
  (4, 'AMZN', '2024-06-05 10:15:00', 210);
-- A session sees its own committed writes in the mirror at once.
SELECT * FROM trades_iceberg ORDER BY id;

-- Only the needed columns are fetched; filters and aggregates run in DuckDB.
EXPLAIN (VERBOSE, COSTS OFF) SELECT symbol FROM trades_iceberg WHERE price > 200;
SELECT symbol FROM trades_iceberg WHERE price > 200 ORDER BY symbol;
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*) FROM trades_iceberg;

-- Updates and deletes reach the mirror.
UPDATE trades SET price = 220 WHERE id = 4;
DELETE FROM trades WHERE id = 0;
SELECT id, price FROM trades_iceberg ORDER BY id;


-- Errors.
CALL mooncake.create_table('m', 'no_such_table');
CALL mooncake.create_table('trades_iceberg', 'trades');
CREATE TABLE nokey (a int);
CALL mooncake.create_table('nokey_m', 'nokey');
INSERT INTO trades_iceberg VALUES (9, 'X', now(), 1);
-- Schemas: system and temporary ones are refused; information_schema and
-- mooncake_internal (schemas DuckDB keeps, or the sidecar uses, in its own
-- catalogs) hold mirrors like any other.
CALL mooncake.create_table('pg_catalog.trades_m', 'trades');
CREATE TEMP TABLE scratch (a int);
\set VERBOSITY terse
DO $$ BEGIN EXECUTE pg_catalog.format('CALL mooncake.create_table(%L, ''trades'')', pg_my_temp_schema()::regnamespace || '.trades_m'); END $$;
\set VERBOSITY default
DROP TABLE scratch;
CALL mooncake.create_table('information_schema.trades_m', 'trades');
CREATE SCHEMA mooncake_internal;
CALL mooncake.create_table('mooncake_internal.tail_1_0', 'trades');
SELECT count(*) FROM information_schema.trades_m;
SELECT count(*) FROM mooncake_internal.tail_1_0 WHERE price > 200;
DROP FOREIGN TABLE information_schema.trades_m, mooncake_internal.tail_1_0;
DROP SCHEMA mooncake_internal;

-- Dropping the columnstore table drops its mirror; the name can be reused.
CALL mooncake.drop_table('trades_iceberg');
CALL mooncake.create_table('trades_iceberg', 'trades');
SELECT count(*) FROM trades_iceberg;
CALL mooncake.drop_table('trades');
DROP FOREIGN TABLE trades_iceberg;
SELECT count(*) FROM pg_publication_tables WHERE pubname = 'mooncake_pub';
-- Statements naming a table take a mirror as one: COMMENT ON TABLE, COPY
-- ... TO, DROP TABLE (also beside a heap table).
CREATE TABLE one_row (id int PRIMARY KEY, v text);
INSERT INTO one_row VALUES (1, 'only');
CALL mooncake.create_table('one_row_m', 'one_row');
COMMENT ON TABLE one_row_m IS 'one row, as Iceberg';
SELECT obj_description('one_row_m'::regclass, 'pg_class');
COPY one_row_m TO STDOUT (FORMAT csv, HEADER);
CREATE TABLE heap_beside (id int);
DROP TABLE one_row_m, heap_beside;
SELECT count(*) FROM mooncake.columnstore_tables WHERE table_name = 'one_row_m';
DROP TABLE one_row;
SELECT count(*) FROM pg_publication_tables WHERE pubname = 'mooncake_pub';
DROP TABLE trades, nokey;
DROP FUNCTION wait_for;
