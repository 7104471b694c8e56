package server

// Live reload: when the admin saves the configuration file (or sends
// SIGHUP), the new file is validated and its differences are applied to
// the running server without disconnecting anyone.

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/mumblepb"
)

// Reload reads the configuration file and the certificate and key files
// again and applies them. An invalid file is logged with its file:line
// errors and the running configuration stays; a certificate that does not
// load, match its key or is not valid now is logged and the current one
// stays. Errors are returned too.
func (s *Server) Reload() error {
	certErr := s.reloadCertificate()
	return errors.Join(s.reloadConfig(true), certErr)
}

// reloadConfig reads the configuration file again and applies it; unless
// always, only when it differs from the version the server last loaded
// or wrote (so that the server's own writes are not reloaded).
func (s *Server) reloadConfig(always bool) error {
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	return s.reloadFileLocked(always)
}

// reloadFileLocked is reloadConfig with fileMu held. Reading and applying
// happen under fileMu, so two reloads (the watcher's and a SIGHUP) apply
// in the order they read, and no write-back slips in between.
func (s *Server) reloadFileLocked(always bool) error {
	data, err := os.ReadFile(s.configPath)
	if err != nil {
		s.log.Error("configuration not reloaded", "file", s.configPath, "err", err)
		return err
	}
	sum := sha256.Sum256(data)
	if !always && sum == s.fileSum {
		return nil
	}
	cfg, err := conf.Parse(data, s.configPath)
	if err != nil {
		s.log.Error("configuration not reloaded, the running one stays", "err", err)
		return err
	}
	cfg.File = s.configPath
	s.applyConfig(cfg)
	s.fileSum = sum
	s.shareConfig(cfg, nil)
	return nil
}

// desiredChannel is a channel of a new file, with its ACL resolved.
type desiredChannel struct {
	path, parent string
	def          *conf.Channel
	acl          *acl.ChannelACL
}

func (s *Server) applyConfig(cfg *conf.Config) {
	// Names resolve through the store, so ACLs are built before locking.
	renames := s.names.renameCount()
	rootACL := s.aclFromConfig(true, cfg.Groups, cfg.ACL, "root")
	var want []desiredChannel
	cfg.Walk(func(path string, ch *conf.Channel, parent string) {
		want = append(want, desiredChannel{path: path, parent: parent, def: ch, acl: s.aclFromConfig(ch.InheritsACL(), ch.Groups, ch.ACL, path)})
	})

	s.mu.Lock()
	defer s.unlock()
	s.supersedePendingWriteLocked()
	// Registrations made or deleted while the names were looked up count
	// (names.go); a rename meanwhile makes the file name someone by the
	// old name, so it is written again.
	rootACL = s.names.remap(rootACL, nil)
	for i := range want {
		want[i].acl = s.names.remap(want[i].acl, nil)
	}
	if s.names.renameCount() != renames {
		s.channelsChangedLocked()
	}
	wanted := map[string]bool{"": true}
	for _, d := range want {
		wanted[d.path] = true
	}
	// Removed channels first (their users move up), parents before
	// children, so a removed subtree goes in one step.
	for _, ch := range s.breadthFirst()[1:] {
		if p, ok := s.pathOfLocked(ch); ok && !ch.temporary && !wanted[p] {
			if _, still := s.channels[ch.id]; still {
				s.log.Info("channel removed by the configuration", "channel", ch.id, "path", p)
				s.removeChannelLocked(ch)
			}
		}
	}
	live := s.livePathsLocked()
	aclChanged := !sameACL(s.root.acl, rootACL)
	s.root.acl = rootACL
	for _, d := range want {
		ch, exists := live[d.path]
		if !exists {
			parent, id := live[d.parent], s.idForPathLocked(d.path)
			if parent == nil || id == 0 {
				s.log.Error("channel of the configuration not added: no channel id is left", "path", d.path)
				continue
			}
			ch = newChannel(id, parent, d.def.Name)
			s.ids.note(d.path, id)
			s.channels[ch.id] = ch
			live[d.path] = ch
			s.setFromConfigLocked(ch, d)
			aclChanged = aclChanged || ch.acl != nil
			s.snapDirty = true
			s.broadcastLocked(s.channelStateLocked(ch, nil), nil)
			s.log.Info("channel added by the configuration", "channel", ch.id, "path", d.path)
			continue
		}
		if !sameACL(ch.acl, d.acl) {
			aclChanged = true
		}
		if out := s.setFromConfigLocked(ch, d); out != nil {
			s.broadcastLocked(out, nil)
		}
	}
	s.applyLinksLocked(cfg, live)
	s.applySettingsLocked(cfg.Server, live)
	s.applyShapesLocked(cfg)
	s.reloadSignInLocked(cfg.Auth)
	s.config = cfg
	s.snapDirty = true
	if aclChanged {
		s.log.Info("ACLs changed by the configuration; permissions recomputed")
		s.forgetPermissionsLocked()
		s.permissionsChangedLocked()
		for _, u := range s.users {
			for _, ch := range s.breadthFirst() {
				u.conn.send(&mumblepb.ChannelState{ChannelId: ptr(ch.id), IsEnterRestricted: ptr(enterRestricted(ch)), CanEnter: ptr(s.may(u, ch, acl.Enter))})
			}
		}
	}
	s.log.Info("configuration reloaded", "file", cfg.File)
}

