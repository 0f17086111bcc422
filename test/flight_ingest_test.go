package test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	osexec "os/exec"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/extensions"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pgmooncake/mooncake/test/pgtest"
)

// ingestOpts are ExecuteIngest's options for one of ADBC's modes.
func ingestOpts(table, mode string) *flightsql.ExecuteIngestOpts {
	o := &flightsql.TableDefinitionOptions{}
	switch mode {
	case "create":
		o.IfNotExist, o.IfExists = flightsql.TableDefinitionOptionsTableNotExistOptionCreate, flightsql.TableDefinitionOptionsTableExistsOptionFail
	case "append":
		o.IfNotExist, o.IfExists = flightsql.TableDefinitionOptionsTableNotExistOptionFail, flightsql.TableDefinitionOptionsTableExistsOptionAppend
	case "replace":
		o.IfNotExist, o.IfExists = flightsql.TableDefinitionOptionsTableNotExistOptionCreate, flightsql.TableDefinitionOptionsTableExistsOptionReplace
	case "create_append":
		o.IfNotExist, o.IfExists = flightsql.TableDefinitionOptionsTableNotExistOptionCreate, flightsql.TableDefinitionOptionsTableExistsOptionAppend
	}
	return &flightsql.ExecuteIngestOpts{Table: table, TableDefinitionOptions: o}
}

// batchOf builds a record batch from columns; each column is a function
// appending its values to the field's builder.
func batchOf(t *testing.T, schema *arrow.Schema, fill ...func(b array.Builder)) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i, f := range fill {
		f(b.Field(i))
	}
	return b.NewRecordBatch()
}

func ingest(ctx context.Context, cl *flightsql.Client, opts *flightsql.ExecuteIngestOpts, schema *arrow.Schema, recs ...arrow.RecordBatch) (int64, error) {
	rdr, err := array.NewRecordReader(schema, recs)
	if err != nil {
		return 0, err
	}
	defer rdr.Release()
	return cl.ExecuteIngest(ctx, rdr, opts)
}

func ptr[T any](v T) *T { return &v }

func wantStatus(t *testing.T, what string, err error, code codes.Code, sqlstate string) {
	t.Helper()
	if status.Code(err) != code || sqlStateOf(err) != sqlstate {
		t.Errorf("%s: %v; want %s with SQLSTATE %s", what, err, code, sqlstate)
	}
}

