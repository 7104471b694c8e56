package server_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/mumblepb"
)

// testCA issues certificates for the tests of the "strong" group.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// issue creates a certificate for key named cn, signed by ca (self-signed
// when ca is nil), valid from notBefore to notAfter.
func issue(t *testing.T, ca *testCA, key *ecdsa.PrivateKey, cn string, isCA bool, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notAfter, BasicConstraintsValid: true, IsCA: isCA}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	} else {
		// What Mumble puts in its own certificates; Murmur does not
		// insist on clientAuth either.
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	parent, signer := tmpl, crypto.Signer(key)
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newTestCA(t *testing.T, parent *testCA, cn string) *testCA {
	t.Helper()
	key := newKey(t)
	now := time.Now()
	return &testCA{cert: issue(t, parent, key, cn, true, now.Add(-time.Hour), now.Add(24*time.Hour)), key: key}
}

// clientCert is a client certificate from ca (self-signed when nil) with
// chain appended, as the client sends it.
func clientCert(t *testing.T, ca *testCA, notBefore, notAfter time.Time, chain ...*x509.Certificate) *tls.Certificate {
	t.Helper()
	key := newKey(t)
	out := &tls.Certificate{PrivateKey: key}
	out.Certificate = append(out.Certificate, issue(t, ca, key, "member", false, notBefore, notAfter).Raw)
	for _, c := range chain {
		out.Certificate = append(out.Certificate, c.Raw)
	}
	return out
}

// TestStrongGroupFollowsCertificateVerification: as in Murmur 1.5, a user
// without a certificate and one whose certificate chains to a trusted CA
// are in "strong"; a self-signed certificate (what Mumble generates), one
// from an unknown CA and an expired one are not. The server's own chain
// counts as trusted: a certificate from the server's intermediate CA
// verifies without the client sending that intermediate. UserStats
// reports the same as strong_certificate.
func TestStrongGroupFollowsCertificateVerification(t *testing.T) {
	now := time.Now()
	root := newTestCA(t, nil, "Test Root CA")
	inter := newTestCA(t, root, "Test Intermediate CA")
	stranger := newTestCA(t, nil, "Unknown CA")

	// The server's certificate comes from the intermediate, and its file
	// holds the chain.
	dir := t.TempDir()
	serverKey := newKey(t)
	serverCert := issue(t, inter, serverKey, "plenum.test", false, now.Add(-time.Hour), now.Add(24*time.Hour))
	keyDER, err := x509.MarshalPKCS8PrivateKey(serverKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	chainPEM := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: serverCert.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: inter.cert.Raw})...)
	if err := os.WriteFile(certFile, chainPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}

	// Vault admits the strong only; Lobby everyone.
	cfg := conf.Default()
	cfg.Server.Certificate, cfg.Server.Key = certFile, keyFile
	cfg.Channels = append(cfg.Channels, conf.Channel{Name: "Vault", ACL: []conf.ACLEntry{
		{Group: "all", Deny: []string{"Enter"}},
		{Group: "strong", Allow: []string{"Enter"}},
	}})
	trusted := x509.NewCertPool()
	trusted.AddCert(root.cert)
	s := startTestServer(t, testOpts{config: cfg, trustedRoots: trusted})

	valid := func(ca *testCA, chain ...*x509.Certificate) *tls.Certificate {
		return clientCert(t, ca, now.Add(-time.Hour), now.Add(time.Hour), chain...)
	}
	for i, tc := range []struct {
		name   string
		cert   *tls.Certificate
		strong bool
	}{
		{"no certificate", nil, true},
		{"self-signed", valid(nil), false},
		{"from the trusted root", valid(root), true},
		{"from the intermediate, chain sent", valid(inter, inter.cert), true},
		{"from the intermediate, chain not sent (the server's chain has it)", valid(inter), true},
		{"from an unknown CA", valid(stranger), false},
		{"from an unknown CA, chain sent", valid(stranger, stranger.cert), false},
		{"expired, from the trusted root", clientCert(t, root, now.Add(-48*time.Hour), now.Add(-24*time.Hour)), false},
		{"not yet valid, from the trusted root", clientCert(t, root, now.Add(time.Hour), now.Add(48*time.Hour)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := s.join(t, "member"+strconv.Itoa(i), func(c *client.Config) { c.Certificate = tc.cert })
			defer p.Close()
			vault := p.channelID("Vault")
			if got := p.Channels()[vault].GetCanEnter(); got != tc.strong {
				t.Errorf("can_enter Vault (strong only) = %v, want %v", got, tc.strong)
			}
			p.Send(&mumblepb.UserStats{Session: proto.Uint32(p.Session())})
			var stats *mumblepb.UserStats
			p.waitFor("UserStats", func(*client.Client) bool {
				for _, st := range messagesOf[*mumblepb.UserStats](p) {
					stats = st
					return true
				}
				return false
			})
			if stats.StrongCertificate == nil || stats.GetStrongCertificate() != tc.strong {
				t.Errorf("UserStats strong_certificate = %v (set: %v), want %v", stats.GetStrongCertificate(), stats.StrongCertificate != nil, tc.strong)
			}
			// The ACL decides the move too, not only the flag.
			p.Send(&mumblepb.UserState{Session: proto.Uint32(p.Session()), ChannelId: proto.Uint32(vault)})
			if tc.strong {
				p.waitFor("in Vault", func(c *client.Client) bool { return c.Users()[p.Session()].GetChannelId() == vault })
			} else {
				p.waitFor("Enter denied", func(*client.Client) bool {
					for _, d := range messagesOf[*mumblepb.PermissionDenied](p) {
						if d.GetChannelId() == vault && d.GetPermission() == 0x4 {
							return true
						}
					}
					return false
				})
			}
		})
	}

	// Without the test root among the trusted CAs (the system's store),
	// the same certificate is not strong.
	plain := startServer(t, nil)
	p := plain.join(t, "member", func(c *client.Config) { c.Certificate = valid(root) })
	p.Send(&mumblepb.UserStats{Session: proto.Uint32(p.Session())})
	p.waitFor("UserStats", func(*client.Client) bool {
		st := messagesOf[*mumblepb.UserStats](p)
		return len(st) > 0 && st[0].StrongCertificate != nil && !st[0].GetStrongCertificate()
	})
}
