// Package crypto implements the OCB2-AES128 voice-channel encryption that
// Mumble clients and Murmur use for UDP packets, bit for bit.
//
// What it provides: AES-128 confidentiality for each voice packet and a
// per-packet authenticity check. OCB2 computes a 128-bit tag, but Mumble puts
// only 24 bits of it on the wire to save bandwidth, so a blind forgery
// succeeds with probability 2^-24 per attempt. That is acceptable for
// short-lived audio, not for anything that needs long-term integrity.
// Each packet carries one byte of the sender's 128-bit nonce counter; the
// receiver reconstructs the rest, tolerates loss, accepts packets up to 29
// positions late, and keeps a 256-entry history so that a packet can't be
// replayed.
//
// Why the XEX* countermeasure exists: Inoue et al. (eprint 2019/311) showed
// that OCB2 is broken. Suppose a message's second-to-last plaintext block is
// the encoding of "one full final block" (15 zero bytes, then a length
// byte). An attacker who knows that plaintext and sees its ciphertext can
// build a different packet that authenticates, and the paper extends this to
// recovering plaintext. Mumble therefore changes byte 0 of such a plaintext block from
// 0x00 to 0x01 before encrypting it (the pattern is common in digital
// silence, so rejecting those packets would drop audio). On the receiving side
// it rejects any packet whose final block has the attack's shape. A peer that
// follows the protocol never produces a rejected packet, but the receiver can
// see a payload that differs in that one byte from what the sender had.
//
// Packet layout: byte 0 is the low byte of the sender's nonce after it is
// incremented, bytes 1..3 are the first three tag bytes, and the ciphertext
// follows. It is the same length as the plaintext (Overhead is 4).
package crypto
