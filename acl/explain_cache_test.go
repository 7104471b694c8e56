package acl

import (
	"strings"
	"sync"
	"testing"
)

func TestExplainNamesTheDecidingStep(t *testing.T) {
	speakers := &Group{Name: "speakers", Inherit: true, Inheritable: true, Add: []int64{12}}
	tr := newTree(map[uint32]*ChannelACL{
		0: {InheritACL: true, Entries: []Entry{grp("admin", true, true, Write, 0)},
			Groups: map[string]*Group{"admin": {Name: "admin", Inherit: true, Inheritable: true, Add: []int64{1}}}},
		1: {InheritACL: true, Entries: []Entry{
			grp("all", false, true, 0, Speak),
			grp("speakers", false, true, Speak, 0),
		}, Groups: map[string]*Group{"speakers": speakers}},
		2: ents(usr(13, true, true, 0, TextMessage)),
		4: ents(grp("!auth", true, true, 0, Traverse)),
	})
	cases := []struct {
		name    string
		s       *Subject
		ch      uint32
		p       Permission
		allowed bool
		want    []string
	}{
		{"grant by group entry", &Subject{UserID: 12, Channel: 2}, 2, Speak, true,
			[]string{"ALLOWED", "decided by entry #1 on Plenary (1)", "member of speakers via add on Plenary (1)"}},
		{"denial by group entry", &Subject{UserID: 13, Channel: 2}, 2, Speak, false,
			[]string{"DENIED", "decided by entry #0 on Plenary (1)", "@all", "does not match: not a member of speakers"}},
		{"denial by user entry", &Subject{UserID: 13, Channel: 2}, 3, TextMessage, false,
			[]string{"DENIED", "decided by entry #0 on Hall (2) (user 13", "the entry is for user id 13"}},
		{"default grant", &Subject{UserID: 14, Channel: 4}, 0, Enter, true,
			[]string{"ALLOWED", "granted by the default grant"}},
		{"nothing grants", &Subject{UserID: 14, Channel: 4}, 1, Move, false,
			[]string{"DENIED", "not in the default grant", "does not match: not a member of admin"}},
		{"traverse cut-off", &Subject{UserID: -1, Channel: 0}, 4, Enter, false,
			[]string{"DENIED", "traverse rule", "Traverse last denied by entry #0 on Lobby (4)", "negated (!auth)"}},
		{"Write implication", &Subject{UserID: 1, Channel: 0}, 2, MuteDeafen, true,
			[]string{"ALLOWED", "decided by Write, which implies", "Write from entry #0 on Root (0) (@admin"}},
		{"SuperUser", &Subject{UserID: 0}, 2, Kick, true,
			[]string{"ALLOWED", "SuperUser (user id 0)"}},
		{"SuperUser may not speak", &Subject{UserID: 0}, 2, Speak, false,
			[]string{"DENIED", "SuperUser"}},
	}
	for _, c := range cases {
		ex := Explain(tr, c.s, c.ch, c.p)
		out := ex.String()
		if ex.Allowed != c.allowed || ex.Granted != Permissions(tr, c.s, c.ch) {
			t.Errorf("%s: Allowed=%v Granted=%v, want %v, %v", c.name, ex.Allowed, ex.Granted, c.allowed, Permissions(tr, c.s, c.ch))
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: explanation lacks %q:\n%s", c.name, w, out)
			}
		}
	}
}

// versionedTree is a fakeTree with an ACL version, for the cache.
type versionedTree struct {
	*fakeTree
	v uint64
}

func (t versionedTree) ACLVersion() uint64 { return t.v }

func TestCache(t *testing.T) {
	acls := map[uint32]*ChannelACL{
		0: DefaultRootACL(),
		1: ents(grp("~sub", false, true, 0, Speak), grp("in", true, true, MuteDeafen, 0)),
		4: ents(grp("all", true, true, 0, Traverse)),
	}
	acls[0].Groups["admin"].Add = []int64{3}
	tr := newTree(acls)
	c := NewCache()
	subjects := []*Subject{anonIn(2), regIn(3, 0), regIn(5, 1), regIn(0, 4)}
	for range 2 { // the second round comes from the cache
		for _, s := range subjects {
			for ch := range uint32(6) {
				if got, want := c.Permissions(tr, s, ch), Permissions(tr, s, ch); got != want {
					t.Fatalf("cache(%d, %d) = %v, want %v", s.UserID, ch, got, want)
				}
			}
		}
	}

	// The cache keeps answering from memory until told otherwise.
	s := regIn(5, 1)
	before := c.Permissions(tr, s, 2)
	acls[1] = ents(grp("all", true, true, Move, 0))
	if got := c.Permissions(tr, s, 2); got != before {
		t.Fatalf("cache recomputed without being told: %v", got)
	}
	c.Forget(99) // someone else
	if got := c.Permissions(tr, s, 2); got != before {
		t.Fatalf("Forget(other) dropped this session: %v", got)
	}
	c.Forget(s.Session)
	if got := c.Permissions(tr, s, 2); got != Permissions(tr, s, 2) || got == before {
		t.Fatalf("after Forget: %v, want %v", got, Permissions(tr, s, 2))
	}
	other := regIn(3, 0)
	stale := c.Permissions(tr, other, 1)
	acls[1] = ents(grp("all", true, true, 0, Enter))
	if got := c.Permissions(tr, other, 1); got != stale {
		t.Fatal("cache recomputed without Clear")
	}
	c.Clear()
	if got := c.Permissions(tr, other, 1); got != Permissions(tr, other, 1) {
		t.Fatalf("after Clear: %v, want %v", got, Permissions(tr, other, 1))
	}

	// A zero Cache works.
	var z Cache
	if got := z.Permissions(tr, s, 3); got != Permissions(tr, s, 3) {
		t.Fatalf("zero cache: %v", got)
	}
}

