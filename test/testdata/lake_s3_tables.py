"""Writes an Iceberg table (pyiceberg) and a Delta table (delta-rs)
straight to an S3-compatible server, for test/lake_s3_test.go, and prints
what their own readers read back, as JSON.

Usage: lake_s3_tables.py ENDPOINT_URL BUCKET KEY_ID SECRET WORKDIR
"""
import json
import sys

import pyarrow as pa
import pyarrow.compute  # noqa: F401 (pa.compute)
from deltalake import DeltaTable, write_deltalake
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.types import DoubleType

endpoint, bucket, key_id, secret, work = sys.argv[1:6]

# Delta: two appends, a delete, an update
opts = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true", "AWS_S3_ALLOW_UNSAFE_RENAME": "true"}
delta_url = f"s3://{bucket}/delta/orders"
for k in range(2):
    write_deltalake(delta_url, pa.table({"id": pa.array(range(k * 50, k * 50 + 50), pa.int64()),
                                         "region": pa.array(["EU" if i % 2 else "US" for i in range(50)]),
                                         "qty": pa.array([i % 7 for i in range(50)], pa.int32())}),
                    mode="append", storage_options=opts)
dt = DeltaTable(delta_url, storage_options=opts)
dt.delete("qty = 3")
dt.update(predicate="region = 'EU'", updates={"qty": "qty + 100"})
delta_rows = sorted(DeltaTable(delta_url, storage_options=opts).to_pyarrow_table().to_pylist(), key=lambda r: r["id"])

# Iceberg: an append, a schema change, another append, a delete
cat = SqlCatalog("lake", uri=f"sqlite:///{work}/catalog.db", warehouse=f"s3://{bucket}/iceberg",
                 **{"s3.endpoint": endpoint, "s3.access-key-id": key_id, "s3.secret-access-key": secret,
                    "s3.region": "us-east-1", "py-io-impl": "pyiceberg.io.fsspec.FsspecFileIO"})
cat.create_namespace("db")
schema = pa.schema([pa.field("id", pa.int64()), pa.field("name", pa.string())])
tbl = cat.create_table("db.items", schema=schema)
tbl.append(pa.table({"id": pa.array(range(1, 31), pa.int64()), "name": [f"n{i}" for i in range(1, 31)]}, schema=schema))
with tbl.update_schema() as upd:
    upd.add_column("price", DoubleType())
    upd.rename_column("name", "label")
tbl = cat.load_table("db.items")
tbl.append(pa.table({"id": pa.array(range(31, 41), pa.int64()), "label": [f"m{i}" for i in range(31, 41)],
                     "price": [i * 1.5 for i in range(31, 41)]}))
tbl.delete("id <= 5")
tbl = cat.load_table("db.items")
ice_rows = sorted(tbl.scan().to_arrow().to_pylist(), key=lambda r: r["id"])

# A wide Iceberg table and a wide Delta table, for the bytes a narrow query
# transfers: 20 bigint columns, c3 renamed in the Iceberg table between
# its two appends (older files keep the old name, same field id).
rows = 60000
def wide(lo):
    return pa.table({f"c{i}": pa.array([(r * (i + 3)) % 999983 for r in range(lo, lo + rows)], pa.int64()) for i in range(20)})
wtbl = cat.create_table("db.wide", schema=wide(0).schema)
wtbl.append(wide(0))
with wtbl.update_schema() as upd:
    upd.rename_column("c3", "renamed3")
wtbl = cat.load_table("db.wide")
second = wide(rows).rename_columns(["renamed3" if n == "c3" else n for n in wide(0).column_names])
wtbl.append(second)
wtbl = cat.load_table("db.wide")
wide_ice = wtbl.scan(selected_fields=("renamed3", "c9")).to_arrow()
wide_ice_bytes = sum(t.file.file_size_in_bytes for t in wtbl.scan().plan_files())
delta_wide_url = f"s3://{bucket}/delta/wide"
write_deltalake(delta_wide_url, wide(0), storage_options=opts)
write_deltalake(delta_wide_url, wide(rows), mode="append", storage_options=opts)
dwide = DeltaTable(delta_wide_url, storage_options=opts)
wide_delta = dwide.to_pyarrow_table(columns=["c3", "c9"])
wide_delta_bytes = pa.compute.sum(pa.table(dwide.get_add_actions(flatten=True)).column("size_bytes")).as_py()


def text(v):
    """PostgreSQL's text of a value (float8 prints 48, not 48.0)."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return None if v is None else str(v)


print(json.dumps({
    "delta_url": delta_url,
    "delta": [[text(r["id"]), r["region"], text(r["qty"])] for r in delta_rows],
    "iceberg_url": tbl.location(),
    "iceberg_metadata": tbl.metadata_location,
    "iceberg": [[text(r["id"]), r["label"], text(r["price"])] for r in ice_rows],
    "iceberg_snapshots": [str(sn.snapshot_id) for sn in tbl.snapshots()],
    "wide_iceberg_url": wtbl.location(),
    "wide_iceberg_sum": str(pa.compute.sum(pa.compute.add(wide_ice["renamed3"], wide_ice["c9"])).as_py()),
    "wide_iceberg_bytes": wide_ice_bytes,
    "wide_delta_url": delta_wide_url,
    "wide_delta_sum": str(pa.compute.sum(pa.compute.add(wide_delta["c3"], wide_delta["c9"])).as_py()),
    "wide_delta_bytes": wide_delta_bytes,
}))
