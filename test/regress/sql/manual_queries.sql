-- The manual's analytical queries ("Aggregation", "Filtering Large
-- Datasets", "Time-series Analysis" under "Querying Columnstore Tables",
-- and the orders example under "Real-time Analytics"), run unchanged on
-- mirrors of small deterministic tables. Only results are shown: the plans
-- change as more of each query is pushed down to DuckDB. Rows that must
-- pass the manual's filters relative to CURRENT_DATE are dated in 2099, so
-- the expected output does not depend on the day of the run.
CREATE EXTENSION pg_mooncake;
\set VERBOSITY terse

-- Wait (up to 10 s) until a query returns the expected value.
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

-- Sales from November 2022 to March 2024, and some in 2099.
CREATE TABLE sales (
  id bigint PRIMARY KEY,
  customer_id integer NOT NULL,
  region text NOT NULL,
  sale_date date NOT NULL,
  amount numeric(12,2) NOT NULL
);
INSERT INTO sales SELECT g, 1 + g % 7, (ARRAY['north', 'south', 'east', 'west'])[1 + g % 4],
  date '2022-11-01' + (g * 5) % 500, ((g * 37) % 1000) / 4.0
FROM generate_series(1, 200) g;
CALL mooncake.create_table('sales_columnstore', 'sales');
-- These reach the mirror through replication.
INSERT INTO sales SELECT 1000 + g, 1 + g % 7, 'north', date '2099-01-01' + g, 2000 + g * 1000.25
FROM generate_series(1, 20) g;

-- Aggregation, as the manual writes it: without its GROUP BY, PostgreSQL
-- refuses it, on the mirror as on any table.
SELECT 
  region,
  date_trunc('quarter', sale_date) AS quarter,
  SUM(amount) AS total_sales,
  COUNT(*) AS num_transactions,
  AVG(amount) AS avg_sale
FROM sales_columnstore
WHERE sale_date BETWEEN '2023-01-01' AND '2023-12-31';

-- With the GROUP BY it needs (and an ORDER BY, for a stable output).
SELECT 
  region,
  date_trunc('quarter', sale_date) AS quarter,
  SUM(amount) AS total_sales,
  COUNT(*) AS num_transactions,
  AVG(amount) AS avg_sale
FROM sales_columnstore
WHERE sale_date BETWEEN '2023-01-01' AND '2023-12-31'
GROUP BY region, quarter
ORDER BY region, quarter;

-- Filtering Large Datasets.
SELECT 
  customer_id,
  SUM(amount) AS total_spent
FROM sales_columnstore
WHERE sale_date >= CURRENT_DATE - INTERVAL '1 year'
GROUP BY customer_id
HAVING SUM(amount) > 10000
ORDER BY total_spent DESC;

-- Time-series Analysis: events in 2099 count, those of 2020 do not.
CREATE TABLE events (
  id bigint PRIMARY KEY,
  event_time timestamp NOT NULL,
  event_type text NOT NULL
);
INSERT INTO events SELECT g, timestamp '2099-06-01 00:00' + g * interval '97 minutes',
  (ARRAY['purchase', 'view', 'click', 'view'])[1 + g % 4]
FROM generate_series(1, 100) g;
INSERT INTO events SELECT 1000 + g, timestamp '2020-06-01 00:00' + g * interval '1 hour', 'purchase'
FROM generate_series(1, 50) g;
CALL mooncake.create_table('events_columnstore', 'events');

SELECT 
  date_trunc('day', event_time) AS day,
  COUNT(*) AS num_events,
  SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS purchases
FROM events_columnstore
WHERE event_time >= CURRENT_DATE - INTERVAL '30 days'
GROUP BY day
ORDER BY day;

-- Real-time Analytics: the orders example, statement for statement.
CREATE TABLE orders (
    order_id SERIAL PRIMARY KEY,
    customer_id INTEGER NOT NULL,
    total_amount DECIMAL(10,2) NOT NULL,
    order_date TIMESTAMP NOT NULL DEFAULT NOW()
);

CALL mooncake.create_table('orders_analytics', 'orders');

INSERT INTO orders (customer_id, total_amount) VALUES (123, 99.99);
UPDATE orders SET total_amount = 149.99 WHERE order_id = 1;

SELECT customer_id, SUM(total_amount) 
FROM orders_analytics 
WHERE order_date >= CURRENT_DATE
GROUP BY customer_id;

-- Orders of the past do not count; one far ahead does.
INSERT INTO orders (customer_id, total_amount, order_date) VALUES
  (123, 10.00, '2020-01-01'), (456, 20.00, '2021-06-30 23:59:59'), (123, 0.01, '2099-12-31');
SELECT customer_id, SUM(total_amount) 
FROM orders_analytics 
WHERE order_date >= CURRENT_DATE
GROUP BY customer_id;

-- The mirrors hold what their sources hold.
SELECT (SELECT count(*) FROM sales_columnstore) AS sales,
  (SELECT count(*) FROM events_columnstore) AS events,
  (SELECT count(*) FROM orders_analytics) AS orders;

CALL mooncake.drop_table('sales_columnstore');
CALL mooncake.drop_table('events_columnstore');
CALL mooncake.drop_table('orders_analytics');
DROP TABLE sales, events, orders;
DROP FUNCTION wait_for;
-- Leave the database as the next test expects it: without the extension.
DROP EXTENSION pg_mooncake;
