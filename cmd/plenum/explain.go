package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/store"
)

const aclUsage = `usage: plenum acl explain [-config FILE] [-data DIR] [-in CHANNEL] [-token T]... [-cert HASH] [-strong=BOOL] [-group G]... [-signin] USER PERMISSION CHANNEL

Explains why USER may or may not do PERMISSION in CHANNEL, listing the ACL
entries and group memberships that decided it, as the server computes it.

  USER        a registered user name, SuperUser, or any other name (then the
              user is treated as unregistered)
  PERMISSION  a permission name as in Mumble's ACL editor (Speak, Enter,
              MuteDeafen, Kick, ...), case-insensitive; a comma-separated
              list explains each in turn
  CHANNEL     a channel path such as "Plenary" or "Breakout rooms/Room 1",
              "/" for the root channel, or a channel id as "plenum check" prints

With -signin, USER signs in as on the server, through the [auth] providers
of the configuration (webhook, ldap; docs/AUTH.md), with the password read
from the first line of standard input: the explanation then has their
groups, and names the directory group each came from. -group gives sign-in
groups by hand instead.
`

// runACL implements `plenum acl explain`.
func runACL(args []string, stdout io.Writer) error {
	const short = "usage: plenum acl explain [flags] USER PERMISSION CHANNEL (-h for help)"
	if len(args) == 0 {
		return fmt.Errorf("acl needs a subcommand; %s", short)
	}
	if args[0] != "explain" {
		return fmt.Errorf("acl: unknown subcommand %q; %s", args[0], short)
	}
	return runExplain(args[1:], os.Stdin, stdout, os.Stderr)
}

// tokenFlags collects repeated -token flags.
type tokenFlags []string

func (t *tokenFlags) String() string     { return strings.Join(*t, ",") }
func (t *tokenFlags) Set(v string) error { *t = append(*t, v); return nil }

