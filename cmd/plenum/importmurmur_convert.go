package main

// Turning what was read of a Murmur server into a Plenum configuration.

import (
	"fmt"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/store"
)

// importReport collects what the import did, for the summary.
type importReport struct {
	channels      int // below the root
	groups        int
	members       int // add and remove entries
	aclEntries    int
	usersImported []string
	usersPresent  []string
	usersSkipped  []string // "name (id N): reason"
	passwordUsers []string // registered with a certificate but also had a password
	bansImported  int
	bansNamed     int // imported with a name or certificate hash
	bansPresent   int
	bansExpired   int
	bansInvalid   []string
	certificate   string // what happened to the server certificate
	channelIDs    string // what happened to Murmur's channel ids
	warnings      []string
}

func (r *importReport) warnf(format string, args ...any) {
	r.warnings = append(r.warnings, fmt.Sprintf(format, args...))
}

// murmurSettings looks up server settings: the server's config table
// first, then the ini file (whose keys Murmur spells differently in two
// cases).
type murmurSettings struct {
	db, ini map[string]string
	sid     int64
}

func (s murmurSettings) get(key string) (string, bool) {
	if v, ok := s.db[key]; ok {
		return v, true
	}
	iniKey := key
	switch key {
	case "password":
		iniKey = "serverpassword"
	case "certificate", "key", "port":
		return "", false // per server only; the ini's port is handled by listen
	}
	v, ok := s.ini[iniKey]
	return v, ok
}

// qtBool reads a setting the way QVariant::toBool reads a string.
func qtBool(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "0", "false":
		return false
	}
	return true
}

