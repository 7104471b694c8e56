package server

import (
	"bytes"
	"net/netip"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/proto/voice"
)

// Who sends FuzzHandle's frames.
const (
	actorNew        = iota // a connection that has not authenticated yet
	actorGuest             // an unregistered user (protobuf UDP)
	actorSuperUser         // SuperUser (protobuf UDP)
	actorRegistered        // a registered user without special rights (legacy UDP)
	actorKinds
)

// FuzzHandle feeds a stream of control frames from one client to a fresh
// server, frame by frame, as the connection's reader would, with two other
// users connected. After every frame the server must not have panicked,
// must have queued only well-formed frames and decodable voice, and its
// channels, users, listeners and voice snapshot must agree; at the end,
// the state it would write back to its configuration file must encode and
// parse again. The first byte picks the sender: a fresh connection (so
// Version and Authenticate run for real), a guest, SuperUser or a
// registered user. Seeds are in testdata/fuzz/FuzzHandle.
func FuzzHandle(f *testing.F) {
	f.Add(uint8(actorGuest), frames(&mumblepb.Ping{Timestamp: proto.Uint64(1)}))
	f.Add(uint8(actorNew), frames(
		&mumblepb.Version{VersionV2: proto.Uint64(control.MakeVersion(1, 5, 735))},
		&mumblepb.Authenticate{Username: proto.String("newcomer"), Opus: proto.Bool(true)},
		&mumblepb.UserState{SelfMute: proto.Bool(true)}))
	standIn := netip.MustParseAddr("2001:db8::1").As16()
	typed := netip.MustParseAddr("::ffff:192.0.2.7").As16()
	f.Add(uint8(actorSuperUser), frames(
		&mumblepb.BanList{Query: proto.Bool(true)},
		&mumblepb.BanList{Bans: []*mumblepb.BanList_BanEntry{
			{Address: standIn[:], Mask: proto.Uint32(64), Reason: proto.String("unknown stand-in")},
			{Address: typed[:], Mask: proto.Uint32(120), Start: proto.String("2026-01-02T03:04:05Z"), Duration: proto.Uint32(60)},
			{Address: make([]byte, 16), Mask: proto.Uint32(128), Hash: proto.String("ABCDEF")},
		}},
		&mumblepb.BanList{Query: proto.Bool(true)}))
	// The ACL editor may send what Murmur stores however odd: it must be
	// written back.
	f.Add(uint8(actorSuperUser), frames(&mumblepb.ACL{ChannelId: proto.Uint32(1), InheritAcls: proto.Bool(false),
		Groups: []*mumblepb.ACL_ChanGroup{{Name: proto.String("all")}, {Name: proto.String("~x.y\x00\xff"), Add: []uint32{0}, Remove: []uint32{0}}},
		Acls: []*mumblepb.ACL_ChanACL{
			{Group: proto.String("!$ABC\xff\n"), Grant: proto.Uint32(0xffffffff)},
			{Group: proto.String("sub,1,x,y"), ApplyHere: proto.Bool(true)},
			{UserId: proto.Uint32(0), Deny: proto.Uint32(0x10000)},
		}}))
	dir := fuzzDataDir(f)
	pool := newTCPPool(f)
	cfg := fuzzConfig()
	f.Fuzz(func(t *testing.T, who uint8, stream []byte) {
		w := newFuzzWorld(t, dir, cfg, pool)
		defer w.close()
		actor := w.populate(t, who%actorKinds)
		r := control.NewReader(bytes.NewReader(stream))
		for {
			typ, payload, err := r.Read()
			if err != nil {
				break
			}
			if actor.c.partingReason() != reasonNone {
				continue // the reader ignores what follows a Reject or kick
			}
			w.s.handle(actor.c, typ, payload)
			w.settle(t)
			if bad := w.checkDatagrams(t); len(bad) > 0 {
				t.Fatalf("sent % x to %v, which its client cannot decrypt", bad[0].data, bad[0].to)
			}
			w.checkState(t)
			if actor.left {
				break
			}
		}
		w.checkWriteBack(t)
	})
}

// populate connects the sender and two bystanders: a protobuf user with
// UDP in the default channel and a legacy user without UDP in Plenary.
func (w *fuzzWorld) populate(t *testing.T, who uint8) *fuzzPeer {
	t.Helper()
	var actor *fuzzPeer
	switch who {
	case actorNew:
		actor = w.connect(t)
	case actorGuest:
		actor = w.join(t, w.s.defaultChannel, "guest", -1, voice.Protobuf, 4001)
	case actorSuperUser:
		actor = w.join(t, w.s.defaultChannel, "SuperUser", 0, voice.Protobuf, 4001)
	case actorRegistered:
		reg, err := w.s.store.Register("member", certHashOf("member"))
		if err != nil {
			t.Fatal(err)
		}
		actor = w.join(t, w.s.defaultChannel, "member", reg.ID, voice.Legacy, 4001)
	}
	w.join(t, w.s.defaultChannel, "alice", -1, voice.Protobuf, 4002)
	w.join(t, w.channelNamed("Plenary"), "bob", -1, voice.Legacy, 0)
	w.settle(t)
	return actor
}

