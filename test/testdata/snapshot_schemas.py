#!/usr/bin/env python3
"""Print the schemas of a pg_mooncake mirror's Iceberg snapshots, as pyiceberg reads them.

Usage: snapshot_schemas.py CATALOG_URI IDENTIFIER

Loads IDENTIFIER ("<schema>.<mirror>") from pyiceberg's SqlCatalog named
"mooncake" at CATALOG_URI and prints one JSON object:

  {"current": [column names of the table's current schema],
   "current_rows": rows of a scan of the current snapshot,
   "oldest": [column names of a scan of the oldest snapshot kept],
   "oldest_rows": rows of that scan}

The scans read every data file with the schema of their snapshot, so an
old snapshot shows the columns it had, whatever came after.
"""

import json
import sys

from pyiceberg.catalog.sql import SqlCatalog


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    uri, identifier = sys.argv[1], sys.argv[2]
    table = SqlCatalog("mooncake", uri=uri).load_table(identifier)
    current = table.scan().to_arrow()
    snapshots = sorted(table.metadata.snapshots, key=lambda s: s.sequence_number)
    oldest = table.scan(snapshot_id=snapshots[0].snapshot_id).to_arrow()
    print(json.dumps({
        "current": [f.name for f in table.schema().fields],
        "current_rows": current.num_rows,
        "oldest": oldest.schema.names,
        "oldest_rows": oldest.num_rows,
    }))


if __name__ == "__main__":
    main()
