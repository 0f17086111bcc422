package service

import (
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// The Unix socket is private to the cluster's OS user (mode 0600). The TCP
// listener, for backends of a cluster on another host, serves a connection
// only once it proves it knows the listener's secret: its first frame is
// an A frame holding the secret, as text. The secret is 32 random bytes in
// hex, kept in a file of mode 0600 (by default
// $PGDATA/pg_mooncake/sidecar.secret, written at the first start with
// --tcp); the backends read it from pg_mooncake.sidecar_secret_file. The
// Arrow Flight service authenticates as PostgreSQL does, separately.
//
// With a certificate (--tls-cert, --tls-key) the listener speaks TLS, and
// the secret travels inside it; backends verify the certificate as their
// pg_mooncake.sidecar_sslmode asks. Without one it listens only on a
// loopback address, unless --tcp-insecure says the network is trusted.

// frameAuth is the frame a TCP client sends first.
const frameAuth = 'A'

// SecretPath is the default secret file of a data directory.
func SecretPath(dataDir string) string {
	return filepath.Join(dataDir, "pg_mooncake", "sidecar.secret")
}

// LoadSecret reads the secret file, creating it with a new secret when it
// does not exist. A file others may read is refused.
func LoadSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		var raw [32]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return "", err
		}
		secret := hex.EncodeToString(raw[:])
		if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("write the TCP secret: %w", err)
		}
		return secret, nil
	} else if err != nil {
		return "", fmt.Errorf("read the TCP secret: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("the TCP secret file %s may be read by others (mode %o); make it 0600", path, fi.Mode().Perm())
	}
	secret := strings.TrimSpace(string(b))
	if len(secret) < 32 {
		return "", fmt.Errorf("the TCP secret in %s is shorter than 32 characters", path)
	}
	return secret, nil
}

// CheckListenAddress refuses a TCP address other hosts can reach when the
// listener has no TLS, since its secret and the rows would cross the
// network in clear. insecure overrides (a private network the operator
// trusts).
func CheckListenAddress(addr string, withTLS, insecure bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("bad TCP address %q: %w", addr, err)
	}
	if withTLS || insecure {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("refusing to listen on %s without TLS: the secret and the rows would cross the network in clear "+
		"(give the sidecar a certificate with --tls-cert and --tls-key, listen on a loopback address, "+
		"or pass --tcp-insecure for a network you trust)", addr)
}

// LoadTLS is the TCP listener's TLS configuration from a certificate and
// its key (PEM files; the key must not be readable by others), or nil
// when neither is given. TLS 1.2 is the least version accepted.
func LoadTLS(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("a TLS certificate and its key must be given together")
	}
	if fi, err := os.Stat(keyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("the TLS key file %s may be read by others (mode %o); make it 0600", keyFile, fi.Mode().Perm())
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load the TLS certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// authenticate checks the payload of a client's first frame on TCP.
func authenticate(typ byte, payload []byte, secret string) error {
	if typ != frameAuth {
		return userError("28000", "the mooncake sidecar's TCP listener requires authentication")
	}
	if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(string(payload))), []byte(secret)) != 1 {
		return userError("28P01", "authentication with the mooncake sidecar failed: wrong secret")
	}
	return nil
}
