package remote

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strings"

	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/jackc/pgx/v5/pgconn"
)

// footerGuess is how much of a Parquet object's end is fetched first: the
// footer of most files fits.
const footerGuess = 256 << 10

// Footer makes the local copy of a Parquet object hold its magic and its
// footer (enough for DuckDB to read the schema and the row groups'
// statistics) and returns the parsed footer.
func (st *Store) Footer(ctx context.Context, o *Object) (*metadata.FileMetaData, error) {
	ob := st.state(o)
	ob.mu.Lock()
	md, _ := ob.footer.(*metadata.FileMetaData)
	ob.mu.Unlock()
	if md != nil {
		// the parsed footer is kept; the bytes may have been evicted
		return md, st.Ensure(ctx, o, footerSpans(o.Size, md))
	}
	if o.Size < 12 {
		return nil, notParquet(o, "it is too small")
	}
	tail := min(o.Size, footerGuess)
	if err := st.Ensure(ctx, o, []span{{0, 4}, {o.Size - tail, o.Size}}); err != nil {
		return nil, err
	}
	f, err := os.Open(o.Local)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var end [8]byte
	if _, err := f.ReadAt(end[:], o.Size-8); err != nil {
		return nil, err
	}
	if !bytes.Equal(end[4:], []byte("PAR1")) {
		return nil, notParquet(o, "it does not end with PAR1")
	}
	n := int64(binary.LittleEndian.Uint32(end[:4]))
	if n <= 0 || n > o.Size-12 {
		return nil, notParquet(o, "its footer length is out of range")
	}
	if n+8 > tail {
		if err := st.Ensure(ctx, o, []span{{o.Size - 8 - n, o.Size}}); err != nil {
			return nil, err
		}
	}
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, o.Size-8-n); err != nil {
		return nil, err
	}
	md, err = metadata.NewFileMetaData(buf, nil)
	if err != nil {
		return nil, notParquet(o, err.Error())
	}
	ob.mu.Lock()
	ob.footer = md
	ob.mu.Unlock()
	return md, nil
}

func notParquet(o *Object, why string) error {
	return &pgconn.PgError{Code: "22P04", Message: fmt.Sprintf("could not read parquet file %s: %s", o.URL, why)}
}

func footerSpans(size int64, md *metadata.FileMetaData) []span {
	n := int64(md.Size())
	return []span{{0, 4}, {size - 8 - n, size}}
}

// Columns makes the local copy of a Parquet object hold, besides its
// footer, every byte DuckDB may read of the columns named (top-level
// names, any case; nil: every column): their column chunks in every row
// group, with their dictionaries, bloom filters and page indexes.
func (st *Store) Columns(ctx context.Context, o *Object, names []string) error {
	if names == nil {
		return st.ColumnsWhere(ctx, o, func(string, int32) bool { return true })
	}
	set := map[string]bool{}
	for _, n := range names {
		set[strings.ToLower(n)] = true
	}
	return st.ColumnsWhere(ctx, o, func(name string, _ int32) bool { return set[strings.ToLower(name)] })
}

// ColumnsWhere is Columns of the top-level columns keep chooses by their
// name and Parquet field id (-1 when the file has none).
func (st *Store) ColumnsWhere(ctx context.Context, o *Object, keep func(name string, fieldID int32) bool) error {
	md, err := st.Footer(ctx, o)
	if err != nil {
		return err
	}
	want := footerSpans(o.Size, md)
	all := map[string]bool{}
	root := md.Schema.Root()
	for i := 0; i < root.NumFields(); i++ {
		if f := root.Field(i); keep(f.Name(), f.FieldID()) {
			all[f.Name()] = true
		}
	}
	var bloomStarts []int64
	for rg := 0; rg < md.NumRowGroups(); rg++ {
		r := md.RowGroup(rg)
		for c := 0; c < r.NumColumns(); c++ {
			cc, err := r.ColumnChunk(c)
			if err != nil {
				return notParquet(o, err.Error())
			}
			path := cc.PathInSchema()
			if len(path) == 0 || !all[path[0]] {
				continue
			}
			start := cc.DataPageOffset()
			if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 && cc.DictionaryPageOffset() < start {
				start = cc.DictionaryPageOffset()
			}
			if cc.HasIndexPage() && cc.IndexPageOffset() > 0 && cc.IndexPageOffset() < start {
				start = cc.IndexPageOffset()
			}
			want = append(want, span{start, start + cc.TotalCompressedSize()})
			if off := cc.BloomFilterOffset(); off > 0 {
				if l := int64(cc.BloomFilterLength()); l > 0 {
					want = append(want, span{off, off + l})
				} else {
					bloomStarts = append(bloomStarts, off)
				}
			}
			for _, loc := range []*metadata.IndexLocation{cc.GetColumnIndexLocation(), cc.GetOffsetIndexLocation()} {
				if loc != nil && loc.Offset > 0 && loc.Length > 0 {
					want = append(want, span{loc.Offset, loc.Offset + int64(loc.Length)})
				}
			}
		}
	}
	// A bloom filter of unknown length ends at the next thing the file
	// holds, at the latest at the footer.
	for _, b := range bloomStarts {
		end := o.Size - 8 - int64(md.Size())
		for rg := 0; rg < md.NumRowGroups(); rg++ {
			r := md.RowGroup(rg)
			for c := 0; c < r.NumColumns(); c++ {
				if cc, err := r.ColumnChunk(c); err == nil {
					for _, s := range []int64{cc.DataPageOffset(), cc.DictionaryPageOffset(), cc.BloomFilterOffset()} {
						if s > b && s < end {
							end = s
						}
					}
				}
			}
		}
		want = append(want, span{b, end})
	}
	return st.Ensure(ctx, o, want)
}
