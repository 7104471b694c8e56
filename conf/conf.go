// Package conf defines Plenum's TOML configuration: the schema (Config,
// Server, Channel), the embedded default configuration (default.toml),
// loading and validation.
//
// A configuration file has a [server] table with the settings Murmur keeps in
// its ini file (spelled in snake_case, see Server) and a tree of channels
// below the root channel, written as [[channel]] tables that nest as
// [[channel.channel]], [[channel.channel.channel]] and so on. Channels are
// addressed by their path relative to the root, with '/' between names, for
// example "Breakout rooms/Room 1"; that is how links and default_channel
// refer to them.
//
// Keys that are absent from a file take the defaults documented on Server.
// Every problem found in a file is reported, not only the first one, as an
// *Error naming the file, line and key; several problems are joined with
// errors.Join (use Errors to take them apart again).
//
// Groups and ACLs follow Murmur's model (see Group and ACLEntry): the root
// channel's are the top-level [groups.NAME] and [[acl]] tables, a channel's
// are [channel.groups.NAME] and [[channel.acl]] tables inside it.
//
// Encode and WriteFile write a configuration back (for edits made from
// Mumble clients); Diff tells what a reloaded file changed.
package conf

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is a whole Plenum configuration.
type Config struct {
	Server   Server    `toml:"server"`
	Cluster  Cluster   `toml:"cluster"` // several nodes, one plenary (cluster.go); empty for a single node
	Channels []Channel `toml:"channel"` // children of the root channel, in file order
	File     string    `toml:"-"`       // where it was loaded from ("" for the embedded default)

	// The root channel's groups ([groups.admin]) and ACL entries ([[acl]],
	// in evaluation order).
	Groups map[string]*Group `toml:"groups"`
	ACL    []ACLEntry        `toml:"acl"`

	// AdminTokens are the admin API's tokens ([[admin_token]], see
	// APIToken), besides admin_token and the generated one.
	AdminTokens []APIToken `toml:"admin_token"`
	Auth        *Auth      `toml:"auth"` // sign-in with an organisation's accounts (auth.go)

	// serverLines maps a [server] key ("listen") to the line it was set on;
	// the key "" holds the line of the [server] header.
	serverLines map[string]int
	authLines   map[string]int // [auth] keys by path below it ("ldap.url")
}

