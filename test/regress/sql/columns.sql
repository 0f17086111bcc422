-- Columns a mirror holds, and those it refuses up front.
CREATE EXTENSION pg_mooncake;
\set VERBOSITY terse

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

-- Names the sidecar's file reader uses itself are ordinary column names.
CREATE TABLE odd (id int PRIMARY KEY, filename text, file_row_number bigint,
                  "_x" int, "mooncake" text, "Mixed Case" text);
INSERT INTO odd VALUES (1, 'f.parquet', 7, 1, 'm', 'M');
CALL mooncake.create_table('odd_m', 'odd');
INSERT INTO odd VALUES (2, 'g.parquet', 8, 2, 'n', 'N');
UPDATE odd SET filename = 'h.parquet' WHERE id = 1;
SELECT * FROM odd_m ORDER BY id;
SELECT state FROM mooncake.columnstore_tables WHERE table_name = 'odd_m';


-- Rows of any size PostgreSQL holds: one of 70 MB in the initial copy
-- (longer than the CSV reader's default record), one through replication.
CREATE TABLE huge (id int PRIMARY KEY, v text);
INSERT INTO huge VALUES (1, repeat('x', 70 * 1024 * 1024)), (2, 'small');
CALL mooncake.create_table('huge_m', 'huge');
INSERT INTO huge VALUES (3, repeat('y', 70 * 1024 * 1024));
SELECT id, length(v), left(v, 3) FROM huge_m ORDER BY id;

-- The extension's own tables cannot be mirrored.
CALL mooncake.create_table('cat_m', 'mooncake.iceberg_tables');

DROP FUNCTION wait_for;
DROP EXTENSION pg_mooncake CASCADE;
DROP TABLE odd, huge CASCADE;
