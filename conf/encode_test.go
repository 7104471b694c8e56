package conf

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stripPositions clears what Parse records about the source (file name and
// lines), so that configurations can be compared by content.
func stripPositions(c *Config) *Config {
	c.File, c.serverLines, c.authLines = "", nil, nil
	strip := func(groups map[string]*Group, entries []ACLEntry) {
		for _, g := range groups {
			g.Line, g.keyLines = 0, nil
		}
		for i := range entries {
			entries[i].Line, entries[i].keyLines = 0, nil
		}
	}
	strip(c.Groups, c.ACL)
	for i := range c.AdminTokens {
		c.AdminTokens[i].Line = 0
	}
	c.Walk(func(_ string, ch *Channel, _ string) {
		ch.Line, ch.keyLines = 0, nil
		strip(ch.Groups, ch.ACL)
	})
	return c
}

// everyField sets every key of the schema to a value other than its default.
func everyField() *Config {
	return &Config{
		Server: Server{
			Listen: "127.0.0.1:6000", DataDir: "/var/lib/plenum", Certificate: "c.pem", Key: "k.pem",
			Name: "Große \"Halle\"", RootDescription: "the <b>hall</b>", WelcomeText: "Line 1\nLine \"2\"\twith tab \\ and ''' and \"\"\" and \r CR\n",
			Password: "p'w\\", MaxUsers: 20, UsersPerChannel: 7, Bandwidth: 72000, Timeout: Duration{90 * time.Second},
			TextMessageLength: 100, ImageMessageLength: 0, AllowHTML: false, OpusThreshold: 50,
			DefaultChannel: "Hall/Sub hall", RememberChannel: false, MessageLimit: 3, MessageBurst: 9,
			ListenersPerChannel: 10, ListenersPerUser: 0, UDPGSO: false,
			UsernamePattern: `[\w ]+`, ChannelNamePattern: `[\w #]+`, LegacyPingReply: true, SendVersion: false,
			LogIPs: true, LogNames: true, ShowAddresses: true, AdminListen: "", SuggestVersion: "1.4.0", SuggestPositional: Bool(false), SuggestPushToTalk: Bool(true),
			ShutdownTimeout:  Duration{2 * time.Second},
			HandshakeTimeout: Duration{4 * time.Second}, MaxUnauthenticatedPerIP: 50, AutobanAttempts: 20,
			AutobanWindow: Duration{time.Minute}, AutobanDuration: Duration{time.Hour},
			AutobanExempt:  []string{"192.0.2.7", "2001:db8::/48"},
			AllowRecording: true, RecordingMaxBytes: 64 << 20, AdminToken: "s3cret",
			AdminHosts: []string{"plenum.example.org", "192.0.2.8"}, AdminEventsText: true,
			ACMEEmail: "admin@example.org", ACMEDirectory: "https://acme-staging-v02.api.letsencrypt.org/directory", ACMECAFile: "/etc/plenum/ca.pem",
			WebListen: "", WebUDPPort: 5000, WebTCPPort: 5001,
			WebAddresses: []string{"203.0.113.7"}, WebOrigins: []string{"https://plenum.example.org"},
		},
		AdminTokens: []APIToken{
			{Name: "stage desk", Scope: "moderate", Hash: HashAPIToken("t1")},
			{Name: "ci", Scope: "read", Hash: HashAPIToken("t2")},
		},
		Cluster: Cluster{Name: "plenary", NATSURLs: []string{"nats://10.0.0.1:4222", "nats://10.0.0.2:4222"}, Node: "node-a",
			Embedded: true, EmbeddedListen: "0.0.0.0:4222", EmbeddedClusterListen: "0.0.0.0:6222",
			EmbeddedRoutes: []string{"nats://10.0.0.2:6222"}, FailoverWait: Duration{2 * time.Minute}},
		Groups: map[string]*Group{
			"admin":      {Inherit: Bool(true), Inheritable: Bool(false), Add: []string{"root-admin"}, Remove: []string{"x"}},
			"with space": {Add: []string{"a"}},
		},
		ACL: []ACLEntry{
			{Group: "admin", ApplyHere: Bool(true), ApplySubs: Bool(true), Allow: []string{"Write", "Kick"}, Deny: []string{"Speak"}},
			{User: "bob", ApplyHere: Bool(false), ApplySubs: Bool(true), Allow: []string{"MuteDeafen"}, Deny: []string{"Enter"}},
		},
		Channels: []Channel{
			{
				Name: "Hall", Description: "A \"big\" hall\nwith two lines", Position: -3, MaxUsers: 500,
				MaxSpeakers: 8, Mix: true, MixAbove: 3, Record: true,
				Floor: true, FloorGroups: []string{"speakers", "#token"}, FloorRequests: "Sub hall", SpeakingTime: Duration{3 * time.Minute}, FloorMinutes: true,
				Temporary: false, InheritACL: Bool(false), Links: []string{"Side"},
				Groups: map[string]*Group{"speakers": {Inherit: Bool(false), Inheritable: Bool(true), Add: []string{"s1", "s2"}, Remove: []string{"s3"}}},
				ACL: []ACLEntry{
					{Group: "all", ApplyHere: Bool(true), ApplySubs: Bool(false), Deny: []string{"Speak", "Whisper"}},
					{Group: "speakers", Allow: []string{"Speak"}},
				},
				Children: []Channel{{Name: "Sub hall", Position: 1, Links: []string{"Side", "Hall"},
					ACL:      []ACLEntry{{Group: "#token", Allow: []string{"Enter"}}},
					Children: []Channel{{Name: "Deep #1", Description: "d"}}}},
			},
			{Name: "Side", Temporary: true, InheritACL: Bool(true), Groups: map[string]*Group{"empty": {}}},
		},
		Auth: everyAuthField(),
	}
}

// TestEveryFieldCovered makes sure everyField really sets every field, so
// that a field added to the schema later is round-trip tested too.
func TestEveryFieldCovered(t *testing.T) {
	c := everyField()
	def := reflect.ValueOf(DefaultServer())
	sv := reflect.ValueOf(c.Server)
	for i := 0; i < sv.NumField(); i++ {
		if sv.Type().Field(i).Name == "ACMEDomain" {
			continue // not with Certificate: "everyField with ACME" in TestEncodeRoundTrip sets it
		}
		if reflect.DeepEqual(sv.Field(i).Interface(), def.Field(i).Interface()) {
			t.Errorf("everyField: server.%s is at its default", sv.Type().Field(i).Name)
		}
	}
	var check func(v reflect.Value, what string, skip ...string)
	check = func(v reflect.Value, what string, skip ...string) {
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !f.IsExported() || f.Tag.Get("toml") == "-" || f.Name == "Server" || f.Name == "Temporary" || slices.Contains(skip, f.Name) {
				continue // Server: above; Temporary: Side sets it (a temporary channel cannot have children)
			}
			if v.Field(i).IsZero() {
				t.Errorf("everyField: %s.%s is not set", what, f.Name)
			}
		}
	}
	check(reflect.ValueOf(*c), "Config")
	ch := c.Channels[0]
	check(reflect.ValueOf(ch), "Channel")
	check(reflect.ValueOf(*ch.Groups["speakers"]), "Group")
	check(reflect.ValueOf(c.ACL[0]), "ACLEntry", "User") // user and group exclude each other
	check(reflect.ValueOf(c.ACL[1]), "ACLEntry", "Group")
	if !c.Channels[1].Temporary {
		t.Error("everyField: no temporary channel")
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	inputs := map[string]func() (*Config, error){
		"default.toml":       func() (*Config, error) { return Parse(DefaultTOML(), "default.toml") },
		"plenary.toml":       func() (*Config, error) { return Load(filepath.Join("examples", "plenary.toml")) },
		"minimal.toml":       func() (*Config, error) { return Load(filepath.Join("examples", "minimal.toml")) },
		"plenary-floor.toml": func() (*Config, error) { return Load(filepath.Join("examples", "plenary-floor.toml")) },
		"accreditation.toml": func() (*Config, error) { return Load(filepath.Join("examples", "accreditation.toml")) },
		"nested":             func() (*Config, error) { return Parse([]byte(nested), "nested") },
		"acl":                func() (*Config, error) { return Parse([]byte(withACL), "acl") },
		"empty":              func() (*Config, error) { return Parse(nil, "empty") },
		"everyField":         func() (*Config, error) { c := everyField(); return c, c.Validate() },
		"everyField with ACME": func() (*Config, error) {
			c := everyField()
			c.Server.Certificate, c.Server.Key, c.Server.ACMEDomain = "", "", "voice.example.org mumble.example.org"
			return c, c.Validate()
		},
	}
	for name, load := range inputs {
		t.Run(name, func(t *testing.T) {
			c, err := load()
			if err != nil {
				t.Fatal(err)
			}
			data, err := Encode(c)
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse(data, "encoded.toml")
			if err != nil {
				t.Fatalf("%v\n%s", err, data)
			}
			if d := Diff(c, back); !d.Empty() {
				t.Errorf("Diff after round trip: %+v", d)
			}
			back.File = c.File
			again, err := Encode(back)
			if err != nil || !bytes.Equal(again, data) {
				t.Errorf("second encoding differs (err %v):\n%s\n---\n%s", err, again, data)
			}
			if !reflect.DeepEqual(stripPositions(back), stripPositions(c)) {
				t.Errorf("round trip differs:\n got %+v\nwant %+v\n%s", back, c, data)
			}
		})
	}
}

func TestEncodeReadable(t *testing.T) {
	c, err := Parse([]byte(withACL+"\n[[channel]]\nname = \"C\"\ndescription = \"\"\nposition = 0\nmax_users = 0\ntemporary = false\nlinks = []\n"), "r.toml")
	if err != nil {
		t.Fatal(err)
	}
	data, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	out := string(data)
	if !strings.HasPrefix(out, "# Plenum configuration, written by Plenum") || !strings.Contains(out, "r.toml.bak") {
		t.Errorf("header missing:\n%s", out)
	}
	// Default values are left out; listen etc. are at their defaults.
	for _, noise := range []string{"listen", "max_users", "position = 0", "temporary = false", "description = \"\"", "links = []", "add = []", "remove = []"} {
		if strings.Contains(out, noise) {
			t.Errorf("output contains %q:\n%s", noise, out)
		}
	}
	// Tables appear in reading order: each channel's groups and ACL after
	// its keys and before its subchannels.
	order := []string{
		"[server]", `name = "Hall"`, "[groups.admin]", "[groups.mods]", "[[acl]]", `group = "admin"`, `user = "Bob"`,
		"[[channel]]", `name = "A"`, "temporary = true", "inherit_acl = false",
		"  [channel.groups.speakers]", "  [[channel.acl]]", `  group = "all"`, `  group = "~speakers"`,
		"[[channel]]", `name = "B"`, "  [channel.groups.x]", `  add = ["Frank"]`,
		"  [[channel.channel]]", `  name = "B1"`, "    [[channel.channel.acl]]", `    group = "#secret"`,
		"[[channel]]", `name = "C"`,
	}
	rest := out
	for _, s := range order {
		i := strings.Index(rest, s+"\n")
		if i < 0 {
			t.Fatalf("%q missing or out of order in:\n%s", s, out)
		}
		rest = rest[i+len(s):]
	}
	// Patterns are written as literal strings, long lists one per line.
	c.Server.UsernamePattern = `[\w]+`
	c.Lookup("B").Groups["x"].Add = strings.Split("alpha-delegate beta-delegate gamma-delegate delta-delegate epsilon-delegate", " ")
	data, err = Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	if out := string(data); !strings.Contains(out, `username_pattern = '[\w]+'`) || !strings.Contains(out, "  add = [\n    \"alpha-delegate\",\n") {
		t.Errorf("unexpected formatting:\n%s", out)
	}
}

func TestEncodeInvalid(t *testing.T) {
	c := everyField()
	c.ACL[0].Allow = append(c.ACL[0].Allow, "Fly")
	if _, err := Encode(c); err == nil || !strings.Contains(err.Error(), `unknown permission "Fly"`) {
		t.Errorf("Encode(invalid) = %v", err)
	}
}

func TestEncodeStrings(t *testing.T) {
	for _, s := range []string{
		"", "plain", `back\slash`, `it's \ both`, "quote \" and '", "tab\there", "new\nline", "\n", "ends with quote\"",
		"\"\"\"", "ctrl \x01 \x7f", "cr\r\nlf", "trailing backslash \\", "multi\nline ending in backslash\\", "Ünïcödé 名前 😀",
	} {
		c := &Config{Server: DefaultServer()}
		c.Server.WelcomeText = s
		c.Channels = []Channel{{Name: "A", Description: s}}
		data, err := Encode(c)
		if err != nil {
			t.Errorf("%q: %v", s, err)
			continue
		}
		back, err := Parse(data, "s.toml")
		if err != nil {
			t.Errorf("%q: %v\n%s", s, err, data)
			continue
		}
		if back.Server.WelcomeText != s || back.Channels[0].Description != s {
			t.Errorf("%q came back as %q / %q", s, back.Server.WelcomeText, back.Channels[0].Description)
		}
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plenum.toml")
	first := Default()
	if err := WriteFile(path, first); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("new file mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := os.Stat(path + ".bak"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a first write made a backup: %v", err)
	}
	want1, _ := Encode(first)
	got1, _ := os.ReadFile(path)
	if !strings.Contains(string(got1), "plenum.toml.bak") || !bytes.Equal(bytes.Replace(got1, []byte("plenum.toml.bak"), []byte("FILE.bak"), 1), want1) {
		t.Errorf("written file differs from Encode:\n%s", got1)
	}

	// An admin's file with comments and its own mode.
	original := []byte("# my comments\n[server]\nname = \"Mine\"\n")
	if err := os.WriteFile(path, original, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	c.Channels = append(c.Channels, Channel{Name: "New"})
	if err := WriteFile(path, c); err != nil {
		t.Fatal(err)
	}
	if bak, _ := os.ReadFile(path + ".bak"); !bytes.Equal(bak, original) {
		t.Errorf(".bak = %q, want the previous version", bak)
	}
	back, err := Load(path)
	if err != nil || back.Server.Name != "Mine" || back.Lookup("New") == nil {
		t.Fatalf("after write: %v %+v", err, back)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode after rewrite %v, want 0640 kept", fi.Mode().Perm())
	}
	// The next write moves the backup on.
	prev, _ := os.ReadFile(path)
	back.Server.WelcomeText = "changed"
	if err := WriteFile(path, back); err != nil {
		t.Fatal(err)
	}
	if bak, _ := os.ReadFile(path + ".bak"); !bytes.Equal(bak, prev) {
		t.Errorf(".bak after second write is not the previous version")
	}
	assertNoTemp(t, dir)

	// Through a symbolic link, the target is replaced and the link kept.
	link := filepath.Join(dir, "link.toml")
	if err := os.Symlink("plenum.toml", link); err != nil {
		t.Fatal(err)
	}
	back.Server.WelcomeText = "via link"
	if err := WriteFile(link, back); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("symlink replaced: %v", err)
	}
	if c, err := Load(path); err != nil || c.Server.WelcomeText != "via link" {
		t.Errorf("target not written: %v", err)
	}
	assertNoTemp(t, dir)
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestWriteFileFailureLeavesOriginal(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plenum.toml")
	original := []byte("[server]\nname = \"Original\"\n")
	if err := os.WriteFile(path, original, 0o600); err != nil {
		t.Fatal(err)
	}
	c := everyField()

	// The backup cannot be made (a non-empty directory is in the way):
	// the new file was already written to a temporary file, which must go.
	if err := os.MkdirAll(filepath.Join(path+".bak", "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	err := WriteFile(path, c)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("WriteFile with blocked backup = %v", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, original) {
		t.Errorf("original changed: %q", got)
	}
	assertNoTemp(t, dir)

	// An invalid configuration touches nothing.
	bad := everyField()
	bad.Channels[0].ACL[0].Group = ""
	if err := WriteFile(path, bad); err == nil {
		t.Error("invalid config written")
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, original) {
		t.Errorf("original changed: %q", got)
	}

	// The directory does not exist.
	if err := WriteFile(filepath.Join(dir, "missing", "p.toml"), c); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("WriteFile into a missing directory = %v", err)
	}
	// The path is a directory.
	if err := WriteFile(dir, c); err == nil {
		t.Error("WriteFile over a directory succeeded")
	}
	assertNoTemp(t, dir)
}

func TestWriteFileConcurrentReaders(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plenum.toml")
	a, b := Default(), everyField()
	if err := WriteFile(path, a); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var reads, bad atomic.Int64
	var wg sync.WaitGroup
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				c, err := Load(path)
				reads.Add(1)
				if err != nil || (c.Server.Name != a.Server.Name && c.Server.Name != b.Server.Name) {
					bad.Add(1)
					t.Errorf("reader saw a broken file: %v", err)
					return
				}
			}
		}()
	}
	for i := 0; i < 50; i++ {
		c := a
		if i%2 == 0 {
			c = b
		}
		if err := WriteFile(path, c); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if reads.Load() == 0 {
		t.Error("readers never ran")
	}
	if bad.Load() == 0 {
		if c, err := Load(path); err != nil || c.Server.Name != a.Server.Name {
			t.Errorf("final file: %v", err)
		}
	}
	assertNoTemp(t, dir)
}

func TestRemoveStaleTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plenum.toml")
	if err := WriteFile(path, Default()); err != nil {
		t.Fatal(err)
	}
	stale := []string{".plenum.toml.12345.tmp", ".plenum.toml.bak.678.tmp"}
	kept := []string{".other.toml.1.tmp", ".plenum.toml.x1.tmp", "plenum.toml.1.tmp", ".plenum.toml.tmp"}
	for _, name := range append(stale, kept...) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := RemoveStaleTemps(path)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	if want := []string{".plenum.toml.12345.tmp", ".plenum.toml.bak.678.tmp"}; !reflect.DeepEqual(removed, want) {
		t.Errorf("removed %q, want %q", removed, want)
	}
	for _, name := range append(kept, "plenum.toml") {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
