package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/store"
)

// runCheck implements `plenum check FILE`: validate a configuration and
// print the channel tree it describes, so an admin can see what users
// will see before restarting or reloading.
func runCheck(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("plenum check", flag.ContinueOnError)
	dataDir := fs.String("data", "", "data `directory` whose database holds the channel ids (default: the file's data_dir)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: plenum check [-data DIR] FILE

Validates FILE and prints the channel tree it describes, with the channel
ids the server will use: those recorded in the data directory's database
(it is only read), or, without one, the ids a first start gives; then
notes on ACL entries and groups that Murmur accepts but that do not do
what they look like.`)
		fs.PrintDefaults()
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
	dir := *dataDir
	if dir == "" {
		dir = cfg.Server.DataDir
	}
	dbPath := filepath.Join(dir, "plenum.db")
	printTree(stdout, cfg, numberChannels(cfg, dbPath))
	// Accepted, as Murmur accepts them from its ACL editor, but probably
	// not what the author meant.
	var notes []string
	for _, n := range cfg.Notes() {
		notes = append(notes, n.Error())
	}
	notes = append(notes, unregisteredNames(cfg, dbPath)...)
	if len(notes) > 0 {
		fmt.Fprintln(stdout)
		for _, n := range notes {
			fmt.Fprintln(stdout, "note:", n)
		}
	}
	return nil
}

// unregisteredNames notes the user names the ACLs list that nobody has
// registered in the database at dbPath (it is only read): the server
// keeps them, and they match nobody until someone registers under them.
func unregisteredNames(cfg *conf.Config, dbPath string) []string {
	type listed struct{ name, where string }
	var names []listed
	seen := map[string]bool{}
	add := func(where string, groups map[string]*conf.Group, entries []conf.ACLEntry) {
		var list []string
		for _, g := range groups {
			if g != nil {
				list = append(append(list, g.Add...), g.Remove...)
			}
		}
		sort.Strings(list)
		for _, e := range entries {
			if e.User != "" {
				list = append(list, e.User)
			}
		}
		for _, n := range list {
			if key := store.NameKey(n); !seen[key] {
				seen[key] = true
				names = append(names, listed{n, where})
			}
		}
	}
	add("the root channel", cfg.Groups, cfg.ACL)
	cfg.Walk(func(path string, ch *conf.Channel, _ string) { add(strconv.Quote(path), ch.Groups, ch.ACL) })
	if len(names) == 0 {
		return nil
	}
	st, err := store.OpenReadOnly(dbPath)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, store.ErrNotFound):
		return []string{fmt.Sprintf("no database at %s yet, so none of the %d user names the ACLs list is registered; each matches nobody until someone registers under it", dbPath, len(names))}
	case err != nil:
		return []string{fmt.Sprintf("which of the user names the ACLs list are registered is unknown (%v)", err)}
	}
	defer st.Close()
	var out []string
	for _, n := range names {
		_, err := st.UserByName(n.name)
		switch {
		case errors.Is(err, store.ErrNotFound):
			out = append(out, fmt.Sprintf("%q (in the ACL of %s) is not registered: the name matches nobody until someone registers under it, and then counts at once", n.name, n.where))
		case err != nil:
			return append(out, fmt.Sprintf("looking up %q failed: %v", n.name, err))
		}
	}
	return out
}

// channelNumbers are the ids the server will give a configuration's
// channels, as far as they can be known without it.
type channelNumbers struct {
	ids   map[string]uint32 // by path; nil when they cannot be known
	fresh map[string]bool   // paths the database has no id for yet
	about string            // where the ids come from, or why they are unknown
}

// configPaths lists a configuration's channel paths in file order.
func configPaths(cfg *conf.Config) []string {
	var paths []string
	cfg.Walk(func(path string, _ *conf.Channel, _ string) { paths = append(paths, path) })
	return paths
}

// numberChannels reads the channel ids recorded in the database at dbPath
// (without writing to it) and tells which ids cfg's channels get there.
func numberChannels(cfg *conf.Config, dbPath string) channelNumbers {
	st, err := store.OpenReadOnly(dbPath)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, store.ErrNotFound):
		n, _ := plannedIDs(nil, cfg)
		n.about = fmt.Sprintf("no database at %s yet, so these are the ids a first start there gives (file order)", dbPath)
		return n
	case err != nil:
		return channelNumbers{about: fmt.Sprintf("unknown (%v)", err)}
	}
	defer st.Close()
	n, err := plannedIDs(st, cfg)
	if err != nil {
		return channelNumbers{about: fmt.Sprintf("unknown (%v)", err)}
	}
	n.about = fmt.Sprintf("as recorded in %s; channels marked \"new id\" get theirs at the next start or reload (a running server may give them higher ones)", dbPath)
	return n
}

// plannedIDs asks st (nil: a new database) which ids cfg's channels get.
func plannedIDs(st *store.Store, cfg *conf.Config) (channelNumbers, error) {
	paths := configPaths(cfg)
	n := channelNumbers{ids: map[string]uint32{}, fresh: map[string]bool{}}
	if st == nil {
		for i, p := range paths {
			n.ids[p] = uint32(i + 1)
		}
		return n, nil
	}
	ids, fresh, err := st.PlanChannelIDs(paths)
	if err != nil {
		return channelNumbers{}, err
	}
	for i, p := range paths {
		n.ids[p], n.fresh[p] = ids[i], fresh[i]
	}
	return n, nil
}

// printTree writes the channel tree with the ids the server will use.
func printTree(w io.Writer, cfg *conf.Config, nums channelNumbers) {
	s := cfg.Server
	fmt.Fprintf(w, "%s: valid\n", displayName(cfg))
	fmt.Fprintf(w, "listen %s, max %d users, %d per channel (0 = no cap), %d bit/s per user, timeout %v\n",
		s.Listen, s.MaxUsers, s.UsersPerChannel, s.Bandwidth, s.Timeout.Duration)
	fmt.Fprintf(w, "channel ids: %s\n", nums.about)
	fmt.Fprintf(w, "\n[0] %s (root)\n", s.Name)
	links := map[string][]string{} // links are symmetric, whichever side declared them
	for _, pair := range cfg.LinkPairs() {
		links[pair[0]] = append(links[pair[0]], pair[1])
		links[pair[1]] = append(links[pair[1]], pair[0])
	}
	depth := map[string]int{"": 0}
	cfg.Walk(func(path string, ch *conf.Channel, parent string) {
		d := depth[parent] + 1
		depth[path] = d
		var notes []string
		if nums.fresh[path] {
			notes = append(notes, "new id")
		}
		if path == s.DefaultChannel {
			notes = append(notes, "default channel")
		}
		if ch.MaxUsers > 0 {
			notes = append(notes, fmt.Sprintf("max %d users", ch.MaxUsers))
		}
		if l := links[path]; len(l) > 0 {
			notes = append(notes, "linked with "+strings.Join(l, ", "))
		}
		id := "?"
		if nums.ids != nil {
			id = fmt.Sprint(nums.ids[path])
		}
		line := fmt.Sprintf("%s[%s] %s", strings.Repeat("    ", d), id, ch.Name)
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
