package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/conf"
)

// writePair writes a self-signed server certificate named cn, valid from
// notBefore for a day, and its key as PEM files, each replaced atomically
// as certbot does.
func writePair(t *testing.T, certFile, keyFile, cn string, notBefore time.Time) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notBefore.Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if keyFile != "" {
		replaceFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	}
	replaceFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// servedName is the common name of the certificate a new TLS connection
// to s gets.
func servedName(t *testing.T, s *testServer) string {
	t.Helper()
	c, err := tls.Dial("tcp", s.addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// TestCertificateIsReplacedWithoutRestart: new files are served to new
// connections after Reload (SIGHUP) and, without it, soon after they are
// written; a bad pair is refused and the current one kept; a client
// connected all along keeps talking.
func TestCertificateIsReplacedWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "privkey.pem")
	now := time.Now().Add(-time.Hour)
	writePair(t, certFile, keyFile, "first", now)
	cfg := conf.Default()
	cfg.Server.Certificate, cfg.Server.Key = certFile, keyFile
	var logs logBuffer
	s := startTestServer(t, testOpts{config: cfg, logger: slog.New(slog.NewTextHandler(&logs, nil))})
	alice := s.join(t, "alice", nil)
	if got := servedName(t, s); got != "first" {
		t.Fatalf("serving %q, want first", got)
	}
	stillTalks := func(when string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := alice.Ping(ctx); err != nil {
			t.Fatalf("%s: the client connected before lost its connection: %v", when, err)
		}
	}

	// Replaced, then SIGHUP.
	writePair(t, certFile, keyFile, "second", now)
	if err := s.Reload(); err != nil && !strings.Contains(err.Error(), "plenum.toml") {
		t.Fatalf("Reload: %v", err) // (no configuration file to reload is fine here)
	}
	if got := servedName(t, s); got != "second" {
		t.Fatalf("after Reload serving %q, want second", got)
	}
	stillTalks("after Reload")

	// Replaced, no signal: the watcher picks it up.
	writePair(t, certFile, keyFile, "third", now)
	written := time.Now()
	for servedName(t, s) != "third" {
		if time.Since(written) > 5*time.Second {
			t.Fatalf("the replaced files were not picked up within 5 s; log:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("the watcher served the new files %v after they were written", time.Since(written).Round(10*time.Millisecond))
	stillTalks("after the watcher's reload")

	// Bad pairs are refused, and the current one stays.
	for _, bad := range []struct {
		name  string
		write func()
	}{
		{"a certificate without its key", func() { writePair(t, certFile, "", "mismatched", now) }},
		{"an expired certificate", func() { writePair(t, certFile, keyFile, "expired", now.Add(-48*time.Hour)) }},
		{"not PEM at all", func() { replaceFile(t, certFile, []byte("-----BEGIN nonsense")) }},
	} {
		bad.write()
		err := s.Reload()
		if err == nil || !strings.Contains(err.Error(), certFile) {
			t.Errorf("%s: Reload = %v, want an error naming %s", bad.name, err, certFile)
		}
		if got := servedName(t, s); got != "third" {
			t.Errorf("%s: serving %q, want the previous certificate", bad.name, got)
		}
	}
	if l := logs.String(); !strings.Contains(l, "new certificate refused; the current one stays") {
		t.Errorf("the refusal is not in the log:\n%s", l)
	}
	stillTalks("after the refused pairs")
}
