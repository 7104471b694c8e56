// Package udppb is the generated Go code for MumbleUDP.proto, the protobuf
// UDP voice format of Mumble 1.5+ (package MumbleUDP on the wire).
//
// Do not edit MumbleUDP.pb.go; change ../MumbleUDP.proto and run
// `go generate ./proto`. The voice path does not use this package: package
// voice has hand-written, allocation-free codecs whose tests are checked
// against it.
package udppb
