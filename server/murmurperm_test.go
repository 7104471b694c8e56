package server_test

import (
	"crypto/sha1"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/internal/murmurtest"
	"github.com/plenum-voice/plenum/proto/mumblepb"
)

// permObservation is what permissionScenario sees of a server.
type permObservation struct {
	superUserSync    acl.Permission
	superUserQueries int // PermissionQuery messages SuperUser got
	strongNoCert     bool
	strongSelfSigned bool
	syncBits         acl.Permission // the member's ServerSync, Cached bit only
	flush            []pq           // what the member got after the ACL edit of A
	readBack         []sentEntry    // A's own entries in the ACL reply
}

// channelA stands for channel A's id in permObservation.flush.
const channelA = 1 << 20

// permissionScenario logs in as SuperUser (password "su-secret"), creates
// channel A, has a member with a self-signed certificate enter it and
// sets A's ACL to entries Murmur keeps however odd.
func permissionScenario(t *testing.T, addr string) permObservation {
	var o permObservation
	s := &testServer{addr: addr}
	su := s.join(t, "SuperUser", func(c *client.Config) { c.Password = "su-secret" })
	o.superUserSync = acl.Permission(su.ServerSync().GetPermissions())

	anon := s.join(t, "anon", nil)
	memberCert := selfSignedCert(t)
	member := s.join(t, "member", as(memberCert))
	o.syncBits = acl.Permission(member.ServerSync().GetPermissions()) & acl.Cached
	for _, p := range []*peer{anon, member} {
		p.Send(&mumblepb.UserStats{Session: proto.Uint32(p.Session())})
		p.waitFor("UserStats", func(*client.Client) bool { return len(messagesOf[*mumblepb.UserStats](p)) > 0 })
	}
	o.strongNoCert = messagesOf[*mumblepb.UserStats](anon)[0].GetStrongCertificate()
	o.strongSelfSigned = messagesOf[*mumblepb.UserStats](member)[0].GetStrongCertificate()

	su.Send(&mumblepb.ChannelState{Parent: proto.Uint32(0), Name: proto.String("A")})
	member.waitFor("channel A", func(c *client.Client) bool { _, ok := channelByName(c, "A"); return ok })
	a := member.channelID("A")
	member.moveTo("A", su)
	before := len(messagesOf[*mumblepb.PermissionQuery](member))

	sum := sha1.Sum(memberCert.Certificate[0])
	upper := strings.ToUpper(hex.EncodeToString(sum[:]))
	sent := []sentEntry{
		{"$" + upper, true, true, acl.MakeChannel, 0},
		{"!$" + upper, true, true, acl.LinkChannel, 0},
		{"sub,1,x", true, true, acl.MuteDeafen, 0},
		{"sub,a,b,c,d", true, true, acl.Move, 0},
		{"all", false, true, acl.Kick, 0},
		{"all", true, true, 0, 0},
		{"all", true, true, 0, acl.Speak},
	}
	var msgs []*mumblepb.ACL_ChanACL
	for _, e := range sent {
		msgs = append(msgs, e.msg())
	}
	su.Send(&mumblepb.ACL{ChannelId: proto.Uint32(a), InheritAcls: proto.Bool(true), Acls: msgs})
	su.Send(&mumblepb.PermissionQuery{ChannelId: proto.Uint32(0)})
	for _, e := range ownEntries(queryACL(su, a)) {
		e.group = strings.ReplaceAll(e.group, upper, "HASH") // each run has its own certificate
		o.readBack = append(o.readBack, e)
	}
	o.superUserQueries = len(messagesOf[*mumblepb.PermissionQuery](su))
	// The edit is done; what it sent the member comes before the answer
	// to a request the member makes now.
	n := len(messagesOf[*mumblepb.UserStats](member))
	member.Send(&mumblepb.UserStats{Session: proto.Uint32(member.Session())})
	member.waitFor("UserStats", func(*client.Client) bool { return len(messagesOf[*mumblepb.UserStats](member)) > n })
	for _, q := range permissionQueries(member, before) {
		if q.channel == a {
			q.channel = channelA // ids differ between the servers
		}
		o.flush = append(o.flush, q)
	}
	return o
}

// TestPermissionsAsMurmur134: the same scenario against Debian's murmurd
// 1.3.4 and Plenum gives the same answers, up to what 1.5 added (Listen
// and ResetUserContent, so 1.3's All is 0xf07ff).
func TestPermissionsAsMurmur134(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Murmur")
	}
	m := murmurtest.Start(t, murmurtest.Config{SuperUserPassword: "su-secret"})
	murmur := permissionScenario(t, m.Addr)

	s := startServer(t, nil)
	if err := s.openStore(t).SetPassword(0, "su-secret"); err != nil {
		t.Fatal(err)
	}
	plenum := permissionScenario(t, s.addr)

	const all13 = acl.Permission(0xf07ff)
	const only15 = acl.Listen | acl.ResetUserContent
	if murmur.superUserSync != all13 || plenum.superUserSync != acl.All {
		t.Errorf("SuperUser's ServerSync: Murmur %#x, Plenum %#x; want each one's All", uint32(murmur.superUserSync), uint32(plenum.superUserSync))
	}
	if murmur.superUserQueries != 0 || plenum.superUserQueries != 0 {
		t.Errorf("PermissionQuery messages to SuperUser: Murmur %d, Plenum %d; want none", murmur.superUserQueries, plenum.superUserQueries)
	}
	if murmur.syncBits != acl.Cached || plenum.syncBits != acl.Cached {
		t.Errorf("Cached bit in a member's ServerSync: Murmur %#x, Plenum %#x", uint32(murmur.syncBits), uint32(plenum.syncBits))
	}
	if murmur.strongNoCert != plenum.strongNoCert || murmur.strongSelfSigned != plenum.strongSelfSigned {
		t.Errorf("strong without certificate / self-signed: Murmur %v/%v, Plenum %v/%v",
			murmur.strongNoCert, murmur.strongSelfSigned, plenum.strongNoCert, plenum.strongSelfSigned)
	}
	if !slices.Equal(murmur.readBack, plenum.readBack) {
		t.Errorf("A's ACL read back:\nMurmur %v\nPlenum %v", murmur.readBack, plenum.readBack)
	}
	var pl []pq
	for _, q := range plenum.flush {
		q.perms &^= only15
		pl = append(pl, q)
	}
	if len(murmur.flush) == 0 || !slices.Equal(murmur.flush, pl) {
		t.Errorf("member's PermissionQuery after the edit: Murmur %v, Plenum %v (without 1.5's bits)", murmur.flush, pl)
	}
}
