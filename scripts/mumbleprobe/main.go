// Command mumbleprobe logs in to a Mumble server as one client and says
// whether it answered: the TLS login, a UDP ping over the encrypted voice
// channel, and optionally an edit that the server must save. It is what
// scripts/package-check.sh connects to the installed package with.
//
//	mumbleprobe [-user NAME] [-password PW] [-make-channel NAME] [-timeout D] HOST:PORT
//
// With -make-channel (as SuperUser, or anyone allowed to make channels)
// it creates a permanent channel and waits until the server confirms it,
// which Plenum does only once the configuration file holding it is on
// disk. Exit status 1 when anything fails.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"flag"
	"fmt"
	"math/big"
	"os"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/proto/mumblepb"
)

func main() {
	user := flag.String("user", "probe", "user `name` to log in as")
	password := flag.String("password", "", "server or SuperUser `password`")
	channel := flag.String("make-channel", "", "create a permanent channel `name` below the root and wait for the server to confirm it")
	timeout := flag.Duration("timeout", 20*time.Second, "give up after this long")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: mumbleprobe [-user NAME] [-password PW] [-make-channel NAME] [-timeout D] HOST:PORT")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := probe(ctx, flag.Arg(0), *user, *password, *channel); err != nil {
		fmt.Fprintln(os.Stderr, "mumbleprobe:", err)
		os.Exit(1)
	}
}

func probe(ctx context.Context, addr, user, password, channel string) error {
	cert, err := selfSigned(user)
	if err != nil {
		return err
	}
	start := time.Now()
	c, err := client.Dial(ctx, client.Config{Address: addr, Username: user, Password: password, Certificate: cert})
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	defer c.Close()
	fmt.Printf("logged in as %s (session %d) after %v: %d channels, %d users online\n",
		user, c.Session(), time.Since(start).Round(time.Millisecond), len(c.Channels()), c.NumUsers())
	if err := c.WaitUDP(ctx); err != nil {
		return fmt.Errorf("no answer over UDP: %w", err)
	}
	fmt.Println("UDP voice channel answered")
	if channel == "" {
		return nil
	}
	if err := c.Send(&mumblepb.ChannelState{Parent: proto.Uint32(0), Name: proto.String(channel)}); err != nil {
		return err
	}
	err = c.Wait(ctx, func(c *client.Client) bool {
		for _, ch := range c.Channels() {
			if ch.GetName() == channel {
				return true
			}
		}
		return false
	})
	if err != nil {
		return fmt.Errorf("channel %q was not confirmed: %w", channel, err)
	}
	fmt.Printf("channel %q created and confirmed\n", channel)
	return nil
}

// selfSigned makes a client certificate, as Mumble does on first start.
func selfSigned(name string) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
