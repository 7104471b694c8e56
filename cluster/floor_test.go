package cluster_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/mumblepb"
)

// withHall makes the default channel "Hall" a floor-controlled hall whose
// chairs hold the access token "chair"; newcomers may register.
func withHall(c *conf.Config) {
	c.Channels = append(c.Channels, conf.Channel{
		Name: "Hall", Floor: true, FloorGroups: []string{"#chair"}, FloorRequests: "Requests",
		ACL:      []conf.ACLEntry{{Group: "#chair", Allow: []string{"MuteDeafen"}}},
		Children: []conf.Channel{{Name: "Requests"}},
	})
	c.Server.DefaultChannel = "Hall"
	c.ACL = append(c.ACL, conf.ACLEntry{Group: "all", Allow: []string{"SelfRegister"}})
}

// say sends text to the channel l is in.
func (l *listener) say(t testing.TB, text string) {
	t.Helper()
	if err := l.SendText(text, nil, []uint32{l.Users()[l.Session()].GetChannelId()}, nil); err != nil {
		t.Fatal(err)
	}
}

// suppressedAs is whether observer sees the user called name suppressed
// (false also when it does not see them).
func suppressedAs(observer *listener, name string) bool {
	st := userNamed(observer.Client, name)
	return st != nil && st.GetSuppress()
}

// waitFloor waits until every observer sees exactly speaker (of names)
// un-suppressed.
func waitFloor(t testing.TB, observers []*listener, names []string, speaker string) {
	t.Helper()
	for _, o := range observers {
		waitUntil(t, 5*time.Second, "only "+speaker+" un-suppressed", func() bool {
			for _, n := range names {
				st := userNamed(o.Client, n)
				if st == nil || st.GetSuppress() != (n != speaker) {
					return false
				}
			}
			return true
		})
	}
}

// TestFloorAcrossNodes: members on nodes 2 and 3 raise their hands and a
// chair on node 1 sees them queued in order; the chair gives the floor to
// the member on node 3 and then, with !next, to the one on node 2: on all
// three nodes only the holder is un-suppressed. Hands raised at the same
// moment on three nodes are all queued (compare-and-set, retried).
func TestFloorAcrossNodes(t *testing.T) {
	nodes, users := threeNodesWith(t, withHall)
	chair := joinWith(t, nodes[0], "chair", nil, "chair")
	all := append(users[:], chair)
	names := []string{"user1", "user2", "user3"}
	for _, o := range all {
		waitUntil(t, 5*time.Second, "everyone seen", func() bool { return len(o.Users()) == 4 })
	}
	waitFloor(t, all, names, "")

	users[2].say(t, "!hand")
	waitUntil(t, 5*time.Second, "user3 queued", func() bool { return users[2].gotText("number 1 in the queue") })
	waitUntil(t, 5*time.Second, "the chair on node 1 told of user3's hand", func() bool { return chair.gotText("Queue: 1. user3.") })
	users[1].say(t, "!hand")
	waitUntil(t, 5*time.Second, "user2 queued second", func() bool { return users[1].gotText("number 2 in the queue") })
	mark := chair.mark()
	chair.say(t, "!queue")
	waitUntil(t, 5*time.Second, "the chair's !queue lists both in order", func() bool {
		return chair.gotTextSince(mark, "Floor: nobody. Queue: 1. user3, 2. user2.")
	})

	chair.say(t, "!give user3")
	waitFloor(t, all, names, "user3")
	waitUntil(t, 5*time.Second, "user3 told", func() bool { return users[2].gotText("You have the floor.") })
	waitUntil(t, 5*time.Second, "user1 sees the floor below the hall", func() bool {
		return strings.Contains(users[0].Channels()[channelNamed(t, users[0].Client, "Hall")].GetDescription(), "Floor: user3. Queue: 1. user2.")
	})

	chair.say(t, "!next")
	waitFloor(t, all, names, "user2")
	waitUntil(t, 5*time.Second, "user3 told their turn ended", func() bool { return users[2].gotText("Your turn has ended.") })
	// The chair's node ended the turn; user3's own node counts it in
	// their talk time, as on one server.
	waitUntil(t, 5*time.Second, "user3's turn in their floor time on node 3", func() bool {
		return floorSecOf(nodes[2], "user3") > 0
	})

	chair.say(t, "!revoke")
	waitFloor(t, all, names, "")
	var hands sync.WaitGroup
	for _, u := range users {
		hands.Go(func() { u.say(t, "!hand") })
	}
	hands.Wait()
	mark = chair.mark()
	var queue string
	waitUntil(t, 10*time.Second, "three hands raised at once on three nodes all queued", func() bool {
		chair.say(t, "!queue")
		time.Sleep(100 * time.Millisecond)
		for _, m := range chair.textsReceived()[mark:] {
			if strings.Count(m.GetMessage(), ". user") == 3 {
				queue = m.GetMessage()
				return true
			}
		}
		return false
	})
	// Whatever order the cluster settled on, each member was last told
	// the place they have in it.
	for i, u := range users {
		name := fmt.Sprintf("user%d", i+1)
		told := func() bool {
			place := lastPlaceTold(u)
			return place > 0 && strings.Contains(queue, fmt.Sprintf("%d. %s", place, name))
		}
		waitUntil(t, 5*time.Second, name+" told their place in "+queue, told)
	}
	t.Logf("three hands at once: %s", queue)
}

