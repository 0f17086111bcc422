"""Canonical text of values, shared by the table scripts: the Go test
renders DuckDB's values the same way and compares row for row."""

import datetime
import decimal


def canon(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return format(v, ".17g")
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, str):
        return v
    if isinstance(v, (bytes, bytearray)):
        return "\\x" + bytes(v).hex()
    if isinstance(v, datetime.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return v.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {canon(v[k])}" for k in sorted(v)) + "}"
    if isinstance(v, list):
        if v and all(isinstance(e, tuple) and len(e) == 2 for e in v):  # a map
            entries = sorted(f"{canon(k)}={canon(x)}" for k, x in v)
            return "map{" + ", ".join(entries) + "}"
        return "[" + ", ".join(canon(e) for e in v) + "]"
    raise TypeError(f"no canonical form for {type(v)}: {v!r}")


def canon_rows(table):
    """Rows of a pyarrow table as lists of canonical strings, sorted."""
    cols = table.column_names
    rows = [[canon(r[c]) for c in cols] for r in table.to_pylist()]
    rows.sort()
    return cols, rows
