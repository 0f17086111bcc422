"""Writes the Delta tables kept in testdata/spark with Apache Spark and
Delta Lake (pip install 'pyspark>=4.0,<4.1' delta-spark==4.0.0; Java 17;
the delta-spark jar comes from Maven Central; about a minute), with the features delta-rs does not write:
deletion vectors, a multi-part checkpoint, column mapping by id, renamed
and dropped columns, v2 checkpoints with sidecars. Then writes
spark/expected.json: each table's rows as delta-rs reads them (its
DataFusion reader, which applies deletion vectors), or as Spark reads them
where delta-rs cannot.

Usage: python3 make_spark_tables.py DIR   (DIR is replaced)
"""

import glob
import json
import os
import shutil
import sys
import time

os.environ["TZ"] = "UTC"
time.tzset()

import pyarrow as pa  # noqa: E402
from delta import configure_spark_with_delta_pip  # noqa: E402
from pyspark.sql import SparkSession  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from canon import canon_rows  # noqa: E402


def spark_session():
    b = (SparkSession.builder.master("local[1]").appName("make_spark_tables")
         .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
         .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
         .config("spark.sql.session.timeZone", "UTC")
         .config("spark.sql.shuffle.partitions", "2")
         .config("spark.ui.enabled", "false")
         .config("spark.databricks.delta.properties.defaults.checkpointInterval", "1000"))
    return configure_spark_with_delta_pip(b).getOrCreate()


def expected_rows(spark, path, version=None):
    """Rows by delta-rs when it can read the table, else by Spark."""
    try:
        from deltalake import DeltaTable, QueryBuilder
        dt = DeltaTable(path, version=version)
        t = pa.table(QueryBuilder().register("t", dt).execute("SELECT * FROM t").read_all())
        reader = "delta-rs"
    except Exception as e:  # noqa: BLE001
        print(f"{path}: delta-rs cannot read it ({e}); expected rows from Spark", file=sys.stderr)
        r = spark.read.format("delta")
        if version is not None:
            r = r.option("versionAsOf", version)
        t = r.load(path).toArrow()
        reader = "spark"
    cols, rows = canon_rows(t)
    return reader, cols, rows


def main(out):
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    spark = spark_session()
    sql = spark.sql
    tables = {}

    def done(name, versions=()):
        p = os.path.join(out, name)
        reader, cols, rows = expected_rows(spark, p)
        v = sql(f"DESCRIBE HISTORY delta.`{p}` LIMIT 1").collect()[0]["version"]
        entry = {"version": v, "reader": reader, "columns": cols, "rows": rows, "versions": {}}
        for old in versions:
            _, _, vrows = expected_rows(spark, p, old)
            entry["versions"][str(old)] = vrows
        tables[name] = entry

    # Deletion vectors on a partitioned table: a delete adds vectors, a
    # second delete replaces them, an update marks rows deleted in the old
    # files and writes the new versions of the rows to new files.
    p = os.path.join(out, "dv")
    sql(f"""CREATE TABLE delta.`{p}` (id BIGINT, part INT, s STRING, ts TIMESTAMP, dec DECIMAL(12,3))
            USING delta PARTITIONED BY (part) TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')""")
    (spark.range(0, 300).selectExpr("id", "cast(id % 3 as int) part", "concat('s', id) s",
                                    "timestamp_seconds(id * 3600) ts", "cast(id / 8 as decimal(12,3)) dec")
     .repartition(2).write.format("delta").mode("append").save(p))
    sql(f"DELETE FROM delta.`{p}` WHERE id % 5 = 0")
    sql(f"DELETE FROM delta.`{p}` WHERE id % 7 = 0")
    sql(f"UPDATE delta.`{p}` SET s = 'updated' WHERE id % 11 = 0")
    done("dv", versions=[1, 2])

    # Deletion vectors and a multi-part checkpoint, then more commits.
    p = os.path.join(out, "multipart")
    sql(f"""CREATE TABLE delta.`{p}` (id BIGINT, v STRING) USING delta
            TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')""")
    for k in range(3):
        spark.range(k * 100, k * 100 + 100).selectExpr("id", "cast(id * 2 as string) v").repartition(2) \
            .write.format("delta").mode("append").save(p)
    sql(f"DELETE FROM delta.`{p}` WHERE id % 4 = 1")
    spark.conf.set("spark.databricks.delta.checkpoint.partSize", "2")
    spark._jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, p).checkpoint()
    spark.conf.unset("spark.databricks.delta.checkpoint.partSize")
    sql(f"DELETE FROM delta.`{p}` WHERE id % 4 = 2")
    spark.range(1000, 1010).selectExpr("id", "'late' v").write.format("delta").mode("append").save(p)
    done("multipart", versions=[3])

    # Column mapping by id: renamed, dropped and added columns, and a
    # renamed field inside a struct.
    p = os.path.join(out, "colmap_id")
    sql(f"""CREATE TABLE delta.`{p}` (id BIGINT, a STRING, b INT, st STRUCT<x: INT, y: STRING>, tsn TIMESTAMP_NTZ)
            USING delta PARTITIONED BY (b)
            TBLPROPERTIES ('delta.columnMapping.mode' = 'id', 'delta.enableDeletionVectors' = 'true')""")
    sql(f"""INSERT INTO delta.`{p}` VALUES (1, 'one', 10, named_struct('x', 1, 'y', 'y1'), TIMESTAMP_NTZ'2020-01-01 10:00:00'),
            (2, 'two', 20, NULL, NULL), (3, NULL, NULL, named_struct('x', 3, 'y', NULL), TIMESTAMP_NTZ'2021-06-30 23:59:59.5')""")
    sql(f"ALTER TABLE delta.`{p}` RENAME COLUMN a TO a_renamed")
    sql(f"ALTER TABLE delta.`{p}` RENAME COLUMN st.x TO x_renamed")
    sql(f"ALTER TABLE delta.`{p}` ADD COLUMNS (c DOUBLE)")
    sql(f"INSERT INTO delta.`{p}` VALUES (4, 'four', 10, named_struct('x_renamed', 4, 'y', 'y4'), NULL, 4.5)")
    sql(f"ALTER TABLE delta.`{p}` DROP COLUMN tsn")
    sql(f"DELETE FROM delta.`{p}` WHERE id = 2")
    done("colmap_id")

    # v2 checkpoints (UUID-named, with sidecars), then a commit.
    p = os.path.join(out, "v2checkpoint")
    sql(f"""CREATE TABLE delta.`{p}` (id BIGINT, p STRING) USING delta PARTITIONED BY (p)
            TBLPROPERTIES ('delta.checkpointPolicy' = 'v2', 'delta.enableDeletionVectors' = 'true')""")
    for k in range(3):
        spark.range(k * 10, k * 10 + 10).selectExpr("id", "cast(id % 2 as string) p") \
            .write.format("delta").mode("append").save(p)
    sql(f"DELETE FROM delta.`{p}` WHERE id = 4")
    spark._jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, p).checkpoint()
    sql(f"DELETE FROM delta.`{p}` WHERE id = 5")
    done("v2checkpoint")

    spark.stop()
    # Hadoop's checksum files are not part of the tables.
    for f in glob.glob(os.path.join(out, "**", ".*.crc"), recursive=True):
        os.remove(f)
    for d in glob.glob(os.path.join(out, "*", "_delta_log", "_staged_commits")):
        if not os.listdir(d):
            os.rmdir(d)
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(tables, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
