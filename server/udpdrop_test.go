package server

import (
	"net/netip"
	"testing"

	"github.com/plenum-voice/plenum/crypto"
	"github.com/plenum-voice/plenum/proto/voice"
)

// TestInvalidDatagramsAreDroppedAndCounted: replayed, forged, unknown,
// oversized and undersized datagrams are dropped, each under its own
// counter, and none of them reaches a listener.
func TestInvalidDatagramsAreDroppedAndCounted(t *testing.T) {
	s := newBareServer(t)
	sink, _ := udpSink(t)
	speaker := s.addFakeUser(t, s.root, voice.Protobuf, netip.AddrPort{})
	s.addFakeUser(t, s.root, voice.Protobuf, sink) // a listener

	// The speaker's client side of the crypt state.
	var client crypto.CryptState
	key, enc, dec := speaker.crypt.Key(), speaker.crypt.EncryptIV(), speaker.crypt.DecryptIV()
	if err := client.SetKey(key[:], dec[:], enc[:]); err != nil {
		t.Fatal(err)
	}
	seal := func(frame uint64) []byte { return client.Encrypt(nil, audioPacket(voice.Protobuf, 0, frame)) }
	from := netip.MustParseAddrPort("127.0.0.1:40000")
	stranger := netip.MustParseAddrPort("127.0.0.1:40001")
	r := s.newRouter(s.udpSocks[0])
	plain := make([]byte, 0, voice.MaxPacket)
	send := func(pkt []byte, addr netip.AddrPort) {
		s.handleDatagram(r, pkt, addr, plain)
		r.Flush()
	}

	first := seal(1)
	send(first, from) // binds the speaker's address by trial decryption
	if got := s.peers.lookup(from); got != speaker {
		t.Fatal("the speaker's first datagram did not bind its address")
	}
	forwarded := s.Stats().VoiceForwarded

	send(first, from)     // replayed from the client's address
	send(first, stranger) // replayed from elsewhere: matches no one
	forged := seal(2)
	forged[len(forged)-1] ^= 1 // a flipped bit in the Opus data
	send(forged, from)
	send(make([]byte, 60), stranger) // nobody's key
	send(make([]byte, voice.MaxPacket+1), from)
	send([]byte{1, 2, 3}, from)

	st := s.Stats()
	type drops struct{ replayed, badMAC, unmatched, oversized, undersized uint64 }
	want := drops{replayed: 1, badMAC: 1, unmatched: 2, oversized: 1, undersized: 1}
	got := drops{st.UDPReplayed, st.UDPBadMAC, st.UDPUnmatched, st.UDPOversized, st.UDPUndersized}
	if got != want {
		t.Errorf("drop counters %+v, want %+v", got, want)
	}
	if st.VoiceForwarded != forwarded || st.VoiceReceived != 1 {
		t.Errorf("an invalid datagram was forwarded: received %d, forwarded %d (was %d)", st.VoiceReceived, st.VoiceForwarded, forwarded)
	}
	if s.peers.lookup(stranger) != nil {
		t.Error("a replay from another address took over the speaker")
	}

	// The speaker's next genuine packet still gets through.
	send(seal(3), from)
	if s.Stats().VoiceForwarded != forwarded+1 {
		t.Error("a genuine packet after the bad ones was not forwarded")
	}
}

// TestDroppingInvalidDatagramsAllocatesNothing: a flood of bad datagrams
// costs no garbage either.
func TestDroppingInvalidDatagramsAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates for its own bookkeeping; run without -race")
	}
	s := newBareServer(t)
	u := s.addFakeUser(t, s.root, voice.Protobuf, netip.AddrPort{})
	known := netip.MustParseAddrPort("127.0.0.1:40000")
	stranger := netip.MustParseAddrPort("127.0.0.1:40001")
	s.peers.bind(known, u)
	r := s.newRouter(s.udpSocks[0])
	plain := make([]byte, 0, voice.MaxPacket)
	garbage, huge, tiny := make([]byte, 60), make([]byte, voice.MaxPacket+1), []byte{1, 2}
	garbage[0] = u.crypt.DecryptIV()[0] + 1 // the next nonce: fails authentication, not the replay check
	allocs := testing.AllocsPerRun(1000, func() {
		s.handleDatagram(r, garbage, known, plain)
		s.handleDatagram(r, garbage, stranger, plain)
		s.handleDatagram(r, huge, known, plain)
		s.handleDatagram(r, tiny, known, plain)
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per round of invalid datagrams, want 0", allocs)
	}
	if st := s.Stats(); st.UDPBadMAC == 0 || st.UDPUnmatched == 0 || st.UDPOversized == 0 || st.UDPUndersized == 0 {
		t.Fatalf("not every kind was counted: %+v", st)
	}
}