// convertMurmur builds the Plenum configuration of m, and lists Murmur's
// id of each channel by its path. names maps the Murmur user ids that
// exist in Plenum (imported, already present, and 0 for SuperUser) to
// their Plenum names; group members and ACL user entries for other ids are
// left out, so that nobody who later registers a freed name inherits
// another person's rights.
func convertMurmur(m *murmurDB, set murmurSettings, names map[int64]string, r *importReport) (*conf.Config, []store.ChannelID, error) {
	root := m.channels[0]
	if root == nil || root.hasParent {
		return nil, nil, errNoRoot
	}
	cfg := &conf.Config{Server: conf.DefaultServer()}
	convertServer(cfg, m, set, r)

	// Channel names that Murmur's channelname pattern (as imported) does
	// not accept are kept, and the pattern is widened by exactly those
	// names: Murmur only checks the pattern when a channel is created or
	// renamed, Plenum checks every name in the file.
	nameRE, err := conf.CompilePattern(cfg.Server.ChannelNamePattern)
	if err != nil {
		r.warnf("channel name pattern %q: %v; using Plenum's default", cfg.Server.ChannelNamePattern, err)
		cfg.Server.ChannelNamePattern = conf.DefaultChannelNamePattern
		nameRE, _ = conf.CompilePattern(cfg.Server.ChannelNamePattern)
	}
	var extraNames []string

	paths := map[int64]string{0: ""}
	var convert func(c *murmurChannel, parentPath string) conf.Channel
	convert = func(c *murmurChannel, parentPath string) conf.Channel {
		ch := conf.Channel{
			Name:        c.name,
			Description: c.desc,
			Position:    c.position,
			MaxUsers:    c.maxUsers,
		}
		if !c.inheritACL {
			ch.InheritACL = conf.Bool(false)
		}
		path := conf.JoinPath(parentPath, ch.Name)
		paths[c.id] = path
		r.channels++
		ch.Groups = convertGroups(c, path, names, r)
		ch.ACL = convertACL(c, path, false, names, r)
		for _, k := range c.children {
			ch.Children = append(ch.Children, convert(k, path))
		}
		return ch
	}
	// Names are fixed up per parent, before recursing, so that paths are final.
	var fixNames func(c *murmurChannel, parentPath string)
	fixNames = func(c *murmurChannel, parentPath string) {
		seen := map[string]bool{}
		for _, k := range c.children {
			orig := k.name
			name := k.name
			if strings.Contains(name, "/") {
				name = strings.ReplaceAll(name, "/", "-")
			}
			if name == "" {
				name = "Channel " + strconv.FormatInt(k.id, 10)
			}
			if seen[name] {
				name = fmt.Sprintf("%s (%d)", name, k.id)
			}
			seen[name] = true
			if name != orig {
				r.warnf("channel %q (id %d) under %s renamed to %q: Plenum channel names must be unique among siblings, non-empty and without '/'",
					orig, k.id, describePath(parentPath), name)
			}
			k.name = name
			if !nameRE.MatchString(name) {
				extraNames = append(extraNames, name)
			}
			fixNames(k, conf.JoinPath(parentPath, name))
		}
	}
	fixNames(root, "")
	if len(extraNames) > 0 {
		sort.Strings(extraNames)
		alts := []string{"(?:" + cfg.Server.ChannelNamePattern + ")"}
		seen := map[string]bool{}
		for _, n := range extraNames {
			if !seen[n] {
				seen[n] = true
				alts = append(alts, regexp.QuoteMeta(n))
			}
		}
		cfg.Server.ChannelNamePattern = strings.Join(alts, "|")
		r.warnf("channel names %q do not match the channel name pattern; channel_name_pattern was extended by exactly these names", extraNames)
	}

	cfg.Groups = convertGroups(root, "", names, r)
	cfg.ACL = convertACL(root, "", true, names, r)
	if root.desc != "" {
		r.warnf("the root channel's description is not carried over (Plenum's configuration has no place for it; consider welcome_text)")
	}
	for _, k := range root.children {
		cfg.Channels = append(cfg.Channels, convert(k, ""))
	}
	if n := len(m.channels) - 1 - r.channels; n > 0 {
		r.warnf("%d channel(s) are not reachable from the root channel (Murmur does not load them either) and were left out", n)
	}

	convertLinks(cfg, m, paths, r)

	if v, ok := set.get("defaultchannel"); ok && strings.TrimSpace(v) != "" {
		id, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		p, known := paths[id]
		switch {
		case err != nil:
			r.warnf("defaultchannel %q is not a channel id; the root channel is the default channel", v)
		case !known:
			r.warnf("defaultchannel %d does not exist; the root channel is the default channel", id)
		default:
			cfg.Server.DefaultChannel = p
		}
	}
	var ids []store.ChannelID
	for id, path := range paths {
		if id > 0 && id <= store.MaxChannelID {
			ids = append(ids, store.ChannelID{Path: path, ID: uint32(id)})
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].ID < ids[j].ID })
	return cfg, ids, nil
}

func describePath(p string) string {
	if p == "" {
		return "the root channel"
	}
	return strconv.Quote(p)
}

