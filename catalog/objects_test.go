package catalog

import (
	"context"
	gosql "database/sql"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"
)

// nowhere is an ObjectStore for path mapping tests: it moves nothing.
type nowhere struct{}

func (nowhere) Download(context.Context, string, string, string) error { return nil }
func (nowhere) Upload(context.Context, string, string, string) error   { return nil }
func (nowhere) Delete(context.Context, string, []string) error         { return nil }
func (nowhere) List(context.Context, string, string) ([]ObjectInfo, error) {
	return nil, nil
}

func TestNormalizeLocation(t *testing.T) {
	for _, c := range []struct{ in, want, state string }{
		{"s3://b/p/", "s3://b/p", ""},
		{"S3A://b//", "s3://b", ""},
		{"s3n://b/a/b", "s3://b/a/b", ""},
		{"s3://", "", "22023"},
		{"s3://b/a/../c", "", "22023"},
		{"s3://b/a//c", "", "22023"},
		{"gs://b/p", "", "0A000"},
		{"file:///data/x/", "/data/x", ""},
		{"/data/./x", "/data/x", ""},
		{"relative", "", "22023"},
	} {
		got, err := NormalizeLocation(c.in)
		if sqlState(err) != c.state || got != c.want {
			t.Errorf("NormalizeLocation(%q) = %q, %v; want %q, SQLSTATE %q", c.in, got, err, c.want, c.state)
		}
	}
	if got := joinLoc("s3://b/p", "db", "t-1"); got != "s3://b/p/db/t-1" {
		t.Errorf("joinLoc on S3 = %q", got)
	}
	if got := joinLoc("/w", "db", "t-1"); got != filepath.Join("/w", "db", "t-1") {
		t.Errorf("joinLoc on disk = %q", got)
	}
}

// TestObjectPaths checks that local copies' paths and object URIs map to
// each other, in Go and in the DuckDB SQL that reads and writes position
// delete files, and that no key climbs out of the copies' root.
func TestObjectPaths(t *testing.T) {
	root := t.TempDir()
	SetObjectStore(nowhere{}, root)
	defer SetObjectStore(nil, "")
	uri := "s3://bucket/wh/db/public/t-1/data/data-1.parquet"
	local := localPath(uri)
	if local != filepath.Join(root, "bucket", "wh", "db", "public", "t-1", "data", "data-1.parquet") {
		t.Fatalf("localPath(%q) = %q", uri, local)
	}
	if got := remoteOf("s3://bucket/wh/db/public/t-1", local); got != uri {
		t.Fatalf("remoteOf = %q; want %q", got, uri)
	}
	if got := remoteOf("/disk/t", "/disk/t/data/x.parquet"); got != "/disk/t/data/x.parquet" {
		t.Fatalf("remoteOf of a local table = %q", got)
	}
	if got := localPath("s3://bucket/a/../../../etc/passwd"); !strings.HasPrefix(got, filepath.Join(root, "bucket", "a")+"/") {
		t.Fatalf("localPath of a key with .. segments = %q: outside %s", got, filepath.Join(root, "bucket"))
	}
	if got := localPath("file:///x/y"); got != "/x/y" {
		t.Fatalf("localPath of a file URL = %q", got)
	}

	db, err := gosql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var toLocal, toRemote, other string
	if err := db.QueryRow("SELECT "+localSQL(QuoteLiteral(uri))+", "+remoteSQL(QuoteLiteral(local))+", "+
		remoteSQL("'/elsewhere/x.parquet'")).Scan(&toLocal, &toRemote, &other); err != nil {
		t.Fatal(err)
	}
	if toLocal != local || toRemote != uri || other != "/elsewhere/x.parquet" {
		t.Fatalf("DuckDB mapping: %q, %q, %q; want %q, %q and the other path unchanged", toLocal, toRemote, other, local, uri)
	}
}
