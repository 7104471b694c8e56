package conf

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	c := Default()
	if c.File != "" {
		t.Errorf("File = %q, want empty", c.File)
	}
	if c.Server.MaxUsers < 1000 {
		t.Errorf("MaxUsers = %d, want >= 1000", c.Server.MaxUsers)
	}
	if c.Server.UsersPerChannel != 0 {
		t.Errorf("UsersPerChannel = %d, want 0 (no cap)", c.Server.UsersPerChannel)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	// The file documents the defaults: every [server] value in it except the
	// welcome text and default channel must equal the built-in default.
	want := DefaultServer()
	want.WelcomeText = c.Server.WelcomeText
	want.DefaultChannel = c.Server.DefaultChannel
	if !reflect.DeepEqual(c.Server, want) {
		t.Errorf("default.toml [server] differs from DefaultServer():\n got %+v\nwant %+v", c.Server, want)
	}
	if c.Lookup(c.Server.DefaultChannel) == nil || c.Server.DefaultChannel != "Lobby" {
		t.Errorf("default_channel = %q, want existing \"Lobby\"", c.Server.DefaultChannel)
	}
	var paths []string
	c.Walk(func(path string, ch *Channel, _ string) {
		paths = append(paths, path)
		if ch.Line == 0 {
			t.Errorf("channel %q has no line", path)
		}
	})
	wantPaths := []string{"Lobby", "Plenary", "Overflow", "Breakout rooms",
		"Breakout rooms/Room 1", "Breakout rooms/Room 2", "Breakout rooms/Room 3", "Breakout rooms/Room 4"}
	if !reflect.DeepEqual(paths, wantPaths) {
		t.Errorf("channels = %q, want %q", paths, wantPaths)
	}
	if got := c.LinkPairs(); !reflect.DeepEqual(got, [][2]string{{"Overflow", "Plenary"}}) {
		t.Errorf("LinkPairs = %q", got)
	}
	// Default returns a fresh copy each time.
	c.Server.MaxUsers = 1
	if Default().Server.MaxUsers == 1 {
		t.Error("Default shares state between calls")
	}
	b := DefaultTOML()
	b[0] = 'X'
	if DefaultTOML()[0] == 'X' {
		t.Error("DefaultTOML returns the embedded slice itself")
	}
}

