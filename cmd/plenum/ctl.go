package main

// `plenum ctl`: the admin API's common actions from the shell. It finds
// the server's admin listener and a token by flag, by environment
// (PLENUM_SERVER, PLENUM_TOKEN), or from the configuration and data
// directory the server uses (admin_listen, and admin_token or the
// generated token in DATA_DIR/admin_token).

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/plenum-voice/plenum/admin"
	"github.com/plenum-voice/plenum/conf"
)

const ctlUsage = `usage: plenum ctl [flags] COMMAND [ARGS]

commands:
  list                        the users: session, name, channel, state
  channels                    the channels: id, path, users
  move USER CHANNEL           move a user (name or session) into a channel (path or id)
  mute USER | unmute USER     mute or unmute a user
  kick USER [REASON...]       kick a user
  ban USER [REASON...]        ban a user's address (and certificate, if registered) and kick them
  message USER TEXT...        send a user a text message
  message -channel CHANNEL TEXT...
                              send everyone in a channel a text message

The server is -server, else PLENUM_SERVER, else admin_listen of the
configuration; the token is -token, else PLENUM_TOKEN, else admin_token
of the configuration, else the data directory's admin_token file.`

// ctl is one run of plenum ctl.
type ctl struct {
	base  string // e.g. http://127.0.0.1:64740
	token string
	http  *http.Client
	out   io.Writer
}

