package store

import (
	"database/sql"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"
)

// Ban is one entry of the server's ban list. A ban matches by address
// prefix, by certificate hash, or both.
type Ban struct {
	// Prefix is the banned address range, masked (host bits zero). IPv4
	// bans are IPv4 prefixes (a Mumble mask of 120 is a /24). The zero
	// Prefix means the ban has no address part.
	Prefix   netip.Prefix
	CertHash string // lowercase hex SHA-1; "" for none
	Name     string // the banned user's name, for the admin's list
	Reason   string
	Start    time.Time     // UTC, whole seconds when read back
	Duration time.Duration // 0 = permanent; stored in whole seconds
}

// wireISO is how Murmur writes a ban start (QDateTime, Qt::ISODate, UTC).
const wireISO = "2006-01-02T15:04:05Z"

// BanFromWire builds a Ban from a BanList.BanEntry: address is 16 bytes
// (IPv4-mapped for IPv4) and mask counts bits of the 128-bit address (an IPv4
// /24 is 120); an all-zero or empty address means no address part. start is
// ISO 8601, read as UTC when it has no zone; "" means now. duration is in
// seconds. Entries with a malformed address or mask, a bad start, or neither
// an address nor a hash are rejected (Murmur drops them).
func BanFromWire(address []byte, mask uint32, name, hash, reason, start string, duration uint32) (Ban, error) {
	b := Ban{
		CertHash: strings.ToLower(strings.TrimSpace(hash)),
		Name:     name,
		Reason:   reason,
		Duration: time.Duration(duration) * time.Second,
	}
	switch {
	case len(address) == 0:
	case len(address) != 16:
		return Ban{}, fmt.Errorf("%w: ban address has %d bytes, want 16", ErrInvalid, len(address))
	default:
		a := netip.AddrFrom16([16]byte(address))
		if !a.IsUnspecified() {
			if mask < 8 || mask > 128 {
				return Ban{}, fmt.Errorf("%w: ban mask %d outside 8..128", ErrInvalid, mask)
			}
			b.Prefix = prefixFrom128(a, int(mask))
		}
	}
	if !b.Prefix.IsValid() && b.CertHash == "" {
		return Ban{}, fmt.Errorf("%w: ban has neither an address nor a certificate hash", ErrInvalid)
	}
	if start == "" {
		b.Start = time.Now().UTC().Truncate(time.Second)
	} else {
		t, err := parseISO(start)
		if err != nil {
			return Ban{}, err
		}
		b.Start = t
	}
	return b, nil
}

// prefixFrom128 makes a masked prefix from a 16-byte address and a mask over
// 128 bits, as an IPv4 prefix when it lies within the IPv4-mapped range.
func prefixFrom128(a netip.Addr, bits int) netip.Prefix {
	if a.Is4In6() && bits >= 96 {
		return netip.PrefixFrom(a.Unmap(), bits-96).Masked()
	}
	return netip.PrefixFrom(a, bits).Masked()
}

// to128 returns p over the 128-bit address space.
func to128(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4() {
		return netip.PrefixFrom(netip.AddrFrom16(p.Addr().As16()), p.Bits()+96)
	}
	return p
}

// parseISO reads the ISO 8601 forms Qt writes and reads: with or without
// fractional seconds, with "Z", an offset, or no zone (taken as UTC).
func parseISO(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Truncate(time.Second), nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: ban start %q is not ISO 8601", ErrInvalid, s)
}

// Wire returns the ban's fields in BanList.BanEntry form. A ban without an
// address part is sent as the all-zero address with mask 128 (stock clients
// drop such entries from their editor, see the package notes).
func (b Ban) Wire() (address []byte, mask uint32, start string, duration uint32) {
	a := [16]byte{}
	mask = 128
	if b.Prefix.IsValid() {
		p := to128(b.Prefix.Masked())
		a = p.Addr().As16()
		mask = uint32(p.Bits())
	}
	secs := durationSeconds(b.Duration)
	if secs > math.MaxUint32 {
		secs = math.MaxUint32
	}
	return a[:], mask, b.Start.UTC().Format(wireISO), uint32(secs)
}

// durationSeconds rounds a duration up to whole seconds, so that a short
// temporary ban never becomes permanent.
func durationSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// Expired reports whether a temporary ban has run out at now.
func (b Ban) Expired(now time.Time) bool {
	return b.Duration > 0 && now.After(b.Start.Add(b.Duration))
}