func TestMinimalExample(t *testing.T) {
	c, err := Load(filepath.Join("examples", "minimal.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.DefaultChannel != "Meeting" || len(c.Channels) != 2 {
		t.Errorf("unexpected config: %+v", c)
	}
}

func TestDefaultsForAbsentKeys(t *testing.T) {
	tests := []struct {
		name  string
		toml  string
		check func(*Config) bool
	}{
		{"empty file gives all defaults", ``, func(c *Config) bool {
			return reflect.DeepEqual(c.Server, DefaultServer()) && len(c.Channels) == 0
		}},
		{"allow_html true when missing", "[server]\nname = \"X\"\n", func(c *Config) bool { return c.Server.AllowHTML && c.Server.Name == "X" }},
		{"allow_html false when set false", "[server]\nallow_html = false\n", func(c *Config) bool { return !c.Server.AllowHTML }},
		{"remember_channel true when missing", "[server]\n", func(c *Config) bool { return c.Server.RememberChannel }},
		{"udp_gso true when missing", "[server]\n", func(c *Config) bool { return c.Server.UDPGSO }},
		{"udp_gso false when set", "[server]\nudp_gso = false\n", func(c *Config) bool { return !c.Server.UDPGSO }},
		{"remember_channel false when set", "[server]\nremember_channel = false\n", func(c *Config) bool { return !c.Server.RememberChannel }},
		{"send_version false when set", "[server]\nsend_version = false\n", func(c *Config) bool {
			return !c.Server.SendVersion && c.Server.AllowHTML && c.Server.MaxUsers == 1000
		}},
		{"show_addresses off when absent", "[server]\nlog_ips = true\n", func(c *Config) bool { return !c.Server.ShowAddresses && c.Server.LogIPs }},
		{"show_addresses on when set", "[server]\nshow_addresses = true\n", func(c *Config) bool { return c.Server.ShowAddresses && !c.Server.LogIPs }},
		{"timeout string", "[server]\ntimeout = \"1m\"\n", func(c *Config) bool { return c.Server.Timeout.Duration == time.Minute }},
		{"timeout integer seconds", "[server]\ntimeout = 45\n", func(c *Config) bool { return c.Server.Timeout.Duration == 45*time.Second }},
		{"absent timeout 30s", "[server]\n", func(c *Config) bool { return c.Server.Timeout.Duration == 30*time.Second }},
		{"absent shutdown_timeout 5s", "[server]\n", func(c *Config) bool { return c.Server.ShutdownTimeout.Duration == 5*time.Second }},
		{"shutdown_timeout string", "[server]\nshutdown_timeout = \"1.5s\"\n", func(c *Config) bool {
			return c.Server.ShutdownTimeout.Duration == 1500*time.Millisecond
		}},
		{"suggestions unset when absent", "[server]\n", func(c *Config) bool {
			return c.Server.SuggestPushToTalk == nil && c.Server.SuggestPositional == nil && c.Server.SuggestVersion == ""
		}},
		{"suggestions set", "[server]\nsuggest_push_to_talk = true\nsuggest_positional = false\nsuggest_version = \"1.4.0\"\n", func(c *Config) bool {
			s := c.Server
			return s.SuggestPushToTalk != nil && *s.SuggestPushToTalk && s.SuggestPositional != nil && !*s.SuggestPositional && s.SuggestVersion == "1.4.0"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.toml), "t.toml")
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("check failed: %+v", c.Server)
			}
		})
	}
}

const nested = `[server]
default_channel = "B/B2/B2a"

[[channel]]
name = "A"
links = ["B/B2", "C"]

[[channel]]
name = "B"

  [[channel.channel]]
  name = "B1"

  [[channel.channel]]
  name = "B2"

    [[channel.channel.channel]]
    name = "B2a"
    max_users = 5

[[channel]]
name = "C"
links = ["A"]   # both directions: still one link
`

func TestNestedWalkLinks(t *testing.T) {
	c, err := Parse([]byte(nested), "nested.toml")
	if err != nil {
		t.Fatal(err)
	}
	type visit struct {
		path, parent string
		line         int
	}
	var got []visit
	c.Walk(func(path string, ch *Channel, parent string) { got = append(got, visit{path, parent, ch.Line}) })
	want := []visit{
		{"A", "", 4}, {"B", "", 8}, {"B/B1", "B", 11}, {"B/B2", "B", 14},
		{"B/B2/B2a", "B/B2", 17}, {"C", "", 21},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Walk:\n got %v\nwant %v", got, want)
	}
	if ch := c.Lookup("B/B2/B2a"); ch == nil || ch.MaxUsers != 5 {
		t.Errorf("Lookup(B/B2/B2a) = %+v", ch)
	}
	for _, p := range []string{"", "B/B3", "B2", "A/B"} {
		if c.Lookup(p) != nil {
			t.Errorf("Lookup(%q) found a channel", p)
		}
	}
	if got, want := c.LinkPairs(), [][2]string{{"A", "B/B2"}, {"A", "C"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("LinkPairs = %q, want %q", got, want)
	}
}

// wantErrs checks that err holds exactly the wanted errors, by line and key,
// with msg a substring of the message.
type wantErr struct {
	line int
	key  string
	msg  string
}

func checkErrs(t *testing.T, err error, file string, want []wantErr) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", want)
	}
	got := Errors(err)
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(got), len(want), err)
	}
	for i, w := range want {
		g := got[i]
		if g.File != file || g.Line != w.line || g.Key != w.key || !strings.Contains(g.Msg, w.msg) {
			t.Errorf("error %d = %q (file %q line %d key %q), want line %d key %q msg containing %q",
				i, g.Error(), g.File, g.Line, g.Key, w.line, w.key, w.msg)
		}
		prefix := file + ":" + itoa(w.line) + ": " + w.key + ": "
		if w.key == "" {
			prefix = file + ":" + itoa(w.line) + ": "
		}
		if !strings.HasPrefix(g.Error(), prefix) {
			t.Errorf("error %d text %q lacks prefix %q", i, g.Error(), prefix)
		}
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	s := ""
	for ; i > 0; i /= 10 {
		s = string(rune('0'+i%10)) + s
	}
	return s
}

