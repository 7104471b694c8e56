// Package mumblepb is the generated Go code for Mumble.proto, the messages of
// Mumble's TCP control channel (package MumbleProto on the wire).
//
// Do not edit Mumble.pb.go; change ../Mumble.proto and run
// `go generate ./proto`. Framing and the type numbers that select a message
// are in package control.
package mumblepb
