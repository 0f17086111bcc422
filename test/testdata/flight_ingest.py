#!/usr/bin/env python3
"""Bulk ingest into pg_mooncake's Flight SQL service with ADBC.

Usage: flight_ingest.py HOST:PORT ROLE PASSWORD TABLE

cursor.adbc_ingest(TABLE, data, mode="create"), then mode="append" with
more rows, then mode="create" again (which must fail), reading the table
back each time with cursor.execute(...).fetch_arrow_table() and
fetch_df(). Prints one JSON object per line, {"check": NAME, "ok": bool,
...}; a failing check says why in "error". flight_ingest_test.go runs it.
"""

import datetime
import decimal
import json
import sys
import traceback

import adbc_driver_flightsql.dbapi as flightsql
import pandas as pd
import pyarrow as pa

ADDR, ROLE, PASSWORD, TABLE = sys.argv[1:5]

SCHEMA = pa.schema([
    ("id", pa.int64()),
    ("n", pa.int32()),
    ("ratio", pa.float64()),
    ("name", pa.string()),
    ("ok", pa.bool_()),
    ("at", pa.timestamp("us", tz="UTC")),
    ("day", pa.date32()),
    ("amount", pa.decimal128(10, 2)),
    ("blob", pa.binary()),
    ("nums", pa.list_(pa.int64())),
])

UTC = datetime.timezone.utc


def rows(first, count):
    out = {f.name: [] for f in SCHEMA}
    for i in range(first, first + count):
        null = i % 4 == 3
        out["id"].append(i)
        out["n"].append(None if null else i * 7 - 20)
        out["ratio"].append(None if null else i / 8)
        out["name"].append(None if null else f"name {i} ünï \"q\"")
        out["ok"].append(None if null else i % 2 == 0)
        out["at"].append(None if null else datetime.datetime(2024, 1, 1, tzinfo=UTC) + datetime.timedelta(hours=i, microseconds=i))
        out["day"].append(None if null else datetime.date(2023, 12, 30) + datetime.timedelta(days=i))
        out["amount"].append(None if null else decimal.Decimal(i * 125 - 1000).scaleb(-2))
        out["blob"].append(None if null else bytes([i % 256, 0, 255]))
        out["nums"].append(None if null else ([] if i % 5 == 0 else [i, -i, None]))
    return pa.Table.from_pydict(out, schema=SCHEMA)


def emit(check, **kw):
    print(json.dumps({"check": check, **kw}), flush=True)


def compare(check, cur, expected):
    """Read TABLE back and compare it with expected: Arrow and pandas."""
    cur.execute(f"SELECT * FROM {TABLE} ORDER BY id")
    got = cur.fetch_arrow_table()
    # the service's fields carry PostgreSQL's type in their metadata
    got = got.replace_schema_metadata(None)
    got = pa.Table.from_arrays(got.columns, schema=pa.schema([f.remove_metadata() for f in got.schema]))
    if not got.equals(expected):
        diffs = []
        if got.schema != expected.schema:
            diffs.append(f"schema {got.schema} != {expected.schema}")
        for name in expected.column_names:
            if name in got.column_names and not got[name].equals(expected[name]):
                diffs.append(f"column {name}: {got[name].to_pylist()[:6]} != {expected[name].to_pylist()[:6]}")
        emit(check + "_arrow", ok=False, error="; ".join(diffs) or "tables differ", rows=got.num_rows)
    else:
        emit(check + "_arrow", ok=True, rows=got.num_rows)
    # pandas: every column but the list one (arrays of arrays compare badly)
    cur.execute(f"SELECT * FROM {TABLE} ORDER BY id")
    df = cur.fetch_df().drop(columns=["nums"])
    want = expected.drop_columns(["nums"]).to_pandas()
    try:
        pd.testing.assert_frame_equal(df, want, check_dtype=True)
        emit(check + "_pandas", ok=True, rows=len(df))
    except AssertionError as e:
        emit(check + "_pandas", ok=False, error=str(e))


def main():
    conn = flightsql.connect(f"grpc://{ADDR}", db_kwargs={"username": ROLE, "password": PASSWORD})
    cur = conn.cursor()
    first, second = rows(0, 300), rows(300, 50)
    for check, fn in [
        ("create", lambda: (cur.adbc_ingest(TABLE, first, mode="create"), compare("create", cur, first))),
        ("append", lambda: (cur.adbc_ingest(TABLE, second, mode="append"),
                            compare("append", cur, pa.concat_tables([first, second])))),
    ]:
        try:
            n = fn()[0]
            emit(check, ok=True, rowcount=n)
        except Exception as e:  # noqa: BLE001 - report and go on
            emit(check, ok=False, error=f"{type(e).__name__}: {e}", trace=traceback.format_exc())
    try:
        cur.adbc_ingest(TABLE, second, mode="create")
        emit("create_again", ok=False, error="creating an existing table succeeded")
    except Exception as e:  # noqa: BLE001
        emit("create_again", ok="42P07" in str(e), error=str(e))
    conn.close()
    emit("done", ok=True)


if __name__ == "__main__":
    main()
