package control

import (
	"strconv"

	"github.com/plenum-voice/plenum/proto/mumblepb"
)

// Mumble has two version encodings. v1 (uint32) is major<<16 | minor<<8 |
// patch and cannot express a patch level above 255, which real releases
// exceed (1.4.287, 1.5.735); v2 (uint64) is major<<48 | minor<<32 |
// patch<<16 with the low 16 bits unused. Plenum works in v2 throughout and
// converts at the edges. 0 means "unknown" in both.

// ProtobufUDPVersion is 1.5.0, the first version that speaks protobuf UDP.
// A peer whose version is at or above it gets protobuf voice packets; any
// other peer, including one whose version is unknown, gets the legacy
// format.
const ProtobufUDPVersion = 1<<48 | 5<<32

// MakeVersion returns the v2 encoding of major.minor.patch.
func MakeVersion(major, minor, patch uint16) uint64 {
	return uint64(major)<<48 | uint64(minor)<<32 | uint64(patch)<<16
}

// versionParts splits a v2 version.
func versionParts(v2 uint64) (major, minor, patch uint16) {
	return uint16(v2 >> 48), uint16(v2 >> 32), uint16(v2 >> 16)
}

// VersionV1 returns the v1 encoding of v2. Minor and patch above 255 are
// clamped to 255 (as Mumble does), so 1.4.287 becomes 1.4.255: close enough
// for old peers' "at least" comparisons, never wrapping into a lower version.
func VersionV1(v2 uint64) uint32 {
	major, minor, patch := versionParts(v2)
	return uint32(major)<<16 | uint32(min(minor, 0xff))<<8 | uint32(min(patch, 0xff))
}

// VersionFromV1 returns the v2 encoding of a v1 version.
func VersionFromV1(v1 uint32) uint64 {
	return MakeVersion(uint16(v1>>16), uint16(v1>>8&0xff), uint16(v1&0xff))
}

// VersionOf returns the version a Version message announces: version_v2 if
// present, else the converted version_v1, else 0 (unknown). 1.3 clients send
// only v1; 1.4.287 and later send both.
func VersionOf(m *mumblepb.Version) uint64 {
	switch {
	case m == nil:
		return 0
	case m.VersionV2 != nil:
		return *m.VersionV2
	case m.VersionV1 != nil:
		return VersionFromV1(*m.VersionV1)
	}
	return 0
}

// SetVersion fills both version fields of m from v2, as Mumble does when
// sending, so that old peers (which read only v1) and new ones agree.
func SetVersion(m *mumblepb.Version, v2 uint64) {
	v1 := VersionV1(v2)
	m.VersionV1 = &v1
	m.VersionV2 = &v2
}

// VersionString formats v2 as "major.minor.patch", e.g. "1.5.735".
func VersionString(v2 uint64) string {
	major, minor, patch := versionParts(v2)
	b := make([]byte, 0, 20)
	b = strconv.AppendUint(b, uint64(major), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(minor), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(patch), 10)
	return string(b)
}
