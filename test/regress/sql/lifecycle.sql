-- A mirror depends on its source as PostgreSQL objects do, and is found by
-- OID whatever its name.
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

CREATE TABLE src (id int PRIMARY KEY, v text);
INSERT INTO src VALUES (1, 'a');
CALL mooncake.create_table('m', 'src');

-- DROP TABLE of a mirrored source fails, naming the mirror.
DROP TABLE src;
\set VERBOSITY default
DROP TABLE src;
\set VERBOSITY terse

-- Renaming and moving the foreign table keeps the mirror working.
CREATE SCHEMA elsewhere;
ALTER FOREIGN TABLE m RENAME TO m_renamed;
ALTER FOREIGN TABLE m_renamed SET SCHEMA elsewhere;
INSERT INTO src VALUES (2, 'b');
SELECT * FROM elsewhere.m_renamed ORDER BY id;

-- The renamed mirror keeps its Iceberg table: create_table of the old
-- name is refused rather than replacing it.
CALL mooncake.create_table('m', 'src');

-- Another foreign table that takes the old name is not the mirror: dropping
-- it leaves the mirror alone.
CREATE FOREIGN TABLE m (id int, v text) SERVER mooncake OPTIONS (namespace 'public', "table" 'm');
DROP FOREIGN TABLE m;
SELECT * FROM elsewhere.m_renamed ORDER BY id;
SELECT schema_name, table_name, state FROM mooncake.columnstore_tables WHERE table_name LIKE 'm%' ORDER BY 1, 2;

-- A drop that rolls back, whole or to a savepoint, keeps the mirror.
BEGIN;
DROP FOREIGN TABLE elsewhere.m_renamed;
ROLLBACK;
BEGIN;
SAVEPOINT a;
DROP TABLE src CASCADE;
ROLLBACK TO a;
COMMIT;
INSERT INTO src VALUES (3, 'c');
SELECT * FROM elsewhere.m_renamed ORDER BY id;

-- drop_table finds the mirror under its new name.
CALL mooncake.drop_table('elsewhere.m_renamed');
SELECT count(*) FROM mooncake.columnstore_tables WHERE table_name LIKE 'm%';
DROP TABLE src;

-- DROP TABLE ... CASCADE drops the mirror too; so does DROP SCHEMA ... CASCADE.
CREATE TABLE src (id int PRIMARY KEY, v text);
CALL mooncake.create_table('m1', 'src');
DROP TABLE src CASCADE;
SELECT count(*) FROM mooncake.columnstore_tables WHERE table_name LIKE 'm%';
CREATE SCHEMA s;
CREATE TABLE s.src (id int PRIMARY KEY);
CALL mooncake.create_table('s.m2', 's.src');
DROP SCHEMA s CASCADE;
SELECT count(*) FROM mooncake.columnstore_tables WHERE table_name LIKE 'm%';
DROP SCHEMA elsewhere;

-- A second create_table after a failed one works and follows its source.
CREATE TABLE src (id int PRIMARY KEY, v text);
CALL mooncake.create_table('m3', 'src');
CALL mooncake.create_table('m3', 'src');
INSERT INTO src VALUES (1, 'x');
SELECT * FROM m3;

-- resync_table rebuilds a mirror from its source.
CALL mooncake.resync_table('m3');
SELECT * FROM m3;
SELECT table_name, state, rows FROM mooncake.columnstore_tables WHERE table_name LIKE 'm%' ORDER BY 1;

-- A create_table rolled back leaves nothing behind: the sidecar drops its
-- mirror, and the source stays published for the mirror that remains.
BEGIN;
CALL mooncake.create_table('m_rolled_back', 'src');
SELECT count(*) FROM m_rolled_back;
ROLLBACK;
SELECT wait_for($$SELECT count(*)::text FROM mooncake.columnstore_tables WHERE table_name = 'm_rolled_back'$$, '0');
SELECT count(*) FROM pg_publication_tables WHERE pubname = 'mooncake_pub' AND tablename = 'src';
INSERT INTO src VALUES (2, 'y');
SELECT * FROM m3 ORDER BY id;
CALL mooncake.create_table('m_rolled_back', 'src');
SELECT * FROM m_rolled_back ORDER BY id;
CALL mooncake.drop_table('m_rolled_back');

-- Bad arguments.
CALL mooncake.create_table(NULL, 'src');
CALL mooncake.create_table('m4', NULL);
CALL mooncake.resync_table(NULL);
CALL mooncake.resync_table('no_such_table');
CALL mooncake.create_table('m4', 'mooncake.iceberg_tables');
CALL mooncake.create_table('m4', 'src', replica_identity_full => NULL);
CALL mooncake.create_table('', 'src');
CALL mooncake.create_table('a.b.c', 'src');
CALL mooncake.create_table('m4', 'src', key_index => 'no_such_index');
CALL mooncake.drop_table(NULL);
CALL mooncake.optimize_table(NULL);
CALL mooncake.resync_table('src');
CALL mooncake.drop_table('src');
DROP TABLE src CASCADE;

DROP FUNCTION wait_for;
DROP EXTENSION pg_mooncake CASCADE;
