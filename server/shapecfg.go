package server

import (
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/stage"
)

// shapeKeys are a channel's stage settings as the file has them, kept so
// that writing the channel back keeps them.
type shapeKeys struct {
	maxSpeakers, mixAbove int
	mix, record           bool
	// Floor control (floor.go) is kept with them for the same reason.
	floor         bool
	floorGroups   []string
	floorRequests string
	speakingTime  conf.Duration
	floorMinutes  bool
}

func keysOf(def *conf.Channel) shapeKeys {
	return shapeKeys{maxSpeakers: def.MaxSpeakers, mixAbove: def.MixAbove, mix: def.Mix, record: def.Record,
		floor: def.Floor, floorGroups: def.FloorGroups, floorRequests: def.FloorRequests,
		speakingTime: def.SpeakingTime, floorMinutes: def.FloorMinutes}
}

func (k shapeKeys) to(def *conf.Channel) {
	def.MaxSpeakers, def.MixAbove, def.Mix, def.Record = k.maxSpeakers, k.mixAbove, k.mix, k.record
	def.Floor, def.FloorGroups, def.FloorRequests = k.floor, k.floorGroups, k.floorRequests
	def.SpeakingTime, def.FloorMinutes = k.speakingTime, k.floorMinutes
}

// shapeOf is the stage configuration a channel's TOML asks for, and
// whether it asks for a stage at all.
func shapeOf(def *conf.Channel) (stage.Shape, bool) {
	cfg := stage.Shape{MaxSpeakers: def.MaxSpeakers, MixAbove: -1, Record: def.Record}
	if def.Mix {
		cfg.MixAbove = def.MixAbove
	}
	return cfg, def.MaxSpeakers > 0 || def.Mix || def.Record
}

// applyShapesLocked gives every channel of cfg the stage its TOML asks
// for, replacing stages whose settings changed and removing those no
// longer asked for. Channels made by clients have no stage.
func (s *Server) applyShapesLocked(cfg *conf.Config) {
	live := s.livePathsLocked()
	configured := map[*channel]bool{}
	cfg.Walk(func(path string, def *conf.Channel, _ string) {
		ch := live[path]
		if ch == nil {
			return
		}
		configured[ch] = true
		ch.shapeKeys = keysOf(def)
		want, on := shapeOf(def)
		s.setShapeLocked(ch, want, on)
		s.setFloorLocked(ch, def)
	})
	for _, ch := range s.channels {
		if !configured[ch] {
			ch.shapeKeys = shapeKeys{}
			s.setShapeLocked(ch, stage.Shape{}, false)
			s.setFloorLocked(ch, &conf.Channel{})
		}
	}
}

// setShapeLocked installs, replaces or (on false) removes the shaping
// stage of ch, with the virtual user that mixing and recording need. A
// stage is replaced too when its recording file is not where it should
// be: a cluster node that became, or stopped being, the one recording.
func (s *Server) setShapeLocked(ch *channel, want stage.Shape, on bool) {
	old, _ := ch.stage.(*stage.Shaper)
	recordsHere := want.Record && !s.recordsElsewhere
	if old != nil && on && old.Shape() == want && (ch.recorder != nil) == recordsHere {
		return
	}
	if old == nil && !on {
		return
	}
	wasRecorded := old != nil && old.Shape().Record
	if old != nil {
		s.stopShaperLocked(ch, old)
		ch.stage = nil
	}
	mixing := want.MixAbove >= 0
	if !on {
		s.setVirtualLocked(ch, false, false, false)
		s.snapDirty = true
		s.tellRecordingLocked(ch, wasRecorded, false)
		return
	}
	// The virtual user is there before the stage so the stage knows its
	// session; its recording flag goes up only once the file is open
	// (here or, in a cluster, on the node that records), and stays up
	// while a recorded channel's stage is replaced.
	stillRecorded := want.Record && ch.virtual != nil && ch.virtual.recording
	s.setVirtualLocked(ch, mixing || want.Record, mixing, stillRecorded)
	var virtual uint32
	if ch.virtual != nil {
		virtual = ch.virtual.session
	}
	sh := stage.NewShaper(want, virtual, s.codecs, s.isPrioritySpeaker)
	if recordsHere {
		s.startRecordingLocked(ch, sh)
	}
	if want.Record {
		s.setVirtualLocked(ch, true, mixing, true)
	}
	s.tellRecordingLocked(ch, wasRecorded, want.Record)
	ch.stage = sh
	s.snapDirty = true
	s.log.Info("channel speech shaped", "channel", ch.id, "name", ch.name,
		"max_speakers", want.MaxSpeakers, "mix", mixing, "mix_above", max(want.MixAbove, 0), "record", want.Record,
		"recorded_here", recordsHere)
}

// isPrioritySpeaker reports whether session is a priority speaker on the
// current snapshot: a shaper asks it for each speaker every tick, from the
// tick goroutine, so it reads no state of the control plane.
func (s *Server) isPrioritySpeaker(session uint32) bool {
	return s.voice.Snapshot().PrioritySpeaker(session)
}

// stopShaperLocked retires ch's stage sh, which is being replaced or
// removed: the tick goroutine drops it at its next tick, and its recording
// is closed.
func (s *Server) stopShaperLocked(ch *channel, sh *stage.Shaper) {
	sh.Stop()
	s.stopRecording(ch)
}

// dropShapeLocked removes the stage and virtual user of a channel that is
// going away.
func (s *Server) dropShapeLocked(ch *channel) {
	s.setShapeLocked(ch, stage.Shape{}, false)
}

// stopAllShapes closes every recording at shutdown.
func (s *Server) stopAllShapes() {
	s.mu.Lock()
	defer s.unlock()
	for _, ch := range s.channels {
		if sh, ok := ch.stage.(*stage.Shaper); ok {
			s.stopShaperLocked(ch, sh)
		}
	}
}
