package store

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// User is a registered user.
type User struct {
	ID          int64  // 0 is SuperUser, registered users from 1
	Name        string // as registered (the stored spelling)
	CertHash    string // lowercase hex SHA-1 of the client certificate; "" for SuperUser
	Comment     string
	Texture     []byte
	LastSeen    time.Time // zero if never seen; UTC, whole seconds
	LastChannel uint32
}

// MaxNameLength is the longest name, in characters, the store accepts (as
// Murmur's default username limit).
const MaxNameLength = 512

// foldName maps a name to the key that makes names unique: every rune is
// replaced by the smallest rune of its simple case-folding orbit, so two names
// get the same key exactly when strings.EqualFold says they are equal, and
// the key has as many runes as the name (so substring search works on keys).
func foldName(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	for _, r := range name {
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		b.WriteRune(min)
	}
	return b.String()
}

// NameKey is the key under which names are unique: two names have the
// same key exactly when they compare equal ignoring case, as logins and
// UserByName compare them.
func NameKey(name string) string { return foldName(name) }

func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty name", ErrInvalid)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: name is not UTF-8", ErrInvalid)
	case utf8.RuneCountInString(name) > MaxNameLength:
		return fmt.Errorf("%w: name longer than %d characters", ErrInvalid, MaxNameLength)
	}
	return nil
}

// normCert checks that hash is 40 hex digits and returns it in lowercase.
func normCert(hash string) (string, error) {
	h := strings.ToLower(hash)
	if len(h) != 40 || strings.Trim(h, "0123456789abcdef") != "" {
		return "", fmt.Errorf("%w: certificate hash %q is not 40 hex digits", ErrInvalid, hash)
	}
	return h, nil
}

// Register registers a new user and returns it with its new id. Names are
// unique ignoring case (ErrNameTaken, also for "superuser"), certificate
// hashes are unique (ErrCertTaken). Ids are never reused.
func (s *Store) Register(name, certHash string) (User, error) {
	if err := checkName(name); err != nil {
		return User{}, err
	}
	cert, err := normCert(certHash)
	if err != nil {
		return User{}, err
	}
	key := foldName(name)
	var id int64
	err = s.write(func(tx *sql.Tx) error {
		if err := checkFree(tx, -1, key); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(`SELECT count(*) FROM users WHERE cert_hash = ?`, cert).Scan(&n); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if n > 0 {
			return ErrCertTaken
		}
		return tx.QueryRow(`INSERT INTO users (name, name_key, cert_hash) VALUES (?, ?, ?) RETURNING id`,
			name, key, cert).Scan(&id)
	})
	if err != nil {
		return User{}, err
	}
	return User{ID: id, Name: name, CertHash: cert}, nil
}

// checkFree returns ErrNameTaken if a user other than self has the name key.
func checkFree(tx *sql.Tx, self int64, key string) error {
	var n int
	if err := tx.QueryRow(`SELECT count(*) FROM users WHERE name_key = ? AND id <> ?`, key, self).Scan(&n); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if n > 0 {
		return ErrNameTaken
	}
	return nil
}

const userColumns = `id, name, coalesce(cert_hash, ''), comment, texture, last_seen, last_channel`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	var lastSeen sql.NullInt64
	err := row.Scan(&u.ID, &u.Name, &u.CertHash, &u.Comment, &u.Texture, &lastSeen, &u.LastChannel)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("store: %w", err)
	}
	if lastSeen.Valid {
		u.LastSeen = time.Unix(lastSeen.Int64, 0).UTC()
	}
	return u, nil
}

// UserByID returns the user with that id, or ErrNotFound.
func (s *Store) UserByID(id int64) (User, error) {
	return scanUser(s.db.QueryRow(`SELECT `+userColumns+` FROM users WHERE id = ?`, id))
}

// UserByName returns the user with that name ignoring case, or ErrNotFound.
func (s *Store) UserByName(name string) (User, error) {
	return scanUser(s.db.QueryRow(`SELECT `+userColumns+` FROM users WHERE name_key = ?`, foldName(name)))
}

// UserByCert returns the user registered with that certificate hash (any
// case), or ErrNotFound. SuperUser has no certificate and is never returned.
func (s *Store) UserByCert(hash string) (User, error) {
	if hash == "" {
		return User{}, ErrNotFound
	}
	return scanUser(s.db.QueryRow(`SELECT `+userColumns+` FROM users WHERE cert_hash = ?`, strings.ToLower(hash)))
}

