// Command plenum runs the Plenum voice server and its admin subcommands.
//
//	plenum                       run on the embedded default configuration
//	plenum -config plenary.toml  run on a TOML configuration file
//	plenum -listen 127.0.0.1:0   override the listen address (port 0: pick a free port)
//	plenum -data DIR             keep the certificate (and later the database) in DIR
//	plenum -print-default-config print the embedded default configuration
//	plenum check FILE            validate FILE and print its channel tree
//	plenum supw PASSWORD         set the SuperUser password (server running or not)
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/plenum-voice/plenum/conf"
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
		}
	}
	return runServer(args)
}

func runServer(args []string) error {
	fs := flag.NewFlagSet("plenum", flag.ContinueOnError)
	configPath := fs.String("config", "", "TOML configuration `file` (default: the embedded default)")
	dataDir := fs.String("data", "", "data `directory` for the certificate and state (overrides the config)")
	listen := fs.String("listen", "", "`host:port` to listen on, TCP and UDP (overrides the config)")
	printDefault := fs.Bool("print-default-config", false, "print the embedded default configuration and exit")
	debug := fs.Bool("debug", false, "log debug messages")
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
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	cfg := conf.Default()
	if *configPath != "" {
		var err error
		if cfg, err = conf.Load(*configPath); err != nil {
			return err
		}
	}
	srv, err := server.New(server.Options{Config: cfg, Listen: *listen, DataDir: *dataDir, Logger: log})
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	source := *configPath
	if source == "" {
		source = "embedded default"
	}
	log.Info("plenum listening", "addr", srv.Addr().String(), "tcp", true, "udp", true, "config", source, "version", server.VersionString())
	err = srv.Serve(ctx)
	log.Info("plenum stopped")
	return err
}
