package server

import (
	"sync"
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

// PauseConfigWrites makes the config writer stop once it has taken the
// next version of the file, before it looks at the disk. paused is closed
// when it stops there; it goes on when resume is called.
func PauseConfigWrites(t *testing.T) (paused <-chan struct{}, resume func()) {
	stopped, goOn := make(chan struct{}), make(chan struct{})
	var once, resumeOnce sync.Once
	old := beforeConfigWrite
	beforeConfigWrite = func() {
		once.Do(func() {
			close(stopped)
			<-goOn
		})
	}
	resume = func() { resumeOnce.Do(func() { close(goOn) }) }
	t.Cleanup(func() {
		resume()
		beforeConfigWrite = old
	})
	return stopped, resume
}

// OpenStatusStreams is the number of /api/events streams open.
func (s *Server) OpenStatusStreams() int { return s.admin.OpenStreams() }

// ShortWriteTimeout makes a client that stops reading count as stuck
// after d instead of writeTimeout, until the test ends. Call it before
// starting a server.
func ShortWriteTimeout(t *testing.T, d time.Duration) {
	old := writeTimeout
	writeTimeout = d
	t.Cleanup(func() { writeTimeout = old })
}

// RunningGoroutines is how many goroutines of each name the server runs.
func (s *Server) RunningGoroutines() map[string]int { return s.goroutines.Running() }

// DriveStatusSampler stops the status sampler's own ticks until the test
// ends (call it before starting a server), so that the test drives it
// with SampleStatus.
func DriveStatusSampler(t *testing.T) {
	old := statusTick
	statusTick = time.Hour
	t.Cleanup(func() { statusTick = old })
}

// SampleStatus runs one tick of the status sampler at now, as its
// goroutine does once a second.
func (s *Server) SampleStatus(now time.Time) { s.sampleStatus(now) }
