package delta

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestZ85(t *testing.T) {
	// The example of the Z85 specification.
	got, err := z85Decode("HelloWorld")
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B}; !slices.Equal(got, want) {
		t.Errorf("HelloWorld: % x, want % x", got, want)
	}
	for _, bad := range []string{"Hell", "Hello Worl", "#####"} {
		if _, err := z85Decode(bad); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
	// The relative-path example of the Delta protocol: a 2-character
	// random prefix, then the UUID.
	dv := &DeletionVector{StorageType: "u", PathOrInlineDv: "ab^-aqEH.-t@S}K{vb[*k^"}
	path, err := dv.FilePath("s3://mytable")
	if err != nil {
		t.Fatal(err)
	}
	if want := "s3://mytable/ab/deletion_vector_d2c639aa-8816-431a-aaf6-d3fe2512ff61.bin"; path != want {
		t.Errorf("path %s, want %s", path, want)
	}
	dv.PathOrInlineDv = "^-aqEH.-t@S}K{vb[*k^"
	if path, _ := dv.FilePath("/t/"); path != "/t/deletion_vector_d2c639aa-8816-431a-aaf6-d3fe2512ff61.bin" {
		t.Errorf("no prefix: %s", path)
	}
	off := int64(4)
	dv = &DeletionVector{StorageType: "u", PathOrInlineDv: "ab^-aqEH.-t@S}K{vb[*k^", Offset: &off}
	if id := dv.UniqueID(); id != "uab^-aqEH.-t@S}K{vb[*k^@4" {
		t.Errorf("unique id %s", id)
	}
}

func TestInlineVectorOfTheProtocol(t *testing.T) {
	// The inline example of the Delta protocol (the older native format).
	dv := &DeletionVector{StorageType: "i", PathOrInlineDv: "wi5b=000010000siXQKl0rr91000f55c8Xg0@@D72lkbi5=-{L", SizeInBytes: 40, Cardinality: 6}
	pos, err := dv.Positions(context.Background(), LocalFS(), "/nowhere")
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint64{3, 4, 7, 11, 18, 29}; !slices.Equal(pos, want) {
		t.Errorf("positions %v, want %v", pos, want)
	}
	dv.Cardinality = 7
	if _, err := dv.Positions(context.Background(), LocalFS(), "/nowhere"); err == nil || !strings.Contains(err.Error(), "cardinality") {
		t.Errorf("wrong cardinality: %v", err)
	}
}

// roaring32 serializes a 32-bit roaring bitmap by hand, in the format
// with run containers when runs is set: containers of up to 4096 values
// as arrays, larger ones as bitsets, and with runs the containers listed
// in runs as run containers.
func roaring32(values []uint32, runs map[uint16]bool) []byte {
	var keys []uint16
	groups := map[uint16][]uint16{}
	for _, v := range values {
		k := uint16(v >> 16)
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], uint16(v))
	}
	n := len(keys)
	var b []byte
	if runs != nil {
		b = binary.LittleEndian.AppendUint32(b, roaringCookie|uint32(n-1)<<16)
		flags := make([]byte, (n+7)/8)
		for i, k := range keys {
			if runs[k] {
				flags[i/8] |= 1 << (i % 8)
			}
		}
		b = append(b, flags...)
	} else {
		b = binary.LittleEndian.AppendUint32(b, roaringCookieNoRuns)
		b = binary.LittleEndian.AppendUint32(b, uint32(n))
	}
	for _, k := range keys {
		b = binary.LittleEndian.AppendUint16(b, k)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(groups[k])-1))
	}
	if runs == nil || n >= 4 {
		for range keys {
			b = binary.LittleEndian.AppendUint32(b, 0) // offsets: not used by the reader
		}
	}
	for _, k := range keys {
		g := groups[k]
		switch {
		case runs[k]:
			var rs [][2]uint16
			for _, v := range g {
				if len(rs) > 0 && rs[len(rs)-1][0]+rs[len(rs)-1][1]+1 == v {
					rs[len(rs)-1][1]++
				} else {
					rs = append(rs, [2]uint16{v, 0})
				}
			}
			b = binary.LittleEndian.AppendUint16(b, uint16(len(rs)))
			for _, r := range rs {
				b = binary.LittleEndian.AppendUint16(b, r[0])
				b = binary.LittleEndian.AppendUint16(b, r[1])
			}
		case len(g) <= 4096:
			for _, v := range g {
				b = binary.LittleEndian.AppendUint16(b, v)
			}
		default:
			words := make([]uint64, 1024)
			for _, v := range g {
				words[v/64] |= 1 << (v % 64)
			}
			for _, w := range words {
				b = binary.LittleEndian.AppendUint64(b, w)
			}
		}
	}
	return b
}

// portable serializes a RoaringBitmapArray in the portable format.
func portable(values []uint64, runs map[uint16]bool) []byte {
	b := binary.LittleEndian.AppendUint32(nil, magicPortable)
	var keys []uint32
	buckets := map[uint32][]uint32{}
	for _, v := range values {
		k := uint32(v >> 32)
		if _, ok := buckets[k]; !ok {
			keys = append(keys, k)
		}
		buckets[k] = append(buckets[k], uint32(v))
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(len(keys)))
	for _, k := range keys {
		b = binary.LittleEndian.AppendUint32(b, k)
		b = append(b, roaring32(buckets[k], runs)...)
	}
	return b
}

