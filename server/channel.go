package server

import (
	"crypto/sha1"

	"fmt"
	"sort"
	"unicode/utf16"

	"github.com/plenum-voice/plenum/acl"

	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/floor"
	"github.com/plenum-voice/plenum/internal/oggopus"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/stage"
)

// channel is the control plane's view of a channel. Only the control plane
// touches it, under Server.mu.
type channel struct {
	id          uint32
	parent      *channel
	children    []*channel
	name        string
	description string
	note        string // what the server adds to the description (a hall's floor), never written to the file
	shown       string // description and note: what clients see
	descHash    []byte // SHA-1 of a long shown description, sent instead of it
	position    int32
	maxUsers    uint32

	temporary bool                  // removed once empty; never written to the config file
	acl       *acl.ChannelACL       // groups and entries; nil inherits everything. Replaced, never mutated in place
	links     map[*channel]struct{} // direct links; symmetric
	users     map[*user]struct{}

	listeners map[*user]struct{}
	stage     stage.Stage  // shapes the channel's speech on the tick; nil forwards directly
	virtual   *virtualUser // the channel's mix and recorder, when it has one
	shapeKeys shapeKeys    // the file's stage settings, written back with the channel
	floor     *floor.Hall  // floor control, when the channel is a hall (floor.go)

	recorder *oggopus.Recorder // the recording its stage writes; nil when not recording (recording.go)
}

func newChannel(id uint32, parent *channel, name string) *channel {
	c := &channel{
		id:        id,
		parent:    parent,
		name:      name,
		links:     make(map[*channel]struct{}),
		users:     make(map[*user]struct{}),
		listeners: make(map[*user]struct{}),
	}
	if parent != nil {
		parent.children = append(parent.children, c)
	}
	return c
}

func (c *channel) setDescription(d string) {
	c.description = d
	c.show()
}

// setNote sets what the server adds below the description.
func (c *channel) setNote(n string) {
	c.note = n
	c.show()
}

func (c *channel) show() {
	c.shown = c.description
	if c.note != "" {
		if c.shown != "" {
			c.shown += "<hr>"
		}
		c.shown += c.note
	}
	c.descHash = blobHash(c.shown)
}

// describe puts the description clients see into out: the text, or its
// hash when it is long (the client asks for the text if it has not seen
// it), or, for a channel without one, nothing.
func (c *channel) describe(out *mumblepb.ChannelState) {
	if c.descHash != nil {
		out.DescriptionHash = c.descHash
	} else {
		out.Description = ptr(c.shown)
	}
}

// blobThreshold is the size (in UTF-16 units for text, bytes for textures)
// from which Murmur sends a hash instead of the content.
const blobThreshold = 128

// blobHash returns the SHA-1 a client uses to request or cache a long text,
// or nil when the text is short enough to be sent inline.
func blobHash(text string) []byte {
	if utf16Len(text) < blobThreshold {
		return nil
	}
	return sha1Sum([]byte(text))
}

func sha1Sum(b []byte) []byte {
	sum := sha1.Sum(b)
	return sum[:]
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// allLinks returns every channel reachable from c over links, c excluded.
func (c *channel) allLinks() []*channel {
	seen := map[*channel]bool{c: true}
	var out []*channel
	stack := []*channel{c}
	for len(stack) > 0 {
		cur := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for l := range cur.links {
			if !seen[l] {
				seen[l] = true
				out = append(out, l)
				stack = append(stack, l)
			}
		}
	}
	sortChannels(out)
	return out
}

// buildChannels creates the channel tree from the configuration, each
// channel with the id recorded for its path (s.ids, numbered at start).
func (s *Server) buildChannels(cfg *conf.Config) error {
	s.channels = make(map[uint32]*channel)
	s.root = newChannel(0, nil, s.cfg().Name)
	s.root.setDescription(cfg.Server.RootDescription)
	s.root.acl = s.aclFromConfig(true, cfg.Groups, cfg.ACL, "root")
	s.channels[0] = s.root
	byPath := map[string]*channel{"": s.root}
	var walkErr error
	cfg.Walk(func(path string, ch *conf.Channel, parentPath string) {
		parent, ok := byPath[parentPath]
		if !ok {
			walkErr = fmt.Errorf("channel %q: parent %q not found", path, parentPath)
			return
		}
		id, ok := s.ids.byPath[path]
		if !ok {
			walkErr = fmt.Errorf("channel %q: not numbered", path)
			return
		}
		c := newChannel(id, parent, ch.Name)
		c.setDescription(ch.Description)

		c.position = ch.Position
		c.maxUsers = ch.MaxUsers
		c.temporary = ch.Temporary
		c.acl = s.aclFromConfig(ch.InheritsACL(), ch.Groups, ch.ACL, path)
		s.channels[c.id] = c
		byPath[path] = c
	})
	if walkErr != nil {
		return walkErr
	}
	cfg.Walk(func(path string, ch *conf.Channel, _ string) {
		from := byPath[path]
		for _, target := range ch.Links {
			to, ok := byPath[target]
			if !ok {
				walkErr = fmt.Errorf("channel %q: link to unknown channel %q", path, target)
				return
			}
			if to != from {
				from.links[to] = struct{}{}
				to.links[from] = struct{}{}
			}
		}
	})
	if walkErr != nil {
		return walkErr
	}
	s.defaultChannel = s.root
	if p := s.cfg().DefaultChannel; p != "" {
		c, ok := byPath[p]
		if !ok {
			return fmt.Errorf("default_channel %q: no such channel", p)
		}
		s.defaultChannel = c
	}
	return nil
}

// breadthFirst returns all channels, root first, in the order Murmur sends
// them to a joining client (a parent always before its children).
func (s *Server) breadthFirst() []*channel {
	out := []*channel{s.root}
	for i := 0; i < len(out); i++ {
		out = append(out, out[i].children...)
	}
	return out
}

// isFull reports whether c has no room for another user.
func (s *Server) isFull(c *channel) bool {
	limit := int(c.maxUsers)
	if limit == 0 {
		limit = s.cfg().UsersPerChannel
	}
	return limit > 0 && len(c.users) >= limit
}

func sortChannels(cs []*channel) {
	sort.Slice(cs, func(i, j int) bool { return cs[i].id < cs[j].id })
}

// parentOf implements acl.Tree for the control plane (callers hold s.mu).
func (s *Server) parentOf(id uint32) (uint32, bool) {
	c, ok := s.channels[id]
	if !ok || c.parent == nil {
		return 0, false
	}
	return c.parent.id, true
}

type serverTree struct{ s *Server }

func (t serverTree) Parent(id uint32) (uint32, bool) { return t.s.parentOf(id) }
