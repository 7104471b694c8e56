package server

// Certificates by ACME (acme_domain). autocert obtains and renews them
// and keeps them in data_dir/acme; this file decides what a handshake is
// served. A handshake never waits for the CA: a goroutine of the server
// asks autocert for each name's certificate and publishes it, and until
// the first one arrives the self-signed certificate is served. The same
// certificates serve the Mumble listener and every other listener that
// takes its TLS configuration from TLSConfig (the web listener).
//
// The CA proves that we hold the name with the TLS-ALPN-01 challenge: it
// connects to port 443 of the name offering only the protocol
// "acme-tls/1", and is answered with autocert's token certificate. Any
// listener built on this configuration answers it, so whichever of them
// port 443 reaches will do.

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/internal/atomicfile"
)

// acmeCacheDir is where autocert's account key and certificates live,
// inside the data directory.
const acmeCacheDir = "acme"

// How often the certificates are looked at: a first certificate that
// failed is asked for again after acmeRetryFirst, doubling up to
// acmeRetryMax (Let's Encrypt allows five failed validations per name an
// hour); an issued one is looked at after a hundredth of its lifetime,
// within these bounds, to pick up autocert's renewal.
const (
	acmeRetryFirst = 30 * time.Second
	acmeRetryMax   = time.Hour
	acmePollMin    = time.Second
	acmePollMax    = time.Hour
)

// acmeCerts is the ACME side of the server's certificates.
type acmeCerts struct {
	manager *autocert.Manager
	domains []string                                    // as configured; the first is served to clients that name no host
	served  map[string]*atomic.Pointer[tls.Certificate] // by domain; holds nil until the first arrives
	// challenge is the configuration a CA's TLS-ALPN-01 connection gets.
	challenge *tls.Config
	// stop cancels the CA requests in flight and refuses new ones; the
	// server's shutdown calls it. autocert's renewal timers cannot be
	// stopped; with the client refused they fail at once and try again
	// in half an hour.
	stop context.CancelFunc
}

// newACME prepares the ACME certificates of sc, or returns nil when
// acme_domain is empty. It reads acme_ca_file but contacts no one.
func newACME(sc *conf.Server) (*acmeCerts, error) {
	domains := sc.ACMEDomains()
	if len(domains) == 0 {
		return nil, nil
	}
	roots, err := acmeRoots(sc.ACMECAFile)
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	m := &autocert.Manager{
		// Setting acme_domain is the operator's agreement (the default
		// configuration says so).
		Prompt:     autocert.AcceptTOS,
		Cache:      acmeCache(filepath.Join(sc.DataDir, acmeCacheDir)),
		HostPolicy: autocert.HostWhitelist(domains...),
		Email:      sc.ACMEEmail,
		Client: &acme.Client{
			DirectoryURL: sc.ACMEDirectory,
			UserAgent:    "plenum",
			HTTPClient:   &http.Client{Transport: stoppableTransport{base: transport, ctx: ctx}, Timeout: time.Minute},
		},
	}
	a := &acmeCerts{
		manager: m,
		domains: domains,
		served:  make(map[string]*atomic.Pointer[tls.Certificate], len(domains)),
		challenge: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			NextProtos:     []string{acme.ALPNProto},
			GetCertificate: m.GetCertificate,
		},
		stop: stop,
	}
	for _, d := range domains {
		a.served[d] = new(atomic.Pointer[tls.Certificate])
	}
	return a, nil
}

// acmeRoots is the system's roots plus those in file, if any.
func acmeRoots(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil // the system's
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("acme_ca_file: %w", err)
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("acme_ca_file %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// isACMEChallenge reports whether a ClientHello is a CA's TLS-ALPN-01
// check: it offers "acme-tls/1" and nothing else (RFC 8737).
func isACMEChallenge(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acme.ALPNProto
}

// IsACMEChallenge reports whether a finished handshake was a CA's
// TLS-ALPN-01 check. Such a connection has served its purpose: close it
// without reading from it, and do not count it as a failed login.
func IsACMEChallenge(cs tls.ConnectionState) bool {
	return cs.NegotiatedProtocol == acme.ALPNProto
}

// configForClient hands a CA's challenge its own configuration
// (tls.Config.GetConfigForClient); every other hello goes on with the
// listener's.
func (s *Server) configForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	if s.acme != nil && isACMEChallenge(hello) {
		return s.acme.challenge, nil
	}
	return nil, nil
}

// GetCertificate returns the certificate a handshake is served
// (tls.Config.GetCertificate), for the Mumble listener and any other:
// the ACME certificate for the name the client asked for, or for the
// first acme_domain when it named none of them (Mumble clients that
// connect by address send no name); otherwise, and until the first ACME
// certificate arrives, the configured or self-signed one.
func (s *Server) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if a := s.acme; a != nil {
		name := strings.TrimSuffix(strings.ToLower(hello.ServerName), ".")
		p, ok := a.served[name]
		if !ok {
			p = a.served[a.domains[0]]
		}
		if cert := p.Load(); cert != nil {
			return cert, nil
		}
	}
	return s.cert.Load(), nil
}