// Server holds the server-wide settings. The defaults are Murmur's (1.5), except
// where a comment says otherwise.
type Server struct {
	Listen             string   `toml:"listen"`               // host:port, TCP and UDP on the same port; default ":64738"
	DataDir            string   `toml:"data_dir"`             // certificate (and later the database) live here; default "plenum-data"
	Certificate        string   `toml:"certificate"`          // PEM file; empty = generate a self-signed one in DataDir on first start
	Key                string   `toml:"key"`                  // PEM file; required if Certificate is set, and vice versa
	Name               string   `toml:"name"`                 // root channel name (Murmur's registerName); default "Root"
	RootDescription    string   `toml:"root_description"`     // the root channel's description; clients may edit it (Write on root)
	WelcomeText        string   `toml:"welcome_text"`         // sent to every user on connect; may contain HTML
	Password           string   `toml:"password"`             // server password, checked only for unregistered users
	MaxUsers           int      `toml:"max_users"`            // default 1000
	UsersPerChannel    int      `toml:"users_per_channel"`    // 0 = unlimited (default)
	Bandwidth          int      `toml:"bandwidth"`            // bits/s per user, default 558000
	Timeout            Duration `toml:"timeout"`              // default 30s; "30s" style strings
	TextMessageLength  int      `toml:"text_message_length"`  // default 5000, 0 = unlimited
	ImageMessageLength int      `toml:"image_message_length"` // default 131072, 0 = unlimited
	AllowHTML          bool     `toml:"allow_html"`           // default true
	OpusThreshold      int      `toml:"opus_threshold"`       // percent, default 0 (1.5 semantics), 0..100
	DefaultChannel     string   `toml:"default_channel"`      // path of the channel new users enter, "" = root
	RememberChannel    bool     `toml:"remember_channel"`     // default true: registered users return to their last channel
	MessageLimit       int      `toml:"message_limit"`        // messages/s, default 1 (Murmur); >= 1
	MessageBurst       int      `toml:"message_burst"`        // default 5; >= 1

	// UDPGSO lets the voice path hand the kernel a run of same-size
	// datagrams for one listener as one send that the kernel cuts up (UDP
	// generic segmentation offload, Linux 4.18+). Off is for comparing,
	// or for a network device that mishandles it.
	UDPGSO bool `toml:"udp_gso"` // default true

	ListenersPerChannel int    `toml:"listeners_per_channel"` // channel listeners (1.4+) per channel; -1 = unlimited (default), 0 = listening disabled
	ListenersPerUser    int    `toml:"listeners_per_user"`    // channels one user may listen to; -1 = unlimited (default), 0 = disabled
	UsernamePattern     string `toml:"username_pattern"`      // default Murmur's `[ -=\w\[\]\{\}\(\)\@\|\.]+` (anchored when used, see CompilePattern)
	ChannelNamePattern  string `toml:"channel_name_pattern"`  // default `[ -=\w\#\[\]\{\}\(\)\@\|]+`
	LegacyPingReply     bool   `toml:"legacy_ping_reply"`     // default false: answer 12-byte legacy server-list pings with Murmur's 24-byte reply (2x amplification); see docs
	SendVersion         bool   `toml:"send_version"`          // default true: include release/OS in Version
	LogIPs              bool   `toml:"log_ips"`               // default false: privacy, no IP addresses in logs
	LogNames            bool   `toml:"log_names"`             // default false: logs name unregistered users by session number only
	ShowAddresses       bool   `toml:"show_addresses"`        // default false: UserStats and BanList carry no address to any client
	AdminListen         string `toml:"admin_listen"`          // host:port of the admin HTTP listener (status page, API, /metrics); default "127.0.0.1:64740", "" = off

	// AdminToken is the token the admin listener asks for: the status
	// page and its API, /metrics from other machines, and the floor
	// actions. "" means the token the server generates on first start and
	// keeps in DataDir/admin_token.
	AdminToken string `toml:"admin_token"`
	// AdminHosts are further names (or addresses) the admin listener may
	// be reached by, besides loopback addresses, "localhost" and the host
	// of admin_listen; requests naming any other host are refused, which
	// defeats DNS rebinding. Entries are host names or IP addresses
	// without a port.
	AdminHosts []string `toml:"admin_hosts"`
	// AdminEventsText puts text messages (sender, recipients, text) into
	// the admin API's event stream. Off by default: what people write to
	// each other is not the operator's business unless the operator says
	// so in the file.
	AdminEventsText bool `toml:"admin_events_text"`

	// ACME: a certificate a browser accepts, obtained and renewed by the
	// server itself (acme.go in package server). Off while ACMEDomain is
	// empty; not together with Certificate.
	ACMEDomain    string `toml:"acme_domain"`    // one or more DNS names, separated by spaces or commas; "" = off (see ACMEDomains)
	ACMEEmail     string `toml:"acme_email"`     // contact address given to the CA; "" = none
	ACMEDirectory string `toml:"acme_directory"` // the CA's ACME directory URL; default Let's Encrypt's production one
	ACMECAFile    string `toml:"acme_ca_file"`   // PEM of further roots to trust for the ACME server (a private CA, tests); "" = the system's

	// Browsers (docs/WEB.md). WebListen serves the join page and its
	// WebSocket, HTTPS and plain HTTP on one port; "" = off (also for a
	// file without the key: an upgrade opens no port by itself).
	WebListen  string `toml:"web_listen"`   // host:port; ":8443" in the embedded default
	WebUDPPort int    `toml:"web_udp_port"` // all browsers' ICE/DTLS/SRTP; default 64739; 0 = any free port
	WebTCPPort int    `toml:"web_tcp_port"` // ICE over TCP; default 64739; 0 = any free port
	// WebAddresses are the public IP addresses announced to browsers as
	// ICE candidates (a NAT's outside address); empty = the machine's own.
	WebAddresses []string `toml:"web_addresses"`
	// WebOrigins are further Origins ("https://example.org") allowed to
	// open the WebSocket besides the page's own host.
	WebOrigins []string `toml:"web_origins"`

	// Recording. Off by default: a privacy-minded server records nothing.
	// When on, clients are told recording is allowed (they may record
	// locally, showing everyone their recording flag) and channels with
	// record = true are recorded by the server.
	AllowRecording    bool  `toml:"allow_recording"`     // default false
	RecordingMaxBytes int64 `toml:"recording_max_bytes"` // a recording moves on to a new file at this size; default 256 MiB

	// Suggestions clients show their users (SuggestConfig); unset = none.
	SuggestVersion    string `toml:"suggest_version"`      // e.g. "1.4.0": clients older than this are told to upgrade
	SuggestPositional *bool  `toml:"suggest_positional"`   // suggest positional audio on or off
	SuggestPushToTalk *bool  `toml:"suggest_push_to_talk"` // suggest push-to-talk on or off

	// Stopping: how long SIGTERM may take to tell clients and let them
	// hang up before the remaining connections are cut.
	ShutdownTimeout Duration `toml:"shutdown_timeout"` // default 5s; > 0

	// Limits and abuse control. They spare a venue where hundreds of
	// people share one NAT address: only failed attempts count towards an
	// autoban, and an address with users online may fail far more often.
	HandshakeTimeout        Duration `toml:"handshake_timeout"`          // TLS plus Authenticate must finish within this; default 10s
	MaxUnauthenticatedPerIP int      `toml:"max_unauthenticated_per_ip"` // connections from one address (IPv6: one /64) not yet authenticated; default 500, 0 = no cap
	AutobanAttempts         int      `toml:"autoban_attempts"`           // failed attempts per window (times 1 + the address's users online) before an autoban; default 100, 0 = autoban off
	AutobanWindow           Duration `toml:"autoban_window"`             // default 2m
	AutobanDuration         Duration `toml:"autoban_duration"`           // default 5m
	AutobanExempt           []string `toml:"autoban_exempt"`             // addresses or CIDR prefixes never autobanned, e.g. a venue's NAT
}