// checkWriteBack checks the configuration file the server would write
// after the edits: it must encode, and what it encodes to must load. The
// channel ids it would record must know every permanent channel by its
// path, and no channel may have an id above the highest handed out.
func (w *fuzzWorld) checkWriteBack(t *testing.T) {
	t.Helper()
	w.s.mu.Lock()
	for _, ch := range w.s.breadthFirst()[1:] {
		p, _ := w.s.pathOfLocked(ch)
		if got := w.s.ids.byPath[p]; !ch.temporary && got != ch.id {
			t.Errorf("channel %d at %q is recorded as %d", ch.id, p, got)
		}
		if ch.id > w.s.ids.last {
			t.Errorf("channel %d is above the last id handed out, %d", ch.id, w.s.ids.last)
		}
	}
	w.s.mu.Unlock()
	job, _ := w.s.takeConfigJob()
	if job == nil {
		return // nothing to write
	}
	if job.ticket != nil {
		job.ticket.finish() // nothing is written here: release the holds
	}
	cfg := w.s.jobConfig(job)
	data, err := conf.Encode(cfg)
	if err != nil {
		t.Fatalf("the server's state cannot be written back: %v", err)
	}
	if _, err := conf.Parse(data, cfg.File); err != nil {
		t.Fatalf("the written configuration does not load: %v\n%s", err, data)
	}
}

// frames encodes messages as a stream of control frames.
func frames(msgs ...proto.Message) []byte {
	var b []byte
	for _, m := range msgs {
		frame, err := control.Marshal(m)
		if err != nil {
			panic(err)
		}
		b = append(b, frame...)
	}
	return b
}

// Where FuzzDatagram's datagram comes from.
const (
	fromStranger       = iota // an address no user has; sent as it is
	fromLegacy                // the legacy user's address; sent as it is
	fromLegacyClient          // the legacy user's address, encrypted by its client
	fromProtobufClient        // the protobuf user's address, encrypted by its client
	fromNewPort               // a new port of the protobuf user's IP, encrypted by its client
	fromKinds
)

