package main

// `plenum token`: make, list and revoke the admin API's tokens, the
// [[admin_token]] tables of the configuration file. A new token is
// printed once; the file gets only its hash. A running server applies
// the file's change by itself (it watches the file).

import (
	"bytes"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/internal/atomicfile"
)

const tokenUsage = `usage:
  plenum token create -name NAME -scope read|moderate|admin [-config FILE]
  plenum token list -config FILE
  plenum token revoke -config FILE NAME

create makes a token and prints it (once) and its [[admin_token]] table;
with -config it adds the table to FILE. revoke removes a token's table
from FILE (rewriting it as Plenum writes it: comments are not kept, the
previous version is FILE.bak). A running server applies either at once.`

func runToken(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(tokenUsage)
	}
	fs := flag.NewFlagSet("plenum token "+args[0], flag.ContinueOnError)
	configPath := fs.String("config", "", "the configuration `file` to change")
	name := fs.String("name", "", "the token's `name`, which the log shows for every change made with it")
	scope := fs.String("scope", "", "what the token may do: `read`, moderate or admin")
	fs.Usage = func() { fmt.Fprintln(fs.Output(), tokenUsage); fs.PrintDefaults() }
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "create":
		if fs.NArg() != 0 {
			return fmt.Errorf("unexpected argument %q", fs.Arg(0))
		}
		return createToken(*configPath, *name, *scope, stdout)
	case "list":
		cfg, err := loadForTokens(*configPath)
		if err != nil {
			return err
		}
		for _, t := range cfg.AdminTokens {
			fmt.Fprintf(stdout, "%s\t%s\n", t.Name, t.Scope)
		}
		return nil
	case "revoke":
		if fs.NArg() != 1 {
			return errors.New("revoke needs the token's name")
		}
		return revokeToken(*configPath, fs.Arg(0), stdout)
	}
	return fmt.Errorf("unknown token command %q\n%s", args[0], tokenUsage)
}

func loadForTokens(path string) (*conf.Config, error) {
	if path == "" {
		return nil, errors.New("-config FILE is needed")
	}
	return conf.Load(path)
}

func createToken(path, name, scope string, stdout io.Writer) error {
	token := "plenum_" + rand.Text()
	table := fmt.Sprintf("[[admin_token]]\nname = %q\nscope = %q\nhash = %q\n", name, scope, conf.HashAPIToken(token))
	// The table is checked as part of a file, whether or not one is
	// changed: a bad name or scope is refused before a token is shown.
	probe, err := conf.Parse([]byte(table), "the new token")
	if err != nil {
		return err
	}
	if path != "" {
		if err := addTable(path, probe.AdminTokens[0], table); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "token: %s\n\n", token)
	if path != "" {
		fmt.Fprintf(stdout, "Added to %s (only its hash):\n\n%s", path, table)
	} else {
		fmt.Fprintf(stdout, "Add this to the configuration file (it holds only the hash):\n\n%s", table)
	}
	return nil
}

// addTable appends the table to the file's text, so that its comments
// stay, once the result is known to load.
func addTable(path string, t conf.APIToken, table string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	cfg, err := conf.Parse(data, path)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(cfg.AdminTokens, func(x conf.APIToken) bool { return x.Name == t.Name }) {
		return fmt.Errorf("%s has a token named %q already", path, t.Name)
	}
	next := bytes.TrimRight(data, "\n")
	next = append(next, "\n\n"+table...)
	if _, err := conf.Parse(next, path); err != nil {
		return err
	}
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, next, info.Mode().Perm())
}

func revokeToken(path, name string, stdout io.Writer) error {
	cfg, err := loadForTokens(path)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(cfg.AdminTokens, func(t conf.APIToken) bool { return t.Name == name })
	if i < 0 {
		var names []string
		for _, t := range cfg.AdminTokens {
			names = append(names, t.Name)
		}
		return fmt.Errorf("%s has no token named %q (it has: %s)", path, name, strings.Join(names, ", "))
	}
	cfg.AdminTokens = slices.Delete(cfg.AdminTokens, i, i+1)
	if err := conf.WriteFile(path, cfg); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "token %q revoked in %s\n", name, path)
	return nil
}