// Channel is one channel below the root channel.
type Channel struct {
	Name        string   `toml:"name"`
	Description string   `toml:"description"`
	Position    int32    `toml:"position"`
	MaxUsers    uint32   `toml:"max_users"` // 0 = server default
	Links       []string `toml:"links"`     // paths of channels to link with, e.g. "Plenary" or "Breakouts/Room 1" (relative to root, '/'-separated); links are symmetric

	// Temporary marks a channel that exists when the server starts and is
	// removed by the server once it becomes empty after someone was in it,
	// like a channel a client created with MakeTempChannel. It cannot have
	// subchannels and cannot be the default channel.
	Temporary bool `toml:"temporary"`
	// InheritACL is Murmur's inherit_acls: whether ACL entries of the parent
	// channels (those with apply_subs) apply here. Absent = true; use InheritsACL.
	InheritACL *bool             `toml:"inherit_acl"`
	Groups     map[string]*Group `toml:"groups"` // [channel.groups.NAME]
	ACL        []ACLEntry        `toml:"acl"`    // [[channel.acl]], in evaluation order

	// Shaping speech on the server's 20 ms tick (see docs/STAGE.md).
	// MaxSpeakers > 0: listeners hear only the N loudest of those speaking
	// at once (priority speakers always). Mix: members hear one mixed
	// stream from the channel's virtual user, each speaker without their
	// own voice; MixAbove > 0 mixes only while more than that many speak
	// and forwards otherwise. Record: the channel's mix is written to an
	// Ogg Opus file in the data directory while everyone in the channel
	// sees the recording flag; needs server.allow_recording.
	MaxSpeakers int  `toml:"max_speakers"`
	Mix         bool `toml:"mix"`
	MixAbove    int  `toml:"mix_above"`
	Record      bool `toml:"record"`

	// Floor control (see docs/FLOOR.md). Floor: members hear everything but
	// speak only while they hold the floor; FloorGroups (group specs, e.g.
	// "chair") always may. FloorRequests names a subchannel whose entrants
	// ask for the floor. FloorMinutes keeps the list of turns (who, when,
	// how long) in memory for the minutes, announced in the hall; without
	// it nothing is kept about a speaker who is not registered once they
	// leave.
	Floor         bool     `toml:"floor"`
	FloorGroups   []string `toml:"floor_groups"`
	FloorRequests string   `toml:"floor_requests"`
	SpeakingTime  Duration `toml:"speaking_time"` // a turn ends after this (a warning 30 s before); 0 = no limit
	FloorMinutes  bool     `toml:"floor_minutes"`

	Children []Channel `toml:"channel"` // nested [[channel.channel]]
	Line     int       `toml:"-"`       // line in the file where this channel's table starts (0 if unknown)

	// keyLines maps a key of this channel's table ("links") to its line.
	keyLines map[string]int
}

