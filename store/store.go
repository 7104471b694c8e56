package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"modernc.org/sqlite" // also registers the "sqlite" driver
)

// Errors returned by Store methods; test them with errors.Is.
var (
	ErrNotFound  = errors.New("store: not found")
	ErrNameTaken = errors.New("store: name already registered")
	ErrCertTaken = errors.New("store: certificate already registered")
	// ErrSuperUser is returned when an operation would delete or rename
	// SuperUser (id 0).
	ErrSuperUser = errors.New("store: SuperUser cannot be deleted or renamed")
	// ErrInvalid is wrapped by errors about malformed arguments.
	ErrInvalid = errors.New("store: invalid argument")
	// ErrNewerSchema is returned by Open for a database written by a newer
	// Plenum.
	ErrNewerSchema = errors.New("store: database schema is newer than this program")
	// ErrForeign is returned by Open for an SQLite file that is not a Plenum
	// database (for example a Murmur one).
	ErrForeign = errors.New("store: not a Plenum database")
	// ErrFull is wrapped by the error of a write that failed because the
	// disk is full. Nothing of that write was stored; the database stays
	// readable and takes writes again once there is space.
	ErrFull = errors.New("store: disk full")
)

// SuperUserID is the user id of SuperUser; SuperUserName its fixed name.
const (
	SuperUserID   = 0
	SuperUserName = "SuperUser"
)

// busyTimeout is how long a statement waits for another process's lock
// (a backup tool, an admin's sqlite3 shell) before failing.
const busyTimeout = 5 * time.Second

// Store is Plenum's database; safe for concurrent use.
type Store struct {
	db *sql.DB
	// wmu serialises writers of this process, so they queue here instead of
	// polling in SQLite's busy handler.
	wmu sync.Mutex
	// iterations is the PBKDF2 iteration count for new password hashes.
	iterations int
}

// Open opens the database at path, creating the file and the schema if they
// are missing and migrating an older schema. It refuses a database with a
// newer schema version or one that is not Plenum's.
func Open(path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	_, statErr := os.Stat(abs)
	created := errors.Is(statErr, os.ErrNotExist)

	s, err := open(abs, false)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := s.migrate(); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if created {
		// Make the new file's directory entry durable too.
		if d, err := os.Open(filepath.Dir(abs)); err == nil {
			d.Sync()
			d.Close()
		}
	}
	return s, nil
}

// OpenReadOnly opens an existing database for reading only, as plenum
// check does: it neither creates nor migrates anything (the next Open
// migrates), and every write fails. It refuses a database with a newer
// schema or one that is not Plenum's; a file without any schema yet gives
// ErrNotFound.
func OpenReadOnly(path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s, err := open(abs, true)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if _, err := s.readVersion(s.db); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return s, nil
}

// open opens the database file at the absolute path abs.
func open(abs string, readOnly bool) (*Store, error) {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
		q.Add("_pragma", "foreign_keys(1)")
		q.Add("_pragma", "secure_delete(1)")
		q.Set("_txlock", "immediate")
	}
	dsn := "file:" + (&url.URL{Path: filepath.ToSlash(abs)}).EscapedPath() + "?" + q.Encode()

	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(0)
	return &Store{db: db, iterations: DefaultIterations}, nil
}

// Close closes the database. Every write has already been committed.
func (s *Store) Close() error {
	return s.db.Close()
}

// schemaVersion is the version this code writes; migrations[i] brings a
// database from version i to i+1.
const schemaVersion = 3

var migrations = []func(tx *sql.Tx) error{
	// 0 -> 1: the initial schema.
	func(tx *sql.Tx) error {
		if _, err := tx.Exec(schemaV1); err != nil {
			return err
		}
		_, err := tx.Exec(`INSERT INTO users (id, name, name_key) VALUES (?, ?, ?)`,
			SuperUserID, SuperUserName, foldName(SuperUserName))
		return err
	},
	// 1 -> 2: channel identity (channels.go). The first start after this
	// numbers the file's channels as the server did before.
	func(tx *sql.Tx) error {
		_, err := tx.Exec(schemaV2)
		return err
	},
	// 2 -> 3: the ids of people a sign-in provider vouched for (external.go).
	func(tx *sql.Tx) error {
		_, err := tx.Exec(schemaV3)
		return err
	},
}

