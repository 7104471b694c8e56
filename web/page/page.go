// Package page is the join page that the web listener serves to browsers:
// plain HTML, CSS and JavaScript without a framework or a build step,
// embedded in the binary. The page is a Mumble client over the web
// listener's WebSocket (one Mumble TCP frame per message) and talks and
// listens over WebRTC (docs/WEB.md).
package page

import "embed"

// FS holds the page: index.html and the files it loads.
//
//go:embed index.html style.css mumble.js app.js
var FS embed.FS
