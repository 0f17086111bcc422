package flight

import (
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pgmooncake/mooncake/catalog"
)

// A scan's chunks gathered into one batch keep every value, NULLs and
// the extension types included, and release all their memory.
func TestBatcher(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cols := []struct {
		oid    uint32
		typmod int32
		value  func(i int) *string
	}{
		{catalog.OIDInt8, -1, func(i int) *string { return text(fmt.Sprint(i)) }},
		{catalog.OIDNumeric, 12<<16 | 2 + 4, func(i int) *string {
			if i%7 == 3 {
				return nil
			}
			return text(fmt.Sprintf("%d.%02d", i, i%100))
		}},
		{catalog.OIDText, -1, func(i int) *string { return text(fmt.Sprintf("s%d", i%13)) }},
		{catalog.OIDUUID, -1, func(i int) *string { return text(fmt.Sprintf("00000000-0000-0000-0000-%012d", i)) }},
		{oidJSONB, -1, func(i int) *string { return text(fmt.Sprintf(`{"i": %d}`, i)) }},
		{1007, -1, func(i int) *string { return text(fmt.Sprintf("{%d,NULL}", i)) }}, // int4[]
	}
	fields := make([]arrow.Field, len(cols))
	for j, c := range cols {
		fields[j] = field(fmt.Sprintf("c%d", j), c.oid, c.typmod)
	}
	schema := arrow.NewSchema(fields, nil)
	chunk := func(from, n int) []arrow.Array {
		arrs := make([]arrow.Array, len(cols))
		for j, c := range cols {
			b := NewTextBuilder(mem, c.oid, c.typmod)
			for i := from; i < from+n; i++ {
				if v := c.value(i); v == nil {
					b.AppendNull()
				} else if err := b.Append(*v); err != nil {
					t.Fatal(err)
				}
			}
			arrs[j] = b.NewArray()
			b.Release()
		}
		return arrs
	}

	b := &batcher{mem: mem, schema: schema, cols: make([][]arrow.Array, len(cols))}
	sizes := []int{5, 1, 17}
	from := 0
	for _, n := range sizes {
		b.add(chunk(from, n), int64(n))
		from += n
	}
	if b.full() {
		t.Fatalf("23 small rows make a full batch (%d bytes)", b.bytes)
	}
	rec, err := b.take()
	if err != nil {
		t.Fatal(err)
	}
	if rec.NumRows() != int64(from) || !rec.Schema().Equal(schema) {
		t.Fatalf("batch of %d rows, schema %s; want %d rows, %s", rec.NumRows(), rec.Schema(), from, schema)
	}
	for j, c := range cols {
		for i := range from {
			got, null := FormatText(rec.Column(j), i, c.oid, c.typmod)
			want := c.value(i)
			if null != (want == nil) || (want != nil && got != *want) {
				t.Errorf("column %d row %d: %q (null %v); want %v", j, i, got, null, want)
			}
		}
	}
	rec.Release()
	if b.rows != 0 || b.bytes != 0 {
		t.Fatalf("after take: %d rows, %d bytes", b.rows, b.bytes)
	}

	// One chunk goes as it is; a batch fills at scanBatchBytes.
	b.add(chunk(0, 3), 3)
	rec, err = b.take()
	if err != nil {
		t.Fatal(err)
	}
	if rec.NumRows() != 3 {
		t.Fatalf("single chunk: %d rows", rec.NumRows())
	}
	rec.Release()
	for !b.full() {
		b.add(chunk(0, 2048), 2048)
	}
	if b.rows > batchRows || b.bytes < scanBatchBytes && b.rows < batchRows {
		t.Fatalf("full at %d rows, %d bytes", b.rows, b.bytes)
	}
	b.release()
}

func text(s string) *string { return &s }
