package store

// Channel identity. The configuration file is the truth for the channel
// tree, but it holds no ids: a channel is known there by its path
// ("Breakout rooms/Room 1"). Registered users' last channel and listened
// channels are stored by id, and so are things clients keep (Mumble
// remembers the channels a user hid, by server and channel id). So the id
// each path got is recorded here, and the ids ever handed out are counted,
// so that:
//
//   - a channel of the file gets the id last recorded for its path, or
//     one never handed out before;
//   - an id is never handed out twice: a stored reference to a channel
//     that is gone leads nowhere (the server then uses the default
//     channel), never into another channel;
//   - a channel renamed or moved from a client keeps its id, because the
//     server records its new path (RecordChannelIDs).
//
// A channel renamed by editing the file is a removal and an addition: a
// path is all the file says. The row of a removed channel stays, so a path
// that comes back (a channel commented out and restored, a temporary
// channel of the file that emptied) gets its id back.

import (
	"database/sql"
	"errors"
	"fmt"
)

// MaxChannelID is the largest channel id (ids are uint32 on the wire).
const MaxChannelID = 1<<32 - 1

// ErrChannelIDsExhausted is returned when every channel id has been handed
// out; at one new channel a second that takes 136 years.
var ErrChannelIDsExhausted = errors.New("store: every channel id has been used")

// ChannelID is a channel's id and the path it has in the configuration.
type ChannelID struct {
	Path string
	ID   uint32
}

// ChannelIDs is the recorded channel identity.
type ChannelIDs struct {
	Paths map[string]uint32 // the id recorded for each path ever numbered
	// Last is the highest id ever handed out or referenced by a user's
	// last channel or listeners: new ids are larger.
	Last uint32
}

const schemaV2 = `
-- The id each channel path of the configuration file got. A row stays when
-- its channel is removed, so the path gets the same id if it comes back,
-- and the id is never given to another path.
CREATE TABLE channel_ids (
	path TEXT PRIMARY KEY CHECK (path <> ''),
	id   INTEGER NOT NULL UNIQUE CHECK (id BETWEEN 1 AND 4294967295)
) STRICT;

-- One row. last_id is the highest channel id ever handed out (also to the
-- temporary channels clients create, which have no row above); new ids are
-- larger. numbered is 0 until a configuration was first numbered: a
-- database from before channel_ids numbers its first file in file order,
-- as the server did then, so that stored last channels and listeners keep
-- pointing where they pointed.
CREATE TABLE channel_seq (
	last_id  INTEGER NOT NULL CHECK (last_id BETWEEN 0 AND 4294967295),
	numbered INTEGER NOT NULL CHECK (numbered IN (0, 1))
) STRICT;
INSERT INTO channel_seq (last_id, numbered) VALUES (0, 0);
`

// numbering is the recorded identity while it is read or changed.
type numbering struct {
	ChannelIDs
	numbered bool
	byID     map[uint32]string
}

// queryer is what numbering is read through: a transaction or the database.
type queryer interface {
	QueryRow(query string, args ...any) *sql.Row
	Query(query string, args ...any) (*sql.Rows, error)
}

