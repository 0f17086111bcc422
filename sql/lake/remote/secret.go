// Package remote reads objects of S3 and S3-compatible stores for the
// lake's readers: it lists globs and directories, keeps a local cache of
// the byte ranges fetched (sparse files under a size limit), and fetches
// of a Parquet object only its footer and the column chunks a query
// reads, so that DuckDB, which reads local files only here, reads the
// remote object's local copy.
package remote

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Secret is a credential for an object store, as mooncake.create_secret
// keeps it (pg_mooncake 0.1's signature: name, type, key id, secret,
// options).
type Secret struct {
	Name         string
	Type         string // S3
	KeyID        string
	Secret       string
	SessionToken string
	Region       string // default us-east-1
	Endpoint     string // host[:port] or URL; empty: AWS
	URLStyle     string // "path" or "vhost"; default vhost for AWS, path for another endpoint
	UseSSL       bool   // default true
	Scope        []string
}

// ParseSecret makes a secret of a mooncake.secrets row; options are the
// options given to create_secret (names in any case).
func ParseSecret(name, typ, keyID, secret string, options map[string]string) (*Secret, error) {
	s := &Secret{Name: name, Type: strings.ToUpper(typ), KeyID: keyID, Secret: secret, UseSSL: true}
	if s.Type != "S3" {
		return nil, &pgconn.PgError{Code: "22023", Message: fmt.Sprintf("secret %q: unknown type %q", name, typ), Hint: "The type is S3 (also for S3-compatible stores)."}
	}
	for k, v := range options {
		switch strings.ToUpper(k) {
		case "ENDPOINT":
			s.Endpoint = strings.TrimSpace(v)
		case "REGION":
			s.Region = strings.TrimSpace(v)
		case "URL_STYLE":
			switch strings.ToLower(strings.TrimSpace(v)) {
			case "path":
				s.URLStyle = "path"
			case "vhost", "virtual", "virtual_host":
				s.URLStyle = "vhost"
			default:
				return nil, &pgconn.PgError{Code: "22023", Message: fmt.Sprintf("secret %q: URL_STYLE %q is neither path nor vhost", name, v)}
			}
		case "USE_SSL":
			switch strings.ToLower(strings.TrimSpace(v)) {
			case "true", "t", "on", "yes", "1":
				s.UseSSL = true
			case "false", "f", "off", "no", "0":
				s.UseSSL = false
			default:
				return nil, &pgconn.PgError{Code: "22023", Message: fmt.Sprintf("secret %q: USE_SSL %q is not a boolean", name, v)}
			}
		case "SCOPE":
			for _, sc := range strings.Split(v, ",") {
				sc = strings.TrimSpace(sc)
				if sc == "" {
					continue
				}
				if _, err := ParseURL(sc); err != nil && !isBucketScope(sc) {
					return nil, &pgconn.PgError{Code: "22023", Message: fmt.Sprintf("secret %q: SCOPE %q is not an s3:// URL", name, sc)}
				}
				s.Scope = append(s.Scope, sc)
			}
		case "SESSION_TOKEN":
			s.SessionToken = v
		default:
			return nil, &pgconn.PgError{Code: "22023", Message: fmt.Sprintf("secret %q: unknown option %q", name, k),
				Hint: "The options are ENDPOINT, REGION, URL_STYLE, USE_SSL, SCOPE and SESSION_TOKEN."}
		}
	}
	if s.Region == "" {
		s.Region = "us-east-1"
	}
	if s.URLStyle == "" {
		s.URLStyle = "vhost"
		if s.Endpoint != "" {
			s.URLStyle = "path"
		}
	}
	return s, nil
}

func isBucketScope(sc string) bool {
	rest, ok := cutScheme(sc)
	return ok && rest != "" && !strings.Contains(rest, "/")
}

// matchLen is how much of url a secret's scope covers: the longest scope
// that is a prefix of it, 0 for a secret without a scope (it covers
// everything, least specifically), -1 when the scope excludes it.
func (s *Secret) matchLen(u string) int {
	if len(s.Scope) == 0 {
		return 0
	}
	best := -1
	for _, sc := range s.Scope {
		if strings.HasPrefix(normalize(u), normalize(sc)) && len(sc) > best {
			best = len(sc)
		}
	}
	return best
}

// normalize writes s3a:// and s3n:// URLs as s3://.
func normalize(u string) string {
	if rest, ok := cutScheme(u); ok {
		return "s3://" + rest
	}
	return u
}

// Pick chooses the secret for url among secrets: the one whose scope
// covers the longest prefix of it (as DuckDB chooses); nil when none
// applies (the request is then made without credentials).
func Pick(secrets []*Secret, url string) *Secret {
	var best *Secret
	bestLen := -1
	for _, s := range secrets {
		if n := s.matchLen(url); n > bestLen || (n == bestLen && best != nil && s.Name < best.Name) {
			best, bestLen = s, n
		}
	}
	return best
}
