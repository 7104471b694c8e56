package cluster_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/plenum-voice/plenum/internal/audiotest"
	"github.com/plenum-voice/plenum/internal/webpeer"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/server"
)

// TestBrowserOnAClusterNode: a browser joins node 1 of a two-node
// cluster. It sees the Mumble user of node 2, that user's 1500 Hz tone
// reaches the browser's track through NATS and the node's mix, and the
// browser's 1000 Hz tone reaches the Mumble user on node 2, decoded at
// those frequencies: any node takes any kind of user.
func TestBrowserOnAClusterNode(t *testing.T) {
	ns := startNATS(t)
	web := startNodeWeb(t, ns, "web", t.TempDir(), nil, "127.0.0.1:0")
	other := startNode(t, ns, "other", nil)
	mumble := join(t, other, "mumble")

	var mu sync.Mutex
	var track [][]byte
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := webpeer.Dial(ctx, webpeer.Config{URL: "ws://" + web.WebAddr().String() + "/ws", Username: "browser",
		OnRTP: func(p *rtp.Packet, _ time.Time) {
			mu.Lock()
			track = append(track, append([]byte(nil), p.Payload...))
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	waitUntil(t, 5*time.Second, "the browser and the Mumble user see each other", func() bool {
		u, ok := mumble.Users()[b.Session()]
		return ok && u.GetComment() == server.WebMarker && b.NumUsers() == 2
	})

	// Mumble on node 2 -> the browser on node 1.
	speaker, err := audiotest.NewSpeaker(1500, 0.3, 20)
	if err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	for i := range 50 {
		frame, err := speaker.Next()
		if err != nil {
			t.Fatal(err)
		}
		if err := mumble.SendAudio(0, uint64(2*i), frame, i == 49, nil); err != nil {
			t.Fatal(err)
		}
		<-tick.C
	}
	tick.Stop()
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	heard := track
	track = nil
	mu.Unlock()
	if f := frequencyOf(t, heard); len(heard) < 45 || !(f > 1498 && f < 1502) {
		t.Errorf("the browser got %d packets of 50 from node 2, decoded at %.1f Hz, want 1500", len(heard), f)
	}

	// The browser on node 1 -> Mumble on node 2.
	speaker, err = audiotest.NewSpeaker(1000, 0.3, 20)
	if err != nil {
		t.Fatal(err)
	}
	tick = time.NewTicker(20 * time.Millisecond)
	for range 50 {
		frame, err := speaker.Next()
		if err != nil {
			t.Fatal(err)
		}
		if err := b.SendOpus(frame, 960); err != nil {
			t.Fatal(err)
		}
		<-tick.C
	}
	tick.Stop()
	time.Sleep(300 * time.Millisecond)
	var fromBrowser [][]byte
	for _, p := range mumble.received() {
		if p.Sender == b.Session() && len(p.Opus) > 0 {
			fromBrowser = append(fromBrowser, p.Opus)
		}
	}
	if f := frequencyOf(t, fromBrowser); len(fromBrowser) < 45 || !(f > 998 && f < 1002) {
		t.Errorf("the Mumble user on node 2 got %d packets of the browser's 50, decoded at %.1f Hz, want 1000", len(fromBrowser), f)
	}
}

// frequencyOf decodes Opus packets and returns the tone's frequency,
// leaving out the decoder's first quarter.
func frequencyOf(t *testing.T, packets [][]byte) float64 {
	t.Helper()
	pcm, err := audiotest.Decode(packets)
	if err != nil {
		t.Fatal(err)
	}
	if len(pcm) == 0 {
		return 0
	}
	return audiotest.Frequency(pcm[len(pcm)/4:])
}

// TestCommentsAcrossNodes: a short comment travels with the user's state;
// a longer one arrives as a hash whose text a client on another node gets
// with RequestBlob, as from its own server; one over maxRelayedComment
// (4096 bytes) only as a hash, and its node gives the text when a client
// of another node asks.
func TestCommentsAcrossNodes(t *testing.T) {
	_, users := threeNodes(t)
	author, reader := users[0], users[1]
	setComment := func(text string) {
		t.Helper()
		if err := author.Send(&mumblepb.UserState{Session: ptr(author.Session()), Comment: ptr(text)}); err != nil {
			t.Fatal(err)
		}
	}
	setComment("Delegation Berlin")
	waitUntil(t, 5*time.Second, "the short comment on node 2", func() bool {
		return reader.Users()[author.Session()].GetComment() == "Delegation Berlin"
	})

	long := strings.Repeat("Delegation Berlin-Mitte, Pankow and Friedrichshain. ", 20) // over the 128 characters sent as a hash
	setComment(long)
	waitUntil(t, 5*time.Second, "the long comment's hash on node 2", func() bool {
		return len(reader.Users()[author.Session()].GetCommentHash()) == 20
	})
	if err := reader.Send(&mumblepb.RequestBlob{SessionComment: []uint32{author.Session()}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "the long comment's text on node 2", func() bool {
		return reader.Users()[author.Session()].GetComment() == long
	})

	huge := strings.Repeat("Delegation Berlin with a picture. ", 140) // 4760 bytes, under text_message_length
	setComment(huge)
	sum := sha1.Sum([]byte(huge))
	waitUntil(t, 5*time.Second, "the hash of a comment over the limit on node 2", func() bool {
		return bytes.Equal(reader.Users()[author.Session()].GetCommentHash(), sum[:])
	})
	if err := reader.Send(&mumblepb.RequestBlob{SessionComment: []uint32{author.Session()}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "the text of a comment over the limit, fetched from node 1", func() bool {
		return reader.Users()[author.Session()].GetComment() == huge
	})

	setComment("")
	waitUntil(t, 5*time.Second, "the comment cleared on node 2", func() bool {
		st := reader.Users()[author.Session()]
		return st.GetComment() == "" && len(st.GetCommentHash()) == 0
	})
}

// TestAvatarsAndListenersAcrossNodes: a user's avatar reaches clients of
// other nodes as a hash, and its picture when they ask for it (their node
// fetches it from the user's); clearing it clears it there. The channels
// the user listens to are shown there too, and stop being when the user
// stops listening.
func TestAvatarsAndListenersAcrossNodes(t *testing.T) {
	_, users := threeNodes(t)
	author, viewer := users[0], users[2]
	avatar := make([]byte, 20000) // a picture, as far as the servers care
	for i := range avatar {
		avatar[i] = byte(i * 7)
	}
	if err := author.Send(&mumblepb.UserState{Session: ptr(author.Session()), Texture: avatar}); err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(avatar)
	waitUntil(t, 5*time.Second, "the avatar's hash on node 3", func() bool {
		return bytes.Equal(viewer.Users()[author.Session()].GetTextureHash(), sum[:])
	})
	if err := viewer.Send(&mumblepb.RequestBlob{SessionTexture: []uint32{author.Session()}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "the avatar on node 3, fetched from node 1", func() bool {
		return bytes.Equal(viewer.Users()[author.Session()].GetTexture(), avatar)
	})
	if err := author.Send(&mumblepb.UserState{Session: ptr(author.Session()), Texture: []byte{}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "the avatar cleared on node 3", func() bool {
		st := viewer.Users()[author.Session()]
		return len(st.GetTexture()) == 0 && len(st.GetTextureHash()) == 0
	})

	plenary := channelNamed(t, author.Client, "Plenary")
	if err := author.Send(&mumblepb.UserState{Session: ptr(author.Session()), ListeningChannelAdd: []uint32{plenary}}); err != nil {
		t.Fatal(err)
	}
	shown := channelNamed(t, viewer.Client, "Plenary")
	waitUntil(t, 5*time.Second, "the author shown listening to Plenary on node 3", func() bool {
		return slices.Equal(viewer.Users()[author.Session()].GetListeningChannelAdd(), []uint32{shown})
	})
	if err := author.Send(&mumblepb.UserState{Session: ptr(author.Session()), ListeningChannelRemove: []uint32{plenary}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "the author no longer shown listening on node 3", func() bool {
		return len(viewer.Users()[author.Session()].GetListeningChannelAdd()) == 0
	})
}
