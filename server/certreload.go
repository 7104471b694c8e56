package server

// Replacing the certificate without a restart. The TLS configuration
// hands every new connection the certificate in s.cert; Reload (SIGHUP)
// and a change to the certificate or key file load the pair again and
// swap it in if it is good. Connections already established keep the
// session they negotiated and notice nothing.

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// certFiles returns the certificate and key files a server with these
// settings serves: the configured ones, or the pair generated in the data
// directory.
func certFiles(certFile, keyFile, dataDir string) (string, string) {
	if certFile != "" || keyFile != "" {
		return certFile, keyFile
	}
	return filepath.Join(dataDir, generatedCertFile), filepath.Join(dataDir, generatedKeyFile)
}

// getCertificate serves the current certificate (tls.Config.GetCertificate).
func (s *Server) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.GetCertificate(hello) // the ACME certificate if there is one (acme.go)
}

// reloadCertificate reads the certificate and key files again and serves
// them from the next connection on. A pair that does not load, does not
// match or is not valid now is refused: the current certificate stays,
// and the error is logged and returned.
func (s *Server) reloadCertificate() error {
	s.certMu.Lock()
	defer s.certMu.Unlock()
	cert, err := loadPair(s.certFile, s.keyFile, time.Now())
	if err != nil {
		s.log.Error("new certificate refused; the current one stays", "certificate", s.certFile, "key", s.keyFile, "err", err)
		return err
	}
	if bytes.Equal(cert.Certificate[0], s.cert.Load().Certificate[0]) {
		s.log.Debug("certificate unchanged", "certificate", s.certFile)
		return nil
	}
	s.cert.Store(cert)
	sum := sha256.Sum256(cert.Certificate[0])
	s.log.Info("certificate replaced; new connections get the new one", "certificate", s.certFile,
		"subject", cert.Leaf.Subject.String(), "not_after", cert.Leaf.NotAfter.UTC().Format(time.DateOnly),
		"sha256", hex.EncodeToString(sum[:]))
	return nil
}

// loadPair loads a certificate and its key and checks that the
// certificate is valid at now.
func loadPair(certFile, keyFile string, now time.Time) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load certificate %s and key %s: %w", certFile, keyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("certificate %s: %w", certFile, err)
		}
	}
	switch {
	case now.After(cert.Leaf.NotAfter):
		return nil, fmt.Errorf("certificate %s expired on %s", certFile, cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(cert.Leaf.NotBefore):
		return nil, fmt.Errorf("certificate %s is not valid before %s", certFile, cert.Leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return &cert, nil
}

// certDebounce is how long the files must be quiet before they are read:
// a certificate and its key are usually replaced one after the other.
const certDebounce = 300 * time.Millisecond

// watchCertificate reloads the certificate when its file or its key's
// changes. It watches the directories, since files are usually replaced
// by rename or by switching a symbolic link; names starting with ".."
// are how Kubernetes swaps a mounted secret.
func (s *Server) watchCertificate() {
	files := map[string]bool{filepath.Clean(s.certFile): true, filepath.Clean(s.keyFile): true}
	s.watchFiles("certificate files; reload with SIGHUP", []string{s.certFile, s.keyFile}, certDebounce,
		func(ev fsnotify.Event) bool {
			return files[filepath.Clean(ev.Name)] || strings.HasPrefix(filepath.Base(ev.Name), "..")
		},
		func() { s.reloadCertificate() }) // it logs what it did
}
