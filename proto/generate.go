// Package proto holds Plenum's Mumble protocol definitions.
//
// Mumble.proto (the TCP control messages) and MumbleUDP.proto (the 1.5+
// protobuf voice format) are Plenum's own wire-compatible descriptions of
// Mumble's protocol; their generated Go code lives in the mumblepb and udppb
// subpackages and is committed, so a normal build needs neither protoc nor
// protoc-gen-go. The hand-written codecs are in control (TCP framing, message
// types, versions) and voice (allocation-free UDP packet codecs).
//
// This package itself has no code: it exists so that `go generate ./proto`
// regenerates both files with the module-relative output layout.
package proto

//go:generate protoc --go_out=. --go_opt=module=github.com/plenum-voice/plenum/proto Mumble.proto MumbleUDP.proto
