"""Writes data lake files with pyarrow (and Python's json) for test/lake_test.go.

Usage: lake_files.py DIR. Prints one JSON object: per file, the rows as the
writer's own reader reads them back, as text, for the Go side to compare.
"""
import datetime as dt
import decimal
import json
import os
import sys

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

out = sys.argv[1]
os.makedirs(out, exist_ok=True)

n = 1000
ids = list(range(1, n + 1))
names = [None if i % 97 == 0 else f"name {i % 13}" for i in ids]
amounts = [None if i % 89 == 0 else decimal.Decimal(i * 125) / 100 for i in ids]
ats = [dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=7 * i) for i in ids]
days = [dt.date(2024, 1, 1) + dt.timedelta(days=i % 400) for i in ids]
oks = [i % 3 == 0 for i in ids]
scores = [i / 8 for i in ids]
tags = [[f"t{i % 5}", None] if i % 2 else [] for i in ids]
meta = [{"k": i % 7, "v": f"v{i}"} for i in ids]
table = pa.table({
    "id": pa.array(ids, pa.int64()),
    "name": pa.array(names, pa.string()),
    "amount": pa.array(amounts, pa.decimal128(12, 2)),
    "at": pa.array(ats, pa.timestamp("us", tz="UTC")),
    "day": pa.array(days, pa.date32()),
    "ok": pa.array(oks, pa.bool_()),
    "score": pa.array(scores, pa.float64()),
    "tags": pa.array(tags, pa.list_(pa.string())),
    "meta": pa.array(meta, pa.struct([("k", pa.int32()), ("v", pa.string())])),
})
pq.write_table(table, os.path.join(out, "events.parquet"), row_group_size=256)

# hive partitioned directory
for year in (2024, 2025):
    d = os.path.join(out, "parts", f"year={year}")
    os.makedirs(d, exist_ok=True)
    part = table.filter(pa.compute.equal(pa.compute.year(table["at"]), year)).select(["id", "name", "amount"])
    pq.write_table(part, os.path.join(d, "data.parquet"))

# several files for a glob
for k in range(3):
    pq.write_table(table.slice(k * 300, 300).select(["id", "score"]), os.path.join(out, f"many_{k}.parquet"))

# CSV with a header, a NULL string and a quoted delimiter
csv_table = pa.table({
    "id": pa.array(ids[:100], pa.int64()),
    "city": pa.array([None if i % 10 == 0 else f"City, {i % 4}" for i in ids[:100]], pa.string()),
    "price": pa.array([i * 1.5 for i in ids[:100]], pa.float64()),
})
pacsv.write_csv(csv_table, os.path.join(out, "cities.csv"))
# semicolon-delimited, no header, NA for NULL
with open(os.path.join(out, "plain.csv"), "w") as f:
    for i in ids[:50]:
        f.write(f"{i};{'NA' if i % 7 == 0 else 'x' + str(i)}\n")

# newline-delimited JSON objects
with open(os.path.join(out, "events.json"), "w") as f:
    for i in ids[:200]:
        f.write(json.dumps({"id": i, "kind": "click" if i % 2 else "view", "props": {"page": f"/p/{i % 9}", "n": i}}) + "\n")

for root, dirs, files in os.walk(out):
    os.chmod(root, 0o755)
    for name in files:
        os.chmod(os.path.join(root, name), 0o644)


def text(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return "t" if v else "f"
    return str(v)


back = pq.read_table(os.path.join(out, "events.parquet"))
rows = [[text(r["id"]), text(r["name"]), text(r["amount"]), text(r["ok"]), text(r["day"])] for r in back.to_pylist()]
# an unquoted empty field is NULL, as in COPY ... CSV
csv_back = pacsv.read_csv(os.path.join(out, "cities.csv"), convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
csv_rows = [[text(r["id"]), text(r["city"])] for r in csv_back.to_pylist()]
print(json.dumps({"events": rows, "cities": csv_rows,
                  "cities_columns": csv_back.column_names,
                  "cities_price_over_60": len([r for r in csv_back.to_pylist() if r["price"] > 60]),
                  "cities_price_over_120": len([r for r in csv_back.to_pylist() if r["price"] > 120]),
                  "cities_null_over_60": len([r for r in csv_back.to_pylist() if r["price"] > 60 and r["city"] is None]),
                  "many_rows": [pq.read_metadata(os.path.join(out, f"many_{k}.parquet")).num_rows for k in range(3)],
                  "sum_amount": text(sum(a for a in amounts if a is not None)),
                  "hive_2025": len([a for a in ats if a.year == 2025])}))
