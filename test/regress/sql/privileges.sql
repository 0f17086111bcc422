-- Nobody gets around PostgreSQL's privileges through pg_mooncake: creating
-- a mirror needs owning the source (and role mooncake_user), a mirror
-- starts with the source's privileges, only its owner drops, resyncs or
-- optimizes it, it is read only through its own foreign table, and the
-- raw sidecar request is for superusers.
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

CREATE ROLE regress_mc_owner;
CREATE ROLE regress_mc_member;
CREATE ROLE regress_mc_other;
GRANT mooncake_user TO regress_mc_owner, regress_mc_member;
GRANT CREATE ON SCHEMA public TO regress_mc_owner, regress_mc_member, regress_mc_other;

-- A table the owner's role cannot read, owned by the superuser.
CREATE TABLE secret (id int PRIMARY KEY, v text);
INSERT INTO secret VALUES (1, 'classified');

SET ROLE regress_mc_owner;
CALL mooncake.create_table('secret_m', 'secret');
SELECT count(*) FROM pg_class WHERE relname = 'secret_m';

-- Its own table: the mirror is its, with the source's privileges: the
-- column grants to regress_mc_other carry over, nothing more.
CREATE TABLE mine (id int PRIMARY KEY, v text, hidden text);
INSERT INTO mine VALUES (1, 'a', 'h');
GRANT SELECT (id, v) ON mine TO regress_mc_other;
CALL mooncake.create_table('mine_m', 'mine');
SELECT * FROM mine_m;
SELECT relowner::regrole FROM pg_class WHERE relname = 'mine_m';
RESET ROLE;

SET ROLE regress_mc_other;
SELECT id, v FROM mine_m;
SELECT hidden FROM mine_m;
SELECT table_name FROM mooncake.columnstore_tables ORDER BY 1;
-- Not a member of mooncake_user, not the owner.
CALL mooncake.create_table('other_m', 'mine');
CREATE TABLE theirs (id int PRIMARY KEY);
CALL mooncake.create_table('theirs_m', 'theirs');
CALL mooncake.drop_table('mine_m');
CALL mooncake.resync_table('mine_m');
CALL mooncake.optimize_table('mine_m');
DROP FOREIGN TABLE mine_m;
SELECT mooncake.sidecar_request('{"op": "list"}');
RESET ROLE;

-- A member that does not own the mirror cannot read it through a foreign
-- table of its own naming the mirror's Iceberg table, nor attach one.
SET ROLE regress_mc_member;
SELECT * FROM mine_m;
CREATE FOREIGN TABLE sneaky (id int, v text, hidden text)
  SERVER mooncake OPTIONS (namespace 'public', "table" 'mine_m');
SELECT * FROM sneaky;
SELECT mooncake.attach_request('sneaky', 'mine');
SELECT table_name FROM mooncake.columnstore_tables ORDER BY 1;
DROP FOREIGN TABLE sneaky;
RESET ROLE;
SELECT * FROM mine_m;

-- Row-level security: refused unless the caller opts in.
SET ROLE regress_mc_owner;
CREATE TABLE rls_t (id int PRIMARY KEY, owner text);
ALTER TABLE rls_t ENABLE ROW LEVEL SECURITY;
CALL mooncake.create_table('rls_m', 'rls_t');
CALL mooncake.create_table('rls_m', 'rls_t', row_level_security => 'yes please');
CALL mooncake.create_table('rls_m', 'rls_t', row_level_security => 'ignore');
SELECT table_name FROM mooncake.columnstore_tables ORDER BY 1;

-- The owner drops, resyncs and optimizes its mirrors.
CALL mooncake.resync_table('mine_m');
CALL mooncake.optimize_table('mine_m');
CALL mooncake.drop_table('rls_m');
RESET ROLE;

-- The functions under the views show a role what the views show it.
SET ROLE regress_mc_other;
SELECT e ->> 'table_name' AS visible FROM json_array_elements(mooncake.list_request() -> 'tables') e ORDER BY 1;
SELECT json_array_length(mooncake.progress_request() -> 'copies') AS copies;
RESET ROLE;

