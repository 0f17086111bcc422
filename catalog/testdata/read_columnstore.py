#!/usr/bin/env python3
"""Read a columnstore table's metadata file with pyiceberg and print its rows.

Usage: read_columnstore.py METADATA_JSON

Loads the table with StaticTable.from_metadata (no catalog), scans it to
Arrow and prints one JSON list per row, sorted by the first column, each
value as PostgreSQL prints it (DateStyle ISO, TimeZone UTC,
extra_float_digits 1) or null.
"""

import datetime
import json
import math
import sys
import uuid

from pyiceberg.table import StaticTable


def pg_text(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return repr(v).removesuffix(".0")
    if isinstance(v, datetime.datetime):
        s = v.strftime("%Y-%m-%d %H:%M:%S")
        if v.microsecond:
            s += (".%06d" % v.microsecond).rstrip("0")
        if v.tzinfo is not None:
            s += "+00"
        return s
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, bytes) and len(v) == 16:
        return str(uuid.UUID(bytes=v))
    return str(v)


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    tbl = StaticTable.from_metadata(sys.argv[1])
    rows = tbl.scan().to_arrow().to_pylist()
    first = tbl.schema().fields[0].name
    rows.sort(key=lambda r: r[first])
    for r in rows:
        print(json.dumps([pg_text(v) for v in r.values()], ensure_ascii=False))


main()
