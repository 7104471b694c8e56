package server

// The stage clock's goroutine: stages (package stage) speak to their
// channel's listeners through the voice engine's Ticker.

import (
	"github.com/plenum-voice/plenum/stage"
)

// SetStage installs (or with nil removes) the stage of a channel.
func (s *Server) SetStage(channel uint32, st stage.Stage) {
	s.mu.Lock()
	defer s.unlock()
	if ch, ok := s.channels[channel]; ok {
		ch.stage = st
		s.snapDirty = true
	}
}

// tickLoop runs the stage clock until the server stops.
func (s *Server) tickLoop() {
	r := s.newRouter(s.udpSocks[0])
	defer r.Close()
	s.clock.Run(s.closing, s.voice.NewTicker(r))
}
