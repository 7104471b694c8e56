package store

import (
	"database/sql"
	"errors"
	"fmt"
)

// FirstExternalID is the first user id handed to people a sign-in provider
// vouches for (auth/). Registered users count up from 1 and will not get
// this far; the ids stay below 2^31 because Mumble clients read user ids
// as signed 32-bit numbers and take negative ones for "unregistered".
const FirstExternalID = 1 << 30

const schemaV3 = `
-- The user id of each person a sign-in provider (LDAP, webhook, OpenID
-- Connect) vouched for, by the provider's stable id of them (an LDAP
-- entryUUID, a membership number), so that they keep their id from login
-- to login. Nothing else about them is kept: not their name, not their
-- groups, not when they came.
CREATE TABLE external_users (
	id       INTEGER PRIMARY KEY CHECK (id BETWEEN 1073741824 AND 2147483647),
	provider TEXT NOT NULL CHECK (provider <> ''),
	subject  TEXT NOT NULL CHECK (subject <> ''),
	UNIQUE (provider, subject)
) STRICT;
`

// maxSubjectLength bounds what a provider may use as its stable id.
const maxSubjectLength = 1024

// ExternalUserID returns the user id of the person provider knows as
// subject, handing out the next free id the first time.
func (s *Store) ExternalUserID(provider, subject string) (int64, error) {
	if provider == "" || subject == "" || len(subject) > maxSubjectLength {
		return 0, fmt.Errorf("%w: external user %q of %q", ErrInvalid, subject, provider)
	}
	var id int64
	err := s.db.QueryRow(`SELECT id FROM external_users WHERE provider = ? AND subject = ?`, provider, subject).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	err = s.write(func(tx *sql.Tx) error {
		// Asked again inside the transaction: another login may have
		// added the person meanwhile.
		if err := tx.QueryRow(`SELECT id FROM external_users WHERE provider = ? AND subject = ?`, provider, subject).Scan(&id); err == nil {
			return nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err := tx.QueryRow(`SELECT coalesce(max(id) + 1, ?) FROM external_users`, FirstExternalID).Scan(&id); err != nil {
			return err
		}
		_, err := tx.Exec(`INSERT INTO external_users (id, provider, subject) VALUES (?, ?, ?)`, id, provider, subject)
		return err
	})
	return id, err
}

// IsExternalID reports whether id is in the range of external users.
func IsExternalID(id int64) bool { return id >= FirstExternalID && id < 1<<31 }

// LookupExternalUserID is the user id of the person provider knows as
// subject, without handing one out: ErrNotFound if they never logged in.
func (s *Store) LookupExternalUserID(provider, subject string) (int64, error) {
	var id int64
	err := s.db.QueryRow(`SELECT id FROM external_users WHERE provider = ? AND subject = ?`, provider, subject).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrNotFound
	}
	return id, err
}
