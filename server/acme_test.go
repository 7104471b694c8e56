package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/internal/freeport"
	"github.com/plenum-voice/plenum/internal/pebbletest"
	"github.com/plenum-voice/plenum/server"
)

// TestACMEWithPebble runs the ACME path end to end against pebble on
// loopback: the server obtains a certificate for its name by TLS-ALPN-01
// on the Mumble listener, serves it to a Mumble client that trusts only
// pebble's root (with SNI and without), serves the same certificate to a
// browser-like HTTPS client on the web listener, and renews it by itself
// without a restart.
func TestACMEWithPebble(t *testing.T) {
	if testing.Short() {
		t.Skip("starts pebble")
	}
	const domain, second = "voice.plenum.test", "mumble.plenum.test"
	port := freeport.TCP(t)
	// Certificates live 20 s: autocert renews with a third of the
	// lifetime left, so the second one comes some 13 s after the first,
	// and the checks before have time to spare on a loaded machine.
	peb := pebbletest.Start(t, pebbletest.Config{TLSPort: port, Validity: 20 * time.Second})

	var logs logBuffer
	srv := startTestServer(t, testOpts{
		listen: "127.0.0.1:" + strconv.Itoa(port),
		web:    true,
		logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		edit: func(c *conf.Config) {
			c.Server.ACMEDomain = domain + ", " + second
			c.Server.ACMEEmail = "ops@plenum.test"
			c.Server.ACMEDirectory = peb.DirectoryURL
			c.Server.ACMECAFile = peb.CAFile
			// pebble checks from 127.0.0.1, three connections a name,
			// none of which logs in: they must not count as failed
			// attempts. The test's own bare handshakes come from
			// 127.0.0.2, which is exempt.
			c.Server.AutobanAttempts = 2
			c.Server.AutobanExempt = []string{probeAddr.String()}
		},
	})
	roots := x509.NewCertPool()
	roots.AddCert(peb.Root(t))

	first := waitForCertificate(t, srv.addr, domain, roots, nil, 30*time.Second)
	t.Logf("first certificate: serial %s, valid %s to %s", first.SerialNumber, first.NotBefore.Format(time.TimeOnly), first.NotAfter.Format(time.TimeOnly))

	// A Mumble client that trusts only pebble's root logs in; the chain
	// and the name were verified by crypto/tls, and the chain ends in
	// that root.
	var state tls.ConnectionState
	p := srv.join(t, "verifier", func(c *client.Config) {
		c.TLS = &tls.Config{RootCAs: roots, ServerName: domain, MinVersion: tls.VersionTLS12,
			VerifyConnection: func(cs tls.ConnectionState) error { state = cs; return nil }}
	})
	p.Close()
	if len(state.VerifiedChains) == 0 {
		t.Fatal("the Mumble client's handshake verified no chain")
	}
	chain := state.VerifiedChains[0]
	if got := chain[len(chain)-1]; !got.Equal(peb.Root(t)) {
		t.Errorf("chain ends in %q, want pebble's root", got.Subject)
	}
	if len(state.PeerCertificates) < 2 {
		t.Errorf("the server sent %d certificates, want the leaf and pebble's intermediate", len(state.PeerCertificates))
	}
	if err := state.PeerCertificates[0].VerifyHostname(domain); err != nil {
		t.Error(err)
	}

	// Without SNI (Mumble clients connecting by address) the first
	// domain's certificate is served; the second name has its own.
	noSNI := handshakeLeaf(t, srv.addr, &tls.Config{InsecureSkipVerify: true})
	if _, err := noSNI.Verify(x509.VerifyOptions{Roots: roots, DNSName: domain, Intermediates: intermediates(state)}); err != nil {
		t.Errorf("without SNI: %v", err)
	}
	waitForCertificate(t, srv.addr, second, roots, nil, 30*time.Second)

	// The web listener serves the same certificate: the join page loads
	// over HTTPS for a client that trusts only pebble's root.
	webLeaf := getPage(t, srv.WebAddr().String(), domain, roots)
	current := handshakeLeaf(t, srv.addr, &tls.Config{RootCAs: roots, ServerName: domain})
	if !webLeaf.Equal(current) {
		t.Errorf("the web listener serves serial %s, the Mumble listener %s", webLeaf.SerialNumber, current.SerialNumber)
	}

	// Renewal: a different certificate for the same name, without a
	// restart, verified like the first.
	renewed := waitForCertificate(t, srv.addr, domain, roots, first, 40*time.Second)
	t.Logf("renewed certificate: serial %s, valid %s to %s", renewed.SerialNumber, renewed.NotBefore.Format(time.TimeOnly), renewed.NotAfter.Format(time.TimeOnly))
	if !renewed.NotAfter.After(first.NotAfter) {
		t.Errorf("renewed certificate ends %v, not after the first's %v", renewed.NotAfter, first.NotAfter)
	}
	waitForLog(t, &logs, "ACME certificate renewed", 5*time.Second)

	if renewedWeb := getPage(t, srv.WebAddr().String(), domain, roots); !renewedWeb.Equal(renewed) {
		t.Errorf("after renewal the web listener serves serial %s, the Mumble listener %s", renewedWeb.SerialNumber, renewed.SerialNumber)
	}

	// After all of pebble's checks, a client from pebble's address
	// still logs in: the challenges were closed as such, blameless.
	srv.join(t, "after-renewal", func(c *client.Config) {
		c.TLS = &tls.Config{RootCAs: roots, ServerName: domain, MinVersion: tls.VersionTLS12}
	}).Close()
	if !strings.Contains(logs.String(), "reason=acme_challenge") {
		t.Error("no connection was closed as an ACME challenge")
	}

	// The cache: account key and certificates with their keys, 0600.
	entries, err := os.ReadDir(filepath.Join(srv.dataDir, "acme"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		info, _ := e.Info()
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", e.Name(), info.Mode().Perm())
		}
	}
	for _, want := range []string{"acme_account+key", domain, second} {
		if !containsString(names, want) {
			t.Errorf("acme cache holds %q, want %q among them", names, want)
		}
	}

	srv.stop()
	out := logs.String()
	for line := range strings.SplitSeq(out, "\n") {
		if strings.Contains(line, "ACME") {
			t.Log(line)
		}
	}
	for _, want := range []string{"serving the self-signed certificate until the CA issues one", "ACME certificate obtained"} {
		if strings.Count(out, want) < 1 {
			t.Errorf("log lacks %q", want)
		}
	}
	if n := strings.Count(out, "serving the self-signed certificate"); n != 1 {
		t.Errorf("the self-signed notice was logged %d times, want once", n)
	}
	if strings.Contains(out, "127.0.0.1") {
		t.Errorf("the log names an address:\n%s", out)
	}
}

