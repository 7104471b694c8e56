package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/store"
)

// runSupw implements `plenum supw PASSWORD`: set the SuperUser password in
// the data directory's database. It works while the server runs (SQLite
// lets the two share the file) and takes effect at the next login.
func runSupw(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("plenum supw", flag.ContinueOnError)
	configPath := fs.String("config", "", "TOML configuration `file` (for its data_dir)")
	dataDir := fs.String("data", "", "data `directory` (overrides the config)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: plenum supw [-config FILE] [-data DIR] PASSWORD\n\nSets the SuperUser password; an empty PASSWORD removes it.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("supw needs exactly one password")
	}
	dir, err := resolveDataDir(*configPath, *dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	st, err := store.Open(filepath.Join(dir, "plenum.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.SetPassword(store.SuperUserID, fs.Arg(0)); err != nil {
		return err
	}
	if fs.Arg(0) == "" {
		fmt.Fprintln(stdout, "SuperUser password removed")
	} else {
		fmt.Fprintln(stdout, "SuperUser password set")
	}
	return nil
}

// resolveDataDir is the data directory the server would use with these
// flags.
func resolveDataDir(configPath, dataDir string) (string, error) {
	if dataDir != "" {
		return dataDir, nil
	}
	cfg := conf.Default()
	if configPath != "" {
		var err error
		if cfg, err = conf.Load(configPath); err != nil {
			return "", err
		}
	}
	return cfg.Server.DataDir, nil
}
