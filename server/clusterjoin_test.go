package server_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/server"
	"github.com/plenum-voice/plenum/voice"
)

// lonelyNode is a cluster link whose node never hears from the others:
// enough to make the server a node that has not joined yet.
type lonelyNode struct{}

func (lonelyNode) Node() uint16                               { return 1 }
func (lonelyNode) Relay(*voice.User, uint32, []byte, uint64)  {}
func (lonelyNode) Announce(server.Announcement)               {}
func (lonelyNode) Run(_ *server.Server, stop <-chan struct{}) { <-stop }

// TestEditsRefusedUntilTheClusterIsShared: a node that does not have the
// cluster's shared documents yet refuses an edit of them with the reason,
// rather than keeping it where the cluster's revision would replace it;
// once it has them (SetShared), the same edit is made. Moves, which do
// not go through the documents, are not held up.
func TestEditsRefusedUntilTheClusterIsShared(t *testing.T) {
	srv := startTestServer(t, testOpts{cluster: lonelyNode{}, edit: func(c *conf.Config) {
		c.ACL = append(c.ACL, conf.ACLEntry{Group: "all", Allow: []string{"MakeChannel", "Write"}})
	}})
	p := srv.join(t, "alice", withCert(t))
	root := uint32(0)
	makeRoom := func() {
		if err := p.Send(&mumblepb.ChannelState{Parent: &root, Name: proto.String("Room")}); err != nil {
			t.Fatal(err)
		}
	}
	makeRoom()
	p.waitFor("the edit refused while joining", func(*client.Client) bool {
		for _, d := range messagesOf[*mumblepb.PermissionDenied](p) {
			if strings.Contains(d.GetReason(), "still joining") {
				return true
			}
		}
		return false
	})
	if _, made := channelByName(p.Client, "Room"); made {
		t.Fatal("the refused channel was made")
	}
	plenary, ok := channelByName(p.Client, "Plenary")
	if !ok {
		t.Fatal("no Plenary")
	}
	if err := p.Move(plenary); err != nil {
		t.Fatal(err)
	}
	p.waitFor("the move made while joining", func(c *client.Client) bool {
		return c.Users()[c.Session()].GetChannelId() == plenary
	})

	srv.SetShared()
	makeRoom()
	p.waitFor("the channel made once joined", func(c *client.Client) bool {
		_, made := channelByName(c, "Room")
		return made
	})
}

// TestAPIEditsRefusedUntilTheClusterIsShared: the admin API's edits wait
// for the same as a client's: an edit of a shared document made while
// the node joins is refused with the reason, and made once it has.
func TestAPIEditsRefusedUntilTheClusterIsShared(t *testing.T) {
	s := apiServerOf(t, nil, lonelyNode{})
	create := adminRequest{method: "POST", path: "/api/v1/channels", bearer: adminScoped, body: `{"parent": 0, "name": "Room"}`}
	code, body := s.adminCode(t, create)
	if code < 400 || !strings.Contains(body, "still joining") {
		t.Fatalf("while joining: %d %s, want a refusal that says why", code, body)
	}
	s.SetShared()
	if code, body := s.adminCode(t, create); code >= 300 {
		t.Fatalf("once joined: %d %s", code, body)
	}
}
