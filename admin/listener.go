package admin

// The listener: a small HTTP server for the operator, on loopback by
// default. It serves Prometheus metrics at /metrics, and the status page
// and admin API (statuspage.go); who may use them is decided in auth.go.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/plenum-voice/plenum/conf"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server is what the listener shows and acts on: the voice server.
type Server interface {
	// Status takes a snapshot of the server for the operator; the
	// listener adds the summary.
	Status() Status
	// History is the server's recent past, for the page's charts.
	History() *History
	// FloorAction carries out a chair's action on the hall at path (e.g.
	// "Plenary") and says what was done; see the body of POST /api/floor.
	FloorAction(path, action, arg string) (string, error)
}

// Config is what New needs from the server.
type Config struct {
	Server Server
	// Settings returns the [server] settings in force. A reload swaps
	// them, so the listener reads name, admin_token and admin_hosts on
	// every request; admin_listen and data_dir are taken as they are
	// when New and Listen run.
	Settings func() *conf.Server
	// Tokens returns the admin API's [[admin_token]] tables in force (a
	// reload swaps them); nil when there are none to ask.
	Tokens func() []conf.APIToken
	// API is what /api/v1 acts on; nil leaves /api/v1 out.
	API API
	// Metrics are the server's own metrics; /metrics adds the Go
	// runtime's and the process's.
	Metrics prometheus.Collector
	// Log takes the listener's complaints. Some of net/http's name the
	// client, so it should be a log that hides addresses, as the
	// server's does.
	Log *slog.Logger
}

// Listener is the admin HTTP listener. Make it with New, bind it with
// Listen, run it with Serve.
type Listener struct {
	cfg Config
	// fileToken is the admin token generated in the data directory when
	// admin_token is not set, and tokenFile its path (auth.go); both are
	// set once in New.
	fileToken, tokenFile string
	handler              http.Handler
	ln                   net.Listener  // nil until Listen
	streams              chan struct{} // a token per open /api/events stream (statuspage.go)
	apiStreams           chan struct{} // a token per open /api/v1/events stream (api.go)
	apiPatterns          []string      // the /api/v1 patterns registered, for a test (api.go)
}

// New prepares the listener for the settings in force: it loads the
// admin token kept in the data directory, or generates it on first start,
// when admin_token is not set. It opens no socket.
func New(cfg Config) (*Listener, error) {
	l := &Listener{cfg: cfg, streams: make(chan struct{}, maxStatusStreams), apiStreams: make(chan struct{}, maxAPIStreams)}
	if err := l.prepareAccess(cfg.Settings()); err != nil {
		return nil, err
	}
	l.handler = l.newHandler()
	return l, nil
}

// Listen binds admin_listen.
func (l *Listener) Listen() error {
	ln, err := net.Listen("tcp", l.cfg.Settings().AdminListen)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	l.ln = ln
	return nil
}

// Addr is the address the listener is bound to, or the zero AddrPort
// before Listen.
func (l *Listener) Addr() netip.AddrPort {
	if l.ln == nil {
		return netip.AddrPort{}
	}
	return l.ln.Addr().(*net.TCPAddr).AddrPort()
}

// newHandler routes the listener's requests, each after the host check.
func (l *Listener) newHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		l.cfg.Metrics,
	)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", l.localOrOperator(promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slogPrinter{l.cfg.Log},
		MaxRequestsInFlight: 4, // a scrape walks every user; do not let many run at once
	})))
	l.routeStatus(mux)
	if l.cfg.API != nil {
		l.routeAPI(mux)
	}
	return l.checkHost(mux)
}

// Serve answers requests until ctx ends, then closes the listener and
// every connection, event streams included, and returns nil. Listen must
// have been called.
func (l *Listener) Serve(ctx context.Context) error {
	hs := &http.Server{
		Handler:           l.handler,
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		// Its own complaints ("http: panic serving ADDR: ...") name the
		// client: they go through the server's log, which hides addresses.
		ErrorLog: slog.NewLogLogger(l.cfg.Log.Handler(), slog.LevelWarn),
		// Requests live within ctx, so an event stream ends when the
		// server stops.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	served, closed := make(chan struct{}), make(chan struct{})
	go func() { // closes the HTTP server (and its idle connections) when ctx ends
		defer close(closed)
		select {
		case <-ctx.Done():
			hs.Close()
		case <-served:
		}
	}()
	err := hs.Serve(l.ln)
	close(served)
	<-closed
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// slogPrinter passes promhttp's error messages to the log.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Error("metrics", "err", fmt.Sprint(v...)) }
