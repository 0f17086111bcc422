package delta

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/bits"
	"slices"
	"strconv"
)

// DeletionVector describes the rows of a data file that are deleted
// without rewriting it (the deletionVector of an add action).
type DeletionVector struct {
	StorageType    string `json:"storageType"`    // "u": file named by a UUID under the table root; "i": inline; "p": absolute path
	PathOrInlineDv string `json:"pathOrInlineDv"` // random prefix + z85 UUID ("u"), z85 bytes ("i"), or a path URI ("p")
	Offset         *int64 `json:"offset"`         // where the vector starts in its file; nil when absent (always for "i")
	SizeInBytes    int64  `json:"sizeInBytes"`    // size of the serialized bitmap
	Cardinality    int64  `json:"cardinality"`    // number of deleted rows
}

// UniqueID identifies the vector among those of one data file: the storage
// type, the path or inline data, and "@offset" when there is an offset.
func (dv *DeletionVector) UniqueID() string {
	id := dv.StorageType + dv.PathOrInlineDv
	if dv.Offset != nil {
		id += "@" + strconv.FormatInt(*dv.Offset, 10)
	}
	return id
}

// FilePath is the absolute path of the file holding an on-disk vector.
func (dv *DeletionVector) FilePath(root string) (string, error) {
	switch dv.StorageType {
	case "u":
		s := dv.PathOrInlineDv
		if len(s) < 20 {
			return "", fmt.Errorf("deletion vector %q: a relative path needs a 20-character z85 UUID", s)
		}
		prefix, enc := s[:len(s)-20], s[len(s)-20:]
		raw, err := z85Decode(enc)
		if err != nil {
			return "", fmt.Errorf("deletion vector %q: %w", s, err)
		}
		name := "deletion_vector_" + formatUUID(raw) + ".bin"
		if prefix != "" {
			name = prefix + "/" + name
		}
		return joinPath(root, name), nil
	case "p":
		return resolvePath(root, dv.PathOrInlineDv)
	case "i":
		return "", errors.New("an inline deletion vector has no file")
	}
	return "", fmt.Errorf("deletion vector: unknown storage type %q", dv.StorageType)
}

// Positions returns the deleted row positions (0-based, ascending) of the
// data file, reading the vector's file through fsys when it is not inline.
// The CRC-32 stored after an on-disk vector is checked.
func (dv *DeletionVector) Positions(ctx context.Context, fsys FS, root string) ([]uint64, error) {
	var data []byte
	if dv.StorageType == "i" {
		raw, err := z85Decode(dv.PathOrInlineDv)
		if err != nil {
			return nil, fmt.Errorf("inline deletion vector: %w", err)
		}
		if dv.SizeInBytes > int64(len(raw)) {
			return nil, fmt.Errorf("inline deletion vector: %d bytes, sizeInBytes says %d", len(raw), dv.SizeInBytes)
		}
		if dv.SizeInBytes > 0 {
			raw = raw[:dv.SizeInBytes]
		}
		data = raw
	} else {
		path, err := dv.FilePath(root)
		if err != nil {
			return nil, err
		}
		file, err := fsys.ReadFile(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("deletion vector file: %w", err)
		}
		data, err = vectorInFile(file, dv.Offset, dv.SizeInBytes)
		if err != nil {
			return nil, fmt.Errorf("deletion vector file %s: %w", path, err)
		}
	}
	pos, err := decodeBitmapArray(data)
	if err != nil {
		return nil, fmt.Errorf("deletion vector %s: %w", dv.UniqueID(), err)
	}
	if dv.Cardinality >= 0 && int64(len(pos)) != dv.Cardinality {
		return nil, fmt.Errorf("deletion vector %s: %d positions, cardinality says %d", dv.UniqueID(), len(pos), dv.Cardinality)
	}
	return pos, nil
}

