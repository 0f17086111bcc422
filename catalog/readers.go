package catalog

import (
	"os"
	"sync"
	"time"
)

// A flush rewrites the spill files holding deleted rows and then removes
// them, but a query that began before the flush swapped the view may still
// be about to read them. Queries register while they read mirrors
// (BeginRead), and a removed file waits until every query that began
// before its removal has ended. A crash meanwhile leaves the file to the
// orphan sweep of expire. The expiry of a table's snapshots keeps those
// that the oldest of them may be reading (OldestRead).
var reads = readers{active: map[uint64]time.Time{}}

type readers struct {
	mu      sync.Mutex
	next    uint64               // id of the next query
	active  map[uint64]time.Time // queries reading, and since when
	retired []retiredFile
}

type retiredFile struct {
	path  string
	epoch uint64 // queries with a smaller id may read it
}

// BeginRead registers a query about to read mirrors; end must be called
// once it has read them.
func BeginRead() (end func()) {
	reads.mu.Lock()
	id := reads.next
	reads.next++
	reads.active[id] = time.Now()
	reads.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { reads.end(id) }) }
}

func (r *readers) end(id uint64) {
	r.mu.Lock()
	delete(r.active, id)
	oldest := r.next
	for a := range r.active {
		oldest = min(oldest, a)
	}
	var gone []string
	kept := r.retired[:0]
	for _, f := range r.retired {
		if f.epoch <= oldest {
			gone = append(gone, f.path)
		} else {
			kept = append(kept, f)
		}
	}
	r.retired = kept
	r.mu.Unlock()
	for _, p := range gone {
		os.Remove(p)
	}
}

// OldestRead is when the oldest query or read pin still reading mirrors
// began, if one is.
func OldestRead() (time.Time, bool) {
	reads.mu.Lock()
	defer reads.mu.Unlock()
	var oldest time.Time
	for _, at := range reads.active {
		if oldest.IsZero() || at.Before(oldest) {
			oldest = at
		}
	}
	return oldest, !oldest.IsZero()
}

// removeAfterReads removes the files once the queries reading now have
// ended.
func removeAfterReads(paths ...string) {
	reads.mu.Lock()
	if len(reads.active) > 0 {
		for _, p := range paths {
			reads.retired = append(reads.retired, retiredFile{path: p, epoch: reads.next})
		}
		paths = nil
	}
	reads.mu.Unlock()
	for _, p := range paths {
		os.Remove(p)
	}
}