// lastPlaceTold is the place in the queue u was told last (0: never).
func lastPlaceTold(u *listener) int {
	place := 0
	for _, m := range u.textsReceived() {
		if i := strings.Index(m.GetMessage(), "number "); i >= 0 && strings.Contains(m.GetMessage(), "in the queue") {
			fmt.Sscanf(m.GetMessage()[i:], "number %d", &place)
		}
	}
	return place
}

// TestFloorPlaceKeptAfterFailover: a registered member on node 3 waits
// first in the queue; node 3 dies; the member reconnects to node 2 and is
// still first: the chair on node 1 gives them the floor with !next.
func TestFloorPlaceKeptAfterFailover(t *testing.T) {
	nodes, users := threeNodesWith(t, withHall)
	chair := joinWith(t, nodes[0], "chair", nil, "chair")
	cert := newCert(t)
	member := joinWith(t, nodes[2], "member", cert)
	member.Send(&mumblepb.UserState{Session: ptr(member.Session()), UserId: ptr(uint32(0))})
	waitUntil(t, 5*time.Second, "the member registered, seen on node 1", func() bool {
		st := userNamed(chair.Client, "member")
		return st != nil && st.UserId != nil
	})
	member.say(t, "!hand")
	waitUntil(t, 5*time.Second, "the member queued", func() bool { return member.gotText("number 1 in the queue") })
	waitUntil(t, 5*time.Second, "the chair on node 1 told of the member's hand", func() bool { return chair.gotText("Queue: 1. member.") })
	users[0].say(t, "!hand")
	waitUntil(t, 5*time.Second, "user1 queued second", func() bool { return users[0].gotText("number 2 in the queue") })

	nodes[2].node.Close() // node 3 dies without a goodbye
	for _, o := range []*listener{chair, users[1]} {
		waitUntil(t, 6*time.Second, "node 3's users removed", func() bool { return userNamed(o.Client, "member") == nil })
	}
	member.Close()
	back := joinWith(t, nodes[1], "member", cert)
	waitUntil(t, 5*time.Second, "the member back on node 2, seen on node 1", func() bool { return userNamed(chair.Client, "member") != nil })
	if ch := back.Users()[back.Session()].GetChannelId(); ch != channelNamed(t, back.Client, "Hall") {
		t.Fatalf("the member is back in %q, want the Hall", back.Channels()[ch].GetName())
	}
	mark := chair.mark()
	waitUntil(t, 5*time.Second, "the member still first in the queue the chair sees", func() bool {
		chair.say(t, "!queue")
		time.Sleep(100 * time.Millisecond)
		return chair.gotTextSince(mark, "Queue: 1. member, 2. user1.")
	})
	chair.say(t, "!next")
	waitFloor(t, []*listener{chair, users[0], users[1], back}, []string{"member", "user1", "user2"}, "member")
	waitUntil(t, 5*time.Second, "the member told on node 2", func() bool { return back.gotText("You have the floor.") })
}