// Matches reports whether the ban applies to a client at addr with the given
// certificate hash: it has not expired and addr lies in its prefix (IPv4 and
// IPv4-mapped addresses are the same), or its hash is non-empty and equal.
func (b Ban) Matches(addr netip.Addr, certHash string, now time.Time) bool {
	if b.Expired(now) {
		return false
	}
	if b.Prefix.IsValid() && addr.IsValid() {
		if to128(b.Prefix).Contains(netip.AddrFrom16(addr.WithZone("").As16())) {
			return true
		}
	}
	return b.CertHash != "" && strings.EqualFold(b.CertHash, certHash)
}

// Normalize checks a ban and returns it in the form the store keeps and
// Bans reads back: masked prefix (IPv4 if IPv4-mapped), lowercase hash, UTC
// start in whole seconds (now if zero), duration rounded up to whole
// seconds.
func (b Ban) Normalize(now time.Time) (Ban, error) {
	if b.Prefix.IsValid() {
		a := b.Prefix.Addr().WithZone("")
		bits := b.Prefix.Bits()
		if a.Is4() {
			bits += 96
		}
		if bits < 8 {
			return Ban{}, fmt.Errorf("%w: ban prefix %v", ErrInvalid, b.Prefix)
		}
		b.Prefix = prefixFrom128(netip.AddrFrom16(a.As16()), bits)
	}
	b.CertHash = strings.ToLower(strings.TrimSpace(b.CertHash))
	if !b.Prefix.IsValid() && b.CertHash == "" {
		return Ban{}, fmt.Errorf("%w: ban has neither an address nor a certificate hash", ErrInvalid)
	}
	if b.Duration < 0 {
		return Ban{}, fmt.Errorf("%w: negative ban duration", ErrInvalid)
	}
	if b.Start.IsZero() {
		b.Start = now
	}
	b.Start = b.Start.UTC().Truncate(time.Second)
	b.Duration = time.Duration(durationSeconds(b.Duration)) * time.Second
	return b, nil
}

// Bans returns the ban list in the order the bans were added.
func (s *Store) Bans() ([]Ban, error) {
	rows, err := s.db.Query(`SELECT prefix, cert_hash, name, reason, start, duration FROM bans ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer rows.Close()
	var bans []Ban
	for rows.Next() {
		var prefix, hash sql.NullString
		var start, dur int64
		var b Ban
		if err := rows.Scan(&prefix, &hash, &b.Name, &b.Reason, &start, &dur); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		if prefix.Valid {
			if b.Prefix, err = netip.ParsePrefix(prefix.String); err != nil {
				return nil, fmt.Errorf("store: stored ban prefix: %w", err)
			}
		}
		b.CertHash = hash.String
		b.Start = time.Unix(start, 0).UTC()
		b.Duration = time.Duration(dur) * time.Second
		bans = append(bans, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return bans, nil
}

func insertBan(tx *sql.Tx, b Ban) error {
	var prefix, hash any
	if b.Prefix.IsValid() {
		prefix = b.Prefix.String()
	}
	if b.CertHash != "" {
		hash = b.CertHash
	}
	_, err := tx.Exec(`INSERT INTO bans (prefix, cert_hash, name, reason, start, duration) VALUES (?, ?, ?, ?, ?, ?)`,
		prefix, hash, b.Name, b.Reason, b.Start.Unix(), int64(b.Duration/time.Second))
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// SetBans replaces the whole ban list in one transaction, as a BanList from a
// client does, keeping every ban in the given order (duplicates too, as
// Murmur does: two bans of one address may differ in reason or duration).
// Bans are normalised as AddBan does. If any ban is invalid nothing changes.
func (s *Store) SetBans(bans []Ban) error {
	now := time.Now()
	list := make([]Ban, 0, len(bans))
	for _, b := range bans {
		n, err := b.Normalize(now)
		if err != nil {
			return err
		}
		list = append(list, n)
	}
	return s.write(func(tx *sql.Tx) error {
		if _, err := tx.Exec(`DELETE FROM bans`); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		for _, b := range list {
			if err := insertBan(tx, b); err != nil {
				return err
			}
		}
		return nil
	})
}

// AddBan appends a ban (as a kick with ban does). The prefix is masked, the
// hash lowercased, a zero Start becomes now; Start and Duration are kept in
// whole seconds (Duration rounded up).
func (s *Store) AddBan(b Ban) error {
	n, err := b.Normalize(time.Now())
	if err != nil {
		return err
	}
	return s.write(func(tx *sql.Tx) error { return insertBan(tx, n) })
}

// PurgeExpiredBans deletes the bans that have expired at now and returns how
// many there were.
func (s *Store) PurgeExpiredBans(now time.Time) (int, error) {
	var n int64
	err := s.write(func(tx *sql.Tx) error {
		// Same rule as Ban.Expired, to the nanosecond.
		res, err := tx.Exec(`DELETE FROM bans WHERE duration > 0 AND (start + duration) * 1000000000 < ?`, now.UnixNano())
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}
