-- Generated columns. PostgreSQL 18 publishes the values of stored ones
-- (the mirror's publication asks for them): mirrored like any column.
-- Before 18 logical replication never sends them: refused up front,
-- naming the column, rather than mirrored as NULLs (expected/generated.out;
-- generated_1.out is PostgreSQL 18's). Virtual generated columns (18) are
-- never replicated: refused.
CREATE EXTENSION pg_mooncake;
\set VERBOSITY terse

CREATE FUNCTION wait_for(q text, expected text, also text DEFAULT NULL) RETURNS text LANGUAGE plpgsql AS $$
DECLARE got text;
BEGIN
  FOR i IN 1..1000 LOOP
    BEGIN
      EXECUTE q INTO got;
    EXCEPTION WHEN OTHERS THEN
      got := 'error: ' || SQLERRM;
    END;
    IF got IS NOT DISTINCT FROM expected OR got LIKE also THEN RETURN got; END IF;
    PERFORM pg_sleep(0.01);
  END LOOP;
  RETURN got;
END $$;
SELECT wait_for($$SELECT (mooncake.bgworker_status()->>'socket_listening')$$, 'true');

CREATE TABLE gen (id int PRIMARY KEY, a int, b int GENERATED ALWAYS AS (a * 2) STORED, c text);
INSERT INTO gen (id, a, c) SELECT g, g, 'r' || g FROM generate_series(1, 4) g;
CALL mooncake.create_table('gen_m', 'gen');
INSERT INTO gen (id, a, c) VALUES (5, 50, 'new');
UPDATE gen SET a = a + 100 WHERE id = 2;
UPDATE gen SET c = 'changed' WHERE id = 3;
DELETE FROM gen WHERE id = 4;
SELECT * FROM gen_m ORDER BY id;
SELECT count(*) AS differences FROM (SELECT * FROM gen EXCEPT ALL SELECT * FROM gen_m) d;

-- a stored generated column added to a mirrored source: copied again
CREATE TABLE gen2 (id int PRIMARY KEY, a int);
INSERT INTO gen2 SELECT g, g FROM generate_series(1, 3) g;
CALL mooncake.create_table('gen2_m', 'gen2');
ALTER TABLE gen2 ADD COLUMN b int GENERATED ALWAYS AS (a + 1000) STORED;
INSERT INTO gen2 (id, a) VALUES (4, 4);
-- (before 18 the mirror breaks)
SELECT wait_for($$SELECT count(*)::text FROM (SELECT * FROM gen2 EXCEPT ALL SELECT * FROM gen2_m) d$$,
                '0', '%is broken%') AS differences;

-- virtual generated columns (PostgreSQL 18; a syntax error before)
CREATE TABLE genv (id int PRIMARY KEY, a int, v int GENERATED ALWAYS AS (a * 3) VIRTUAL);
CALL mooncake.create_table('genv_m', 'genv');
SELECT count(*) FROM pg_class WHERE relname = 'genv_m';

DROP TABLE gen, gen2 CASCADE;
DROP TABLE IF EXISTS genv;
DROP FUNCTION wait_for;
DROP EXTENSION pg_mooncake CASCADE;