// readNumbering reads the recorded identity. A database from before the
// channel_ids table (read by plenum check, which does not migrate) reads as
// never numbered.
func readNumbering(q queryer) (*numbering, error) {
	n := &numbering{ChannelIDs: ChannelIDs{Paths: map[string]uint32{}}, byID: map[uint32]string{}}
	var tables int
	if err := q.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'channel_ids'`).Scan(&tables); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if tables > 0 {
		if err := q.QueryRow(`SELECT last_id, numbered FROM channel_seq`).Scan(&n.Last, &n.numbered); err != nil {
			return nil, fmt.Errorf("store: reading the channel id sequence: %w", err)
		}
		rows, err := q.Query(`SELECT path, id FROM channel_ids`)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var c ChannelID
			if err := rows.Scan(&c.Path, &c.ID); err != nil {
				return nil, fmt.Errorf("store: %w", err)
			}
			n.Paths[c.Path], n.byID[c.ID] = c.ID, c.Path
			n.Last = max(n.Last, c.ID)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	// Ids stored as references count as handed out, whatever the sequence
	// says: a temporary channel's id may be a user's last channel.
	var lastChannel, listened uint32
	if err := q.QueryRow(`SELECT coalesce(max(last_channel), 0) FROM users`).Scan(&lastChannel); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := q.QueryRow(`SELECT coalesce(max(channel_id), 0) FROM listeners`).Scan(&listened); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	n.Last = max(n.Last, lastChannel, listened)
	return n, nil
}

// number gives each of paths (a configuration's channels in file order,
// depth first) its recorded id or a new one, and reports which are new.
// The first numbering ever gives 1, 2, 3... in file order, the ids the
// server gave before it recorded them.
func (n *numbering) number(paths []string) (ids []uint32, fresh []bool, err error) {
	ids, fresh = make([]uint32, len(paths)), make([]bool, len(paths))
	first := !n.numbered
	for i, p := range paths {
		if id, ok := n.Paths[p]; ok && !first {
			ids[i] = id
			continue
		}
		id := uint32(i + 1)
		if !first {
			if n.Last == MaxChannelID {
				return nil, nil, ErrChannelIDsExhausted
			}
			id = n.Last + 1
		}
		n.set(p, id)
		ids[i], fresh[i] = id, true
	}
	n.numbered = true
	return ids, fresh, nil
}

// set records id for path, taking the id from the path that had it before.
func (n *numbering) set(path string, id uint32) {
	if old, ok := n.Paths[path]; ok {
		delete(n.byID, old)
	}
	if other, ok := n.byID[id]; ok {
		delete(n.Paths, other)
	}
	n.Paths[path], n.byID[id] = id, path
	n.Last = max(n.Last, id)
}

// write stores the numbering: the given rows (each replacing the rows with
// its path or its id) and the sequence, in the caller's transaction.
func (n *numbering) write(tx *sql.Tx, rows []ChannelID) error {
	for _, c := range rows {
		if c.Path == "" || c.ID == 0 {
			return fmt.Errorf("%w: channel id %d for path %q", ErrInvalid, c.ID, c.Path)
		}
		if _, err := tx.Exec(`DELETE FROM channel_ids WHERE path = ? OR id = ?`, c.Path, int64(c.ID)); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if _, err := tx.Exec(`INSERT INTO channel_ids (path, id) VALUES (?, ?)`, c.Path, int64(c.ID)); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	if _, err := tx.Exec(`UPDATE channel_seq SET last_id = ?, numbered = ?`, int64(n.Last), n.numbered); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// AssignChannelIDs numbers a configuration's channels, given by their
// paths in file order (depth first, as conf.Config.Walk visits them), and
// records the new ids before returning the whole recorded identity, in
// which every one of paths now has its id. The server calls it once at
// start, before anyone can see an id.
func (s *Store) AssignChannelIDs(paths []string) (ChannelIDs, error) {
	var out ChannelIDs
	err := s.write(func(tx *sql.Tx) error {
		n, err := readNumbering(tx)
		if err != nil {
			return err
		}
		ids, fresh, err := n.number(paths)
		if err != nil {
			return err
		}
		var rows []ChannelID
		for i, p := range paths {
			if fresh[i] {
				rows = append(rows, ChannelID{p, ids[i]})
			}
		}
		if err := n.write(tx, rows); err != nil {
			return err
		}
		out = n.ChannelIDs
		return nil
	})
	return out, err
}

// PlanChannelIDs tells without writing anything which ids AssignChannelIDs
// would give paths now, and which of them would be new (for plenum check).
func (s *Store) PlanChannelIDs(paths []string) (ids []uint32, fresh []bool, err error) {
	n, err := readNumbering(s.db)
	if err != nil {
		return nil, nil, err
	}
	return n.number(paths)
}

// RecordChannelIDs records channels' current paths, in the order the
// changes happened (a later entry wins over an earlier one with the same
// path or id), and that ids up to last have been handed out. The rows and
// the sequence change in one transaction.
func (s *Store) RecordChannelIDs(changes []ChannelID, last uint32) error {
	return s.write(func(tx *sql.Tx) error {
		n, err := readNumbering(tx)
		if err != nil {
			return err
		}
		for _, c := range changes {
			n.set(c.Path, c.ID)
		}
		n.Last = max(n.Last, last)
		n.numbered = true
		return n.write(tx, changes)
	})
}

// ImportChannelIDs records ids chosen elsewhere (plenum import-murmur keeps
// Murmur's) for a data directory that has never numbered a configuration;
// it reports false, and records nothing, for one that has, whose ids stay.
func (s *Store) ImportChannelIDs(ids []ChannelID) (bool, error) {
	imported := false
	err := s.write(func(tx *sql.Tx) error {
		n, err := readNumbering(tx)
		if err != nil {
			return err
		}
		if n.numbered || len(n.Paths) > 0 {
			return nil
		}
		seen := map[uint32]bool{}
		for _, c := range ids {
			if seen[c.ID] {
				return fmt.Errorf("%w: channel id %d given twice", ErrInvalid, c.ID)
			}
			seen[c.ID] = true
			n.set(c.Path, c.ID)
		}
		n.numbered = true
		imported = true
		return n.write(tx, ids)
	})
	return imported && err == nil, err
}