// vectorInFile cuts one vector out of a deletion vector file: a version
// byte (1), then per vector its size (4 bytes, big endian), the bitmap and
// its CRC-32 (big endian). offset points at the size.
func vectorInFile(file []byte, offset *int64, size int64) ([]byte, error) {
	if len(file) == 0 || file[0] != 1 {
		return nil, errors.New("not a deletion vector file of format version 1")
	}
	off := int64(1)
	if offset != nil {
		off = *offset
	}
	if off < 1 || off+4 > int64(len(file)) {
		return nil, fmt.Errorf("offset %d outside the file's %d bytes", off, len(file))
	}
	n := int64(binary.BigEndian.Uint32(file[off:]))
	if size > 0 && n != size {
		return nil, fmt.Errorf("vector at %d has %d bytes, sizeInBytes says %d", off, n, size)
	}
	start := off + 4
	if start+n > int64(len(file)) {
		return nil, fmt.Errorf("vector at %d (%d bytes) runs past the file's end", off, n)
	}
	data := file[start : start+n]
	if end := start + n; end+4 <= int64(len(file)) {
		if want, got := binary.BigEndian.Uint32(file[end:]), crc32.ChecksumIEEE(data); want != got {
			return nil, fmt.Errorf("vector at %d: checksum %08x, computed %08x", off, want, got)
		}
	}
	return data, nil
}

const (
	magicPortable = 1681511377 // little endian, then a 64-bit roaring bitmap in the portable format
	magicNative   = 1681511376 // big endian, then numbered 32-bit bitmaps, each with its size
)

// decodeBitmapArray decodes a RoaringBitmapArray: a magic number, then
// either the portable 64-bit roaring format (a count of buckets, each a
// 32-bit key and a 32-bit roaring bitmap of the low halves) or the older
// native format (a count of bitmaps, each with its size; bitmap i holds
// the values whose high 32 bits are i).
func decodeBitmapArray(b []byte) ([]uint64, error) {
	if len(b) < 4 {
		return nil, errors.New("bitmap too short for its magic number")
	}
	var out []uint64
	switch {
	case binary.LittleEndian.Uint32(b) == magicPortable:
		b = b[4:]
		if len(b) < 8 {
			return nil, errors.New("bitmap too short for its bucket count")
		}
		n := binary.LittleEndian.Uint64(b)
		b = b[8:]
		if n > uint64(len(b))/4 {
			return nil, fmt.Errorf("bucket count %d larger than the data", n)
		}
		prev := int64(-1)
		for i := uint64(0); i < n; i++ {
			if len(b) < 4 {
				return nil, fmt.Errorf("bucket %d: no key", i)
			}
			key := binary.LittleEndian.Uint32(b)
			if key >= 1<<31 {
				return nil, fmt.Errorf("bucket %d: key %d has its top bit set", i, key)
			}
			if int64(key) <= prev {
				return nil, fmt.Errorf("bucket %d: key %d not ascending", i, key)
			}
			prev = int64(key)
			vals, used, err := decodeRoaring32(b[4:])
			if err != nil {
				return nil, fmt.Errorf("bucket %d: %w", i, err)
			}
			b = b[4+used:]
			for _, v := range vals {
				out = append(out, uint64(key)<<32|uint64(v))
			}
		}
	case binary.BigEndian.Uint32(b) == magicNative:
		b = b[4:]
		if len(b) < 4 {
			return nil, errors.New("bitmap too short for its bitmap count")
		}
		n := binary.BigEndian.Uint32(b)
		b = b[4:]
		for i := uint32(0); i < n; i++ {
			if len(b) < 4 {
				return nil, fmt.Errorf("bitmap %d: no size", i)
			}
			size := binary.BigEndian.Uint32(b)
			b = b[4:]
			if uint64(size) > uint64(len(b)) {
				return nil, fmt.Errorf("bitmap %d: size %d past the end", i, size)
			}
			vals, _, err := decodeRoaring32(b[:size])
			if err != nil {
				return nil, fmt.Errorf("bitmap %d: %w", i, err)
			}
			b = b[size:]
			for _, v := range vals {
				out = append(out, uint64(i)<<32|uint64(v))
			}
		}
	default:
		return nil, fmt.Errorf("unknown bitmap magic number %d", binary.LittleEndian.Uint32(b))
	}
	if !slices.IsSorted(out) {
		slices.Sort(out)
	}
	return out, nil
}

const (
	roaringCookie       = 12347 // low 16 bits; high 16 bits: containers - 1; has run containers
	roaringCookieNoRuns = 12346
)

