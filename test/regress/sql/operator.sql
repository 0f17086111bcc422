-- The operator's view: the progress of copies, orphan replication slots.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_mooncake;
RESET client_min_messages;
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

-- No copy under way; a small create_table prints no progress NOTICE.
SELECT * FROM mooncake.copy_progress;
CREATE TABLE src (id int PRIMARY KEY, v text);
INSERT INTO src SELECT g, 'v' || g FROM generate_series(1, 1000) g;
CALL mooncake.create_table('src_m', 'src');
CALL mooncake.resync_table('src_m');
SELECT count(*) FROM src_m;
SELECT count(*) FROM mooncake.copy_progress;
\d mooncake.copy_progress

-- The slot of the mirrors is not an orphan; a stray slot named like a
-- copy's is, until dropped; a slot of another name is not ours, nor is a
-- temporary one.
SELECT count(*) FROM mooncake.list_orphan_slots();
SELECT 'created' FROM pg_create_logical_replication_slot('mooncake_sync_0_regress', 'pgoutput');
SELECT 'created' FROM pg_create_logical_replication_slot('regress_not_ours', 'pgoutput');
SELECT 'created' FROM pg_create_logical_replication_slot('mooncake_sync_0_temporary', 'pgoutput', true);
SELECT slot_name, plugin, active_pid IS NULL AS inactive, retained_bytes >= 0 AS retains, reason
  FROM mooncake.list_orphan_slots();
SELECT * FROM mooncake.drop_orphan_slots();
SELECT count(*) FROM mooncake.list_orphan_slots();
SELECT slot_name FROM pg_replication_slots
 WHERE slot_name IN ('mooncake_sync_0_regress', 'regress_not_ours', 'mooncake_sync_0_temporary') ORDER BY 1;
SELECT pg_drop_replication_slot('regress_not_ours');
SELECT pg_drop_replication_slot('mooncake_sync_0_temporary');

-- Superusers only.
CREATE ROLE regress_operator_user;
GRANT USAGE ON SCHEMA mooncake TO regress_operator_user;
GRANT EXECUTE ON FUNCTION mooncake.list_orphan_slots() TO regress_operator_user;
SET ROLE regress_operator_user;
SELECT * FROM mooncake.list_orphan_slots();
SELECT * FROM mooncake.drop_orphan_slots();
SELECT count(*) FROM mooncake.copy_progress;
RESET ROLE;
DROP OWNED BY regress_operator_user;
DROP ROLE regress_operator_user;

DROP TABLE src CASCADE;
DROP FUNCTION wait_for;
