package server

// The server's UDP sockets: one per core on the voice port, read and
// written in batches (internal/udpbatch). The kernel hashes each client
// address to one socket, so a sender's packets are always handled by the
// same goroutine, in order.

import (
	"runtime"

	"github.com/plenum-voice/plenum/internal/udpbatch"
	"github.com/plenum-voice/plenum/voice"
)

// batchSize is how many datagrams one recvmmsg moves, and the size of the
// small out batches of routers that forward little (tunnelled voice, the
// stage clock).
const batchSize = 64

// A UDP reader's out batch holds the copies of several incoming packets,
// so that copies for the same listener can be coalesced (see
// udpbatch.Batch): up to readerBatchSlots datagrams in up to
// readerBatchMsgs messages (about 1 MB of buffers per reader).
const (
	readerBatchMsgs  = 256
	readerBatchSlots = 1024
)

// maxDatagram is the largest datagram the voice path sends: a full
// plaintext plus the crypt header.
const maxDatagram = 1024 + 4

// udpReadBuffer is the receive buffer each socket asks for. A roomy one
// keeps bursts (and the pings that tell clients UDP works) from being
// dropped by the kernel; it cannot turn into queued, stale voice, because
// voice that waited too long is shed by its kernel arrival time.
const udpReadBuffer = 1 << 20

// udpSocket is one of the server's UDP sockets: a *udpbatch.Conn, or a
// stand-in in tests.
type udpSocket interface {
	udpbatch.Sender
	ReadBatch(ds []udpbatch.Datagram) (int, error)
	SetGSO(on bool)
	SendFailures() uint64
	Close() error
}

// listenUDP opens the voice sockets on addr, one per reader, and logs the
// socket options that could not be put in effect.
func (s *Server) listenUDP(addr string) ([]udpSocket, error) {
	conns, warnings, err := udpbatch.Listen(addr, udpReaders(), udpbatch.Options{
		ReadBuffer: udpReadBuffer,
		GSO:        s.cfg().UDPGSO,
	})
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		s.log.Warn("udp socket option not in effect", "option", w.Option, "err", w.Err, "effect", w.Effect)
	}
	socks := make([]udpSocket, len(conns))
	for i, c := range conns {
		socks[i] = c
	}
	return socks, nil
}

// setUDPGSO turns coalescing into UDP_SEGMENT messages on or off on every
// socket (udp_gso, which a reload may change).
func (s *Server) setUDPGSO(on bool) {
	for _, sock := range s.udpSocks {
		sock.SetGSO(on)
	}
}

// newRouter returns a router for a goroutine that forwards little
// (tunnelled voice, the stage clock), with a small out batch to sock.
func (s *Server) newRouter(sock udpSocket) *voice.Router {
	return s.voice.NewRouter(sock, batchSize, batchSize, maxDatagram)
}

// udpReaders is how many sockets (and reader goroutines) to open: one per
// core, since each reader decrypts, routes and encrypts its packets itself.
func udpReaders() int {
	return min(max(runtime.GOMAXPROCS(0), 1), 8)
}