// FuzzDatagram feeds one UDP datagram to the server's UDP entry point
// (handleDatagram, which the socket reader calls for each datagram it
// reads), with the socket replaced by a recorder. The first byte picks the
// source; for the encrypted kinds the fuzzed bytes are the plaintext and
// the sender's client encrypts them, so that the parsers, the router and
// the senders behind decryption are reached. Four users are connected:
// the legacy and the protobuf sender and a protobuf listener without UDP,
// all in the default channel, and a legacy user in Plenary, which the
// senders' voice targets reach. Whatever arrives, every datagram the
// server sends to a user must decrypt to a ping or decodable audio, no user
// gets its own voice back unless it asked for loopback or two copies of one
// packet, and nothing unencrypted goes out that is longer than what came
// in. Seeds are in testdata/fuzz/FuzzDatagram.
func FuzzDatagram(f *testing.F) {
	f.Add(uint8(fromStranger), []byte{0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(uint8(fromLegacyClient), voice.AppendAudio(nil, voice.Legacy, &voice.Audio{Frame: 1, Opus: []byte{1, 2, 3}}, false))
	f.Add(uint8(fromProtobufClient), voice.AppendPing(nil, voice.Protobuf, 42))
	cfg := fuzzConfig()
	w := newFuzzWorld(f, fuzzDataDir(f), cfg, newTCPPool(f))
	f.Cleanup(w.close)
	r := w.s.newRouter(w.s.udpSocks[0])
	plain := make([]byte, 0, voice.MaxPacket)
	f.Fuzz(func(t *testing.T, from uint8, pkt []byte) {
		legacy, pb := w.populateVoice(t)
		defer w.leaveAll()
		src, dgram := w.datagramFrom(from%fromKinds, legacy, pb, pkt)
		w.s.handleDatagram(r, dgram, src, plain)
		r.Flush()
		w.checkCopies(t, src, dgram)
		w.settle(t)
		w.checkState(t)
	})
}

// populateVoice connects FuzzDatagram's four users and gives the senders
// voice targets: 1 shouts to Plenary with links and subchannels, 2
// whispers to the listener without UDP, 3 shouts to the "all" group of the
// default channel.
func (w *fuzzWorld) populateVoice(t *testing.T) (legacy, pb *fuzzPeer) {
	t.Helper()
	w.s.mu.Lock()
	w.s.sessions = newSessionPool(w.s.cfg().MaxUsers, nil) // the same sessions for every input
	w.s.mu.Unlock()
	home, plenary := w.s.defaultChannel, w.channelNamed("Plenary")
	legacy = w.join(t, home, "legacy", -1, voice.Legacy, 5001)
	pb = w.join(t, home, "proto", -1, voice.Protobuf, 5002)
	quiet := w.join(t, home, "tunnel", -1, voice.Protobuf, 0)
	w.join(t, plenary, "elsewhere", -1, voice.Legacy, 5004)
	for _, p := range []*fuzzPeer{legacy, pb} {
		u := p.c.user
		w.s.handleVoiceTarget(u, &mumblepb.VoiceTarget{Id: ptr(uint32(1)), Targets: []*mumblepb.VoiceTarget_Target{
			{ChannelId: ptr(plenary.id), Links: ptr(true), Children: ptr(true)}}})
		w.s.handleVoiceTarget(u, &mumblepb.VoiceTarget{Id: ptr(uint32(2)), Targets: []*mumblepb.VoiceTarget_Target{
			{Session: []uint32{quiet.c.user.session}}}})
		w.s.handleVoiceTarget(u, &mumblepb.VoiceTarget{Id: ptr(uint32(3)), Targets: []*mumblepb.VoiceTarget_Target{
			{ChannelId: ptr(home.id), Group: ptr("all")}}})
	}
	w.settle(t)
	return legacy, pb
}

// datagramFrom builds the datagram and its source address for kind.
func (w *fuzzWorld) datagramFrom(kind uint8, legacy, pb *fuzzPeer, pkt []byte) (netip.AddrPort, []byte) {
	switch kind {
	case fromLegacy:
		return legacy.udp, pkt
	case fromLegacyClient:
		return legacy.udp, legacy.crypt.Encrypt(nil, pkt)
	case fromProtobufClient:
		return pb.udp, pb.crypt.Encrypt(nil, pkt)
	case fromNewPort:
		return netip.AddrPortFrom(pb.udp.Addr(), 6000), pb.crypt.Encrypt(nil, pkt)
	}
	return netip.MustParseAddrPort("192.0.2.1:7000"), pkt
}

// checkCopies checks who got what from one datagram from src: users at
// most one copy, the sender none unless it asked for loopback (or it is a
// ping's echo), and strangers nothing longer than the request.
func (w *fuzzWorld) checkCopies(t *testing.T, src netip.AddrPort, dgram []byte) {
	t.Helper()
	got := make(map[netip.AddrPort]int)
	for _, d := range w.udp.sent {
		got[d.to]++
		if got[d.to] > 1 {
			t.Fatalf("%v got %d datagrams for one", d.to, got[d.to])
		}
	}
	for _, d := range w.checkDatagrams(t) {
		if d.to != src || len(d.data) > len(dgram) {
			t.Fatalf("%d bytes sent unencrypted to %v for %d bytes from %v", len(d.data), d.to, len(dgram), src)
		}
	}
}

// The fuzz targets' checks only mean something if their fake clients reach
// the server's code paths; this pins that they do.
func TestFuzzWorldReachesTheServer(t *testing.T) {
	dir := t.TempDir()
	cfg := fuzzConfig()
	pool := newTCPPool(t)

	w := newFuzzWorld(t, dir, cfg, pool)
	actor := w.populate(t, actorNew)
	r := control.NewReader(bytes.NewReader(frames(
		&mumblepb.Version{VersionV2: proto.Uint64(control.MakeVersion(1, 5, 735))},
		&mumblepb.Authenticate{Username: proto.String("newcomer")})))
	for typ, payload, err := r.Read(); err == nil; typ, payload, err = r.Read() {
		w.s.handle(actor.c, typ, payload)
		w.settle(t)
	}
	if u := actor.c.user; u == nil || u.name != "newcomer" || u.format != voice.Protobuf || len(w.s.users) != 3 {
		t.Fatalf("a new connection did not log in: %+v, %d users", u, len(w.s.users))
	}
	w.close()

	w = newFuzzWorld(t, dir, cfg, pool)
	defer w.close()
	legacy, pb := w.populateVoice(t)
	send := func(kind uint8, plain []byte) {
		t.Helper()
		src, dgram := w.datagramFrom(kind, legacy, pb, plain)
		r := w.s.newRouter(w.s.udpSocks[0])
		w.s.handleDatagram(r, dgram, src, make([]byte, 0, voice.MaxPacket))
		r.Flush()
	}
	send(fromLegacyClient, voice.AppendAudio(nil, voice.Legacy, &voice.Audio{Frame: 1, Opus: []byte{1, 2, 3}}, false))
	// The protobuf sender hears it over UDP, the tunnel user through its
	// queue; the user in Plenary does not.
	if len(w.udp.sent) != 1 || w.udp.sent[0].to != pb.udp || len(w.peers[2].c.voice) != 1 {
		t.Errorf("speech went out as %d datagrams and %d tunnelled frames", len(w.udp.sent), len(w.peers[2].c.voice))
	}
	w.settle(t)
	w.checkDatagrams(t)

	send(fromProtobufClient, voice.AppendPing(nil, voice.Protobuf, 42))
	if len(w.udp.sent) != 1 || w.udp.sent[0].to != pb.udp {
		t.Errorf("a ping was answered with %d datagrams", len(w.udp.sent))
	}
	w.checkDatagrams(t)

	// Target 1 reaches the user in Plenary.
	send(fromProtobufClient, voice.AppendAudio(nil, voice.Protobuf, &voice.Audio{Target: 1, Opus: []byte{1}}, false))
	if len(w.udp.sent) != 1 || w.udp.sent[0].to != w.peers[3].udp {
		t.Errorf("a shout went out as %d datagrams", len(w.udp.sent))
	}
	w.checkDatagrams(t)
}
