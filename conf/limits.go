package conf

import (
	"fmt"
	"net/netip"
	"strings"
)

// limits checks the [server] keys of limits and abuse control.
func (v *validator) limits() {
	s := &v.c.Server
	if s.HandshakeTimeout.Duration <= 0 {
		v.serverErr("handshake_timeout", "must be positive (got %v)", s.HandshakeTimeout.Duration)
	}
	if s.MaxUnauthenticatedPerIP < 0 {
		v.serverErr("max_unauthenticated_per_ip", "must not be negative (got %d; 0 means no cap)", s.MaxUnauthenticatedPerIP)
	}
	if s.AutobanAttempts < 0 {
		v.serverErr("autoban_attempts", "must not be negative (got %d; 0 turns autoban off)", s.AutobanAttempts)
	}
	if s.AutobanAttempts > 0 {
		// Off, the window and duration do not matter; on, they must make sense.
		if s.AutobanWindow.Duration <= 0 {
			v.serverErr("autoban_window", "must be positive (got %v)", s.AutobanWindow.Duration)
		}
		if s.AutobanDuration.Duration <= 0 {
			v.serverErr("autoban_duration", "must be positive (got %v)", s.AutobanDuration.Duration)
		}
	}
	for i, a := range s.AutobanExempt {
		if _, err := ParsePrefix(a); err != nil {
			v.serverErr("autoban_exempt", "entry %d: %v", i+1, err)
		}
	}
}

// ParsePrefix reads an entry of autoban_exempt: an address ("192.0.2.7",
// "2001:db8::7") or a CIDR prefix ("192.0.2.0/24", "2001:db8::/48"). A
// prefix with host bits set is taken as its network. IPv4-mapped IPv6
// forms are unmapped, so they match the IPv4 addresses clients have.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR prefix (e.g. \"192.0.2.0/24\")", s)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR prefix (e.g. \"192.0.2.0/24\")", s)
	}
	a = a.Unmap().WithZone("") // a zone names a local interface, never a client
	return netip.PrefixFrom(a, a.BitLen()), nil
}
