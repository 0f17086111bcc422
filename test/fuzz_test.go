package test

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmooncake/mooncake/test/pgtest"
)

// fuzzTypes are the columns FuzzRowDecoder decodes: the decoder's inline
// fast paths and PostgreSQL's receive and input functions of types with
// structure (numeric, arrays, jsonb, interval).
var fuzzTypes = []string{"int4", "int8", "float8", "bool", "date", "timestamp", "text", "numeric", "int4[]", "jsonb", "uuid", "interval"}

// FuzzRowDecoder feeds the FDW's row decoder (fdw/rowcodec.c), inside a
// backend, arbitrary row descriptions and rows, as a sidecar (or anything
// that reaches the backend's connection to it) could send: each must
// decode or fail with an error, never crash the backend. The seed corpus
// runs with go test; explore with
// `go test -tags=duckdb_arrow -run '^$' -fuzz FuzzRowDecoder ./test/`.
func FuzzRowDecoder(f *testing.F) {
	desc := func(formats ...byte) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(len(formats)))
		return append(b, formats...)
	}
	row := func(fields ...[]byte) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(len(fields)))
		for _, v := range fields {
			if v == nil {
				b = binary.BigEndian.AppendUint32(b, 0xffffffff)
				continue
			}
			b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
			b = append(b, v...)
		}
		return b
	}
	u32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	u64 := func(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
	binaryAll := desc(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
	textAll := desc(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	good := row(u32(7), u64(8), u64(0x3ff0000000000000), []byte{1}, u32(100), u64(1<<40), []byte("text"),
		[]byte{0, 1, 0, 0, 0, 0, 0, 2, 0, 12}, // numeric 12.00 in numeric_send's layout
		nil, append([]byte{1}, `{"a": 1}`...), make([]byte, 16), make([]byte, 16))
	text := row([]byte("7"), []byte("8"), []byte("1.5"), []byte("t"), []byte("2024-01-01"), []byte("2024-01-01 10:00"),
		[]byte("x"), []byte("NaN"), []byte("{1,NULL,3}"), []byte(`[1, {"b": null}]`),
		[]byte("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), []byte("1 day 02:00"))
	f.Add(binaryAll, append(good, good...))
	f.Add(textAll, text)
	f.Add(binaryAll, good[:len(good)/2])
	f.Add(desc(1, 1, 1), good)
	f.Add(desc(2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), text)
	f.Add(textAll, row([]byte{0xff, 0xfe}, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil))
	f.Add(binaryAll, row(u32(1), u32(2)))
	f.Add([]byte{}, []byte{})

	c := pgtest.Start(f)
	c.CreateExtension(f, "postgres")
	conn := c.Conn(f, "postgres")
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, description, rows []byte) {
		_, err := conn.Exec(ctx, `SELECT mooncake.decode_rows($1::regtype[], $2, $3)`, fuzzTypes, description, rows)
		var pgErr *pgconn.PgError
		if err != nil && !errors.As(err, &pgErr) {
			t.Fatalf("decode_rows(%x, %x): the backend failed: %v", description, rows, err)
		}
		if err := conn.Ping(ctx); err != nil {
			t.Fatalf("decode_rows(%x, %x): the backend is gone: %v", description, rows, err)
		}
	})
}