func TestValidationErrors(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want []wantErr
	}{
		{"empty channel name", "[[channel]]\nname = \"\"\n", []wantErr{{2, "channel[0].name", "must not be empty"}}},
		{"missing channel name", "[[channel]]\nposition = 1\n", []wantErr{{1, "channel[0].name", "must not be empty"}}},
		{"duplicate sibling", "[[channel]]\nname = \"A\"\n[[channel]]\nname = \"A\"\n", []wantErr{{4, "channel[1].name", `duplicate channel name "A"`}}},
		{"same name in different parents is fine, nested duplicate is not",
			"[[channel]]\nname = \"A\"\n[[channel.channel]]\nname = \"A\"\n[[channel.channel]]\n\nname = \"A\"\n",
			[]wantErr{{7, "channel[0].channel[1].name", `duplicate channel name "A" under "A" (first defined at line 3)`}}},
		{"slash in name", "[[channel]]\nname = \"A/B\"\n", []wantErr{{2, "channel[0].name", "must not contain '/'"}}},
		{"name not matching pattern", "[[channel]]\nname = \"bad>name\"\n", []wantErr{{2, "channel[0].name", "does not match"}}},
		{"custom pattern", "[server]\nchannel_name_pattern = '[a-z]+'\n[[channel]]\nname = \"Abc\"\n", []wantErr{{4, "channel[0].name", "does not match"}}},
		{"unknown link", "[[channel]]\nname = \"A\"\nlinks = [\"B\"]\n", []wantErr{{3, "channel[0].links", `unknown channel "B"`}}},
		{"link to self", "[[channel]]\nname = \"A\"\n[[channel.channel]]\nname = \"B\"\nlinks = [\"A/B\"]\n", []wantErr{{5, "channel[0].channel[0].links", "links to itself"}}},
		{"invalid username regexp", "[server]\nusername_pattern = '[a-'\n", []wantErr{{2, "server.username_pattern", "invalid pattern"}}},
		{"invalid channel regexp", "[server]\n\nchannel_name_pattern = '(x'\n", []wantErr{{3, "server.channel_name_pattern", "invalid pattern"}}},
		{"listeners below -1", "[server]\nlisteners_per_user = -2\n", []wantErr{{2, "server.listeners_per_user", "must be -1"}}},
		{"suggest_version malformed", "[server]\nsuggest_version = \"1.4\"\n", []wantErr{{2, "server.suggest_version", "want a version"}}},
		{"timeout zero", "[server]\ntimeout = \"0s\"\n", []wantErr{{2, "server.timeout", "must be positive"}}},
		{"timeout negative", "[server]\ntimeout = \"-5s\"\n", []wantErr{{2, "server.timeout", "must be positive"}}},
		{"shutdown_timeout zero", "[server]\nshutdown_timeout = \"0s\"\n", []wantErr{{2, "server.shutdown_timeout", "must be positive"}}},
		{"max_users zero", "[server]\nmax_users = 0\n", []wantErr{{2, "server.max_users", "at least 1"}}},
		{"opus_threshold high", "[server]\nopus_threshold = 101\n", []wantErr{{2, "server.opus_threshold", "between 0 and 100"}}},
		{"opus_threshold negative", "[server]\nopus_threshold = -1\n", []wantErr{{2, "server.opus_threshold", "between 0 and 100"}}},
		{"opus_threshold 100 ok plus other error", "[server]\nopus_threshold = 100\nmessage_limit = 0\n", []wantErr{{3, "server.message_limit", "at least 1"}}},
		{"message_burst zero", "[server]\nmessage_burst = 0\n", []wantErr{{2, "server.message_burst", "at least 1"}}},
		{"certificate without key", "[server]\ncertificate = \"c.pem\"\n", []wantErr{{2, "server.certificate", "key is not"}}},
		{"key without certificate", "[server]\n\nkey = \"k.pem\"\n", []wantErr{{3, "server.key", "certificate is not"}}},
		{"default_channel missing", "[server]\ndefault_channel = \"Nope\"\n[[channel]]\nname = \"A\"\n", []wantErr{{2, "server.default_channel", `no channel "Nope"`}}},
		{"listen without port", "[server]\nlisten = \"localhost\"\n", []wantErr{{2, "server.listen", "not host:port"}}},
		{"listen bad port", "[server]\nlisten = \":http\"\n", []wantErr{{2, "server.listen", "port must be a number"}}},
		{"listen port too big", "[server]\nlisten = \"[::1]:70000\"\n", []wantErr{{2, "server.listen", "port must be a number"}}},
		{"web keys", "[server]\nweb_listen = \"8443\"\nweb_udp_port = 70000\nweb_tcp_port = -1\nweb_addresses = [\"203.0.113.7\", \"host\", \"0.0.0.0\"]\nweb_origins = [\"https://ok.example\", \"ok.example\", \"https://x/path\"]\n", []wantErr{
			{2, "server.web_listen", `"8443" is not host:port`},
			{3, "server.web_udp_port", "must be a port from 0 to 65535 (got 70000"},
			{4, "server.web_tcp_port", "(got -1"},
			{5, "server.web_addresses", `entry 2: "host" is not an IP address`},
			{5, "server.web_addresses", `entry 3: "0.0.0.0"`},
			{6, "server.web_origins", `entry 2: "ok.example" is not an origin`},
			{6, "server.web_origins", `entry 3: "https://x/path"`},
		}},
		{"admin_hosts with a port, a URL, a bad name", "[server]\nadmin_hosts = [\"ok.example\", \"host:8080\", \"http://x\", \"a..b\", \"\"]\n", []wantErr{
			{2, "server.admin_hosts", `entry 2: "host:8080" is not a host name`},
			{2, "server.admin_hosts", `entry 3: "http://x"`},
			{2, "server.admin_hosts", `entry 4: "a..b"`},
			{2, "server.admin_hosts", `entry 5: ""`},
		}},
		{"negative lengths", "[server]\ntext_message_length = -1\nimage_message_length = -2\nusers_per_channel = -3\n", []wantErr{
			{2, "server.text_message_length", "must not be negative"},
			{3, "server.image_message_length", "must not be negative"},
			{4, "server.users_per_channel", "must not be negative"},
		}},
		{"all collected in line order", "[server]\nmax_users = 0\ntimeout = \"0s\"\n[[channel]]\nname = \"\"\n[[channel]]\nname = \"X\"\nlinks = [\"Y\", \"X\"]\n", []wantErr{
			{2, "server.max_users", "at least 1"},
			{3, "server.timeout", "must be positive"},
			{5, "channel[0].name", "must not be empty"},
			{8, "channel[1].links", `unknown channel "Y"`},
			{8, "channel[1].links", "links to itself"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.toml), "v.toml")
			if c != nil {
				t.Errorf("Parse returned a config despite errors")
			}
			checkErrs(t, err, "v.toml", tt.want)
		})
	}
}

