package bench

import (
	"strconv"
	"strings"
)

// The data of the analytics benchmark, generated in SQL with
// generate_series: deterministic, and fast enough for tens of millions of
// rows.
//
//   - sales: the manual's sales table, 6 columns (rows: MOONCAKE_BENCH_ROWS,
//     default 10,000,000), sale dates from 2022-01-01 to today;
//   - sales_wide: the same rows with 24 more columns (30 in all), among
//     them event_time and event_type for the manual's time-series query;
//   - rt_orders: the manual's orders table of "Real-time Analytics"
//     (a tenth of the sales rows), orders of the last 100 days;
//   - a TPC-H-like schema at scale MOONCAKE_BENCH_SCALE: region (5 rows),
//     nation (25), supplier (10,000 × scale), customer (150,000 × scale),
//     part (200,000 × scale), orders (1,500,000 × scale) and lineitem (1 to
//     7 lines per order, about 6,000,000 × scale).
//
// Every table has a primary key (mirrors need one). Money is numeric, as
// in the manual and TPC-H, so that sums and averages are exact on both
// sides and the heap's and the mirror's answers can be compared as text.

// benchTable is a source table and its mirror.
type benchTable struct {
	name   string // the heap table, also DuckDB's view over the Parquet files
	mirror string // the mirror (foreign table)
	ddl    string
	fill   []string // statements that fill it (see fillSQL)
	rows   func(n int64, scale float64) int64
}

func salesRows(n int64, _ float64) int64 { return n }

var benchSales = benchTable{
	name: "sales", mirror: "sales_columnstore",
	ddl: `CREATE TABLE sales (
		id bigint PRIMARY KEY,
		customer_id integer NOT NULL,
		region text NOT NULL,
		product_id integer NOT NULL,
		sale_date date NOT NULL,
		amount numeric(12,2) NOT NULL)`,
	fill: []string{`INSERT INTO sales SELECT g,
		1 + (g * 104729) % {customers},
		(ARRAY['North America', 'Europe', 'Asia', 'South America', 'Africa'])[1 + (g * 31) % 5],
		1 + (g * 7) % 5000,
		date '2022-01-01' + ((g * 13) % (current_date - date '2022-01-01' + 1))::int,
		round(1 + ((g * 7919) % 99900) / 100.0, 2)
	FROM generate_series(1, {rows}::bigint) g`},
	rows: salesRows,
}

var benchWide = benchTable{
	name: "sales_wide", mirror: "sales_wide_columnstore",
	ddl: `CREATE TABLE sales_wide (
		id bigint PRIMARY KEY, customer_id integer NOT NULL, region text NOT NULL, product_id integer NOT NULL,
		sale_date date NOT NULL, amount numeric(12,2) NOT NULL, event_time timestamp NOT NULL, event_type text NOT NULL,
		quantity integer, unit_price numeric(10,2), discount numeric(4,2), tax numeric(10,2), channel text,
		category text, store_id integer, employee_id integer, payment_method text, currency text, country text,
		city text, device text, browser text, referrer text, campaign text, coupon text, is_return boolean,
		shipping_cost numeric(8,2), weight real, notes text, created_at timestamptz)`,
	fill: []string{`INSERT INTO sales_wide SELECT g,
		1 + (g * 104729) % {customers},
		(ARRAY['North America', 'Europe', 'Asia', 'South America', 'Africa'])[1 + (g * 31) % 5],
		1 + (g * 7) % 5000,
		d,
		round(1 + ((g * 7919) % 99900) / 100.0, 2),
		d + ((g * 7) % 86400) * interval '1 second',
		(ARRAY['view', 'view', 'view', 'click', 'cart', 'purchase'])[1 + (g * 11) % 6],
		1 + (g % 10)::int,
		round(1 + ((g * 31) % 9990) / 10.0, 2),
		((g % 30) / 100.0)::numeric(4,2),
		round(((g * 17) % 10000) / 100.0, 2),
		(ARRAY['web', 'store', 'phone', 'partner'])[1 + g % 4],
		(ARRAY['books', 'toys', 'garden', 'electronics', 'food', 'clothes', 'sports', 'music'])[1 + (g * 3) % 8],
		1 + (g % 500)::int,
		1 + (g % 2000)::int,
		(ARRAY['card', 'cash', 'transfer', 'voucher'])[1 + (g * 5) % 4],
		(ARRAY['USD', 'EUR', 'JPY', 'BRL', 'ZAR'])[1 + (g * 31) % 5],
		'country ' || (g * 7) % 60,
		'city ' || (g * 11) % 900,
		(ARRAY['desktop', 'mobile', 'tablet'])[1 + g % 3],
		(ARRAY['firefox', 'chrome', 'safari', 'edge'])[1 + (g * 13) % 4],
		CASE WHEN g % 3 = 0 THEN NULL ELSE 'https://ref.example/' || (g % 1000) END,
		CASE WHEN g % 5 = 0 THEN NULL ELSE 'campaign ' || (g % 40) END,
		CASE WHEN g % 7 = 0 THEN 'COUPON' || (g % 100) END,
		g % 50 = 0,
		round(((g * 3) % 5000) / 100.0, 2),
		((g % 1000) / 10.0)::real,
		'note ' || md5(g::text),
		timestamptz '2022-01-01 00:00:00+00' + g * interval '13 seconds'
	FROM generate_series(1, {rows}::bigint) g,
		LATERAL (SELECT date '2022-01-01' + ((g * 13) % (current_date - date '2022-01-01' + 1))::int AS d) x`},
	rows: salesRows,
}