// convertServer maps Murmur's server settings to [server].
func convertServer(cfg *conf.Config, m *murmurDB, set murmurSettings, r *importReport) {
	s := &cfg.Server
	if v, _ := set.get("registername"); strings.TrimSpace(v) != "" {
		s.Name = v
	} else if root := m.channels[0]; root != nil && root.name != "" {
		s.Name = root.name
	}
	if v, ok := set.get("welcometext"); ok {
		s.WelcomeText = v
	}
	if v, ok := set.get("password"); ok {
		s.Password = v
	}
	intSetting := func(key string, dst *int, min, max int) {
		v, ok := set.get(key)
		if !ok || strings.TrimSpace(v) == "" {
			return
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < min || n > max {
			r.warnf("%s = %q is not a number from %d to %d; Plenum's default %d is used", key, v, min, max, *dst)
			return
		}
		*dst = n
	}
	const big = 1 << 31
	intSetting("users", &s.MaxUsers, 1, big)
	intSetting("usersperchannel", &s.UsersPerChannel, 0, big)
	intSetting("bandwidth", &s.Bandwidth, 1, big)
	intSetting("textmessagelength", &s.TextMessageLength, 0, big)
	intSetting("imagemessagelength", &s.ImageMessageLength, 0, big)
	intSetting("opusthreshold", &s.OpusThreshold, 0, 100)
	intSetting("messagelimit", &s.MessageLimit, 1, big)
	intSetting("messageburst", &s.MessageBurst, 1, big)
	timeout := int(s.Timeout.Duration / time.Second)
	intSetting("timeout", &timeout, 1, big)
	s.Timeout.Duration = time.Duration(timeout) * time.Second
	if v, ok := set.get("allowhtml"); ok {
		s.AllowHTML = qtBool(v)
	}
	if v, ok := set.get("sendversion"); ok {
		s.SendVersion = qtBool(v)
	}
	// Murmur 1.5 decides by the ini's rememberchannel (and its duration)
	// alone; a value in a server's config table has no effect there.
	if v, ok := set.ini["rememberchannel"]; ok {
		s.RememberChannel = qtBool(v)
	}
	if v, ok := set.ini["rememberchannelduration"]; ok && s.RememberChannel {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
			r.warnf("rememberchannelduration = %d: Plenum returns registered users to their last channel however long ago they left (or never, with remember_channel = false)", n)
		}
	}
	for _, p := range []struct {
		key string
		dst *string
	}{{"username", &s.UsernamePattern}, {"channelname", &s.ChannelNamePattern}} {
		v, ok := set.get(p.key)
		if !ok || v == "" {
			continue
		}
		if _, err := conf.CompilePattern(v); err != nil {
			r.warnf("%s pattern %q cannot be used (%v); Plenum's default is used", p.key, v, err)
			continue
		}
		*p.dst = v
	}
	if v, ok := set.get("suggestversion"); ok && strings.TrimSpace(v) != "" {
		v = strings.TrimSpace(v)
		if n, err := strconv.ParseUint(v, 10, 32); err == nil {
			// Murmur also takes the version_v1 number.
			v = fmt.Sprintf("%d.%d.%d", n>>16, (n>>8)&0xff, n&0xff)
		}
		if _, _, _, err := conf.ParseVersion(v); err != nil {
			r.warnf("suggestversion %q: %v; left out", v, err)
		} else {
			s.SuggestVersion = v
		}
	}
	if v, ok := set.get("suggestpositional"); ok && strings.TrimSpace(v) != "" {
		s.SuggestPositional = conf.Bool(qtBool(v))
	}
	if v, ok := set.get("suggestpushtotalk"); ok && strings.TrimSpace(v) != "" {
		s.SuggestPushToTalk = conf.Bool(qtBool(v))
	}

	// Murmur's virtual server N listens on the ini's port + N - 1 unless
	// its own config says otherwise.
	port := 0
	if v, ok := set.db["port"]; ok && strings.TrimSpace(v) != "" {
		port, _ = strconv.Atoi(strings.TrimSpace(v))
	} else if v, ok := set.ini["port"]; ok && strings.TrimSpace(v) != "" {
		if p, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
			port = p + int(set.sid) - 1
		}
	}
	host := ""
	if v, ok := set.get("host"); ok {
		hosts := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
		switch {
		case len(hosts) == 1:
			host = hosts[0]
		case len(hosts) > 1:
			r.warnf("host %q lists several addresses; Plenum listens on one address, so all interfaces are used", v)
		}
	}
	if port < 0 || port > 65535 {
		r.warnf("port %d is out of range; Plenum's default is used", port)
		port = 0
	}
	if port != 0 || host != "" {
		_, defPort, _ := net.SplitHostPort(conf.DefaultListen)
		ps := defPort
		if port != 0 {
			ps = strconv.Itoa(port)
		}
		s.Listen = net.JoinHostPort(host, ps)
	}

	if v, ok := set.get("certrequired"); ok && qtBool(v) {
		r.warnf("certrequired is set, which Plenum does not support: users without a certificate can connect")
	}
	if v, ok := set.get("forceexternalauth"); ok && qtBool(v) {
		r.warnf("forceExternalAuth is set, which Plenum does not support (it has no external authenticators)")
	}
	handled := map[string]bool{
		"registername": true, "welcometext": true, "password": true, "users": true, "usersperchannel": true,
		"bandwidth": true, "textmessagelength": true, "imagemessagelength": true, "opusthreshold": true,
		"messagelimit": true, "messageburst": true, "timeout": true, "allowhtml": true, "sendversion": true,
		"username": true, "channelname": true, "suggestversion": true, "suggestpositional": true,
		"suggestpushtotalk": true, "port": true, "host": true, "defaultchannel": true, "certrequired": true,
		"forceexternalauth": true, "certificate": true, "key": true, "passphrase": true,
		"boot": true, // whether the virtual server starts: Plenum runs one
		// Murmur reads these from its ini only; per server they do nothing.
		"rememberchannel": true, "rememberchannelduration": true,
	}
	var ignored []string
	for k := range set.db {
		if !handled[k] {
			ignored = append(ignored, k)
		}
	}
	if len(ignored) > 0 {
		sort.Strings(ignored)
		r.warnf("server settings without a Plenum equivalent were not carried over: %s", strings.Join(ignored, ", "))
	}
}

