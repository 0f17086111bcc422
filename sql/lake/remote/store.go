package remote

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/errgroup"
)

var pathMatch = path.Match

// Store is the local cache of remote objects: each object read is a
// sparse file of its size in which the byte ranges fetched so far are
// written, under a total size limit (least recently used objects go
// first; objects a query is reading stay).
type Store struct {
	dir   string
	limit int64
	http  *http.Client

	clients sync.Map // secret -> *s3.Client

	mu    sync.Mutex
	objs  map[string]*object // by local path
	total int64              // bytes held, the ranges fetched

	fetched  atomic.Int64 // bytes fetched from object stores
	requests atomic.Int64 // GET requests
	served   atomic.Int64 // bytes asked for that were cached already
	evicted  atomic.Int64 // objects removed to stay under the limit

	poison bool // tests: a new local copy is filled with 0xFF, so that reading a byte never fetched shows
}

// NewStore opens the cache in dir, emptied (an earlier run's ranges are
// not trusted), holding at most limit bytes.
func NewStore(dir string, limit int64) (*Store, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &Store{dir: dir, limit: limit, objs: map[string]*object{},
		http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second, Proxy: http.ProxyFromEnvironment}}}, nil
}

// Stats are the cache's figures.
type Stats struct {
	Limit    int64 `json:"limit_bytes"`
	Cached   int64 `json:"cached_bytes"`
	Objects  int   `json:"objects"`
	Fetched  int64 `json:"fetched_bytes"`
	Requests int64 `json:"get_requests"`
	Served   int64 `json:"served_from_cache_bytes"`
	Evicted  int64 `json:"evicted_objects"`
}

// Stats reports the cache's figures.
func (st *Store) Stats() Stats {
	st.mu.Lock()
	defer st.mu.Unlock()
	return Stats{Limit: st.limit, Cached: st.total, Objects: len(st.objs), Fetched: st.fetched.Load(),
		Requests: st.requests.Load(), Served: st.served.Load(), Evicted: st.evicted.Load()}
}

// Object is one remote object at one version, and its local copy.
type Object struct {
	URL    URL
	Size   int64
	ETag   string
	Local  string // the local sparse copy, for DuckDB
	secret *Secret
	obj    *object
}

// object is the cache's state of a local copy.
type object struct {
	mu     sync.Mutex // serializes fetches into the file
	local  string
	size   int64
	have   []span // fetched ranges, sorted, disjoint, not adjacent
	bytes  int64  // their total length
	pins   int    // queries reading it now (under Store.mu)
	used   time.Time
	footer any // parsed Parquet footer, once read
	gone   bool
}

type span struct{ off, end int64 }

// Session resolves paths with a database's secrets.
type Session struct {
	st      *Store
	secrets []*Secret
}

// Session is the store seen with secrets.
func (st *Store) Session(secrets []*Secret) *Session { return &Session{st: st, secrets: secrets} }

// Expand lists the objects a path names: an object, the objects a glob
// matches, or every object under a prefix that is a directory (hive
// partitioned data), in key order. None is 58P01.
func (s *Session) Expand(ctx context.Context, p string) ([]*Object, error) {
	u, err := ParseURL(p)
	if err != nil {
		return nil, err
	}
	sec := Pick(s.secrets, p)
	cl := s.st.client(sec)
	if !hasGlob(u.Key) && u.Key != "" && !strings.HasSuffix(u.Key, "/") {
		out, err := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(u.Bucket), Key: aws.String(u.Key)})
		if err == nil {
			return []*Object{s.object(u, aws.ToInt64(out.ContentLength), aws.ToString(out.ETag), sec)}, nil
		}
		if e := objectError(err, p); sqlState(e) != "58P01" {
			return nil, e
		}
	}
	prefix, glob := u.Key, ""
	if hasGlob(u.Key) {
		prefix, glob = globPrefix(u.Key), u.Key
	} else if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	var objs []*Object
	pg := s3.NewListObjectsV2Paginator(cl, &s3.ListObjectsV2Input{Bucket: aws.String(u.Bucket), Prefix: aws.String(prefix)})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, objectError(err, p)
		}
		for _, it := range page.Contents {
			key := aws.ToString(it.Key)
			if strings.HasSuffix(key, "/") {
				continue
			}
			if glob != "" {
				if !matchGlob(glob, key) {
					continue
				}
			} else if base := path.Base(key); strings.HasPrefix(base, "_") || strings.HasPrefix(base, ".") {
				continue // a directory's metadata (_SUCCESS, .crc)
			}
			objs = append(objs, s.object(URL{Bucket: u.Bucket, Key: key}, aws.ToInt64(it.Size), aws.ToString(it.ETag), sec))
		}
	}
	if len(objs) == 0 {
		return nil, &pgconn.PgError{Code: "58P01", Message: fmt.Sprintf("could not open %s: no such object", p)}
	}
	slices.SortFunc(objs, func(a, b *Object) int { return strings.Compare(a.URL.Key, b.URL.Key) })
	return objs, nil
}

