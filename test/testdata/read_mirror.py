#!/usr/bin/env python3
"""Read a pg_mooncake mirror with pyiceberg and print its rows.

Usage: read_mirror.py CATALOG_URI IDENTIFIER KEY[,KEY...]

Loads IDENTIFIER ("<schema>.<mirror>") from pyiceberg's SqlCatalog named
"mooncake" at CATALOG_URI, scans it to Arrow (position deletes applied) and
prints the column names as one JSON list, then every row as one JSON list,
sorted by the KEY columns. Values are printed in a canonical text form
that the Go test also produces from PostgreSQL:

  integers, decimals   decimal text ("12.500" keeps the scale)
  real, double         the IEEE 754 bits, big-endian, in hex
  boolean              "true" or "false"
  date                 days since 1970-01-01
  timestamp(tz)        microseconds since 1970-01-01 00:00 UTC
  strings              as they are
  NULL                 null

With MOONCAKE_S3_ENDPOINT set (host:port of an S3-compatible server,
plain HTTP, path-style), files on s3:// are read there with the keys in
MOONCAKE_S3_KEY_ID and MOONCAKE_S3_SECRET.
"""

import json
import os
import struct
import sys

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog


def canonical(column):
    """Returns the column's values as canonical strings (None for NULL)."""
    t = column.type
    if pa.types.is_date32(t):
        values = column.cast(pa.int32()).to_pylist()
        return [None if v is None else str(v) for v in values]
    if pa.types.is_timestamp(t):
        if t.unit != "us":
            raise SystemExit(f"unexpected timestamp unit {t.unit}")
        values = column.cast(pa.int64()).to_pylist()
        return [None if v is None else str(v) for v in values]
    values = column.to_pylist()
    if pa.types.is_float32(t):
        return [None if v is None else struct.pack(">f", v).hex() for v in values]
    if pa.types.is_float64(t):
        return [None if v is None else struct.pack(">d", v).hex() for v in values]
    if pa.types.is_decimal(t):
        return [None if v is None else format(v, "f") for v in values]
    if pa.types.is_boolean(t):
        return [None if v is None else ("true" if v else "false") for v in values]
    if pa.types.is_integer(t):
        return [None if v is None else str(v) for v in values]
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return values
    raise SystemExit(f"unexpected Arrow type {t}")


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    uri, identifier, keys = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    props = {"uri": uri}
    endpoint = os.environ.get("MOONCAKE_S3_ENDPOINT")
    if endpoint:
        props.update({
            "s3.endpoint": "http://" + endpoint,
            "s3.access-key-id": os.environ.get("MOONCAKE_S3_KEY_ID", ""),
            "s3.secret-access-key": os.environ.get("MOONCAKE_S3_SECRET", ""),
            "s3.region": "us-east-1",
            "s3.force-virtual-addressing": "false",
        })
    catalog = SqlCatalog("mooncake", **props)
    table = catalog.load_table(identifier).scan().to_arrow()
    # Chunked columns from several files: one array each.
    table = table.combine_chunks()
    names = table.column_names
    native = {k: table.column(k).to_pylist() for k in keys}
    order = sorted(range(table.num_rows), key=lambda i: tuple(native[k][i] for k in keys))
    columns = [canonical(table.column(n)) for n in names]
    out = sys.stdout
    out.write(json.dumps(names) + "\n")
    for i in order:
        out.write(json.dumps([c[i] for c in columns]) + "\n")


if __name__ == "__main__":
    main()