// Users returns all users, or, when filter is not empty, those whose name
// contains filter ignoring case, ordered by id. SuperUser (id 0) is included
// when it matches; Murmur's UserList reply leaves it out, so the server must
// skip id 0 there.
func (s *Store) Users(filter string) ([]User, error) {
	rows, err := s.db.Query(`SELECT `+userColumns+` FROM users WHERE ? = '' OR instr(name_key, ?) > 0 ORDER BY id`,
		filter, foldName(filter))
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer rows.Close()
	var users []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return users, nil
}

// Rename changes a user's name. SuperUser cannot be renamed (ErrSuperUser);
// a name another user has, ignoring case, gives ErrNameTaken. A user may
// change the case of their own name.
func (s *Store) Rename(id int64, name string) error {
	if id == SuperUserID {
		return ErrSuperUser
	}
	if err := checkName(name); err != nil {
		return err
	}
	key := foldName(name)
	return s.write(func(tx *sql.Tx) error {
		if err := checkFree(tx, id, key); err != nil {
			return err
		}
		return mustAffect(tx.Exec(`UPDATE users SET name = ?, name_key = ? WHERE id = ?`, name, key, id))
	})
}

// Delete unregisters a user, removing everything stored about them.
// SuperUser cannot be deleted (ErrSuperUser).
func (s *Store) Delete(id int64) error {
	if id == SuperUserID {
		return ErrSuperUser
	}
	return s.write(func(tx *sql.Tx) error {
		return mustAffect(tx.Exec(`DELETE FROM users WHERE id = ?`, id))
	})
}

// SetComment sets a user's comment ("" clears it).
func (s *Store) SetComment(id int64, comment string) error {
	return s.write(func(tx *sql.Tx) error {
		return mustAffect(tx.Exec(`UPDATE users SET comment = ? WHERE id = ?`, comment, id))
	})
}

// SetTexture sets a user's avatar texture (nil or empty clears it).
func (s *Store) SetTexture(id int64, texture []byte) error {
	if len(texture) == 0 {
		texture = nil
	}
	return s.write(func(tx *sql.Tx) error {
		return mustAffect(tx.Exec(`UPDATE users SET texture = ? WHERE id = ?`, texture, id))
	})
}

// SetLastSeen records when a user was last seen (stored in whole seconds)
// and the channel they were in.
func (s *Store) SetLastSeen(id int64, at time.Time, channel uint32) error {
	var v any
	if !at.IsZero() {
		v = at.Unix()
	}
	return s.write(func(tx *sql.Tx) error {
		return mustAffect(tx.Exec(`UPDATE users SET last_seen = ?, last_channel = ? WHERE id = ?`, v, int64(channel), id))
	})
}

// ForgetChannel is for a channel that was removed: it clears it from every
// user's listeners and sends users whose last channel it was back to root (0).
func (s *Store) ForgetChannel(channel uint32) error {
	return s.write(func(tx *sql.Tx) error {
		if _, err := tx.Exec(`DELETE FROM listeners WHERE channel_id = ?`, int64(channel)); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if _, err := tx.Exec(`UPDATE users SET last_channel = 0 WHERE last_channel = ?`, int64(channel)); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		return nil
	})
}

// Listeners returns the channels a user listens to, in ascending order.
func (s *Store) Listeners(userID int64) ([]uint32, error) {
	if err := s.exists(userID); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(`SELECT channel_id FROM listeners WHERE user_id = ? ORDER BY channel_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer rows.Close()
	var chans []uint32
	for rows.Next() {
		var c uint32
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		chans = append(chans, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return chans, nil
}

// SetListeners replaces the channels a user listens to (duplicates are
// ignored; nil clears them).
func (s *Store) SetListeners(userID int64, channels []uint32) error {
	return s.write(func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRow(`SELECT count(*) FROM users WHERE id = ?`, userID).Scan(&n); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if n == 0 {
			return ErrNotFound
		}
		if _, err := tx.Exec(`DELETE FROM listeners WHERE user_id = ?`, userID); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		for _, c := range channels {
			if _, err := tx.Exec(`INSERT OR IGNORE INTO listeners (user_id, channel_id) VALUES (?, ?)`, userID, int64(c)); err != nil {
				return fmt.Errorf("store: %w", err)
			}
		}
		return nil
	})
}

func (s *Store) exists(id int64) error {
	var n int
	if err := s.db.QueryRow(`SELECT count(*) FROM users WHERE id = ?`, id).Scan(&n); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}