// The manual's DDL, with its SERIAL key filled explicitly.
var benchOrders = benchTable{
	name: "rt_orders", mirror: "rt_orders_analytics",
	ddl: `CREATE TABLE rt_orders (
		order_id SERIAL PRIMARY KEY,
		customer_id INTEGER NOT NULL,
		total_amount DECIMAL(10,2) NOT NULL,
		order_date TIMESTAMP NOT NULL DEFAULT NOW())`,
	fill: []string{`INSERT INTO rt_orders SELECT g, 1 + (g * 104729) % {customers}, round(5 + ((g * 7919) % 49500) / 100.0, 2),
		current_date - (g % 100)::int + ((g * 7) % 86400) * interval '1 second'
	FROM generate_series(1, {rows}::bigint / 10) g`},
	rows: func(n int64, _ float64) int64 { return n / 10 },
}

// tpch returns the TPC-H-like tables at scale sf; comments and names are
// short generated strings, the value distributions roughly TPC-H's.
func tpchTables() []benchTable {
	sc := func(base int64) func(int64, float64) int64 {
		return func(_ int64, sf float64) int64 { return max(1, int64(float64(base)*sf)) }
	}
	return []benchTable{
		{name: "region", mirror: "region_m",
			ddl:  `CREATE TABLE region (r_regionkey integer PRIMARY KEY, r_name text NOT NULL, r_comment text)`,
			fill: []string{`INSERT INTO region SELECT i - 1, n, 'region ' || n FROM unnest(ARRAY['AFRICA', 'AMERICA', 'ASIA', 'EUROPE', 'MIDDLE EAST']) WITH ORDINALITY AS t(n, i)`},
			rows: func(int64, float64) int64 { return 5 }},
		{name: "nation", mirror: "nation_m",
			ddl: `CREATE TABLE nation (n_nationkey integer PRIMARY KEY, n_name text NOT NULL, n_regionkey integer NOT NULL, n_comment text)`,
			fill: []string{`INSERT INTO nation SELECT i - 1, n, r, 'nation ' || n FROM unnest(
				ARRAY['ALGERIA', 'ARGENTINA', 'BRAZIL', 'CANADA', 'EGYPT', 'ETHIOPIA', 'FRANCE', 'GERMANY', 'INDIA', 'INDONESIA',
					'IRAN', 'IRAQ', 'JAPAN', 'JORDAN', 'KENYA', 'MOROCCO', 'MOZAMBIQUE', 'PERU', 'CHINA', 'ROMANIA',
					'SAUDI ARABIA', 'VIETNAM', 'RUSSIA', 'UNITED KINGDOM', 'UNITED STATES'],
				ARRAY[0, 1, 1, 1, 4, 0, 3, 3, 2, 2, 4, 4, 2, 4, 0, 0, 0, 1, 2, 3, 4, 2, 3, 3, 1]) WITH ORDINALITY AS t(n, r, i)`},
			rows: func(int64, float64) int64 { return 25 }},
		{name: "supplier", mirror: "supplier_m",
			ddl: `CREATE TABLE supplier (s_suppkey integer PRIMARY KEY, s_name text NOT NULL, s_address text, s_nationkey integer NOT NULL,
				s_phone text, s_acctbal numeric(15,2), s_comment text)`,
			fill: []string{`INSERT INTO supplier SELECT g, 'Supplier#' || lpad(g::text, 9, '0'), md5(g::text), (g * 7) % 25,
				'phone-' || g, round(-999.99 + ((g * 7919) % 1099998) / 100.0, 2), 'supplier comment ' || g % 1000
				FROM generate_series(1, {suppliers}::bigint) g`},
			rows: sc(10000)},
		{name: "customer", mirror: "customer_m",
			ddl: `CREATE TABLE customer (c_custkey integer PRIMARY KEY, c_name text NOT NULL, c_address text, c_nationkey integer NOT NULL,
				c_phone text, c_acctbal numeric(15,2), c_mktsegment text, c_comment text)`,
			fill: []string{`INSERT INTO customer SELECT g, 'Customer#' || lpad(g::text, 9, '0'), md5(g::text), (g * 13) % 25,
				'phone-' || g, round(-999.99 + ((g * 7907) % 1099998) / 100.0, 2),
				(ARRAY['AUTOMOBILE', 'BUILDING', 'FURNITURE', 'HOUSEHOLD', 'MACHINERY'])[1 + (g * 3) % 5], 'customer comment ' || g % 1000
				FROM generate_series(1, {tcustomers}::bigint) g`},
			rows: sc(150000)},
		{name: "part", mirror: "part_m",
			ddl: `CREATE TABLE part (p_partkey integer PRIMARY KEY, p_name text, p_mfgr text, p_brand text, p_type text, p_size integer,
				p_container text, p_retailprice numeric(15,2), p_comment text)`,
			fill: []string{`INSERT INTO part SELECT g, 'part ' || md5(g::text), 'Manufacturer#' || 1 + g % 5, 'Brand#' || 1 + g % 5 || 1 + (g / 5) % 5,
				(ARRAY['STANDARD', 'SMALL', 'MEDIUM', 'LARGE', 'ECONOMY', 'PROMO'])[1 + g % 6] || ' BRUSHED TIN', 1 + g % 50,
				(ARRAY['SM BOX', 'LG CASE', 'MED BAG', 'JUMBO PKG', 'WRAP DRUM'])[1 + g % 5], round(900 + (g % 20001) / 100.0, 2), 'part comment'
				FROM generate_series(1, {parts}::bigint) g`},
			rows: sc(200000)},
		{name: "orders", mirror: "orders_m",
			ddl: `CREATE TABLE orders (o_orderkey bigint PRIMARY KEY, o_custkey integer NOT NULL, o_orderstatus text, o_totalprice numeric(15,2),
				o_orderdate date NOT NULL, o_orderpriority text, o_clerk text, o_shippriority integer, o_comment text)`,
			fill: []string{`INSERT INTO orders SELECT o, 1 + (o * 104729) % {tcustomers}, (ARRAY['O', 'F', 'P'])[1 + o % 3],
				round(1000 + ((o * 7919) % 50000000) / 100.0, 2), date '1992-01-01' + ((o * 17) % 2405)::int,
				(ARRAY['1-URGENT', '2-HIGH', '3-MEDIUM', '4-NOT SPECIFIED', '5-LOW'])[1 + o % 5], 'Clerk#' || lpad((o % 1000)::text, 9, '0'),
				0, 'order comment ' || o % 997
				FROM generate_series(1, {orders}::bigint) o`},
			rows: sc(1500000)},
		{name: "lineitem", mirror: "lineitem_m",
			ddl: `CREATE TABLE lineitem (l_orderkey bigint NOT NULL, l_linenumber integer NOT NULL, l_partkey integer NOT NULL,
				l_suppkey integer NOT NULL, l_quantity numeric(15,2), l_extendedprice numeric(15,2), l_discount numeric(15,2),
				l_tax numeric(15,2), l_returnflag text, l_linestatus text, l_shipdate date, l_commitdate date, l_receiptdate date,
				l_shipinstruct text, l_shipmode text, l_comment text, PRIMARY KEY (l_orderkey, l_linenumber))`,
			fill: []string{`INSERT INTO lineitem SELECT o, l, p, 1 + (p + l * 2503) % {suppliers}, q, round(q * (900 + (p % 20001) / 100.0), 2),
				((o + l) % 11) / 100.0, ((o * 3 + l) % 9) / 100.0,
				CASE WHEN ship + 15 <= date '1995-06-17' THEN (ARRAY['R', 'A'])[1 + (o + l) % 2] ELSE 'N' END,
				CASE WHEN ship > date '1995-06-17' THEN 'O' ELSE 'F' END,
				ship, ship + 30, ship + 15,
				(ARRAY['DELIVER IN PERSON', 'COLLECT COD', 'NONE', 'TAKE BACK RETURN'])[1 + (o + l) % 4],
				(ARRAY['AIR', 'FOB', 'MAIL', 'RAIL', 'REG AIR', 'SHIP', 'TRUCK'])[1 + (o * l) % 7],
				'line comment ' || (o + l) % 991
				FROM generate_series(1, {orders}::bigint) o,
					LATERAL generate_series(1, 1 + ((o * 7919) % 7)::int) l,
					LATERAL (SELECT (1 + (o * 31 + l * 17) % {parts})::int AS p, (1 + (o + l * 7) % 50)::numeric AS q,
						date '1992-01-01' + ((o * 17) % 2405)::int + 1 + ((o + l * 29) % 121)::int AS ship) x`},
			rows: func(_ int64, sf float64) int64 { return int64(4 * 1500000 * sf) }},
	}
}

// fillSQL fills in a table's fill statement: {rows} rows of sales,
// {customers} customers of sales, {suppliers} suppliers, {parts} parts,
// {tcustomers} customers and {orders} orders of TPC-H.
func fillSQL(stmt string, n int64, sf float64) string {
	sc := func(base int64) string { return strconv.FormatInt(max(1, int64(float64(base)*sf)), 10) }
	return strings.NewReplacer("{rows}", strconv.FormatInt(n, 10), "{customers}", strconv.FormatInt(max(1, n/100), 10),
		"{suppliers}", sc(10000), "{parts}", sc(200000), "{tcustomers}", sc(150000), "{orders}", sc(1500000)).Replace(stmt)
}
