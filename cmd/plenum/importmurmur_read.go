package main

// Reading a Murmur database (and, optionally, its ini file) for
// `plenum import-murmur`. The schema is the one Murmur 1.2.4 to 1.5 keep in
// SQLite (tables servers, config, channels, channel_info, channel_links,
// groups, group_members, acl, users, user_info, bans), every table name
// carrying the ini's dbPrefix (empty by default). The database is opened
// read-only and never written.

import (
	"bufio"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	_ "modernc.org/sqlite" // the "sqlite" driver
)

// Keys of Murmur's channel_info and user_info tables (ServerDB::ChannelInfo
// and ServerDB::UserInfo).
const (
	murmurChannelDescription = 0
	murmurChannelPosition    = 1
	murmurChannelMaxUsers    = 2

	murmurUserComment = 2
	murmurUserHash    = 3
)

// murmurDB is what import-murmur reads of one virtual server.
type murmurDB struct {
	config   map[string]string // the server's config table (overrides of the ini)
	channels map[int64]*murmurChannel
	links    [][2]int64
	users    map[int64]*murmurUser
	bans     []murmurBan

	listeners int // rows of channel_listeners (1.4+), not carried over
}

type murmurChannel struct {
	id, parent int64
	hasParent  bool
	name       string
	inheritACL bool
	desc       string
	position   int32
	maxUsers   uint32
	groups     []murmurGroup
	acl        []murmurACL
	children   []*murmurChannel
}

type murmurGroup struct {
	name                 string
	inherit, inheritable bool
	add, remove          []int64 // user ids
}

type murmurACL struct {
	userID      int64 // -1: a group entry
	group       string
	here, subs  bool
	allow, deny uint32
}

type murmurUser struct {
	id       int64
	name     string
	hash     string
	comment  string
	password bool
	texture  []byte
}

type murmurBan struct {
	base                      []byte
	mask                      int64
	name, hash, reason, start string
	duration                  int64
}

var prefixRE = regexp.MustCompile(`^[A-Za-z0-9_]*$`)