// Stat is Expand of one object's URL (an Iceberg or Delta table's file).
func (s *Session) Stat(ctx context.Context, p string) (*Object, error) {
	u, err := ParseURL(p)
	if err != nil {
		return nil, err
	}
	sec := Pick(s.secrets, p)
	out, err := s.st.client(sec).HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(u.Bucket), Key: aws.String(u.Key)})
	if err != nil {
		return nil, objectError(err, p)
	}
	return s.object(u, aws.ToInt64(out.ContentLength), aws.ToString(out.ETag), sec), nil
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// object is the Object of a version of a remote object, its local copy
// named by the store's endpoint and bucket, the version and the key (so
// that hive partitions and file names read from the local path are the
// remote ones).
func (s *Session) object(u URL, size int64, etag string, sec *Secret) *Object {
	ep := ""
	if sec != nil {
		ep = sec.Endpoint
	}
	where := sha256.Sum256([]byte(ep + "\x00" + u.Bucket))
	version := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d\x00%s", u.Key, size, etag)))
	segs := strings.Split(u.Key, "/")
	for i, sg := range segs {
		switch sg {
		case "", ".", "..":
			segs[i] = "%" + hex.EncodeToString([]byte(sg)) // never a way out of the cache
		default:
			segs[i] = url.PathEscape(sg)
		}
	}
	local := filepath.Join(s.st.dir, hex.EncodeToString(where[:8]), hex.EncodeToString(version[:6]), filepath.Join(segs...))
	return &Object{URL: u, Size: size, ETag: etag, Local: local, secret: sec}
}

// state is the cache's entry of an object, made on first use.
func (st *Store) state(o *Object) *object {
	st.mu.Lock()
	defer st.mu.Unlock()
	ob, ok := st.objs[o.Local]
	if !ok {
		ob = &object{local: o.Local, size: o.Size}
		st.objs[o.Local] = ob
	}
	ob.used = time.Now()
	o.obj = ob
	return ob
}

// Pin keeps objects in the cache until the returned function is called.
func (st *Store) Pin(objs []*Object) func() {
	var held []*object
	for _, o := range objs {
		ob := st.state(o)
		st.mu.Lock()
		ob.pins++
		st.mu.Unlock()
		held = append(held, ob)
	}
	return func() {
		st.mu.Lock()
		for _, ob := range held {
			ob.pins--
		}
		st.mu.Unlock()
		st.evict()
	}
}

// fetchGap: ranges closer than this are fetched in one request.
const fetchGap = 64 << 10

