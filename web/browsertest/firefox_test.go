package browsertest

import "testing"

// TestFirefoxTalksAndHears runs browserAndMumble in Firefox ESR, whose
// microphone is its built-in fake stream (media.navigator.streams.fake:
// a 1000 Hz tone). Its WebRTC goes to the machine's own non-loopback
// address: Firefox ignores a peer's loopback candidates (even with
// media.peerconnection.ice.loopback), while the page still comes from
// http://localhost, a secure context.
func TestFirefoxTalksAndHears(t *testing.T) {
	tb := firefox(t)
	e := startServerAnnouncing(t, hallConfig(t), externalAddr(t))
	browserAndMumble(t, e, tb, "firefox")
}
