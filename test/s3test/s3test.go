// Package s3test starts a real S3-compatible server for tests: moto's
// server mode (PyPI's moto[server]), on 127.0.0.1, behind a proxy that
// counts the bytes of object data it sends, so tests can measure what a
// query transfers.
package s3test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Server is a running S3-compatible server.
type Server struct {
	Endpoint string // host:port of the counting proxy, for secrets' ENDPOINT
	Direct   string // host:port of the server itself
	Client   *s3.Client

	sent     atomic.Int64 // bytes of GET responses' bodies through the proxy
	gets     atomic.Int64
	requests atomic.Int64
}

// KeyID and Secret are the credentials tests give (moto takes any).
const (
	KeyID  = "mooncake-test"
	Secret = "mooncake-test-secret"
)

// Start starts moto's server and the proxy; both stop when the test ends.
// Without moto, the test fails under MOONCAKE_REQUIRE_PG and is skipped
// otherwise.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := osexec.LookPath("moto_server")
	args := []string{}
	if err != nil {
		bin, args = "python3", []string{"-m", "moto.server"}
		if out, err := osexec.Command("python3", "-c", "import moto.server").CombinedOutput(); err != nil {
			if os.Getenv("MOONCAKE_REQUIRE_PG") != "" {
				t.Fatalf("moto's server is required (pip install 'moto[server]'): %s", out)
			}
			t.Skip("no moto server (pip install 'moto[server]')")
		}
	}
	port := freePort(t)
	cmd := osexec.Command(bin, append(args, "-H", "127.0.0.1", "-p", fmt.Sprint(port))...)
	logf, _ := os.CreateTemp("", "moto-*.log")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		os.Remove(logf.Name())
	})
	s := &Server{Direct: fmt.Sprintf("127.0.0.1:%d", port)}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + s.Direct + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logf.Name())
			t.Fatalf("moto server did not start: %v\n%s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}

	target, _ := url.Parse("http://" + s.Direct)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(r *http.Response) error {
		if r.Request.Method == http.MethodGet {
			r.Body = &counting{ReadCloser: r.Body, n: &s.sent}
		}
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if r.Method == http.MethodGet && r.URL.Query().Get("list-type") == "" && !strings.HasSuffix(r.URL.Path, "/") {
			s.gets.Add(1)
		}
		proxy.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	s.Endpoint = ln.Addr().String()

	s.Client = s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + s.Direct), UsePathStyle: true,
		Credentials:                credentials.NewStaticCredentialsProvider(KeyID, Secret, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired})
	return s
}

// Sent is the number of bytes of GET response bodies sent through the
// proxy so far (object data; listings too).
func (s *Server) Sent() int64 { return s.sent.Load() }

// Gets is the number of object GETs through the proxy so far.
func (s *Server) Gets() int64 { return s.gets.Load() }

// Bucket creates a bucket.
func (s *Server) Bucket(t testing.TB, name string) {
	t.Helper()
	if _, err := s.Client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
}

// Put uploads data as bucket/key.
func (s *Server) Put(t testing.TB, bucket, key string, data []byte) {
	t.Helper()
	if _, err := s.Client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
		Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
}

// Upload uploads every file under dir as bucket/prefix/<relative path>.
func (s *Server) Upload(t testing.TB, dir, bucket, prefix string) {
	t.Helper()
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s.Put(t, bucket, strings.TrimPrefix(prefix+"/"+filepath.ToSlash(rel), "/"), data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// SecretSQL is the mooncake.create_secret call giving the server's
// credentials to s3:// paths of scope (empty: all).
func (s *Server) SecretSQL(name, scope string) string {
	opts := fmt.Sprintf(`{"ENDPOINT": "%s", "URL_STYLE": "path", "USE_SSL": "false", "REGION": "us-east-1"`, s.Endpoint)
	if scope != "" {
		opts += fmt.Sprintf(`, "SCOPE": "%s"`, scope)
	}
	return fmt.Sprintf(`SELECT mooncake.create_secret('%s', 'S3', '%s', '%s', '%s}')`, name, KeyID, Secret, opts)
}

type counting struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *counting) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