const schemaV1 = `
CREATE TABLE schema_version (
	version INTEGER NOT NULL
) STRICT;
INSERT INTO schema_version (version) VALUES (0);

-- Registered users. id 0 is SuperUser; AUTOINCREMENT never reuses the id
-- of an unregistered user, so stale references elsewhere cannot point to
-- somebody new.
CREATE TABLE users (
	id            INTEGER PRIMARY KEY AUTOINCREMENT CHECK (id >= 0 AND id < 4294967295),
	name          TEXT NOT NULL CHECK (name <> ''),
	name_key      TEXT NOT NULL UNIQUE,  -- case-folded name, for unique and case-insensitive lookup
	cert_hash     TEXT UNIQUE,           -- lowercase hex SHA-1; NULL for SuperUser
	pw_hash       BLOB,                  -- PBKDF2-HMAC-SHA384, 48 bytes; NULL when no password
	pw_salt       BLOB,
	pw_iterations INTEGER,
	comment       TEXT NOT NULL DEFAULT '',
	texture       BLOB,
	last_seen     INTEGER,               -- Unix seconds, NULL = never
	last_channel  INTEGER NOT NULL DEFAULT 0 CHECK (last_channel BETWEEN 0 AND 4294967295),
	CHECK ((pw_hash IS NULL) = (pw_salt IS NULL) AND (pw_hash IS NULL) = (pw_iterations IS NULL))
) STRICT;

-- Bans. prefix is the masked address in CIDR form (IPv4 bans as IPv4);
-- no other address is ever written to this database.
CREATE TABLE bans (
	id        INTEGER PRIMARY KEY,
	prefix    TEXT,                       -- NULL for certificate-only bans
	cert_hash TEXT,                       -- NULL for address-only bans
	name      TEXT NOT NULL DEFAULT '',
	reason    TEXT NOT NULL DEFAULT '',
	start     INTEGER NOT NULL,           -- Unix seconds
	duration  INTEGER NOT NULL DEFAULT 0 CHECK (duration >= 0),  -- seconds, 0 = permanent
	CHECK (prefix IS NOT NULL OR cert_hash IS NOT NULL)
) STRICT;

-- Channels a registered user listens to, restored on login.
CREATE TABLE listeners (
	user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	channel_id INTEGER NOT NULL CHECK (channel_id BETWEEN 0 AND 4294967295),
	PRIMARY KEY (user_id, channel_id)
) STRICT, WITHOUT ROWID;
`

// migrate creates or upgrades the schema in one transaction.
func (s *Store) migrate() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: one Open migrates at a time
	if err != nil {
		return err
	}
	defer tx.Rollback()

	version, err := s.readVersion(tx)
	if errors.Is(err, ErrNotFound) {
		version, err = 0, nil // a new file
	}
	if err != nil {
		return err
	}
	if version == schemaVersion {
		return nil
	}
	for v := version; v < schemaVersion; v++ {
		if err := migrations[v](tx); err != nil {
			return fmt.Errorf("migrating schema %d to %d: %w", v, v+1, err)
		}
	}
	if _, err := tx.Exec(`UPDATE schema_version SET version = ?`, schemaVersion); err != nil {
		return err
	}
	return tx.Commit()
}

// readVersion returns the schema version of the database: ErrNotFound for
// a file without any table yet, ErrForeign for a database that is not
// Plenum's, ErrNewerSchema for one of a newer Plenum.
func (s *Store) readVersion(q queryer) (int, error) {
	var n int
	if err := q.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'`).Scan(&n); err != nil {
		return 0, err
	}
	if n == 0 {
		var others int
		if err := q.QueryRow(`SELECT count(*) FROM sqlite_schema`).Scan(&others); err != nil {
			return 0, err
		}
		if others > 0 {
			return 0, ErrForeign
		}
		return 0, fmt.Errorf("%w: no schema yet", ErrNotFound)
	}
	var version int
	if err := q.QueryRow(`SELECT version FROM schema_version`).Scan(&version); err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}
	if version > schemaVersion {
		return 0, fmt.Errorf("%w (file has version %d, this program knows up to %d)", ErrNewerSchema, version, schemaVersion)
	}
	return version, nil
}

// write runs fn in one IMMEDIATE transaction and commits it; with WAL and
// synchronous=FULL the commit is on disk when write returns nil. A full
// disk is reported as ErrFull.
func (s *Store) write(fn func(tx *sql.Tx) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.db.BeginTx(context.Background(), nil)
	if err != nil {
		return markFull(fmt.Errorf("store: begin: %w", err))
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return markFull(err)
	}
	if err := tx.Commit(); err != nil {
		return markFull(fmt.Errorf("store: commit: %w", err))
	}
	return nil
}

// sqliteFull is SQLite's primary result code SQLITE_FULL, which it also
// returns when a write to the database or its WAL failed with ENOSPC.
const sqliteFull = 13

// markFull wraps err in ErrFull when it says the disk is full.
func markFull(err error) error {
	var se *sqlite.Error
	if (errors.As(err, &se) && se.Code()&0xff == sqliteFull) || errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%w: %w", ErrFull, err)
	}
	return err
}

// mustAffect turns "no row changed" into ErrNotFound.
func mustAffect(res sql.Result, err error) error {
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}