// builtinGroupNames are Murmur's group names that a channel group cannot
// usefully have (conf refuses them).
var builtinGroupNames = map[string]bool{"all": true, "none": true, "auth": true, "strong": true, "in": true, "out": true, "sub": true}

func groupNameProblem(name string) string {
	switch {
	case name == "":
		return "it has no name"
	case strings.ContainsAny(name[:1], "!~#$"):
		return "its name starts with a group-spec prefix ('!', '~', '#' or '$'), so no ACL entry can refer to it"
	case builtinGroupNames[name] || strings.HasPrefix(name, "sub,"):
		return "it has the name of a built-in group, which Murmur evaluates instead"
	case strings.TrimSpace(name) != name:
		return "its name starts or ends with spaces"
	}
	return ""
}

// memberName returns the Plenum name of Murmur user id, or "" (with a
// warning naming where) when that user is not in Plenum.
func memberName(id int64, names map[int64]string, where string, r *importReport) string {
	n, ok := names[id]
	if !ok {
		r.warnf("%s: Murmur user id %d is not a registered Plenum user (see the users skipped); left out", where, id)
		return ""
	}
	if strings.TrimSpace(n) != n {
		r.warnf("%s: user name %q starts or ends with spaces, which the configuration does not allow; left out", where, n)
		return ""
	}
	return n
}

func convertGroups(c *murmurChannel, path string, names map[int64]string, r *importReport) map[string]*conf.Group {
	if len(c.groups) == 0 {
		return nil
	}
	out := map[string]*conf.Group{}
	for _, mg := range c.groups {
		where := fmt.Sprintf("group %q in %s", mg.name, describePath(path))
		if p := groupNameProblem(mg.name); p != "" {
			r.warnf("%s left out: %s", where, p)
			continue
		}
		g := &conf.Group{}
		if !mg.inherit {
			g.Inherit = conf.Bool(false)
		}
		if !mg.inheritable {
			g.Inheritable = conf.Bool(false)
		}
		removed := map[string]bool{}
		seen := map[string]bool{}
		for _, id := range mg.remove {
			if n := memberName(id, names, where, r); n != "" && !seen[foldKey(n)] {
				seen[foldKey(n)] = true
				removed[foldKey(n)] = true
				g.Remove = append(g.Remove, n)
			}
		}
		seen = map[string]bool{}
		for _, id := range mg.add {
			n := memberName(id, names, where, r)
			if n == "" || seen[foldKey(n)] {
				continue
			}
			seen[foldKey(n)] = true
			if removed[foldKey(n)] {
				// Murmur adds, then removes: the removal is what counts.
				r.warnf("%s: %q is both added and removed; Murmur's result (removed) is kept", where, n)
				continue
			}
			g.Add = append(g.Add, n)
		}
		r.groups++
		r.members += len(g.Add) + len(g.Remove)
		out[mg.name] = g
	}
	return out
}