// supersedePendingWriteLocked is called when a file an admin saved is
// applied: the file is the truth, so a version of the state queued before
// it is not written (the writer checks configGen for the one it holds),
// and whoever waits for it is released and told.
func (s *Server) supersedePendingWriteLocked() {
	s.configGen++
	if s.nextWrite == nil && s.nextTicket == nil {
		return
	}
	s.tellSuperseded(s.nextEditors)
	if s.nextTicket != nil {
		s.nextTicket.finish()
	}
	s.nextWrite, s.nextTicket, s.nextEditors = nil, nil, nil
}

// setFromConfigLocked gives ch the file's settings and returns the
// ChannelState describing what changed (nil if nothing visible did).
func (s *Server) setFromConfigLocked(ch *channel, d desiredChannel) *mumblepb.ChannelState {
	out := &mumblepb.ChannelState{ChannelId: ptr(ch.id)}
	changed := false
	if ch.description != d.def.Description {
		ch.setDescription(d.def.Description)
		ch.describe(out)
		changed = true
	}
	if ch.position != d.def.Position {
		ch.position = d.def.Position
		out.Position = ptr(ch.position)
		changed = true
	}
	if ch.maxUsers != d.def.MaxUsers {
		ch.maxUsers = d.def.MaxUsers
		out.MaxUsers = ptr(ch.maxUsers)
		changed = true
	}
	ch.temporary = d.def.Temporary
	ch.acl = d.acl
	if !changed {
		return nil
	}
	return out
}

// applyLinksLocked makes the live links equal the file's.
func (s *Server) applyLinksLocked(cfg *conf.Config, live map[string]*channel) {
	want := map[*channel]map[*channel]bool{}
	for _, pair := range cfg.LinkPairs() {
		a, b := live[pair[0]], live[pair[1]]
		if a == nil || b == nil {
			continue
		}
		if want[a] == nil {
			want[a] = map[*channel]bool{}
		}
		if want[b] == nil {
			want[b] = map[*channel]bool{}
		}
		want[a][b], want[b][a] = true, true
	}
	for _, ch := range s.breadthFirst() {
		if ch.temporary {
			continue
		}
		out := &mumblepb.ChannelState{ChannelId: ptr(ch.id)}
		for l := range ch.links {
			if !l.temporary && !want[ch][l] {
				delete(ch.links, l)
				delete(l.links, ch)
				out.LinksRemove = append(out.LinksRemove, l.id)
			}
		}
		for l := range want[ch] {
			if _, ok := ch.links[l]; !ok {
				ch.links[l] = struct{}{}
				l.links[ch] = struct{}{}
				out.LinksAdd = append(out.LinksAdd, l.id)
			}
		}
		if len(out.LinksAdd) > 0 || len(out.LinksRemove) > 0 {
			s.snapDirty = true
			s.broadcastLocked(out, nil)
		}
	}
}