// openMurmurDB opens a Murmur SQLite file read-only.
func openMurmurDB(path string) (*sql.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", "query_only(1)")
	q.Add("_pragma", "busy_timeout(5000)")
	dsn := "file:" + (&url.URL{Path: filepath.ToSlash(abs)}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// readMurmur reads virtual server sid from db, whose tables carry prefix.
func readMurmur(db *sql.DB, prefix string, sid int64) (*murmurDB, error) {
	if !prefixRE.MatchString(prefix) {
		return nil, fmt.Errorf("table prefix %q: only letters, digits and '_' are allowed", prefix)
	}
	tbl := func(name string) string { return `"` + prefix + name + `"` }

	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, prefix+"channels").Scan(&n); err != nil {
		return nil, fmt.Errorf("not a readable SQLite database: %w", err)
	}
	if n == 0 {
		return nil, fmt.Errorf("no table %q: not a Murmur database, or Murmur's dbPrefix is not %q (see -prefix and -ini)", prefix+"channels", prefix)
	}
	var ids []string
	rows, err := db.Query(`SELECT server_id FROM ` + tbl("servers") + ` ORDER BY server_id`)
	if err != nil {
		return nil, err
	}
	found := false
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		found = found || id == sid
		ids = append(ids, strconv.FormatInt(id, 10))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("the database has no virtual server %d (it has: %s); choose one with -server", sid, strings.Join(ids, ", "))
	}

	m := &murmurDB{config: map[string]string{}, channels: map[int64]*murmurChannel{}, users: map[int64]*murmurUser{}}
	// query runs a query for this server and calls scan for every row.
	query := func(q string, scan func(rows *sql.Rows) error) error {
		rows, err := db.Query(q, sid)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}

	err = query(`SELECT key, value FROM `+tbl("config")+` WHERE server_id = ?`, func(r *sql.Rows) error {
		var k, v sql.NullString
		if err := r.Scan(&k, &v); err != nil {
			return err
		}
		m.config[strings.ToLower(k.String)] = v.String
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}

	err = query(`SELECT channel_id, parent_id, name, inheritacl FROM `+tbl("channels")+` WHERE server_id = ?`, func(r *sql.Rows) error {
		var c murmurChannel
		var parent, inherit sql.NullInt64
		var name sql.NullString
		if err := r.Scan(&c.id, &parent, &name, &inherit); err != nil {
			return err
		}
		c.parent, c.hasParent = parent.Int64, parent.Valid
		c.name = name.String
		c.inheritACL = inherit.Int64 != 0
		m.channels[c.id] = &c
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading channels: %w", err)
	}

	err = query(`SELECT channel_id, key, value FROM `+tbl("channel_info")+` WHERE server_id = ?`, func(r *sql.Rows) error {
		var id, key int64
		var v sql.NullString
		if err := r.Scan(&id, &key, &v); err != nil {
			return err
		}
		c := m.channels[id]
		if c == nil {
			return nil
		}
		switch key {
		case murmurChannelDescription:
			c.desc = v.String
		case murmurChannelPosition:
			// Murmur reads a malformed number as 0, and so do we.
			p, _ := strconv.ParseInt(strings.TrimSpace(v.String), 10, 32)
			c.position = int32(p)
		case murmurChannelMaxUsers:
			p, _ := strconv.ParseUint(strings.TrimSpace(v.String), 10, 32)
			c.maxUsers = uint32(p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading channel_info: %w", err)
	}

	err = query(`SELECT channel_id, link_id FROM `+tbl("channel_links")+` WHERE server_id = ?`, func(r *sql.Rows) error {
		var a, b int64
		if err := r.Scan(&a, &b); err != nil {
			return err
		}
		m.links = append(m.links, [2]int64{a, b})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading channel_links: %w", err)
	}

	type rawGroup struct {
		cid int64
		g   murmurGroup
	}
	groups := map[int64]*rawGroup{}
	var groupOrder []int64
	err = query(`SELECT group_id, channel_id, name, inherit, inheritable FROM `+tbl("groups")+` WHERE server_id = ? ORDER BY channel_id, name`, func(r *sql.Rows) error {
		var gid, cid int64
		var name sql.NullString
		var inherit, inheritable sql.NullInt64
		if err := r.Scan(&gid, &cid, &name, &inherit, &inheritable); err != nil {
			return err
		}
		groups[gid] = &rawGroup{cid, murmurGroup{name: name.String, inherit: inherit.Int64 != 0, inheritable: inheritable.Int64 != 0}}
		groupOrder = append(groupOrder, gid)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading groups: %w", err)
	}
	err = query(`SELECT group_id, user_id, addit FROM `+tbl("group_members")+` WHERE server_id = ? ORDER BY rowid`, func(r *sql.Rows) error {
		var gid, uid int64
		var addit sql.NullInt64
		if err := r.Scan(&gid, &uid, &addit); err != nil {
			return err
		}
		g := groups[gid]
		switch {
		case g == nil:
		case addit.Int64 != 0:
			g.g.add = append(g.g.add, uid)
		default:
			g.g.remove = append(g.g.remove, uid)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading group_members: %w", err)
	}
	for _, gid := range groupOrder {
		if g := groups[gid]; m.channels[g.cid] != nil {
			c := m.channels[g.cid]
			c.groups = append(c.groups, g.g)
		}
	}

	err = query(`SELECT channel_id, user_id, group_name, apply_here, apply_sub, grantpriv, revokepriv FROM `+tbl("acl")+` WHERE server_id = ? ORDER BY channel_id, priority`, func(r *sql.Rows) error {
		var cid int64
		var uid, here, subs, grant, revoke sql.NullInt64
		var group sql.NullString
		if err := r.Scan(&cid, &uid, &group, &here, &subs, &grant, &revoke); err != nil {
			return err
		}
		c := m.channels[cid]
		if c == nil {
			return nil
		}
		a := murmurACL{userID: -1, group: group.String, here: here.Int64 != 0, subs: subs.Int64 != 0,
			allow: uint32(grant.Int64), deny: uint32(revoke.Int64)}
		if uid.Valid {
			a.userID = uid.Int64
		}
		c.acl = append(c.acl, a)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading acl: %w", err)
	}

	err = query(`SELECT user_id, name, pw, texture FROM `+tbl("users")+` WHERE server_id = ? ORDER BY user_id`, func(r *sql.Rows) error {
		var u murmurUser
		var name, pw sql.NullString
		if err := r.Scan(&u.id, &name, &pw, &u.texture); err != nil {
			return err
		}
		u.name = name.String
		u.password = pw.String != ""
		m.users[u.id] = &u
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading users: %w", err)
	}
	err = query(`SELECT user_id, key, value FROM `+tbl("user_info")+` WHERE server_id = ?`, func(r *sql.Rows) error {
		var uid, key int64
		var v sql.NullString
		if err := r.Scan(&uid, &key, &v); err != nil {
			return err
		}
		u := m.users[uid]
		if u == nil {
			return nil
		}
		switch key {
		case murmurUserComment:
			u.comment = v.String
		case murmurUserHash:
			u.hash = strings.ToLower(strings.TrimSpace(v.String))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading user_info: %w", err)
	}

	err = query(`SELECT base, mask, name, hash, reason, start, duration FROM `+tbl("bans")+` WHERE server_id = ? ORDER BY rowid`, func(r *sql.Rows) error {
		var b murmurBan
		var mask, duration sql.NullInt64
		var name, hash, reason, start sql.NullString
		if err := r.Scan(&b.base, &mask, &name, &hash, &reason, &start, &duration); err != nil {
			return err
		}
		b.mask, b.duration = mask.Int64, duration.Int64
		b.name, b.hash, b.reason, b.start = name.String, hash.String, reason.String, start.String
		m.bans = append(m.bans, b)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading bans: %w", err)
	}

	// channel_listeners exists from Murmur 1.4 on.
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, prefix+"channel_listeners").Scan(&n); err == nil && n > 0 {
		db.QueryRow(`SELECT count(*) FROM `+tbl("channel_listeners")+` WHERE server_id = ?`, sid).Scan(&m.listeners)
	}

	// Murmur reads each channel's children ordered by name.
	for _, c := range m.channels {
		if p := m.channels[c.parent]; c.hasParent && p != nil && c.id != c.parent {
			p.children = append(p.children, c)
		}
	}
	for _, c := range m.channels {
		sort.Slice(c.children, func(i, j int) bool {
			a, b := c.children[i], c.children[j]
			if a.name != b.name {
				return a.name < b.name
			}
			return a.id < b.id
		})
	}
	return m, nil
}

// readMurmurIni reads the top-level keys of a Murmur ini file (QSettings'
// ini format: key=value, values optionally in double quotes with
// backslash escapes, ';' or '#' comment lines, [sections] which are
// skipped, except [General]). Keys are returned in lower case.
func readMurmurIni(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	section := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 4<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == ';' || line[0] == '#':
			continue
		case line[0] == '[' && strings.HasSuffix(line, "]"):
			section = strings.ToLower(strings.TrimSpace(line[1 : len(line)-1]))
			continue
		}
		if section != "" && section != "general" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		out[strings.ToLower(strings.TrimSpace(k))] = iniValue(strings.TrimSpace(v))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// iniValue unquotes a QSettings ini value.
func iniValue(v string) string {
	if !strings.HasPrefix(v, `"`) {
		// An unquoted value ends at a comment.
		if i := strings.Index(v, " ;"); i >= 0 {
			v = strings.TrimSpace(v[:i])
		}
		return v
	}
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"':
			return b.String()
		case c == '\\' && i+1 < len(v):
			i++
			switch v[i] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			default:
				b.WriteByte(v[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

var errNoRoot = errors.New("the server has no root channel (channel 0)")