// TestACMEChallengeOnWebListener: with port 443 reaching the web
// listener instead of the Mumble one, the challenge is answered there,
// and the certificate serves both listeners.
func TestACMEChallengeOnWebListener(t *testing.T) {
	if testing.Short() {
		t.Skip("starts pebble")
	}
	const domain = "web.plenum.test"
	webPort := freeport.TCP(t)
	peb := pebbletest.Start(t, pebbletest.Config{TLSPort: webPort})
	srv := startTestServer(t, testOpts{
		web:       true,
		webListen: "127.0.0.1:" + strconv.Itoa(webPort),
		edit: func(c *conf.Config) {
			c.Server.ACMEDomain = domain
			c.Server.ACMEDirectory = peb.DirectoryURL
			c.Server.ACMECAFile = peb.CAFile
		},
	})
	roots := x509.NewCertPool()
	roots.AddCert(peb.Root(t))
	webLeaf := waitForCertificate(t, srv.WebAddr().String(), domain, roots, nil, 30*time.Second)
	if got := getPage(t, srv.WebAddr().String(), domain, roots); !got.Equal(webLeaf) {
		t.Errorf("the page came with serial %s, the handshake before with %s", got.SerialNumber, webLeaf.SerialNumber)
	}
	var state tls.ConnectionState
	srv.join(t, "verifier", func(c *client.Config) {
		c.TLS = &tls.Config{RootCAs: roots, ServerName: domain, MinVersion: tls.VersionTLS12,
			VerifyConnection: func(cs tls.ConnectionState) error { state = cs; return nil }}
	}).Close()
	if len(state.VerifiedChains) == 0 || !state.PeerCertificates[0].Equal(webLeaf) {
		t.Errorf("the Mumble listener did not serve the verified certificate the web listener serves")
	}
}

