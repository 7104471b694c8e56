package web

import (
	"crypto/sha1"
	"encoding/hex"
)

// A browser has no client certificate, by which a Mumble client that
// reconnects (after a network change, say) is known and replaces its old
// session at once. The join page therefore makes a random key per tab,
// kept in the tab's sessionStorage only, and sends it with every
// WebSocket it opens (/ws?rejoin=KEY). The server gives the browser the
// identity RejoinIdentity(key) in place of a certificate hash, so that a
// page that lost its connection comes back at once, as the same person,
// instead of finding its name in use until the old session times out.
// The key is never stored or logged, and a new tab is a new person.

// rejoinKeyLen is the length of a key in hex: 128 random bits.
const rejoinKeyLen = 32

// RejoinKey is s if it is a rejoin key (32 lower-case hex digits), else "".
func RejoinKey(s string) string {
	if len(s) != rejoinKeyLen {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return ""
		}
	}
	return s
}

// RejoinIdentity is what stands for a certificate hash for a browser that
// sent key: 40 hex digits, as a certificate's SHA-1, but of the key in
// its own namespace, so that it can be neither a certificate's hash nor
// turned back into the key that others would need to take it over.
func RejoinIdentity(key string) string {
	sum := sha1.Sum([]byte("plenum rejoin key " + key))
	return hex.EncodeToString(sum[:])
}