// TestFloorLetsGoOfWhoNeverCameBack: a member of node 3 waits first in
// the queue and another member of node 3 holds the floor; node 3 dies
// and they never reconnect. Once failover_wait (here 2 s) has passed
// after their removal, the floor is free and the queue holds only the
// member on node 1, so the chair's !next calls someone who is there.
func TestFloorLetsGoOfWhoNeverCameBack(t *testing.T) {
	nodes, users := threeNodesWith(t, func(c *conf.Config) {
		withHall(c)
		c.Cluster.FailoverWait = conf.Duration{Duration: 2 * time.Second}
	})
	chair := joinWith(t, nodes[0], "chair", nil, "chair")
	holder, waiting := joinWith(t, nodes[2], "holder", newCert(t)), joinWith(t, nodes[2], "waiting", newCert(t))
	waitUntil(t, 5*time.Second, "node 3's members seen on node 1", func() bool {
		return userNamed(chair.Client, "holder") != nil && userNamed(chair.Client, "waiting") != nil
	})
	chair.say(t, "!give holder")
	waitUntil(t, 5*time.Second, "the holder told", func() bool { return holder.gotText("You have the floor.") })
	waiting.say(t, "!hand")
	waitUntil(t, 5*time.Second, "waiting queued", func() bool { return waiting.gotText("number 1 in the queue") })
	users[0].say(t, "!hand")
	waitUntil(t, 5*time.Second, "user1 queued second", func() bool { return users[0].gotText("number 2 in the queue") })

	nodes[2].node.Close() // node 3 dies without a goodbye, and its members give up
	waitUntil(t, 6*time.Second, "node 3's users removed", func() bool { return userNamed(chair.Client, "waiting") == nil })
	removed := time.Now()
	// The floor as shown below the hall's description (polling !queue
	// would run into the message rate limit and drop the !next below).
	hall := channelNamed(t, chair.Client, "Hall")
	waitUntil(t, 10*time.Second, "the floor free and only user1 queued", func() bool {
		return strings.Contains(chair.Channels()[hall].GetDescription(), "Floor: nobody. Queue: 1. user1.")
	})
	if took := time.Since(removed); took < 1500*time.Millisecond {
		t.Errorf("let go of after %v, before failover_wait", took)
	}
	chair.say(t, "!next")
	waitFloor(t, []*listener{chair, users[0], users[1]}, []string{"user1", "user2"}, "user1")
}

// TestFloorRefusedWhileCutOff: a node cut off from NATS refuses floor
// changes with the reason (the chair's !next, a member's !hand), and
// still answers !queue; the queue is unchanged.
func TestFloorRefusedWhileCutOff(t *testing.T) {
	ns := startNATS(t)
	node1 := startNode(t, ns, "node1", withHall)
	node2 := startNode(t, ns, "node2", withHall)
	chair, member := joinWith(t, node1, "chair", nil, "chair"), join(t, node1, "member")
	other := join(t, node2, "other")
	waitUntil(t, 5*time.Second, "all seen", func() bool { return len(chair.Users()) == 3 })
	other.say(t, "!hand")
	waitUntil(t, 5*time.Second, "the chair told of other's hand", func() bool { return chair.gotText("Queue: 1. other.") })

	ns.Shutdown()
	ns.WaitForShutdown()
	waitUntil(t, 8*time.Second, "told of the cut", func() bool { return chair.gotText("lost its connection") })
	refused := func(who *listener) bool {
		for _, d := range who.deniedReceived() {
			if strings.Contains(d.GetReason(), "cut off") && strings.Contains(d.GetReason(), "floor") {
				return true
			}
		}
		return false
	}
	chair.say(t, "!next")
	waitUntil(t, 5*time.Second, "the chair's !next refused with the reason", func() bool { return refused(chair) })
	member.say(t, "!hand")
	waitUntil(t, 5*time.Second, "the member's !hand refused with the reason", func() bool { return refused(member) })
	mark := chair.mark()
	chair.say(t, "!queue")
	waitUntil(t, 5*time.Second, "!queue still answered, the queue unchanged", func() bool {
		return chair.gotTextSince(mark, "Floor: nobody. Queue: 1. other.")
	})
	if member.gotText("in the queue") {
		t.Error("the member was queued while cut off")
	}
}

