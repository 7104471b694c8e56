package control

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/proto/mumblepb"
)

func TestVersions(t *testing.T) {
	cases := []struct {
		major, minor, patch uint16
		v1                  uint32
		v2                  uint64
		s                   string
	}{
		{1, 3, 4, 0x00010304, 0x0001000300040000, "1.3.4"},
		{1, 4, 287, 0x000104ff, 0x00010004011f0000, "1.4.287"},
		{1, 5, 735, 0x000105ff, 0x0001000502df0000, "1.5.735"},
		{1, 5, 0, 0x00010500, ProtobufUDPVersion, "1.5.0"},
		{1, 300, 2, 0x0001ff02, 0x0001012c00020000, "1.300.2"},
		{65535, 65535, 65535, 0xffffffff, 0xffffffffffff0000, "65535.65535.65535"},
	}
	for _, tc := range cases {
		v2 := MakeVersion(tc.major, tc.minor, tc.patch)
		if v2 != tc.v2 {
			t.Errorf("MakeVersion(%d,%d,%d) = %#016x, want %#016x", tc.major, tc.minor, tc.patch, v2, tc.v2)
		}
		if got := VersionV1(v2); got != tc.v1 {
			t.Errorf("VersionV1(%s) = %#08x, want %#08x", tc.s, got, tc.v1)
		}
		if got := VersionString(v2); got != tc.s {
			t.Errorf("VersionString(%#x) = %q, want %q", v2, got, tc.s)
		}
		if tc.minor <= 255 && tc.patch <= 255 {
			if got := VersionFromV1(tc.v1); got != v2 {
				t.Errorf("VersionFromV1(%#x) = %#x, want %#x", tc.v1, got, v2)
			}
		}
	}
	// The low 16 bits of v2 are unused and do not leak into v1.
	if got := VersionV1(MakeVersion(1, 2, 3) | 0xffff); got != 0x00010203 {
		t.Errorf("VersionV1 with low bits set = %#x", got)
	}
}

func TestVersionOf(t *testing.T) {
	v2 := MakeVersion(1, 5, 735)
	cases := []struct {
		name string
		m    *mumblepb.Version
		want uint64
	}{
		{"nil", nil, 0},
		{"none", &mumblepb.Version{Release: proto.String("x")}, 0},
		{"only v1 (1.3)", &mumblepb.Version{VersionV1: proto.Uint32(0x00010304)}, MakeVersion(1, 3, 4)},
		{"only v2", &mumblepb.Version{VersionV2: proto.Uint64(v2)}, v2},
		{"both: v2 wins", &mumblepb.Version{VersionV1: proto.Uint32(0x000105ff), VersionV2: proto.Uint64(v2)}, v2},
		{"explicit zero v2 wins", &mumblepb.Version{VersionV1: proto.Uint32(0x00010304), VersionV2: proto.Uint64(0)}, 0},
	}
	for _, tc := range cases {
		if got := VersionOf(tc.m); got != tc.want {
			t.Errorf("%s: VersionOf = %#x, want %#x", tc.name, got, tc.want)
		}
	}

	var m mumblepb.Version
	SetVersion(&m, v2)
	if m.GetVersionV1() != 0x000105ff || m.GetVersionV2() != v2 || VersionOf(&m) != v2 {
		t.Errorf("SetVersion: %v", &m)
	}
}
