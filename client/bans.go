package client

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/proto/mumblepb"
)

// Ban is one entry of the server's ban list as Mumble's ban editor
// (src/mumble/BanEditor.cpp) holds it: the address as the editor shows it
// and the mask as the editor's spin box shows it, which for an IPv4 address
// counts bits of the IPv4 address (the wire counts bits of the IPv4-mapped
// IPv6 address, 96 more).
type Ban struct {
	Address  netip.Addr // IPv4 for an IPv4-mapped address, as the editor shows it
	Bits     int        // the mask as the editor shows it: /24 of IPv4 is 24
	Name     string
	Hash     string
	Reason   string
	Start    time.Time     // UTC, whole seconds
	Duration time.Duration // whole seconds; 0 = permanent
}

// ErrBanListDenied is returned by BanList when the server refuses the
// query: the user lacks the Ban permission on the root channel.
var ErrBanListDenied = errors.New("client: ban list denied")

// banPermission is Mumble's ChanACL::Ban, the bit a refused query names.
const banPermission = 0x20000

// isoUTC is how the editor writes a start: QDateTime in UTC, Qt::ISODate.
const isoUTC = "2006-01-02T15:04:05Z"

// BanList asks for the ban list, as opening Mumble's ban editor does, and
// returns the entries the editor would show, in its order (by name, then
// address). Like the editor it leaves out entries whose address is all zero
// or whose mask is outside 8..128, so saving them back (SetBanList)
// deletes those, as the editor's save does.
func (c *Client) BanList(ctx context.Context) ([]Ban, error) {
	c.mu.Lock()
	lists, denials := c.banLists, c.banDenials
	c.mu.Unlock()
	if err := c.Send(&mumblepb.BanList{Query: proto.Bool(true)}); err != nil {
		return nil, err
	}
	var reply *mumblepb.BanList
	err := c.Wait(ctx, func(c *Client) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.banLists > lists {
			reply = c.banList
		}
		return reply != nil || c.banDenials > denials
	})
	switch {
	case err != nil:
		return nil, err
	case reply == nil:
		return nil, ErrBanListDenied
	}
	bans := make([]Ban, 0, len(reply.Bans))
	for _, e := range reply.Bans {
		if b, ok := banFromEntry(e); ok {
			bans = append(bans, b)
		}
	}
	slices.SortStableFunc(bans, compareBans)
	return bans, nil
}

// SetBanList replaces the server's ban list, as the editor's OK button
// does: every entry is sent, with its address and mask as the editor holds
// them.
func (c *Client) SetBanList(bans []Ban) error {
	m := &mumblepb.BanList{Bans: make([]*mumblepb.BanList_BanEntry, 0, len(bans))}
	for _, b := range bans {
		m.Bans = append(m.Bans, b.entry())
	}
	return c.Send(m)
}

// banFromEntry reads an entry as the editor does, reporting whether the
// editor keeps it. A start it cannot read becomes now.
func banFromEntry(e *mumblepb.BanList_BanEntry) (Ban, bool) {
	if len(e.Address) != 16 || e.GetMask() < 8 || e.GetMask() > 128 {
		return Ban{}, false
	}
	a := netip.AddrFrom16([16]byte(e.Address))
	if a.IsUnspecified() {
		return Ban{}, false
	}
	b := Ban{
		Address: a, Bits: int(e.GetMask()),
		Name: e.GetName(), Hash: e.GetHash(), Reason: e.GetReason(),
		Duration: time.Duration(e.GetDuration()) * time.Second,
	}
	if a.Is4In6() {
		b.Address, b.Bits = a.Unmap(), b.Bits-96
	}
	b.Start = time.Now().UTC().Truncate(time.Second)
	if t, err := parseQtISO(e.GetStart()); err == nil {
		b.Start = t
	}
	return b, true
}

// parseQtISO reads a start as Qt::ISODate does, as UTC when it has no zone.
func parseQtISO(s string) (time.Time, error) {
	var err error
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04"} {
		var t time.Time
		if t, err = time.Parse(layout, s); err == nil {
			return t.UTC().Truncate(time.Second), nil
		}
	}
	return time.Time{}, err
}

// entry is the ban as the editor sends it.
func (b Ban) entry() *mumblepb.BanList_BanEntry {
	a, bits := b.Address.As16(), b.Bits
	if b.Address.Is4() {
		bits += 96
	}
	return &mumblepb.BanList_BanEntry{
		Address:  a[:],
		Mask:     proto.Uint32(uint32(bits)),
		Name:     proto.String(b.Name),
		Hash:     proto.String(b.Hash),
		Reason:   proto.String(b.Reason),
		Start:    proto.String(b.Start.UTC().Format(isoUTC)),
		Duration: proto.Uint32(uint32(b.Duration / time.Second)),
	}
}

// compareBans is the editor's order: by name, then by the 16-byte address.
func compareBans(x, y Ban) int {
	if n := strings.Compare(x.Name, y.Name); n != 0 {
		return n
	}
	ax, ay := x.Address.As16(), y.Address.As16()
	return bytes.Compare(ax[:], ay[:])
}
