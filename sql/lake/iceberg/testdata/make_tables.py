#!/usr/bin/env python3
"""Writes the Iceberg tables the iceberg package's tests read.

Usage: make_tables.py WAREHOUSE

Creates, with pyiceberg's SqlCatalog (sqlite in WAREHOUSE), the tables

  appends      v2, three appends (one snapshot each), every primitive type
               the package maps plus a list and a struct column
  evolve       v2, a column added, one renamed, one dropped, int -> long,
               float -> double, decimal(5,2) -> decimal(9,2), fields of a
               struct and of a list's struct elements renamed, promoted,
               added, dropped and added again under the same name, with
               appends before and after the changes
  deletes      v2, copy-on-write deletes by pyiceberg (a rewrite and a
               whole-file delete), then merge-on-read deletes: a position
               delete file and two equality delete files (one on a column
               whose delete row holds NULL, one on two columns), then an
               append whose rows an earlier equality delete would match
  v1           format v1, two appends and a copy-on-write delete
  partitioned  v2, identity(region) + day(ts), then the spec evolved with
               bucket(4, id); a partition-scoped equality delete
  migrated     v2, Parquet files without field IDs (another tool's) added
               with add_files, read through the name mapping; a column
               renamed, then a pyiceberg append
  empty        v2, no snapshot

pyiceberg 0.12 writes no merge-on-read deletes ("Merge on read is not yet
supported, falling back to copy-on-write"), so the delete files are
written here with pyarrow (Parquet with the spec's field IDs) and
committed through pyiceberg's snapshot producer, with a manifest writer
whose content is "deletes".

It prints one JSON document: per table its directory, current metadata
file and format version, and per snapshot tested the expected rows, each
value in the canonical text form described in canon(). The expected rows
are pyiceberg's own answer (table.scan(snapshot_id=...).to_arrow()),
except where pyiceberg cannot read the snapshot (it reads no equality
deletes): there they are derived from pyiceberg's answer for the snapshot
before, with the rows the equality deletes name removed here ("oracle":
"derived").
"""

import datetime
import decimal
import json
import math
import os
import sys
import uuid
import warnings

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.manifest import (
    DataFile,
    DataFileContent,
    FileFormat,
    ManifestContent,
    ManifestWriterV2,
)
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table.snapshots import Operation
from pyiceberg.table.update.snapshot import _FastAppendFiles
from pyiceberg.transforms import BucketTransform, DayTransform, IdentityTransform
from pyiceberg.typedef import Record
from pyiceberg.types import (
    BinaryType,
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    ListType,
    LongType,
    NestedField,
    StringType,
    StructType,
    TimestampType,
    TimestamptzType,
)

warnings.simplefilter("ignore")

FILE_PATH_ID = 2147483546
POS_ID = 2147483545


