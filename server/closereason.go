package server

// Why connections end, in a fixed vocabulary. A Go network error names
// both ends of the connection in its text ("read tcp
// 192.0.2.1:64738->198.51.100.7:51234: read: connection reset by peer"),
// so it must never become a log line. conn.close therefore takes a
// closeReason, never an error: the only way from a network error to a
// connection's ending is through the reductions below, and what the log
// says about an ending is one of these words (see disconnect).

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/plenum-voice/plenum/proto/control"
)

// closeReason is why a connection ended (or was refused at accept).
type closeReason uint8

const (
	reasonNone               closeReason = iota // still open
	reasonEOF                                   // the client hung up
	reasonReset                                 // the connection was reset or broke
	reasonTimeout                               // an authenticated client sent nothing within timeout
	reasonHandshakeTimeout                      // no TLS handshake and Authenticate within handshake_timeout
	reasonTLS                                   // the TLS handshake or a TLS record failed
	reasonTooLarge                              // a message above the size limit
	reasonStuck                                 // a write did not finish within writeTimeout: the client stopped reading
	reasonQueueOverflow                         // the control queue overflowed: the client stopped reading
	reasonRejected                              // authentication refused with a Reject
	reasonReplaced                              // the same user logged in again (a ghost)
	reasonKicked                                // kicked by a moderator
	reasonBanned                                // on the ban list at connect, or kicked with a ban
	reasonAutobanned                            // refused at accept: the address is autobanned
	reasonUnauthenticatedCap                    // refused at accept: max_unauthenticated_per_ip
	reasonShutdown                              // the server is stopping
	reasonShutdownCut                           // the server is stopping and the client did not hang up in time
	reasonInternal                              // the server failed (no randomness for a key)
	reasonError                                 // another network error
	reasonSignalling                            // a browser sent bad WebRTC signalling (web.go)
	reasonWebRTCEnded                           // a browser's WebRTC connection failed or closed
)

var reasonNames = [...]string{
	reasonNone:               "none",
	reasonEOF:                "eof",
	reasonReset:              "reset",
	reasonTimeout:            "timeout",
	reasonHandshakeTimeout:   "handshake_timeout",
	reasonTLS:                "tls",
	reasonTooLarge:           "too_large",
	reasonStuck:              "stuck",
	reasonQueueOverflow:      "queue_overflow",
	reasonRejected:           "rejected",
	reasonReplaced:           "replaced",
	reasonKicked:             "kicked",
	reasonBanned:             "banned",
	reasonAutobanned:         "autobanned",
	reasonUnauthenticatedCap: "unauthenticated_cap",
	reasonShutdown:           "shutdown",
	reasonShutdownCut:        "shutdown_cut",
	reasonInternal:           "internal",
	reasonError:              "error",
	reasonSignalling:         "bad_signalling",
	reasonWebRTCEnded:        "webrtc_ended",
}

func (r closeReason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "error"
}

// ioReason reduces an error from reading or writing a connection to the
// vocabulary.
func ioReason(err error) closeReason {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return reasonEOF
	case errors.As(err, &ne) && ne.Timeout():
		return reasonTimeout
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		return reasonReset
	case isTLSError(err):
		return reasonTLS
	}
	return reasonError
}

// isTLSError reports whether err is crypto/tls's: a record that is not
// TLS, or an alert received or sent (crypto/tls reports alerts as
// *net.OpError "remote error" or "local error", without addresses).
func isTLSError(err error) bool {
	var rh tls.RecordHeaderError
	var oe *net.OpError
	return errors.As(err, &rh) ||
		errors.As(err, &oe) && (oe.Op == "remote error" || oe.Op == "local error")
}

// readReason is why a read ended the connection. Before login the read
// deadline is the handshake deadline.
func readReason(err error, loggedIn bool) closeReason {
	if errors.Is(err, control.ErrTooLarge) {
		return reasonTooLarge
	}
	r := ioReason(err)
	if r == reasonTimeout && !loggedIn {
		return reasonHandshakeTimeout
	}
	return r
}

// writeReason is why a write ended the connection: one that times out
// means the client stopped reading.
func writeReason(err error) closeReason {
	if r := ioReason(err); r != reasonTimeout {
		return r
	}
	return reasonStuck
}

// handshakeReason is why a TLS handshake failed.
func handshakeReason(err error) closeReason {
	if ioReason(err) == reasonTimeout {
		return reasonHandshakeTimeout
	}
	return reasonTLS
}

// tlsDetail says what went wrong in a failed TLS handshake, for the debug
// log, without an address: crypto/tls's own words ("tls: first record
// does not look like a TLS handshake", "remote error: tls: bad
// certificate"), or the reason word when the network failed underneath.
func tlsDetail(err error) string {
	var rh tls.RecordHeaderError
	var oe *net.OpError
	switch {
	case errors.As(err, &rh):
		return rh.Error()
	case errors.As(err, &oe) && oe.Source == nil && oe.Addr == nil && !mayNameAddress(oe.Err):
		return oe.Error() // an alert
	case !mayNameAddress(err):
		return err.Error()
	}
	return ioReason(err).String()
}

// mayNameAddress reports whether err is or wraps an error whose text may
// name a network address: every net.Error (*net.OpError,
// *net.DNSError, *url.Error, ...) and the parse and address errors of
// package net.
func mayNameAddress(err error) bool {
	var ne net.Error
	var ae *net.AddrError
	var pe *net.ParseError
	return errors.As(err, &ne) || errors.As(err, &ae) || errors.As(err, &pe)
}
