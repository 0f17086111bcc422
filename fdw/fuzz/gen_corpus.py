#!/usr/bin/env python3
"""Write the seed corpus of rowcodec_fuzz into corpus/ (next to this file).

Each seed is an input as rowcodec_fuzz.c's header comment lays it out: a
header (columns, flags, column types), a T frame's payload, D frames'
payloads. Column types are indexes into fuzz_column_types[] in shim.c.
Run it again after changing that list or the layout; the files are small
(< 1 KiB) and committed.
"""

import os
import struct

# fuzz_column_types[] of shim.c, by index
T = {name: i for i, name in enumerate([
    "int2", "int4", "int8", "float4", "float8", "bool", "date", "timestamp",
    "timestamptz", "timestamp(3)", "timestamptz(0)", "text", "varchar",
    "varchar(5)", "bpchar(3)", "name", "json", "jsonb", "numeric",
    "numeric(10,2)", "bytea", "int4[]", "text[]", "uuid", "interval",
    "text_domain", "int4_domain",
])}

LATIN1, REJECT = 0x01, 0x10


def recv_short(n):
    return n << 1


def desc(*formats):
    return struct.pack(">H", len(formats)) + bytes(formats)


def row(*fields):
    b = struct.pack(">H", len(fields))
    for v in fields:
        if v is None:
            b += struct.pack(">i", -1)
        else:
            b += struct.pack(">i", len(v)) + v
    return b


def field_len(n, v):
    """A field whose length word says n, whatever it holds."""
    return struct.pack(">i", n) + v


def seed(types, tframe, rows, flags=0, extra=0, rotation=0):
    b = bytes([(len(types) - 1) | extra << 3 | rotation << 5, flags])
    b += bytes(T[t] for t in types)
    return b + bytes([len(tframe)]) + tframe + rows


i16 = lambda v: struct.pack(">h", v)
i32 = lambda v: struct.pack(">i", v)
i64 = lambda v: struct.pack(">q", v)
f32 = lambda v: struct.pack(">f", v)
f64 = lambda v: struct.pack(">d", v)

# numeric 12.00 in numeric_send's layout: ndigits, weight, sign, dscale, digits
NUMERIC_12 = struct.pack(">hhhhh", 1, 0, 0, 2, 12)
# int4[] {1,2} in array_send's layout: ndim, flags, elemtype, dim, lbound, elems
INT4_ARRAY = struct.pack(">iiiii", 1, 0, 23, 2, 1) + row(i32(1), i32(2))[2:]
INTERVAL_1D = i64(7200 * 1000000) + i32(1) + i32(0)
UUID = bytes.fromhex("a0eebc999c0b4ef8bb6d6bb9bd380a11")

FAST = ["int2", "int4", "int8", "float4", "float8", "bool", "date", "timestamp"]
fast_row = row(i16(-3), i32(7), i64(1 << 40), f32(1.5), f64(-2.25), b"\x01",
               i32(8766), i64(757382400000000))
RECV = ["timestamptz", "timestamp(3)", "numeric", "bytea", "int4[]", "uuid",
        "interval", "jsonb"]
recv_row = row(i64(0), i64(1000), NUMERIC_12, b"\x00\xffbytes", INT4_ARRAY,
               UUID, INTERVAL_1D, b'\x01{"a": 1}')
TEXT = ["int4", "text", "varchar(5)", "name", "json", "numeric", "date", "text[]"]
text_row = row(b"42", "caf\u00e9".encode(), b"abc", b"relname", b'[1, {"b": null}]',
               b"NaN", b"2024-01-01", b'{a,NULL,"b c"}')
TEXTLIKE = ["text", "varchar", "bpchar(3)", "name", "json", "text_domain",
            "int4_domain", "timestamptz(0)"]
textlike_row = row("\u00e9t\u00e9".encode(), b"v", b"abc", b"n", b"{}",
                   b"domain", i32(5), i64(-1))

SEEDS = {
    # well-formed rows
    "binary_fast_paths": seed(FAST, desc(*[1] * 8), fast_row + fast_row),
    "binary_receive": seed(RECV, desc(*[1] * 8), recv_row + row(*[None] * 8)),
    "text_input": seed(TEXT, desc(*[0] * 8), text_row),
    "binary_text_like": seed(TEXTLIKE, desc(*[1] * 8), textlike_row),
    "mixed_formats": seed(["int4", "text", "numeric", "bool"], desc(1, 0, 0, 1),
                          row(i32(1), b"x", b"1.5", b"\x00") + row(None, b"", None, b"\x01")),
    "nulls_sparse_attnums": seed(["int8", "text", "uuid"], desc(1, 1, 1),
                                 row(None, None, None) + row(i64(1), b"t", UUID),
                                 extra=3, rotation=5),
    "latin1_database": seed(["text", "varchar"], desc(0, 1),
                            row("\u00e9".encode(), b"ascii") + row(b"a", "\u20ac".encode()),
                            flags=LATIN1),
    "timestamp_infinity": seed(["timestamp", "date"], desc(1, 1),
                               row(i64(0x7fffffffffffffff), i32(0x7fffffff))),
    "empty_rows": seed(["int4"], desc(1), b""),
    # malformed frames and values
    "truncated_row": seed(FAST, desc(*[1] * 8), fast_row + fast_row[:20]),
    "truncated_description": seed(FAST, desc(*[1] * 8)[:5], fast_row),
    "description_count_mismatch": seed(["int4", "int4"], desc(1, 1, 1), row(i32(1), i32(2))),
    "bad_format": seed(["int4", "text"], desc(1, 2), row(i32(1), b"x")),
    "field_count_mismatch": seed(["int4", "int4"], desc(1, 1), row(i32(1))),
    "field_past_frame": seed(["bytea"], desc(1),
                             struct.pack(">H", 1) + field_len(100, b"short")),
    "negative_length": seed(["text"], desc(0), struct.pack(">H", 1) + field_len(-2, b"")),
    "wrong_fixed_length": seed(["int4", "float8"], desc(1, 1), row(b"\x00\x01\x02", f64(1))),
    "date_out_of_range": seed(["date"], desc(1), row(i32(-0x7ffffff0))),
    "invalid_utf8": seed(["text", "json"], desc(0, 1), row(b"\xff\xfe", b"\x00")),
    "receive_stops_short": seed(["numeric", "bytea"], desc(1, 1),
                                row(NUMERIC_12, b"abc"), flags=recv_short(2)),
    "type_function_rejects": seed(["int4", "jsonb"], desc(0, 1), row(b"1", b"!x") + row(b"!", None),
                                  flags=REJECT),
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        assert len(data) < 1024, name
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
