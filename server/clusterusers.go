package server

// The cluster's shared registrations: one document in the cluster's
// bucket (package cluster), written with compare-and-set like the
// configuration, so that a registered user who reconnects to another node
// is the same registered user there (same id, name, certificate and
// password). Comments, avatars, last channels and listeners stay with
// each node.

import (
	"encoding/json"
	"fmt"

	"github.com/plenum-voice/plenum/store"
)

// UserSharer is implemented by a ClusterLink that shares registrations.
type UserSharer interface {
	// UsersChanged hands over the registrations after they changed here,
	// and the sessions of the users whose action changed them. It must
	// not block.
	UsersChanged(shared []byte, editors []uint32)
}

// SharedUsers is the registrations as the cluster shares them.
func (s *Server) SharedUsers() ([]byte, error) {
	regs, err := s.store.Registrations()
	if err != nil {
		return nil, err
	}
	return json.Marshal(regs)
}

// shareUsers tells the cluster the registrations changed.
func (s *Server) shareUsers(editor *user) {
	sharer, ok := s.cluster.(UserSharer)
	if !ok {
		return
	}
	data, err := s.SharedUsers()
	if err != nil {
		s.log.Error("the registrations cannot be shared with the cluster", "err", err)
		return
	}
	var editors []uint32
	if editor != nil {
		editors = []uint32{editor.session}
	}
	sharer.UsersChanged(data, editors)
}

// ApplySharedUsers makes the cluster's revision of the registrations this
// node's, and follows the changes in the ACLs' names and in the users
// online here, as a registration, rename or deletion made here would.
func (s *Server) ApplySharedUsers(data []byte) error {
	var regs []store.Registration
	if err := json.Unmarshal(data, &regs); err != nil {
		return fmt.Errorf("the cluster's registrations do not decode: %w", err)
	}
	before, err := s.store.Registrations()
	if err != nil {
		return err
	}
	if err := s.store.ImportRegistrations(regs); err != nil {
		return err
	}
	old := make(map[int64]store.Registration, len(before))
	for _, r := range before {
		old[r.ID] = r
	}
	now := make(map[int64]store.Registration, len(regs))
	for _, r := range regs {
		now[r.ID] = r
	}
	for _, o := range before {
		if n, ok := now[o.ID]; !ok || n.CertHash != o.CertHash {
			s.names.deletedUser(o.ID, o.Name)
			s.unregisterOnline(o.ID)
		}
	}
	remap := false
	for _, n := range regs {
		o, ok := old[n.ID]
		switch {
		case !ok || o.CertHash != n.CertHash:
			remap = s.names.registered(n.Name, n.ID) || remap
		case o.Name != n.Name:
			s.renamedUser(nil, n.ID, o.Name, n.Name)
		}
	}
	if remap {
		s.mu.Lock()
		s.remapNamesLocked()
		s.unlock()
	}
	s.log.Info("registrations from the cluster applied", "users", len(regs))
	return nil
}
