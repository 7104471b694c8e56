package server

// Acknowledged means durable.
//
// A client learns that its edit took effect from the messages the server
// broadcasts about it: the ChannelState of a created, renamed or moved
// channel, the ChannelRemove, the ChannelState and PermissionQuery that
// follow an ACL change, the UserState with a new comment. Once anybody has
// seen such a message, the change must survive the server being killed.
//
// The handlers change the state in memory under s.mu and queue messages;
// the disk is written outside the lock, later. So before a handler tells
// anyone about a change that is to be saved, it puts a hold on a ticket
// for the write that will save it into the queue of every connection
// (holdLocked). A connection's writer goroutine sends what is queued in
// order and stops at a hold until its ticket has finished; tunnelled voice
// has its own queue and keeps flowing. That way
//
//   - the confirmation of an edit reaches nobody before the file (or the
//     database) holding it is on disk;
//   - each client still receives its messages in exactly the order they
//     were queued, so it never hears of a user in a channel it does not
//     know yet, or of an ACL before the channel;
//   - nobody waits on the disk with the lock held, the voice path never
//     waits, and handlers return at once; other users' control messages
//     queued behind a hold are delayed by one write, which is the price of
//     keeping their order;
//   - several edits made while a write is on its way share the next write
//     (configfile.go): a burst of edits costs two writes, not one each.
//
// A write that fails still finishes its ticket, so a full disk never
// stops the control plane; the editor is told what was not saved
// (reportUnsaved), and the config writer retries until it succeeds. A
// write that hangs (a dying disk, a stalled network mount) releases its
// hold after holdLimit, with a warning in the log: past that point,
// keeping everybody's control messages waiting costs more than the
// window in which a crash could lose a confirmed edit.

import (
	"errors"
	"io/fs"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/store"
)

// ticket stands for one write to disk that messages wait for. It
// finishes when the write has ended, whether it succeeded or not, or
// when the write is too slow (releaseSlow).
type ticket struct {
	done chan struct{}
	once sync.Once
}

func newTicket() *ticket { return &ticket{done: make(chan struct{})} }

// finish settles the ticket; calls after the first do nothing.
func (t *ticket) finish() { t.once.Do(func() { close(t.done) }) }

// holdLimit is the longest a write holds messages back. A variable for
// tests.
var holdLimit = time.Second

// releaseSlow finishes t if the write it stands for has not finished
// within holdLimit; the returned function, called once the write is done,
// cancels that.
func (s *Server) releaseSlow(t *ticket, what string) (cancel func() bool) {
	return time.AfterFunc(holdLimit, func() {
		if !t.finished() {
			s.log.Warn("a write to disk is slow; its confirmation goes out before the change is on disk",
				"what", what, "after", holdLimit)
			t.finish()
		}
	}).Stop
}

func (t *ticket) finished() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// holdLocked makes every message queued from now on, to every connection,
// wait until t has finished. The caller must finish t, whatever happens.
func (s *Server) holdLocked(t *ticket) {
	for c := range s.conns {
		c.hold(t)
	}
	s.holds = slices.DeleteFunc(s.holds, (*ticket).finished)
	s.holds = append(s.holds, t)
}

// holdLoginLocked holds what a logging-in client is about to receive
// behind the writes still on their way: its view of the server must not
// be ahead of the disk either.
func (s *Server) holdLoginLocked(c *conn) {
	s.holds = slices.DeleteFunc(s.holds, (*ticket).finished)
	for _, t := range s.holds {
		c.hold(t)
	}
}

// persistLocked saves a change of a registered user's stored state
// (comment, texture, listeners) once the lock is released, and holds the
// messages announcing it until the database has committed it.
func (s *Server) persistLocked(u *user, what string, write func() error) {
	t := newTicket()
	s.holdLocked(t)
	who := s.logUser("user", u)
	s.afterUnlock = append(s.afterUnlock, func() {
		cancel := s.releaseSlow(t, what)
		err := write()
		cancel()
		t.finish()
		if err != nil {
			s.log.Error("saving failed", "what", what, who, "err", err)
			s.reportUnsaved(u, what, err, "It is gone when you next connect.")
		}
	})
}

// reportUnsaved tells u that a change of theirs is in effect but was not
// saved, and what follows. Mumble shows a text message from the server as
// "Server: ...".
func (s *Server) reportUnsaved(u *user, what string, err error, consequence string) {
	u.conn.send(textMessage("Your " + what + " is in effect but not saved: " + diskReason(err) + ". " + consequence))
}

// textMessage is a message from the server itself: without an actor, and
// without a target so that Mumble does not label it private.
func textMessage(text string) *mumblepb.TextMessage {
	return &mumblepb.TextMessage{Message: ptr(text)}
}

// refuseUnsaved tells u that what they asked for was not done because it
// could not be saved. Mumble shows it as "Denied: ...".
func (s *Server) refuseUnsaved(u *user, what string, err error) {
	u.conn.send(&mumblepb.PermissionDenied{
		Type:   mumblepb.PermissionDenied_Text.Enum(),
		Reason: ptr(what + " could not be saved: " + diskReason(err)),
	})
}

// diskReason says in a few words why a write failed, for users; the log
// has the whole error.
func diskReason(err error) string {
	switch {
	case errors.Is(err, store.ErrFull), errors.Is(err, syscall.ENOSPC):
		return "the server's disk is full"
	case errors.Is(err, syscall.EDQUOT):
		return "the server's disk quota is used up"
	case errors.Is(err, syscall.EROFS):
		return "the server's disk is read-only"
	case errors.Is(err, fs.ErrPermission):
		return "the server is not allowed to write its files"
	case errors.Is(err, errEditedFileInvalid):
		return "the configuration file was edited on disk and has an error, so the server does not overwrite it"
	default:
		return "the server could not write to its disk"
	}
}
