package server

// Channel identity. Registered users' last channel and listened channels
// are stored by channel id, and Mumble clients keep things by id too, but
// the configuration file knows a channel only by its path. So the store
// records the id of every path and the highest id ever handed out
// (store/channels.go), and:
//
//   - at start each channel of the file gets the id recorded for its path,
//     or a new one (store.AssignChannelIDs), so inserting a channel above
//     another in the file changes nobody's id;
//   - while running the server hands out new ids itself, under s.mu, from
//     the same sequence: to channels a reload adds, to channels clients
//     create, temporary ones included, never an id handed out before;
//   - a rename or move made from a client notes the channel's new path
//     (and its subchannels'), so it keeps its id across restarts. A rename
//     made by editing the file is a removal and an addition: the file
//     cannot say that the new name is the old channel.
//
// The ids noted under s.mu are recorded by the config writer, in the order
// they were noted and before the version of the file they belong to is
// written (configWriter), so that they reach the store from one goroutine
// and a later state is never overwritten by an earlier one. Should the
// process die between recording and writing the file, a renamed channel
// gets a new id at the next start: whoever returns to it finds the default
// channel, never another channel.
//
// The ids are not written into the file: the server would have to rewrite
// the admin's file (and lose its comments) just to add them, and an id
// copied with a channel's lines would give two channels one id. plenum
// import-murmur, which knows Murmur's ids, puts them into the store of a
// new data directory instead (store.ImportChannelIDs).

import (
	"github.com/plenum-voice/plenum/store"
)

// channelIdentity is the recorded channel identity as it will be once the
// pending changes are recorded. The server keeps it under s.mu.
type channelIdentity struct {
	byPath map[string]uint32
	byID   map[uint32]string
	last   uint32 // the highest id handed out

	pending []store.ChannelID // paths noted since the last record, oldest first
	dirty   bool              // pending or last not recorded yet
}

func newChannelIdentity(rec store.ChannelIDs) channelIdentity {
	ci := channelIdentity{byPath: make(map[string]uint32, len(rec.Paths)), byID: make(map[uint32]string, len(rec.Paths)), last: rec.Last}
	for p, id := range rec.Paths {
		ci.byPath[p], ci.byID[id] = id, p
	}
	return ci
}

// next hands out a new id, or 0 when all have been used.
func (ci *channelIdentity) next() uint32 {
	if ci.last == store.MaxChannelID {
		return 0
	}
	ci.last++
	ci.dirty = true
	return ci.last
}

// note records (later) that the channel with id now has path; the path
// and the id are no longer the identity of anything else.
func (ci *channelIdentity) note(path string, id uint32) {
	if ci.byPath[path] == id {
		return
	}
	if old, ok := ci.byPath[path]; ok {
		delete(ci.byID, old)
	}
	if other, ok := ci.byID[id]; ok {
		delete(ci.byPath, other)
	}
	ci.byPath[path], ci.byID[id] = id, path
	ci.last = max(ci.last, id)
	ci.pending = append(ci.pending, store.ChannelID{Path: path, ID: id})
	ci.dirty = true
}

// idRecord is what the config writer records: the paths noted, in order,
// and the highest id handed out.
type idRecord struct {
	changes []store.ChannelID
	last    uint32
	due     bool
}

// take hands the pending changes to the config writer.
func (ci *channelIdentity) take() idRecord {
	r := idRecord{changes: ci.pending, last: ci.last, due: ci.dirty || len(ci.pending) > 0}
	ci.pending, ci.dirty = nil, false
	return r
}

// putBack returns a record that could not be written, to go before the
// changes noted since. It is tried again whenever the writer next runs
// (an edit, a new channel, the stop), not at once: a full disk would
// make that a busy loop.
func (ci *channelIdentity) putBack(r idRecord) {
	ci.pending = append(r.changes, ci.pending...)
}

// idForPathLocked is the id a channel the file adds at path gets: the one
// recorded for the path unless a live channel has it (a channel the file
// does not know by this path), else a new one; 0 when none is left.
func (s *Server) idForPathLocked(path string) uint32 {
	if id, ok := s.ids.byPath[path]; ok {
		if _, live := s.channels[id]; !live {
			return id
		}
	}
	return s.ids.next()
}

// notePathsLocked notes the paths of ch and its subchannels after ch was
// renamed or moved. Temporary channels have no recorded path: clients'
// are gone once empty, and the file's keep the path the file gives them.
func (s *Server) notePathsLocked(ch *channel) {
	if ch.temporary {
		return
	}
	if p, ok := s.pathOfLocked(ch); ok {
		s.ids.note(p, ch.id)
	}
	for _, child := range ch.children {
		s.notePathsLocked(child)
	}
}

// recordChannelIDs writes a record to the store (the config writer's
// goroutine). A failure is logged and the record kept for the next time:
// until then a restart would give the channels in it new ids (their users
// would start in the default channel).
func (s *Server) recordChannelIDs(r idRecord) {
	if !r.due {
		return
	}
	if err := s.store.RecordChannelIDs(r.changes, r.last); err != nil {
		s.log.Error("recording channel ids failed; they are recorded with the next change", "err", err)
		s.mu.Lock()
		s.ids.putBack(r)
		s.unlock()
	}
}
