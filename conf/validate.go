package conf

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Validate checks c and returns every problem found, joined with errors.Join,
// each an *Error ("file:line: key: problem"); nil if c is valid. Lines are
// known for configurations that came from Parse or Load.
func (c *Config) Validate() error {
	v := &validator{c: c}
	v.server()
	v.cluster()
	v.limits()
	v.apiTokens()
	v.groupsAndACL(c.Groups, c.ACL, "", true)
	v.channels()
	v.auth()
	return joinErrors(v.errs)
}

// Notes returns what c holds that Murmur accepts (so an edit from a Mumble
// client can store it) but that probably does not do what it looks like:
// a group spec that matches nobody, "sub" with words for numbers, a
// root-only permission where it has no effect, a group no entry can name.
// Each is an *Error ("file:line: key: note"), sorted by line.
func (c *Config) Notes() []*Error {
	v := &validator{c: c}
	v.groupsAndACL(c.Groups, c.ACL, "", true)
	v.channels()
	sort.SliceStable(v.notes, func(i, j int) bool { return v.notes[i].Line < v.notes[j].Line })
	return v.notes
}

type validator struct {
	c     *Config
	errs  []*Error
	notes []*Error // accepted, as Murmur accepts it, but probably not meant (Notes)
}

func (v *validator) serverErr(key, format string, args ...any) {
	line, ok := v.c.serverLines[key]
	if !ok {
		line = v.c.serverLines[""]
	}
	v.errs = append(v.errs, &Error{File: v.c.File, Line: line, Key: "server." + key, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) channelErr(ch *Channel, key, display, format string, args ...any) {
	line, ok := ch.keyLines[key]
	if !ok {
		line = ch.Line
	}
	v.errs = append(v.errs, &Error{File: v.c.File, Line: line, Key: display + "." + key, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) server() {
	s := &v.c.Server
	if err := checkListen(s.Listen); err != nil {
		v.serverErr("listen", "%v", err)
	}
	if s.AdminListen != "" {
		if err := checkListen(s.AdminListen); err != nil {
			v.serverErr("admin_listen", "%v", err)
		}
	}
	for i, h := range s.AdminHosts {
		if _, err := AdminHost(h); err != nil {
			v.serverErr("admin_hosts", "entry %d: %v", i+1, err)
		}
	}
	v.web(s)
	switch {
	case s.Certificate != "" && s.Key == "":
		v.serverErr("certificate", "certificate is set but key is not; set both, or neither to generate a self-signed certificate")
	case s.Key != "" && s.Certificate == "":
		v.serverErr("key", "key is set but certificate is not; set both, or neither to generate a self-signed certificate")
	}
	v.acme()
	if s.Name == "" {
		v.serverErr("name", "must not be empty")
	}
	if s.RecordingMaxBytes < 1<<20 {
		v.serverErr("recording_max_bytes", "must be at least 1 MiB (1048576; got %d)", s.RecordingMaxBytes)
	}
	if s.MaxUsers < 1 {
		v.serverErr("max_users", "must be at least 1 (got %d)", s.MaxUsers)
	}
	for _, f := range []struct {
		key string
		val int
	}{
		{"users_per_channel", s.UsersPerChannel},
		{"text_message_length", s.TextMessageLength},
		{"image_message_length", s.ImageMessageLength},
	} {
		if f.val < 0 {
			v.serverErr(f.key, "must not be negative (got %d; 0 means unlimited)", f.val)
		}
	}
	if s.Bandwidth < 1 {
		v.serverErr("bandwidth", "must be positive (got %d)", s.Bandwidth)
	}
	if s.Timeout.Duration <= 0 {
		v.serverErr("timeout", "must be positive (got %v)", s.Timeout.Duration)
	}
	if s.ShutdownTimeout.Duration <= 0 {
		v.serverErr("shutdown_timeout", "must be positive (got %v)", s.ShutdownTimeout.Duration)
	}
	if s.SuggestVersion != "" {
		if _, _, _, err := ParseVersion(s.SuggestVersion); err != nil {
			v.serverErr("suggest_version", "%v", err)
		}
	}
	if s.OpusThreshold < 0 || s.OpusThreshold > 100 {
		v.serverErr("opus_threshold", "must be between 0 and 100 (got %d)", s.OpusThreshold)
	}
	if s.MessageLimit < 1 {
		v.serverErr("message_limit", "must be at least 1 (got %d)", s.MessageLimit)
	}
	for _, f := range []struct {
		key string
		val int
	}{{"listeners_per_channel", s.ListenersPerChannel}, {"listeners_per_user", s.ListenersPerUser}} {
		if f.val < -1 {
			v.serverErr(f.key, "must be -1 (unlimited), 0 (disabled) or a limit (got %d)", f.val)
		}
	}
	if s.MessageBurst < 1 {
		v.serverErr("message_burst", "must be at least 1 (got %d)", s.MessageBurst)
	}
	if _, err := CompilePattern(s.UsernamePattern); err != nil {
		v.serverErr("username_pattern", "%v", err)
	}
	if s.DefaultChannel != "" {
		switch ch := v.c.Lookup(s.DefaultChannel); {
		case ch == nil:
			v.serverErr("default_channel", "no channel %q", s.DefaultChannel)
		case ch.Temporary:
			v.serverErr("default_channel", "channel %q is temporary (removed once it empties), so it cannot be the default channel", s.DefaultChannel)
		}
	}
}

// checkListen accepts "host:port" with a numeric port (0 picks a free port,
// which tests use); host may be empty (all interfaces).
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (e.g. \":64738\" or \"[::1]:64738\")", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q: port must be a number from 0 to 65535", addr)
	}
	return nil
}

// web checks the keys of the browser listener.
func (v *validator) web(s *Server) {
	if s.WebListen != "" {
		if err := checkListen(s.WebListen); err != nil {
			v.serverErr("web_listen", "%v", err)
		}
	}
	for _, p := range []struct {
		key  string
		port int
	}{{"web_udp_port", s.WebUDPPort}, {"web_tcp_port", s.WebTCPPort}} {
		if p.port < 0 || p.port > 65535 {
			v.serverErr(p.key, "must be a port from 0 to 65535 (got %d; 0 = any free port)", p.port)
		}
	}
	for i, a := range s.WebAddresses {
		if ip, err := netip.ParseAddr(a); err != nil || ip.Zone() != "" || ip.IsUnspecified() {
			v.serverErr("web_addresses", "entry %d: %q is not an IP address (e.g. \"203.0.113.7\")", i+1, a)
		}
	}
	for i, o := range s.WebOrigins {
		if _, err := WebOrigin(o); err != nil {
			v.serverErr("web_origins", "entry %d: %v", i+1, err)
		}
	}
}

// WebOrigin reads an entry of web_origins, an Origin as browsers send
// it: "https://host" or "http://host:port", without a path. It returns
// the form compared against a request's Origin header (lower case).
func WebOrigin(s string) (string, error) {
	bad := fmt.Errorf("%q is not an origin like \"https://example.org\" or \"http://host:8080\"", s)
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || (scheme != "http" && scheme != "https") || rest == "" || strings.ContainsAny(rest, "/?#@ ") {
		return "", bad
	}
	host := rest
	if h, port, err := net.SplitHostPort(rest); err == nil {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return "", bad
		}
		host = h
	}
	if _, err := AdminHost(host); err != nil && !strings.HasPrefix(host, "[") {
		return "", bad
	}
	return strings.ToLower(s), nil
}

// hostLabel is one label of a host name; the underscore is not allowed in
// public DNS names but is common in internal ones.
var hostLabel = regexp.MustCompile(`^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$`)

// AdminHost reads a host name ("plenum.example.org") or an IP address
// ("192.0.2.7", "2001:db8::7", also in brackets), without a port, as an
// entry of admin_hosts or the host of a request to the admin listener. It
// returns the form they are compared in: a name in lower case without a
// trailing dot, an address in its canonical form.
func AdminHost(s string) (string, error) {
	bad := fmt.Errorf("%q is not a host name or IP address without a port (e.g. \"plenum.example.org\")", s)
	if inner, ok := strings.CutPrefix(s, "["); ok {
		a, err := netip.ParseAddr(strings.TrimSuffix(inner, "]"))
		if err != nil || !strings.HasSuffix(inner, "]") || !a.Is6() || a.Zone() != "" {
			return "", bad
		}
		return a.Unmap().String(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return "", bad
		}
		return a.Unmap().String(), nil
	}
	h := strings.TrimSuffix(strings.ToLower(s), ".")
	if h == "" || len(h) > 253 {
		return "", bad
	}
	for label := range strings.SplitSeq(h, ".") {
		if !hostLabel.MatchString(label) {
			return "", bad
		}
	}
	return h, nil
}

func (v *validator) channels() {
	s := &v.c.Server
	nameRE, err := CompilePattern(s.ChannelNamePattern)
	if err != nil {
		v.serverErr("channel_name_pattern", "%v", err)
		nameRE = nil
	}
	var walk func(chs []Channel, parent, parentDisplay string)
	walk = func(chs []Channel, parent, parentDisplay string) {
		firstLine := map[string]int{} // sibling name -> line of its first channel
		for i := range chs {
			ch := &chs[i]
			display := "channel[" + strconv.Itoa(i) + "]"
			if parentDisplay != "" {
				display = parentDisplay + "." + display
			}

			path := JoinPath(parent, ch.Name)
			switch {
			case ch.Name == "":
				v.channelErr(ch, "name", display, "channel name must not be empty")
			case strings.Contains(ch.Name, "/"):
				v.channelErr(ch, "name", display, "channel name %q must not contain '/' (it separates names in channel paths)", ch.Name)
			case nameRE != nil && !nameRE.MatchString(ch.Name):
				v.channelErr(ch, "name", display, "channel name %q does not match server.channel_name_pattern", ch.Name)
			}
			if ch.Name != "" {
				if l, dup := firstLine[ch.Name]; dup {
					where := ""
					if l > 0 {
						where = fmt.Sprintf(" (first defined at line %d)", l)
					}
					v.channelErr(ch, "name", display, "duplicate channel name %q under %s%s", ch.Name, rootName(parent), where)
				} else {
					firstLine[ch.Name] = ch.Line
				}
			}
			for _, l := range ch.Links {
				switch {
				case l == path:
					v.channelErr(ch, "links", display, "channel %q links to itself", path)
				case v.c.Lookup(l) == nil:
					v.channelErr(ch, "links", display, "unknown channel %q (links are paths from the root, e.g. \"Breakout rooms/Room 1\")", l)
				}
			}
			v.shaping(ch, display)
			v.floor(ch, display)
			if ch.Temporary && len(ch.Children) > 0 {
				v.channelErr(ch, "temporary", display, "a temporary channel cannot have subchannels (Murmur refuses them)")
			}
			v.groupsAndACL(ch.Groups, ch.ACL, display, false)
			walk(ch.Children, path, display)
		}
	}
	walk(v.c.Channels, "", "")
}

// maxShapedSpeakers bounds max_speakers and mix_above: more than this is
// no limit at all for a channel of people.
const maxShapedSpeakers = 1000

func (v *validator) shaping(ch *Channel, display string) {
	if ch.MaxSpeakers < 0 || ch.MaxSpeakers > maxShapedSpeakers {
		v.channelErr(ch, "max_speakers", display, "must be 0 (everyone is heard) to %d (got %d)", maxShapedSpeakers, ch.MaxSpeakers)
	}
	if ch.MixAbove < 0 || ch.MixAbove > maxShapedSpeakers {
		v.channelErr(ch, "mix_above", display, "must be 0 (always mix) to %d (got %d)", maxShapedSpeakers, ch.MixAbove)
	}
	if ch.MixAbove > 0 && !ch.Mix {
		v.channelErr(ch, "mix_above", display, "has no effect without mix = true")
	}
	if ch.Record && !v.c.Server.AllowRecording {
		v.channelErr(ch, "record", display, "needs allow_recording = true in [server]: recording is off on this server")
	}
	if (ch.Mix || ch.Record || ch.MaxSpeakers > 0) && ch.Temporary {
		v.channelErr(ch, "temporary", display, "a temporary channel cannot be shaped (max_speakers, mix, record)")
	}
}

func (v *validator) floor(ch *Channel, display string) {
	if !ch.Floor {
		for _, k := range []struct {
			key string
			set bool
		}{
			{"floor_groups", len(ch.FloorGroups) > 0},
			{"floor_requests", ch.FloorRequests != ""},
			{"speaking_time", ch.SpeakingTime.Duration != 0},
			{"floor_minutes", ch.FloorMinutes},
		} {
			if k.set {
				v.channelErr(ch, k.key, display, "%s needs floor = true", k.key)
			}
		}
		return
	}
	if ch.Temporary {
		v.channelErr(ch, "floor", display, "a temporary channel cannot be a floor-controlled hall")
	}
	if d := ch.SpeakingTime.Duration; d != 0 && d < time.Minute {
		v.channelErr(ch, "speaking_time", display, "must be at least 1m, or 0 for no limit (got %v)", d)
	}
	for _, g := range ch.FloorGroups {
		if err := CheckGroupSpec(g); err != nil {
			v.channelErr(ch, "floor_groups", display, "%v", err)
		}
	}
	if r := ch.FloorRequests; r != "" && !slices.ContainsFunc(ch.Children, func(c Channel) bool { return c.Name == r }) {
		v.channelErr(ch, "floor_requests", display, "%q is not a subchannel of %q", r, ch.Name)
	}
}

func rootName(path string) string {
	if path == "" {
		return "the root channel"
	}
	return strconv.Quote(path)
}

// CompilePattern compiles a user or channel name pattern (server.username_pattern,
// server.channel_name_pattern) the way Murmur applies it: anchored, so the
// whole name must match. Murmur's patterns come from Qt, where \w and \d match
// any Unicode letter or digit; Go's match only ASCII, so CompilePattern
// rewrites \w, \W and \d (outside and inside character classes) to their
// Unicode forms. Without that, the default patterns would reject names such
// as "Jürgen" that Murmur accepts.
func CompilePattern(pattern string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(`^(?:` + unicodeClasses(pattern) + `)$`)
	if err != nil {
		return nil, fmt.Errorf("invalid pattern %q: %v", pattern, err)
	}
	return re, nil
}

const (
	wordClass    = `\p{L}\p{N}\p{M}_` // Qt's \w: letters, numbers, marks, underscore
	digitClass   = `\p{Nd}`
	nonWordClass = `[^\p{L}\p{N}\p{M}_]`
)

// unicodeClasses rewrites \w, \W and \d in an RE2 pattern to Unicode classes.
// \W inside a character class has no simple Unicode equivalent and is left
// as it is.
func unicodeClasses(p string) string {
	var b strings.Builder
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			i++
			switch e := p[i]; {
			case e == 'w' && inClass:
				b.WriteString(wordClass)
			case e == 'w':
				b.WriteString("[" + wordClass + "]")
			case e == 'd' && inClass:
				b.WriteString(digitClass)
			case e == 'd':
				b.WriteString("[" + digitClass + "]")
			case e == 'W' && !inClass:
				b.WriteString(nonWordClass)
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		case c == '[' && !inClass:
			inClass = true
			b.WriteByte(c)
			// A ']' right after '[' or '[^' is a literal.
			if i+1 < len(p) && p[i+1] == '^' {
				i++
				b.WriteByte('^')
			}
			if i+1 < len(p) && p[i+1] == ']' {
				i++
				b.WriteByte(']')
			}
		case c == '[' && inClass && i+1 < len(p) && p[i+1] == ':':
			// POSIX class such as [:alpha:]; copy it whole.
			end := strings.Index(p[i:], ":]")
			if end < 0 {
				b.WriteString(p[i:])
				return b.String()
			}
			b.WriteString(p[i : i+end+2])
			i += end + 1
		case c == ']' && inClass:
			inClass = false
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// ParseVersion parses a Mumble version written as "major.minor.patch"
// (e.g. "1.4.0"), as suggest_version takes it.
func ParseVersion(v string) (major, minor, patch uint16, err error) {
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return 0, 0, 0, fmt.Errorf("want a version such as \"1.4.0\", got %q", v)
	}
	var nums [3]uint16
	for i, p := range parts {
		n, perr := strconv.ParseUint(p, 10, 16)
		if perr != nil {
			return 0, 0, 0, fmt.Errorf("want a version such as \"1.4.0\", got %q", v)
		}
		nums[i] = uint16(n)
	}
	return nums[0], nums[1], nums[2], nil
}
