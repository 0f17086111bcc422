"""Writes Delta tables with delta-rs (the deltalake package) into the
directory given as argument, and prints, as JSON, each table's rows as
delta-rs reads them, for delta_test.go to compare with its own reading.

Usage: python3 make_tables.py DIR
"""

import datetime
import decimal
import json
import os
import sys

import pyarrow as pa
from deltalake import DeltaTable, QueryBuilder, write_deltalake
from deltalake.schema import Field, PrimitiveType

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from canon import canon_rows  # noqa: E402

UTC = datetime.timezone.utc


def read(path, version=None):
    """The table's rows as delta-rs returns them, through its DataFusion
    reader (DeltaTable.to_pyarrow_table returns NULLs for the columns of a
    table with column mapping)."""
    dt = DeltaTable(path, version=version)
    return pa.table(QueryBuilder().register("t", dt).execute("SELECT * FROM t").read_all())


def types_batch(start, n):
    ids = list(range(start, start + n))

    def nul(i, v):
        return None if i % 5 == 4 else v

    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "i": pa.array([nul(i, i * 3 - 7) for i in ids], pa.int32()),
        "sh": pa.array([nul(i, -i) for i in ids], pa.int16()),
        "by": pa.array([nul(i, i % 100) for i in ids], pa.int8()),
        "f": pa.array([nul(i, i * 0.25) for i in ids], pa.float32()),
        "d": pa.array([nul(i, i / 3) for i in ids], pa.float64()),
        "flag": pa.array([nul(i, i % 2 == 0) for i in ids], pa.bool_()),
        "s": pa.array([nul(i, f"row {i} ü'\"") for i in ids], pa.string()),
        "bin": pa.array([nul(i, bytes([i % 256, 0, 255])) for i in ids], pa.binary()),
        "dt": pa.array([nul(i, datetime.date(2020, 1, 1) + datetime.timedelta(days=i * 37)) for i in ids], pa.date32()),
        "ts": pa.array([nul(i, datetime.datetime(2021, 3, 4, 5, 6, 7, 123456, tzinfo=UTC) + datetime.timedelta(hours=i * 13)) for i in ids],
                       pa.timestamp("us", tz="UTC")),
        "ntz": pa.array([nul(i, datetime.datetime(1999, 12, 31, 23, 59, 59) + datetime.timedelta(minutes=i)) for i in ids], pa.timestamp("us")),
        "dec": pa.array([nul(i, decimal.Decimal(i * 101) / 100) for i in ids], pa.decimal128(10, 2)),
        "st": pa.array([nul(i, {"a": i, "b": f"x{i}"}) for i in ids], pa.struct([("a", pa.int32()), ("b", pa.string())])),
        "arr": pa.array([nul(i, list(range(i % 4))) for i in ids], pa.list_(pa.int64())),
        "m": pa.array([nul(i, [("k", i), ("z", None)]) for i in ids], pa.map_(pa.string(), pa.int32())),
    })


def main(out):
    expected = {}

    def record(name, path, versions=()):
        dt = DeltaTable(path)
        cols, rows = canon_rows(read(path))
        entry = {"version": dt.version(), "columns": cols, "rows": rows, "versions": {}}
        for v in versions:
            _, vrows = canon_rows(read(path, v))
            entry["versions"][str(v)] = vrows
        expected[name] = entry

    # Several commits of appends, every primitive type and nested ones.
    p = os.path.join(out, "appends")
    for k in range(3):
        write_deltalake(p, types_batch(k * 10, 10), mode="append")
    record("appends", p, versions=[0, 1])

    # Partitioned by a string and an int: a NULL partition and values that
    # need URL-encoding in paths.
    p = os.path.join(out, "partitioned")
    strs = ["a", "a b/c", None, "x=y%z", "ü"]
    t = pa.table({
        "id": pa.array(range(20), pa.int64()),
        "v": pa.array([f"v{i}" for i in range(20)], pa.string()),
        "ps": pa.array([strs[i % 5] for i in range(20)], pa.string()),
        "pi": pa.array([None if i % 3 == 2 else i % 3 for i in range(20)], pa.int32()),
        "pd": pa.array([datetime.date(2024, 2, 29) if i % 2 else None for i in range(20)], pa.date32()),
    })
    write_deltalake(p, t, partition_by=["ps", "pi", "pd"])
    write_deltalake(p, t.slice(0, 4), partition_by=["ps", "pi", "pd"], mode="append")
    record("partitioned", p)

    # Deletes and updates rewrite files.
    p = os.path.join(out, "updates")
    write_deltalake(p, types_batch(0, 50))
    write_deltalake(p, types_batch(50, 50), mode="append")
    DeltaTable(p).delete("id % 7 = 0")
    DeltaTable(p).update(predicate="id < 20", updates={"s": "'changed'", "i": "i + 1000"})
    write_deltalake(p, types_batch(100, 5), mode="append")
    record("updates", p, versions=[2])

    # A checkpoint, then more commits.
    p = os.path.join(out, "checkpointed")
    for k in range(3):
        write_deltalake(p, types_batch(k * 5, 5), mode="append", partition_by=["flag"])
    DeltaTable(p).create_checkpoint()
    write_deltalake(p, types_batch(100, 5), mode="append", partition_by=["flag"])
    DeltaTable(p).delete("id = 1 OR id = 101")
    record("checkpointed", p, versions=[1, 2, 3])

    # Column mapping by name, partitioned, with a struct.
    p = os.path.join(out, "colmap")
    cfg = {"delta.columnMapping.mode": "name"}
    t = types_batch(0, 10).select(["id", "s", "st", "flag", "dt"])
    write_deltalake(p, t, partition_by=["flag"], configuration=cfg)
    write_deltalake(p, types_batch(10, 10).select(["id", "s", "st", "flag", "dt"]), mode="append", partition_by=["flag"])
    DeltaTable(p).delete("id = 3")
    record("colmap", p)

    # Schema evolution: a column added by a merge write (older files lack
    # it), and one added by ALTER that no file has.
    p = os.path.join(out, "evolved")
    write_deltalake(p, pa.table({"id": pa.array([1, 2], pa.int64()), "a": ["x", "y"]}))
    write_deltalake(p, pa.table({"id": pa.array([3], pa.int64()), "a": ["z"], "b": pa.array([1.5], pa.float64())}),
                    mode="append", schema_mode="merge")
    DeltaTable(p).alter.add_columns([Field("c", PrimitiveType("date"), nullable=True)])
    record("evolved", p)

    # A table without data files.
    p = os.path.join(out, "empty")
    DeltaTable.create(p, schema=pa.schema([("id", pa.int64()), ("ts", pa.timestamp("us", tz="UTC")), ("p", pa.string())]),
                      partition_by=["p"])
    record("empty", p)

    json.dump(expected, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main(sys.argv[1])
