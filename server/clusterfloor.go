package server

// The floor of a hall shared by the nodes of a cluster: one document per
// hall in the cluster's bucket, written with compare-and-set (package
// cluster). Every floor action on this node changes the local floor at
// once, as on a single server, and is kept as a pending action until the
// cluster took a revision containing it. A revision from another node is
// adopted with this node's pending actions replayed on top of it, so that
// when two nodes act at once the loser's action is not lost: it is
// written again on the winner's revision. Each node then recomputes the
// suppress flags of its own users (and announces them), so who may speak
// is the same everywhere.
//
// Queue entries name people by floor.Member.ID (a registered user's id,
// else a certificate's hash), so that a member whose node died keeps
// their place when they reconnect to another node (Rebind).

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/plenum-voice/plenum/floor"
	"github.com/plenum-voice/plenum/proto/mumblepb"
)

// FloorSharer is implemented by a ClusterLink that shares the halls'
// floors.
type FloorSharer interface {
	// FloorChanged says the floor of the hall at path has local actions
	// to share (FloorToShare). It must not block.
	FloorChanged(path string)
}

// floorOp is one action on a hall's floor, kept so that it can be
// replayed on another node's revision.
type floorOp func(*floor.Hall) []floor.Event

// floorShare is where a hall's floor stands with the cluster.
type floorShare struct {
	rev uint64    // the cluster's revision this node's floor builds on; 0: none yet
	ops []floorOp // local actions on top of it, not shared yet
}

// sharedFloorDoc is a hall's floor as the cluster keeps it.
type sharedFloorDoc struct {
	Path  string      `json:"path"`
	State floor.State `json:"state"`
}

func (s *Server) sharesFloor() bool {
	_, ok := s.cluster.(FloorSharer)
	return ok
}

// personID names a person across connections and nodes: their
// registration, else their certificate.
func personID(userID int64, certHash string) string {
	if ids := personIDs(userID, certHash); len(ids) > 0 {
		return ids[0]
	}
	return ""
}

// personIDs are all the names of a person, so that one who registered
// after raising their hand is still recognised by their certificate.
func personIDs(userID int64, certHash string) []string {
	var ids []string
	if userID >= 0 {
		ids = append(ids, "user:"+strconv.FormatInt(userID, 10))
	}
	if certHash != "" {
		ids = append(ids, "cert:"+certHash)
	}
	return ids
}

// floorMemberLocked is u as the floor knows them.
func (s *Server) floorMemberLocked(u *user) floor.Member {
	return floor.Member{Session: u.session, Name: u.name, ID: personID(u.userID, u.certHash)}
}

// floorDoLocked carries out op on hall's floor and returns the reply for
// whoever acted; on a cluster node an action that changed the floor is
// kept to be shared.
func (s *Server) floorDoLocked(hall *channel, op floorOp) string {
	if !s.sharesFloor() {
		return s.floorEventsLocked(hall, op(hall.floor))
	}
	before := hall.floor.State()
	events := op(hall.floor)
	if !reflect.DeepEqual(before, hall.floor.State()) {
		path, _ := s.pathOfLocked(hall)
		sh := s.floorShareLocked(path)
		sh.ops = append(sh.ops, op)
		sharer := s.cluster.(FloorSharer)
		s.afterUnlock = append(s.afterUnlock, func() { sharer.FloorChanged(path) })
	}
	return s.floorEventsLocked(hall, events)
}

func (s *Server) floorShareLocked(path string) *floorShare {
	if s.floors == nil {
		s.floors = map[string]*floorShare{}
	}
	sh, ok := s.floors[path]
	if !ok {
		sh = &floorShare{}
		s.floors[path] = sh
	}
	return sh
}

// floorMemberNamedLocked finds the user called name in hall or its
// requests channel, on this node or another.
func (s *Server) floorMemberNamedLocked(hall *channel, name string) (floor.Member, bool) {
	if u := s.userNamedLocked(name); u != nil {
		return s.floorMemberLocked(u), u.channel == hall || s.isRequestsChannel(hall, u.channel)
	}
	for _, r := range s.remote {
		if strings.EqualFold(r.Name, name) && (r.channel == hall || s.isRequestsChannel(hall, r.channel)) {
			return floor.Member{Session: r.Session, Name: r.Name, ID: personID(r.UserID, r.CertHash)}, true
		}
	}
	return floor.Member{}, false
}

// floorReturnedLocked gives u back their place on the floor of the hall
// they are in (or wait to enter), when they held or waited for it in
// another session: they reconnected (perhaps on another node, after theirs
// died) or replaced their old connection. A place of a session u's login
// replaced is given up if u is not in that hall now, as leaving it would
// have.
func (s *Server) floorReturnedLocked(u *user) {
	if hall := s.floorHallOf(u.channel); hall != nil {
		ids := personIDs(u.userID, u.certHash)
		session, name := u.session, u.name
		s.floorDoLocked(hall, func(f *floor.Hall) []floor.Event { return f.Rebind(ids, session, name) })
	}
	for _, old := range u.replaces {
		now := s.now()
		for _, hall := range s.channels {
			if hall.floor != nil {
				s.floorDoLocked(hall, func(f *floor.Hall) []floor.Event { return f.Leave(old, now) })
			}
		}
	}
	u.replaces = nil
}