func runExplain(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plenum acl explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "TOML configuration `file` (default: the embedded default)")
	dataDir := fs.String("data", "", "data `directory` holding plenum.db (overrides the config)")
	in := fs.String("in", "", "the `channel` the user is in (default: CHANNEL); matters for in/out/sub groups")
	cert := fs.String("cert", "", "the user's certificate `hash` (40 hex digits; default: a registered user's own)")
	strong := fs.Bool("strong", false, "whether the user's certificate verifies against a trusted CA (the \"strong\" group);\n"+
		"default: true without a certificate, false with one (Mumble's own certificates are self-signed)")
	var tokens, groups tokenFlags
	fs.Var(&tokens, "token", "an access `token` the user has (repeatable)")
	fs.Var(&groups, "group", "a `group` the user has from a sign-in, as [auth] gives them (repeatable)")
	signIn := fs.Bool("signin", false, "sign USER in through the configuration's [auth] providers, with the password on standard input")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), aclUsage+"\n")
		fs.PrintDefaults()
	}
	// Flags may come before, between or after the arguments; "--" ends
	// them (for a user name starting with '-').
	var pos []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		left := fs.Args()
		if len(left) == 0 {
			break
		}
		if n := len(rest) - len(left); n > 0 && rest[n-1] == "--" {
			pos = append(pos, left...)
			break
		}
		pos, rest = append(pos, left[0]), left[1:]
	}
	if len(pos) != 3 {
		fs.Usage()
		return fmt.Errorf("acl explain needs USER PERMISSION CHANNEL, got %d arguments", len(pos))
	}
	userName, permArg, chanArg := pos[0], pos[1], pos[2]
	if strings.TrimSpace(userName) == "" {
		return fmt.Errorf("acl explain: empty user name")
	}
	perms, err := parsePermissionList(permArg)
	if err != nil {
		return err
	}
	if *cert != "" {
		h := strings.ToLower(*cert)
		if len(h) != 40 || strings.Trim(h, "0123456789abcdef") != "" {
			return fmt.Errorf("-cert %q: not a 40-digit hex certificate hash", *cert)
		}
		*cert = h
	}

	cfg := conf.Default()
	if *configPath != "" {
		if cfg, err = conf.Load(*configPath); err != nil {
			return err
		}
	}
	dir := *dataDir
	if dir == "" {
		dir = cfg.Server.DataDir
	}

	var notes []string
	var users userDirectory = noUsers{}
	var st *store.Store // nil without a database
	dbPath := filepath.Join(dir, "plenum.db")
	if _, err := os.Stat(dbPath); err == nil {
		if st, err = store.Open(dbPath); err != nil {
			return err
		}
		defer st.Close()
		users = st
	} else if errors.Is(err, os.ErrNotExist) {
		notes = append(notes, fmt.Sprintf("no database at %s: nobody is registered except SuperUser", dbPath))
	} else {
		return err
	}
	// Channel ids as the server gives them (and plenum check prints them).
	nums, err := plannedIDs(st, cfg)
	if err != nil {
		return err
	}

	tree, unresolved, err := buildExplainTree(cfg, users, nums.ids)
	if err != nil {
		return err
	}
	target, err := tree.resolve(chanArg)
	if err != nil {
		return err
	}
	where := target
	if *in != "" {
		if where, err = tree.resolve(*in); err != nil {
			return fmt.Errorf("-in: %w", err)
		}
	}
	subject, err := explainSubject(users, userName, *cert, tokens, where)
	if err != nil {
		return err
	}
	if len(groups) > 0 {
		subject.SignInGroups, subject.SignInBy = groups, "-group"
	}
	if *signIn {
		note, err := signInSubject(cfg, st, subject, stdin)
		if err != nil {
			return err
		}
		if note != "" {
			notes = append(notes, note)
		}
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "strong" {
			subject.Strong = *strong
		}
	})
	notes = append(notes, unresolvedNotes(unresolved, subject)...)

	for i, p := range perms {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		ex := acl.Explain(tree, subject, target, p)
		verb := "MAY NOT"
		if ex.Allowed {
			verb = "MAY"
		}
		line := fmt.Sprintf("%s %s %v in %s", subject.Name, verb, p, tree.display(target))
		if where != target {
			line += " (while in " + tree.display(where) + ")"
		}
		fmt.Fprintln(stdout, line)
		fmt.Fprint(stdout, ex.String())
		if p == acl.Speak {
			if f := floorNote(cfg, tree, subject, target); f != "" {
				fmt.Fprintln(stdout, f)
			}
		}
		if legend := userLegend(ex, tree.userNames); legend != "" {
			fmt.Fprintln(stdout, legend)
		}
	}
	for _, n := range notes {
		fmt.Fprintln(stdout, "note:", n)
	}
	return nil
}

