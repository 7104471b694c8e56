package server

// The cluster's shared configuration: the channel tree, groups and ACLs
// are one revision for every node (package cluster keeps it in a
// JetStream key-value bucket and updates it with compare-and-set). Each
// node still writes it into its own TOML file with its own [server] and
// [cluster] settings: whenever the file changes here (an edit from a
// client written back, or an admin's edit of the file), the shared part
// goes to the cluster; a revision from another node is written into the
// file here and applied like an admin's edit.

import (
	"fmt"
	"os"

	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/mumblepb"
)

// ConfigSharer is implemented by a ClusterLink that shares the
// configuration between nodes.
type ConfigSharer interface {
	// ConfigChanged hands over the shared part of this node's file after
	// it changed, and the sessions of the users whose edits made the
	// change. It is called with the file's lock held and must not block.
	ConfigChanged(shared []byte, editors []uint32)
}

// SharedConfig is the part of cfg that all nodes of a cluster share, as
// TOML: the root's groups and ACL and the channel tree.
func SharedConfig(cfg *conf.Config) ([]byte, error) {
	shared := &conf.Config{Server: conf.DefaultServer(), Groups: cfg.Groups, ACL: cfg.ACL, Channels: cfg.Channels}
	// Which channels are recorded is shared; whether a node may record is
	// its own [server]'s to say, checked when it applies the tree. So the
	// shared part allows recording when a channel asks for it (else it
	// would not validate), and no [server] setting travels with it.
	shared.Walk(func(_ string, ch *conf.Channel, _ string) {
		shared.Server.AllowRecording = shared.Server.AllowRecording || ch.Record
	})
	return conf.Encode(shared)
}

// shareConfig tells the cluster that the file now holds cfg.
func (s *Server) shareConfig(cfg *conf.Config, editors []*user) {
	sharer, ok := s.cluster.(ConfigSharer)
	if !ok {
		return
	}
	data, err := SharedConfig(cfg)
	if err != nil {
		s.log.Error("the configuration cannot be shared with the cluster", "err", err)
		return
	}
	sessions := make([]uint32, 0, len(editors))
	for _, u := range editors {
		sessions = append(sessions, u.session)
	}
	sharer.ConfigChanged(data, sessions)
}

// CurrentSharedConfig is the shared part of the configuration this node
// runs, for the cluster to compare with its revision.
func (s *Server) CurrentSharedConfig() ([]byte, error) {
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	s.mu.Lock()
	cfg := s.config
	s.unlock()
	return SharedConfig(cfg)
}

// ApplySharedConfig makes a revision of the shared configuration from the
// cluster this node's: it is written into the node's file, with the
// node's own [server] and [cluster] settings, and applied.
func (s *Server) ApplySharedConfig(data []byte) error {
	shared, err := conf.Parse(data, "the cluster's configuration")
	if err != nil {
		return fmt.Errorf("the cluster's configuration does not load: %w", err)
	}
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	s.mu.Lock()
	merged := *s.config
	s.unlock()
	merged.Groups, merged.ACL, merged.Channels = shared.Groups, shared.ACL, shared.Channels
	merged.File = s.configPath
	if err := conf.WriteFile(s.configPath, &merged); err != nil {
		return fmt.Errorf("writing the cluster's configuration: %w", err)
	}
	if _, err := os.Stat(s.configPath); err != nil {
		return err
	}
	s.log.Info("configuration revision from the cluster applied", "file", s.configPath)
	return s.reloadFileLocked(true)
}

// RefuseEdit tells the editors of a change to what ("channels or ACLs",
// "the ban list") that the cluster did not take it, and why.
func (s *Server) RefuseEdit(editors []uint32, what, reason string) {
	s.mu.Lock()
	defer s.unlock()
	for _, session := range editors {
		if u, ok := s.users[session]; ok {
			u.conn.send(&mumblepb.TextMessage{Message: ptr("Your change to " + what + " was refused: " + reason)})
		}
	}
}

// ConfigFile is the file this node's configuration is written to.
func (s *Server) ConfigFile() string { return s.configPath }