func runCtl(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("plenum ctl", flag.ContinueOnError)
	serverURL := fs.String("server", os.Getenv("PLENUM_SERVER"), "the admin listener's `URL`, e.g. http://127.0.0.1:64740")
	token := fs.String("token", os.Getenv("PLENUM_TOKEN"), "an admin API `token`")
	configPath := fs.String("config", "", "the server's configuration `file` (for admin_listen and the token)")
	dataDir := fs.String("data", "", "the server's data `directory` (for the generated token)")
	fs.Usage = func() { fmt.Fprintln(fs.Output(), ctlUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("ctl needs a command")
	}
	c := &ctl{base: *serverURL, token: *token, http: &http.Client{Timeout: 30 * time.Second}, out: stdout}
	if c.base == "" || c.token == "" {
		if err := c.fromServerFiles(*configPath, *dataDir); err != nil {
			return err
		}
	}
	c.base = strings.TrimRight(c.base, "/")
	return c.run(fs.Arg(0), fs.Args()[1:])
}

// fromServerFiles fills in the server and the token from the files the
// server uses.
func (c *ctl) fromServerFiles(configPath, dataDir string) error {
	cfg := conf.Default()
	if configPath != "" {
		var err error
		if cfg, err = conf.Load(configPath); err != nil {
			return err
		}
	}
	if c.base == "" {
		host, port, err := net.SplitHostPort(cfg.Server.AdminListen)
		if err != nil {
			return fmt.Errorf("admin_listen %q: %w", cfg.Server.AdminListen, err)
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		c.base = "http://" + net.JoinHostPort(host, port)
	}
	if c.token == "" {
		c.token = cfg.Server.AdminToken
	}
	if c.token == "" {
		if dataDir == "" {
			dataDir = cfg.Server.DataDir
		}
		data, err := os.ReadFile(filepath.Join(dataDir, "admin_token"))
		if err != nil {
			return fmt.Errorf("no token: give -token or PLENUM_TOKEN, or -data for the server's data directory (%w)", err)
		}
		c.token = strings.TrimSpace(string(data))
	}
	return nil
}

// call sends a request to the API and decodes the answer into out (if
// not nil); an error answer becomes an error with the server's words.
func (c *ctl) call(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.base+"/api/v1"+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e admin.APIError
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s %s: %s", method, path, e.Error)
		}
		return fmt.Errorf("%s %s: HTTP %d", method, path, resp.StatusCode)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func (c *ctl) run(cmd string, args []string) error {
	switch cmd {
	case "list":
		return c.list()
	case "channels":
		return c.channels()
	case "move":
		if len(args) != 2 {
			return errors.New("usage: plenum ctl move USER CHANNEL")
		}
		s, err := c.session(args[0])
		if err != nil {
			return err
		}
		ch, err := c.channel(args[1])
		if err != nil {
			return err
		}
		return c.done(c.call("PATCH", "/users/"+s, admin.UserChange{Channel: &ch}, nil), "moved %s", args[0])
	case "mute", "unmute":
		if len(args) != 1 {
			return fmt.Errorf("usage: plenum ctl %s USER", cmd)
		}
		s, err := c.session(args[0])
		if err != nil {
			return err
		}
		mute := cmd == "mute"
		return c.done(c.call("PATCH", "/users/"+s, admin.UserChange{Mute: &mute}, nil), "%sd %s", cmd, args[0])
	case "kick", "ban":
		if len(args) < 1 {
			return fmt.Errorf("usage: plenum ctl %s USER [REASON...]", cmd)
		}
		s, err := c.session(args[0])
		if err != nil {
			return err
		}
		reason := strings.Join(args[1:], " ")
		verb := map[string]string{"kick": "kicked", "ban": "banned"}[cmd]
		return c.done(c.call("POST", "/users/"+s+"/"+cmd, admin.KickRequest{Reason: reason}, nil), "%s %s", verb, args[0])
	case "message":
		return c.message(args)
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, ctlUsage)
}

func (c *ctl) done(err error, format string, args ...any) error {
	if err == nil {
		fmt.Fprintf(c.out, format+"\n", args...)
	}
	return err
}

func (c *ctl) list() error {
	var users []admin.APIUser
	if err := c.call("GET", "/users", nil, &users); err != nil {
		return err
	}
	w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SESSION\tNAME\tCHANNEL\tSTATE")
	for _, u := range users {
		path := u.ChannelPath
		if path == "" {
			path = "/"
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", u.Session, u.Name, path, userFlags(u))
	}
	return w.Flush()
}

func userFlags(u admin.APIUser) string {
	var f []string
	for _, x := range []struct {
		on   bool
		name string
	}{{u.UserID != nil, "registered"}, {u.Mute, "muted"}, {u.Deaf, "deafened"}, {u.Suppress, "suppressed"},
		{u.SelfMute, "self-muted"}, {u.SelfDeaf, "self-deafened"}, {u.PrioritySpeaker, "priority"}, {u.Recording, "recording"}} {
		if x.on {
			f = append(f, x.name)
		}
	}
	return strings.Join(f, ",")
}

func (c *ctl) channels() error {
	var chans []admin.APIChannel
	if err := c.call("GET", "/channels", nil, &chans); err != nil {
		return err
	}
	w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tPATH\tUSERS")
	for _, ch := range chans {
		path := ch.Path
		if path == "" {
			path = "/ (" + ch.Name + ")"
		}
		fmt.Fprintf(w, "%d\t%s\t%d\n", ch.ID, path, ch.Users)
	}
	return w.Flush()
}

// session finds a user by session number or name.
func (c *ctl) session(who string) (string, error) {
	var users []admin.APIUser
	if err := c.call("GET", "/users", nil, &users); err != nil {
		return "", err
	}
	for _, u := range users {
		if u.Name == who {
			return strconv.Itoa(int(u.Session)), nil
		}
	}
	if n, err := strconv.ParseUint(who, 10, 32); err == nil {
		for _, u := range users {
			if u.Session == uint32(n) {
				return who, nil
			}
		}
	}
	return "", fmt.Errorf("nobody named %q is connected", who)
}

// channel finds a channel by path ("/" or "" for the root) or id.
func (c *ctl) channel(which string) (uint32, error) {
	var chans []admin.APIChannel
	if err := c.call("GET", "/channels", nil, &chans); err != nil {
		return 0, err
	}
	path := strings.Trim(which, "/")
	for _, ch := range chans {
		if ch.Path == path {
			return ch.ID, nil
		}
	}
	if n, err := strconv.ParseUint(which, 10, 32); err == nil {
		for _, ch := range chans {
			if ch.ID == uint32(n) {
				return ch.ID, nil
			}
		}
	}
	return 0, fmt.Errorf("no channel %q", which)
}

func (c *ctl) message(args []string) error {
	fs := flag.NewFlagSet("plenum ctl message", flag.ContinueOnError)
	channel := fs.String("channel", "", "send to everyone in this `channel` (path or id)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rest := fs.Args()
	var m admin.Message
	if *channel != "" {
		id, err := c.channel(*channel)
		if err != nil {
			return err
		}
		m.Channels = []uint32{id}
	} else {
		if len(rest) < 2 {
			return errors.New("usage: plenum ctl message USER TEXT... | message -channel CHANNEL TEXT...")
		}
		s, err := c.session(rest[0])
		if err != nil {
			return err
		}
		n, _ := strconv.ParseUint(s, 10, 32)
		m.Sessions = []uint32{uint32(n)}
		rest = rest[1:]
	}
	if len(rest) == 0 {
		return errors.New("message needs a text")
	}
	m.Message = strings.Join(rest, " ")
	return c.done(c.call("POST", "/messages", m, nil), "sent")
}
