package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/plenum-voice/plenum/conf"
)

// runCheck implements `plenum check FILE`: validate a configuration and
// print the channel tree it describes, so an admin can see what users
// will see before restarting or reloading.
func runCheck(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("plenum check", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: plenum check FILE\n\nValidates FILE and prints the channel tree it describes, then notes on\n"+
			"ACL entries and groups that Murmur accepts but that do not do what they look like.")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("check needs exactly one file")
	}
	cfg, err := conf.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	printTree(stdout, cfg)
	// Accepted, as Murmur accepts them from its ACL editor, but probably
	// not what the author meant.
	if notes := cfg.Notes(); len(notes) > 0 {
		fmt.Fprintln(stdout)
		for _, n := range notes {
			fmt.Fprintln(stdout, "note:", n)
		}
	}
	return nil
}

// printTree writes the channel tree with the ids the server will assign.
func printTree(w io.Writer, cfg *conf.Config) {
	s := cfg.Server
	fmt.Fprintf(w, "%s: valid\n", displayName(cfg))
	fmt.Fprintf(w, "listen %s, max %d users, %d per channel (0 = no cap), %d bit/s per user, timeout %v\n",
		s.Listen, s.MaxUsers, s.UsersPerChannel, s.Bandwidth, s.Timeout.Duration)
	fmt.Fprintf(w, "\n[0] %s (root)\n", s.Name)
	links := map[string][]string{} // links are symmetric, whichever side declared them
	for _, pair := range cfg.LinkPairs() {
		links[pair[0]] = append(links[pair[0]], pair[1])
		links[pair[1]] = append(links[pair[1]], pair[0])
	}
	id := uint32(0)
	depth := map[string]int{"": 0}
	cfg.Walk(func(path string, ch *conf.Channel, parent string) {
		id++
		d := depth[parent] + 1
		depth[path] = d
		var notes []string
		if path == s.DefaultChannel {
			notes = append(notes, "default channel")
		}
		if ch.MaxUsers > 0 {
			notes = append(notes, fmt.Sprintf("max %d users", ch.MaxUsers))
		}
		if l := links[path]; len(l) > 0 {
			notes = append(notes, "linked with "+strings.Join(l, ", "))
		}
		line := fmt.Sprintf("%s[%d] %s", strings.Repeat("    ", d), id, ch.Name)
		if len(notes) > 0 {
			line += "  (" + strings.Join(notes, "; ") + ")"
		}
		fmt.Fprintln(w, line)
	})
}

func displayName(cfg *conf.Config) string {
	if cfg.File == "" {
		return "embedded default"
	}
	return cfg.File
}
