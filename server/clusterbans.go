package server

// The cluster's shared ban list: one document in the cluster's bucket
// (package cluster), written with compare-and-set like the
// configuration. Every change of the list here (an editor's list, a kick
// with ban, expiry) goes to the cluster; a revision from another node
// replaces the list in the store and in memory here.

import (
	"encoding/json"
	"fmt"

	"github.com/plenum-voice/plenum/store"
)

// BanSharer is implemented by a ClusterLink that shares the ban list.
type BanSharer interface {
	// BansChanged hands over the list after it changed here, and the
	// sessions of the users whose edit changed it. It must not block.
	BansChanged(shared []byte, editors []uint32)
}

// SharedBans is the ban list as the cluster shares it.
func (s *Server) SharedBans() ([]byte, error) {
	s.mu.Lock()
	bans := make([]store.Ban, len(s.bans))
	for i, b := range s.bans {
		bans[i] = b.Ban
	}
	s.unlock()
	return json.Marshal(bans)
}

// shareBans tells the cluster the list changed; the caller holds banMu.
func (s *Server) shareBans(editor *user) {
	sharer, ok := s.cluster.(BanSharer)
	if !ok {
		return
	}
	data, err := s.SharedBans()
	if err != nil {
		s.log.Error("the ban list cannot be shared with the cluster", "err", err)
		return
	}
	var editors []uint32
	if editor != nil {
		editors = []uint32{editor.session}
	}
	sharer.BansChanged(data, editors)
}

// ApplySharedBans makes the cluster's revision of the ban list this
// node's, in the store and in memory.
func (s *Server) ApplySharedBans(data []byte) error {
	var bans []store.Ban
	if err := json.Unmarshal(data, &bans); err != nil {
		return fmt.Errorf("the cluster's ban list does not decode: %w", err)
	}
	s.banMu.Lock()
	defer s.banMu.Unlock()
	if err := s.store.SetBans(bans); err != nil {
		return err
	}
	s.mu.Lock()
	s.bans = listBans(bans)
	s.unlock()
	s.log.Info("ban list from the cluster applied", "entries", len(bans))
	return nil
}