// TestACMESelfSignedUntilIssued: while the CA does not answer, the
// self-signed certificate is served and said so once, and the server
// stops at once although a request to the CA hangs.
func TestACMESelfSignedUntilIssued(t *testing.T) {
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			accepted <- c // held open, never answered
		}
	}()
	defer func() {
		for {
			select {
			case c := <-accepted:
				c.Close()
			default:
				return
			}
		}
	}()

	var logs logBuffer
	srv := startTestServer(t, testOpts{
		logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		edit: func(c *conf.Config) {
			c.Server.ACMEDomain = "voice.plenum.test"
			c.Server.ACMEDirectory = "https://" + hang.Addr().String() + "/dir"
		},
	})
	select {
	case c := <-accepted:
		accepted <- c // the server is asking the CA, which does not answer
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not contact the CA")
	}
	selfSigned, err := tls.LoadX509KeyPair(filepath.Join(srv.dataDir, "cert.pem"), filepath.Join(srv.dataDir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	got := handshakeLeaf(t, srv.addr, &tls.Config{InsecureSkipVerify: true, ServerName: "voice.plenum.test"})
	if !bytes.Equal(got.Raw, selfSigned.Certificate[0]) {
		t.Errorf("served %q, want the self-signed certificate", got.Subject)
	}
	if took := srv.stop(); took > 3*time.Second {
		t.Errorf("stopping took %v with a request to the CA hanging", took)
	}
	if n := strings.Count(logs.String(), "serving the self-signed certificate until the CA issues one"); n != 1 {
		t.Errorf("the notice was logged %d times, want once:\n%s", n, logs.String())
	}
}

// TestACMECAFileMustLoad: an unreadable acme_ca_file stops the start with
// a clear error.
func TestACMECAFileMustLoad(t *testing.T) {
	cfg := conf.Default()
	cfg.Server.ACMEDomain = "voice.plenum.test"
	cfg.Server.ACMECAFile = filepath.Join(t.TempDir(), "missing.pem")
	_, err := server.New(server.Options{Config: cfg, Listen: "127.0.0.1:0", AdminListen: server.NoAdmin, DataDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "acme_ca_file") || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("New = %v, want an acme_ca_file error", err)
	}
}

// probeAddr is where the ACME tests' bare handshakes come from.
var probeAddr = netip.MustParseAddr("127.0.0.2")

func probeDialer() *net.Dialer {
	return &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: probeAddr.AsSlice()}}
}

// waitForCertificate connects until the server presents a certificate for
// name that verifies against roots and is not old, and returns it.
func waitForCertificate(t *testing.T, addr, name string, roots *x509.CertPool, old *x509.Certificate, within time.Duration) *x509.Certificate {
	t.Helper()
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		c, err := tls.DialWithDialer(probeDialer(), "tcp", addr, &tls.Config{RootCAs: roots, ServerName: name})
		if err == nil {
			leaf := c.ConnectionState().PeerCertificates[0]
			c.Close()
			if old == nil || !leaf.Equal(old) {
				return leaf
			}
			err = errors.New("still the old certificate")
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no new certificate for %s within %v: %v", name, within, last)
	return nil
}

// handshakeLeaf does a TLS handshake with addr and returns the leaf.
func handshakeLeaf(t *testing.T, addr string, cfg *tls.Config) *x509.Certificate {
	t.Helper()
	c, err := tls.DialWithDialer(probeDialer(), "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("handshake with %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

func intermediates(cs tls.ConnectionState) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		pool.AddCert(c)
	}
	return pool
}

// getPage fetches the join page from the web listener at addr over
// HTTPS as a browser of name would, trusting only roots, and returns the
// certificate it was served with.
func getPage(t *testing.T, addr, name string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return probeDialer().DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: roots},
	}}
	defer hc.CloseIdleConnections()
	_, port, _ := net.SplitHostPort(addr)
	resp, err := hc.Get("https://" + net.JoinHostPort(name, port) + "/?channel=Plenary")
	if err != nil {
		t.Fatalf("join page: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(bytes.ToLower(body), []byte("<html")) {
		t.Fatalf("join page: %s, %d bytes", resp.Status, len(body))
	}
	return resp.TLS.PeerCertificates[0]
}

func waitForLog(t *testing.T, logs *logBuffer, text string, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for !strings.Contains(logs.String(), text) {
		select {
		case <-ctx.Done():
			t.Fatalf("log lacks %q:\n%s", text, logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
