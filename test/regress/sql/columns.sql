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
-- Flushed: the update is a position delete of the initial copy's row,
-- found by the position of the row in its file, not by those columns.
SELECT wait_for($$SELECT unflushed_rows::text FROM mooncake.columnstore_tables WHERE table_name = 'odd_m'$$, '0') IS NOT NULL
   AND wait_for($$SELECT unflushed_rows::text FROM mooncake.columnstore_tables WHERE table_name = 'odd_m'$$, '0') = '0' AS flushed;
DELETE FROM odd WHERE id = 2;
UPDATE odd SET file_row_number = 9 WHERE id = 1;
SELECT count(*) FROM odd_m;
SELECT wait_for($$SELECT unflushed_rows::text FROM mooncake.columnstore_tables WHERE table_name = 'odd_m'$$, '0') IS NOT NULL
   AND wait_for($$SELECT unflushed_rows::text FROM mooncake.columnstore_tables WHERE table_name = 'odd_m'$$, '0') = '0' AS flushed;
CALL mooncake.optimize_table('odd_m');
SELECT * FROM odd_m ORDER BY id;
SELECT state, data_files, delete_files FROM mooncake.columnstore_tables WHERE table_name = 'odd_m';


-- Rows of any size PostgreSQL holds: one of 70 MB in the initial copy
-- (longer than the CSV reader's default record), one through replication.
CREATE TABLE huge (id int PRIMARY KEY, v text);
INSERT INTO huge VALUES (1, repeat('x', 70 * 1024 * 1024)), (2, 'small');
CALL mooncake.create_table('huge_m', 'huge');
INSERT INTO huge VALUES (3, repeat('y', 70 * 1024 * 1024));
SELECT id, length(v), left(v, 3) FROM huge_m ORDER BY id;

-- The foreign table's columns get their source's types by OID and typmod,
-- never through their printed names ("char", typmods, arrays, domains, a
-- type in another schema), also when the source changes.
CREATE SCHEMA "Other";
CREATE DOMAIN "Other"."pos int" AS int CHECK (VALUE > 0);
CREATE TABLE typed (id int PRIMARY KEY, c "char", v varchar(10), n numeric(7,3),
                    t timestamp(2) with time zone, a bit(3)[], d "Other"."pos int");
INSERT INTO typed VALUES (1, 'x', 'abc', 1.5, '2024-01-01 10:00:00.125+00', ARRAY[B'101'], 5);
CALL mooncake.create_table('typed_m', 'typed');
ALTER TABLE typed ADD COLUMN e varchar(4)[] DEFAULT '{ab}', ALTER COLUMN v TYPE varchar(20);
INSERT INTO typed VALUES (2, 'y', 'abcdefghijklmno', 2.25, NULL, NULL, 7, '{cd,NULL}');
SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS source_type,
       format_type(m.atttypid, m.atttypmod) AS mirror_type
  FROM pg_attribute a
  LEFT JOIN pg_attribute m ON m.attrelid = 'typed_m'::regclass AND m.attname = a.attname
   AND NOT m.attisdropped
 WHERE a.attrelid = 'typed'::regclass AND a.attnum > 0 AND NOT a.attisdropped
   AND (m.atttypid, m.atttypmod) IS DISTINCT FROM (a.atttypid, a.atttypmod);
SELECT * FROM typed_m ORDER BY id;
-- mooncake.execute_typed runs foreign table DDL only, with a type per placeholder
SELECT mooncake.execute_typed('CREATE TABLE x (a mooncake_type_1)', '{23}', '{-1}');
SELECT mooncake.execute_typed('ALTER FOREIGN TABLE typed_m ADD COLUMN z mooncake_type_2', '{23}', '{-1}');
SELECT mooncake.execute_typed('ALTER FOREIGN TABLE typed_m ADD COLUMN z mooncake_type_1', '{23}', '{-1,-1}');

-- The extension's own tables cannot be mirrored.
CALL mooncake.create_table('cat_m', 'mooncake.iceberg_tables');

DROP FUNCTION wait_for;
DROP EXTENSION pg_mooncake CASCADE;
DROP TABLE odd, huge, typed CASCADE;
DROP SCHEMA "Other" CASCADE;