def canon(v):
    """The text form both sides compare: NULL as None; booleans true/false;
    integers in decimal; floats as %.17g (NaN, Infinity, -Infinity);
    decimals in plain notation with their scale; dates ISO; timestamps
    'YYYY-MM-DD HH:MM:SS.ffffff' in UTC without a zone; binary as \\x and
    hex; lists [a, b]; structs {k: v} by key order."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return "%.17g" % v
    if isinstance(v, decimal.Decimal):
        return format(v, "f")
    if isinstance(v, datetime.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return v.isoformat(sep=" ", timespec="microseconds")
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, datetime.time):
        return v.isoformat(timespec="microseconds")
    if isinstance(v, str):
        return v
    if isinstance(v, (bytes, bytearray)):
        return "\\x" + bytes(v).hex()
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join("NULL" if canon(x) is None else canon(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(k + ": " + ("NULL" if canon(v[k]) is None else canon(v[k])) for k in sorted(v)) + "}"
    raise TypeError("no canonical form for %r" % (v,))


def rows_of(arrow_table):
    cols = arrow_table.column_names
    out = []
    for r in arrow_table.to_pylist():
        out.append([canon(r[c]) for c in cols])
    return cols, out


class _DeleteManifestWriter(ManifestWriterV2):
    """A v2 manifest writer for delete files."""

    def content(self):
        return ManifestContent.DELETES

    @property
    def _meta(self):
        return {**super()._meta, "content": "deletes"}


class _AppendDeleteFiles(_FastAppendFiles):
    """Fast append of delete files: a new delete manifest, every existing
    manifest kept."""

    def new_manifest_writer(self, spec):
        return _DeleteManifestWriter(spec, self.schema(), self.new_manifest_output(), self._snapshot_id, self._compression)


def commit_delete_files(tbl, files):
    with tbl.transaction() as tx:
        producer = _AppendDeleteFiles(operation=Operation.DELETE, transaction=tx, io=tbl.io)
        for f in files:
            producer.append_data_file(f)
        producer.commit()
    return tbl.refresh()


def local(path):
    return path[len("file://"):] if path.startswith("file://") else path


def field_meta(fid):
    return {b"PARQUET:field_id": str(fid).encode()}


def write_position_deletes(tbl, name, pairs):
    """A position delete file over (data file path, position) pairs, sorted
    as the spec asks."""
    pairs = sorted(pairs)
    schema = pa.schema([
        pa.field("file_path", pa.string(), nullable=False, metadata=field_meta(FILE_PATH_ID)),
        pa.field("pos", pa.int64(), nullable=False, metadata=field_meta(POS_ID)),
    ])
    t = pa.table({"file_path": [p for p, _ in pairs], "pos": [n for _, n in pairs]}, schema=schema)
    path = tbl.location() + "/data/" + name
    pq.write_table(t, local(path))
    return DataFile.from_args(
        _table_format_version=2,
        content=DataFileContent.POSITION_DELETES,
        file_path=path,
        file_format=FileFormat.PARQUET,
        partition=Record(),
        record_count=len(pairs),
        file_size_in_bytes=os.path.getsize(local(path)),
    )


def write_equality_deletes(tbl, name, fields, columns, partition=None, spec_id=0):
    """An equality delete file: fields are (field id, name, arrow type), columns
    the delete rows' values per field."""
    schema = pa.schema([pa.field(n, t, nullable=True, metadata=field_meta(fid)) for fid, n, t in fields])
    t = pa.table({n: columns[i] for i, (_, n, _) in enumerate(fields)}, schema=schema)
    path = tbl.location() + "/data/" + name
    pq.write_table(t, local(path))
    f = DataFile.from_args(
        _table_format_version=2,
        content=DataFileContent.EQUALITY_DELETES,
        file_path=path,
        file_format=FileFormat.PARQUET,
        partition=partition if partition is not None else Record(),
        record_count=t.num_rows,
        file_size_in_bytes=os.path.getsize(local(path)),
        equality_ids=[fid for fid, _, _ in fields],
    )
    f.spec_id = spec_id
    return f


def data_files(tbl):
    """Live data file paths of the current snapshot, in manifest order."""
    return [t.file.file_path for t in tbl.scan().plan_files()]


class Recorder:
    def __init__(self):
        self.tables = []

    def table(self, name, tbl, fmt):
        entry = {"name": name, "location": local(tbl.location()), "format_version": fmt, "snapshots": []}
        self.tables.append(entry)
        return entry

    def snapshot(self, entry, tbl, note, rows=None, cols=None):
        """Records the current snapshot: pyiceberg's answer, or the derived
        rows given."""
        snap = tbl.current_snapshot()
        rec = {"id": snap.snapshot_id if snap else None, "note": note}
        if rows is None:
            cols, rows = rows_of(tbl.scan(snapshot_id=snap.snapshot_id).to_arrow() if snap else tbl.scan().to_arrow())
            rec["oracle"] = "pyiceberg"
        else:
            rec["oracle"] = "derived"
        rec["columns"] = cols
        rec["rows"] = rows
        entry["snapshots"].append(rec)
        return rec

    def finish(self, entry, tbl):
        entry["metadata"] = local(tbl.metadata_location)
        # pyiceberg's answer for every recorded snapshot again, now that the
        # table has moved on: time travel reads the snapshot's own schema and
        # files, so it must not have changed.
        for rec in entry["snapshots"]:
            if rec["oracle"] == "pyiceberg" and rec["id"] is not None:
                cols, rows = rows_of(tbl.scan(snapshot_id=rec["id"]).to_arrow())
                if cols != rec["columns"] or sorted(map(repr, rows)) != sorted(map(repr, rec["rows"])):
                    raise SystemExit("%s: snapshot %d reads differently later" % (entry["name"], rec["id"]))


