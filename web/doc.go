// Package web is the browser's side of the server's front door: one TCP
// port that speaks HTTPS and plain HTTP (told apart by the first byte),
// serving the embedded join page and the WebSocket that carries a
// browser's Mumble control connection, one Mumble frame per message.
//
// It knows nothing of users or voice: the server hands it the page, the
// certificate, who may open a WebSocket, and what to do with one that
// opened (see Handler). WebRTC is in web/rtc, the signalling messages in
// web/signal.
package web