func TestValidateBuiltInCode(t *testing.T) {
	c := &Config{Server: DefaultServer(), Channels: []Channel{{Name: "A"}, {Name: "A"}}}
	err := c.Validate()
	errs := Errors(err)
	if len(errs) != 1 || errs[0].Line != 0 || errs[0].Key != "channel[1].name" {
		t.Fatalf("Validate = %v", err)
	}
	if got := errs[0].Error(); !strings.HasPrefix(got, "config: channel[1].name: duplicate") {
		t.Errorf("Error() = %q", got)
	}
	c.Channels[1].Name = "B"
	if err := c.Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want []wantErr
	}{
		{"syntax error", "[server]\nlisten = \":1\"\nname = \n", []wantErr{{3, "server.name", "expected value"}}},
		{"junk after value", "[server]\nlisten = \":1\" junk\n", []wantErr{{2, "server", "expected a top-level item to end"}}},
		{"unknown top-level key", "colour = \"red\"\n[server]\n", []wantErr{{1, "colour", "unknown key"}}},
		{"unknown top-level table", "[server]\n[serverr]\nlisten = \":1\"\n", []wantErr{{2, "serverr", "unknown key"}}},
		{"unknown server keys", "[server]\nport = 64738\nlisten = \":1\"\nusers = 5\n", []wantErr{
			{2, "server.port", "unknown key"}, {4, "server.users", "unknown key"}}},
		{"unknown key in channel", "[[channel]]\nname = \"A\"\n[[channel]]\nname = \"B\"\ncolour = 3\n", []wantErr{{5, "channel[1].colour", "unknown key"}}},
		{"unknown key in nested channel", "[[channel]]\nname = \"A\"\n[[channel.channel]]\nname = \"B\"\n[[channel.channel]]\nname = \"C\"\n  acls = []\n", []wantErr{
			{7, "channel[0].channel[1].acls", "unknown key"}}},
		{"wrong type string", "[server]\nname = 5\n", []wantErr{{2, "server.name", "want a string, got an integer"}}},
		{"wrong type int", "[server]\n\nmax_users = \"many\"\n", []wantErr{{3, "server.max_users", "want an integer, got a string"}}},
		{"wrong type optional bool", "[server]\nsuggest_push_to_talk = 1\n", []wantErr{{2, "server.suggest_push_to_talk", "want true or false"}}},
		{"wrong type bool", "[server]\nallow_html = \"yes\"\n", []wantErr{{2, "server.allow_html", "want true or false"}}},
		{"udp_gso not a bool", "[server]\nudp_gso = 1\n", []wantErr{{2, "server.udp_gso", "want true or false"}}},
		{"remember_channel not a bool", "[server]\nremember_channel = 0\n", []wantErr{{2, "server.remember_channel", "want true or false"}}},
		{"float for int", "[server]\nbandwidth = 1.5\n", []wantErr{{2, "server.bandwidth", "want an integer, got a float"}}},
		{"wrong type in second channel", "[[channel]]\nname = \"A\"\n[[channel]]\nname = \"B\"\nposition = \"first\"\n", []wantErr{{5, "channel[1].position", "want an integer"}}},
		{"links not array", "[[channel]]\nname = \"A\"\nlinks = \"B\"\n", []wantErr{{3, "channel[0].links", "want an array"}}},
		{"links element", "[[channel]]\nname = \"A\"\nlinks = [\n  \"A\",\n  2,\n]\n", []wantErr{{3, "channel[0].links[1]", "want a string"}}},
		{"negative channel max_users", "[[channel]]\nname = \"A\"\nmax_users = -1\n", []wantErr{{3, "channel[0].max_users", "must not be negative"}}},
		{"position overflows int32", "[[channel]]\nname = \"A\"\nposition = 3000000000\n", []wantErr{{3, "channel[0].position", "out of range"}}},
		{"server not a table", "server = 1\n", []wantErr{{1, "server", "want a table"}}},
		{"channel as plain table", "[channel]\nname = \"A\"\n", []wantErr{{1, "channel", "want an array of tables"}}},
		{"bad duration", "[server]\ntimeout = \"soon\"\n", []wantErr{{2, "server.timeout", `invalid duration "soon"`}}},
		{"duration wrong type", "[server]\ntimeout = true\n", []wantErr{{2, "server.timeout", "want a duration"}}},
		{"lines survive multi-line strings", "[server]\nwelcome_text = \"\"\"\nname = 1\n[[channel]]\n\"\"\"\nbogus = 1\n", []wantErr{{6, "server.bogus", "unknown key"}}},
		{"quoted and dotted keys", "[server]\n\"typo key\" = 1\nserver2.x = 1\n", []wantErr{
			{2, `server.typo key`, "unknown key"}, {3, "server.server2", "unknown key"}}},
		{"inline channel table falls back to enclosing key", "channel = [\n  {name = \"A\", oops = 1},\n]\n", []wantErr{{1, "channel[0].oops", "unknown key"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.toml), "d.toml")
			if c != nil {
				t.Errorf("Parse returned a config despite errors")
			}
			checkErrs(t, err, "d.toml", tt.want)
		})
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"30s", 30 * time.Second, false},
		{"1m", time.Minute, false},
		{"1m30s", 90 * time.Second, false},
		{"250ms", 250 * time.Millisecond, false},
		{"30", 0, true}, // a string needs a unit; integers (not strings) are seconds
		{"soon", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		var d Duration
		err := d.UnmarshalText([]byte(tt.in))
		if (err != nil) != tt.wantErr || (err == nil && d.Duration != tt.want) {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v, err %v", tt.in, d.Duration, err, tt.want, tt.wantErr)
		}
	}
	b, err := Duration{90 * time.Second}.MarshalText()
	if err != nil || string(b) != "1m30s" {
		t.Errorf("MarshalText = %q, %v", b, err)
	}
	var d Duration
	if err := d.UnmarshalText(b); err != nil || d.Duration != 90*time.Second {
		t.Errorf("round trip: %v, %v", d.Duration, err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plenum.toml")
	if err := os.WriteFile(path, []byte("[server]\nlisten = \"127.0.0.1:0\"\n[[channel]]\nname = \"Hall\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.File != path || c.Server.Listen != "127.0.0.1:0" || len(c.Channels) != 1 || c.Channels[0].Line != 3 {
		t.Errorf("Load = %+v", c)
	}

	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[server]\nmax_users = 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	checkErrs(t, err, bad, []wantErr{{2, "server.max_users", "at least 1"}})

	missing := filepath.Join(dir, "missing.toml")
	_, err = Load(missing)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want os.ErrNotExist", err)
	}
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("error %v does not name the file", err)
	}
}