// Default values of the [server] keys.
const (
	DefaultListen             = ":64738"
	DefaultAdminListen        = "127.0.0.1:64740"
	DefaultWebListen          = ":8443"
	DefaultWebPort            = 64739 // web_udp_port and web_tcp_port
	DefaultDataDir            = "plenum-data"
	DefaultACMEDirectory      = "https://acme-v02.api.letsencrypt.org/directory"
	DefaultName               = "Root"
	DefaultMaxUsers           = 1000
	DefaultRecordingMaxBytes  = 256 << 20
	DefaultBandwidth          = 558000
	DefaultTimeout            = 30 * time.Second
	DefaultShutdownTimeout    = 5 * time.Second
	DefaultTextMessageLength  = 5000
	DefaultImageMessageLength = 131072
	DefaultMessageLimit       = 1
	DefaultMessageBurst       = 5
	DefaultUsernamePattern    = `[ -=\w\[\]\{\}\(\)\@\|\.]+`
	DefaultChannelNamePattern = `[ -=\w\#\[\]\{\}\(\)\@\|]+`

	DefaultHandshakeTimeout        = 10 * time.Second
	DefaultMaxUnauthenticatedPerIP = 500
	DefaultAutobanAttempts         = 100
	DefaultAutobanWindow           = 2 * time.Minute
	DefaultAutobanDuration         = 5 * time.Minute
)

// DefaultServer returns the [server] settings used for keys absent from a file.
func DefaultServer() Server {
	return Server{
		Listen:              DefaultListen,
		DataDir:             DefaultDataDir,
		ACMEDirectory:       DefaultACMEDirectory,
		Name:                DefaultName,
		MaxUsers:            DefaultMaxUsers,
		RecordingMaxBytes:   DefaultRecordingMaxBytes,
		Bandwidth:           DefaultBandwidth,
		Timeout:             Duration{DefaultTimeout},
		TextMessageLength:   DefaultTextMessageLength,
		ImageMessageLength:  DefaultImageMessageLength,
		AllowHTML:           true,
		RememberChannel:     true,
		MessageLimit:        DefaultMessageLimit,
		MessageBurst:        DefaultMessageBurst,
		UDPGSO:              true,
		ListenersPerChannel: -1,
		ListenersPerUser:    -1,
		UsernamePattern:     DefaultUsernamePattern,
		ChannelNamePattern:  DefaultChannelNamePattern,
		SendVersion:         true,
		AdminListen:         DefaultAdminListen,
		WebListen:           DefaultWebListen,
		WebUDPPort:          DefaultWebPort,
		WebTCPPort:          DefaultWebPort,
		ShutdownTimeout:     Duration{DefaultShutdownTimeout},

		HandshakeTimeout:        Duration{DefaultHandshakeTimeout},
		MaxUnauthenticatedPerIP: DefaultMaxUnauthenticatedPerIP,
		AutobanAttempts:         DefaultAutobanAttempts,
		AutobanWindow:           Duration{DefaultAutobanWindow},
		AutobanDuration:         Duration{DefaultAutobanDuration},
	}
}

