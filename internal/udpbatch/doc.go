// Package udpbatch provides UDP sockets that read and write in batches.
//
// On Linux a Conn reads with recvmmsg into buffers the caller keeps,
// giving each datagram's sender and the kernel's arrival time, and writes
// with sendmmsg. A Batch collects outgoing datagrams in slots it owns and
// coalesces runs of same-size datagrams for one address into one message
// that the kernel cuts into datagrams (UDP_SEGMENT, "GSO"), so the
// kernel's per-datagram send path is walked once per run. Listen opens
// several sockets on one port (SO_REUSEPORT): the kernel hashes each
// sender's address to one of them, so one goroutine per socket reads a
// sender's datagrams in order. In steady state nothing is allocated per
// datagram, read or written.
//
// Elsewhere Listen opens one socket, which reads and writes a datagram per
// system call, without arrival times and without segmentation offload.
//
// A read loop whose reads keep failing paces itself with a Backoff.
package udpbatch
