// Package voice is the voice engine: it routes each speaker's packets to
// everyone who hears them, reading only an immutable snapshot of who hears
// whom, and hands each copy to the listener's transport.
//
// The path of a Mumble client's voice packet over UDP, socket to socket:
//
//  1. internal/udpbatch reads a batch of datagrams with recvmmsg, each
//     with the kernel's arrival time (conn_linux.go).
//  2. The UDP transport's reader (server/udp.go, udpLoop) sheds datagrams
//     that waited too long in the socket while it is overloaded.
//  3. It finds the sender by address, or by trial decryption among the
//     clients of that IP, and decrypts with the sender's CryptState
//     (crypto/); pings are answered there (handleDatagram).
//  4. Engine.Route (engine.go) takes the snapshot the control plane last
//     published, drops voice of a silenced speaker, decodes the packet in
//     the speaker's format and applies the bandwidth limit
//     (bandwidth.go). Normal speech in a channel with a stage goes to the
//     stage (package stage) instead, which emits on its 20 ms tick
//     through a Ticker (tick.go) and rejoins the path at step 6.
//  5. Router.resolve (router.go) collects the listeners: the channel's
//     members and listeners, linked channels, or a whisper target's
//     users and channels, as the snapshot's permissions allow.
//  6. Router.encoded encodes the packet once per listener format,
//     context and positional variant, and Router.deliver hands each
//     listener its copy through its Peer, counting it by the path the
//     peer reports (counters.go).
//  7. A Mumble client's Peer (server/user.go) encrypts the copy into a
//     slot of the router's udpbatch.Batch while its UDP path is alive, or
//     queues it on its TCP connection (server/conn.go) otherwise.
//  8. When the reader has handled its batch, it flushes the router's
//     batch: copies of one size for one listener leave as one segmented
//     message (UDP GSO), all of them in one sendmmsg
//     (internal/udpbatch/batch.go).
//
// Voice tunnelled over a client's TCP connection (server/handlers.go)
// enters at step 4. A new transport (a browser, another node) is a Peer
// for its listeners and calls Route for its speakers; nothing in the
// router changes.
//
// Nothing here takes a lock the control plane holds: the engine reads
// snapshots through an atomic pointer, each routing goroutine owns its
// Router (scratch space, outgoing batch, counters), and a peer's own
// state (a CryptState's encrypt half, a queue) has its own lock. Routing
// a packet allocates nothing in steady state (TestRouteAllocatesNothing,
// and server's TestForwardAllocatesNothing for the whole path).
package voice
