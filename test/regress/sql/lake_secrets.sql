-- Secrets of object stores: made, listed, replaced and dropped by
-- superusers only; bad input refused with its SQLSTATE. Reading s3://
-- paths against a real S3-compatible server is tested in
-- test/lake_s3_test.go.
CREATE EXTENSION pg_mooncake;
\set VERBOSITY terse

SELECT mooncake.create_secret('lake', 'S3', 'AKIAEXAMPLE', 'wJalrXUtnFEMI',
  '{"REGION": "eu-west-1", "scope": "s3://lake/"}');
SELECT mooncake.create_secret('minio', 's3', 'minio', 'minio123',
  '{"ENDPOINT": "127.0.0.1:9000", "URL_STYLE": "path", "USE_SSL": false}');
SELECT name, type, key_id, options FROM mooncake.secrets ORDER BY name;

-- bad input
SELECT mooncake.create_secret('lake', 'S3', 'k', 's');
SELECT mooncake.create_secret('gcs', 'GCS', 'k', 's');
SELECT mooncake.create_secret('', 'S3', 'k', 's');
SELECT mooncake.create_secret('x', 'S3', NULL, 's');
SELECT mooncake.create_secret('x', 'S3', 'k', 's', '["REGION"]');
SELECT mooncake.create_secret('x', 'S3', 'k', 's', '{"ENDPONT": "a"}');
SELECT mooncake.create_secret('x', 'S3', 'k', 's', '{"URL_STYLE": "virtual-ish"}');
SELECT mooncake.create_secret('x', 'S3', 'k', 's', '{"USE_SSL": "maybe"}');
SELECT mooncake.create_secret('x', 'S3', 'k', 's', '{"SCOPE": "gs://bucket"}');
SELECT mooncake.create_secret('x', 'S3', 'k', 's', '{"REGION": {"a": 1}}');
SELECT mooncake.drop_secret('nope');
SELECT count(*) FROM mooncake.secrets;

-- paths the readers refuse before reaching any store
SELECT * FROM mooncake.read_parquet('gs://lake/x.parquet') AS (id int);
SELECT * FROM mooncake.read_parquet('s3:///x.parquet') AS (id int);

-- superusers only
CREATE ROLE regress_lake_plain;
CREATE ROLE regress_lake_reader IN ROLE mooncake_user;
SET ROLE regress_lake_plain;
SELECT * FROM mooncake.secrets;
SELECT mooncake.create_secret('mine', 'S3', 'k', 's');
SELECT mooncake.drop_secret('lake');
SELECT * FROM mooncake.read_parquet('s3://lake/x.parquet') AS (id int);
CREATE FOREIGN TABLE pg_temp.remote_events (id int) SERVER mooncake OPTIONS (path 's3://lake/events.parquet', format 'parquet');
RESET ROLE;
SET ROLE regress_lake_reader;
SELECT * FROM mooncake.secrets;
-- members of mooncake_user may read s3:// paths, not the server's files
CREATE FOREIGN TABLE pg_temp.remote_events (id int) SERVER mooncake OPTIONS (path 's3://lake/events.parquet', format 'parquet');
CREATE FOREIGN TABLE pg_temp.local_events (id int) SERVER mooncake OPTIONS (path '/etc/passwd', format 'csv');
DROP FOREIGN TABLE pg_temp.remote_events;
RESET ROLE;

SELECT mooncake.drop_secret('minio');
SELECT name FROM mooncake.secrets;

DROP ROLE regress_lake_plain;
DROP ROLE regress_lake_reader;
-- Leave the database as the next test expects it: without the extension.
DROP EXTENSION pg_mooncake CASCADE;
