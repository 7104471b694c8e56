package server

// Administration and inspection: kicks, channel and ACL edits, user
// lookups and statistics.

import (
	"time"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
)

func (s *Server) handleUserStats(requester *user, m *mumblepb.UserStats) {
	s.mu.Lock()
	defer s.unlock()
	target := requester
	if m.Session != nil {
		t, ok := s.users[m.GetSession()]
		if !ok {
			return
		}
		target = t
	}
	extend := target == requester || s.may(requester, s.root, acl.Register)
	if !extend && !s.requireLocked(requester, target.channel, acl.Enter) {
		return
	}
	local := extend || target.channel == requester.channel
	details := extend && !m.GetStatsOnly()
	now := time.Now()
	out := &mumblepb.UserStats{
		Session:    ptr(target.session),
		UdpPackets: ptr(target.udpPackets.Load()),
		TcpPackets: ptr(target.tcpPackets.Load()),
		Onlinesecs: ptr(uint32(now.Sub(target.connected) / time.Second)),
	}
	if cs := target.clientStats; cs != nil {
		out.UdpPingAvg, out.UdpPingVar = cs.UdpPingAvg, cs.UdpPingVar
		out.TcpPingAvg, out.TcpPingVar = cs.TcpPingAvg, cs.TcpPingVar
	}
	if local {
		target.decMu.Lock()
		st := target.crypt.Stats()
		target.decMu.Unlock()
		out.FromClient = &mumblepb.UserStats_Stats{Good: ptr(st.Good), Late: ptr(st.Late), Lost: ptr(st.Lost), Resync: ptr(st.Resync)}
		if cs := target.clientStats; cs != nil {
			out.FromServer = &mumblepb.UserStats_Stats{Good: cs.Good, Late: cs.Late, Lost: cs.Lost, Resync: cs.Resync}
		}
		out.Idlesecs = ptr(uint32(now.Sub(time.Unix(0, target.lastActive.Load())) / time.Second))
	}
	if details {
		for _, cert := range target.conn.peerCertificates() {
			out.Certificates = append(out.Certificates, cert.Raw)
		}
		out.StrongCertificate = ptr(target.strong)
		out.Version = &mumblepb.Version{
			VersionV1: ptr(control.VersionV1(target.version)),
			VersionV2: ptr(target.version),
			Release:   ptr(target.release),
			Os:        ptr(target.os),
			OsVersion: ptr(target.osVersion),
		}
		out.Opus = ptr(target.opus)
		if s.cfg().ShowAddresses { // off by default: nobody is shown anyone's address
			addr := target.conn.remote.Addr().As16()
			out.Address = addr[:]
		}
	}
	requester.conn.send(out)
}

// handleUserRemove kicks (Kick or Ban on root) or bans (Ban on root) a
// user. A ban is stored first (banUser says what it keeps).
func (s *Server) handleUserRemove(actor *user, m *mumblepb.UserRemove) {
	s.mu.Lock()
	target, ok := s.users[m.GetSession()]
	need := acl.Kick | acl.Ban
	if m.GetBan() {
		need = acl.Ban
	}
	if r, remote := s.remote[m.GetSession()]; !ok && remote {
		s.removeRemoteUserLocked(actor, r, m, need)
		s.unlock()
		return
	}
	switch {
	case !ok:
		s.unlock()
		return
	case target.userID == 0:
		s.deny(actor, need, s.root) // nobody removes SuperUser
		s.unlock()
		return
	case !s.requireLocked(actor, s.root, need):
		s.unlock()
		return
	}
	s.unlock()
	if m.GetBan() {
		if err := s.banUser(target, m.GetReason()); err != nil {
			s.log.Error("saving ban failed", "err", err)
			s.refuseUnsaved(actor, "The ban of "+target.name, err)
			return
		}
	}
	s.mu.Lock()
	defer s.unlock()
	if s.users[target.session] != target {
		return
	}
	out := &mumblepb.UserRemove{Session: ptr(target.session), Actor: actorOf(actor), Reason: m.Reason, Ban: m.Ban}
	reason := reasonKicked
	if m.GetBan() {
		reason = reasonBanned
	}
	target.conn.sendAndClose(out, reason)
	s.removeUserLocked(target)
	s.broadcastLocked(out, target)
	s.log.Info("user removed", s.logUser("user", target), s.logUser("by", actor), "reason", reason.String())
}
