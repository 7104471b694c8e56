package server

import (
	"testing"
	"time"

	"github.com/plenum-voice/plenum/conf"
)

// SlowConfigWrites makes every write of the configuration file take d
// longer and writes hold messages back for at most limit, until the test
// ends.
func SlowConfigWrites(t *testing.T, d, limit time.Duration) {
	oldWrite, oldLimit := writeConfigFile, holdLimit
	writeConfigFile = func(path string, c *conf.Config) error {
		time.Sleep(d)
		return conf.WriteFile(path, c)
	}
	holdLimit = limit
	t.Cleanup(func() { writeConfigFile, holdLimit = oldWrite, oldLimit })
}

// SetFloorClock replaces the clock speaking times are measured by.
func (s *Server) SetFloorClock(now func() time.Time) {
	s.mu.Lock()
	s.now = now
	s.mu.Unlock()
}

// CheckFloorTime runs the speaking-time check at once, as the server's
// clock does twice a second.
func (s *Server) CheckFloorTime() {
	s.mu.Lock()
	s.checkFloorTimeLocked()
	s.unlock()
}

// OpenStatusStreams is the number of /api/events streams open.
func (s *Server) OpenStatusStreams() int { return len(s.statusStreams) }

// ShortWriteTimeout makes a client that stops reading count as stuck
// after d instead of writeTimeout, until the test ends. Call it before
// starting a server.
func ShortWriteTimeout(t *testing.T, d time.Duration) {
	old := writeTimeout
	writeTimeout = d
	t.Cleanup(func() { writeTimeout = old })
}
