"""Writes a wide Parquet file with pyarrow for test/lake_s3_test.go.

Usage: lake_s3_files.py DIR [ROWS]. Writes DIR/wide.parquet: 30 int64
columns c0..c29 and a string column s, in row groups of 50,000 rows, and
prints the writer's own answers (sum of c3 where c7 > limit, rows) as JSON.
"""
import json
import os
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 200000
os.makedirs(out, exist_ok=True)
cols = {f"c{i}": pa.array([(r * (i + 7)) % 1000003 for r in range(n)], pa.int64()) for i in range(30)}
cols["s"] = pa.array([f"value {r % 1000}" for r in range(n)], pa.string())
table = pa.table(cols)
path = os.path.join(out, "wide.parquet")
pq.write_table(table, path, row_group_size=50000, compression="snappy")
back = pq.read_table(path)
limit = 500000
kept = back.filter(pc.greater(back["c7"], limit))
print(json.dumps({"size": os.path.getsize(path), "rows": back.num_rows, "limit": limit,
                  "sum_c3": str(pc.sum(kept["c3"]).as_py()), "count": kept.num_rows}))
