package server

// The configuration file is the single truth for channels and ACLs: edits
// made from clients are written back to it (atomically, keeping a .bak),
// and changes an admin saves to it are applied live.

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"sort"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/conf"
)

// channelCopy is a channel as it goes into the file, copied under the
// lock so that the file can be produced and written outside it. ACLs are
// immutable once installed, so sharing the pointer is safe.
type channelCopy struct {
	name, description string
	position          int32
	maxUsers          uint32
	acl               *acl.ChannelACL
	links             []string // paths
	children          []*channelCopy
}

// writeJob is one version of the file waiting to be written.
type writeJob struct {
	server   conf.Server
	rootACL  *acl.ChannelACL
	children []*channelCopy
	keep     *conf.Config // the previous file, for its temporary channels
}

// channelsChangedLocked is called after the channel tree or an ACL
// changed: the new state is queued for the config writer. Only the newest
// version waits; older ones are superseded.
func (s *Server) channelsChangedLocked() {
	if s.configPath == "" {
		return
	}
	paths := map[*channel]string{s.root: ""}
	for _, ch := range s.breadthFirst()[1:] {
		paths[ch] = conf.JoinPath(paths[ch.parent], ch.name)
	}
	var copyOf func(ch *channel) *channelCopy
	copyOf = func(ch *channel) *channelCopy {
		cc := &channelCopy{name: ch.name, description: ch.description, position: ch.position, maxUsers: ch.maxUsers, acl: ch.acl}
		for l := range ch.links {
			if !l.temporary {
				cc.links = append(cc.links, paths[l])
			}
		}
		sort.Strings(cc.links)
		for _, child := range ch.children {
			if !child.temporary { // temporary channels are never stored, as in Murmur
				cc.children = append(cc.children, copyOf(child))
			}
		}
		return cc
	}
	job := &writeJob{server: *s.cfg(), rootACL: s.root.acl, children: copyOf(s.root).children, keep: s.config}
	select {
	case <-s.writeQueue: // superseded
	default:
	}
	s.writeQueue <- job
}

// configWriter writes queued versions of the file until the server stops,
// then writes whatever is still queued.
func (s *Server) configWriter() {
	defer s.wg.Done()
	for {
		select {
		case job := <-s.writeQueue:
			s.writeConfig(job)
		case <-s.closing:
			select {
			case job := <-s.writeQueue:
				s.writeConfig(job)
			default:
			}
			return
		}
	}
}

func (s *Server) writeConfig(job *writeJob) {
	cfg := s.jobConfig(job)
	if err := conf.WriteFile(s.configPath, cfg); err != nil {
		s.log.Error("writing the configuration failed; the running state is ahead of the file", "file", s.configPath, "err", err)
		return
	}
	data, err := os.ReadFile(s.configPath)
	if err == nil {
		s.fileMu.Lock()
		s.lastWritten = sha256.Sum256(data)
		s.fileMu.Unlock()
	}
	s.mu.Lock()
	s.config = cfg
	s.mu.Unlock()
	s.log.Info("configuration written", "file", s.configPath)
}

// jobConfig is the configuration file a queued version of the state
// becomes.
func (s *Server) jobConfig(job *writeJob) *conf.Config {
	cfg := &conf.Config{Server: job.server, File: s.configPath}
	_, cfg.Groups, cfg.ACL = s.aclToConfigAt(job.rootACL, true)
	for _, cc := range job.children {
		cfg.Channels = append(cfg.Channels, s.channelToConfig(cc))
	}
	keepFileTemporaries(cfg, job.keep)
	return cfg
}

func (s *Server) channelToConfig(cc *channelCopy) conf.Channel {
	ch := conf.Channel{Name: cc.name, Description: cc.description, Position: cc.position, MaxUsers: cc.maxUsers, Links: cc.links}
	ch.InheritACL, ch.Groups, ch.ACL = s.aclToConfigAt(cc.acl, false)
	for _, child := range cc.children {
		ch.Children = append(ch.Children, s.channelToConfig(child))
	}
	return ch
}

// aclToConfigAt is aclToConfig with the rules of the file applied: the
// root-only permissions only count on root with apply_here (Murmur stores
// them elsewhere and ignores them; the file refuses them).
func (s *Server) aclToConfigAt(a *acl.ChannelACL, root bool) (*bool, map[string]*conf.Group, []conf.ACLEntry) {
	inherit, groups, entries := s.aclToConfig(a)
	kept := entries[:0]
	for _, e := range entries {
		if !root || !e.Here() {
			e.Allow = withoutRootOnly(e.Allow)
			e.Deny = withoutRootOnly(e.Deny)
		}
		if len(e.Allow) > 0 || len(e.Deny) > 0 {
			kept = append(kept, e)
		}
	}
	return inherit, groups, kept
}

func withoutRootOnly(names []string) []string {
	var out []string
	for _, n := range names {
		if p, err := acl.ParsePermission(n); err == nil && p&conf.RootOnly == 0 {
			out = append(out, n)
		}
	}
	return out
}

// keepFileTemporaries puts the temporary channels defined in the previous
// file back: the server removes them while they are empty, but they belong
// to the admin's file and come back on the next start.
func keepFileTemporaries(cfg, prev *conf.Config) {
	if prev == nil {
		return
	}
	prev.Walk(func(path string, ch *conf.Channel, parent string) {
		if !ch.Temporary {
			return
		}
		siblings := &cfg.Channels
		if parent != "" {
			p := cfg.Lookup(parent)
			if p == nil {
				return
			}
			siblings = &p.Children
		}
		for _, sib := range *siblings {
			if sib.Name == ch.Name {
				return
			}
		}
		kept := *ch
		kept.Links = nil // links are to be re-made by the admin if the partner changed
		*siblings = append(*siblings, kept)
	})
}

// configFileFor returns where channel edits are written: the loaded file,
// or plenum.toml in the data directory when running on the embedded
// default.
func configFileFor(cfg *conf.Config, dataDir string) string {
	if cfg.File != "" {
		return cfg.File
	}
	return filepath.Join(dataDir, DefaultConfigFile)
}

// DefaultConfigFile is the name of the configuration Plenum keeps in its
// data directory when started without -config.
const DefaultConfigFile = "plenum.toml"
