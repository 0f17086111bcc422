package test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmooncake/mooncake/test/pgtest"
)

// freePort finds a TCP port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// sidecarCall sends frames to the sidecar's TCP listener and returns the
// type and payload of its answer.
func sidecarCall(t *testing.T, addr string, frames ...[]byte) (byte, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for _, f := range frames {
		if _, err := c.Write(f); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	r := bufio.NewReader(c)
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		t.Fatalf("read: %v", err)
	}
	payload := make([]byte, binary.BigEndian.Uint32(hdr[1:]))
	if _, err := io.ReadFull(r, payload); err != nil {
		t.Fatalf("read: %v", err)
	}
	return hdr[0], string(payload)
}

func frame(typ byte, payload string) []byte {
	b := make([]byte, 5+len(payload))
	b[0] = typ
	binary.BigEndian.PutUint32(b[1:], uint32(len(payload)))
	copy(b[5:], payload)
	return b
}

// TestTCPAuthentication checks that the sidecar's TCP listener serves only
// clients that know its secret (28000 without it, 28P01 with a wrong one),
// and that backends reaching the sidecar over TCP send it.
func TestTCPAuthentication(t *testing.T) {
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c, conn := startMooncake(t, pgtest.WithSetting("pg_mooncake.sidecar_listen", addr))
	ctx := context.Background()

	var up bool
	for i := 0; i < 100 && !up; i++ {
		if cn, err := net.Dial("tcp", addr); err == nil {
			cn.Close()
			up = true
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if !up {
		t.Fatalf("the sidecar does not listen on %s", addr)
	}
	status := frame('Q', `{"op":"status"}`)
	if typ, p := sidecarCall(t, addr, status); typ != 'E' || !strings.Contains(p, "28000") {
		t.Errorf("request without the secret: %c %q; want E with 28000", typ, p)
	}
	if typ, p := sidecarCall(t, addr, frame('A', strings.Repeat("0", 64)), status); typ != 'E' || !strings.Contains(p, "28P01") {
		t.Errorf("request with a wrong secret: %c %q; want E with 28P01", typ, p)
	}
	secretFile := filepath.Join(c.DataDir(), "pg_mooncake", "sidecar.secret")
	fi, err := os.Stat(secretFile)
	if err != nil {
		t.Fatalf("secret file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode %o; want 0600", fi.Mode().Perm())
	}
	secret, err := os.ReadFile(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	if typ, p := sidecarCall(t, addr, frame('A', strings.TrimSpace(string(secret))), status); typ != 'J' || !strings.Contains(p, `"pid"`) {
		t.Errorf("request with the secret: %c %q; want J with the status", typ, p)
	}

	// Backends reach the sidecar over TCP with the secret.
	exec(t, conn, `CREATE TABLE t (id int PRIMARY KEY)`)
	exec(t, conn, `INSERT INTO t SELECT generate_series(1, 10)`)
	exec(t, conn, `CALL mooncake.create_table('t_m', 't')`)
	exec(t, conn, fmt.Sprintf(`ALTER SERVER mooncake OPTIONS (ADD host '127.0.0.1', port '%d')`, port))
	if n := queryInt(t, conn, `SELECT count(*) FROM t_m`); n != 10 {
		t.Errorf("count over TCP = %d; want 10", n)
	}
	// With a wrong secret they are refused.
	wrong := filepath.Join(c.DataDir(), "wrong.secret")
	if err := os.WriteFile(wrong, []byte(strings.Repeat("1", 64)), 0o644); err != nil {
		t.Fatal(err)
	}
	exec(t, conn, fmt.Sprintf(`ALTER SYSTEM SET pg_mooncake.sidecar_secret_file = '%s'`, wrong))
	exec(t, conn, `SELECT pg_reload_conf()`)
	time.Sleep(200 * time.Millisecond)
	fresh := c.Conn(t, "postgres")
	if _, err := fresh.Exec(ctx, `SELECT count(*) FROM t_m`); sqlState(err) != "28P01" {
		t.Errorf("query with a wrong secret: %v; want SQLSTATE 28P01", err)
	}
}

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue makes a server certificate for dnsNames, as PEM certificate and key.
func (ca *testCA) issue(t *testing.T, dnsNames ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: dnsNames[0]},
		DNSNames:     dnsNames,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// TestTCPTLS checks the sidecar's TCP listener with a certificate: it
// speaks only TLS, still wants the secret inside it, and backends verify
// its certificate as pg_mooncake.sidecar_sslmode asks.
func TestTCPTLS(t *testing.T) {
	ca := newTestCA(t, "mooncake test CA")
	other := newTestCA(t, "some other CA")
	certPEM, keyPEM := ca.issue(t, "localhost")
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c, conn := startMooncake(t,
		pgtest.WithFile("sidecar.crt", certPEM, 0o644),
		pgtest.WithFile("sidecar.key", keyPEM, 0o600),
		pgtest.WithFile("ca.crt", ca.pem, 0o644),
		pgtest.WithFile("other-ca.crt", other.pem, 0o644),
		pgtest.WithSetting("pg_mooncake.sidecar_listen", addr),
		pgtest.WithSetting("pg_mooncake.sidecar_ssl_cert_file", "sidecar.crt"),
		pgtest.WithSetting("pg_mooncake.sidecar_ssl_key_file", "sidecar.key"))
	ctx := context.Background()
	if _, ok := waitFor(5*time.Second, func() bool {
		cn, err := net.Dial("tcp", addr)
		if err == nil {
			cn.Close()
		}
		return err == nil
	}); !ok {
		t.Fatalf("the sidecar does not listen on %s", addr)
	}

	// A client without TLS gets no answer: the listener wants a handshake.
	if cn, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
		cn.SetDeadline(time.Now().Add(5 * time.Second))
		cn.Write(frame('Q', `{"op":"status"}`))
		var b [1]byte
		if n, err := cn.Read(b[:]); err == nil && n > 0 && b[0] != 0x15 {
			t.Errorf("a plain-text client got an answer starting %q; want none (or a TLS alert)", b[0])
		}
		cn.Close()
	}

	// A TLS client that trusts the CA must still send the secret.
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)
	tlsCall := func(frames ...[]byte) (byte, string) {
		t.Helper()
		cn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
			&tls.Config{RootCAs: roots, ServerName: "localhost"})
		if err != nil {
			t.Fatalf("TLS dial: %v", err)
		}
		defer cn.Close()
		cn.SetDeadline(time.Now().Add(10 * time.Second))
		for _, f := range frames {
			cn.Write(f)
		}
		var hdr [5]byte
		if _, err := io.ReadFull(cn, hdr[:]); err != nil {
			t.Fatalf("read: %v", err)
		}
		payload := make([]byte, binary.BigEndian.Uint32(hdr[1:]))
		io.ReadFull(cn, payload)
		return hdr[0], string(payload)
	}
	status := frame('Q', `{"op":"status"}`)
	if typ, p := tlsCall(status); typ != 'E' || !strings.Contains(p, "28000") {
		t.Errorf("TLS request without the secret: %c %q; want E with 28000", typ, p)
	}
	secret, err := os.ReadFile(filepath.Join(c.DataDir(), "pg_mooncake", "sidecar.secret"))
	if err != nil {
		t.Fatal(err)
	}
	if typ, p := tlsCall(frame('A', strings.TrimSpace(string(secret))), status); typ != 'J' || !strings.Contains(p, `"pid"`) {
		t.Errorf("TLS request with the secret: %c %q; want J with the status", typ, p)
	}

	exec(t, conn, `CREATE TABLE t (id int PRIMARY KEY)`)
	exec(t, conn, `INSERT INTO t SELECT generate_series(1, 10)`)
	exec(t, conn, `CALL mooncake.create_table('t_m', 't')`)
	exec(t, conn, fmt.Sprintf(`ALTER SERVER mooncake OPTIONS (ADD host 'localhost', port '%d')`, port))

	// Each sslmode and root certificate, then the server's host: whether a
	// backend's query over TCP succeeds, or the words its error has.
	for _, tc := range []struct {
		sslmode, rootcert, host string
		fail                    string
	}{
		{"disable", "", "localhost", "closed the connection"},
		{"require", "", "localhost", ""},
		{"require", "", "127.0.0.1", ""},
		{"verify-ca", "", "localhost", "sidecar_sslrootcert is not set"},
		{"verify-ca", "other-ca.crt", "localhost", "certificate was not accepted"},
		{"verify-ca", "ca.crt", "127.0.0.1", ""},
		{"verify-full", "ca.crt", "localhost", ""},
		{"verify-full", "ca.crt", "127.0.0.1", "certificate was not accepted"},
		{"verify-full", "missing.crt", "localhost", "Could not read the root certificates"},
	} {
		exec(t, conn, fmt.Sprintf(`ALTER SYSTEM SET pg_mooncake.sidecar_sslmode = '%s'`, tc.sslmode))
		exec(t, conn, fmt.Sprintf(`ALTER SYSTEM SET pg_mooncake.sidecar_sslrootcert = '%s'`, tc.rootcert))
		exec(t, conn, fmt.Sprintf(`ALTER SERVER mooncake OPTIONS (SET host '%s')`, tc.host))
		exec(t, conn, `SELECT pg_reload_conf()`)
		time.Sleep(200 * time.Millisecond)
		fresh := c.Conn(t, "postgres")
		var n int
		err := fresh.QueryRow(ctx, `SELECT count(*) FROM t_m`).Scan(&n)
		fresh.Close(ctx)
		name := fmt.Sprintf("sslmode %s, rootcert %q, host %s", tc.sslmode, tc.rootcert, tc.host)
		if tc.fail == "" {
			if err != nil || n != 10 {
				t.Errorf("%s: count = %d, %v; want 10", name, n, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: the query succeeded; want an error about %q", name, tc.fail)
			continue
		}
		t.Logf("%s: %v (%s)", name, err, detailOf(err))
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code[:2] != "08" || !strings.Contains(pgErr.Message+" "+pgErr.Detail, tc.fail) {
			t.Errorf("%s: %v (detail %q); want a connection error about %q", name, err, detailOf(err), tc.fail)
		}
	}
}

func detailOf(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Detail
	}
	return ""
}