// TLSConfig returns a TLS configuration for another listener of this
// server (the web listener): it serves the same certificates as the
// Mumble listener, answers a CA's TLS-ALPN-01 challenge, and negotiates
// nextProtos (e.g. "http/1.1"). It asks for no client certificate. A
// connection for which IsACMEChallenge holds after the handshake is to
// be closed.
func (s *Server) TLSConfig(nextProtos ...string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		NextProtos:         nextProtos,
		GetCertificate:     s.GetCertificate,
		GetConfigForClient: s.configForClient,
	}
}

// acmeLoop keeps the served ACME certificates current until the server
// stops: it asks autocert for each name's certificate, which autocert
// obtains the first time (taking seconds to minutes) and later returns
// from memory, renewed by its own timers.
func (s *Server) acmeLoop() {
	a := s.acme
	s.log.Info("ACME is on: serving the self-signed certificate until the CA issues one", "domains", strings.Join(a.domains, " "))
	retry := acmeRetryFirst
	warned := map[string][]byte{} // the certificate each overdue warning was about
	for {
		wait := acmePollMax
		failed := false
		for _, d := range a.domains {
			next, err := s.refreshACME(d, warned)
			if err != nil {
				select {
				case <-s.closing:
					return
				default:
				}
				s.log.Error("ACME: obtaining the certificate failed; trying again later", "domain", d, "retry_in", retry.String(), "err", err)
				failed = true
				continue
			}
			wait = min(wait, next)
		}
		if failed {
			wait, retry = retry, min(2*retry, acmeRetryMax)
		} else {
			retry = acmeRetryFirst
		}
		t := time.NewTimer(wait)
		select {
		case <-s.closing:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// refreshACME publishes autocert's current certificate for domain and
// says when to look again.
func (s *Server) refreshACME(domain string, warned map[string][]byte) (time.Duration, error) {
	a := s.acme
	cert, err := a.manager.GetCertificate(acmeHello(domain))
	if err != nil {
		return 0, err
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return 0, fmt.Errorf("the CA's certificate: %w", err)
		}
	}
	lifetime := leaf.NotAfter.Sub(leaf.NotBefore)
	if old := a.served[domain].Swap(cert); old == nil || !sameCertificate(old, cert) {
		msg := "ACME certificate obtained; new connections get it"
		if old != nil {
			msg = "ACME certificate renewed; new connections get it"
		}
		sum := sha256.Sum256(cert.Certificate[0])
		s.log.Info(msg, "domain", domain, "issuer", leaf.Issuer.CommonName,
			"not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "sha256", hex.EncodeToString(sum[:]))
	}
	// autocert renews when a third of the lifetime is left; with a sixth
	// left its attempts have been failing for a while.
	if left := time.Until(leaf.NotAfter); left < lifetime/6 && string(warned[domain]) != string(cert.Certificate[0]) {
		warned[domain] = cert.Certificate[0]
		s.log.Warn("ACME certificate not renewed yet; check that port 443 of the name reaches this server", "domain", domain,
			"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return min(max(lifetime/100, acmePollMin), acmePollMax), nil
}

func sameCertificate(a, b *tls.Certificate) bool {
	return string(a.Certificate[0]) == string(b.Certificate[0])
}

// acmeHello is the ClientHello the loop asks autocert with: the name, and
// support for ECDSA, so that autocert chooses a P-256 key (cheap
// handshakes when hundreds reconnect at once).
func acmeHello(domain string) *tls.ClientHelloInfo {
	return &tls.ClientHelloInfo{
		ServerName:       domain,
		SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
		SupportedCurves:  []tls.CurveID{tls.CurveP256},
		CipherSuites:     []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
	}
}

// stoppableTransport sends the ACME client's requests until ctx ends,
// and cuts those in flight then: autocert's calls cannot be cancelled
// from outside, and the server's stop must not wait for the CA.
type stoppableTransport struct {
	base http.RoundTripper
	ctx  context.Context
}

var errServerStopped = errors.New("the server is stopping")

func (t stoppableTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.ctx.Err() != nil {
		return nil, errServerStopped
	}
	ctx, cancel := context.WithCancel(req.Context())
	release := context.AfterFunc(t.ctx, cancel)
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		release()
		cancel()
		return nil, err
	}
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: func() { release(); cancel() }}
	return resp, nil
}

// releasingBody lets go of a request's context when its body is closed.
type releasingBody struct {
	io.ReadCloser
	release func()
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}

// acmeCache is autocert's cache in a directory: the account key and each
// certificate with its key in a file of their own, mode 0600, written so
// that a crash leaves the old file or the new one (autocert.DirCache
// renames but does not sync).
type acmeCache string

func (d acmeCache) path(name string) (string, error) {
	// autocert's names are "acme_account+key", "<domain>", "<domain>+rsa",
	// "<domain>+token"; anything else is refused rather than joined.
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return "", fmt.Errorf("acme cache: bad name %q", name)
	}
	return filepath.Join(string(d), name), nil
}

func (d acmeCache) Get(_ context.Context, name string) ([]byte, error) {
	p, err := d.path(name)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, autocert.ErrCacheMiss
	}
	return data, err
}

func (d acmeCache) Put(_ context.Context, name string, data []byte) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return fmt.Errorf("acme cache: %w", err)
	}
	return atomicfile.Write(p, data, 0o600)
}

func (d acmeCache) Delete(_ context.Context, name string) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