func convertACL(c *murmurChannel, path string, root bool, names map[int64]string, r *importReport) []conf.ACLEntry {
	var out []conf.ACLEntry
	for i, a := range c.acl {
		var e conf.ACLEntry
		where := fmt.Sprintf("ACL entry %d of %s", i+1, describePath(path))
		if a.userID >= 0 {
			n := memberName(a.userID, names, where, r)
			if n == "" {
				continue
			}
			e.User = n
			where += fmt.Sprintf(" (user %q)", n)
		} else {
			if a.group == "" {
				r.warnf("%s left out: it names neither a user nor a group, so it matches nobody", where)
				continue
			}
			// Kept as Murmur evaluates it, even when it looks like a
			// mistake: "!$ABC..." matches everybody.
			if note := conf.GroupSpecNote(a.group); note != "" {
				r.warnf("%s kept: %s", where, note)
			}
			e.Group = a.group
			where += fmt.Sprintf(" (group %q)", a.group)
		}
		if !a.here {
			e.ApplyHere = conf.Bool(false)
		}
		if !a.subs {
			e.ApplySubs = conf.Bool(false)
		}
		allow, deny := acl.Permission(a.allow), acl.Permission(a.deny)
		if unknown := (allow | deny) &^ acl.All &^ acl.Cached; unknown != 0 {
			r.warnf("%s: unknown permission bits %#x left out", where, uint32(unknown))
		}
		allow &= acl.All
		deny &= acl.All
		had := allow|deny != 0
		if ro := (allow | deny) & conf.RootOnly; ro != 0 && !(root && a.here) {
			// Murmur checks these in the root channel only, where this entry
			// does not apply: they never had an effect.
			r.warnf("%s: %s left out; Murmur only checks it in the root channel, from root entries that apply there", where, ro)
			allow &^= conf.RootOnly
			deny &^= conf.RootOnly
		}
		if had && allow|deny == 0 {
			r.warnf("%s left out: nothing remains of it", where)
			continue
		}
		e.Allow = allow.Names()
		e.Deny = deny.Names()
		out = append(out, e)
		r.aclEntries++
	}
	return out
}

// convertLinks adds Murmur's channel links, each once, to the channel with
// the smaller id.
func convertLinks(cfg *conf.Config, m *murmurDB, paths map[int64]string, r *importReport) {
	seen := map[[2]int64]bool{}
	for _, l := range m.links {
		a, b := l[0], l[1]
		if a > b {
			a, b = b, a
		}
		if a == b || seen[[2]int64{a, b}] {
			continue
		}
		seen[[2]int64{a, b}] = true
		pa, okA := paths[a]
		pb, okB := paths[b]
		switch {
		case !okA || !okB:
			continue // a channel Murmur does not load
		case pa == "" || pb == "":
			other := pb
			if pa != "" {
				other = pa
			}
			r.warnf("the link between the root channel and %q is left out: Plenum links are between channels below the root", other)
			continue
		}
		ch := cfg.Lookup(pa)
		ch.Links = append(ch.Links, pb)
	}
	cfg.Walk(func(_ string, ch *conf.Channel, _ string) { sort.Strings(ch.Links) })
}

// foldKey maps a name to a key equal for names strings.EqualFold finds
// equal: each rune becomes the smallest rune of its case-folding orbit (the
// rule Plenum's store uses to keep names unique).
func foldKey(name string) string {
	var b strings.Builder
	for _, c := range name {
		min := c
		for f := unicode.SimpleFold(c); f != c; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		b.WriteRune(min)
	}
	return b.String()
}

// userNameProblem reports why the store would refuse name, or "".
func userNameProblem(name string) string {
	switch {
	case name == "":
		return "empty name"
	case !utf8.ValidString(name):
		return "name is not UTF-8"
	case utf8.RuneCountInString(name) > store.MaxNameLength:
		return fmt.Sprintf("name longer than %d characters", store.MaxNameLength)
	}
	return ""
}
