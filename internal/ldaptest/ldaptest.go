// Package ldaptest runs Debian's OpenLDAP server (slapd) on a free
// loopback port, with a configuration and a directory of its own in a
// temporary directory, for tests of sign-in through LDAP. It skips the
// test when slapd is not installed (scripts/test installs it).
//
// The directory is dc=example,dc=org with people under ou=people,
// groupOfNames groups under ou=groups (the memberof overlay keeps the
// people's memberOf), and a service account
// cn=plenum,ou=services,dc=example,dc=org.
package ldaptest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/plenum-voice/plenum/internal/freeport"
)

// The directory's names.
const (
	Base           = "dc=example,dc=org"
	People         = "ou=people," + Base
	Groups         = "ou=groups," + Base
	ServiceDN      = "cn=plenum,ou=services," + Base
	ServicePass    = "service-secret"
	adminDN        = "cn=admin," + Base
	adminPass      = "admin-secret"
	PersonTemplate = "uid={name}," + People
)

// Server is a running slapd.
type Server struct {
	URL  string
	Addr string // host:port
	t    testing.TB
	cmd  *exec.Cmd
	done chan struct{}
	log  *bytes.Buffer
}

// Binary is where slapd is, or "" when it is not installed.
func Binary() string {
	if p, err := exec.LookPath("slapd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/slapd"); err == nil {
		return "/usr/sbin/slapd"
	}
	return ""
}

// Start runs slapd until the test ends (or Stop), with the base entries
// and the service account in place.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		t.Skip("slapd is not installed (Debian package slapd; scripts/test installs it)")
	}
	modules := "/usr/lib/ldap"
	if _, err := os.Stat(filepath.Join(modules, "back_mdb.la")); err != nil {
		t.Skipf("slapd's modules are not in %s: %v", modules, err)
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath %s
moduleload back_mdb
moduleload memberof
pidfile %s
database mdb
maxsize 16777216
suffix %q
rootdn %q
rootpw %s
directory %s
overlay memberof
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
`, modules, filepath.Join(dir, "slapd.pid"), Base, adminDN, adminPass, filepath.Join(dir, "db"))
	confFile := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(confFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, log: &bytes.Buffer{}, done: make(chan struct{})}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(freeport.TCP(t)))
	s.URL = "ldap://" + s.Addr
	// -d 0 keeps slapd in the foreground (so the test owns it) without
	// debug output; errors still go to stderr.
	s.cmd = exec.Command(bin, "-f", confFile, "-h", s.URL+"/", "-d", "0")
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting slapd: %v", err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(s.Stop)
	if err := s.waitReady(10 * time.Second); err != nil {
		t.Fatalf("slapd did not come up: %v\n%s", err, s.log)
	}
	s.add(Base, map[string][]string{"objectClass": {"dcObject", "organization"}, "dc": {"example"}, "o": {"Example"}})
	for _, ou := range []string{"people", "groups", "services"} {
		s.add("ou="+ou+","+Base, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {ou}})
	}
	s.add(ServiceDN, map[string][]string{"objectClass": {"person", "simpleSecurityObject"}, "cn": {"plenum"}, "sn": {"service"}, "userPassword": {ServicePass}})
	return s
}

func (s *Server) waitReady(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		conn, err := ldap.DialURL(s.URL)
		if err == nil {
			err = conn.Bind(adminDN, adminPass)
			conn.Close()
			if err == nil {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("slapd exited: %v", s.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop ends slapd and waits for it; later calls do nothing.
func (s *Server) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(os.Interrupt) // slapd shuts down cleanly on SIGINT
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

func (s *Server) admin() *ldap.Conn {
	s.t.Helper()
	conn, err := ldap.DialURL(s.URL)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := conn.Bind(adminDN, adminPass); err != nil {
		conn.Close()
		s.t.Fatal(err)
	}
	return conn
}

func (s *Server) add(dn string, attrs map[string][]string) {
	s.t.Helper()
	conn := s.admin()
	defer conn.Close()
	req := ldap.NewAddRequest(dn, nil)
	for k, v := range attrs {
		req.Attribute(k, v)
	}
	if err := conn.Add(req); err != nil {
		s.t.Fatalf("adding %s: %v", dn, err)
	}
}

// PersonDN is the DN of the person with login uid.
func PersonDN(uid string) string { return "uid=" + ldap.EscapeDN(uid) + "," + People }

// AddPerson adds an inetOrgPerson with login uid, password and display
// name.
func (s *Server) AddPerson(uid, password, displayName string) {
	s.t.Helper()
	s.add(PersonDN(uid), map[string][]string{
		"objectClass": {"inetOrgPerson"}, "uid": {uid}, "cn": {displayName}, "sn": {uid},
		"displayName": {displayName}, "userPassword": {password},
	})
}

// AddGroup adds a groupOfNames cn=NAME,ou=groups with the people given
// by login (at least one: groupOfNames needs a member).
func (s *Server) AddGroup(name string, uids ...string) {
	s.t.Helper()
	var members []string
	for _, u := range uids {
		members = append(members, PersonDN(u))
	}
	s.add("cn="+ldap.EscapeDN(name)+","+Groups, map[string][]string{"objectClass": {"groupOfNames"}, "cn": {name}, "member": members})
}

// RenamePerson gives the person a new login (a modrdn), as a directory
// does when someone changes their name.
func (s *Server) RenamePerson(uid, newUID string) {
	s.t.Helper()
	conn := s.admin()
	defer conn.Close()
	if err := conn.ModifyDN(ldap.NewModifyDNRequest(PersonDN(uid), "uid="+ldap.EscapeDN(newUID), true, "")); err != nil {
		s.t.Fatalf("renaming %s: %v", uid, err)
	}
}
