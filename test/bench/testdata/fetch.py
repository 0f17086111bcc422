#!/usr/bin/env python3
"""Time fetching a query's whole result from Python; print one JSON object.

Usage:
  fetch.py adbc    URI      QUERY RUNS   (URI: grpc://host:port; role postgres)
  fetch.py psycopg CONNINFO QUERY RUNS   (CONNINFO: a libpq connection string)

adbc: ADBC's Flight SQL driver (adbc_driver_flightsql.dbapi), one
connection; each run is cursor.execute(QUERY) then
cursor.fetch_arrow_table().

psycopg: psycopg2, one connection; each run is a server-side (named)
cursor, execute(QUERY), then fetchmany(100000) until the result is
exhausted, every row converted to Python objects as fetchall() would.

Each run is timed from execute() to the last row. The first run is a
warm-up and is not timed. The output:

  {"client": ..., "runs": [seconds, ...], "rows": N, "nbytes": N,
   "batches": N, "id_sum": N, "chunk": N}

rows is the last run's row count, id_sum the sum of the first column (of
the last run for adbc, of the warm-up for psycopg; the caller checks both), nbytes the Arrow table's size (adbc only), batches
its number of record batches (adbc only), chunk the fetchmany size
(psycopg only).
"""

import json
import sys
import time

PSYCOPG_CHUNK = 100_000


def run_adbc(uri, query, runs):
    import adbc_driver_flightsql
    import adbc_driver_flightsql.dbapi as flightsql
    import pyarrow.compute as pc

    conn = flightsql.connect(uri, db_kwargs={"username": "postgres", "password": ""})
    times = []
    table = None
    try:
        for i in range(runs + 1):
            table = None  # release the previous result before the next run
            cur = conn.cursor()
            start = time.perf_counter()
            cur.execute(query)
            table = cur.fetch_arrow_table()
            elapsed = time.perf_counter() - start
            cur.close()
            if i > 0:
                times.append(elapsed)
        batches = sum(c.num_chunks for c in table.columns[:1])
        return {
            "client": f"adbc_driver_flightsql {adbc_driver_flightsql.__version__}",
            "runs": times,
            "rows": table.num_rows,
            "nbytes": table.nbytes,
            "batches": batches,
            "id_sum": int(pc.sum(table.column(0)).as_py() or 0),
        }
    finally:
        conn.close()


def run_psycopg(conninfo, query, runs):
    import psycopg2

    conn = psycopg2.connect(conninfo)
    times = []
    rows = 0
    id_sum = 0
    try:
        for i in range(runs + 1):
            cur = conn.cursor(name=f"bench_{i}")
            cur.itersize = PSYCOPG_CHUNK
            start = time.perf_counter()
            cur.execute(query)
            rows = 0
            while True:
                chunk = cur.fetchmany(PSYCOPG_CHUNK)
                if not chunk:
                    break
                rows += len(chunk)
                if i == 0:  # the check, outside the timed runs
                    id_sum += sum(r[0] for r in chunk)
            elapsed = time.perf_counter() - start
            cur.close()
            conn.commit()
            if i > 0:
                times.append(elapsed)
        return {
            "client": f"psycopg2 {psycopg2.__version__.split()[0]}",
            "runs": times,
            "rows": rows,
            "id_sum": id_sum,
            "chunk": PSYCOPG_CHUNK,
        }
    finally:
        conn.close()


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in ("adbc", "psycopg"):
        sys.exit(__doc__)
    mode, target, query, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    if mode == "adbc":
        out = run_adbc(target, query, runs)
    else:
        out = run_psycopg(target, query, runs)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
