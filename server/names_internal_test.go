package server

import (
	"slices"
	"testing"

	"github.com/plenum-voice/plenum/acl"
)

// chairsACL is an ACL with a group and a user entry for the given ids.
func chairsACL(members []int64, user int64) *acl.ChannelACL {
	return &acl.ChannelACL{InheritACL: true,
		Groups:  map[string]*acl.Group{"chairs": {Name: "chairs", Inherit: true, Inheritable: true, Add: members}},
		Entries: []acl.Entry{{ApplyHere: true, ApplySubs: true, UserID: -1, Group: "chairs", Allow: acl.MuteDeafen}, {ApplyHere: true, UserID: user, Allow: acl.Move}}}
}

func TestNameTablePlaceholders(t *testing.T) {
	var names nameTable
	anna, david := names.unregistered("chair-anna"), names.unregistered("chair-david")
	if anna > -2 || david > -2 || anna == david {
		t.Fatalf("placeholders %d and %d", anna, david)
	}
	if again := names.unregistered("Chair-Anna"); again != anna {
		t.Errorf("the same name in other case got %d, then %d", anna, again)
	}
	if name, ok := names.nameOf(anna); !ok || name != "Chair-Anna" {
		t.Errorf("placeholder %d names %q (%v), want the latest spelling", anna, name, ok)
	}
	// What the editor is shown: positive as a signed 32-bit number (the
	// client drops negative ids), and mapped back.
	for _, p := range []int64{anna, david} {
		w := wireID(p)
		if int32(w) < 0 {
			t.Errorf("placeholder %d is shown as %#x, negative for the client", p, w)
		}
		if back, ok := names.fromWire(w); !ok || back != p {
			t.Errorf("%#x maps back to %d (%v), want %d", w, back, ok, p)
		}
	}
	for _, w := range []uint32{0, 1, 42, wireID(-40), 0x80000000, 0xFFFFFFFF} {
		if p, ok := names.fromWire(w); ok {
			t.Errorf("%#x taken for placeholder %d", w, p)
		}
	}

	// An ACL without placeholders or changed ids stays the same object.
	plain := chairsACL([]int64{3}, 4)
	if got := names.remap(plain, map[int64]bool{}); got != plain {
		t.Error("an ACL without anything to change was rebuilt")
	}

	// chair-anna registers as user 7: her placeholder becomes 7, in a new
	// ACL (installed ones are never changed).
	before := chairsACL([]int64{anna, david, 7}, anna)
	if !names.registered("chair-anna", 7) {
		t.Error("a listed name's registration did not ask for a remap")
	}
	changed := map[int64]bool{}
	after := names.remap(before, changed)
	if got := after.Groups["chairs"].Add; !slices.Equal(got, []int64{7, david}) {
		t.Errorf("chairs after the registration %v, want [7 %d] (each id once)", got, david)
	}
	if after.Entries[1].UserID != 7 || !changed[7] || len(changed) != 1 {
		t.Errorf("user entry %d, changed %v", after.Entries[1].UserID, changed)
	}
	if got := before.Groups["chairs"].Add; !slices.Equal(got, []int64{anna, david, 7}) || before.Entries[1].UserID != anna {
		t.Errorf("the installed ACL was changed: %v, entry %d", got, before.Entries[1].UserID)
	}
	// A lookup that missed the registration by a moment gets her id.
	if got := names.unregistered("chair-anna"); got != 7 {
		t.Errorf("chair-anna, registered meanwhile, resolves to %d", got)
	}

	// Her registration is deleted: 7 becomes the placeholder again, and
	// the write-back still names her; registered again as 9, both the
	// placeholder and a stale 7 lead to 9.
	names.deletedUser(7, "chair-anna")
	if got := names.remap(after, map[int64]bool{}); !slices.Equal(got.Groups["chairs"].Add, []int64{anna, david}) || got.Entries[1].UserID != anna {
		t.Errorf("after the deletion chairs %v, entry %d", got.Groups["chairs"].Add, got.Entries[1].UserID)
	}
	if name, ok := names.nameOf(7); !ok || name != "chair-anna" {
		t.Errorf("deleted user 7 is named %q (%v)", name, ok)
	}
	names.registered("chair-anna", 9)
	if got := names.remap(before, map[int64]bool{}); !slices.Equal(got.Groups["chairs"].Add, []int64{9, david}) {
		t.Errorf("after registering again chairs %v", got.Groups["chairs"].Add)
	}
	if got := names.remap(after, map[int64]bool{}); !slices.Equal(got.Groups["chairs"].Add, []int64{9, david}) {
		t.Errorf("a stale id of a deleted registration: chairs %v", got.Groups["chairs"].Add)
	}

	// Renamed away, the name is free again: it matches nobody, and the
	// new name's placeholder becomes the user.
	renames := names.renameCount()
	if !names.renamed(9, "chair-anna", "chair-david") {
		t.Error("a rename to a listed name did not ask for a remap")
	}
	if names.renameCount() == renames {
		t.Error("a rename was not counted")
	}
	if got := names.unregistered("chair-anna"); got != anna {
		t.Errorf("chair-anna, renamed away, resolves to %d, want her placeholder %d", got, anna)
	}
	if p, _, ok := names.placeholderOf("CHAIR-DAVID"); ok {
		t.Errorf("chair-david, registered by a rename, still has placeholder %d", p)
	}
	if got := names.remap(chairsACL([]int64{david}, david), map[int64]bool{}); !slices.Equal(got.Groups["chairs"].Add, []int64{9}) || got.Entries[1].UserID != 9 {
		t.Errorf("after the rename chairs %v, entry %d", got.Groups["chairs"].Add, got.Entries[1].UserID)
	}
}