// TestFlightIngest loads Arrow batches with Flight SQL's bulk ingest
// (Go's flightsql.Client.ExecuteIngest): a created columnstore table with
// many types, appends to it and to a heap table, replace, the modes'
// errors, privileges, and values a column cannot hold (nothing kept).
func TestFlightIngest(t *testing.T) {
	_, conn, addr := startFlight(t)
	cl, ctx := flightClient(t, addr, "postgres", "")
	exec(t, conn, `SET TimeZone = 'UTC'`)

	uuidT := extensions.NewUUIDType()
	jsonT, _ := extensions.NewJSONType(arrow.BinaryTypes.String)
	wide := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "i8", Type: arrow.PrimitiveTypes.Int8, Nullable: true},
		{Name: "i16", Type: arrow.PrimitiveTypes.Int16, Nullable: true},
		{Name: "i32", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "u8", Type: arrow.PrimitiveTypes.Uint8, Nullable: true},
		{Name: "u16", Type: arrow.PrimitiveTypes.Uint16, Nullable: true},
		{Name: "u32", Type: arrow.PrimitiveTypes.Uint32, Nullable: true},
		{Name: "u64", Type: arrow.PrimitiveTypes.Uint64, Nullable: true},
		{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		{Name: "f64", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "ls", Type: arrow.BinaryTypes.LargeString, Nullable: true},
		{Name: "bin", Type: arrow.BinaryTypes.Binary, Nullable: true},
		{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Nanosecond}, Nullable: true},
		{Name: "tstz", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, Nullable: true},
		{Name: "dec", Type: &arrow.Decimal128Type{Precision: 12, Scale: 3}, Nullable: true},
		{Name: "t", Type: arrow.FixedWidthTypes.Time64ns, Nullable: true},
		{Name: "li", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32), Nullable: true},
		{Name: "lt", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "u", Type: uuidT, Nullable: true},
		{Name: "j", Type: jsonT, Nullable: true},
	}, nil)
	wantTypes := "id bigint, i8 smallint, i16 smallint, i32 integer, u8 smallint, u16 integer, u32 bigint, " +
		"u64 numeric(20,0), f32 real, f64 double precision, b boolean, s text, ls text, bin bytea, d date, " +
		"ts timestamp without time zone, tstz timestamp with time zone, dec numeric(12,3), t time without time zone, " +
		"li integer[], lt text[], u uuid, j jsonb"
	u1 := uuid.MustParse("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
	u3 := uuid.MustParse("00000000-0000-0000-0000-000000000001")
	// rows 1 (extremes) and 2 (all NULL), then a second batch with row 3
	batch1 := batchOf(t, wide,
		func(b array.Builder) { b.(*array.Int64Builder).AppendValues([]int64{1, 2}, nil) },
		func(b array.Builder) { b.(*array.Int8Builder).AppendValues([]int8{-128, 0}, []bool{true, false}) },
		func(b array.Builder) { b.(*array.Int16Builder).AppendValues([]int16{-32768, 0}, []bool{true, false}) },
		func(b array.Builder) {
			b.(*array.Int32Builder).AppendValues([]int32{2147483647, 0}, []bool{true, false})
		},
		func(b array.Builder) { b.(*array.Uint8Builder).AppendValues([]uint8{255, 0}, []bool{true, false}) },
		func(b array.Builder) { b.(*array.Uint16Builder).AppendValues([]uint16{65535, 0}, []bool{true, false}) },
		func(b array.Builder) {
			b.(*array.Uint32Builder).AppendValues([]uint32{4294967295, 0}, []bool{true, false})
		},
		func(b array.Builder) {
			b.(*array.Uint64Builder).AppendValues([]uint64{18446744073709551615, 0}, []bool{true, false})
		},
		func(b array.Builder) { b.(*array.Float32Builder).AppendValues([]float32{1.5, 0}, []bool{true, false}) },
		func(b array.Builder) { b.(*array.Float64Builder).AppendValues([]float64{0.1, 0}, []bool{true, false}) },
		func(b array.Builder) {
			b.(*array.BooleanBuilder).AppendValues([]bool{true, false}, []bool{true, false})
		},
		func(b array.Builder) {
			b.(*array.StringBuilder).AppendValues([]string{"héllo \"q\"\t", ""}, []bool{true, false})
		},
		func(b array.Builder) {
			b.(*array.LargeStringBuilder).AppendValues([]string{"large", ""}, []bool{true, false})
		},
		func(b array.Builder) {
			b.(*array.BinaryBuilder).AppendValues([][]byte{{0, 1, 255}, nil}, []bool{true, false})
		},
		func(b array.Builder) {
			b.(*array.Date32Builder).AppendValues([]arrow.Date32{19723, 0}, []bool{true, false})
		},
		func(b array.Builder) {
			b.(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{1704067200123456789, 0}, []bool{true, false})
		},
		func(b array.Builder) {
			b.(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{1704067200123, 0}, []bool{true, false})
		},
		func(b array.Builder) {
			b.(*array.Decimal128Builder).AppendValues([]decimal128.Num{decimal128.FromI64(12345678), {}}, []bool{true, false})
		},
		func(b array.Builder) {
			b.(*array.Time64Builder).AppendValues([]arrow.Time64{3723_000_001_000, 0}, []bool{true, false})
		},
		func(b array.Builder) {
			lb := b.(*array.ListBuilder)
			vb := lb.ValueBuilder().(*array.Int32Builder)
			lb.Append(true)
			vb.AppendValues([]int32{1, 0, 3}, []bool{true, false, true})
			lb.AppendNull()
		},
		func(b array.Builder) {
			lb := b.(*array.ListBuilder)
			vb := lb.ValueBuilder().(*array.StringBuilder)
			lb.Append(true)
			vb.AppendValues([]string{"a", "b c"}, nil)
			lb.AppendNull()
		},
		func(b array.Builder) {
			ub := b.(*extensions.UUIDBuilder)
			ub.Append(u1)
			ub.AppendNull()
		},
		func(b array.Builder) {
			jb := b.(*array.ExtensionBuilder).StorageBuilder().(*array.StringBuilder)
			jb.Append(`{"k": [1, 2]}`)
			jb.AppendNull()
		},
	)
	batch2 := batchOf(t, wide,
		func(b array.Builder) { b.(*array.Int64Builder).Append(3) },
		func(b array.Builder) { b.(*array.Int8Builder).Append(0) },
		func(b array.Builder) { b.(*array.Int16Builder).Append(1) },
		func(b array.Builder) { b.(*array.Int32Builder).Append(-1) },
		func(b array.Builder) { b.(*array.Uint8Builder).Append(0) },
		func(b array.Builder) { b.(*array.Uint16Builder).Append(0) },
		func(b array.Builder) { b.(*array.Uint32Builder).Append(0) },
		func(b array.Builder) { b.(*array.Uint64Builder).Append(0) },
		func(b array.Builder) { b.(*array.Float32Builder).Append(float32(math.NaN())) },
		func(b array.Builder) { b.(*array.Float64Builder).Append(math.Inf(1)) },
		func(b array.Builder) { b.(*array.BooleanBuilder).Append(false) },
		func(b array.Builder) { b.(*array.StringBuilder).Append("") },
		func(b array.Builder) { b.(*array.LargeStringBuilder).Append("") },
		func(b array.Builder) { b.(*array.BinaryBuilder).Append([]byte{}) },
		func(b array.Builder) { b.(*array.Date32Builder).Append(-1) },
		func(b array.Builder) { b.(*array.TimestampBuilder).Append(-1) },
		func(b array.Builder) { b.(*array.TimestampBuilder).Append(0) },
		func(b array.Builder) { b.(*array.Decimal128Builder).Append(decimal128.FromI64(-1)) },
		func(b array.Builder) { b.(*array.Time64Builder).Append(0) },
		func(b array.Builder) { b.(*array.ListBuilder).Append(true) },
		func(b array.Builder) {
			lb := b.(*array.ListBuilder)
			lb.Append(true)
			lb.ValueBuilder().AppendNull()
		},
		func(b array.Builder) { b.(*extensions.UUIDBuilder).Append(u3) },
		func(b array.Builder) {
			b.(*array.ExtensionBuilder).StorageBuilder().(*array.StringBuilder).Append(`[]`)
		},
	)
	want := `1|-128|-32768|2147483647|255|65535|4294967295|18446744073709551615|1.5|0.1|t|héllo "q"	|large|\x0001ff|2024-01-01|2024-01-01 00:00:00.123456|2024-01-01 00:00:00.123+00|12345.678|01:02:03.000001|{1,NULL,3}|{a,"b c"}|0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0|{"k": [1, 2]}
2|∅|∅|∅|∅|∅|∅|∅|∅|∅|∅|∅|∅|∅|∅|∅|∅|∅|∅|∅|∅|∅|∅
3|0|1|-1|0|0|0|0|NaN|Infinity|f|||\x|1969-12-31|1969-12-31 23:59:59.999999|1970-01-01 00:00:00+00|-0.001|00:00:00|{}|{NULL}|00000000-0000-0000-0000-000000000001|[]
`
	columnTypes := func(table string) string {
		return queryString(t, conn, `SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
			FROM pg_attribute WHERE attrelid = '`+table+`'::regclass AND attnum > 0 AND NOT attisdropped`)
	}
	isColumnstore := func(table string) bool {
		return queryString(t, conn, `SELECT count(*) FROM mooncake.columnstore_tables WHERE table_name = '`+table+`' AND source IS NULL`) == "1"
	}

	t.Run("create", func(t *testing.T) {
		n, err := ingest(ctx, cl, ingestOpts("wide", "create"), wide, batch1, batch2)
		if err != nil || n != 3 {
			t.Fatalf("create: %d rows, %v; want 3", n, err)
		}
		if !isColumnstore("wide") {
			t.Errorf("wide is not a columnstore table")
		}
		if got := columnTypes("wide"); got != wantTypes {
			t.Errorf("columns:\n%s\nwant:\n%s", got, wantTypes)
		}
		if got := rowsText(pgRows(t, conn, `SELECT * FROM wide ORDER BY id`)); got != want {
			t.Errorf("rows:\n%s\nwant:\n%s", got, want)
		}
		// and through Flight, the same Arrow types back for those that have them
		schema, _, err := flightRows(ctx, cl, `SELECT id, i16, i32, f32, f64, b, s, bin, d, tstz, dec, t, li, u, j FROM wide`)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range schema.Fields() {
			if i := wide.FieldIndices(f.Name); len(i) == 1 && !arrow.TypeEqual(f.Type, wide.Field(i[0]).Type) &&
				f.Name != "tstz" && f.Name != "t" {
				t.Errorf("column %s reads back as %s; sent %s", f.Name, f.Type, wide.Field(i[0]).Type)
			}
		}
	})

	t.Run("create_exists", func(t *testing.T) {
		_, err := ingest(ctx, cl, ingestOpts("wide", "create"), wide, batch2)
		wantStatus(t, "create on an existing table", err, codes.AlreadyExists, "42P07")
		if got := queryString(t, conn, `SELECT count(*) FROM wide`); got != "3" {
			t.Errorf("wide has %s rows; want 3", got)
		}
	})

	t.Run("append_columnstore", func(t *testing.T) {
		part := arrow.NewSchema([]arrow.Field{{Name: "S", Type: arrow.BinaryTypes.String, Nullable: true},
			{Name: "id", Type: arrow.PrimitiveTypes.Int32}}, nil)
		rec := batchOf(t, part,
			func(b array.Builder) { b.(*array.StringBuilder).AppendValues([]string{"four", "five"}, nil) },
			func(b array.Builder) { b.(*array.Int32Builder).AppendValues([]int32{4, 5}, nil) })
		n, err := ingest(ctx, cl, ingestOpts("wide", "append"), part, rec)
		if err != nil || n != 2 {
			t.Fatalf("append: %d rows, %v; want 2", n, err)
		}
		if got := rowsText(pgRows(t, conn, `SELECT id, s, i8 FROM wide WHERE id > 3 ORDER BY id`)); got != "4|four|∅\n5|five|∅\n" {
			t.Errorf("appended rows:\n%s", got)
		}
		// create_append appends too
		n, err = ingest(ctx, cl, ingestOpts("wide", "create_append"), wide, batch2)
		if err != nil || n != 1 {
			t.Fatalf("create_append: %d rows, %v; want 1", n, err)
		}
		if got := queryString(t, conn, `SELECT count(*) FROM wide`); got != "6" {
			t.Errorf("wide has %s rows; want 6", got)
		}
	})

	exec(t, conn, `CREATE DOMAIN short_text AS varchar(10)`)
	exec(t, conn, `CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')`)
	exec(t, conn, `CREATE TABLE heap (id int PRIMARY KEY, name short_text, amount numeric(10,2), at timestamptz,
		m mood, tags text[], note text DEFAULT 'default note')`)
	exec(t, conn, `INSERT INTO heap (id, name) VALUES (0, 'before')`)
	heapSchema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "at", Type: &arrow.TimestampType{Unit: arrow.Second}, Nullable: true},
		{Name: "m", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}, Nullable: true},
		{Name: "tags", Type: arrow.LargeListOf(arrow.BinaryTypes.String), Nullable: true},
	}, nil)
	heapBatch := func(ids ...int64) arrow.RecordBatch {
		return batchOf(t, heapSchema,
			func(b array.Builder) { b.(*array.Int64Builder).AppendValues(ids, nil) },
			func(b array.Builder) {
				for _, id := range ids {
					b.(*array.StringBuilder).Append("n" + strings.Repeat("x", int(id%3)))
				}
			},
			func(b array.Builder) {
				for _, id := range ids {
					b.(*array.Float64Builder).Append(float64(id) + 0.25)
				}
			},
			func(b array.Builder) {
				for _, id := range ids {
					b.(*array.TimestampBuilder).Append(arrow.Timestamp(1700000000 + id))
				}
			},
			func(b array.Builder) {
				for _, id := range ids {
					b.(*array.BinaryDictionaryBuilder).AppendString([]string{"sad", "ok", "happy"}[id%3])
				}
			},
			func(b array.Builder) {
				lb := b.(*array.LargeListBuilder)
				for _, id := range ids {
					lb.Append(true)
					lb.ValueBuilder().(*array.StringBuilder).AppendValues([]string{"t", strings.Repeat("u", int(id%5))}, nil)
				}
			})
	}

	t.Run("append_heap", func(t *testing.T) {
		n, err := ingest(ctx, cl, ingestOpts("heap", "append"), heapSchema, heapBatch(1, 2), heapBatch(3))
		if err != nil || n != 3 {
			t.Fatalf("append to heap: %d rows, %v; want 3", n, err)
		}
		want := `0|before|∅|∅|∅|∅|default note
1|nx|1.25|2023-11-14 22:13:21+00|ok|{t,u}|default note
2|nxx|2.25|2023-11-14 22:13:22+00|happy|{t,uu}|default note
3|n|3.25|2023-11-14 22:13:23+00|sad|{t,uuu}|default note
`
		if got := rowsText(pgRows(t, conn, `SELECT * FROM heap ORDER BY id`)); got != want {
			t.Errorf("heap:\n%s\nwant:\n%s", got, want)
		}
	})

	t.Run("rollback", func(t *testing.T) {
		before := rowsText(pgRows(t, conn, `SELECT * FROM heap ORDER BY id`))
		// the second batch's id does not fit integer: nothing is kept
		_, err := ingest(ctx, cl, ingestOpts("heap", "append"), heapSchema, heapBatch(10, 11), heapBatch(1<<40))
		wantStatus(t, "an id beyond integer", err, codes.InvalidArgument, "22003")
		if err != nil && !strings.Contains(err.Error(), `column "id"`) {
			t.Errorf("the error does not name the column: %v", err)
		}
		// a duplicate key, which PostgreSQL finds
		_, err = ingest(ctx, cl, ingestOpts("heap", "append"), heapSchema, heapBatch(20), heapBatch(1))
		wantStatus(t, "a duplicate key", err, codes.InvalidArgument, "23505")
		// a value the domain's varchar(10) cannot hold
		long := batchOf(t, arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "name", Type: arrow.BinaryTypes.String}}, nil),
			func(b array.Builder) { b.(*array.Int64Builder).AppendValues([]int64{30, 31}, nil) },
			func(b array.Builder) {
				b.(*array.StringBuilder).AppendValues([]string{"ok", "far too long a name"}, nil)
			})
		_, err = ingest(ctx, cl, ingestOpts("heap", "append"), long.Schema(), long)
		wantStatus(t, "a name beyond varchar(10)", err, codes.InvalidArgument, "22001")
		if after := rowsText(pgRows(t, conn, `SELECT * FROM heap ORDER BY id`)); after != before {
			t.Errorf("heap changed:\n%s\nwas:\n%s", after, before)
		}
		// a columnstore table: the appended rows go too
		_, err = ingest(ctx, cl, ingestOpts("wide", "append"), heapSchema, heapBatch(100))
		wantStatus(t, "append to wide with fields it lacks", err, codes.InvalidArgument, "42703")
		// a table created in the ingest goes with it
		tm := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "t", Type: arrow.FixedWidthTypes.Time64us}}, nil)
		_, err = ingest(ctx, cl, ingestOpts("fresh", "create"), tm,
			batchOf(t, tm, func(b array.Builder) { b.(*array.Int64Builder).Append(1) }, func(b array.Builder) { b.(*array.Time64Builder).Append(1) }),
			batchOf(t, tm, func(b array.Builder) { b.(*array.Int64Builder).Append(2) }, func(b array.Builder) { b.(*array.Time64Builder).Append(90_000_000_000) }))
		wantStatus(t, "a time past 24:00", err, codes.InvalidArgument, "22008")
		if got := queryString(t, conn, `SELECT to_regclass('fresh')::text`); got != "" {
			t.Errorf("fresh exists after a failed ingest")
		}
	})

	t.Run("replace", func(t *testing.T) {
		s := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)
		rec := batchOf(t, s, func(b array.Builder) { b.(*array.StringBuilder).AppendValues([]string{"only"}, nil) })
		n, err := ingest(ctx, cl, ingestOpts("wide", "replace"), s, rec)
		if err != nil || n != 1 {
			t.Fatalf("replace: %d rows, %v; want 1", n, err)
		}
		if got := columnTypes("wide"); got != "x text" {
			t.Errorf("replaced wide's columns: %s", got)
		}
		if got := rowsText(pgRows(t, conn, `SELECT * FROM wide`)); got != "only\n" || !isColumnstore("wide") {
			t.Errorf("replaced wide: %q, columnstore %v", got, isColumnstore("wide"))
		}
		// replace of a heap table, in another schema, and of a missing one
		exec(t, conn, `CREATE SCHEMA other`)
		exec(t, conn, `CREATE TABLE other.h (a int)`)
		opts := ingestOpts("h", "replace")
		opts.Schema = ptr("other")
		if n, err := ingest(ctx, cl, opts, s, rec); err != nil || n != 1 || !isColumnstore("h") {
			t.Errorf("replace other.h: %d, %v", n, err)
		}
		if n, err := ingest(ctx, cl, ingestOpts("brand_new", "replace"), s, rec); err != nil || n != 1 {
			t.Errorf("replace of a missing table: %d, %v", n, err)
		}
	})

	t.Run("errors", func(t *testing.T) {
		s := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int32}}, nil)
		rec := batchOf(t, s, func(b array.Builder) { b.(*array.Int32Builder).Append(1) })
		_, err := ingest(ctx, cl, ingestOpts("missing", "append"), s, rec)
		wantStatus(t, "append to a missing table", err, codes.NotFound, "42P01")
		opts := ingestOpts("t_other_db", "create")
		opts.Catalog = ptr("some_other_db")
		_, err = ingest(ctx, cl, opts, s, rec)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "some_other_db") {
			t.Errorf("another catalog: %v; want InvalidArgument naming it", err)
		}
		opts = ingestOpts("postgres_ok", "create")
		opts.Catalog = ptr("postgres")
		if _, err := ingest(ctx, cl, opts, s, rec); err != nil {
			t.Errorf("the session's own catalog: %v", err)
		}
		opts = ingestOpts("tmp", "create")
		opts.Temporary = true
		_, err = ingest(ctx, cl, opts, s, rec)
		wantStatus(t, "temporary", err, codes.Unimplemented, "0A000")
		iv := arrow.NewSchema([]arrow.Field{{Name: "span", Type: arrow.FixedWidthTypes.MonthDayNanoInterval}}, nil)
		_, err = ingest(ctx, cl, ingestOpts("iv", "create"), iv,
			batchOf(t, iv, func(b array.Builder) {
				b.(*array.MonthDayNanoIntervalBuilder).Append(arrow.MonthDayNanoInterval{Months: 1})
			}))
		wantStatus(t, "an interval column", err, codes.Unimplemented, "0A000")
		if err != nil && (!strings.Contains(err.Error(), "month_day_nano_interval") || !strings.Contains(err.Error(), `"span"`)) {
			t.Errorf("the error names neither the Arrow type nor the column: %v", err)
		}
	})

	t.Run("privileges", func(t *testing.T) {
		exec(t, conn, `CREATE ROLE reader LOGIN`)
		exec(t, conn, `GRANT SELECT ON heap TO reader`)
		exec(t, conn, `CREATE TABLE cs_owned (id bigint) USING columnstore`)
		exec(t, conn, `GRANT SELECT ON cs_owned TO reader`)
		rcl, rctx := flightClient(t, addr, "reader", "")
		before := rowsText(pgRows(t, conn, `SELECT * FROM heap ORDER BY id`))
		_, err := ingest(rctx, rcl, ingestOpts("heap", "append"), heapSchema, heapBatch(40))
		wantStatus(t, "append without INSERT", err, codes.PermissionDenied, "42501")
		if after := rowsText(pgRows(t, conn, `SELECT * FROM heap ORDER BY id`)); after != before {
			t.Errorf("heap changed:\n%s", after)
		}
		s := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)
		rec := batchOf(t, s, func(b array.Builder) { b.(*array.Int64Builder).Append(1) })
		_, err = ingest(rctx, rcl, ingestOpts("cs_owned", "append"), s, rec)
		wantStatus(t, "append to a columnstore table without INSERT", err, codes.PermissionDenied, "42501")
		_, err = ingest(rctx, rcl, ingestOpts("readers_own", "create"), s, rec)
		wantStatus(t, "create without CREATE on public", err, codes.PermissionDenied, "42501")
		_, err = ingest(rctx, rcl, ingestOpts("heap", "replace"), heapSchema, heapBatch(40))
		wantStatus(t, "replace a table it does not own", err, codes.PermissionDenied, "42501")
		if got := queryString(t, conn, `SELECT count(*) FROM cs_owned`); got != "0" {
			t.Errorf("cs_owned has %s rows", got)
		}
		// with INSERT it may
		exec(t, conn, `GRANT INSERT ON cs_owned TO reader`)
		if n, err := ingest(rctx, rcl, ingestOpts("cs_owned", "append"), s, rec); err != nil || n != 1 {
			t.Errorf("append with INSERT: %d, %v", n, err)
		}
	})
}

