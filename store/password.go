package store

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
)

// Password hashing parameters. Hashes are PBKDF2-HMAC-SHA384 with a 48-byte
// key, as Murmur uses, but with a 16-byte salt (Murmur: 8) and a fixed
// iteration count instead of Murmur's start-up benchmark, so that the cost
// does not depend on how busy the machine was when the server started.
//
// DefaultIterations: PBKDF2-HMAC-SHA384 from Go's crypto/pbkdf2 runs at about
// 0.7 µs per iteration on the 2-core development VM, so 40,000 iterations
// take about 30 ms (a whole SetPassword measured 38-45 ms while the VM was
// busy): slow enough to make guessing expensive (Murmur's benchmark would pick
// 16,000 on the same machine), fast enough that an admin login is not
// noticeably delayed. The count is stored with each hash, so it
// can be raised later; CheckPassword then upgrades a hash on the next
// successful login.
const (
	DefaultIterations = 40000
	saltLength        = 16
	keyLength         = 48
)

// hashPassword derives the stored hash of password.
func hashPassword(password string, salt []byte, iterations int) ([]byte, error) {
	return pbkdf2.Key(sha512.New384, password, salt, iterations, keyLength)
}

// newHash returns a fresh salt and the hash of password with it.
func (s *Store) newHash(password string) (hash, salt []byte, iterations int, err error) {
	salt = make([]byte, saltLength)
	if _, err := rand.Read(salt); err != nil {
		return nil, nil, 0, fmt.Errorf("store: salt: %w", err)
	}
	iterations = s.iterations
	hash, err = hashPassword(password, salt, iterations)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("store: hash: %w", err)
	}
	return hash, salt, iterations, nil
}

// SetPassword sets a user's password; "" removes it. Only a salted PBKDF2
// hash is stored. The hash is computed (about 30 ms) before the write
// transaction, so it does not hold up other writers.
func (s *Store) SetPassword(id int64, password string) error {
	if password == "" {
		return s.write(func(tx *sql.Tx) error {
			return mustAffect(tx.Exec(`UPDATE users SET pw_hash = NULL, pw_salt = NULL, pw_iterations = NULL WHERE id = ?`, id))
		})
	}
	hash, salt, iterations, err := s.newHash(password)
	if err != nil {
		return err
	}
	return s.write(func(tx *sql.Tx) error {
		return mustAffect(tx.Exec(`UPDATE users SET pw_hash = ?, pw_salt = ?, pw_iterations = ? WHERE id = ?`,
			hash, salt, iterations, id))
	})
}

// HasPassword reports whether a user has a password.
func (s *Store) HasPassword(id int64) (bool, error) {
	var has bool
	err := s.db.QueryRow(`SELECT pw_hash IS NOT NULL FROM users WHERE id = ?`, id).Scan(&has)
	if errors.Is(err, sql.ErrNoRows) {
		return false, ErrNotFound
	}
	if err != nil {
		return false, fmt.Errorf("store: %w", err)
	}
	return has, nil
}

// CheckPassword reports whether password is the user's password; false when
// the user has none. The comparison is constant-time. A hash made with fewer
// iterations than the current count is replaced after a successful check
// (if that write fails, the login still succeeds and the next one retries).
func (s *Store) CheckPassword(id int64, password string) (bool, error) {
	var hash, salt []byte
	var iterations sql.NullInt64
	err := s.db.QueryRow(`SELECT pw_hash, pw_salt, pw_iterations FROM users WHERE id = ?`, id).Scan(&hash, &salt, &iterations)
	if errors.Is(err, sql.ErrNoRows) {
		return false, ErrNotFound
	}
	if err != nil {
		return false, fmt.Errorf("store: %w", err)
	}
	if hash == nil || !iterations.Valid || iterations.Int64 <= 0 || password == "" {
		return false, nil
	}
	got, err := hashPassword(password, salt, int(iterations.Int64))
	if err != nil {
		return false, fmt.Errorf("store: hash: %w", err)
	}
	if subtle.ConstantTimeCompare(got, hash) != 1 {
		return false, nil
	}
	if iterations.Int64 < int64(s.iterations) {
		newHash, newSalt, n, err := s.newHash(password)
		if err == nil {
			// Only replace the hash that was checked: a concurrent
			// SetPassword wins.
			err = s.write(func(tx *sql.Tx) error {
				_, err := tx.Exec(`UPDATE users SET pw_hash = ?, pw_salt = ?, pw_iterations = ? WHERE id = ? AND pw_hash = ?`,
					newHash, newSalt, n, id, hash)
				return err
			})
		}
		// A failed upgrade must not fail the login; it is retried on
		// the next one.
		_ = err
	}
	return true, nil
}
