#!/usr/bin/env python3
"""Query pg_mooncake's Flight SQL service with real Python clients.

Usage: flight_clients.py HOST:PORT ROLE PASSWORD

Runs ADBC's Flight SQL driver (through its DB-API, into Arrow, pandas and
polars) and pyarrow.flight against the service, as ROLE, on the tables
that flight_python_test.go creates, and prints one JSON object per line:
{"check": NAME, ...}. A query's answer is {"columns": [...], "rows":
[[...], ...]}, every value in a canonical text form that the Go test also
produces from PostgreSQL:

  integers, decimals  decimal text ("-98.75" keeps the scale)
  real, double        the IEEE 754 bits, big-endian, in hex
  boolean             "true" or "false"
  date                ISO ("2024-01-05")
  timestamp(tz)       microseconds since 1970-01-01 00:00 UTC
  uuid                lower-case hex with dashes
  text, json(b)       as they are
  int[]               PostgreSQL's array text ("{1,-1,NULL}")
  NULL                null (so is a float NaN: pandas' NULL)

A failing call prints {"check": NAME, "error": MESSAGE} instead; the Go
test decides which checks must fail for which role.
"""

import datetime
import decimal
import json
import math
import struct
import sys
import traceback
import uuid

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_manager
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.flight as flight

TABLE = "py_types_m"
ALL_ROWS = f"SELECT * FROM {TABLE} ORDER BY id"
ONE_ROW = f"SELECT * FROM {TABLE} WHERE id = $1"
AGGREGATES = (
    f"SELECT count(*) AS n, sum(amount) AS total, sum(big) AS big_sum, min(at) AS first_at, "
    f"max(day) AS last_day, count(DISTINCT uid) AS uids, avg(ratio) AS mean FROM {TABLE}"
)
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
MICROSECOND = datetime.timedelta(microseconds=1)


def is_null(v):
    if v is None or v is pd.NaT:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return False