def ts(s):
    return datetime.datetime.fromisoformat(s)


def tstz(s):
    return datetime.datetime.fromisoformat(s).replace(tzinfo=datetime.timezone.utc)


def make_appends(cat, rec):
    schema = Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "name", StringType(), required=False),
        NestedField(3, "price", DoubleType(), required=False),
        NestedField(4, "qty", IntegerType(), required=False),
        NestedField(5, "ratio", FloatType(), required=False),
        NestedField(6, "day", DateType(), required=False),
        NestedField(7, "ts", TimestampType(), required=False),
        NestedField(8, "tstz", TimestamptzType(), required=False),
        NestedField(9, "amount", DecimalType(10, 2), required=False),
        NestedField(10, "flag", BooleanType(), required=False),
        NestedField(11, "raw", BinaryType(), required=False),
        NestedField(12, "tags", ListType(13, StringType(), element_required=False), required=False),
        NestedField(14, "point", StructType(
            NestedField(15, "x", DoubleType(), required=False),
            NestedField(16, "y", DoubleType(), required=False),
        ), required=False),
        # A column named like DuckDB's reader columns.
        NestedField(17, "filename", StringType(), required=False),
    )
    tbl = cat.create_table("t.appends", schema=schema, properties={"format-version": "2"})
    entry = rec.table("appends", tbl, 2)
    arrow = tbl.schema().as_arrow()

    def batch(start, n):
        rows = []
        for i in range(start, start + n):
            rows.append({
                "id": i,
                "name": None if i % 7 == 0 else "name %d" % i,
                "price": i * 1.25 if i % 5 else (float("nan") if i % 10 == 0 else None),
                "qty": i * 3 - 10,
                "ratio": i / 3.0,
                "day": datetime.date(2024, 1, 1) + datetime.timedelta(days=i),
                "ts": ts("2024-02-29T12:34:56.123456") + datetime.timedelta(hours=i),
                "tstz": tstz("2023-12-31T23:59:59") + datetime.timedelta(minutes=i),
                "amount": decimal.Decimal(i * 101) / 100 - 5,
                "flag": None if i % 4 == 0 else i % 2 == 0,
                "raw": bytes([i % 256, 0, 255]),
                "tags": None if i % 6 == 0 else ["a%d" % i, None, "b"][: i % 4],
                "point": None if i % 9 == 0 else {"x": float(i), "y": None if i % 2 else -float(i)},
                "filename": "file %d" % i,
            })
        return pa.Table.from_pylist(rows, schema=arrow)

    tbl.append(batch(1, 20))
    rec.snapshot(entry, tbl, "first append")
    tbl.append(batch(21, 15))
    rec.snapshot(entry, tbl, "second append")
    tbl.append(batch(36, 5))
    rec.snapshot(entry, tbl, "third append")
    rec.finish(entry, tbl)


