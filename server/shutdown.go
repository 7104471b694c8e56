package server

// Stopping gracefully. When Serve's context ends (SIGTERM), the server
//
//  1. stops accepting connections;
//  2. tells every user "Server is shutting down" and then ends their TLS
//     session cleanly (close_notify, then a TCP half-close), so that the
//     client reads everything and then the end of the stream. This is
//     neither a kick nor a Reject: after those Mumble would not reconnect
//     by itself, after a lost connection it does. Connections that are
//     not logged in yet are simply closed;
//  3. waits for the clients to hang up, at most shutdown_timeout; voice
//     keeps flowing meanwhile, and edits already made are written with
//     their confirmations as usual. A client that does not read (its TCP
//     buffers full) cannot hold this up: when the time is over, every
//     connection still open is cut;
//  4. lets the config writer write the last pending version of the file;
//     the registered users' last channels were saved as each of them
//     left, and the store is closed once every goroutine has ended.

import (
	"fmt"
	"net"
	"time"
)

// shutdownNotice is what users read in their log as the server goes.
const shutdownNotice = "Server is shutting down"

func (s *Server) shutdown() {
	s.closed.Do(func() {
		start := time.Now()
		close(s.closing)
		if s.acme != nil {
			s.acme.stop() // cuts a request to the CA that the ACME loop waits on
		}
		s.stopSignIn()
		s.tcp.Close()
		s.stopWebListener()
		s.mu.Lock()
		told := 0
		for c := range s.conns {
			if s.sayGoodbyeLocked(c) {
				told++
			}
		}
		s.unlock()
		cut := s.waitForClients(start.Add(s.cfg().ShutdownTimeout.Duration))
		for _, sock := range s.udpSocks {
			sock.Close()
		}
		s.closeWebRTC()
		close(s.writerStop)
		s.log.Info("clients disconnected", "told", told, "cut_off", cut, "took", time.Since(start).Round(time.Millisecond))
	})
	s.waitForGoroutines(goroutineGrace)
	s.stopAllShapes() // the tick goroutine is gone: recordings get their last pages
	s.closeStore.Do(func() { s.store.Close() })
}

// sayGoodbyeLocked tells c's user that the server is going and queues the
// clean end of the connection; it reports whether there was a user to
// tell. A connection that is not logged in is closed at once.
func (s *Server) sayGoodbyeLocked(c *conn) bool {
	if c.user == nil {
		c.close(reasonShutdown)
		return false
	}
	if !c.part(reasonShutdown) {
		return false // being kicked or replaced: it ends by itself
	}
	c.send(textMessage(shutdownNotice))
	c.enqueue(queued{mark: markGoodbye})
	return true
}

// goodbye ends the TLS session with close_notify and half-closes the TCP
// connection once everything queued has been written. The client reads to
// the end and hangs up; the reader goroutine sees that and ends the
// connection.
func (c *conn) goodbye() {
	if c.tc == nil {
		c.nc.Close() // a WebSocket's close frame is its clean end
		return
	}
	c.tc.CloseWrite()
	c.nc.(*net.TCPConn).CloseWrite()
}

// waitForClients waits until every connection has ended or deadline has
// passed, then cuts the connections still open and waits for them to end.
// It returns how many were cut.
func (s *Server) waitForClients(deadline time.Time) (cut int) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		s.mu.Lock()
		open := len(s.conns)
		s.unlock()
		if open == 0 {
			return cut
		}
		select {
		case <-s.connGone:
		case <-timer.C: // fires once; from then on connGone alone wakes us
			s.mu.Lock()
			for c := range s.conns {
				c.close(reasonShutdownCut)
				cut++
			}
			s.unlock()
		}
	}
}

// goroutineGrace is how long stopping may wait for the server's goroutines
// before it says in the log which are still running.
const goroutineGrace = 10 * time.Second

// waitForGoroutines waits until every goroutine of the server has ended;
// if that takes longer than grace, it logs which are still running (and
// goes on waiting), so that a stop that hangs says where.
func (s *Server) waitForGoroutines(grace time.Duration) {
	done := make(chan struct{})
	go func() { // the waiter cannot be one of the goroutines it waits for
		s.goroutines.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-time.After(grace):
		s.log.Warn("stopping: still waiting for goroutines", "running", fmt.Sprint(s.goroutines.Running()))
	}
	<-done
}
