package conf

import (
	"reflect"
	"strings"
	"testing"
)

const diffBase = `[server]
welcome_text = "Hi"

[groups.admin]
add = ["Alice", "Bob"]

[[acl]]
group = "admin"
allow = ["Write"]

[[channel]]
name = "A"
description = "a"
links = ["B"]

  [channel.groups.s]
  add = ["x"]

  [[channel.acl]]
  group = "all"
  deny = ["Speak"]

[[channel]]
name = "B"

  [[channel.channel]]
  name = "B1"

    [[channel.channel.channel]]
    name = "B1a"

[[channel]]
name = "C"
`

// r returns an edit of diffBase replacing old by new (which must be there).
type r [2]string

func TestDiff(t *testing.T) {
	tests := []struct {
		name  string
		edits []r
		want  Changes
	}{
		{"identical", nil, Changes{}},
		{"same meaning, other spelling", []r{
			{`add = ["Alice", "Bob"]`, "add = [\"bob\", \"ALICE\"]\ninherit = true"},
			{`deny = ["Speak"]`, "deny = [\"speak\"]\n  apply_here = true\n  apply_subs = true"},
			{"links = [\"B\"]\n", ""}, {"name = \"B\"\n", "name = \"B\"\nlinks = [\"A\"]   # the same link, written at the other end\n"},
		}, Changes{}},
		{"server keys", []r{{`welcome_text = "Hi"`, "welcome_text = \"Hello\"\nmax_users = 10\ntimeout = \"1m\""}},
			Changes{Server: []string{"welcome_text", "max_users", "timeout"}}},
		{"root groups", []r{{`add = ["Alice", "Bob"]`, `add = ["Alice"]`}}, Changes{RootGroups: true}},
		{"root group flag", []r{{`add = ["Alice", "Bob"]`, "add = [\"Alice\", \"Bob\"]\ninheritable = false"}}, Changes{RootGroups: true}},
		{"root acl", []r{{`allow = ["Write"]`, `allow = ["Write", "Kick"]`}}, Changes{RootACL: true}},
		{"root acl entry added", []r{{"[[channel]]\nname = \"A\"", "[[acl]]\ngroup = \"all\"\n\n[[channel]]\nname = \"A\""}}, Changes{RootACL: true}},
		{"channel keys", []r{{`description = "a"`, "description = \"b\"\nposition = 3\nmax_users = 5\ntemporary = true\ninherit_acl = false"}},
			Changes{Changed: []ChannelChange{{"A", []string{"description", "position", "max_users", "temporary", "inherit_acl"}}}}},
		{"channel groups and acl", []r{{`add = ["x"]`, `add = ["y"]`}, {`group = "all"`, `group = "in"`}},
			Changes{Changed: []ChannelChange{{"A", []string{"groups", "acl"}}}}},
		{"acl flag", []r{{`deny = ["Speak"]`, "deny = [\"Speak\"]\n  apply_subs = false"}},
			Changes{Changed: []ChannelChange{{"A", []string{"acl"}}}}},
		{"link removed changes both ends", []r{{"links = [\"B\"]\n", ""}},
			Changes{Changed: []ChannelChange{{"A", []string{"links"}}, {"B", []string{"links"}}}}},
		{"added subtree", []r{{"name = \"C\"\n", "name = \"C\"\n\n  [[channel.channel]]\n  name = \"C1\"\n\n    [[channel.channel.channel]]\n    name = \"C1a\"\n"}},
			Changes{Added: []string{"C/C1", "C/C1/C1a"}}},
		{"removed subtree", []r{{"  [[channel.channel]]\n  name = \"B1\"\n\n    [[channel.channel.channel]]\n    name = \"B1a\"\n", ""}},
			Changes{Removed: []string{"B/B1", "B/B1/B1a"}}},
		{"rename is remove plus add", []r{{"name = \"B\"", "name = \"Bee\""}, {`links = ["B"]`, `links = ["Bee"]`}},
			Changes{Added: []string{"Bee", "Bee/B1", "Bee/B1/B1a"}, Removed: []string{"B", "B/B1", "B/B1/B1a"},
				Changed: []ChannelChange{{"A", []string{"links"}}}}},
		{"sibling order does not count", []r{{"[[channel]]\nname = \"C\"\n", ""}, {"[[channel]]\nname = \"A\"", "[[channel]]\nname = \"C\"\n\n[[channel]]\nname = \"A\""}},
			Changes{}},
	}
	base, err := Parse([]byte(diffBase), "old.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := diffBase
			for _, e := range tt.edits {
				if !strings.Contains(src, e[0]) {
					t.Fatalf("test bug: %q not in the file", e[0])
				}
				src = strings.Replace(src, e[0], e[1], 1)
			}
			nc, err := Parse([]byte(src), "new.toml")
			if err != nil {
				t.Fatalf("%v\n%s", err, src)
			}
			got := Diff(base, nc)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Diff =\n %+v\nwant\n %+v", got, tt.want)
			}
			if got.Empty() != reflect.DeepEqual(tt.want, Changes{}) {
				t.Errorf("Empty() = %v", got.Empty())
			}
			// And the other way round, for the channel lists.
			back := Diff(nc, base)
			if !reflect.DeepEqual(back.Added, got.Removed) || !reflect.DeepEqual(back.Removed, got.Added) {
				t.Errorf("reverse Diff: added %q removed %q", back.Added, back.Removed)
			}
		})
	}
}
