"""Writes an Iceberg table (pyiceberg) and a Delta table (delta-rs) for
test/lake_test.go, and prints what their own readers read, as JSON.

Usage: lake_tables.py DIR
"""
import json
import os
import sys

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from pyiceberg.catalog.sql import SqlCatalog

out = sys.argv[1]
os.makedirs(out, exist_ok=True)

# Delta: two appends, a delete, an update
delta_path = os.path.join(out, "delta_orders")
for k in range(2):
    write_deltalake(delta_path, pa.table({"id": pa.array(range(k * 50, k * 50 + 50), pa.int64()),
                                          "region": pa.array(["EU" if i % 2 else "US" for i in range(50)]),
                                          "qty": pa.array([i % 7 for i in range(50)], pa.int32())}), mode="append")
dt = DeltaTable(delta_path)
dt.delete("qty = 3")
dt.update(predicate="region = 'EU'", updates={"qty": "qty + 100"})
delta_rows = sorted(DeltaTable(delta_path).to_pyarrow_table().to_pylist(), key=lambda r: r["id"])

# Iceberg: an append, a schema change, another append, a delete
warehouse = os.path.join(out, "warehouse")
os.makedirs(warehouse, exist_ok=True)
cat = SqlCatalog("lake", uri=f"sqlite:///{out}/catalog.db", warehouse=f"file://{warehouse}")
cat.create_namespace("db")
schema = pa.schema([pa.field("id", pa.int64()), pa.field("name", pa.string())])
tbl = cat.create_table("db.items", schema=schema)
tbl.append(pa.table({"id": pa.array(range(1, 31), pa.int64()), "name": [f"n{i}" for i in range(1, 31)]}, schema=schema))
with tbl.update_schema() as upd:
    upd.add_column("price", __import__("pyiceberg.types", fromlist=["DoubleType"]).DoubleType())
    upd.rename_column("name", "label")
tbl = cat.load_table("db.items")
tbl.append(pa.table({"id": pa.array(range(31, 41), pa.int64()), "label": [f"m{i}" for i in range(31, 41)],
                     "price": [i * 1.5 for i in range(31, 41)]}))
tbl.delete("id <= 5")
tbl = cat.load_table("db.items")
ice_rows = sorted(tbl.scan().to_arrow().to_pylist(), key=lambda r: r["id"])
# what pyiceberg reports of the table's snapshots and of the current
# snapshot's manifest entries (iceberg_snapshots, iceberg_metadata)
ice_snapshots = [{"snapshot_id": str(s.snapshot_id), "sequence_number": s.sequence_number,
                  "timestamp_ms": s.timestamp_ms, "manifest_list": s.manifest_list,
                  "operation": s.summary.operation.value if s.summary else None,
                  "count": tbl.scan(snapshot_id=s.snapshot_id).to_arrow().num_rows}
                 for s in tbl.metadata.snapshots]
ice_entries = sorted([{"status": {0: "EXISTING", 1: "ADDED", 2: "DELETED"}[e["status"]],
                       "content": {0: "DATA", 1: "POSITION_DELETES", 2: "EQUALITY_DELETES"}[e["data_file"]["content"]],
                       "file_path": e["data_file"]["file_path"], "record_count": e["data_file"]["record_count"]}
                      for e in tbl.inspect.entries().to_pylist()], key=lambda e: (e["file_path"], e["status"]))

for root, dirs, files in os.walk(out):
    os.chmod(root, 0o755)
    for name in files:
        os.chmod(os.path.join(root, name), 0o644)


def text(v):
    """PostgreSQL's text of a value (float8 prints 48, not 48.0)."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return None if v is None else str(v)


print(json.dumps({
    "delta_path": delta_path,
    "delta": [[text(r["id"]), r["region"], text(r["qty"])] for r in delta_rows],
    "iceberg_path": tbl.metadata_location.removeprefix("file://"),
    "iceberg_dir": tbl.location().removeprefix("file://"),
    "iceberg": [[text(r["id"]), r["label"], text(r["price"])] for r in ice_rows],
    "iceberg_snapshots": ice_snapshots,
    "iceberg_entries": ice_entries,
}))
