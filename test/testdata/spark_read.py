#!/usr/bin/env python3
"""Read pg_mooncake's Iceberg tables with Apache Spark and print their rows.

Usage: spark_read.py JDBC_URI WAREHOUSE IDENTIFIER...

Starts one local Spark session whose catalog "mooncake" is Iceberg's
JdbcCatalog on JDBC_URI, the database holding the catalog tables, e.g.

  jdbc:postgresql://127.0.0.1:5432/postgres?user=postgres&currentSchema=mooncake

with WAREHOUSE as its warehouse, then reads every IDENTIFIER
("<schema>.<table>") with Spark SQL. For each table it prints one JSON
object:

  {"table": ..., "columns": [names], "types": [Spark types],
   "rows": n, "data_files": n, "delete_files": n}

followed by its n rows, one JSON list each, in no particular order.
Values are printed in the canonical text form that the Go test also
produces from PostgreSQL:

  integers, decimals   decimal text ("12.500" keeps the scale)
  real, double         the IEEE 754 bits, big-endian, in hex
  boolean              "true" or "false"
  date                 days since 1970-01-01
  timestamp(tz)        microseconds since 1970-01-01 00:00 UTC
  strings              as they are
  NULL                 null

Files are read through Iceberg's ResolvingFileIO: s3:// objects with
S3FileIO, other paths with HadoopFileIO. With MOONCAKE_S3_ENDPOINT set
(host:port of an S3-compatible server, plain HTTP, path-style), S3FileIO
goes there with the keys in MOONCAKE_S3_KEY_ID and MOONCAKE_S3_SECRET.
MOONCAKE_SPARK_JARS names the jars to add (comma-separated): Iceberg's
Spark runtime and AWS bundle and the PostgreSQL JDBC driver.
"""

import json
import os
import struct
import sys

from pyspark.sql import SparkSession
from pyspark.sql import types as T


def session(uri, warehouse):
    cat = "spark.sql.catalog.mooncake"
    b = (SparkSession.builder
         .appName("mooncake-spark-read")
         .master("local[2]")
         .config("spark.driver.memory", "768m")
         .config("spark.ui.enabled", "false")
         .config("spark.ui.showConsoleProgress", "false")
         .config("spark.driver.host", "127.0.0.1")
         .config("spark.driver.bindAddress", "127.0.0.1")
         .config("spark.sql.session.timeZone", "UTC")
         .config("spark.sql.shuffle.partitions", "2")
         .config("spark.jars", os.environ.get("MOONCAKE_SPARK_JARS", ""))
         .config(cat, "org.apache.iceberg.spark.SparkCatalog")
         .config(cat + ".type", "jdbc")
         .config(cat + ".uri", uri)
         .config(cat + ".jdbc.schema-version", "V1")
         .config(cat + ".warehouse", warehouse)
         .config(cat + ".io-impl", "org.apache.iceberg.io.ResolvingFileIO")
         .config(cat + ".cache-enabled", "false"))
    endpoint = os.environ.get("MOONCAKE_S3_ENDPOINT")
    if endpoint:
        b = (b.config(cat + ".s3.endpoint", "http://" + endpoint)
             .config(cat + ".s3.path-style-access", "true")
             .config(cat + ".s3.access-key-id", os.environ.get("MOONCAKE_S3_KEY_ID", ""))
             .config(cat + ".s3.secret-access-key", os.environ.get("MOONCAKE_S3_SECRET", ""))
             .config(cat + ".client.region", "us-east-1"))
    spark = b.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def quote(name):
    return "`" + name.replace("`", "``") + "`"


def projection(field):
    """Spark SQL giving the field's canonical text, or the field itself
    when Python finishes it (floats, decimals)."""
    c = quote(field.name)
    t = field.dataType
    if isinstance(t, T.DateType):
        return f"CAST(unix_date({c}) AS STRING)"
    if isinstance(t, T.TimestampType):
        return f"CAST(unix_micros({c}) AS STRING)"
    if isinstance(t, T.TimestampNTZType):
        # The session's time zone is UTC: the same microseconds.
        return f"CAST(unix_micros(CAST({c} AS TIMESTAMP)) AS STRING)"
    if isinstance(t, (T.BooleanType, T.ByteType, T.ShortType, T.IntegerType, T.LongType)):
        return f"CAST({c} AS STRING)"
    if isinstance(t, (T.StringType, T.FloatType, T.DoubleType, T.DecimalType)):
        return c
    if isinstance(t, T.BinaryType):
        return f"lower(hex({c}))"
    raise SystemExit(f"{field.name}: unexpected Spark type {t.simpleString()}")


def finisher(t):
    if isinstance(t, T.FloatType):
        return lambda v: None if v is None else struct.pack(">f", v).hex()
    if isinstance(t, T.DoubleType):
        return lambda v: None if v is None else struct.pack(">d", v).hex()
    if isinstance(t, T.DecimalType):
        return lambda v: None if v is None else format(v, "f")
    return lambda v: v


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    uri, warehouse, identifiers = sys.argv[1], sys.argv[2], sys.argv[3:]
    spark = session(uri, warehouse)
    out = sys.stdout
    for ident in identifiers:
        name = "mooncake." + ".".join(quote(p) for p in ident.split("."))
        df = spark.table(name)
        fields = df.schema.fields
        sql = "SELECT " + ", ".join(projection(f) for f in fields) + " FROM " + name
        rows = spark.sql(sql).collect()
        files = spark.sql(f"SELECT content, count(*) FROM {name}.files GROUP BY content").collect()
        counts = {r[0]: r[1] for r in files}
        fin = [finisher(f.dataType) for f in fields]
        out.write(json.dumps({
            "table": ident,
            "columns": [f.name for f in fields],
            "types": [f.dataType.simpleString() for f in fields],
            "rows": len(rows),
            "data_files": counts.get(0, 0),
            "delete_files": counts.get(1, 0) + counts.get(2, 0),
        }) + "\n")
        for r in rows:
            out.write(json.dumps([f(v) for f, v in zip(fin, r)]) + "\n")
        out.flush()
    spark.stop()


if __name__ == "__main__":
    main()
