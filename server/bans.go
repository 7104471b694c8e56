package server

// Bans: enforcement, the ban editor (BanList) and bans by session
// (UserRemove with ban). With show_addresses = false (the default) no
// client is ever sent an address. The ban editor then shows each ban under
// a stand-in address, its pseudonym: 2001:db8::/32 (the IPv6 documentation
// range, which no client connects from) followed by 96 random bits drawn
// for that ban in this process. Mumble's editor sends the whole list back
// on save, with each entry's address as it was shown, so the pseudonym is
// what finds the ban again: its real address and mask are restored, the
// fields the admin can see (name, hash, reason, start, duration) take the
// edit. A pseudonym the server did not hand out is dropped, never stored.

import (
	"crypto/rand"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/store"
)

// pseudonymRange holds every stand-in address; typed entries in it are
// dropped, so a ban there can only ever come from a pseudonym.
var pseudonymRange = netip.MustParsePrefix("2001:db8::/32")

// banTag is a ban's pseudonym without the fixed 32-bit prefix. It is drawn
// at random, so it says nothing about the ban's address, and it lives only
// in memory: after a restart every ban has a new one.
type banTag [12]byte

// listedBan is a ban as the server keeps it in memory: the stored ban and
// its tag.
type listedBan struct {
	store.Ban
	tag banTag
}

func newBanTag() banTag {
	var t banTag
	rand.Read(t[:]) // never fails (crypto/rand aborts the process instead)
	return t
}

// listBans gives each stored ban a tag.
func listBans(bans []store.Ban) []listedBan {
	out := make([]listedBan, len(bans))
	for i, b := range bans {
		out[i] = listedBan{Ban: b, tag: newBanTag()}
	}
	return out
}

// pseudonym is the 16-byte stand-in address of the ban.
func (b listedBan) pseudonym() []byte {
	a := pseudonymRange.Addr().As16()
	copy(a[4:], b.tag[:])
	return a[:]
}

// tagOf returns the tag an address names if it lies in the pseudonym range.
func tagOf(address []byte) (banTag, bool) {
	if len(address) != 16 || !pseudonymRange.Contains(netip.AddrFrom16([16]byte(address))) {
		return banTag{}, false
	}
	return banTag(address[4:]), true
}

// entry is the ban as the editor is shown it. A ban without an address
// part gets its pseudonym even when addresses are shown: Mumble's editor
// drops entries with the all-zero address and would delete the ban on
// save. The mask is always the ban's own (over 128 bits, so the stand-in
// covers as many addresses as the real range does).
func (b listedBan) entry(showAddresses bool) *mumblepb.BanList_BanEntry {
	addr, mask, start, duration := b.Wire()
	if !showAddresses || !b.Prefix.IsValid() {
		addr = b.pseudonym()
	}
	return &mumblepb.BanList_BanEntry{
		Address: addr, Mask: ptr(mask), Name: ptr(b.Name), Hash: ptr(b.CertHash),
		Reason: ptr(b.Reason), Start: ptr(start), Duration: ptr(duration),
	}
}

// bannedLocked reports whether a connection from addr with certHash is
// banned.
func (s *Server) bannedLocked(addr netip.Addr, certHash string) bool {
	now := time.Now()
	for _, b := range s.bans {
		if b.Matches(addr.Unmap(), certHash, now) {
			return true
		}
	}
	return false
}

// handleBanList serves the ban editor (Ban on root): a query returns the
// list, anything else replaces it.
func (s *Server) handleBanList(u *user, m *mumblepb.BanList) {
	s.mu.Lock()
	allowed := s.requireLocked(u, s.root, acl.Ban)
	s.unlock()
	switch {
	case !allowed:
	case m.GetQuery():
		s.sendBanList(u)
	default:
		s.replaceBans(u, m.Bans)
	}
}

// sendBanList answers a query, after dropping expired bans (Murmur purges
// them at every accept, so its editor never shows them either).
func (s *Server) sendBanList(u *user) {
	s.banMu.Lock()
	defer s.banMu.Unlock()
	s.purgeExpiredBans(time.Now())
	s.mu.Lock()
	show := s.cfg().ShowAddresses
	reply := &mumblepb.BanList{Bans: make([]*mumblepb.BanList_BanEntry, 0, len(s.bans))}
	for _, b := range s.bans {
		reply.Bans = append(reply.Bans, b.entry(show))
	}
	s.unlock()
	u.conn.send(reply)
}

// purgeExpiredBans deletes the bans that have run out from the store and
// from memory, or from neither if the store fails. The caller holds banMu.
func (s *Server) purgeExpiredBans(now time.Time) {
	n, err := s.store.PurgeExpiredBans(now)
	if err != nil {
		s.log.Warn("deleting expired bans failed", "err", err)
		return
	}
	if n == 0 {
		return
	}
	s.mu.Lock()
	s.bans = slices.DeleteFunc(s.bans, func(b listedBan) bool { return b.Expired(now) })
	s.unlock()
	s.log.Info("expired bans deleted", "count", n)
	s.shareBans(nil)
}

