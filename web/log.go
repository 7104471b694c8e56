package web

import (
	"io"
	"log"
)

// quietLog drops the HTTP server's own messages: they name client
// addresses ("http: TLS handshake error from 192.0.2.7:...").
var quietLog = log.New(io.Discard, "", 0)
