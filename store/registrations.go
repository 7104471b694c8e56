package store

import (
	"database/sql"
	"fmt"
)

// Registration is what makes a registered user the same person on every
// node of a cluster: id, name, certificate and password hash. Comments,
// avatars, last channel and listeners stay with each node.
type Registration struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	CertHash   string `json:"cert_hash,omitempty"` // "" for SuperUser
	PwHash     []byte `json:"pw_hash,omitempty"`
	PwSalt     []byte `json:"pw_salt,omitempty"`
	Iterations int    `json:"pw_iterations,omitempty"`
}

// Registrations returns every registration, SuperUser's included, by id.
func (s *Store) Registrations() ([]Registration, error) {
	rows, err := s.db.Query(`SELECT id, name, coalesce(cert_hash, ''), pw_hash, pw_salt, coalesce(pw_iterations, 0) FROM users ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer rows.Close()
	var out []Registration
	for rows.Next() {
		var r Registration
		if err := rows.Scan(&r.ID, &r.Name, &r.CertHash, &r.PwHash, &r.PwSalt, &r.Iterations); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ImportRegistrations makes the registrations those of regs, in one
// transaction: users not in regs, or under an id regs gives to another
// certificate, are deleted with everything stored about them; the others
// are added or get regs' name and password, keeping their comment,
// avatar, last channel and listeners. New users get the ids regs gives
// them, and later registrations here continue after the highest.
func (s *Store) ImportRegistrations(regs []Registration) error {
	for _, r := range regs {
		if err := checkName(r.Name); err != nil {
			return err
		}
		if r.ID != SuperUserID {
			if _, err := normCert(r.CertHash); err != nil {
				return err
			}
		}
	}
	current, err := s.Registrations()
	if err != nil {
		return err
	}
	want := make(map[int64]Registration, len(regs))
	for _, r := range regs {
		want[r.ID] = r
	}
	return s.write(func(tx *sql.Tx) error {
		// Deletions first, then names out of the way, so that two users who
		// swapped names, or a name that moved to another id, do not collide.
		for _, c := range current {
			if r, ok := want[c.ID]; c.ID != SuperUserID && (!ok || r.CertHash != c.CertHash) {
				if _, err := tx.Exec(`DELETE FROM users WHERE id = ?`, c.ID); err != nil {
					return fmt.Errorf("store: %w", err)
				}
			}
		}
		if _, err := tx.Exec(`UPDATE users SET name_key = '#' || id WHERE id <> 0`); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		for _, r := range regs {
			var cert, iterations any
			if r.CertHash != "" {
				cert = r.CertHash
			}
			if r.PwHash != nil {
				iterations = r.Iterations
			}
			_, err := tx.Exec(`INSERT INTO users (id, name, name_key, cert_hash, pw_hash, pw_salt, pw_iterations) VALUES (?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (id) DO UPDATE SET name = excluded.name, name_key = excluded.name_key,
					pw_hash = excluded.pw_hash, pw_salt = excluded.pw_salt, pw_iterations = excluded.pw_iterations`,
				r.ID, r.Name, foldName(r.Name), cert, r.PwHash, r.PwSalt, iterations)
			if err != nil {
				return fmt.Errorf("store: importing user %d: %w", r.ID, err)
			}
		}
		return nil
	})
}
