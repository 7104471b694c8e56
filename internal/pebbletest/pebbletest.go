// Package pebbletest runs pebble, Let's Encrypt's ACME test server, with
// pebble-challtestsrv as its DNS, on loopback for tests of the ACME path:
// every name resolves to 127.0.0.1, and pebble checks the TLS-ALPN-01
// challenge on the port the test names. Each test gets its own pair, with
// a fresh root, stopped when the test ends.
//
// The programs are built with `go install ...@Version` into the user's
// cache directory, once: from the Go module cache or proxy, without
// touching this module's go.mod (pebble's dependencies are not Plenum's).
// Where they cannot be built (offline, no module cache), tests skip.
package pebbletest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/internal/freeport"
)

// Version is the pebble release the tests run.
const Version = "v2.10.3"

const module = "github.com/letsencrypt/pebble/v2/cmd/"

// Config says how to run pebble.
type Config struct {
	// TLSPort is where pebble's validator connects for TLS-ALPN-01 (on
	// 127.0.0.1): the listener under test.
	TLSPort int
	// Validity is the lifetime of the certificates pebble issues; 0 is
	// pebble's default of 90 days. Short lifetimes make renewal testable.
	Validity time.Duration
}

// Pebble is a running pebble.
type Pebble struct {
	// DirectoryURL is the ACME directory (https, served with a
	// certificate signed by CAFile's root).
	DirectoryURL string
	// CAFile is a PEM file with the root of pebble's own HTTPS listener,
	// what a client must trust to talk ACME to it (acme_ca_file).
	CAFile string

	management string // host:port of pebble's management listener
	client     *http.Client
}

var build struct {
	once sync.Once
	dir  string
	err  error
}

// binaries builds pebble and pebble-challtestsrv once per cache
// directory, and returns the directory that holds them.
func binaries() (string, error) {
	build.once.Do(func() {
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		dir := filepath.Join(cache, "plenum-test", "pebble-"+Version)
		if _, err := os.Stat(filepath.Join(dir, "pebble-challtestsrv")); err == nil {
			build.dir = dir
			return
		}
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			build.err = err
			return
		}
		// Built beside the final place and renamed into it, so that test
		// binaries building at the same time never see half a program.
		tmp, err := os.MkdirTemp(filepath.Dir(dir), ".pebble-build*")
		if err != nil {
			build.err = err
			return
		}
		defer os.RemoveAll(tmp)
		cmd := exec.Command("go", "install", module+"pebble@"+Version, module+"pebble-challtestsrv@"+Version)
		cmd.Dir = tmp
		cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=-mod=mod")
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go install pebble %s: %v\n%s", Version, err, out)
			return
		}
		if err := os.Rename(tmp, dir); err != nil {
			if _, statErr := os.Stat(filepath.Join(dir, "pebble-challtestsrv")); statErr != nil {
				build.err = err
				return
			}
		}
		build.dir = dir
	})
	return build.dir, build.err
}

// Start runs pebble and its DNS for the rest of the test. It skips the
// test if pebble cannot be built.
func Start(t testing.TB, cfg Config) *Pebble {
	t.Helper()
	bin, err := binaries()
	if err != nil {
		t.Skipf("pebble cannot be built here (offline, no module cache?): %v", err)
	}
	dir := t.TempDir()
	caFile, certFile, keyFile := writeListenerCert(t, dir)

	dnsPort := freeport.UDP(t)
	challMgmt := freeport.TCP(t)
	run(t, filepath.Join(bin, "pebble-challtestsrv"), nil,
		"-dnsserver", "127.0.0.1:"+strconv.Itoa(dnsPort),
		"-management", "127.0.0.1:"+strconv.Itoa(challMgmt),
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "")

	listen, mgmt := freeport.TCP(t), freeport.TCP(t)
	validity := int64(cfg.Validity / time.Second)
	if validity == 0 {
		validity = 90 * 24 * 3600
	}
	config := map[string]any{"pebble": map[string]any{
		"listenAddress":           "127.0.0.1:" + strconv.Itoa(listen),
		"managementListenAddress": "127.0.0.1:" + strconv.Itoa(mgmt),
		"certificate":             certFile,
		"privateKey":              keyFile,
		"tlsPort":                 cfg.TLSPort,
		"httpPort":                freeport.TCP(t), // HTTP-01 is not offered by the client; nothing listens here
		"ocspResponderURL":        "",
		"retryAfter":              map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":            "ecdsa",
		"profiles":                map[string]any{"default": map[string]any{"description": "test", "validityPeriod": validity}},
	}}
	data, _ := json.Marshal(config)
	configFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(configFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, filepath.Join(bin, "pebble"), []string{
		"PEBBLE_VA_NOSLEEP=1",      // validate at once, not after up to 5 s
		"PEBBLE_WFE_NONCEREJECT=0", // no random badNonce errors to retry
		"PEBBLE_AUTHZREUSE=0",      // every order is validated again: renewal is checked end to end
		"PEBBLE_CHAIN_LENGTH=3",    // root, intermediate, leaf: a real chain
		"PEBBLE_ALTERNATE_ROOTS=0", // one root to trust
		"PEBBLE_VA_ALWAYS_VALID=0", // really connect to the listener
	}, "-config", configFile, "-dnsserver", "127.0.0.1:"+strconv.Itoa(dnsPort))

	p := &Pebble{
		DirectoryURL: "https://127.0.0.1:" + strconv.Itoa(listen) + "/dir",
		CAFile:       caFile,
		management:   "127.0.0.1:" + strconv.Itoa(mgmt),
	}
	roots := x509.NewCertPool()
	pemData, _ := os.ReadFile(caFile)
	roots.AppendCertsFromPEM(pemData)
	p.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	t.Cleanup(p.client.CloseIdleConnections)
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := p.client.Get(p.DirectoryURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not answer at %s: %v", p.DirectoryURL, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p
}

// Root returns the root that pebble's issued certificates chain to,
// fetched from its management listener.
func (p *Pebble) Root(t testing.TB) *x509.Certificate {
	t.Helper()
	resp, err := p.client.Get("https://" + p.management + "/roots/0")
	if err != nil {
		t.Fatalf("pebble root: %v", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pebble root: %s %v", resp.Status, err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("pebble root: no PEM in %q", data)
	}
	root, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("pebble root: %v", err)
	}
	return root
}

// run starts a program for the rest of the test; its output goes to the
// test's log when the test fails.
func run(t testing.TB, path string, env []string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(os.Environ(), env...)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", filepath.Base(path), err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("%s:\n%s", filepath.Base(path), out.String())
		}
	})
}

// syncBuffer collects a program's output from its two pipes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// writeListenerCert makes a root and a certificate for 127.0.0.1 signed
// by it, for pebble's own HTTPS listeners, and returns the files.
func writeListenerCert(t testing.TB, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pebbletest listener root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{caFile, "CERTIFICATE", caDER}, {certFile, "CERTIFICATE", der}, {keyFile, "PRIVATE KEY", keyDER}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return caFile, certFile, keyFile
}