//go:embed default.toml
var defaultTOML []byte

// DefaultTOML returns the bytes of the embedded default configuration file
// (a copy; callers may modify it).
func DefaultTOML() []byte { return bytes.Clone(defaultTOML) }

// Default returns the embedded default configuration, parsed and validated.
// Its File is "". It panics only if the embedded file is broken, which a test
// rules out.
func Default() *Config {
	c, err := Parse(defaultTOML, "default.toml")
	if err != nil {
		panic("conf: embedded default.toml is invalid: " + err.Error())
	}
	c.File = ""
	return c
}

// Load reads, parses and validates the configuration file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error(), Err: err}
	}
	return Parse(data, path)
}

// Parse parses and validates a configuration; name (usually the file name) is
// used in error messages and stored in Config.File. On error it returns nil
// and every problem found, joined.
func Parse(data []byte, name string) (*Config, error) {
	// Pass 1: syntax. Decoding into a generic map reports syntax errors
	// with their position and gives us the raw values to type-check.
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil, tomlError(name, err)
	}

	// Pass 2: our own scan of the source for the line of every table header
	// and key, then a check of the raw values against the schema. This
	// reports every unknown key and every wrongly typed value with its line,
	// which the decoder cannot do (it stops at the first problem and does not
	// tell elements of an array of tables apart).
	pos := scanPositions(data)
	if errs := checkSchema(name, raw, pos); len(errs) > 0 {
		return nil, joinErrors(errs)
	}

	// Pass 3: decode into a Config pre-filled with the defaults.
	c := &Config{Server: DefaultServer(), File: name}
	md, err := toml.Decode(string(data), c)
	if err != nil {
		return nil, tomlError(name, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		// checkSchema should have caught these; belt and braces.
		errs := make([]*Error, 0, len(und))
		for _, k := range und {
			errs = append(errs, &Error{File: name, Key: k.String(), Msg: "unknown key"})
		}
		return nil, joinErrors(errs)
	}
	c.attachLines(pos)

	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// attachLines copies line numbers from the source scan into c.
func (c *Config) attachLines(pos positions) {
	c.serverLines = map[string]int{"": pos.line(pathKey("server"))}
	for k, l := range pos.keysUnder(pathKey("server")) {
		c.serverLines[k] = l
	}
	attachACLLines(c.Groups, c.ACL, "", pos)
	for i := range c.AdminTokens {
		c.AdminTokens[i].Line = pos.line(pathKey("admin_token", strconv.Itoa(i)))
	}
	c.attachAuthLines(pos)
	var walk func(chs []Channel, prefix string)
	walk = func(chs []Channel, prefix string) {
		for i := range chs {
			p := prefix + sep + "channel" + sep + strconv.Itoa(i)
			if prefix == "" {
				p = pathKey("channel", strconv.Itoa(i))
			}
			chs[i].Line = pos.line(p)
			chs[i].keyLines = pos.keysUnder(p)
			attachACLLines(chs[i].Groups, chs[i].ACL, p, pos)
			walk(chs[i].Children, p)
		}
	}
	walk(c.Channels, "")
}

// Walk calls fn for every channel below the root, depth-first in file order
// (a channel before its children). path is the channel's '/'-separated path
// from the root, e.g. "Breakout rooms/Room 1"; root children have parentPath "".
// ch points into c, so fn may modify the channel (but not the tree's shape).
func (c *Config) Walk(fn func(path string, ch *Channel, parentPath string)) {
	var walk func(chs []Channel, parent string)
	walk = func(chs []Channel, parent string) {
		for i := range chs {
			ch := &chs[i]
			p := JoinPath(parent, ch.Name)
			fn(p, ch, parent)
			walk(ch.Children, p)
		}
	}
	walk(c.Channels, "")
}

// Lookup returns the channel at path (as used by links and default_channel),
// or nil. The empty path is the root channel, which is not a Channel: Lookup
// returns nil for it.
func (c *Config) Lookup(path string) *Channel {
	if path == "" {
		return nil
	}
	chs := c.Channels
	var found *Channel
	for _, name := range strings.Split(path, "/") {
		found = nil
		for i := range chs {
			if chs[i].Name == name {
				found = &chs[i]
				break
			}
		}
		if found == nil {
			return nil
		}
		chs = found.Children
	}
	return found
}

// LinkPairs returns every link once, as a pair of channel paths with the
// lexically smaller path first, sorted. Links are symmetric: "A" linking
// "B", "B" linking "A", or both, all give the one pair {"A", "B"}. Links to
// unknown channels and to self are skipped (Validate reports them).
func (c *Config) LinkPairs() [][2]string {
	seen := map[[2]string]bool{}
	var out [][2]string
	c.Walk(func(path string, ch *Channel, _ string) {
		for _, l := range ch.Links {
			if l == path || c.Lookup(l) == nil {
				continue
			}
			p := [2]string{path, l}
			if p[1] < p[0] {
				p[0], p[1] = p[1], p[0]
			}
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i][0] != out[j][0] {
			return out[i][0] < out[j][0]
		}
		return out[i][1] < out[j][1]
	})
	return out
}

// JoinPath appends a channel name to a channel path ("" is the root).
func JoinPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "/" + name
}

