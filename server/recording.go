package server

// startRecordingLocked opens the recording of ch's mix for sh and reports
// whether it is recording. Recording is not built yet: it says so and
// reports false, so nobody is shown a recording flag for a file that
// does not exist.
func (s *Server) startRecordingLocked(ch *channel, sh *shaper) bool {
	s.log.Error("recording is not available in this build", "channel", ch.name)
	return false
}

// stopRecording closes sh's recording, if it has one.
func (s *Server) stopRecording(sh *shaper) {}
