-- Joins of mirrors with heap tables and with each other.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_mooncake;
RESET client_min_messages;
\set VERBOSITY terse
CREATE OR REPLACE FUNCTION wait_for(q text, expected text) RETURNS text LANGUAGE plpgsql AS $$
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

CREATE TABLE orders(id int PRIMARY KEY, customer int, amount int);
CREATE TABLE customers(id int PRIMARY KEY, name text);
INSERT INTO orders SELECT x, x % 5, x * 10 FROM generate_series(1, 50) x;
INSERT INTO customers SELECT x, 'c' || x FROM generate_series(0, 3) x;
CALL mooncake.create_table('orders_m', 'orders');
ANALYZE customers;

-- a mirror joined with a heap table: each side scanned where it lives
EXPLAIN (VERBOSE, COSTS OFF) SELECT c.name, sum(o.amount) FROM orders_m o JOIN customers c ON c.id = o.customer WHERE o.amount > 100 GROUP BY c.name ORDER BY c.name;
SELECT c.name, sum(o.amount) FROM orders_m o JOIN customers c ON c.id = o.customer WHERE o.amount > 100 GROUP BY c.name ORDER BY c.name;
SELECT c.name, count(o.id) FROM customers c LEFT JOIN orders_m o ON c.id = o.customer AND o.amount > 400 GROUP BY c.name ORDER BY c.name;
-- a mirror joined with itself
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*) FROM orders_m a JOIN orders_m b ON a.customer = b.customer WHERE a.id < 5;
SELECT count(*) FROM orders_m a JOIN orders_m b ON a.customer = b.customer WHERE a.id < 5;

-- ANALYZE of a mirror samples it in DuckDB: the planner gets its statistics
ANALYZE orders_m;
SELECT attname, null_frac, n_distinct FROM pg_stats WHERE schemaname = 'public' AND tablename = 'orders_m' ORDER BY attname;
SELECT reltuples FROM pg_class WHERE oid = 'orders_m'::regclass;

-- a mirror on the inner side of a nested loop: the sidecar runs its scan
-- once, the rescans replay the rows kept
SET enable_hashjoin = off;
SET enable_mergejoin = off;
SET enable_material = off;
SET enable_memoize = off;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
CREATE TEMP TABLE scans_before AS SELECT (mooncake.sidecar_request('{"op":"status"}')->'queries'->>'completed')::int AS n;
EXPLAIN (COSTS OFF) SELECT c.name, count(*) FROM customers c JOIN orders_m o ON o.customer = c.id GROUP BY c.name ORDER BY c.name;
SELECT c.name, count(*) FROM customers c JOIN orders_m o ON o.customer = c.id GROUP BY c.name ORDER BY c.name;
SELECT (mooncake.sidecar_request('{"op":"status"}')->'queries'->>'completed')::int - n AS scans FROM scans_before;
RESET enable_hashjoin;
RESET enable_mergejoin;
RESET enable_material;
RESET enable_memoize;
RESET enable_indexscan;
RESET enable_bitmapscan;

-- joins of mirrors run in DuckDB
CALL mooncake.create_table('customers_m', 'customers');
SELECT wait_for($$SELECT count(*) FROM customers_m$$, '4');
-- inner: every condition in the WHERE clause
EXPLAIN (VERBOSE, COSTS OFF) SELECT o.id, c.name FROM orders_m o JOIN customers_m c ON c.id = o.customer WHERE o.amount > 400 AND c.name <> 'c2' ORDER BY o.id;
SELECT o.id, c.name FROM orders_m o JOIN customers_m c ON c.id = o.customer WHERE o.amount > 400 AND c.name <> 'c2' ORDER BY o.id;
-- left: the nullable side's conditions filter it before the join (ON)
EXPLAIN (VERBOSE, COSTS OFF) SELECT c.name, count(o.id), sum(o.amount) FROM customers_m c LEFT JOIN orders_m o ON c.id = o.customer AND o.amount > 400 GROUP BY c.name ORDER BY c.name;
SELECT c.name, count(o.id), sum(o.amount) FROM customers_m c LEFT JOIN orders_m o ON c.id = o.customer AND o.amount > 400 GROUP BY c.name ORDER BY c.name;
-- an anti join (a LEFT JOIN kept where the right side is NULL) that returns
-- a column of its right side runs here
EXPLAIN (VERBOSE, COSTS OFF) SELECT c.id, o.id FROM customers_m c LEFT JOIN orders_m o ON c.id = o.customer AND o.id < 8 WHERE o.id IS NULL ORDER BY c.id;
SELECT c.id, o.id FROM customers_m c LEFT JOIN orders_m o ON c.id = o.customer AND o.id < 8 WHERE o.id IS NULL ORDER BY c.id;
-- EXISTS and NOT EXISTS: semi and anti joins
EXPLAIN (VERBOSE, COSTS OFF) SELECT c.name FROM customers_m c WHERE EXISTS (SELECT 1 FROM orders_m o WHERE o.customer = c.id AND o.amount > 480) ORDER BY 1;
SELECT c.name FROM customers_m c WHERE EXISTS (SELECT 1 FROM orders_m o WHERE o.customer = c.id AND o.amount > 480) ORDER BY 1;
EXPLAIN (VERBOSE, COSTS OFF) SELECT c.name FROM customers_m c WHERE NOT EXISTS (SELECT 1 FROM orders_m o WHERE o.customer = c.id AND o.amount > 480) ORDER BY 1;
SELECT c.name FROM customers_m c WHERE NOT EXISTS (SELECT 1 FROM orders_m o WHERE o.customer = c.id AND o.amount > 480) ORDER BY 1;
-- right and full joins
EXPLAIN (VERBOSE, COSTS OFF) SELECT o.customer, c.name FROM orders_m o RIGHT JOIN customers_m c ON c.id = o.customer AND o.id > 48 ORDER BY c.name, o.customer;
SELECT o.customer, c.name FROM orders_m o RIGHT JOIN customers_m c ON c.id = o.customer AND o.id > 48 ORDER BY c.name, o.customer;
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*), count(o.id), count(c.id) FROM orders_m o FULL JOIN customers_m c ON c.id = o.customer;
SELECT count(*), count(o.id), count(c.id) FROM orders_m o FULL JOIN customers_m c ON c.id = o.customer;
-- three mirrors, with LIMIT
EXPLAIN (VERBOSE, COSTS OFF) SELECT a.id, b.id, c.name FROM orders_m a JOIN orders_m b ON b.id = a.id + 1 JOIN customers_m c ON c.id = b.customer ORDER BY a.id DESC LIMIT 3;
SELECT a.id, b.id, c.name FROM orders_m a JOIN orders_m b ON b.id = a.id + 1 JOIN customers_m c ON c.id = b.customer ORDER BY a.id DESC LIMIT 3;
-- a join condition DuckDB cannot evaluate identically: the join runs here
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*) FROM orders_m o JOIN customers_m c ON c.id = o.customer AND c.name ILIKE 'C1%';
SELECT count(*) FROM orders_m o JOIN customers_m c ON c.id = o.customer AND c.name ILIKE 'C1%';
-- a mirror, a mirror and a heap table
SELECT c.name, count(*) FROM orders_m o JOIN customers_m m ON m.id = o.customer JOIN customers c ON c.id = m.id GROUP BY c.name ORDER BY 1;
CALL mooncake.drop_table('customers_m');

CALL mooncake.drop_table('orders_m');
DROP TABLE orders, customers;
DROP FUNCTION wait_for;