// floorHallOf is the hall ch is, or whose requests channel it is; nil if
// neither.
func (s *Server) floorHallOf(ch *channel) *channel {
	if ch == nil {
		return nil
	}
	if h := hallOf(ch); h != nil {
		return h
	}
	if ch.floor != nil {
		return ch
	}
	return nil
}

// floorDropAbsentLocked takes out of hall's floor (its queue, or the
// floor itself) those who have not been on any node for failover_wait:
// their node died and they did not come back, so that the chair's !next
// does not call someone who is gone. now is the floor clock's time;
// absence is counted from when this node first missed them.
func (s *Server) floorDropAbsentLocked(hall *channel, now time.Time) {
	members := hall.floor.Queue()
	if holder, held := hall.floor.Holder(); held {
		members = append(members, holder)
	}
	var gone []uint32
	for _, m := range members {
		_, local := s.users[m.Session]
		_, remote := s.remote[m.Session]
		if local || remote {
			delete(s.floorAbsent, m.Session)
			continue
		}
		since, seen := s.floorAbsent[m.Session]
		switch {
		case !seen:
			if s.floorAbsent == nil {
				s.floorAbsent = map[uint32]time.Time{}
			}
			s.floorAbsent[m.Session] = now
		case now.Sub(since) >= s.config.Cluster.Wait():
			gone = append(gone, m.Session)
		}
	}
	for _, session := range gone {
		delete(s.floorAbsent, session)
		s.floorDoLocked(hall, func(f *floor.Hall) []floor.Event { return f.Leave(session, now) })
	}
}

// floorRefusedWhileCutOff refuses a floor action that a node cut off
// from its cluster could not share, telling u why.
func (s *Server) floorRefusedWhileCutOff(u *user) bool {
	if !s.sharesFloor() || !s.clusterCut.Load() {
		return false
	}
	u.conn.send(&mumblepb.PermissionDenied{Type: mumblepb.PermissionDenied_Text.Enum(), Reason: ptr(errFloorCutOff.Error())})
	return true
}

// FloorHalls is the paths of this node's halls and the cluster's revision
// each one's floor builds on (0: none yet).
func (s *Server) FloorHalls() map[string]uint64 {
	s.mu.Lock()
	defer s.unlock()
	halls := map[string]uint64{}
	for path, ch := range s.livePathsLocked() {
		if ch.floor != nil {
			halls[path] = s.floorShareLocked(path).rev
		}
	}
	return halls
}

// FloorToShare is the floor of the hall at path as this node has it, the
// revision it builds on, and how many local actions it holds that the
// cluster has not taken yet (0: nothing to share).
func (s *Server) FloorToShare(path string) (data []byte, base uint64, actions int) {
	s.mu.Lock()
	defer s.unlock()
	hall := s.livePathsLocked()[path]
	sh := s.floorShareLocked(path)
	if hall == nil || hall.floor == nil {
		sh.ops = nil // no longer a hall: nothing to share
		return nil, sh.rev, 0
	}
	data, err := json.Marshal(sharedFloorDoc{Path: path, State: hall.floor.State()})
	if err != nil {
		s.log.Error("a hall's floor cannot be encoded for the cluster", "err", err)
		return nil, sh.rev, 0
	}
	return data, sh.rev, len(sh.ops)
}

// FloorShared records that the cluster took the floor of the hall at
// path as revision rev, with its first actions local actions.
func (s *Server) FloorShared(path string, rev uint64, actions int) {
	s.mu.Lock()
	defer s.unlock()
	sh := s.floorShareLocked(path)
	sh.rev = max(sh.rev, rev)
	sh.ops = sh.ops[min(actions, len(sh.ops)):]
}

// ApplySharedFloor adopts revision rev of a hall's floor, which another
// node wrote (or which won over this node's), with the local actions not
// shared yet replayed on top of it.
func (s *Server) ApplySharedFloor(data []byte, rev uint64) {
	var doc sharedFloorDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		s.log.Warn("a hall's floor from the cluster does not decode", "err", err)
		return
	}
	s.mu.Lock()
	defer s.unlock()
	hall := s.livePathsLocked()[doc.Path]
	if hall == nil || hall.floor == nil {
		return // not a hall here (yet): adopted when it is one, at the next poll
	}
	sh := s.floorShareLocked(doc.Path)
	if rev <= sh.rev {
		return
	}
	sh.rev = rev
	next := hall.floor.Clone()
	next.Adopt(doc.State)
	for _, op := range sh.ops {
		op(next)
	}
	if reflect.DeepEqual(next.State(), doc.State) {
		sh.ops = nil // they change nothing on top of it: nothing left to share
	}
	s.floorEventsLocked(hall, hall.floor.Adopt(next.State()))
}

// floorTimedElsewhereLocked reports whether another node keeps the time
// of hall's running turn: the one its holder is connected to, which warns
// them. A holder whose node is gone is timed by every node.
func (s *Server) floorTimedElsewhereLocked(hall *channel) bool {
	if !s.sharesFloor() {
		return false
	}
	m, held := hall.floor.Holder()
	_, remote := s.remote[m.Session]
	return held && remote
}