def make_evolve(cat, rec):
    schema = Schema(
        NestedField(1, "id", IntegerType(), required=False),
        NestedField(2, "a", StringType(), required=False),
        NestedField(3, "b", FloatType(), required=False),
        NestedField(4, "c", DecimalType(5, 2), required=False),
        NestedField(5, "gone", StringType(), required=False),
        NestedField(6, "s", StructType(
            NestedField(7, "p", IntegerType(), required=False),
            NestedField(8, "q", StringType(), required=False),
        ), required=False),
        NestedField(9, "items", ListType(10, StructType(
            NestedField(11, "k", IntegerType(), required=False),
            NestedField(12, "v", StringType(), required=False),
        ), element_required=False), required=False),
    )
    tbl = cat.create_table("t.evolve", schema=schema, properties={"format-version": "2"})
    entry = rec.table("evolve", tbl, 2)
    tbl.append(pa.Table.from_pylist([
        {"id": i, "a": "a%d" % i, "b": i + 0.5, "c": decimal.Decimal("%d.25" % i), "gone": "g%d" % i,
         "s": {"p": i, "q": "q%d" % i},
         "items": None if i == 5 else [{"k": i, "v": "v%d" % i}, None, {"k": None, "v": "w"}][: i % 4]}
        for i in range(1, 6)
    ], schema=tbl.schema().as_arrow()))
    rec.snapshot(entry, tbl, "before the change")

    with tbl.update_schema() as u:
        u.add_column("added", LongType())
        u.rename_column("a", "a_renamed")
        u.delete_column("gone")
        u.update_column("id", LongType())
        u.update_column("b", DoubleType())
        u.update_column("c", DecimalType(9, 2))
        u.rename_column(("s", "p"), "p2")
        u.update_column(("s", "p"), LongType())
        u.add_column(("s", "r"), StringType())
        u.rename_column(("items", "element", "v"), "v2")
    tbl = tbl.refresh()
    tbl.append(pa.Table.from_pylist([
        {"id": 10_000_000_000 + i, "a_renamed": "new%d" % i, "b": i + 0.1, "c": decimal.Decimal("1234567.%02d" % i), "added": i * 100,
         "s": {"p2": 2**40 + i, "q": None, "r": "r%d" % i},
         "items": [{"k": -i, "v2": "n%d" % i}]}
        for i in range(1, 4)
    ], schema=tbl.schema().as_arrow()))
    rec.snapshot(entry, tbl, "after the change")

    # A second rename, and a new column named as the dropped one was: the
    # old files' "gone" column must not show through.
    # The same for a struct field: s.q dropped and added again.
    with tbl.update_schema() as u:
        u.rename_column("a_renamed", "a2")
        u.add_column("gone", StringType())
        u.delete_column(("s", "q"))
    with tbl.update_schema() as u:
        u.add_column(("s", "q"), StringType())
    tbl = tbl.refresh()
    tbl.append(pa.Table.from_pylist([
        {"id": 20 + i, "a2": "x%d" % i, "b": None, "c": None, "added": None, "gone": "back%d" % i,
         "s": {"p2": i, "r": None, "q": "newq%d" % i}, "items": []}
        for i in range(1, 3)
    ], schema=tbl.schema().as_arrow()))
    rec.snapshot(entry, tbl, "second rename, a new column named as a dropped one")
    rec.finish(entry, tbl)