// Ensure makes the local copy of o hold the ranges want.
func (st *Store) Ensure(ctx context.Context, o *Object, want []span) error {
	ob := st.state(o)
	ob.mu.Lock()
	defer ob.mu.Unlock()
	if ob.gone {
		// evicted meanwhile: start again
		st.mu.Lock()
		if cur, ok := st.objs[o.Local]; ok && cur == ob {
			delete(st.objs, o.Local)
		}
		st.mu.Unlock()
		return st.Ensure(ctx, o, want)
	}
	var missing []span
	var asked int64
	for _, w := range merge(clip(want, ob.size), 0) {
		asked += w.end - w.off
		missing = append(missing, subtract(w, ob.have)...)
	}
	var need int64
	for _, m := range missing {
		need += m.end - m.off
	}
	st.served.Add(asked - need)
	if len(missing) == 0 {
		if _, err := os.Stat(ob.local); err == nil {
			return nil
		}
		ob.have, missing = nil, merge(clip(want, ob.size), fetchGap) // removed by hand
	}
	missing = merge(missing, fetchGap)
	if err := os.MkdirAll(filepath.Dir(ob.local), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(ob.local, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() != ob.size {
		if err := f.Truncate(ob.size); err != nil {
			return err
		}
		if st.poison {
			junk := make([]byte, ob.size)
			for i := range junk {
				junk[i] = 0xFF
			}
			if _, err := f.WriteAt(junk, 0); err != nil {
				return err
			}
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	const piece = 8 << 20 // requests of at most 8 MiB, in parallel
	for _, m := range missing {
		for off := m.off; off < m.end; off += piece {
			off, n := off, min(piece, m.end-off)
			g.Go(func() error {
				buf := make([]byte, n)
				if err := st.getRange(gctx, o, off, n, buf); err != nil {
					return err
				}
				_, err := f.WriteAt(buf, off)
				return err
			})
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	before := ob.bytes
	ob.have = merge(append(ob.have, missing...), 0)
	ob.bytes = 0
	for _, h := range ob.have {
		ob.bytes += h.end - h.off
	}
	st.mu.Lock()
	st.total += ob.bytes - before
	st.mu.Unlock()
	st.evict()
	return nil
}

// Whole makes the local copy of o complete.
func (st *Store) Whole(ctx context.Context, o *Object) error {
	return st.Ensure(ctx, o, []span{{0, o.Size}})
}

// evict removes least recently used objects no query reads until the
// cache is under its limit.
func (st *Store) evict() {
	st.mu.Lock()
	defer st.mu.Unlock()
	for st.total > st.limit {
		var victim *object
		for _, ob := range st.objs {
			if ob.pins == 0 && ob.bytes > 0 && (victim == nil || ob.used.Before(victim.used)) {
				victim = ob
			}
		}
		if victim == nil {
			return // everything left is being read
		}
		if !victim.mu.TryLock() {
			return // being fetched into: try at the next release
		}
		os.Remove(victim.local)
		victim.gone = true
		st.total -= victim.bytes
		victim.bytes, victim.have = 0, nil
		delete(st.objs, victim.local)
		victim.mu.Unlock()
		st.evicted.Add(1)
	}
}

func clip(spans []span, size int64) []span {
	var out []span
	for _, s := range spans {
		s.off, s.end = max(s.off, 0), min(s.end, size)
		if s.end > s.off {
			out = append(out, s)
		}
	}
	return out
}

// merge sorts spans and joins those less than gap apart.
func merge(spans []span, gap int64) []span {
	s := slices.Clone(spans)
	slices.SortFunc(s, func(a, b span) int { return int(min(max(a.off-b.off, -1), 1)) })
	var out []span
	for _, x := range s {
		if n := len(out); n > 0 && x.off <= out[n-1].end+gap {
			out[n-1].end = max(out[n-1].end, x.end)
			continue
		}
		out = append(out, x)
	}
	return out
}

// subtract is what of w the spans have do not cover.
func subtract(w span, have []span) []span {
	var out []span
	at := w.off
	for _, h := range have {
		if h.end <= at || h.off >= w.end {
			continue
		}
		if h.off > at {
			out = append(out, span{at, h.off})
		}
		at = max(at, h.end)
	}
	if at < w.end {
		out = append(out, span{at, w.end})
	}
	return out
}

// Known is the Object of an immutable object whose size is known (a data
// file an Iceberg manifest or a Delta log lists): no request is made.
func (s *Session) Known(p string, size int64) (*Object, error) {
	u, err := ParseURL(p)
	if err != nil {
		return nil, err
	}
	return s.object(u, size, "", Pick(s.secrets, p)), nil
}

// List names the objects directly under a directory URL (not in its
// subdirectories); none is an empty list.
func (s *Session) List(ctx context.Context, dir string) ([]string, error) {
	u, err := ParseURL(dir)
	if err != nil {
		return nil, err
	}
	prefix := strings.TrimSuffix(u.Key, "/") + "/"
	if u.Key == "" {
		prefix = ""
	}
	var names []string
	pg := s3.NewListObjectsV2Paginator(s.st.client(Pick(s.secrets, dir)), &s3.ListObjectsV2Input{Bucket: aws.String(u.Bucket),
		Prefix: aws.String(prefix), Delimiter: aws.String("/")})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, objectError(err, dir)
		}
		for _, it := range page.Contents {
			if name := strings.TrimPrefix(aws.ToString(it.Key), prefix); name != "" && !strings.Contains(name, "/") {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	return names, nil
}
