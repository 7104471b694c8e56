package server

// The admin HTTP listener: a small HTTP server for the operator, on
// loopback by default. It serves Prometheus metrics at /metrics, and the
// status page and admin API (statuspage.go); who may use them is decided
// in adminauth.go.

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NoAdmin as Options.AdminListen turns the admin listener off whatever the
// configuration says.
const NoAdmin = "off"

// listenAdmin binds the admin listener if one is configured.
func (s *Server) listenAdmin() error {
	addr := s.cfg().AdminListen
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	s.adminLn = ln
	return nil
}

// AdminAddr is the address of the admin listener, or the zero AddrPort
// when there is none.
func (s *Server) AdminAddr() netip.AddrPort {
	if s.adminLn == nil {
		return netip.AddrPort{}
	}
	return s.adminLn.Addr().(*net.TCPAddr).AddrPort()
}

// adminHandler routes the admin listener's requests, each after the host
// check.
func (s *Server) adminHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newMetricsCollector(s),
	)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.localOrOperator(promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slogPrinter{s},
		MaxRequestsInFlight: 4, // a scrape walks every user; do not let many run at once
	})))
	s.routeStatus(mux)
	return s.checkHost(mux)
}

// serveAdmin runs the admin HTTP server until the listener closes.
func (s *Server) serveAdmin() {
	defer s.wg.Done()
	hs := &http.Server{
		Handler:           s.adminHandler(),
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		// Its own complaints ("http: panic serving ADDR: ...") name the
		// client: they go through the server's log, which hides addresses.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	defer close(done)
	s.wg.Add(1)
	go func() { // closes the HTTP server (and its idle connections) at shutdown
		defer s.wg.Done()
		select {
		case <-s.closing:
			hs.Close()
		case <-done:
		}
	}()
	if err := hs.Serve(s.adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("admin listener failed", "err", err)
	}
}

// slogPrinter passes promhttp's error messages to the server's log.
type slogPrinter struct{ s *Server }

func (p slogPrinter) Println(v ...any) { p.s.log.Error("metrics", "err", fmt.Sprint(v...)) }
