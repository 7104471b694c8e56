package client

import (
	"net/netip"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/proto/mumblepb"
)

func wireAddr(s string) []byte {
	a := netip.MustParseAddr(s).As16()
	return a[:]
}

// TestBanEntriesAsTheEditorReadsThem: what Mumble's ban editor keeps of a
// BanList entry, and that it sends a kept entry back unchanged.
func TestBanEntriesAsTheEditorReadsThem(t *testing.T) {
	start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		entry *mumblepb.BanList_BanEntry
		keep  bool
		addr  string
		bits  int
	}{
		{"IPv4 /24", &mumblepb.BanList_BanEntry{Address: wireAddr("::ffff:192.0.2.0"), Mask: proto.Uint32(120)}, true, "192.0.2.0", 24},
		{"IPv6 /64", &mumblepb.BanList_BanEntry{Address: wireAddr("2001:db8:1:2::"), Mask: proto.Uint32(64)}, true, "2001:db8:1:2::", 64},
		{"all-zero address", &mumblepb.BanList_BanEntry{Address: make([]byte, 16), Mask: proto.Uint32(128), Hash: proto.String("ab")}, false, "", 0},
		{"IPv4 with a mask below 96", &mumblepb.BanList_BanEntry{Address: wireAddr("192.0.2.1"), Mask: proto.Uint32(32)}, true, "192.0.2.1", 32 - 96},
		{"4-byte address", &mumblepb.BanList_BanEntry{Address: []byte{192, 0, 2, 1}, Mask: proto.Uint32(128)}, false, "", 0},
		{"mask 7", &mumblepb.BanList_BanEntry{Address: wireAddr("2001:db8::"), Mask: proto.Uint32(7)}, false, "", 0},
		{"mask 129", &mumblepb.BanList_BanEntry{Address: wireAddr("2001:db8::"), Mask: proto.Uint32(129)}, false, "", 0},
	} {
		e := tc.entry
		e.Start, e.Duration, e.Reason = proto.String("2025-06-01T12:00:00Z"), proto.Uint32(60), proto.String(tc.name)
		b, ok := banFromEntry(e)
		if ok != tc.keep {
			t.Errorf("%s: kept %v, want %v", tc.name, ok, tc.keep)
			continue
		}
		if !ok {
			continue
		}
		if b.Address != netip.MustParseAddr(tc.addr) || b.Bits != tc.bits || !b.Start.Equal(start) || b.Duration != time.Minute || b.Reason != tc.name {
			t.Errorf("%s: read as %+v", tc.name, b)
		}
		if back := b.entry(); !proto.Equal(back, &mumblepb.BanList_BanEntry{
			Address: e.Address, Mask: e.Mask, Name: proto.String(""), Hash: proto.String(""),
			Reason: e.Reason, Start: e.Start, Duration: e.Duration,
		}) {
			t.Errorf("%s: sent back as %v, read from %v", tc.name, back, e)
		}
	}
	// A start the editor cannot read becomes now; one without a zone is UTC.
	b, _ := banFromEntry(&mumblepb.BanList_BanEntry{Address: wireAddr("2001:db8::"), Mask: proto.Uint32(64), Start: proto.String("yesterday")})
	if time.Since(b.Start) > time.Minute {
		t.Errorf("unreadable start read as %v, want now", b.Start)
	}
	b, _ = banFromEntry(&mumblepb.BanList_BanEntry{Address: wireAddr("2001:db8::"), Mask: proto.Uint32(64), Start: proto.String("2025-06-01T12:00:00")})
	if !b.Start.Equal(start) {
		t.Errorf("start without zone read as %v", b.Start)
	}
}