// TestFlightIngestPython runs testdata/flight_ingest.py: ADBC's
// cursor.adbc_ingest(table, pyarrow_table, mode="create"), then
// mode="append", each read back with fetch_arrow_table() and fetch_df()
// equal to what was sent; then mode="create" again, which must fail with
// 42P07. As a superuser and as a role that may create tables in a schema
// of its own (and use the foreign server mooncake, as CREATE TABLE ...
// USING columnstore requires).
func TestFlightIngestPython(t *testing.T) {
	python := requirePyFlight(t)
	_, conn, addr := startFlight(t, pgtest.WithHBA(flightPythonHBA))
	exec(t, conn, `SET password_encryption = 'scram-sha-256'`)
	exec(t, conn, `CREATE ROLE loader LOGIN PASSWORD 'loader-pw'`)
	exec(t, conn, `CREATE SCHEMA AUTHORIZATION loader`)
	// as CREATE TABLE ... USING columnstore needs
	exec(t, conn, `GRANT USAGE ON FOREIGN SERVER mooncake TO loader`)
	for _, r := range []struct{ role, password, table string }{
		{"postgres", "", "py_ingest"}, {"loader", "loader-pw", "loader_ingest"},
	} {
		t.Run(r.role, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cmd := osexec.CommandContext(ctx, python, "testdata/flight_ingest.py", addr, r.role, r.password, r.table)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("flight_ingest.py: %v\n%s", err, stderr.String())
			}
			seen := map[string]bool{}
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				var c struct {
					Check, Error string
					OK           bool
				}
				if err := json.Unmarshal([]byte(line), &c); err != nil {
					t.Fatalf("flight_ingest.py line %.200q: %v", line, err)
				}
				seen[c.Check] = true
				if !c.OK {
					t.Errorf("%s: %s", c.Check, c.Error)
				}
			}
			for _, name := range []string{"create", "create_arrow", "create_pandas", "append", "append_arrow", "append_pandas", "create_again", "done"} {
				if !seen[name] {
					t.Errorf("flight_ingest.py reported no %s:\n%s\n%s", name, out, stderr.String())
				}
			}
			schema := "public"
			if r.role == "loader" {
				schema = "loader"
			}
			if got := queryString(t, conn, `SELECT count(*) FROM `+schema+`.`+r.table); got != "350" {
				t.Errorf("%s.%s has %s rows; want 350", schema, r.table, got)
			}
			if got := queryString(t, conn, `SELECT count(*) FROM mooncake.columnstore_tables WHERE table_name = '`+r.table+`' AND source IS NULL`); got != "1" {
				t.Errorf("%s is not a columnstore table", r.table)
			}
		})
	}
}
