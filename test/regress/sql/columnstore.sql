-- Columnstore tables of their own: CREATE TABLE ... USING columnstore,
-- INSERT (VALUES, SELECT), COPY FROM STDIN, CREATE TABLE AS, queries with
-- their pushdown, transactions (rollback, savepoints, a heap table
-- written in the same transaction), DROP, and what is refused.
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
-- EXPLAIN with the files' names (random) left out
CREATE FUNCTION explain_verbose(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q LOOP
    RETURN NEXT regexp_replace(line, '''[^'']*[.](parquet|json)''', '''<file>''', 'g');
  END LOOP;
END $$;

-- the manual's installation check
SELECT amname FROM pg_am WHERE amname IN ('mooncake', 'columnstore') ORDER BY 1;

CREATE TABLE events (id bigint NOT NULL, kind text, amount numeric(12,2), at timestamptz, ok boolean DEFAULT true)
  USING columnstore;
\d events
SELECT schema_name, table_name, source, state FROM mooncake.columnstore_tables WHERE table_name = 'events';

INSERT INTO events VALUES (1, 'view', 1.50, '2024-01-01 10:00+00', true), (2, 'click', NULL, '2024-01-02 11:00+00', false);
INSERT INTO events (id, kind, amount, at) SELECT g, CASE WHEN g % 3 = 0 THEN 'buy' ELSE 'view' END, g * 1.25, '2024-02-01 00:00+00'::timestamptz + g * interval '1 hour'
  FROM generate_series(3, 1000) g;
COPY events (id, kind, amount, at, ok) FROM STDIN;
1001	copy	9.99	2024-03-01 00:00:00+00	t
1002	\N	\N	\N	\N
\.
SELECT count(*), sum(amount), min(at), max(id) FROM events;
SELECT explain_verbose($$SELECT kind, count(*), sum(amount) FROM events WHERE id > 10 GROUP BY kind ORDER BY kind$$);
SELECT kind, count(*), sum(amount) FROM events WHERE id > 10 GROUP BY kind ORDER BY kind;
SELECT * FROM events WHERE id IN (1, 2, 1001, 1002) ORDER BY id;

-- transactions: rollback, savepoints, own writes, a heap table beside
CREATE TABLE audit (n int);
BEGIN;
INSERT INTO events (id, kind) VALUES (2000, 'in a transaction');
SELECT count(*) FROM events WHERE id >= 2000;
SAVEPOINT s1;
INSERT INTO events (id, kind) VALUES (2001, 'after the savepoint');
SELECT count(*) FROM events WHERE id >= 2000;
ROLLBACK TO s1;
SELECT count(*) FROM events WHERE id >= 2000;
INSERT INTO audit VALUES (1);
COMMIT;
SELECT id, kind FROM events WHERE id >= 2000 ORDER BY id;
SELECT * FROM audit;
BEGIN;
INSERT INTO events (id, kind) VALUES (3000, 'rolled back');
INSERT INTO audit VALUES (2);
ROLLBACK;
SELECT count(*) FROM events WHERE id = 3000;
SELECT * FROM audit;

-- CREATE TABLE AS, from a heap table, from a columnstore table
CREATE TABLE buyers USING columnstore AS SELECT id, amount FROM events WHERE kind = 'buy';
SELECT count(*), sum(amount) FROM buyers;
CREATE TABLE empty_copy USING columnstore AS SELECT * FROM events WITH NO DATA;
SELECT count(*) FROM empty_copy;
SET default_table_access_method = columnstore;
CREATE TABLE by_default AS SELECT n FROM audit;
RESET default_table_access_method;
SELECT * FROM by_default;
SELECT table_name, source, state FROM mooncake.columnstore_tables WHERE source IS NULL ORDER BY 1;

-- LIKE: a heap table's columns (NOT NULL always, defaults and column
-- comments when asked); what a columnstore table cannot keep is refused
-- when asked for and there
CREATE TABLE like_src (id bigint PRIMARY KEY, name text NOT NULL DEFAULT 'none',
  price numeric(10,2) CHECK (price >= 0), "Odd Name" timestamptz);
COMMENT ON COLUMN like_src.name IS 'who bought';
CREATE TABLE like_plain (LIKE like_src) USING columnstore;
CREATE TABLE like_more (LIKE like_src INCLUDING DEFAULTS INCLUDING COMMENTS, extra int) USING columnstore;
CREATE TABLE like_all (LIKE like_src INCLUDING ALL) USING columnstore;
CREATE TABLE like_all (LIKE like_src INCLUDING ALL EXCLUDING INDEXES) USING columnstore;
CREATE TABLE like_all (LIKE like_src INCLUDING ALL EXCLUDING INDEXES EXCLUDING CONSTRAINTS) USING columnstore;
CREATE TABLE like_bad (LIKE no_such_table) USING columnstore;
SELECT attrelid::regclass, attname, format_type(atttypid, atttypmod), attnotnull,
       pg_get_expr(adbin, adrelid) AS default, col_description(attrelid, attnum) AS comment