// decodeRoaring32 decodes one 32-bit roaring bitmap in the standard
// portable serialization and returns its values and the bytes it used.
func decodeRoaring32(b []byte) ([]uint32, int, error) {
	if len(b) < 4 {
		return nil, 0, errors.New("roaring bitmap too short")
	}
	cookie := binary.LittleEndian.Uint32(b)
	pos := 4
	var n int
	var runs []byte
	switch {
	case cookie&0xFFFF == roaringCookie:
		n = int(cookie>>16) + 1
		rb := (n + 7) / 8
		if len(b) < pos+rb {
			return nil, 0, errors.New("roaring bitmap: truncated run flags")
		}
		runs = b[pos : pos+rb]
		pos += rb
	case cookie == roaringCookieNoRuns:
		if len(b) < 8 {
			return nil, 0, errors.New("roaring bitmap: truncated container count")
		}
		n = int(binary.LittleEndian.Uint32(b[4:]))
		pos = 8
		if n > 1<<16 {
			return nil, 0, fmt.Errorf("roaring bitmap: %d containers", n)
		}
	default:
		return nil, 0, fmt.Errorf("roaring bitmap: unknown cookie %d", cookie)
	}
	if len(b) < pos+4*n {
		return nil, 0, errors.New("roaring bitmap: truncated container headers")
	}
	keys := make([]uint16, n)
	cards := make([]int, n)
	for i := range n {
		keys[i] = binary.LittleEndian.Uint16(b[pos+4*i:])
		cards[i] = int(binary.LittleEndian.Uint16(b[pos+4*i+2:])) + 1
	}
	pos += 4 * n
	if runs == nil || n >= 4 { // offset header
		if len(b) < pos+4*n {
			return nil, 0, errors.New("roaring bitmap: truncated offsets")
		}
		pos += 4 * n
	}
	var out []uint32
	for i := range n {
		if i > 0 && keys[i] <= keys[i-1] {
			return nil, 0, fmt.Errorf("roaring bitmap: container key %d not ascending", keys[i])
		}
		high := uint32(keys[i]) << 16
		switch {
		case runs != nil && runs[i/8]&(1<<(i%8)) != 0:
			if len(b) < pos+2 {
				return nil, 0, errors.New("roaring bitmap: truncated run container")
			}
			nr := int(binary.LittleEndian.Uint16(b[pos:]))
			pos += 2
			if len(b) < pos+4*nr {
				return nil, 0, errors.New("roaring bitmap: truncated runs")
			}
			for r := range nr {
				start := uint32(binary.LittleEndian.Uint16(b[pos+4*r:]))
				length := uint32(binary.LittleEndian.Uint16(b[pos+4*r+2:]))
				if start+length > 0xFFFF {
					return nil, 0, errors.New("roaring bitmap: run past its container")
				}
				for v := start; v <= start+length; v++ {
					out = append(out, high|v)
				}
			}
			pos += 4 * nr
		case cards[i] <= 4096:
			if len(b) < pos+2*cards[i] {
				return nil, 0, errors.New("roaring bitmap: truncated array container")
			}
			for j := range cards[i] {
				out = append(out, high|uint32(binary.LittleEndian.Uint16(b[pos+2*j:])))
			}
			pos += 2 * cards[i]
		default:
			if len(b) < pos+8192 {
				return nil, 0, errors.New("roaring bitmap: truncated bitset container")
			}
			got := 0
			for w := range 1024 {
				word := binary.LittleEndian.Uint64(b[pos+8*w:])
				for word != 0 {
					bit := uint32(bits.TrailingZeros64(word))
					out = append(out, high|uint32(w)*64+bit)
					word &= word - 1
					got++
				}
			}
			if got != cards[i] {
				return nil, 0, fmt.Errorf("roaring bitmap: bitset holds %d values, header says %d", got, cards[i])
			}
			pos += 8192
		}
	}
	return out, pos, nil
}

const z85Alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"

var z85Index = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := range len(z85Alphabet) {
		t[z85Alphabet[i]] = int8(i)
	}
	return t
}()

// z85Decode decodes ZeroMQ's Base85 (Z85): each 5 characters are 4 bytes,
// big endian.
func z85Decode(s string) ([]byte, error) {
	if len(s)%5 != 0 {
		return nil, fmt.Errorf("z85: length %d is not a multiple of 5", len(s))
	}
	out := make([]byte, 0, len(s)/5*4)
	for i := 0; i < len(s); i += 5 {
		var v uint64
		for j := range 5 {
			d := z85Index[s[i+j]]
			if d < 0 {
				return nil, fmt.Errorf("z85: invalid character %q at %d", s[i+j], i+j)
			}
			v = v*85 + uint64(d)
		}
		if v > 0xFFFFFFFF {
			return nil, fmt.Errorf("z85: group at %d overflows 32 bits", i)
		}
		out = binary.BigEndian.AppendUint32(out, uint32(v))
	}
	return out, nil
}

func formatUUID(b []byte) string {
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hex[c>>4], hex[c&15])
	}
	return string(out)
}
