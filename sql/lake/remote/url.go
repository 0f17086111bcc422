package remote

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// URL is an object (or a prefix or glob of objects) of a bucket.
type URL struct {
	Bucket string
	Key    string // no leading slash
}

func (u URL) String() string { return "s3://" + u.Bucket + "/" + u.Key }

// IsRemote tells whether a path names an object store's objects rather
// than the server's files.
func IsRemote(path string) bool { return strings.Contains(path, "://") }

func cutScheme(u string) (string, bool) {
	for _, p := range []string{"s3://", "s3a://", "s3n://"} {
		if len(u) >= len(p) && strings.EqualFold(u[:len(p)], p) {
			return u[len(p):], true
		}
	}
	return "", false
}

// ParseURL reads s3://bucket/key (s3a:// and s3n:// too).
func ParseURL(u string) (URL, error) {
	rest, ok := cutScheme(u)
	if !ok {
		scheme, _, _ := strings.Cut(u, "://")
		return URL{}, &pgconn.PgError{Code: "0A000", Message: fmt.Sprintf("path %q: the scheme %s:// is not supported", u, scheme),
			Hint: "Remote paths are s3:// URLs (S3 and S3-compatible stores)."}
	}
	bucket, key, _ := strings.Cut(rest, "/")
	if bucket == "" {
		return URL{}, &pgconn.PgError{Code: "22023", Message: fmt.Sprintf("path %q names no bucket", u)}
	}
	return URL{Bucket: bucket, Key: key}, nil
}

// hasGlob tells whether a key has glob characters.
func hasGlob(key string) bool { return strings.ContainsAny(key, "*?[") }

// globPrefix is the part of a glob before its first glob character, cut
// at a slash: the prefix to list.
func globPrefix(key string) string {
	i := strings.IndexAny(key, "*?[")
	if i < 0 {
		return key
	}
	return key[:strings.LastIndex(key[:i], "/")+1]
}

// matchGlob matches an object key against a glob as DuckDB does: * and ?
// and [...] within one path segment, ** any number of segments.
func matchGlob(glob, key string) bool {
	return matchSegments(strings.Split(glob, "/"), strings.Split(key, "/"))
}

func matchSegments(glob, key []string) bool {
	for len(glob) > 0 {
		if glob[0] == "**" {
			for i := 0; i <= len(key); i++ {
				if matchSegments(glob[1:], key[i:]) {
					return true
				}
			}
			return false
		}
		if len(key) == 0 {
			return false
		}
		ok, err := pathMatch(glob[0], key[0])
		if err != nil || !ok {
			return false
		}
		glob, key = glob[1:], key[1:]
	}
	return len(key) == 0
}
