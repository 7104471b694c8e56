package server

import (
	"bytes"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/conf"
)

func TestGeneratedCertificateIsKept(t *testing.T) {
	dir := t.TempDir()
	first, err := loadCertificate("", "", dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{generatedCertFile, generatedKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("%s not written: %v", f, err)
		}
	}
	info, _ := os.Stat(filepath.Join(dir, generatedKeyFile))
	if info.Mode().Perm()&0o077 != 0 {
		t.Errorf("private key is readable by others: %v", info.Mode())
	}
	second, err := loadCertificate("", "", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Certificate[0], second.Certificate[0]) {
		t.Fatal("a restart generated a new certificate instead of keeping the first")
	}
}

func TestConfiguredCertificateIsServed(t *testing.T) {
	// Make a pair in one directory and configure it for a server whose
	// data directory is elsewhere.
	pairDir := t.TempDir()
	if _, err := loadCertificate("", "", pairDir); err != nil {
		t.Fatal(err)
	}
	cfg := conf.Default()
	cfg.Server.Certificate = filepath.Join(pairDir, generatedCertFile)
	cfg.Server.Key = filepath.Join(pairDir, generatedKeyFile)
	dataDir := t.TempDir()
	s, err := New(Options{Config: cfg, Listen: "127.0.0.1:0", WebListen: NoWeb, AdminListen: NoAdmin, DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	s.goroutines.Go("accept", s.acceptLoop)
	t.Cleanup(s.shutdown)
	conn, err := tls.Dial("tcp", s.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	want, _ := tls.LoadX509KeyPair(cfg.Server.Certificate, cfg.Server.Key)
	if got := conn.ConnectionState().PeerCertificates[0].Raw; !bytes.Equal(got, want.Certificate[0]) {
		t.Fatal("server does not present the configured certificate")
	}
	if conn.ConnectionState().Version < tls.VersionTLS12 {
		t.Fatalf("TLS version %x", conn.ConnectionState().Version)
	}
	if _, err := os.Stat(filepath.Join(dataDir, generatedCertFile)); err == nil {
		t.Fatal("generated a certificate although one was configured")
	}
	// TLS 1.1 is refused.
	old, err := tls.Dial("tcp", s.Addr().String(), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11})
	if err == nil {
		old.Close()
		t.Fatal("TLS 1.1 handshake succeeded")
	}
	if _, err := loadCertificate(cfg.Server.Certificate, filepath.Join(pairDir, "missing.pem"), dataDir); err == nil {
		t.Fatal("a missing key file was accepted")
	}
}

// TestHandshakeDeadline: connections that never finish TLS, or finish TLS
// but never authenticate, are closed after the handshake timeout.
func TestHandshakeDeadline(t *testing.T) {
	cfg := conf.Default()
	cfg.Server.HandshakeTimeout.Duration = 300 * time.Millisecond
	s := newBareServerWith(t, cfg)
	s.goroutines.Go("accept", s.acceptLoop)
	t.Cleanup(s.shutdown)

	closedWithin := func(c net.Conn, d time.Duration) bool {
		c.SetReadDeadline(time.Now().Add(d))
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				ne, ok := err.(net.Error)
				return !(ok && ne.Timeout())
			}
		}
	}
	plain, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	tlsOnly, err := tls.Dial("tcp", s.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tlsOnly.Close()
	if !closedWithin(plain, 3*time.Second) {
		t.Error("a connection that never started TLS was kept open")
	}
	if !closedWithin(tlsOnly, 3*time.Second) {
		t.Error("a connection that never authenticated was kept open")
	}
	if s.Stats().Users != 0 {
		t.Error("an unauthenticated connection took a user slot")
	}
}