// applySettingsLocked swaps in the file's [server] settings. Settings that
// need new sockets or files (listen, admin_listen, data_dir, certificate,
// key, the acme_ keys, the name patterns) wait for a restart and are logged.
func (s *Server) applySettingsLocked(next conf.Server, live map[string]*channel) {
	cur := s.cfg()
	old := s.config.Server // as written in the file; flags may override cur
	for key, differs := range map[string]bool{
		"listen": next.Listen != old.Listen, "data_dir": next.DataDir != old.DataDir,
		"certificate": next.Certificate != old.Certificate, "key": next.Key != old.Key,
		"acme_domain": next.ACMEDomain != old.ACMEDomain, "acme_email": next.ACMEEmail != old.ACMEEmail,
		"acme_directory": next.ACMEDirectory != old.ACMEDirectory, "acme_ca_file": next.ACMECAFile != old.ACMECAFile,
		"admin_listen":     next.AdminListen != old.AdminListen,
		"username_pattern": next.UsernamePattern != old.UsernamePattern, "channel_name_pattern": next.ChannelNamePattern != old.ChannelNamePattern,
	} {
		if differs {
			s.log.Warn("setting changed in the file takes effect at the next start", "key", key)
		}
	}
	next.Listen, next.DataDir, next.Certificate, next.Key = cur.Listen, cur.DataDir, cur.Certificate, cur.Key
	next.UsernamePattern, next.ChannelNamePattern = cur.UsernamePattern, cur.ChannelNamePattern
	next.AdminListen = cur.AdminListen
	next.ACMEDomain, next.ACMEEmail, next.ACMEDirectory, next.ACMECAFile = cur.ACMEDomain, cur.ACMEEmail, cur.ACMEDirectory, cur.ACMECAFile
	if next.AdminToken == "" && cur.AdminToken != "" && next.AdminListen != "" && !s.adminTokenGenerated() {
		// The token is generated at start only, when no disk I/O blocks anyone.
		s.log.Warn("admin_token removed: the admin listener accepts no token until the next start generates one in the data directory")
	}
	s.settings.Store(&next)
	s.voice.SetBandwidth(next.Bandwidth)
	if next.UDPGSO != cur.UDPGSO {
		s.setUDPGSO(next.UDPGSO)
	}
	if next.Name != s.root.name {
		s.root.name = next.Name
		s.broadcastLocked(&mumblepb.ChannelState{ChannelId: ptr(uint32(0)), Name: ptr(next.Name)}, nil)
	}
	if next.RootDescription != s.root.description {
		s.root.setDescription(next.RootDescription)
		out := &mumblepb.ChannelState{ChannelId: ptr(uint32(0))}
		s.root.describe(out)
		s.broadcastLocked(out, nil)
	}
	if ch, ok := live[next.DefaultChannel]; ok {
		s.defaultChannel = ch
	}
	if next.AllowHTML != cur.AllowHTML || next.TextMessageLength != cur.TextMessageLength ||
		next.ImageMessageLength != cur.ImageMessageLength || next.MaxUsers != cur.MaxUsers || next.Bandwidth != cur.Bandwidth ||
		next.AllowRecording != cur.AllowRecording {
		s.broadcastLocked(&mumblepb.ServerConfig{
			MaxBandwidth:       ptr(uint32(next.Bandwidth)),
			AllowHtml:          ptr(next.AllowHTML),
			MessageLength:      ptr(uint32(next.TextMessageLength)),
			ImageMessageLength: ptr(uint32(next.ImageMessageLength)),
			MaxUsers:           ptr(uint32(next.MaxUsers)),
			RecordingAllowed:   ptr(next.AllowRecording),
		}, nil)
	}
}

// livePathsLocked maps the paths of live channels (root is "") to them.
func (s *Server) livePathsLocked() map[string]*channel {
	out := map[string]*channel{"": s.root}
	paths := map[*channel]string{s.root: ""}
	for _, ch := range s.breadthFirst()[1:] {
		p := conf.JoinPath(paths[ch.parent], ch.name)
		paths[ch] = p
		out[p] = ch
	}
	return out
}

func (s *Server) pathOfLocked(ch *channel) (string, bool) {
	if _, ok := s.channels[ch.id]; !ok {
		return "", false
	}
	var names []string
	for c := ch; c.parent != nil; c = c.parent {
		names = append(names, c.name)
	}
	p := ""
	for i := len(names) - 1; i >= 0; i-- {
		p = conf.JoinPath(p, names[i])
	}
	return p, true
}

// sameACL compares two channel ACLs by content.
func sameACL(a, b *acl.ChannelACL) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.InheritACL != b.InheritACL || len(a.Entries) != len(b.Entries) || len(a.Groups) != len(b.Groups) {
		return false
	}
	for i := range a.Entries {
		x, y := a.Entries[i], b.Entries[i]
		if x.ApplyHere != y.ApplyHere || x.ApplySubs != y.ApplySubs || x.UserID != y.UserID || x.Group != y.Group || x.Allow != y.Allow || x.Deny != y.Deny {
			return false
		}
	}
	for name, g := range a.Groups {
		h, ok := b.Groups[name]
		if !ok || g.Inherit != h.Inherit || g.Inheritable != h.Inheritable || !slices.Equal(g.Add, h.Add) || !slices.Equal(g.Remove, h.Remove) {
			return false
		}
	}
	return true
}

// watchConfig reloads when the file changes on disk. It watches the
// directory, since editors and our own writer replace the file by rename.
// Our own writes are recognised by their hash and not reloaded.
func (s *Server) watchConfig() {
	name := filepath.Clean(s.configPath)
	s.watchFiles("configuration file", []string{s.configPath}, 200*time.Millisecond, // editors write in several steps
		func(ev fsnotify.Event) bool {
			return filepath.Clean(ev.Name) == name && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0
		},
		s.reloadIfNotOurs)
}

// reloadIfNotOurs reloads the configuration file unless it is the version
// the server wrote (or loaded) last.
func (s *Server) reloadIfNotOurs() {
	if _, err := os.Stat(s.configPath); err != nil {
		return // being replaced; the next event brings it back
	}
	s.reloadConfig(false)
}