def make_deletes(cat, rec):
    schema = Schema(
        NestedField(1, "id", LongType(), required=False),
        # named as DuckDB's virtual columns of a file's rows and position:
        # the reader still finds each row's position for the deletes
        NestedField(2, "filename", StringType(), required=False),
        NestedField(3, "file_row_number", IntegerType(), required=False),
    )
    tbl = cat.create_table("t.deletes", schema=schema, properties={"format-version": "2"})
    entry = rec.table("deletes", tbl, 2)
    arrow = tbl.schema().as_arrow()

    def rows(lo, hi):
        return pa.Table.from_pylist([
            {"id": i, "filename": None if i % 5 == 0 else "n%d" % (i % 4), "file_row_number": i % 3} for i in range(lo, hi)
        ], schema=arrow)

    tbl.append(rows(1, 31))
    tbl.append(rows(100, 111))
    tbl.append(rows(200, 221))
    rec.snapshot(entry, tbl, "three appends")

    # Copy-on-write by pyiceberg: rows 3 and 7 rewrite the first file; every
    # row of the second file goes, so it is deleted whole.
    tbl.delete(delete_filter="id = 3 or id = 7")
    tbl.delete(delete_filter="id >= 100 and id < 200")
    tbl = tbl.refresh()
    rec.snapshot(entry, tbl, "copy-on-write deletes")

    # Merge-on-read: a position delete file over two data files.
    files = data_files(tbl)
    pairs = [(files[0], 0), (files[0], 4), (files[1], 2), (files[1], 3), (files[1], 20)]
    tbl = commit_delete_files(tbl, [write_position_deletes(tbl, "pos-deletes-1.parquet", pairs)])
    before = rec.snapshot(entry, tbl, "position deletes")

    # Equality deletes: every row whose name is NULL or 'n1' (one file on
    # field 2), and the row (id 210, grp 0) (one file on fields 1 and 3).
    eq1 = write_equality_deletes(tbl, "eq-deletes-1.parquet", [(2, "filename", pa.string())], [[None, "n1"]])
    eq2 = write_equality_deletes(tbl, "eq-deletes-2.parquet", [(1, "id", pa.int64()), (3, "file_row_number", pa.int32())],
                                 [[210, 211], [0, 0]])
    tbl = commit_delete_files(tbl, [eq1, eq2])
    cols = before["columns"]
    i_id, i_name, i_grp = cols.index("id"), cols.index("filename"), cols.index("file_row_number")
    kept = [r for r in before["rows"]
            if r[i_name] is not None and r[i_name] != "n1" and not (r[i_id] == "210" and r[i_grp] == "0")]
    rec.snapshot(entry, tbl, "equality deletes", rows=kept, cols=cols)

    # Rows appended after the equality deletes: their data sequence number is
    # higher, so they stay although the deletes would match them.
    new = pa.Table.from_pylist([
        {"id": 500, "filename": None, "file_row_number": 1},
        {"id": 501, "filename": "n1", "file_row_number": 2},
        {"id": 210, "filename": "again", "file_row_number": 0},
    ], schema=arrow)
    tbl.append(new)
    _, new_rows = rows_of(new)
    rec.snapshot(entry, tbl, "append after equality deletes", rows=kept + new_rows, cols=cols)
    rec.finish(entry, tbl)


def make_v1(cat, rec):
    schema = Schema(
        NestedField(1, "id", IntegerType(), required=False),
        NestedField(2, "label", StringType(), required=False),
    )
    tbl = cat.create_table("t.v1", schema=schema, properties={"format-version": "1"})
    entry = rec.table("v1", tbl, 1)
    arrow = tbl.schema().as_arrow()
    tbl.append(pa.Table.from_pylist([{"id": i, "label": "l%d" % i} for i in range(1, 11)], schema=arrow))
    rec.snapshot(entry, tbl, "first append")
    tbl.append(pa.Table.from_pylist([{"id": i, "label": None} for i in range(11, 16)], schema=arrow))
    rec.snapshot(entry, tbl, "second append")
    tbl.delete(delete_filter="id < 4")
    tbl = tbl.refresh()
    rec.snapshot(entry, tbl, "copy-on-write delete")
    rec.finish(entry, tbl)


