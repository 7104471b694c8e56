package server

// The admin listener (package admin) on this server: made in New, bound
// in Listen, run in Serve. What it shows and does is in status.go, the
// metrics it serves in metrics.go.

import (
	"context"
	"net/netip"

	"github.com/plenum-voice/plenum/admin"
	"github.com/plenum-voice/plenum/conf"
)

// NoAdmin as Options.AdminListen turns the admin listener off whatever the
// configuration says.
const NoAdmin = "off"

var _ admin.Server = (*Server)(nil)

// newAdmin makes the admin listener if one is configured; it loads or
// generates the admin token (admin.New).
func (s *Server) newAdmin(sc *conf.Server) error {
	if sc.AdminListen == "" {
		return nil
	}
	l, err := admin.New(admin.Config{Server: s, Settings: s.cfg, Tokens: s.apiTokens, API: apiServer{s},
		Metrics: newMetricsCollector(s), Log: s.log})
	if err != nil {
		return err
	}
	s.admin = l
	return nil
}

// listenAdmin binds the admin listener if one is configured.
func (s *Server) listenAdmin() error {
	if s.admin == nil {
		return nil
	}
	return s.admin.Listen()
}

// serveAdmin runs the admin listener until ctx ends.
func (s *Server) serveAdmin(ctx context.Context) {
	if err := s.admin.Serve(ctx); err != nil {
		s.log.Error("admin listener failed", "err", err)
	}
}

// AdminAddr is the address of the admin listener, or the zero AddrPort
// when there is none.
func (s *Server) AdminAddr() netip.AddrPort {
	if s.admin == nil {
		return netip.AddrPort{}
	}
	return s.admin.Addr()
}

// AdminTokenFile is the file that holds the admin token, or "" when the
// token is admin_token from the configuration (or there is no listener).
func (s *Server) AdminTokenFile() string {
	if s.admin == nil {
		return ""
	}
	return s.admin.TokenFile()
}

// adminTokenGenerated reports whether the admin listener loaded or
// generated a token in the data directory at start.
func (s *Server) adminTokenGenerated() bool {
	return s.admin != nil && s.admin.HasGeneratedToken()
}

// apiTokens are the [[admin_token]] tables in force.
func (s *Server) apiTokens() []conf.APIToken {
	s.mu.Lock()
	defer s.unlock()
	return s.config.AdminTokens
}
