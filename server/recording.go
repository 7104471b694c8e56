package server

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"github.com/plenum-voice/plenum/internal/oggopus"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/stage"
)

// recordingsDir is where recordings go, inside the data directory.
const recordingsDir = "recordings"

// startRecordingLocked starts recording ch's mix for its stage sh, into
// DATA/recordings/CHANNEL-START-N.opus. The stage ticks from now on, so
// silence is recorded as time, not skipped.
func (s *Server) startRecordingLocked(ch *channel, sh *stage.Shaper) {
	start := time.Now().UTC()
	base := filepath.Join(s.cfg().DataDir, recordingsDir, fileSafe(ch.name)+"-"+start.Format("20060102-150405"))
	name := ch.name
	rec := oggopus.NewRecorder(oggopus.Options{
		Name:     func(seq int) string { return fmt.Sprintf("%s-%03d.opus", base, seq) },
		MaxBytes: s.cfg().RecordingMaxBytes,
		PreSkip:  stage.MixLookahead,
		Comments: []string{"TITLE=" + ch.name, "DATE=" + start.Format(time.RFC3339)},
		OnError: func(err error) {
			s.log.Error("recording failed; it goes on with the next file", "channel", name, "err", err)
		},
	})
	sh.RecordTo(rec)
	ch.recorder = rec
	s.clock.Activate(ch.id, sh)
	s.log.Info("recording started", "channel", ch.name, "files", base+"-*.opus")
}

// tellRecordingLocked tells everyone in ch when it starts or stops being
// recorded: was and is say whether its configuration recorded it before
// the change and after.
func (s *Server) tellRecordingLocked(ch *channel, was, is bool) {
	switch {
	case is && !was:
		s.tellChannelLocked(ch, "This channel is being recorded from now on.")
	case was && !is:
		s.tellChannelLocked(ch, "Recording of this channel has stopped.")
	}
}

// stopRecording closes ch's recording, if it has one, once the lock is
// released: the last pages and the sync are disk I/O.
func (s *Server) stopRecording(ch *channel) {
	rec := ch.recorder
	if rec == nil {
		return
	}
	ch.recorder = nil
	channel := ch.id
	s.afterUnlock = append(s.afterUnlock, func() {
		if err := rec.Close(); err != nil {
			s.log.Error("recording ended with an error; what was written before it is valid", "channel", channel, "err", err)
		}
		s.log.Info("recording stopped", "channel", channel, "packets_dropped", rec.Dropped())
	})
}

// tellChannelLocked sends a server message to everyone in ch.
func (s *Server) tellChannelLocked(ch *channel, text string) {
	m := &mumblepb.TextMessage{ChannelId: []uint32{ch.id}, Message: ptr(text)}
	for u := range ch.users {
		u.conn.send(m)
	}
}

// fileSafe turns a channel name into a file name: letters, digits, '-'
// and '_' are kept, anything else becomes '_'.
func fileSafe(name string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, name)
}
