--
-- extension: the SQL surface of pg_mooncake, without a sidecar
--
-- Everything here is answered by PostgreSQL alone: the objects the
-- extension creates, the option validator, and the checks create_table
-- makes before it contacts the sidecar.
--

CREATE EXTENSION pg_mooncake;

SELECT extname, extversion, extrelocatable
  FROM pg_extension WHERE extname = 'pg_mooncake';

-- the objects that belong to the extension (PostgreSQL 18 also lists the
-- row types of its tables and the array types, which earlier ones do not)
SELECT pg_describe_object(classid, objid, objsubid) AS object
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_mooncake')
   AND deptype = 'e'
   AND NOT EXISTS (SELECT FROM pg_type t
                    WHERE classid = 'pg_type'::regclass AND t.oid = objid
                      AND (t.typcategory = 'A'
                           OR (t.typrelid <> 0 AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) <> 'c')))
 ORDER BY 1;

SELECT fdwname, fdwhandler::regproc, fdwvalidator::regproc, fdwoptions
  FROM pg_foreign_data_wrapper WHERE fdwname = 'mooncake_fdw';

SELECT srvname, fdwname, srvoptions
  FROM pg_foreign_server s JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw
 WHERE fdwname = 'mooncake_fdw';

SELECT p.oid::regprocedure AS routine, p.prokind, p.prorettype::regtype AS returns
  FROM pg_proc p
 WHERE p.pronamespace = 'mooncake'::regnamespace
 ORDER BY p.oid::regprocedure::text;

-- sidecar_request is for superusers only, bgworker_status for everyone
CREATE ROLE regress_mooncake_user;
SELECT has_function_privilege('regress_mooncake_user',
         'mooncake.sidecar_request(json)', 'EXECUTE') AS sidecar_request,
       has_function_privilege('regress_mooncake_user',
         'mooncake.bgworker_status()', 'EXECUTE') AS bgworker_status;
DROP ROLE regress_mooncake_user;

-- the status has the same keys whether a sidecar runs or not
SELECT json_object_keys(mooncake.bgworker_status());

\set VERBOSITY terse

-- server options: host and port, together, port in 1..65535
ALTER SERVER mooncake OPTIONS (ADD foo 'bar');
ALTER SERVER mooncake OPTIONS (ADD host 'localhost', port '0');
ALTER SERVER mooncake OPTIONS (ADD host 'localhost', port '65536');
ALTER SERVER mooncake OPTIONS (ADD host 'localhost', port '12ab');
ALTER SERVER mooncake OPTIONS (ADD host 'localhost');
ALTER SERVER mooncake OPTIONS (ADD host '', port '7433');
ALTER SERVER mooncake OPTIONS (ADD host 'localhost', port '7433');
SELECT srvoptions FROM pg_foreign_server WHERE srvname = 'mooncake';
ALTER SERVER mooncake OPTIONS (DROP host, DROP port);

-- no options for the wrapper and user mappings
ALTER FOREIGN DATA WRAPPER mooncake_fdw OPTIONS (ADD host 'localhost');
CREATE USER MAPPING FOR CURRENT_USER SERVER mooncake OPTIONS (user 'alice');

-- foreign table options: namespace and table
CREATE FOREIGN TABLE bad_option (id int) SERVER mooncake OPTIONS (schema 'lake');
CREATE FOREIGN TABLE events (id int, payload text)
  SERVER mooncake OPTIONS (namespace 'lake', "table" 'events');
ALTER FOREIGN TABLE events OPTIONS (SET "table" '');
ALTER FOREIGN TABLE events OPTIONS (ADD port '7433');
SELECT ftoptions FROM pg_foreign_table WHERE ftrelid = 'events'::regclass;

-- columnstore tables are read-only; ANALYZE skips them
INSERT INTO events VALUES (1, 'x');
ANALYZE events;
DROP FOREIGN TABLE events;

-- create_table checks its arguments before it contacts the sidecar
CREATE FUNCTION sqlstate_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN others THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
CREATE TABLE trades (id bigint PRIMARY KEY, symbol text NOT NULL);
CREATE VIEW trades_view AS SELECT * FROM trades;
SELECT sqlstate_of($$CALL mooncake.create_table('trades_iceberg', 'no_such_table')$$);
SELECT sqlstate_of($$CALL mooncake.create_table('trades_iceberg', 'trades_view')$$);
SELECT sqlstate_of($$CALL mooncake.create_table('trades', 'trades')$$);
SELECT sqlstate_of($$CALL mooncake.create_table('public.trades_view', 'trades')$$);
SELECT sqlstate_of($$CALL mooncake.create_table('a.b.c', 'trades')$$);
SELECT sqlstate_of($$CALL mooncake.create_table('no_such_schema.t', 'trades')$$);
-- tables whose changes are not in the WAL, a columnstore table, names
-- that need quotes, names no Iceberg table can have
CREATE TEMP TABLE trades_temp (id int PRIMARY KEY);
CREATE UNLOGGED TABLE trades_unlogged (id int PRIMARY KEY);
CREATE TABLE trades_cs (id int) USING columnstore;
SELECT sqlstate_of($$CALL mooncake.create_table('m1', 'trades_temp')$$);
SELECT sqlstate_of($$CALL mooncake.create_table('m2', 'trades_unlogged')$$);
SELECT sqlstate_of($$CALL mooncake.create_table('m3', 'trades_cs')$$);
SELECT sqlstate_of($$CALL mooncake.create_table('Mixed Mirror', 'trades')$$);
SELECT sqlstate_of($$CALL mooncake.create_table('m4', 'Mixed Case')$$);
CREATE SCHEMA "..";
SELECT sqlstate_of($$CALL mooncake.create_table('"..".m5', 'trades')$$);
DROP SCHEMA "..";
DROP TABLE trades_temp, trades_unlogged;
DROP TABLE trades_cs;
DROP FUNCTION sqlstate_of(text);
DROP VIEW trades_view;
DROP TABLE trades;

\set VERBOSITY default

DROP EXTENSION pg_mooncake;
SELECT count(*) FROM pg_namespace WHERE nspname = 'mooncake';

-- An extension's script makes heap tables whatever the session's
-- default_table_access_method (columnstore here, set while the extension
-- existed): CREATE EXTENSION works and its catalog tables are heap tables.
CREATE EXTENSION pg_mooncake;
SET default_table_access_method = columnstore;
DROP EXTENSION pg_mooncake;
CREATE EXTENSION pg_mooncake;
SELECT c.relname, c.relkind, a.amname FROM pg_class c LEFT JOIN pg_am a ON a.oid = c.relam
 WHERE c.relnamespace = 'mooncake'::regnamespace AND c.relkind IN ('r', 'f', 'p') ORDER BY 1;
-- A table of the session's own still takes the default.
CREATE TABLE by_default (a int);
SELECT relkind FROM pg_class WHERE relname = 'by_default';
DROP TABLE by_default;
RESET default_table_access_method;
DROP EXTENSION pg_mooncake;
