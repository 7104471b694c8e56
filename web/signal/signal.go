// Package signal reads and writes Plenum's one message type of its own,
// 100: the WebRTC offer and answer between a browser and the server, as
// UTF-8 JSON in a Mumble frame on the browser's WebSocket.
package signal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Type is the Mumble message type of signalling.
const Type = 100

// MaxSize bounds a signalling message: an offer for one audio transceiver
// is a few kilobytes, with many candidates perhaps ten.
const MaxSize = 64 << 10

// Message is one signalling message.
type Message struct {
	Type    string `json:"type"`              // "offer", "answer" or "error"
	SDP     string `json:"sdp,omitempty"`     // offer and answer
	Message string `json:"message,omitempty"` // error
}

// Kinds of message.
const (
	Offer  = "offer"
	Answer = "answer"
	Error  = "error"
)

// Parse reads a message a browser sent. Only an offer is valid from a
// browser; anything else is an error saying what was wrong, meant for the
// log and for the browser, before its socket is closed.
func Parse(b []byte) (Message, error) {
	var m Message
	if len(b) > MaxSize {
		return m, fmt.Errorf("signalling message of %d bytes is over the limit of %d", len(b), MaxSize)
	}
	if !utf8.Valid(b) {
		return m, errors.New("signalling message is not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Message{}, fmt.Errorf("signalling message is not the expected JSON object: %v", err)
	}
	if dec.More() {
		return Message{}, errors.New("signalling message has data after its JSON object")
	}
	switch {
	case m.Type != Offer:
		return Message{}, fmt.Errorf("signalling message of type %q; a browser sends only %q", m.Type, Offer)
	case m.SDP == "":
		return Message{}, errors.New("offer without sdp")
	case !bytes.HasPrefix([]byte(m.SDP), []byte("v=0")):
		return Message{}, errors.New("offer whose sdp does not start with v=0")
	}
	return m, nil
}

// Marshal encodes a message for the browser.
func Marshal(m Message) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic("signal: marshalling strings failed: " + err.Error()) // cannot happen
	}
	return b
}