// TestFloorPlaceKeptWhenReplacedElsewhere: a member waiting first on node
// 3 logs in on node 2 while their old session is still up (a network
// change): node 3 ends the old session without giving up the place, and
// the new session takes it over, so the chair's !next gives them the
// floor on node 2.
func TestFloorPlaceKeptWhenReplacedElsewhere(t *testing.T) {
	nodes, users := threeNodesWith(t, withHall)
	chair := joinWith(t, nodes[0], "chair", nil, "chair")
	cert := newCert(t)
	member := joinWith(t, nodes[2], "member", cert)
	member.say(t, "!hand")
	waitUntil(t, 5*time.Second, "the member queued", func() bool { return member.gotText("number 1 in the queue") })
	users[0].say(t, "!hand")
	waitUntil(t, 5*time.Second, "user1 queued second", func() bool { return users[0].gotText("number 2 in the queue") })

	back := joinWith(t, nodes[1], "member", cert)
	select {
	case <-member.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the old session on node 3 was not ended")
	}
	hall := channelNamed(t, chair.Client, "Hall")
	waitUntil(t, 5*time.Second, "the member's new session still first", func() bool {
		return strings.Contains(chair.Channels()[hall].GetDescription(), "Queue: 1. member, 2. user1.")
	})
	time.Sleep(500 * time.Millisecond) // every node has adopted what there was to adopt
	if !strings.Contains(chair.Channels()[hall].GetDescription(), "Queue: 1. member, 2. user1.") {
		t.Fatalf("the queue changed after the replacement: %q", chair.Channels()[hall].GetDescription())
	}
	chair.say(t, "!next")
	waitFloor(t, []*listener{chair, users[0], back}, []string{"member", "user1"}, "member")
}

// TestFloorMinutesOnEveryNode: a hall that keeps minutes has the same
// minutes on every node, whichever node ended a turn; the floors are in
// a bucket JetStream keeps in memory, and none is in the configuration's
// bucket, which is on the NATS servers' disks.
func TestFloorMinutesOnEveryNode(t *testing.T) {
	nodes, users := threeNodesWith(t, func(c *conf.Config) {
		withHall(c)
		c.Lookup("Hall").FloorMinutes = true
	})
	chair := joinWith(t, nodes[0], "chair", nil, "chair")
	all := append(users[:], chair)
	names := []string{"user1", "user2", "user3"}
	for _, o := range all {
		waitUntil(t, 5*time.Second, "everyone seen", func() bool { return len(o.Users()) == 4 })
	}
	chair.say(t, "!give user3")
	waitFloor(t, all, names, "user3")
	time.Sleep(300 * time.Millisecond)
	chair.say(t, "!revoke") // node 1 ends the turn of a user of node 3
	waitFloor(t, all, names, "")
	for i, n := range nodes {
		waitUntil(t, 5*time.Second, fmt.Sprintf("user3's turn in node %d's minutes", i+1), func() bool {
			for _, ch := range n.Status().Channels {
				if ch.Path == "Hall" && ch.Floor != nil && len(ch.Floor.Minutes) == 1 {
					turn := ch.Floor.Minutes[0]
					return turn.Name == "user3" && turn.Seconds >= 0.3
				}
			}
			return false
		})
	}

	url := nodes[0].natsURLs[0]
	floors, err := bucketIn(url, "plenum_test_floors")
	if err != nil {
		t.Fatal(err)
	}
	if s := floors.StreamInfo().Config.Storage; s != jetstream.MemoryStorage {
		t.Errorf("the floors' bucket is kept in %v, want memory", s)
	}
	config, err := bucketIn(url, "plenum_test_config")
	if err != nil {
		t.Fatal(err)
	}
	if n := config.StreamInfo().State.NumSubjects; n != 3 {
		t.Errorf("the configuration's bucket has %d keys, want its 3 documents and no floor", n)
	}
}

// floorSecOf is the floor time the status of node n gives its user name.
func floorSecOf(n *testNode, name string) float64 {
	for _, ch := range n.Status().Channels {
		for _, u := range ch.Users {
			if u.Name == name {
				return u.FloorSec
			}
		}
	}
	return -1
}
