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
SELECT count(*) FROM orders_m a JOIN orders_m b ON a.customer = b.customer WHERE a.id < 5;

CALL mooncake.drop_table('orders_m');
DROP TABLE orders, customers;
DROP FUNCTION wait_for;
