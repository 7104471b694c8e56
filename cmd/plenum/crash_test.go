package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/store"
)

// crashConfig lets everybody edit (Write on root implies MakeChannel and
// SelfRegister) and does not rate-limit them.
const crashConfig = `[server]
message_limit = 100000
message_burst = 100000
default_channel = "Lobby"

[[acl]]
group = "all"
allow = ["Write"]

[[channel]]
name = "Lobby"

[[channel]]
name = "Moves"
`

// The steps every editor takes with each of its channels, in order; a
// channel's state on disk tells how far it got.
const (
	stepCreated = iota // "NAME" below the root
	stepRenamed        // "NAMEx" below the root
	stepMoved          // "Moves/NAMEx"
	stepACL            // and an ACL entry for the token group "#NAME"
	stepNone    = -1
)

// edited is what one channel's editor sent and saw confirmed.
type edited struct {
	name            string
	sent, confirmed int // steps
}

// registration is a self-registration sent, with the user id seen
// confirmed (0 while unconfirmed).
type registration struct {
	name string
	id   uint32
}

// book records edits across all rounds.
type book struct {
	mu       sync.Mutex
	channels []*edited
	regs     []*registration
}

func (b *book) set(field *int, step int) {
	b.mu.Lock()
	*field = step
	b.mu.Unlock()
}