func testPositions() []uint64 {
	var v []uint64
	v = append(v, 0, 1, 5, 65535)           // bucket 0, container 0: an array
	for i := uint64(0); i < 10000; i += 2 { // bucket 0, container 1: a bitset
		v = append(v, 1<<16|i)
	}
	for i := uint64(100); i < 110; i++ { // bucket 0, container 7: one run (or an array)
		v = append(v, 7<<16|i)
	}
	v = append(v, 7<<16|200, 7<<16|201)
	v = append(v, 3<<32|42, 3<<32|1<<16|7) // bucket 3: beyond 32 bits
	return v
}

func TestRoaringBitmapArray(t *testing.T) {
	want := testPositions()
	for _, runs := range []map[uint16]bool{nil, {7: true}, {0: true, 7: true, 1: false}} {
		got, err := decodeBitmapArray(portable(want, runs))
		if err != nil {
			t.Fatalf("runs %v: %v", runs, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("runs %v: %d positions, want %d", runs, len(got), len(want))
		}
	}

	// The native format: big endian framing, bitmap i holds high bits i.
	nat := binary.BigEndian.AppendUint32(nil, magicNative)
	nat = binary.BigEndian.AppendUint32(nat, 2)
	for _, vals := range [][]uint32{{1, 2, 3}, {9}} {
		bm := roaring32(vals, nil)
		nat = binary.BigEndian.AppendUint32(nat, uint32(len(bm)))
		nat = append(nat, bm...)
	}
	if got, err := decodeBitmapArray(nat); err != nil || !slices.Equal(got, []uint64{1, 2, 3, 1<<32 | 9}) {
		t.Errorf("native: %v, %v", got, err)
	}

	// Damaged input is an error, never a panic.
	good := portable(want, map[uint16]bool{7: true})
	for n := 0; n < len(good); n += 7 {
		if _, err := decodeBitmapArray(good[:n]); err == nil && n < len(good) {
			// a cut at a bucket boundary can still be a valid (shorter)
			// bitmap only if the bucket count says so; it never does here
			t.Errorf("cut at %d decoded", n)
		}
	}
	bad := slices.Clone(good)
	bad[0] ^= 1
	if _, err := decodeBitmapArray(bad); err == nil || !strings.Contains(err.Error(), "magic") {
		t.Errorf("bad magic: %v", err)
	}
	neg := binary.LittleEndian.AppendUint32(nil, magicPortable)
	neg = binary.LittleEndian.AppendUint64(neg, 1)
	neg = binary.LittleEndian.AppendUint32(neg, 1<<31)
	neg = append(neg, roaring32([]uint32{1}, nil)...)
	if _, err := decodeBitmapArray(neg); err == nil {
		t.Error("a key with its top bit set decoded")
	}
}

func TestDeletionVectorFile(t *testing.T) {
	dir := t.TempDir()
	want := testPositions()
	first := portable([]uint64{1, 2}, nil)
	second := portable(want, map[uint16]bool{7: true})
	file := []byte{1}
	for _, dv := range [][]byte{first, second} {
		file = binary.BigEndian.AppendUint32(file, uint32(len(dv)))
		file = append(file, dv...)
		file = binary.BigEndian.AppendUint32(file, crc32.ChecksumIEEE(dv))
	}
	path := filepath.Join(dir, "vectors.bin")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	off := int64(1 + 4 + len(first) + 4)
	dv := &DeletionVector{StorageType: "p", PathOrInlineDv: "file://" + path, Offset: &off, SizeInBytes: int64(len(second)), Cardinality: int64(len(want))}
	got, err := dv.Positions(ctx, LocalFS(), "/elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("%d positions, want %d", len(got), len(want))
	}
	one := int64(1)
	dv1 := &DeletionVector{StorageType: "p", PathOrInlineDv: path, Offset: &one, SizeInBytes: int64(len(first)), Cardinality: 2}
	if got, err := dv1.Positions(ctx, LocalFS(), "/elsewhere"); err != nil || !slices.Equal(got, []uint64{1, 2}) {
		t.Errorf("first vector: %v, %v", got, err)
	}

	dv1.SizeInBytes++
	if _, err := dv1.Positions(ctx, LocalFS(), "/"); err == nil || !strings.Contains(err.Error(), "sizeInBytes") {
		t.Errorf("wrong size: %v", err)
	}
	damaged := slices.Clone(file)
	damaged[len(damaged)-5] ^= 0x40 // inside the second bitmap
	os.WriteFile(path, damaged, 0o644)
	if _, err := dv.Positions(ctx, LocalFS(), "/"); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("damaged vector: %v", err)
	}
	os.Remove(path)
	if _, err := dv.Positions(ctx, LocalFS(), "/"); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("missing file: %v", err)
	}
}