// replaceBans stores the list an editor sent back.
func (s *Server) replaceBans(u *user, entries []*mumblepb.BanList_BanEntry) {
	s.banMu.Lock()
	defer s.banMu.Unlock()
	s.mu.Lock()
	current := slices.Clone(s.bans)
	s.unlock()
	next, r := mergeBanList(current, entries, time.Now())
	bans := make([]store.Ban, len(next))
	for i, b := range next {
		bans[i] = b.Ban
	}
	if err := s.store.SetBans(bans); err != nil {
		s.log.Error("saving bans failed", "err", err)
		s.refuseUnsaved(u, "The ban list", err)
		return
	}
	s.mu.Lock()
	s.bans = next
	by := s.logUser("by", u)
	s.unlock()
	s.shareBans(u)
	s.log.Info("ban list replaced", "entries", len(next), by,
		"masks_kept", r.masksKept, "unknown_pseudonyms", r.unknown, "invalid", r.invalid)
	if r.masksKept > 0 {
		u.conn.send(textMessage(fmt.Sprintf("The address of a ban is hidden from the editor, so the address mask of %d edited ban(s) was kept as it was.", r.masksKept)))
	}
	if r.unknown > 0 {
		u.conn.send(textMessage(fmt.Sprintf("%d ban(s) with an address in 2001:db8::/32 that names no ban on this server were left out.", r.unknown)))
	}
}

// mergeReport counts what mergeBanList did not take as sent.
type mergeReport struct {
	masksKept int // pseudonym entries whose changed mask was ignored
	unknown   int // entries in the pseudonym range that name no ban
	invalid   int // entries dropped as Murmur drops them
}

// mergeBanList builds the ban list an editor's BanList asks for, from the
// current list. An entry whose address is a current ban's pseudonym stands
// for that ban: it keeps the ban's address and mask (the admin could not
// see them, so a changed mask can neither widen the ban nor sensibly
// narrow it) and takes the entry's other fields. Every other entry is new
// and stored as sent, except one in the pseudonym range, which is dropped.
// A ban no entry names has been deleted by the admin. Bans that were
// already there keep their place; new ones follow in the order sent, so
// a list sent back unchanged changes nothing.
func mergeBanList(current []listedBan, entries []*mumblepb.BanList_BanEntry, now time.Time) ([]listedBan, mergeReport) {
	index := make(map[banTag]int, len(current))
	for i, b := range current {
		index[b.tag] = i
	}
	var r mergeReport
	kept := make([]*listedBan, len(current))
	var added []listedBan
	for _, e := range entries {
		address, mask := e.Address, e.GetMask()
		i, named := -1, false
		if tag, ok := tagOf(address); ok {
			if i, named = index[tag]; !named {
				r.unknown++
				continue
			}
			var shown uint32
			address, shown, _, _ = current[i].Wire()
			if mask != shown {
				r.masksKept++
			}
			mask = shown
		}
		b, err := store.BanFromWire(address, mask, e.GetName(), e.GetHash(), e.GetReason(), e.GetStart(), e.GetDuration())
		if err == nil {
			b, err = b.Normalize(now)
		}
		if err != nil {
			r.invalid++ // as Murmur, which drops invalid entries
			continue
		}
		if named && kept[i] == nil {
			kept[i] = &listedBan{Ban: b, tag: current[i].tag}
			continue
		}
		// A pseudonym sent twice is a copy of that ban: a ban of its own.
		added = append(added, listedBan{Ban: b, tag: newBanTag()})
	}
	next := make([]listedBan, 0, len(kept)+len(added))
	for _, b := range kept {
		if b != nil {
			next = append(next, *b)
		}
	}
	return append(next, added...), r
}

// banUser bans target by session, as Murmur's kick with ban does: its
// address (host mask), now, permanently, with the reason the admin typed.
// The name and certificate hash are kept only for a registered user (the
// store has them anyway); for anyone else they were not typed by the admin
// and would be the only trace of that person on disk.
func (s *Server) banUser(target *user, reason string) error {
	now := time.Now()
	addr := target.conn.remote.Addr().Unmap()
	b := store.Ban{Prefix: netip.PrefixFrom(addr, addr.BitLen()), Reason: reason, Start: now}
	s.mu.Lock()
	if target.stored() {
		b.Name, b.CertHash = target.name, target.certHash
	}
	s.unlock()
	b, err := b.Normalize(now)
	if err != nil {
		return err
	}
	s.banMu.Lock()
	defer s.banMu.Unlock()
	if err := s.store.AddBan(b); err != nil {
		return err
	}
	s.mu.Lock()
	s.bans = append(s.bans, listedBan{Ban: b, tag: newBanTag()})
	s.unlock()
	s.shareBans(nil)
	return nil
}
