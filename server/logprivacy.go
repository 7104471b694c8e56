package server

// What the server's log may say about people. By default it names no
// address (log_ips) and no unregistered user (log_names): the log of a
// plenary must not become a list of who attended from where.
//
// The first line of defence is that log sites never pass an address or a
// network error: connections end with a closeReason (closereason.go),
// users are named through logUser, and an address is added only by
// addrAttr, which asks log_ips. The second is privacyHandler, which wraps
// whatever logger the server was given: with log_ips off it reduces any
// network error in a record to its reason word, hides values that are
// addresses, and hides anything that reads as an IP address in the
// message and in text values, so that an address slipped in by a future
// log site or a library's error text does not reach the log either.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"syscall"
)

// hiddenAddress replaces an address in the log.
const hiddenAddress = "(hidden)"

// logUser names u under key: by session number always, and by name if u
// is registered (SuperUser included), whom admins need to recognise, or
// if log_names is on. Every log line that names a user, as the subject
// or as the one who acted ("by"), goes through here.
func (s *Server) logUser(key string, u *user) slog.Attr {
	if u.userID >= 0 || s.cfg().LogNames {
		return slog.Group(key, "session", u.session, "name", u.name)
	}
	return slog.Group(key, "session", u.session)
}

// addrAttr appends addr to a log line's attributes if log_ips is on.
func (s *Server) addrAttr(attrs []any, addr netip.Addr) []any {
	if s.cfg().LogIPs {
		attrs = append(attrs, "addr", addr)
	}
	return attrs
}

// PrivateLogger is log with the server's privacy filter: with logIPs
// false, addresses in its records are hidden as in the server's own log.
// It is for what logs beside a server in the same process (the cluster's
// node, the command), so that no line of the process names an address
// the admin did not ask for.
func PrivateLogger(log *slog.Logger, logIPs func() bool) *slog.Logger {
	return slog.New(newPrivacyHandler(log.Handler(), logIPs))
}

// LogIPs reports whether the running configuration lets the log name
// addresses (log_ips).
func (s *Server) LogIPs() bool { return s.cfg().LogIPs }

// privacyHandler passes records to the handler the server was given,
// unchanged with log_ips on and with addresses hidden otherwise. It keeps
// both versions of attributes added with WithAttrs, since a reload may
// switch log_ips either way.
type privacyHandler struct {
	open    slog.Handler // attributes as given
	private slog.Handler // attributes with addresses hidden
	logIPs  func() bool
}

func newPrivacyHandler(h slog.Handler, logIPs func() bool) *privacyHandler {
	return &privacyHandler{open: h, private: h, logIPs: logIPs}
}

func (h *privacyHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.open.Enabled(ctx, level)
}

func (h *privacyHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.logIPs() {
		return h.open.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, hideAddresses(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(privateAttr(a))
		return true
	})
	return h.private.Handle(ctx, out)
}

func (h *privacyHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	private := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		private[i] = privateAttr(a)
	}
	return &privacyHandler{open: h.open.WithAttrs(attrs), private: h.private.WithAttrs(private), logIPs: h.logIPs}
}

func (h *privacyHandler) WithGroup(name string) slog.Handler {
	return &privacyHandler{open: h.open.WithGroup(name), private: h.private.WithGroup(name), logIPs: h.logIPs}
}

func privateAttr(a slog.Attr) slog.Attr {
	a.Value = privateValue(a.Value.Resolve())
	return a
}

// privateValue is v with addresses hidden: an address value entirely, a
// network error reduced to its reason word, and addresses in text
// replaced.
func privateValue(v slog.Value) slog.Value {
	switch v.Kind() {
	case slog.KindString:
		return slog.StringValue(hideAddresses(v.String()))
	case slog.KindGroup:
		attrs := v.Group()
		out := make([]slog.Attr, len(attrs))
		for i, a := range attrs {
			out[i] = privateAttr(a)
		}
		return slog.GroupValue(out...)
	case slog.KindAny:
	default:
		return v // numbers, times, durations
	}
	switch x := v.Any().(type) {
	case netip.Addr, netip.AddrPort, netip.Prefix, net.IP, net.IPNet, *net.IPNet, net.Addr:
		return slog.StringValue(hiddenAddress)
	case error:
		if mayNameAddress(x) || errors.As(x, new(tls.RecordHeaderError)) {
			return slog.StringValue(netErrorSummary(x))
		}
		if text := x.Error(); hideAddresses(text) != text {
			return slog.StringValue(hideAddresses(text))
		}
	case fmt.Stringer:
		if text := x.String(); hideAddresses(text) != text {
			return slog.StringValue(hideAddresses(text))
		}
	}
	return v
}

// netErrorSummary is what the log says about a network error with
// log_ips off: its reason word; crypto/tls's message for a TLS failure;
// and the system's error for others (e.g. "error: too many open files"
// when accepting fails), none of which names an address.
func netErrorSummary(err error) string {
	switch r := ioReason(err); r {
	case reasonTLS:
		return tlsDetail(err)
	case reasonError:
		var errno syscall.Errno
		if errors.As(err, &errno) {
			return r.String() + ": " + errno.Error()
		}
		return r.String()
	default:
		return r.String()
	}
}

// hideAddresses replaces every IP address in text, IPv4 or IPv6, with or
// without port or brackets, with hiddenAddress.
func hideAddresses(text string) string {
	var b strings.Builder
	done := 0 // text[:done] is in b
	for i := 0; i < len(text); {
		if !isAddrByte(text[i]) {
			i++
			continue
		}
		j := i
		for j < len(text) && isAddrByte(text[j]) {
			j++
		}
		for _, span := range addressesIn(text[i:j]) {
			b.WriteString(text[done : i+span[0]])
			b.WriteString(hiddenAddress)
			done = i + span[1]
		}
		i = j
	}
	if b.Len() == 0 {
		return text // nothing replaced
	}
	b.WriteString(text[done:])
	return b.String()
}

// isAddrByte reports whether c may be part of an address as Go prints
// it: hex digits, dots, colons and the brackets around an IPv6 address
// with a port.
func isAddrByte(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' ||
		c == '.' || c == ':' || c == '[' || c == ']'
}

// addressesIn finds the addresses in a run of address bytes, as [start,
// end) offsets: the run itself, less trailing punctuation ("192.0.2.1:80:"
// in "read tcp 192.0.2.1:80->..."), if it is an address; otherwise every
// IPv4 address between its colons and brackets ("x:192.0.2.1").
func addressesIn(run string) [][2]int {
	for end := len(run); end > 0; end-- {
		if isAddress(run[:end]) {
			return [][2]int{{0, end}}
		}
		if c := run[end-1]; c != ':' && c != '.' && c != ']' {
			break
		}
	}
	var spans [][2]int
	start := 0
	for k := 0; k <= len(run); k++ {
		if k < len(run) && run[k] != ':' && run[k] != '[' && run[k] != ']' {
			continue
		}
		part := strings.TrimRight(run[start:k], ".")
		if a, err := netip.ParseAddr(part); err == nil && a.Is4() {
			spans = append(spans, [2]int{start, start + len(part)})
		}
		start = k + 1
	}
	return spans
}

// isAddress reports whether s is an IP address, with or without port.
func isAddress(s string) bool {
	if _, err := netip.ParseAddrPort(s); err == nil {
		return true
	}
	if _, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return true
	}
	return false
}