func TestCacheVersioned(t *testing.T) {
	oldACL := map[uint32]*ChannelACL{0: ents(grp("all", true, true, Move, 0))}
	newACL := map[uint32]*ChannelACL{0: ents(grp("all", true, true, 0, Speak))}
	v1 := versionedTree{newTree(oldACL), 1}
	v2 := versionedTree{newTree(newACL), 2}
	c := NewCache()
	s := anonIn(0)
	if got := c.Permissions(v1, s, 1); got != DefaultGrant|Move {
		t.Fatalf("v1: %v", got)
	}
	if got := c.Permissions(v2, s, 1); got != DefaultGrant&^Speak {
		t.Fatalf("v2 must not be served v1's value: %v", got)
	}
	// A reader still holding the old snapshot gets its own answer, and does
	// not poison the cache for readers of the new one.
	if got := c.Permissions(v1, s, 2); got != DefaultGrant|Move {
		t.Fatalf("v1 reader: %v", got)
	}
	if got := c.Permissions(v2, s, 2); got != DefaultGrant&^Speak {
		t.Fatalf("v2 after a v1 reader: %v", got)
	}
}

// TestCacheConcurrent is for -race: readers on many goroutines while the
// control plane forgets and clears.
func TestCacheConcurrent(t *testing.T) {
	tr := newTree(map[uint32]*ChannelACL{0: DefaultRootACL(), 2: ents(grp("sub", true, true, 0, Whisper))})
	c := NewCache()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan string, 8)
	for r := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One subject per session, as in the server: a session's cached
			// answers belong to the subject it has until it is forgotten.
			s := &Subject{Session: uint32(r), UserID: int64(r%3) - 1, Channel: uint32(r % 6)}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ch := uint32(i % 6)
				if got, want := c.Permissions(tr, s, ch), Permissions(tr, s, ch); got != want {
					select {
					case errs <- "concurrent cache answer differs":
					default:
					}
					return
				}
			}
		}()
	}
	for i := range 2000 {
		if i%2 == 0 {
			c.Forget(uint32(i % 8))
		} else {
			c.Clear()
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// benchTree is a 5-deep path Root > Plenary > Hall > Booth > Desk with the
// default root ACL and a few entries and groups on the way.
func benchTree() *fakeTree {
	root := DefaultRootACL()
	root.Groups["admin"].Add = []int64{1, 2}
	return newTree(map[uint32]*ChannelACL{
		0: root,
		1: {InheritACL: true, Entries: []Entry{
			grp("all", false, true, 0, Speak),
			grp("speakers", false, true, Speak, 0),
		}, Groups: map[string]*Group{"speakers": {Name: "speakers", Inherit: true, Inheritable: true,
			Add: []int64{5, 6, 7, 8, 9, 10, 11, 12}}}},
		2: ents(grp("~sub,0,1", true, true, TextMessage, 0), grp("#delegate", true, true, Whisper, 0)),
		3: ents(usr(12, true, true, MuteDeafen, 0), grp("out", false, true, 0, Enter)),
	})
}

func BenchmarkPermissions5Deep(b *testing.B) {
	tr := benchTree()
	s := &Subject{Session: 7, UserID: 12, Channel: 5, Tokens: []string{"Delegate"}}
	want := Permissions(tr, s, 5)
	b.ReportAllocs()
	for b.Loop() {
		if Permissions(tr, s, 5) != want {
			b.Fatal("unstable")
		}
	}
}

func BenchmarkCacheHit(b *testing.B) {
	tr := benchTree()
	s := &Subject{Session: 7, UserID: 12, Channel: 5}
	c := NewCache()
	c.Permissions(tr, s, 5)
	b.ReportAllocs()
	for b.Loop() {
		c.Permissions(tr, s, 5)
	}
}

func BenchmarkCacheHitParallel(b *testing.B) {
	tr := benchTree()
	c := NewCache()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		s := &Subject{Session: 7, UserID: 12, Channel: 5}
		for pb.Next() {
			c.Permissions(tr, s, 5)
		}
	})
}
