package catalog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

func TestWithoutMissingFiles(t *testing.T) {
	_, missing := os.Stat("/nonexistent/mooncake/file.parquet")
	if !errors.Is(missing, fs.ErrNotExist) {
		t.Fatalf("stat of a missing file: %v", missing)
	}
	denied := &fs.PathError{Op: "remove", Path: "x", Err: fs.ErrPermission}
	other := errors.New("catalog unreachable")
	for _, c := range []struct {
		name string
		in   error
		want []error // parts left; nil: no error
	}{
		{"nil", nil, nil},
		{"one missing file", missing, nil},
		{"missing files joined", errors.Join(missing, missing), nil},
		{"missing file wrapped", fmt.Errorf("remove: %w", missing), nil},
		{"another error", other, []error{other}},
		{"permission denied", denied, []error{denied}},
		{"missing and denied", errors.Join(missing, denied, missing), []error{denied}},
		{"nested joins", errors.Join(errors.Join(missing), errors.Join(missing, other)), []error{other}},
	} {
		got := withoutMissingFiles(c.in)
		if c.want == nil {
			if got != nil {
				t.Errorf("%s: %v; want nil", c.name, got)
			}
			continue
		}
		if got == nil {
			t.Errorf("%s: nil; want %v", c.name, c.want)
			continue
		}
		for _, w := range c.want {
			if !errors.Is(got, w) {
				t.Errorf("%s: %v lacks %v", c.name, got, w)
			}
		}
		if errors.Is(got, fs.ErrNotExist) {
			t.Errorf("%s: %v still holds a missing file", c.name, got)
		}
	}
}

func TestExpiryCutoff(t *testing.T) {
	now := time.Now()
	at := func(ago time.Duration) table.Snapshot {
		return table.Snapshot{SnapshotID: int64(ago), TimestampMs: now.Add(-ago).UnixMilli()}
	}
	snaps := []table.Snapshot{at(time.Hour), at(20 * time.Minute), at(3 * time.Minute), at(time.Second)}
	if got, want := expiryCutoff(snaps, now), now.Add(-SnapshotRetention); !got.Equal(want) {
		t.Errorf("no reads: cutoff %v ago; want %v ago", now.Sub(got), now.Sub(want))
	}
	end := BeginRead() // a read of now: it reads the snapshot of a second ago
	if got, want := expiryCutoff(snaps, now), now.Add(-SnapshotRetention); !got.Equal(want) {
		t.Errorf("a new read: cutoff %v ago; want %v ago", now.Sub(got), now.Sub(want))
	}
	end()
	// a read that began 30 minutes ago reads the snapshot of an hour ago
	reads.mu.Lock()
	reads.active[reads.next] = now.Add(-30 * time.Minute)
	id := reads.next
	reads.next++
	reads.mu.Unlock()
	defer reads.end(id)
	got := expiryCutoff(snaps, now)
	if keep := time.UnixMilli(snaps[0].TimestampMs); !got.Before(keep) || keep.Sub(got) > 2*time.Second {
		t.Errorf("a read of 30 minutes: cutoff %v ago; want just before %v ago", now.Sub(got), now.Sub(keep))
	}
	// a read older than every snapshot keeps them all
	old := []table.Snapshot{at(3 * time.Minute), at(time.Second)}
	if got := expiryCutoff(old, now); !got.Before(time.UnixMilli(old[0].TimestampMs)) {
		t.Errorf("a read older than every snapshot: cutoff %v ago; want before %v", now.Sub(got), 3*time.Minute)
	}
}

func TestTieredRewrite(t *testing.T) {
	var data []iceberg.DataFile
	file := func(name string, size int64) string {
		path := "/w/t/data/" + name
		b, err := iceberg.NewDataFileBuilder(*iceberg.UnpartitionedSpec, iceberg.EntryContentData, path,
			iceberg.ParquetFile, nil, nil, nil, size/100, size)
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, b.Build())
		return path
	}
	big := file("big", 100<<20)
	mid := file("mid", 16<<20)
	var small []string
	for i := range 16 {
		small = append(small, file(fmt.Sprintf("s%02d", i), 1<<20))
	}
	files := append([]string{big, mid}, small...)
	var doubling []string
	for i := range 16 {
		doubling = append(doubling, file(fmt.Sprintf("d%02d", i), 1<<i))
	}
	names := func(paths []string) string {
		var out []string
		for _, p := range paths {
			out = append(out, filepath.Base(p))
		}
		return strings.Join(out, " ")
	}
	for _, c := range []struct {
		name    string
		files   []string
		targets map[string][]string
		want    []string
	}{
		// the large files are as large as the rest: only the small ones
		{"inserts", files, nil, small},
		// the 16 MB file is smaller than the small ones and it: it goes too
		{"a delete file names a small one and the middle one", files, map[string][]string{"/w/t/data/delete-1": {mid, small[3]}}, append([]string{mid}, small...)},
		// a delete file naming the large file: every file goes
		{"a delete file names the large one", files, map[string][]string{"/w/t/data/delete-1": {big}}, files},
		{"delete files not known", files, map[string][]string{"": nil}, files},
		{"16 equal files", small, nil, small},
		{"two files", []string{big, mid}, nil, nil},
		// each file larger than all smaller ones together: with
		// compactFiles files, the smaller half goes all the same
		{"doubling sizes", doubling, nil, doubling[:8]},
	} {
		if got := tieredRewrite(c.files, data, c.targets); names(got) != names(c.want) {
			t.Errorf("%s: rewrite %s; want %s", c.name, names(got), names(c.want))
		}
	}
}