def canonical(v, t):
    """v (from pyarrow, pandas or polars) of Arrow type t, as canonical text."""
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        if is_null(v):
            return None
        elems = [canonical(e, t.value_type) for e in list(v)]
        return "{" + ",".join("NULL" if e is None else e for e in elems) + "}"
    if is_null(v):
        return None
    if isinstance(t, pa.BaseExtensionType):
        if t.extension_name == "arrow.uuid":
            if isinstance(v, (bytes, bytearray)):
                v = uuid.UUID(bytes=bytes(v))
            return str(uuid.UUID(str(v)))
        if t.extension_name == "arrow.json":
            return v if isinstance(v, str) else json.dumps(v)
        t = t.storage_type
    if pa.types.is_boolean(t):
        return "true" if v else "false"
    if pa.types.is_integer(t):
        return str(int(v))  # pandas holds an integer column with NULLs as floats
    if pa.types.is_decimal(t):
        return format(decimal.Decimal(v), "f")
    if pa.types.is_float32(t):
        return struct.pack(">f", float(v)).hex()
    if pa.types.is_float64(t):
        return struct.pack(">d", float(v)).hex()
    if pa.types.is_date(t):
        if isinstance(v, datetime.datetime):
            v = v.date()
        return v.isoformat()
    if pa.types.is_timestamp(t):
        if v.tzinfo is None:
            v = v.replace(tzinfo=datetime.timezone.utc)
        return str((v - EPOCH) // MICROSECOND)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return str(v)
    raise TypeError(f"no canonical form for Arrow type {t}")


def table_rows(table):
    """A pyarrow Table as columns and canonical rows."""
    types = [f.type for f in table.schema]
    cols = [table.column(i).to_pylist() for i in range(table.num_columns)]
    rows = [[canonical(c[i], types[j]) for j, c in enumerate(cols)] for i in range(table.num_rows)]
    return {"columns": table.column_names, "types": [str(t) for t in types], "rows": rows}


def pandas_rows(df, schema):
    """A pandas DataFrame of an Arrow schema as columns and canonical rows."""
    types = [f.type for f in schema]
    rows = []
    for rec in df.itertuples(index=False, name=None):
        rows.append([canonical(v, types[j]) for j, v in enumerate(rec)])
    return {"columns": [str(c) for c in df.columns], "dtypes": [str(d) for d in df.dtypes], "rows": rows}


def polars_rows(df, schema):
    """A polars DataFrame of an Arrow schema as columns and canonical rows."""
    types = [f.type for f in schema]
    rows = [[canonical(v, types[j]) for j, v in enumerate(rec)] for rec in df.rows()]
    return {"columns": df.columns, "dtypes": [str(d) for d in df.dtypes], "rows": rows}


def emit(check, **fields):
    sys.stdout.write(json.dumps({"check": check, **fields}, default=str) + "\n")
    sys.stdout.flush()


def run(check, fn):
    """Runs fn and prints its answer (a dict) or its error."""
    try:
        emit(check, **fn())
    except Exception as e:  # noqa: BLE001 - the Go test judges the message
        sys.stderr.write(f"{check}:\n{traceback.format_exc()}\n")
        emit(check, error=f"{type(e).__name__}: {e}")


def adbc_connect(addr, role, password, database=None):
    db_kwargs = {
        adbc_driver_manager.DatabaseOptions.USERNAME.value: role,
        adbc_driver_manager.DatabaseOptions.PASSWORD.value: password,
    }
    if database is not None:
        # Sent as the "database" gRPC header with every call.
        db_kwargs[adbc_driver_flightsql.DatabaseOptions.RPC_CALL_HEADER_PREFIX.value + "database"] = database
    # The service has no transactions: each statement commits.
    return flightsql.connect("grpc://" + addr, db_kwargs=db_kwargs, autocommit=True)


def adbc_checks(addr, role, password):
    with adbc_connect(addr, role, password) as conn, conn.cursor() as cur:

        def arrow_table():
            cur.execute(ALL_ROWS)
            return table_rows(cur.fetch_arrow_table())

        def pandas_df():
            cur.execute(ALL_ROWS)
            schema = pa.schema([(d[0], d[1]) for d in cur.description])
            return pandas_rows(cur.fetch_df(), schema)

        def polars_df():
            cur.execute(ALL_ROWS)
            table = cur.fetch_arrow_table()
            return polars_rows(pl.from_arrow(table), table.schema)

        def one_param():
            cur.execute(ONE_ROW, parameters=(5,))
            return table_rows(cur.fetch_arrow_table())

        def prepared_reused():
            # The same text on the same cursor: ADBC prepares it once and
            # binds each set of parameters to that prepared statement.
            tables = []
            for key in (3, 7, 11, 0, 299):
                cur.execute(ONE_ROW, parameters=(key,))
                tables.append(cur.fetch_arrow_table())
            return table_rows(pa.concat_tables(tables))

        def typed_params():
            # A date, a bool, a decimal and a NULL (an Arrow null column).
            cur.execute(
                f"SELECT count(*) AS n FROM {TABLE} WHERE day >= $1 AND ok = $2 AND amount > $3 AND $4::text IS NULL",
                parameters=(datetime.date(2024, 3, 1), True, decimal.Decimal("0.5"), None),
            )
            return table_rows(cur.fetch_arrow_table())

        def null_param():
            cur.execute(f"SELECT count(*) AS n FROM {TABLE} WHERE big IS NOT DISTINCT FROM $1", parameters=(None,))
            return table_rows(cur.fetch_arrow_table())

        def update():
            cur.execute("UPDATE py_counter SET n = n + 1 WHERE id <= 3")
            return {"rowcount": cur.rowcount}

        def executemany():
            cur.executemany("UPDATE py_counter SET n = n + $1 WHERE id = $2", [(10, 4), (100, 5)])
            return {"rowcount": cur.rowcount}

        def unknown_column():
            cur.execute(f"SELECT nope FROM {TABLE}")
            return table_rows(cur.fetch_arrow_table())

        def hidden():
            cur.execute("SELECT * FROM py_hidden_m ORDER BY id")
            return table_rows(cur.fetch_arrow_table())

        run("adbc_arrow", arrow_table)
        run("adbc_pandas", pandas_df)
        run("adbc_polars", polars_df)
        run("adbc_param", one_param)
        run("adbc_prepared", prepared_reused)
        run("adbc_typed_params", typed_params)
        run("adbc_null_param", null_param)
        run("adbc_update", update)
        run("adbc_executemany", executemany)
        run("adbc_unknown_column", unknown_column)
        run("adbc_hidden", hidden)

        def info():
            i = conn.adbc_get_info()
            return {k: i.get(k) for k in ("vendor_name", "vendor_version", "driver_name")}

        def table_types():
            return {"types": sorted(conn.adbc_get_table_types())}

        def table_schema():
            s = conn.adbc_get_table_schema(TABLE, db_schema_filter="public")
            return {"columns": s.names, "types": [str(f.type) for f in s]}

        def objects():
            tables = []
            for cat in conn.adbc_get_objects(depth="all", db_schema_filter="public").read_all().to_pylist():
                for sch in cat["catalog_db_schemas"] or []:
                    for tab in sch["db_schema_tables"] or []:
                        cols = [c["column_name"] for c in tab["table_columns"] or []]
                        tables.append([cat["catalog_name"], sch["db_schema_name"], tab["table_name"], tab["table_type"], cols])
            return {"tables": sorted(tables)}

        run("adbc_info", info)
        run("adbc_table_types", table_types)
        run("adbc_table_schema", table_schema)
        run("adbc_objects", objects)

    def other_database():
        with adbc_connect(addr, role, password, database="py_other") as conn, conn.cursor() as cur:
            cur.execute("SELECT current_database() AS db, current_user AS role")
            return table_rows(cur.fetch_arrow_table())

    run("adbc_database", other_database)


def flight_checks(addr, role, password):
    client = flight.FlightClient("grpc://" + addr)
    token = client.authenticate_basic_token(role, password)  # ("authorization", "Bearer ...")
    options = flight.FlightCallOptions(headers=[token])

    def list_flights():
        found = []
        for info in client.list_flights(options=options):
            found.append([p.decode() for p in info.descriptor.path] + [len(info.schema)])
        return {"flights": sorted(found)}

    def by_path():
        info = client.get_flight_info(flight.FlightDescriptor.for_path("public", TABLE), options)
        table = client.do_get(info.endpoints[0].ticket, options).read_all()
        if not table.schema.equals(info.schema):
            raise AssertionError(f"DoGet's schema {table.schema} differs from GetFlightInfo's {info.schema}")
        return table_rows(table.sort_by("id"))

    def by_command():
        info = client.get_flight_info(flight.FlightDescriptor.for_command(AGGREGATES), options)
        table = client.do_get(info.endpoints[0].ticket, options).read_all()
        return pandas_rows(table.to_pandas(), table.schema)

    def hidden():
        info = client.get_flight_info(flight.FlightDescriptor.for_path("public", "py_hidden_m"), options)
        return table_rows(client.do_get(info.endpoints[0].ticket, options).read_all())

    def other_database():
        # The database is chosen when authenticating.
        c = flight.FlightClient("grpc://" + addr)
        hdr = flight.FlightCallOptions(headers=[(b"database", b"py_other")])
        opts = flight.FlightCallOptions(headers=[c.authenticate_basic_token(role, password, hdr)])
        cmd = flight.FlightDescriptor.for_command("SELECT current_database() AS db, current_user AS role")
        info = c.get_flight_info(cmd, opts)
        return table_rows(c.do_get(info.endpoints[0].ticket, opts).read_all())

    def wrong_password():
        flight.FlightClient("grpc://" + addr).authenticate_basic_token(role, password + "-wrong")
        return {"authenticated": True}

    run("flight_list", list_flights)
    run("flight_path", by_path)
    run("flight_command", by_command)
    run("flight_hidden", hidden)
    run("flight_database", other_database)
    run("flight_wrong_password", wrong_password)


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    addr, role, password = sys.argv[1:]
    adbc_checks(addr, role, password)
    flight_checks(addr, role, password)
    emit("done")


if __name__ == "__main__":
    main()
