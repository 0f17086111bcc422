-- Schema changes of a source reach its mirror at their place in the change
-- stream: rows before a change keep their values, rows after it have the
-- new shape, and the foreign table follows in the same transaction.
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

-- The mirror and its source hold the same rows, both ways.
CREATE FUNCTION same_rows(m regclass, s regclass) RETURNS text LANGUAGE plpgsql AS $$
DECLARE a bigint; b bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM (SELECT * FROM %s EXCEPT ALL SELECT * FROM %s) x', m, s) INTO a;
  EXECUTE format('SELECT count(*) FROM (SELECT * FROM %s EXCEPT ALL SELECT * FROM %s) x', s, m) INTO b;
  RETURN format('%s only in the mirror, %s only in the source', a, b);
END $$;

CREATE TABLE src (id int PRIMARY KEY, a text, b int);
INSERT INTO src VALUES (1, 'one', 10), (2, 'two', 20);
CALL mooncake.create_table('mirror', 'src');

-- ADD COLUMN without a default: old rows read NULL.
ALTER TABLE src ADD COLUMN c text;
INSERT INTO src VALUES (3, 'three', 30, 'c3');
SELECT * FROM mirror ORDER BY id;

-- RENAME COLUMN: the column keeps its values under its new name.
ALTER TABLE src RENAME COLUMN a TO label;
INSERT INTO src VALUES (4, 'four', 40, 'c4');
UPDATE src SET label = 'ONE' WHERE id = 1;
SELECT * FROM mirror ORDER BY id;

-- DROP COLUMN.
ALTER TABLE src DROP COLUMN b;
INSERT INTO src VALUES (5, 'five', 'c5');
SELECT * FROM mirror ORDER BY id;
\d mirror

-- Defaults and NOT NULL: the foreign table follows.
ALTER TABLE src ALTER COLUMN c SET DEFAULT 'dflt';
INSERT INTO src (id, label) VALUES (6, 'six');
ALTER TABLE src ALTER COLUMN label SET NOT NULL;
SELECT * FROM mirror ORDER BY id;
ALTER TABLE src ALTER COLUMN label DROP NOT NULL;
ALTER TABLE src ALTER COLUMN c DROP DEFAULT;

-- ADD COLUMN with a constant default: old rows show it, as in PostgreSQL.
ALTER TABLE src ADD COLUMN d int DEFAULT 7;
SELECT * FROM mirror ORDER BY id;

-- ADD COLUMN with a volatile default rewrites the source: the mirror
-- reads the source's values.
ALTER TABLE src ADD COLUMN e float8 DEFAULT random();
SELECT same_rows('mirror', 'src');

-- Type changes: a widening that keeps the text, and one that rewrites.
ALTER TABLE src ALTER COLUMN label TYPE varchar(20);
ALTER TABLE src ALTER COLUMN c TYPE int USING length(c);
ALTER TABLE src ALTER COLUMN id TYPE bigint;
INSERT INTO src (id, label, c) VALUES (7, 'seven', 77);
SELECT id, label, c, d FROM mirror ORDER BY id;
SELECT same_rows('mirror', 'src');
\d mirror

-- Two columns swap names.
ALTER TABLE src RENAME COLUMN label TO tmp;
ALTER TABLE src RENAME COLUMN c TO label;
ALTER TABLE src RENAME COLUMN tmp TO c;
SELECT id, label, c FROM mirror ORDER BY id;

-- A schema change and rows in one transaction, in both orders.
BEGIN;
INSERT INTO src (id) VALUES (8);
ALTER TABLE src ADD COLUMN f text;
INSERT INTO src (id, f) VALUES (9, 'f9');
COMMIT;
BEGIN;
ALTER TABLE src ADD COLUMN g int;
INSERT INTO src (id, g) VALUES (10, 10);
COMMIT;
SELECT id, f, g FROM mirror ORDER BY id;
SELECT same_rows('mirror', 'src');

-- Renaming the source or moving it to another schema: the mirror follows.
CREATE SCHEMA other;
ALTER TABLE src RENAME TO src_renamed;
ALTER TABLE src_renamed SET SCHEMA other;
INSERT INTO other.src_renamed (id, f) VALUES (11, 'moved');
SELECT id, f FROM mirror WHERE id = 11;
SELECT source, state FROM mooncake.columnstore_tables WHERE table_name = 'mirror';

-- TRUNCATE, then new rows.
TRUNCATE other.src_renamed;
INSERT INTO other.src_renamed (id, f) VALUES (12, 'after');
SELECT id, f FROM mirror;

DROP TABLE other.src_renamed CASCADE;
DROP SCHEMA other;
SELECT count(*) FROM mooncake.columnstore_tables WHERE table_name = 'mirror';

DROP FUNCTION wait_for;
DROP FUNCTION same_rows;
DROP EXTENSION pg_mooncake CASCADE;
