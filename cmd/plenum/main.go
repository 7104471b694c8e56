// Command plenum runs the Plenum voice server and its admin subcommands.
//
//	plenum                       run on the embedded default configuration
//	plenum -config plenary.toml  run on a TOML configuration file
//	plenum -listen 127.0.0.1:0   override the listen address (port 0: pick a free port)
//	plenum -data DIR             keep the certificate (and later the database) in DIR
//	plenum -print-default-config print the embedded default configuration
//	plenum check FILE            validate FILE and print its channel tree
//	plenum supw PASSWORD         set the SuperUser password (server running or not)
//	plenum acl explain ...       why a user may or may not do something in a channel
//	plenum import-murmur DB      convert a Murmur database to TOML, users and bans
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"sync/atomic"
	"syscall"

	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/internal/systemd"
	"github.com/plenum-voice/plenum/server"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "plenum:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "check":
			return runCheck(args[1:], os.Stdout)
		case "supw":
			return runSupw(args[1:], os.Stdout)
		case "acl":
			return runACL(args[1:], os.Stdout)
		case "import-murmur":
			return runImportMurmur(args[1:], os.Stdout)
		case "token":
			return runToken(args[1:], os.Stdout)
		case "ctl":
			return runCtl(args[1:], os.Stdout)
		}
	}
	return runServer(args)
}

func runServer(args []string) error {
	fs := flag.NewFlagSet("plenum", flag.ContinueOnError)
	configPath := fs.String("config", "", "TOML configuration `file` (default: the embedded default)")
	dataDir := fs.String("data", "", "data `directory` for the certificate and state (overrides the config)")
	listen := fs.String("listen", "", "`host:port` to listen on, TCP and UDP (overrides the config)")
	adminListen := fs.String("admin-listen", "", "`host:port` of the admin HTTP listener (status page, API, /metrics), or \"off\" (overrides the config)")
	webListen := fs.String("web-listen", "", "`host:port` of the web listener (the join page for browsers), or \"off\" (overrides the config)")
	printDefault := fs.Bool("print-default-config", false, "print the embedded default configuration and exit")
	debug := fs.Bool("debug", false, "log debug messages")
	clusterEmbedded := fs.Bool("cluster-embedded", false, "run an embedded NATS server for the [cluster] (as embedded = true; a cluster named \"plenum\" if the file names none)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to `file` (for performance work)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *printDefault {
		_, err := os.Stdout.Write(conf.DefaultTOML())
		return err
	}

	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, logOptions(level)))

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	cfg, err := loadConfig(*configPath, *dataDir)
	if err != nil {
		return err
	}
	if *clusterEmbedded {
		cfg.Cluster.Embedded = true
		if cfg.Cluster.Name == "" {
			cfg.Cluster.Name = "plenum"
		}
	}
	// The cluster's log lines go through the server's privacy filter, as
	// the server's own do (this command's lines name only the server's
	// own addresses); until the server runs, the file's log_ips decides.
	var running atomic.Pointer[server.Server]
	clusterLog := server.PrivateLogger(log, func() bool {
		if srv := running.Load(); srv != nil {
			return srv.LogIPs()
		}
		return cfg.Server.LogIPs
	})
	node, leaveCluster, err := joinCluster(cfg, *dataDir, clusterLog)
	if err != nil {
		return err
	}
	defer leaveCluster()
	opts := server.Options{Config: cfg, Listen: *listen, AdminListen: *adminListen, WebListen: *webListen, DataDir: *dataDir, Logger: log}
	if node != nil {
		opts.Cluster = node
	}
	srv, err := server.New(opts)
	if err != nil {
		return err
	}
	running.Store(srv)
	if err := srv.Listen(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, func() {
		// The server now drains (at most shutdown_timeout); a second
		// signal ends the process at once.
		stop()
		notify(log, systemd.Stopping)
		log.Info("stopping: telling clients, writing what is pending")
	})
	// SIGHUP is caught from here on: READY=1 below lets systemd send it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go reloadOnHangup(ctx, srv, hup, log)
	source := cfg.File
	if source == "" {
		source = "embedded default"
	}
	log.Info("plenum listening", "addr", srv.Addr().String(), "tcp", true, "udp", true, "config", source, "version", server.VersionString(), "build", server.Build())
	notify(log, systemd.Ready+"\n"+systemd.Status("listening on "+srv.Addr().String()))
	if a := srv.AdminAddr(); a.IsValid() {
		token := "admin_token in the configuration"
		if f := srv.AdminTokenFile(); f != "" {
			token = f
		}
		log.Info("admin listener", "status_page", "http://"+a.String()+"/", "token", token, "metrics", "http://"+a.String()+"/metrics")
	}
	if a := srv.WebAddr(); a.IsValid() {
		udp, tcp := srv.WebRTCAddrs()
		log.Info("web listener (browsers)", "page", "https://"+a.String()+"/", "webrtc_udp", udp.String(), "webrtc_tcp", tcp.String())
	}
	err = srv.Serve(ctx)
	log.Info("plenum stopped")
	return err
}

// loadConfig reads -config FILE; without it, the plenum.toml the server
// keeps in its data directory (where client edits of the embedded default
// are written), or else the embedded default.
func loadConfig(path, dataDir string) (*conf.Config, error) {
	if path != "" {
		return conf.Load(path)
	}
	if dataDir == "" {
		dataDir = conf.Default().Server.DataDir
	}
	kept := filepath.Join(dataDir, server.DefaultConfigFile)
	if _, err := os.Stat(kept); err == nil {
		return conf.Load(kept)
	}
	return conf.Default(), nil
}

// logOptions are the log's settings. Under systemd, whose journal stamps
// every line it receives, the log leaves out a time of its own.
func logOptions(level slog.Level) *slog.HandlerOptions {
	opts := &slog.HandlerOptions{Level: level}
	if systemd.IsJournal(os.Stderr) {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return opts
}

// notify tells systemd (Type=notify) how the server is doing; outside
// systemd it does nothing.
func notify(log *slog.Logger, state string) {
	if _, err := systemd.Notify(state); err != nil {
		log.Warn("could not tell systemd", "state", state, "err", err)
	}
}

// reloadOnHangup reloads the configuration on SIGHUP until ctx ends,
// telling systemd when a reload starts and when it is done.
func reloadOnHangup(ctx context.Context, srv *server.Server, hup <-chan os.Signal, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			notify(log, systemd.Reloading())
			srv.Reload() // logs what it did or why not
			notify(log, systemd.Ready)
		}
	}
}