def make_partitioned(cat, rec):
    schema = Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "region", StringType(), required=False),
        NestedField(3, "ts", TimestampType(), required=False),
        NestedField(4, "v", DoubleType(), required=False),
    )
    spec = PartitionSpec(
        PartitionField(source_id=2, field_id=1000, transform=IdentityTransform(), name="region"),
        PartitionField(source_id=3, field_id=1001, transform=DayTransform(), name="ts_day"),
    )
    tbl = cat.create_table("t.partitioned", schema=schema, partition_spec=spec, properties={"format-version": "2"})
    entry = rec.table("partitioned", tbl, 2)
    arrow = tbl.schema().as_arrow()
    regions = ["eu", "us", None]

    def rows(lo, hi):
        return pa.Table.from_pylist([
            {"id": i % 10, "region": regions[i % 3], "ts": ts("2024-03-01T10:00:00") + datetime.timedelta(hours=7 * i), "v": i / 4}
            for i in range(lo, hi)
        ], schema=arrow)

    tbl.append(rows(0, 24))
    rec.snapshot(entry, tbl, "first append")
    tbl.append(rows(24, 40))
    before = rec.snapshot(entry, tbl, "second append")

    # An equality delete on id in partition (region 'eu', 2024-03-02) only:
    # the same ids elsewhere stay.
    day = (datetime.date(2024, 3, 2) - datetime.date(1970, 1, 1)).days
    eq = write_equality_deletes(tbl, "eq-part.parquet", [(1, "id", pa.int64())], [[0, 3, 6, 9, 4]],
                                partition=Record("eu", day), spec_id=0)
    tbl = commit_delete_files(tbl, [eq])
    cols = before["columns"]
    i_id, i_region, i_ts = cols.index("id"), cols.index("region"), cols.index("ts")
    kept = [r for r in before["rows"]
            if not (r[i_region] == "eu" and r[i_ts].startswith("2024-03-02") and r[i_id] in ("0", "3", "6", "9", "4"))]
    rec.snapshot(entry, tbl, "partition-scoped equality delete", rows=kept, cols=cols)

    # Partition evolution: files written after it carry a third field.
    with tbl.update_spec() as u:
        u.add_field("id", BucketTransform(4), "id_bucket")
    tbl = tbl.refresh()
    more = rows(40, 46)
    tbl.append(more)
    _, more_rows = rows_of(more)
    rec.snapshot(entry, tbl, "after partition evolution", rows=kept + more_rows, cols=cols)
    rec.finish(entry, tbl)


def make_migrated(cat, rec):
    """Parquet files without field IDs, added with add_files: read through
    the table's name mapping."""
    schema = Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "name", StringType(), required=False),
        NestedField(3, "score", DoubleType(), required=False),
    )
    tbl = cat.create_table("t.migrated", schema=schema, properties={"format-version": "2"})
    entry = rec.table("migrated", tbl, 2)
    os.makedirs(local(tbl.location()) + "/imported", exist_ok=True)
    paths = []
    # Written by "another tool": no field IDs; the second file lacks score
    # and has its columns in another order.
    for n, t in enumerate([
        pa.table({"id": pa.array([1, 2, 3], pa.int64()), "name": ["a", None, "c"], "score": [0.5, 1.5, None]}),
        pa.table({"name": ["d", "e"], "id": pa.array([4, 5], pa.int64())}),
    ]):
        path = local(tbl.location()) + "/imported/part-%d.parquet" % n
        pq.write_table(t, path)
        paths.append("file://" + path)
    tbl.add_files(file_paths=paths)
    tbl = tbl.refresh()
    rec.snapshot(entry, tbl, "files added without field IDs")
    with tbl.update_schema() as u:
        u.rename_column("name", "label")
    tbl = tbl.refresh()
    tbl.append(pa.Table.from_pylist([{"id": 6, "label": "f", "score": 6.5}], schema=tbl.schema().as_arrow()))
    rec.snapshot(entry, tbl, "renamed, then a file with field IDs")
    rec.finish(entry, tbl)


def make_empty(cat, rec):
    schema = Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "s", StringType(), required=False),
    )
    tbl = cat.create_table("t.empty", schema=schema, properties={"format-version": "2"})
    entry = rec.table("empty", tbl, 2)
    rec.snapshot(entry, tbl, "no snapshot")
    rec.finish(entry, tbl)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_tables.py WAREHOUSE")
    wh = os.path.abspath(sys.argv[1])
    os.makedirs(wh, exist_ok=True)
    cat = SqlCatalog("test", uri="sqlite:///" + os.path.join(wh, "catalog.db"), warehouse="file://" + wh)
    cat.create_namespace("t")
    rec = Recorder()
    make_appends(cat, rec)
    make_evolve(cat, rec)
    make_deletes(cat, rec)
    make_v1(cat, rec)
    make_partitioned(cat, rec)
    make_migrated(cat, rec)
    make_empty(cat, rec)
    json.dump({"pyiceberg": __import__("pyiceberg").__version__, "tables": rec.tables}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
