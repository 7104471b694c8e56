// Package page is the join page browsers load from the web listener,
// embedded so the server needs no files and no build step to serve it.
package page

import "embed"

// FS holds the page: index.html and the files it loads.
//
//go:embed *.html
var FS embed.FS