func TestCompilePattern(t *testing.T) {
	tests := []struct {
		pattern string
		name    string
		want    bool
	}{
		{DefaultUsernamePattern, "Alice", true},
		{DefaultUsernamePattern, "Jürgen Müller", true}, // Qt's \w is Unicode
		{DefaultUsernamePattern, "Zoë [chair]", true},
		{DefaultUsernamePattern, "名前", true},
		{DefaultUsernamePattern, "", false},
		{DefaultUsernamePattern, "bad>", false},
		{DefaultUsernamePattern, "ok!", true}, // '!' is inside the " -=" range
		{DefaultUsernamePattern, "a/b", true}, // '/' is inside the " -=" range
		{DefaultChannelNamePattern, "Room #1", true},
		{DefaultChannelNamePattern, "Room.1", true},
		{DefaultChannelNamePattern, "Room>1", false}, // '>' is outside " -="
		{`\w+`, "abc", true},
		{`\w+`, "abc def", false}, // anchored
		{`x\d`, "x٣", true},
		{`a\Wb`, "a b", true},
		{`a\Wb`, "aéb", false},
		{`[]a]+`, "a]a", true},
		{`[[:alpha:]\w]+`, "ü", true},
	}
	for _, tt := range tests {
		re, err := CompilePattern(tt.pattern)
		if err != nil {
			t.Errorf("CompilePattern(%q): %v", tt.pattern, err)
			continue
		}
		if got := re.MatchString(tt.name); got != tt.want {
			t.Errorf("CompilePattern(%q).MatchString(%q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
	if _, err := CompilePattern(`[a-`); err == nil {
		t.Error("CompilePattern accepted an invalid pattern")
	}
}

// parseCase is a configuration and a part of the error it must give.
type parseCase struct{ toml, want string }

// wantParseErrors checks that each case fails to parse with its error.
func wantParseErrors(t *testing.T, cases []parseCase) {
	t.Helper()
	for _, tc := range cases {
		_, err := Parse([]byte(tc.toml), "f.toml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.toml, err, tc.want)
		}
	}
}

func TestShapingKeysAreValidated(t *testing.T) {
	wantParseErrors(t, []parseCase{
		{"[[channel]]\nname = \"Hall\"\nrecord = true\n", ":3: channel[0].record: needs allow_recording = true"},
		{"[[channel]]\nname = \"Hall\"\nmax_speakers = -1\n", ":3: channel[0].max_speakers: must be 0"},
		{"[[channel]]\nname = \"Hall\"\nmix_above = 3\n", ":3: channel[0].mix_above: has no effect without mix = true"},
		{"[server]\nrecording_max_bytes = 10\n", ":2: server.recording_max_bytes: must be at least 1 MiB"},
	})
	ok := "[server]\nallow_recording = true\n[[channel]]\nname = \"Hall\"\nmax_speakers = 8\nmix = true\nmix_above = 3\nrecord = true\n"
	c, err := Parse([]byte(ok), "f.toml")
	if err != nil {
		t.Fatal(err)
	}
	if ch := c.Lookup("Hall"); ch.MaxSpeakers != 8 || !ch.Mix || ch.MixAbove != 3 || !ch.Record {
		t.Fatalf("parsed %+v", ch)
	}
}

func TestFloorKeysAreValidated(t *testing.T) {
	wantParseErrors(t, []parseCase{
		{"[[channel]]\nname = \"Hall\"\nfloor_minutes = true\n", ":3: channel[0].floor_minutes: floor_minutes needs floor = true"},
		{"[[channel]]\nname = \"Hall\"\nspeaking_time = \"3m\"\n", ":3: channel[0].speaking_time: speaking_time needs floor = true"},
		{"[[channel]]\nname = \"Hall\"\nfloor = true\nspeaking_time = \"10s\"\n", ":4: channel[0].speaking_time: must be at least 1m"},
		{"[[channel]]\nname = \"Hall\"\nfloor = true\nfloor_requests = \"Asks\"\n", ":4: channel[0].floor_requests: \"Asks\" is not a subchannel"},
	})
	ok := "[[channel]]\nname = \"Hall\"\nfloor = true\nfloor_groups = [\"chair\"]\nspeaking_time = \"3m\"\nfloor_minutes = true\n"
	c, err := Parse([]byte(ok), "f.toml")
	if err != nil {
		t.Fatal(err)
	}
	if ch := c.Lookup("Hall"); !ch.Floor || !ch.FloorMinutes || ch.SpeakingTime.Duration != 3*time.Minute {
		t.Fatalf("parsed %+v", ch)
	}
	// Written out and read back, the keys are the same.
	b, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(b, "back.toml")
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if ch := back.Lookup("Hall"); !ch.FloorMinutes || ch.SpeakingTime.Duration != 3*time.Minute || !slices.Equal(ch.FloorGroups, []string{"chair"}) {
		t.Errorf("written back as %+v\n%s", ch, b)
	}
}
