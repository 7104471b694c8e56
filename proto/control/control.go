// Package control implements the framing and message typing of Mumble's TCP
// control channel, plus Mumble's two version number encodings.
//
// Every frame is a 2-byte big-endian type, a 4-byte big-endian payload
// length and the payload. The payload is a protobuf message from
// mumblepb, except for UDPTunnel (type 1), whose payload is a raw UDP voice
// plaintext handled by package voice. Type numbers are only ever appended by
// Mumble, so an unknown type is not an error of the peer: Murmur ignores it,
// and callers should too.
package control

import (
	"errors"
	"strconv"
)

// Type is the message type number in a frame header.
type Type uint16

// The TCP message types, numbered as in Mumble.
const (
	Version                Type = 0
	UDPTunnel              Type = 1
	Authenticate           Type = 2
	Ping                   Type = 3
	Reject                 Type = 4
	ServerSync             Type = 5
	ChannelRemove          Type = 6
	ChannelState           Type = 7
	UserRemove             Type = 8
	UserState              Type = 9
	BanList                Type = 10
	TextMessage            Type = 11
	PermissionDenied       Type = 12
	ACL                    Type = 13
	QueryUsers             Type = 14
	CryptSetup             Type = 15
	ContextActionModify    Type = 16
	ContextAction          Type = 17
	UserList               Type = 18
	VoiceTarget            Type = 19
	PermissionQuery        Type = 20
	CodecVersion           Type = 21
	UserStats              Type = 22
	RequestBlob            Type = 23
	ServerConfig           Type = 24
	SuggestConfig          Type = 25
	PluginDataTransmission Type = 26
)

// numTypes is one past the highest known type.
const numTypes = 27

var typeNames = [numTypes]string{
	"Version", "UDPTunnel", "Authenticate", "Ping", "Reject", "ServerSync",
	"ChannelRemove", "ChannelState", "UserRemove", "UserState", "BanList",
	"TextMessage", "PermissionDenied", "ACL", "QueryUsers", "CryptSetup",
	"ContextActionModify", "ContextAction", "UserList", "VoiceTarget",
	"PermissionQuery", "CodecVersion", "UserStats", "RequestBlob",
	"ServerConfig", "SuggestConfig", "PluginDataTransmission",
}

// String returns the Mumble name of t, or "Type(n)" for an unknown type so
// that log lines stay meaningful for types added by newer peers.
func (t Type) String() string {
	if t < numTypes {
		return typeNames[t]
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// Known reports whether t is a type this package knows (including
// UDPTunnel).
func (t Type) Known() bool { return t < numTypes }

// HeaderSize is the size of a frame header: type (2 bytes) and length (4).
const HeaderSize = 6

// MaxPayload is the largest payload Murmur accepts; a peer that announces a
// larger one is disconnected, and Murmur refuses to send one.
const MaxPayload = 0x7fffff

var (
	// ErrTooLarge reports a payload length above MaxPayload. On read it
	// means the peer must be disconnected: the stream cannot be
	// resynchronised without reading the oversized body.
	ErrTooLarge = errors.New("control: payload larger than MaxPayload")
	// ErrUnknownType reports a type with no protobuf message: UDPTunnel or a
	// number this package does not know. Such frames are to be ignored, not
	// treated as a protocol violation.
	ErrUnknownType = errors.New("control: no protobuf message for this type")
)