// TestKillNineLosesNothingConfirmed runs the server binary, drives
// concurrent channel creates, renames, moves, ACL edits and registrations
// through clients, kills the server with SIGKILL at a random moment,
// and checks after each round that every edit a client saw confirmed is
// on disk, that the configuration file is one of the versions the server
// set out to write (never a mix) and that the restarted server serves
// them.
func TestKillNineLosesNothingConfirmed(t *testing.T) {
	bin := plenumBinary(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "plenary.toml")
	dataDir := filepath.Join(dir, "data")
	if err := os.WriteFile(cfgPath, []byte(crashConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{hashOf(t, cfgPath): true} // versions the file may be
	var b book
	const rounds = 5
	totalConfirmed, totalWrites := 0, 0
	for round := range rounds {
		srv := startChild(t, bin, "-config", cfgPath, "-data", dataDir, "-listen", "127.0.0.1:0", "-debug")
		checkLive(t, srv.addr, &b, round)

		ctx, stop := context.WithCancel(context.Background())
		var workers sync.WaitGroup
		for e := range 3 {
			workers.Add(1)
			go func() {
				defer workers.Done()
				editChannels(ctx, t, srv.addr, &b, fmt.Sprintf("c%de%d", round, e))
			}()
		}
		workers.Add(1)
		go func() {
			defer workers.Done()
			registerUsers(ctx, t, srv.addr, &b, fmt.Sprintf("u%d", round))
		}()

		time.Sleep(time.Duration(400+rand.IntN(1100)) * time.Millisecond)
		if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		srv.wait()
		stop()
		workers.Wait()
		for _, h := range srv.announced() {
			known[h] = true
		}
		totalWrites += len(srv.announced())
		n := checkDisk(t, cfgPath, dataDir, known, &b, round)
		totalConfirmed += n
		t.Logf("round %d: killed after %d configuration writes; %d confirmations of this and earlier rounds checked", round, len(srv.announced()), n)
		if t.Failed() {
			t.Fatalf("server log of round %d:\n%s", round, srv.log())
		}
	}
	// The last state, served by the server once more.
	srv := startChild(t, bin, "-config", cfgPath, "-data", dataDir, "-listen", "127.0.0.1:0")
	checkLive(t, srv.addr, &b, rounds)
	srv.cmd.Process.Signal(syscall.SIGTERM)
	if err := srv.wait(); err != nil {
		t.Errorf("server exited with %v after SIGTERM:\n%s", err, srv.log())
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if filepath.Ext(e.Name()) == ".tmp" {
			t.Errorf("temporary file %s left behind after a restart", e.Name())
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.channels) < rounds || len(b.regs) < rounds {
		t.Errorf("too little was edited to tell: %d channels, %d registrations", len(b.channels), len(b.regs))
	}
	t.Logf("%d rounds of kill -9: %d configuration writes, %d channels and %d registrations edited, %d confirmations checked after the kills",
		rounds, totalWrites, len(b.channels), len(b.regs), totalConfirmed)
}

// editChannels creates channels named prefix+"n"+i and takes each through
// the steps, recording each step before sending it and once confirmed,
// until ctx ends or the connection does.
func editChannels(ctx context.Context, t *testing.T, addr string, b *book, prefix string) {
	acls := map[uint32][]string{} // channel -> token groups in its last ACL reply
	var mu sync.Mutex
	c, err := client.Dial(ctx, client.Config{Address: addr, Username: prefix, Certificate: cert(t), DisableUDP: true,
		OnMessage: func(_ control.Type, m proto.Message) {
			if a, ok := m.(*mumblepb.ACL); ok {
				var groups []string
				for _, e := range a.Acls {
					groups = append(groups, e.GetGroup())
				}
				mu.Lock()
				acls[a.GetChannelId()] = groups
				mu.Unlock()
			}
		}})
	if err != nil {
		return // killed before we got in
	}
	defer c.Close()
	moves, ok := channelNamed(c, "Moves")
	if !ok {
		t.Error("no channel Moves")
		return
	}
	wait := func(cond func(*client.Client) bool) bool {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		err := c.Wait(wctx, cond)
		if errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: no confirmation within 10 s", prefix)
		}
		return err == nil
	}
	for i := 0; ; i++ {
		e := &edited{name: fmt.Sprintf("%sn%d", prefix, i), sent: stepNone, confirmed: stepNone}
		b.mu.Lock()
		b.channels = append(b.channels, e)
		b.mu.Unlock()

		b.set(&e.sent, stepCreated)
		c.Send(&mumblepb.ChannelState{Parent: proto.Uint32(0), Name: proto.String(e.name)})
		var id uint32
		if !wait(func(c *client.Client) bool { id, ok = channelNamed(c, e.name); return ok }) {
			return
		}
		b.set(&e.confirmed, stepCreated)

		b.set(&e.sent, stepRenamed)
		c.Send(&mumblepb.ChannelState{ChannelId: proto.Uint32(id), Name: proto.String(e.name + "x")})
		if !wait(func(c *client.Client) bool { return c.Channels()[id].GetName() == e.name+"x" }) {
			return
		}
		b.set(&e.confirmed, stepRenamed)

		b.set(&e.sent, stepMoved)
		c.Send(&mumblepb.ChannelState{ChannelId: proto.Uint32(id), Parent: proto.Uint32(moves)})
		if !wait(func(c *client.Client) bool { return c.Channels()[id].GetParent() == moves }) {
			return
		}
		b.set(&e.confirmed, stepMoved)

		b.set(&e.sent, stepACL)
		c.Send(&mumblepb.ACL{ChannelId: proto.Uint32(id), InheritAcls: proto.Bool(true), Acls: []*mumblepb.ACL_ChanACL{{
			Group: proto.String("#" + e.name), ApplyHere: proto.Bool(true), ApplySubs: proto.Bool(true), Grant: proto.Uint32(uint32(acl.Enter)),
		}}})
		c.Send(&mumblepb.ACL{ChannelId: proto.Uint32(id), Query: proto.Bool(true)})
		if !wait(func(*client.Client) bool {
			mu.Lock()
			defer mu.Unlock()
			return slices.Contains(acls[id], "#"+e.name)
		}) {
			return
		}
		b.set(&e.confirmed, stepACL)
	}
}

// registerUsers connects as new users with new certificates, one after
// the other, and registers each.
func registerUsers(ctx context.Context, t *testing.T, addr string, b *book, prefix string) {
	for i := 0; ctx.Err() == nil; i++ {
		r := &registration{name: fmt.Sprintf("%sn%d", prefix, i)}
		c, err := client.Dial(ctx, client.Config{Address: addr, Username: r.name, Certificate: cert(t), DisableUDP: true})
		if err != nil {
			return
		}
		b.mu.Lock()
		b.regs = append(b.regs, r)
		b.mu.Unlock()
		c.Send(&mumblepb.UserState{Session: proto.Uint32(c.Session()), UserId: proto.Uint32(0)})
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = c.Wait(wctx, func(c *client.Client) bool { return c.Users()[c.Session()].UserId != nil })
		cancel()
		if err == nil {
			b.mu.Lock()
			r.id = c.Users()[c.Session()].GetUserId()
			b.mu.Unlock()
		} else if errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("registration of %s: no confirmation within 10 s", r.name)
		}
		c.Close()
		if err != nil {
			return
		}
	}
}

func cert(t *testing.T) *tls.Certificate {
	c, _ := clientCert(t)
	return c
}

func channelNamed(c *client.Client, name string) (uint32, bool) {
	for id, ch := range c.Channels() {
		if ch.GetName() == name {
			return id, true
		}
	}
	return 0, false
}

// stepOnDisk tells how far a channel got in the configuration file.
func stepOnDisk(cfg *conf.Config, name string) int {
	if cfg.Lookup(name) != nil {
		return stepCreated
	}
	if cfg.Lookup(name+"x") != nil {
		return stepRenamed
	}
	ch := cfg.Lookup("Moves/" + name + "x")
	if ch == nil {
		return stepNone
	}
	for _, e := range ch.ACL {
		if e.Group == "#"+name {
			return stepACL
		}
	}
	return stepMoved
}

// checkDisk checks the files the killed server left behind and returns
// how many confirmed edits it checked.
func checkDisk(t *testing.T, cfgPath, dataDir string, known map[string]bool, b *book, round int) int {
	t.Helper()
	for _, path := range []string{cfgPath, cfgPath + ".bak"} {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) && path != cfgPath {
			continue
		}
		if h := hashOf(t, path); !known[h] {
			data, _ := os.ReadFile(path)
			t.Errorf("round %d: %s is none of the versions the server wrote (a torn write?):\n%s", round, path, data)
		}
	}
	cfg, err := conf.Load(cfgPath)
	if err != nil {
		t.Fatalf("round %d: the configuration does not load: %v", round, err)
	}
	st, err := store.Open(filepath.Join(dataDir, "plenum.db"))
	if err != nil {
		t.Fatalf("round %d: the database does not open: %v", round, err)
	}
	defer st.Close()

	b.mu.Lock()
	defer b.mu.Unlock()
	checked := 0
	for _, e := range b.channels {
		got := stepOnDisk(cfg, e.name)
		if got < e.confirmed || got > e.sent {
			t.Errorf("round %d: channel %s is at step %d on disk; %d was confirmed, %d sent", round, e.name, got, e.confirmed, e.sent)
		}
		checked += e.confirmed + 1
	}
	for _, r := range b.regs {
		u, err := st.UserByName(r.name)
		switch {
		case r.id == 0:
			continue // unconfirmed: either way
		case err != nil:
			t.Errorf("round %d: confirmed registration of %s (id %d) lost: %v", round, r.name, r.id, err)
		case uint32(u.ID) != r.id:
			t.Errorf("round %d: %s has id %d on disk, %d was confirmed", round, r.name, u.ID, r.id)
		}
		checked++
	}
	return checked
}

// checkLive checks that a restarted server serves every channel at least
// at the step that was confirmed before the kill.
func checkLive(t *testing.T, addr string, b *book, round int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Address: addr, Username: fmt.Sprintf("checker%d", round), DisableUDP: true})
	if err != nil {
		t.Fatalf("round %d: restarted server: %v", round, err)
	}
	defer c.Close()
	chans := c.Channels()
	paths := map[string]bool{}
	for _, ch := range chans {
		p := ch.GetName()
		if ch.GetParent() != 0 {
			p = chans[ch.GetParent()].GetName() + "/" + p
		}
		paths[p] = true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.channels {
		got := stepNone
		switch {
		case paths[e.name]:
			got = stepCreated
		case paths[e.name+"x"]:
			got = stepRenamed
		case paths["Moves/"+e.name+"x"]:
			got = stepMoved // the ACL is checked on disk
		}
		if want := min(e.confirmed, stepMoved); got < want {
			t.Errorf("round %d: the restarted server shows channel %s at step %d, %d was confirmed", round, e.name, got, e.confirmed)
		}
	}
}

func hashOf(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
