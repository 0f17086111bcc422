-- Columnstore tables: DELETE ... RETURNING and ALTER TABLE (columns added,
-- dropped, renamed, widened; NOT NULL and defaults), each in the user's
-- transaction, and what stays refused.
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
CREATE FUNCTION explain_verbose(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q LOOP
    RETURN NEXT regexp_replace(line, '''[^'']*[.](parquet|json)''', '''<file>''', 'g');
  END LOOP;
END $$;

CREATE TABLE items (id int NOT NULL, name text, price numeric(8,2), qty int DEFAULT 1)
  USING columnstore;
INSERT INTO items SELECT g, 'item ' || g, g * 1.5, g % 4 FROM generate_series(1, 20) g;

-- DELETE ... RETURNING: the scan returns the columns RETURNING reads
SELECT explain_verbose($$DELETE FROM items WHERE id = 1 RETURNING *$$);
DELETE FROM items WHERE id = 1 RETURNING *;
SELECT explain_verbose($$DELETE FROM items WHERE id < 4 RETURNING id, price * qty AS total$$);
WITH d AS (DELETE FROM items WHERE id < 4 RETURNING id, price * qty AS total)
  SELECT * FROM d ORDER BY id;
DELETE FROM items WHERE id = 4 RETURNING name;
DELETE FROM items WHERE id = 5 RETURNING items;
DELETE FROM items WHERE id = 6 RETURNING 'gone' AS what, length(name);
DELETE FROM items WHERE id = 999 RETURNING *;
SELECT count(*), min(id) FROM items;
-- in a CTE, into a heap table and into another columnstore table
CREATE TABLE removed_heap (id int, name text, price numeric(8,2), qty int);
CREATE TABLE removed_cs (id int, name text, price numeric(8,2), qty int) USING columnstore;
WITH d AS (DELETE FROM items WHERE id BETWEEN 7 AND 9 RETURNING *)
  INSERT INTO removed_heap SELECT * FROM d;
WITH d AS (DELETE FROM items WHERE id BETWEEN 10 AND 11 RETURNING *)
  INSERT INTO removed_cs SELECT * FROM d;
SELECT * FROM removed_heap ORDER BY id;
SELECT * FROM removed_cs ORDER BY id;
SELECT count(*), min(id) FROM items;
-- rolled back, and in a savepoint
BEGIN;
WITH d AS (DELETE FROM items WHERE id > 15 RETURNING id) SELECT * FROM d ORDER BY id;
SELECT count(*) FROM items;
SAVEPOINT s;
DELETE FROM items WHERE id = 12 RETURNING id, name;
ROLLBACK TO s;
SELECT count(*) FROM items;
ROLLBACK;
SELECT count(*) FROM items;
-- the same rows deleted again in one transaction return nothing
BEGIN;
DELETE FROM items WHERE id = 12 RETURNING id;
DELETE FROM items WHERE id = 12 RETURNING id;
COMMIT;
SELECT count(*) FROM items;
-- with a join, in a prepared statement, in a function
CREATE TABLE picks (id int, why text);
INSERT INTO picks VALUES (13, 'joined'), (14, 'joined');
WITH d AS (DELETE FROM items i USING picks p WHERE i.id = p.id RETURNING i.id, i.name, p.why)
  SELECT * FROM d ORDER BY id;
PREPARE del(int) AS DELETE FROM items WHERE id = $1 RETURNING name;
EXECUTE del(15);
EXECUTE del(15);
DEALLOCATE del;
CREATE FUNCTION del_one(n int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
  DELETE FROM items WHERE id = n RETURNING name INTO r;
  RETURN r;
END $$;
SELECT del_one(16);
SELECT count(*) FROM items;
DROP FUNCTION del_one;
DROP TABLE picks;

-- ALTER TABLE: the Iceberg schema evolves in the user's transaction
CREATE TABLE shapes (id int NOT NULL, name varchar(10), price numeric(6,2), qty smallint, ratio real)
  USING columnstore;
INSERT INTO shapes VALUES (1, 'one', 1.50, 1, 0.5), (2, 'two', NULL, 2, 1.5);
ALTER TABLE shapes ADD COLUMN note text;
SELECT * FROM shapes ORDER BY id;
INSERT INTO shapes VALUES (3, 'three', 3.25, 3, 2.5, 'noted');
SELECT id, note FROM shapes WHERE note IS NOT NULL;
ALTER TABLE shapes RENAME COLUMN note TO remark;
SELECT explain_verbose($$SELECT id, remark FROM shapes WHERE remark = 'noted'$$);
SELECT id, remark FROM shapes WHERE remark = 'noted';
ALTER TABLE shapes ALTER COLUMN id TYPE bigint, ALTER COLUMN qty TYPE bigint,
  ALTER COLUMN ratio TYPE double precision, ALTER COLUMN price TYPE numeric(10,2),
  ALTER COLUMN name TYPE varchar(20);
\d shapes
INSERT INTO shapes VALUES (9000000000, 'a longer name', 12345678.90, 9000000000, 1e300, NULL);
SELECT * FROM shapes ORDER BY id;
SELECT sum(qty), max(ratio) FROM shapes;
ALTER TABLE shapes DROP COLUMN ratio;
SELECT * FROM shapes ORDER BY id;
UPDATE shapes SET remark = 'updated ' || id WHERE id < 3 RETURNING *;
DELETE FROM shapes WHERE id = 9000000000 RETURNING id, name;
SELECT * FROM shapes ORDER BY id;
-- a column added back under a dropped column's name is a new column
ALTER TABLE shapes ADD COLUMN ratio real;
SELECT id, ratio FROM shapes ORDER BY id;

-- defaults: PostgreSQL's for new rows; a new column's for the rows written before
ALTER TABLE shapes ALTER COLUMN remark SET DEFAULT 'none';
INSERT INTO shapes (id, name) VALUES (4, 'four');
ALTER TABLE shapes ALTER COLUMN remark DROP DEFAULT;
INSERT INTO shapes (id, name) VALUES (5, 'five');
SELECT id, remark FROM shapes ORDER BY id;
ALTER TABLE shapes ADD COLUMN flag boolean DEFAULT true, ADD COLUMN n int NOT NULL DEFAULT 7;
SELECT id, flag, n FROM shapes ORDER BY id;
INSERT INTO shapes (id) VALUES (6);
SELECT id, flag, n FROM shapes WHERE id = 6;
-- a serial column and a domain's default fill the rows written before too
CREATE DOMAIN d_tag AS text DEFAULT 'tagged';
ALTER TABLE shapes ADD COLUMN num serial, ADD COLUMN tag d_tag;
SELECT count(*), count(DISTINCT num), min(num) > 0 AS positive, count(*) FILTER (WHERE tag = 'tagged') AS tagged FROM shapes;
ALTER TABLE shapes DROP COLUMN num, DROP COLUMN tag;
DROP DOMAIN d_tag;

-- NOT NULL: checked against the rows, as for a heap table
ALTER TABLE shapes ALTER COLUMN remark SET NOT NULL;
ALTER TABLE shapes ADD COLUMN must int NOT NULL;
UPDATE shapes SET remark = coalesce(remark, '-');
ALTER TABLE shapes ALTER COLUMN remark SET NOT NULL;
INSERT INTO shapes (id, remark) VALUES (7, NULL);
ALTER TABLE shapes ALTER COLUMN remark DROP NOT NULL;
INSERT INTO shapes (id, remark) VALUES (7, NULL);
SELECT count(*), count(remark) FROM shapes;

-- rolled back: the columns and the Iceberg schema both
BEGIN;
ALTER TABLE shapes ADD COLUMN gone int;
INSERT INTO shapes (id, gone) VALUES (100, 1);
SELECT id, gone FROM shapes WHERE gone IS NOT NULL;
ROLLBACK;
SELECT count(*) FROM shapes WHERE id = 100;
INSERT INTO shapes (id) VALUES (101);
BEGIN;
ALTER TABLE shapes DROP COLUMN name;
SAVEPOINT s;
ALTER TABLE shapes RENAME COLUMN remark TO comment;
ROLLBACK TO s;
SELECT id, remark FROM shapes WHERE id = 1;
COMMIT;
\d shapes
SELECT * FROM shapes ORDER BY id;

-- refused: a clear error, and the table as it was
\set VERBOSITY default
ALTER TABLE shapes ALTER COLUMN id TYPE int;
ALTER TABLE shapes ALTER COLUMN remark TYPE int USING length(remark);
ALTER TABLE shapes ALTER COLUMN remark TYPE varchar(5);
ALTER TABLE shapes ALTER COLUMN price TYPE numeric(12,4);
ALTER TABLE shapes ALTER COLUMN price TYPE float8;
ALTER TABLE shapes ADD COLUMN k int PRIMARY KEY;
ALTER TABLE shapes ADD COLUMN k int CHECK (k > 0);
ALTER TABLE shapes ADD CONSTRAINT c CHECK (id > 0);
ALTER TABLE shapes ADD COLUMN g int GENERATED ALWAYS AS (id * 2) STORED;
ALTER TABLE shapes ADD COLUMN i int GENERATED ALWAYS AS IDENTITY;
ALTER TABLE shapes ADD COLUMN Remark text;
ALTER TABLE shapes ADD COLUMN "REMARK" text;
ALTER TABLE shapes SET (fillfactor = 50);
ALTER TABLE shapes ALTER COLUMN id SET STATISTICS 10;
ALTER FOREIGN TABLE shapes OPTIONS (ADD format 'csv');
ALTER TABLE shapes DROP COLUMN id, DROP COLUMN remark, DROP COLUMN price, DROP COLUMN qty,
  DROP COLUMN ratio, DROP COLUMN flag, DROP COLUMN n;
SELECT count(*) FROM shapes;
\set VERBOSITY terse

-- columnstore_tables.rows: the live rows (deleted rows not counted)
CREATE TABLE counted (id int) USING columnstore;
SELECT rows, data_files, delete_files FROM mooncake.columnstore_tables WHERE table_name = 'counted';
INSERT INTO counted SELECT generate_series(1, 100);
INSERT INTO counted SELECT generate_series(101, 150);
DELETE FROM counted WHERE id % 10 = 0;
UPDATE counted SET id = -id WHERE id < 5;
SELECT rows, data_files, delete_files, (SELECT count(*) FROM counted) AS counted
  FROM mooncake.columnstore_tables WHERE table_name = 'counted';
BEGIN;
DELETE FROM counted WHERE id > 100;
SELECT rows FROM mooncake.columnstore_tables WHERE table_name = 'counted';
ROLLBACK;
SELECT rows FROM mooncake.columnstore_tables WHERE table_name = 'counted';
TRUNCATE counted;
SELECT rows, data_files, delete_files FROM mooncake.columnstore_tables WHERE table_name = 'counted';
INSERT INTO counted VALUES (1), (2);
SELECT rows, data_files, delete_files FROM mooncake.columnstore_tables WHERE table_name = 'counted';
SELECT table_name, rows FROM mooncake.columnstore_tables WHERE source IS NULL ORDER BY 1;
DROP TABLE counted;

-- files of writes never committed: removed at rollback; the sweep finds none left
BEGIN;
INSERT INTO items SELECT g, 'rolled back', 1, 1 FROM generate_series(100, 200) g;
DELETE FROM items WHERE id = 12;
ROLLBACK;
SELECT mooncake.remove_orphan_files('items', '0 seconds');
CALL mooncake.optimize_table('items');
SELECT mooncake.remove_orphan_files('removed_heap');
SELECT mooncake.remove_orphan_files('items', '-1 hour');
SELECT count(*) FROM items;

-- columns named as the reader's virtual columns: UPDATE and DELETE find
-- their rows by position all the same
CREATE TABLE named_like (id int, filename text, file_row_number bigint) USING columnstore;
INSERT INTO named_like SELECT g, 'f' || g, 100 + g FROM generate_series(1, 5) g;
UPDATE named_like SET filename = 'updated', file_row_number = -1 WHERE id = 2;
DELETE FROM named_like WHERE file_row_number = 104;
SELECT * FROM named_like ORDER BY id;
DROP TABLE named_like;

DROP TABLE items, removed_cs, shapes;
DROP TABLE removed_heap;
DROP FUNCTION wait_for;
DROP FUNCTION explain_verbose;
DROP EXTENSION pg_mooncake CASCADE;
