package service

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmooncake/mooncake/catalog"
	"github.com/pgmooncake/mooncake/sql/lake"
	"github.com/pgmooncake/mooncake/sql/lake/remote"
)

// secretsTTL is how long a database's secrets are used before they are
// read again (a new or dropped secret counts after at most this).
const secretsTTL = 2 * time.Second

// secrets reads the object stores' secrets of each database
// (mooncake.secrets, which only superusers read; the sidecar connects as
// one).
type secrets struct {
	dbs *databases
	mu  sync.Mutex
	by  map[string]secretsRead
}

type secretsRead struct {
	list   []*remote.Secret
	at     time.Time
	pinned bool // kept past secretsTTL (pin)
}

// pin reads the database's secrets now and keeps them until unpin: the
// files of a dropped extension's or database's tables on object stores
// are removed after the secrets table is gone.
func (s *secrets) pin(ctx context.Context, db string) {
	s.mu.Lock()
	delete(s.by, db)
	s.mu.Unlock()
	if _, err := s.get(ctx, db); err != nil {
		return
	}
	s.mu.Lock()
	if r, ok := s.by[db]; ok {
		r.pinned = true
		s.by[db] = r
	}
	s.mu.Unlock()
}

// unpin forgets what pin kept.
func (s *secrets) unpin(db string) {
	s.mu.Lock()
	delete(s.by, db)
	s.mu.Unlock()
}

// unpinOlder forgets secrets pinned longer than d ago: the drop they were
// kept for was rolled back (the extension is still there), and secrets
// changed since must count.
func (s *secrets) unpinOlder(db string, d time.Duration) {
	s.mu.Lock()
	if r, ok := s.by[db]; ok && r.pinned && time.Since(r.at) > d {
		delete(s.by, db)
	}
	s.mu.Unlock()
}

func (s *secrets) get(ctx context.Context, db string) ([]*remote.Secret, error) {
	s.mu.Lock()
	if r, ok := s.by[db]; ok && (r.pinned || time.Since(r.at) < secretsTTL) {
		s.mu.Unlock()
		return r.list, nil
	}
	s.mu.Unlock()
	conn, err := pgx.ConnectConfig(ctx, s.dbs.config(db))
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, "SELECT name, type, key_id, secret, options::text FROM mooncake.secrets ORDER BY name")
	if err != nil {
		return nil, err
	}
	var list []*remote.Secret
	for rows.Next() {
		var name, typ, keyID, secret, opts string
		if err := rows.Scan(&name, &typ, &keyID, &secret, &opts); err != nil {
			return nil, err
		}
		var m map[string]string
		if err := json.Unmarshal([]byte(opts), &m); err != nil {
			return nil, &pgconn.PgError{Code: "22023", Message: "secret " + name + ": malformed options"}
		}
		sec, err := remote.ParseSecret(name, typ, keyID, secret, m)
		if err != nil {
			return nil, err
		}
		list = append(list, sec)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.by[db] = secretsRead{list: list, at: time.Now()}
	s.mu.Unlock()
	return list, nil
}

// parseSpec reads a request's files, reading s3:// paths with the
// database's secrets.
func (s *server) parseSpec(raw json.RawMessage, db string) (*lake.Spec, error) {
	var r *lake.Remote
	if s.remote != nil {
		r = &lake.Remote{Store: s.remote, Key: db,
			Secrets: func(ctx context.Context) ([]*remote.Secret, error) { return s.secrets.get(ctx, db) }}
	}
	return lake.ParseSpec(raw, r)
}

// tableObjects moves the files of Iceberg tables kept on object stores
// (catalog.ObjectStore), with each database's secrets.
type tableObjects struct {
	st      *remote.Store
	secrets *secrets
}

func (o tableObjects) session(ctx context.Context, db string) (*remote.Session, error) {
	if db == "" {
		return nil, &pgconn.PgError{Code: "XX000", Message: "a table file on an object store without its database"}
	}
	list, err := o.secrets.get(ctx, db)
	if err != nil {
		return nil, err
	}
	return o.st.Session(list), nil
}

func (o tableObjects) Download(ctx context.Context, db, uri, local string) error {
	s, err := o.session(ctx, db)
	if err != nil {
		return err
	}
	return s.Download(ctx, uri, local)
}

func (o tableObjects) Upload(ctx context.Context, db, uri, local string) error {
	s, err := o.session(ctx, db)
	if err != nil {
		return err
	}
	return s.Upload(ctx, uri, local)
}

func (o tableObjects) Delete(ctx context.Context, db string, uris []string) error {
	s, err := o.session(ctx, db)
	if err != nil {
		return err
	}
	return s.Delete(ctx, uris)
}

func (o tableObjects) List(ctx context.Context, db, prefix string) ([]catalog.ObjectInfo, error) {
	s, err := o.session(ctx, db)
	if err != nil {
		return nil, err
	}
	list, err := s.ListAll(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]catalog.ObjectInfo, len(list))
	for i, l := range list {
		out[i] = catalog.ObjectInfo{URI: l.URI, Size: l.Size, Modified: l.Modified}
	}
	return out, nil
}
