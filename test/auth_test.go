package test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
