package conf

import (
	"reflect"
	"slices"
	"strings"
)

// Changes is what a new configuration changes compared with an old one, as
// the server needs it to apply a reloaded file. Channels are identified by
// their path, so a renamed or moved channel is one removed path and one added
// path.
type Changes struct {
	// Added are the paths of channels only in the new configuration, parents
	// before their children (the order to create them in).
	Added []string
	// Removed are the paths of channels only in the old configuration,
	// parents before their children. Removing a channel removes its subtree,
	// so the server may act on the first of a subtree and skip the rest.
	Removed []string
	// Changed are the channels in both whose settings differ, in the new
	// file's order.
	Changed []ChannelChange
	// Server lists the [server] keys whose value changed ("welcome_text",
	// "max_users"...), in the order of the Server struct.
	Server []string
	// RootGroups and RootACL report whether the root channel's groups
	// ([groups.NAME]) and ACL entries ([[acl]]) changed.
	RootGroups, RootACL bool
}

// ChannelChange names a channel present before and after and what changed.
type ChannelChange struct {
	Path string
	// Keys are the changed keys, from "description", "position",
	// "max_users", "links", "temporary", "inherit_acl", "groups" and "acl",
	// in that order. "links" means the set of channels this one is linked
	// with changed, wherever the link is written.
	Keys []string
}

// Empty reports whether nothing changed.
func (ch *Changes) Empty() bool {
	return len(ch.Added) == 0 && len(ch.Removed) == 0 && len(ch.Changed) == 0 &&
		len(ch.Server) == 0 && !ch.RootGroups && !ch.RootACL
}

// Diff compares two configurations. What counts is meaning, not spelling:
// absent optional flags equal their default, permission names compare
// case-insensitively, group members compare as sets of case-insensitive
// names, ACL entries in order, links as sets. The order of channel tables
// among their siblings does not count (position does); File and lines do
// not count.
func Diff(old, new *Config) Changes {
	var ch Changes
	so, sn := reflect.ValueOf(old.Server), reflect.ValueOf(new.Server)
	st := so.Type()
	for i := 0; i < st.NumField(); i++ {
		f := st.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		if !reflect.DeepEqual(so.Field(i).Interface(), sn.Field(i).Interface()) {
			ch.Server = append(ch.Server, name)
		}
	}
	ch.RootGroups = !groupsEqual(old.Groups, new.Groups)
	ch.RootACL = !aclEqual(old.ACL, new.ACL)

	oldPeers, newPeers := linkPeers(old), linkPeers(new)
	new.Walk(func(path string, nc *Channel, _ string) {
		oc := old.Lookup(path)
		if oc == nil {
			ch.Added = append(ch.Added, path)
			return
		}
		var keys []string
		for _, k := range []struct {
			key     string
			changed bool
		}{
			{"description", oc.Description != nc.Description},
			{"position", oc.Position != nc.Position},
			{"max_users", oc.MaxUsers != nc.MaxUsers},
			{"links", !slices.Equal(oldPeers[path], newPeers[path])},
			{"temporary", oc.Temporary != nc.Temporary},
			{"inherit_acl", oc.InheritsACL() != nc.InheritsACL()},
			{"groups", !groupsEqual(oc.Groups, nc.Groups)},
			{"acl", !aclEqual(oc.ACL, nc.ACL)},
			{"max_speakers", oc.MaxSpeakers != nc.MaxSpeakers},
			{"mix", oc.Mix != nc.Mix},
			{"mix_above", oc.MixAbove != nc.MixAbove},
			{"record", oc.Record != nc.Record},
			{"floor", oc.Floor != nc.Floor || !slices.Equal(oc.FloorGroups, nc.FloorGroups) || oc.FloorRequests != nc.FloorRequests || oc.SpeakingTime != nc.SpeakingTime || oc.FloorMinutes != nc.FloorMinutes},
		} {
			if k.changed {
				keys = append(keys, k.key)
			}
		}
		if keys != nil {
			ch.Changed = append(ch.Changed, ChannelChange{Path: path, Keys: keys})
		}
	})
	old.Walk(func(path string, _ *Channel, _ string) {
		if new.Lookup(path) == nil {
			ch.Removed = append(ch.Removed, path)
		}
	})
	return ch
}

// linkPeers maps each linked channel's path to the sorted paths it is linked with.
func linkPeers(c *Config) map[string][]string {
	m := map[string][]string{}
	for _, p := range c.LinkPairs() {
		m[p[0]] = append(m[p[0]], p[1])
		m[p[1]] = append(m[p[1]], p[0])
	}
	for _, v := range m {
		slices.Sort(v)
	}
	return m
}

func groupsEqual(a, b map[string]*Group) bool {
	if len(a) != len(b) {
		return false
	}
	for name, ga := range a {
		gb, ok := b[name]
		if !ok {
			return false
		}
		if ga == nil {
			ga = &Group{}
		}
		if gb == nil {
			gb = &Group{}
		}
		if ga.Inherits() != gb.Inherits() || ga.IsInheritable() != gb.IsInheritable() ||
			!slices.Equal(nameSet(ga.Add), nameSet(gb.Add)) || !slices.Equal(nameSet(ga.Remove), nameSet(gb.Remove)) {
			return false
		}
	}
	return true
}

// nameSet returns the user names lower-cased, sorted and without duplicates.
func nameSet(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.ToLower(n)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func aclEqual(a, b []ACLEntry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		ea, eb := &a[i], &b[i]
		aa, ad := ea.Permissions()
		ba, bd := eb.Permissions()
		if !strings.EqualFold(ea.User, eb.User) || ea.Group != eb.Group ||
			ea.Here() != eb.Here() || ea.Subs() != eb.Subs() || aa != ba || ad != bd {
			return false
		}
	}
	return true
}
