// Package admin is the operator's HTTP listener: the status page, its JSON
// API and event stream, Prometheus metrics, the admin API (/api/v1, with
// scoped tokens and its OpenAPI document), and who may use them.
//
// It knows the voice server only through the small Server interface (what
// to show, and the chair's floor actions) and the metrics collector it is
// given; the server builds the Status under its own lock. The admin API
// acts through the API interface, which the server implements by handing
// each change to the handler of the same change from a Mumble client.
// The listener is made with New when the server is made, bound with
// Listen and run with Serve until the server stops.
package admin