FROM pg_attribute LEFT JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum
WHERE attrelid IN ('like_plain'::regclass, 'like_more'::regclass, 'like_all'::regclass) AND attnum > 0
ORDER BY attrelid::regclass::text, attnum;
INSERT INTO like_more (id, price) VALUES (1, 9.99);
INSERT INTO like_plain (id, price) VALUES (1, 9.99);
INSERT INTO like_all SELECT id, name, price, "Odd Name" FROM like_more;
SELECT * FROM like_more;
SELECT id, name, price FROM like_all;
-- COPY TO of a columnstore table (a foreign table, which PostgreSQL's COPY
-- does not copy) runs as COPY (SELECT ...) TO
COPY like_more TO STDOUT (FORMAT csv, HEADER);
COPY like_more (price, id) TO STDOUT;
SELECT table_name, source FROM mooncake.columnstore_tables WHERE table_name LIKE 'like%' ORDER BY 1;
DROP TABLE like_plain, like_more, like_all;
DROP TABLE like_src;

-- a location of its own (superusers and pg_write_server_files)
CREATE TABLE placed (id int) USING columnstore WITH (location = '/nonexistent-mooncake-dir/placed');
CREATE TABLE placed (id int) USING columnstore WITH (location = 'relative/dir');
CREATE TABLE placed (id int) USING columnstore WITH (location = 'gs://bucket/placed');
CREATE TABLE placed (id int) USING columnstore WITH (fillfactor = 50);

-- errors
INSERT INTO events (kind) VALUES ('no id');
CREATE INDEX ON events (id);
ALTER TABLE events ALTER COLUMN id TYPE int;
CREATE TABLE bad (id int PRIMARY KEY) USING columnstore;
CREATE TABLE bad (id int, CHECK (id > 0)) USING columnstore;
CREATE TEMP TABLE bad (id int) USING columnstore;
CREATE MATERIALIZED VIEW mv USING columnstore AS SELECT 1 AS x;
ALTER TABLE audit SET ACCESS METHOD columnstore;
-- as pg_dump writes a columnstore table: a columnstore table of its own
CREATE FOREIGN TABLE fake (id int) SERVER mooncake OPTIONS (columnstore 'true');
CREATE FOREIGN TABLE fake2 (id int) SERVER mooncake OPTIONS (columnstore 'true', "table" 'events');
SELECT table_name, source FROM mooncake.columnstore_tables WHERE table_name = 'fake';
CREATE FOREIGN TABLE IF NOT EXISTS fake (id int) SERVER mooncake OPTIONS (columnstore 'true');
DROP TABLE fake;
SELECT count(*) FROM events;

-- UPDATE and DELETE: rows found by their place in the files (ctid)
SELECT explain_verbose($$UPDATE events SET amount = amount * 2, kind = upper(kind) WHERE id BETWEEN 3 AND 5$$);
UPDATE events SET amount = amount * 2, kind = upper(kind) WHERE id BETWEEN 3 AND 5;
SELECT id, kind, amount FROM events WHERE id BETWEEN 1 AND 6 ORDER BY id;
UPDATE events SET ok = NOT ok WHERE id = 1 RETURNING id, kind, ok;
DELETE FROM events WHERE kind = 'buy' AND id < 100;
SELECT kind, count(*) FROM events GROUP BY kind ORDER BY kind;
BEGIN;
DELETE FROM events WHERE id > 500;
SELECT count(*) FROM events;
SAVEPOINT s;
UPDATE events SET kind = 'temp';
SELECT kind, count(*) FROM events GROUP BY kind;
ROLLBACK TO s;
SELECT count(*), count(DISTINCT kind) FROM events;
ROLLBACK;
SELECT count(*) FROM events;
DELETE FROM events WHERE id = 1 RETURNING *;

-- TRUNCATE, rolled back and committed, with a heap table
BEGIN;
TRUNCATE events, audit;
SELECT count(*) FROM events;
SELECT count(*) FROM audit;
ROLLBACK;
SELECT count(*) FROM events;
SELECT count(*) FROM audit;
CREATE TABLE scratch (id int) USING columnstore;
INSERT INTO scratch SELECT generate_series(1, 10);
BEGIN;
TRUNCATE scratch;
INSERT INTO scratch VALUES (42);
COMMIT;
SELECT * FROM scratch;
DROP TABLE scratch;

-- COMMENT ON TABLE and LOCK TABLE name a columnstore table as a table
COMMENT ON TABLE buyers IS 'who bought';
SELECT obj_description('buyers'::regclass, 'pg_class');
LOCK TABLE buyers;
BEGIN;
LOCK TABLE buyers, audit IN SHARE MODE;
SELECT relation::regclass, mode FROM pg_locks
WHERE pid = pg_backend_pid() AND relation IN ('buyers'::regclass, 'audit'::regclass) AND mode = 'ShareLock' ORDER BY 1;
COMMIT;

-- renamed, then dropped: the catalog forgets it
ALTER TABLE buyers RENAME TO big_buyers;
SELECT count(*) FROM big_buyers;
DROP TABLE big_buyers;
-- with a heap table in the same DROP: both go, or neither
CREATE TABLE heap_beside (id int);
BEGIN;
DROP TABLE empty_copy, heap_beside, no_such_table;
ROLLBACK;
DROP TABLE IF EXISTS empty_copy, heap_beside, no_such_table, by_default;
SELECT table_name FROM mooncake.columnstore_tables WHERE source IS NULL ORDER BY 1;
SELECT table_namespace, table_name FROM mooncake.iceberg_tables ORDER BY 2;

DROP TABLE events;
DROP TABLE audit;
DROP FUNCTION wait_for;
DROP FUNCTION explain_verbose;
DROP EXTENSION pg_mooncake CASCADE;