// parsePermissionList parses "Speak" or "Speak,Whisper" (also '|').
func parsePermissionList(arg string) ([]acl.Permission, error) {
	var out []acl.Permission
	for _, name := range strings.FieldsFunc(arg, func(r rune) bool { return r == ',' || r == '|' }) {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		p, err := acl.ParsePermission(name)
		if err != nil {
			return nil, fmt.Errorf("%w (known: %s)", err, strings.Join(acl.All.Names(), ", "))
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no permission given (known: %s)", strings.Join(acl.All.Names(), ", "))
	}
	return out, nil
}

// userDirectory is the part of the store the explanation needs.
type userDirectory interface {
	UserByName(name string) (store.User, error)
}

// noUsers stands for a data directory without a database: only SuperUser
// exists.
type noUsers struct{}

func (noUsers) UserByName(name string) (store.User, error) {
	if strings.EqualFold(name, store.SuperUserName) {
		return store.User{ID: store.SuperUserID, Name: store.SuperUserName}, nil
	}
	return store.User{}, store.ErrNotFound
}

// explainSubject is the acl.Subject the server would build for a user
// called name, in channel where.
func explainSubject(users userDirectory, name, cert string, tokens []string, where uint32) (*acl.Subject, error) {
	s := &acl.Subject{UserID: -1, Name: name, CertHash: cert, Tokens: tokens, Channel: where}
	u, err := users.UserByName(name)
	switch {
	case err == nil:
		s.UserID, s.Name = u.ID, u.Name
		if s.CertHash == "" {
			s.CertHash = u.CertHash
		}
	case errors.Is(err, store.ErrNotFound):
		if strings.EqualFold(name, store.SuperUserName) {
			s.UserID, s.Name = store.SuperUserID, store.SuperUserName
		}
	default:
		return nil, err
	}
	// As on the server: without a certificate the user is strong; with
	// one, the usual self-signed one, not (-strong says otherwise).
	s.Strong = s.CertHash == ""
	return s, nil
}

// explainTree is the server's channel tree with its ACLs, rebuilt from the
// configuration exactly as server.buildChannels and aclFromConfig do it:
// root is 0, the other channels get 1.. in Walk order.
type explainTree struct {
	parent    map[uint32]uint32
	acls      map[uint32]*acl.ChannelACL
	names     map[uint32]string
	paths     map[uint32]string
	byPath    map[string]uint32
	userNames map[int64]string // registered users the ACLs mention
}

func (t *explainTree) Parent(id uint32) (uint32, bool) {
	p, ok := t.parent[id]
	return p, ok
}

func (t *explainTree) ACL(id uint32) *acl.ChannelACL { return t.acls[id] }

func (t *explainTree) ChannelName(id uint32) string { return t.names[id] }

// display names a channel for the verdict line.
func (t *explainTree) display(id uint32) string {
	if id == 0 {
		return "the root channel"
	}
	return t.paths[id]
}

// resolve finds a channel by path ("/" is root) or by id.
func (t *explainTree) resolve(arg string) (uint32, error) {
	p := strings.Trim(strings.TrimSpace(arg), "/")
	if p == "" {
		return 0, nil
	}
	if id, ok := t.byPath[p]; ok {
		return id, nil
	}
	if n, err := strconv.ParseUint(p, 10, 32); err == nil {
		if _, ok := t.names[uint32(n)]; ok {
			return uint32(n), nil
		}
	}
	var similar []string
	for path := range t.byPath {
		if strings.EqualFold(path, p) {
			similar = append(similar, path)
		}
	}
	sort.Strings(similar)
	if len(similar) > 0 {
		return 0, fmt.Errorf("unknown channel %q (channel names are case-sensitive; did you mean %q?)", arg, similar[0])
	}
	return 0, fmt.Errorf("unknown channel %q (give a path such as \"Parent/Child\", or \"/\" for root; `plenum check FILE` lists the channels)", arg)
}

// buildExplainTree builds the channel tree of cfg with the channel ids
// given by path.
func buildExplainTree(cfg *conf.Config, users userDirectory, ids map[string]uint32) (*explainTree, []unresolvedName, error) {
	t := &explainTree{
		parent:    map[uint32]uint32{},
		acls:      map[uint32]*acl.ChannelACL{},
		names:     map[uint32]string{0: cfg.Server.Name},
		paths:     map[uint32]string{0: ""},
		byPath:    map[string]uint32{},
		userNames: map[int64]string{},
	}
	b := aclBuilder{users: users, tree: t}
	if a := b.fromConfig(true, cfg.Groups, cfg.ACL, "root"); a != nil {
		t.acls[0] = a
	}
	byPath := map[string]uint32{"": 0}
	var walkErr error
	cfg.Walk(func(path string, ch *conf.Channel, parentPath string) {
		parent, ok := byPath[parentPath]
		if !ok {
			if walkErr == nil {
				walkErr = fmt.Errorf("channel %q: parent %q not found", path, parentPath)
			}
			return
		}
		id, ok := ids[path]
		if !ok {
			if walkErr == nil {
				walkErr = fmt.Errorf("channel %q: no channel id", path)
			}
			return
		}
		t.parent[id] = parent
		t.names[id] = ch.Name
		t.paths[id] = path
		byPath[path] = id
		t.byPath[path] = id
		if a := b.fromConfig(ch.InheritsACL(), ch.Groups, ch.ACL, path); a != nil {
			t.acls[id] = a
		}
	})
	if b.err != nil {
		return nil, nil, b.err
	}
	return t, b.unresolved, walkErr
}

// aclBuilder mirrors server.aclFromConfig: user names are resolved to ids
// through the store, and a name nobody registered gets a placeholder id
// of -2 or below, which matches nobody (as on the server, so entries keep
// the numbers the server and the ACL editor give them), and a note.
type aclBuilder struct {
	users userDirectory
	tree  *explainTree
	// unresolved are the names nobody registered, in file order.
	unresolved   []unresolvedName
	placeholders map[string]int64 // by store.NameKey
	err          error
}

type unresolvedName struct{ where, name string }

func (b *aclBuilder) fromConfig(inherit bool, groups map[string]*conf.Group, entries []conf.ACLEntry, where string) *acl.ChannelACL {
	return conf.ChannelACL(inherit, groups, entries, func(name string) (int64, bool) {
		u, err := b.users.UserByName(name)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) && b.err == nil {
				b.err = err
			}
			b.unresolved = append(b.unresolved, unresolvedName{where, name})
			return b.placeholder(name), true
		}
		b.tree.userNames[u.ID] = u.Name
		return u.ID, true
	})
}

