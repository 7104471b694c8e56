package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
)

// soakAdmin is the client that edits ACLs during the soak, as an
// administrator would from the Mumble client's ACL editor: read the
// channel's ACL, change one entry, send the whole ACL back.
type soakAdmin struct {
	g *soak
	c *client.Client

	mu      sync.Mutex
	replies uint64 // ACL replies so far
	last    *mumblepb.ACL

	lastSent time.Time // of an ACL message, owner only
}

// aclSpacing keeps the admin's ACL messages (queries included) within the
// server's default flood limit of one message a second: beyond its
// burst, the server drops them without a word, as Murmur does.
const aclSpacing = 1100 * time.Millisecond

// send sends an ACL message, waiting first if the last one was too
// recent.
func (a *soakAdmin) send(ctx context.Context, m *mumblepb.ACL) error {
	if !sleepCtx(ctx, time.Until(a.lastSent.Add(aclSpacing))) {
		return ctx.Err()
	}
	a.lastSent = time.Now()
	return a.c.Send(m)
}

// dialAdmin logs the administrator in and parks it in the root channel,
// where it hears no voice.
func (g *soak) dialAdmin(ctx context.Context) (*soakAdmin, error) {
	a := &soakAdmin{g: g}
	cfg := client.Config{
		Address: g.opt.Addr, Username: g.opt.AdminUser, Password: g.opt.AdminPassword,
		OnMessage: func(_ control.Type, m proto.Message) { a.onMessage(m) },
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	c, err := client.Dial(dctx, cfg)
	cancel()
	g.countDial(err)
	if err != nil {
		return nil, fmt.Errorf("admin %s: %w", g.opt.AdminUser, err)
	}
	a.c = c
	if err := c.Move(0); err != nil {
		return nil, err
	}
	// A Ping answered means the move was handled; voice the admin heard
	// would be missing from the forwarded-packets reconciliation.
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.Ping(pctx); err != nil {
		return nil, err
	}
	if ch := c.Users()[c.Session()].GetChannelId(); ch != 0 {
		return nil, fmt.Errorf("admin %s stays in channel %d, not root", g.opt.AdminUser, ch)
	}
	return a, nil
}

func (a *soakAdmin) onMessage(m proto.Message) {
	switch m := m.(type) {
	case *mumblepb.ACL:
		a.mu.Lock()
		a.replies++
		a.last = m
		a.mu.Unlock()
	case *mumblepb.PermissionDenied:
		a.g.errorf("admin_denied", "%v %s", m.GetType(), m.GetReason())
	}
}

// query asks for ch's ACL and waits for the reply.
func (a *soakAdmin) query(ctx context.Context, ch uint32) (*mumblepb.ACL, error) {
	a.mu.Lock()
	before := a.replies
	a.mu.Unlock()
	if err := a.send(ctx, &mumblepb.ACL{ChannelId: proto.Uint32(ch), Query: proto.Bool(true)}); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var reply *mumblepb.ACL
	err := a.c.Wait(ctx, func(*client.Client) bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.replies > before && a.last.GetChannelId() == ch {
			reply = a.last
		}
		return reply != nil
	})
	return reply, err
}

// isSoakEntry recognises the entry the soak toggles.
func (a *soakAdmin) isSoakEntry(e *mumblepb.ACL_ChanACL) bool {
	return !e.GetInherited() && e.UserId == nil && e.GetGroup() == a.g.opt.ACLGroup &&
		e.GetGrant() == 0 && e.GetDeny() == uint32(acl.Speak) && e.GetApplyHere() && e.GetApplySubs()
}

func (a *soakAdmin) hasSoakEntry(m *mumblepb.ACL) bool {
	for _, e := range m.Acls {
		if a.isSoakEntry(e) {
			return true
		}
	}
	return false
}

// edited is the ACL message that sets cur's own groups and entries, with
// the soak's entry present or not. Inherited entries and groups that
// exist only in a parent are not sent back, as the Mumble client does not.
func (a *soakAdmin) edited(cur *mumblepb.ACL, withEntry bool) *mumblepb.ACL {
	m := &mumblepb.ACL{ChannelId: cur.ChannelId, InheritAcls: proto.Bool(cur.GetInheritAcls()), Query: proto.Bool(false)}
	for _, gr := range cur.Groups {
		if !gr.GetInherited() || len(gr.Add) > 0 || len(gr.Remove) > 0 || !gr.GetInherit() || !gr.GetInheritable() {
			m.Groups = append(m.Groups, &mumblepb.ACL_ChanGroup{Name: gr.Name, Inherit: gr.Inherit,
				Inheritable: gr.Inheritable, Add: gr.Add, Remove: gr.Remove})
		}
	}
	for _, e := range cur.Acls {
		if !e.GetInherited() && !a.isSoakEntry(e) {
			m.Acls = append(m.Acls, &mumblepb.ACL_ChanACL{ApplyHere: e.ApplyHere, ApplySubs: e.ApplySubs,
				UserId: e.UserId, Group: e.Group, Grant: e.Grant, Deny: e.Deny})
		}
	}
	if withEntry {
		m.Acls = append(m.Acls, &mumblepb.ACL_ChanACL{ApplyHere: proto.Bool(true), ApplySubs: proto.Bool(true),
			Group: proto.String(a.g.opt.ACLGroup), Grant: proto.Uint32(0), Deny: proto.Uint32(uint32(acl.Speak))})
	}
	return m
}

// toggle flips the soak's entry on ch and reads the ACL back to confirm.
// want is the state to set, or nil to flip whatever is there.
func (a *soakAdmin) toggle(ctx context.Context, ch uint32, want *bool) error {
	cur, err := a.query(ctx, ch)
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	on := !a.hasSoakEntry(cur)
	if want != nil {
		if *want == !on {
			return nil // already so
		}
		on = *want
	}
	if err := a.send(ctx, a.edited(cur, on)); err != nil {
		return err
	}
	a.g.aclEdits.Add(1)
	after, err := a.query(ctx, ch)
	if err != nil {
		return fmt.Errorf("query after the edit: %w", err)
	}
	if a.hasSoakEntry(after) != on {
		return fmt.Errorf("channel %d: entry should be present=%v, server says the opposite", ch, on)
	}
	a.g.aclConfirmed.Add(1)
	return nil
}

// editACLs toggles the entry every ACLEvery until ctx ends, then removes it
// so that the configuration file ends as it began.
func (a *soakAdmin) editACLs(ctx context.Context) {
	t := time.NewTicker(a.g.opt.ACLEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			off := false
			if err := a.toggle(a.g.life, a.g.aclChannel, &off); err != nil {
				a.g.errorf("acl_edit", "restoring: %v", err)
			}
			return
		case <-t.C:
		}
		// An edit under way at the deadline completes: it only ends early
		// when the run is aborted.
		if err := a.toggle(a.g.life, a.g.aclChannel, nil); err != nil && a.g.life.Err() == nil {
			a.g.errorf("acl_edit", "%v", err)
		}
	}
}

// watchPing pings the server over TCP every second until ctx ends: the
// round trips show how responsive the control plane stayed.
func (a *soakAdmin) watchPing(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		d, err := a.c.Ping(pctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				a.g.errorf("admin_ping", "%v", err)
			}
			return
		}
		a.g.ping.Add(d)
	}
}