-- A mirror goes only into a schema its creator may create in.
CREATE SCHEMA regress_mc_private;
SET ROLE regress_mc_member;
CREATE TABLE member_t (id int PRIMARY KEY);
SELECT mooncake.create_request('regress_mc_private', 'planted', 'member_t', NULL, false, NULL);
CALL mooncake.create_table('regress_mc_private.planted', 'member_t');
DROP TABLE member_t;
RESET ROLE;
DROP SCHEMA regress_mc_private;

-- Row-level security cannot be enabled on a mirrored table afterwards.
SET ROLE regress_mc_owner;
ALTER TABLE mine ENABLE ROW LEVEL SECURITY;
SELECT relrowsecurity FROM pg_class WHERE relname = 'mine';
RESET ROLE;

-- Operators of a schema other roles may create in never run in the
-- extension's routines: these would record that a superuser ran them.
SET ROLE regress_mc_other;
CREATE TABLE grabbed (op text);
GRANT INSERT ON grabbed TO PUBLIC;
CREATE FUNCTION grab_oid_regclass(oid, regclass) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    INSERT INTO public.grabbed VALUES ('oid = regclass');
  END IF;
  RETURN $1 = $2::oid;
END $$;
CREATE FUNCTION grab_oid_int(oid, integer) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    INSERT INTO public.grabbed VALUES ('oid = integer');
  END IF;
  RETURN $1 = $2::oid;
END $$;
CREATE FUNCTION grab_varchar(varchar, varchar) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    INSERT INTO public.grabbed VALUES ('varchar = varchar');
  END IF;
  RETURN $1::text = $2::text;
END $$;
CREATE FUNCTION grab_varchar_text(varchar, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    INSERT INTO public.grabbed VALUES ('varchar = text');
  END IF;
  RETURN $1::text = $2;
END $$;
CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = regclass, FUNCTION = grab_oid_regclass);
CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = integer, FUNCTION = grab_oid_int);
CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = grab_varchar);
CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = text, FUNCTION = grab_varchar_text);
RESET ROLE;
CREATE TABLE grab_src (id int PRIMARY KEY, v text);
GRANT SELECT ON grab_src TO PUBLIC;
CALL mooncake.create_table('grab_m', 'grab_src');
CALL mooncake.optimize_table('grab_m');
CALL mooncake.resync_table('grab_m');
CREATE TABLE grab_cs (id int, v varchar) USING columnstore;
INSERT INTO grab_cs VALUES (1, 'x');
UPDATE grab_cs SET v = 'y';
SELECT mooncake.remove_orphan_files('grab_cs');
CALL mooncake.optimize_table('grab_cs');
SELECT count(*) FROM mooncake.columnstore_tables WHERE table_name LIKE 'grab%';
CALL mooncake.drop_table('grab_m');
DROP TABLE grab_cs;
DROP TABLE grab_src;
SELECT op AS ran_as_superuser FROM grabbed;
DROP OPERATOR public.= (oid, regclass);
DROP OPERATOR public.= (oid, integer);
DROP OPERATOR public.= (varchar, varchar);
DROP OPERATOR public.= (varchar, text);
DROP TABLE grabbed;
DROP FUNCTION grab_oid_regclass, grab_oid_int, grab_varchar, grab_varchar_text;

-- Other foreign data wrappers' foreign tables are the roles' business:
-- a role drops its own as it would without pg_mooncake.
CREATE EXTENSION postgres_fdw;
CREATE SERVER regress_mc_elsewhere FOREIGN DATA WRAPPER postgres_fdw;
GRANT USAGE ON FOREIGN SERVER regress_mc_elsewhere TO regress_mc_other;
SET ROLE regress_mc_other;
CREATE FOREIGN TABLE far (a int) SERVER regress_mc_elsewhere;
ALTER FOREIGN TABLE far RENAME TO far_away;
DROP FOREIGN TABLE far_away;
ALTER TABLE theirs RENAME TO theirs_renamed;
DROP TABLE theirs_renamed;
RESET ROLE;
DROP SERVER regress_mc_elsewhere;
DROP EXTENSION postgres_fdw;

DROP TABLE mine CASCADE;
DROP TABLE rls_t, secret;
DROP FUNCTION wait_for;
DROP EXTENSION pg_mooncake CASCADE;
REVOKE CREATE ON SCHEMA public FROM regress_mc_owner, regress_mc_member, regress_mc_other;
DROP ROLE regress_mc_owner, regress_mc_member, regress_mc_other;