// Duration is a time.Duration written in TOML as a string such as "30s",
// "1m" or "1m30s" (time.ParseDuration syntax). A bare integer is accepted as
// a number of seconds, as in Murmur's ini file.
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := parseDuration(string(text))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// UnmarshalTOML implements toml.Unmarshaler so that integers mean seconds.
func (d *Duration) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		return d.UnmarshalText([]byte(v))
	case int64:
		d.Duration = time.Duration(v) * time.Second
		return nil
	}
	return fmt.Errorf("want a duration such as \"30s\", got %s", tomlTypeName(v))
}

func parseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want e.g. \"30s\" or \"1m\")", s)
	}
	return v, nil
}

// Error is one problem with a configuration, located by file, line and key.
type Error struct {
	File string // file name; "" for a Config built in code
	Line int    // 1-based; 0 if unknown
	Key  string // dotted key, e.g. "server.timeout" or "channel[1].channel[0].links"; "" if none
	Msg  string
	Err  error // underlying error, if any (e.g. from os.ReadFile or the TOML parser)
}

// Error formats e as "file:line: key: problem", leaving out the parts that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	f := e.File
	if f == "" {
		f = "config"
	}
	b.WriteString(f)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Errors returns every *Error in err (as returned by Load, Parse and
// Validate), in order.
func Errors(err error) []*Error {
	var out []*Error
	var visit func(error)
	visit = func(err error) {
		if err == nil {
			return
		}
		if e, ok := err.(*Error); ok {
			out = append(out, e)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				visit(e)
			}
			return
		}
		var e *Error
		if errors.As(err, &e) {
			out = append(out, e)
		}
	}
	visit(err)
	return out
}

// joinErrors sorts errs by line (stable) and joins them; nil if empty.
func joinErrors(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
	list := make([]error, len(errs))
	for i, e := range errs {
		list[i] = e
	}
	return errors.Join(list...)
}

// tomlError converts an error from the TOML decoder into an *Error.
func tomlError(name string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return &Error{File: name, Line: pe.Position.Line, Key: pe.LastKey, Msg: pe.Message, Err: err}
	}
	return &Error{File: name, Msg: strings.TrimPrefix(err.Error(), "toml: "), Err: err}
}

func tomlTypeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date/time"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	case []any:
		return "an array"
	}
	return reflect.TypeOf(v).String()
}