// placeholder returns the placeholder of a name nobody registered.
func (b *aclBuilder) placeholder(name string) int64 {
	key := store.NameKey(name)
	if id, ok := b.placeholders[key]; ok {
		return id
	}
	if b.placeholders == nil {
		b.placeholders = map[string]int64{}
	}
	id := -2 - int64(len(b.placeholders))
	b.placeholders[key] = id
	b.tree.userNames[id] = name + " (not registered)"
	return id
}

// unresolvedNotes reports the names the ACLs mention that nobody
// registered; if the subject is one of them, that comes first, since it is
// usually the answer to "why may they not".
func unresolvedNotes(names []unresolvedName, s *acl.Subject) []string {
	var own, other []string
	seen := map[unresolvedName]bool{}
	for _, u := range names {
		if seen[u] {
			continue
		}
		seen[u] = true
		if s.UserID < 0 && strings.EqualFold(u.name, s.Name) {
			own = append(own, fmt.Sprintf("%s is named in the ACL of %s but is not registered, so that name matches nobody yet; once %s is registered (with the certificate they connect with; SuperUser or an admin does it from the client), it counts at once",
				s.Name, whereName(u.where), s.Name))
			continue
		}
		other = append(other, fmt.Sprintf("the ACL of %s names %q, who is not registered: the name matches nobody until someone registers under it", whereName(u.where), u.name))
	}
	return append(own, other...)
}

func whereName(where string) string {
	if where == "root" {
		return "the root channel"
	}
	return strconv.Quote(where)
}

// userLegend names the users whose user entries the explanation lists,
// since the entries show only ids (placeholders of names nobody
// registered included).
func userLegend(ex *acl.Explanation, names map[int64]string) string {
	seen := map[int64]bool{}
	var parts []string
	for _, st := range ex.Steps {
		id := st.Entry.UserID
		if st.Kind != acl.StepEntry || id == -1 || seen[id] {
			continue
		}
		seen[id] = true
		name := names[id]
		if name == "" {
			name = "?"
		}
		parts = append(parts, fmt.Sprintf("user %d = %s", id, name))
	}
	if len(parts) == 0 {
		return ""
	}
	return "   (" + strings.Join(parts, ", ") + ")"
}

// floorNote explains what a floor-controlled hall adds to Speak: the ACL
// is not all, the floor is (docs/FLOOR.md).
func floorNote(cfg *conf.Config, tree *explainTree, s *acl.Subject, hall uint32) string {
	def := cfg.Lookup(tree.paths[hall])
	if def == nil || !def.Floor {
		return ""
	}
	for _, g := range def.FloorGroups {
		if acl.InGroup(tree, s, hall, hall, g) {
			return fmt.Sprintf("FLOOR: %s is a floor-controlled hall; %s is in its floor group %q, so may speak without the floor (if Speak allows).",
				tree.display(hall), s.Name, g)
		}
	}
	return fmt.Sprintf("FLOOR: %s is a floor-controlled hall; %s is in none of its floor groups %q, so is heard there only while holding the floor (given by a chair: !next, !give), or as a priority speaker.",
		tree.display(hall), s.Name, def.FloorGroups)
}
