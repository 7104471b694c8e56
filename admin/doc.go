// Package admin is the operator's HTTP listener: the status page, its JSON
// API and event stream, Prometheus metrics, and who may use them.
//
// It knows the voice server only through the small Server interface (what
// to show, and the chair's floor actions) and the metrics collector it is
// given; the server builds the Status under its own lock. The listener is
// made with New when the server is made, bound with Listen and run with
// Serve until the server stops.
package admin
