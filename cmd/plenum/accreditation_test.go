package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/internal/ldaptest"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/server"
)

// TestAccreditation runs conf/examples/accreditation.toml against a real
// directory (slapd): a delegate, a member without accreditation and a
// chair of the presidium sign in through LDAP with their directory
// passwords; in the Plenary the delegate and the chair may speak and the
// member may not, someone the directory does not know is refused, and
// `plenum acl explain -signin` names the directory group that decided.
func TestAccreditation(t *testing.T) {
	dir := ldaptest.Start(t)
	dir.AddPerson("ada", "pw-ada", "Ada Lovelace")
	dir.AddPerson("gus", "pw-gus", "Gus Member")
	dir.AddPerson("pia", "pw-pia", "Pia Chair")
	dir.AddGroup("delegates", "ada")
	dir.AddGroup("presidium", "pia")

	cfg, err := conf.Load(filepath.Join("..", "..", "conf", "examples", "accreditation.toml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth.LDAP.URL, cfg.Auth.LDAP.BindPassword = dir.URL, ldaptest.ServicePass
	tmp := t.TempDir()
	cfgPath, data := filepath.Join(tmp, "accreditation.toml"), filepath.Join(tmp, "data")
	cfg.Server.DataDir = data
	if err := conf.WriteFile(cfgPath, cfg); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{
		Config: cfg, ConfigFile: cfgPath, Listen: "127.0.0.1:0", WebListen: server.NoWeb, AdminListen: server.NoAdmin, DataDir: data,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()

	dial := func(name, password string) (*client.Client, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return client.Dial(ctx, client.Config{Address: srv.Addr().String(), Username: name, Password: password})
	}
	var clients []*client.Client
	for _, p := range [][2]string{{"ada", "pw-ada"}, {"gus", "pw-gus"}, {"pia", "pw-pia"}} {
		c, err := dial(p[0], p[1])
		if err != nil {
			t.Fatalf("%s: %v", p[0], err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	if c, err := dial("stranger", "x"); err == nil {
		c.Close()
		t.Error("someone the directory does not know got in")
	}
	ada, gus, pia := clients[0], clients[1], clients[2]
	var plenary uint32
	for id, ch := range ada.Channels() {
		if ch.GetName() == "Plenary" {
			plenary = id
		}
	}
	for _, c := range clients {
		if err := c.Move(plenary); err != nil {
			t.Fatal(err)
		}
	}
	user := func(c *client.Client) *mumblepb.UserState { return gus.Users()[c.Session()] }
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	err = gus.Wait(wctx, func(*client.Client) bool {
		for _, c := range clients {
			if user(c).GetChannelId() != plenary {
				return false
			}
		}
		return !user(ada).GetSuppress() && !user(pia).GetSuppress() && user(gus).GetSuppress()
	})
	if err != nil {
		t.Fatalf("in the Plenary: ada suppressed %v, pia %v, gus %v; want only gus", user(ada).GetSuppress(), user(pia).GetSuppress(), user(gus).GetSuppress())
	}
	if user(ada).GetName() != "Ada Lovelace" {
		t.Errorf("ada appears as %q", user(ada).GetName())
	}

	explain := func(name, password, perm string) string {
		var out, errOut strings.Builder
		err := runExplain([]string{"-config", cfgPath, "-data", data, "-signin", name, perm, "Plenary"},
			strings.NewReader(password+"\n"), &out, &errOut)
		if err != nil {
			t.Fatalf("acl explain -signin %s: %v\n%s", name, err, errOut.String())
		}
		return out.String()
	}
	out := explain("ada", "pw-ada", "Speak")
	for _, want := range []string{"ada MAY Speak in Plenary", "through the sign-in (ldap group cn=delegates,ou=groups,dc=example,dc=org)",
		fmt.Sprintf("user id %d", user(ada).GetUserId())} {
		if !strings.Contains(out, want) {
			t.Errorf("explain for ada lacks %q:\n%s", want, out)
		}
	}
	t.Logf("plenum acl explain -signin ada Speak Plenary:\n%s", out)
	if out := explain("gus", "pw-gus", "Speak"); !strings.Contains(out, "gus MAY NOT Speak in Plenary") || !strings.Contains(out, "groups: none") {
		t.Errorf("explain for gus:\n%s", out)
	}
	if out := explain("pia", "pw-pia", "MuteDeafen"); !strings.Contains(out, "pia MAY MuteDeafen in Plenary") || !strings.Contains(out, "ldap group cn=presidium,ou=groups,dc=example,dc=org") {
		t.Errorf("explain for pia:\n%s", out)
	}
	var errOut strings.Builder
	if err := runExplain([]string{"-config", cfgPath, "-data", data, "-signin", "ada", "Speak", "Plenary"}, strings.NewReader("wrong\n"), &strings.Builder{}, &errOut); err == nil || !strings.Contains(err.Error(), "ldap refuses ada") {
		t.Errorf("explain with a wrong password: %v", err)
	}
}
