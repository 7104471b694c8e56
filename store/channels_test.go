package store

import (
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// assign numbers paths and returns their ids in order.
func assign(t *testing.T, s *Store, paths ...string) []uint32 {
	t.Helper()
	got, err := s.AssignChannelIDs(paths)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]uint32, len(paths))
	for i, p := range paths {
		id, ok := got.Paths[p]
		if !ok || id == 0 {
			t.Fatalf("AssignChannelIDs(%q) left %q without an id", paths, p)
		}
		ids[i] = id
	}
	return ids
}

func wantIDs(t *testing.T, what string, got []uint32, want ...uint32) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: ids %v, want %v", what, got, want)
	}
}

func TestChannelIDsSurviveInsertionsAcrossReopen(t *testing.T) {
	s, path := openTemp(t)
	// The first numbering is file order, as before ids were recorded.
	wantIDs(t, "first start", assign(t, s, "Lobby", "Hall", "Hall/Side"), 1, 2, 3)
	s.Close()

	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A channel inserted above the others gets a new id; they keep theirs.
	wantIDs(t, "after an insertion", assign(t, s, "Welcome", "Lobby", "Hall", "Hall/Intro", "Hall/Side"), 4, 1, 2, 5, 3)
	wantIDs(t, "again", assign(t, s, "Welcome", "Lobby", "Hall", "Hall/Intro", "Hall/Side"), 4, 1, 2, 5, 3)
}

func TestRemovedChannelIDsAreNeverReused(t *testing.T) {
	s, _ := openTemp(t)
	wantIDs(t, "first", assign(t, s, "A", "B", "C"), 1, 2, 3)
	// C removed (the highest id), D added: D does not get 3.
	wantIDs(t, "C removed, D added", assign(t, s, "A", "B", "D"), 1, 2, 4)
	// A path that comes back gets its own id back.
	wantIDs(t, "C back", assign(t, s, "A", "C", "D"), 1, 3, 4)
	wantIDs(t, "E new", assign(t, s, "E"), 5)
}

func TestRecordedRenamesKeepTheID(t *testing.T) {
	s, _ := openTemp(t)
	wantIDs(t, "first", assign(t, s, "A", "A/x", "B"), 1, 2, 3)
	// A client renamed A to Z (its subchannel moves with it) and created
	// a temporary channel (id 4, no path).
	if err := s.RecordChannelIDs([]ChannelID{{"Z", 1}, {"Z/x", 2}}, 4); err != nil {
		t.Fatal(err)
	}
	wantIDs(t, "renamed", assign(t, s, "Z", "Z/x", "B"), 1, 2, 3)
	// The old path is another channel now: new, after the temporary one.
	wantIDs(t, "old path", assign(t, s, "A"), 5)
	// A path taken by a channel that moved there replaces the row it had.
	if err := s.RecordChannelIDs([]ChannelID{{"A", 3}}, 0); err != nil {
		t.Fatal(err)
	}
	wantIDs(t, "moved onto a removed path", assign(t, s, "A", "B"), 3, 6)
}

func TestReferencedChannelIDsCountAsUsed(t *testing.T) {
	// A user's last channel or listener may be a temporary channel that
	// was never recorded; no new channel may get its id.
	s, _ := openTemp(t)
	wantIDs(t, "first", assign(t, s, "A"), 1)
	u, err := s.Register("ann", cert(1))
	if err != nil {
		t.Fatal(err)
	}
	must(t, s.SetLastSeen(u.ID, time.Now(), 7))
	must(t, s.SetListeners(u.ID, []uint32{1, 9}))
	wantIDs(t, "after references", assign(t, s, "A", "B"), 1, 10)
}

func TestChannelIDWritesAreOneTransaction(t *testing.T) {
	s, _ := openTemp(t)
	wantIDs(t, "first", assign(t, s, "A", "B"), 1, 2)
	// The second change is invalid: nothing of the call may remain, not
	// the first row and not the raised sequence.
	err := s.RecordChannelIDs([]ChannelID{{"A2", 1}, {"", 5}}, 50)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("RecordChannelIDs with an empty path = %v, want ErrInvalid", err)
	}
	got, err := s.AssignChannelIDs(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Paths["A"] != 1 || got.Paths["A2"] != 0 || got.Last != 2 {
		t.Errorf("after a failed record: %+v, want A=1, no A2, last 2", got)
	}
	checkSequenceCoversRows(t, s)
}

// checkSequenceCoversRows checks, in the raw tables, that no recorded id
// is above the sequence: the row and the sequence were written together.
func checkSequenceCoversRows(t *testing.T, s *Store) {
	t.Helper()
	var last, maxID, n int64
	if err := s.db.QueryRow(`SELECT last_id FROM channel_seq`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	if err := s.db.QueryRow(`SELECT coalesce(max(id), 0), count(*) FROM channel_ids`).Scan(&maxID, &n); err != nil {
		t.Fatal(err)
	}
	if maxID > last {
		t.Errorf("channel_ids holds id %d above the sequence's last_id %d", maxID, last)
	}
	var seqRows int
	if err := s.db.QueryRow(`SELECT count(*) FROM channel_seq`).Scan(&seqRows); err != nil || seqRows != 1 {
		t.Errorf("channel_seq has %d rows (%v), want 1", seqRows, err)
	}
}

func TestPlanChannelIDsWritesNothing(t *testing.T) {
	s, path := openTemp(t)
	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	ids, fresh, err := ro.PlanChannelIDs([]string{"A", "B"})
	if err != nil || !slices.Equal(ids, []uint32{1, 2}) || !slices.Equal(fresh, []bool{true, true}) {
		t.Fatalf("plan on a new database = %v %v %v", ids, fresh, err)
	}
	if _, err := ro.AssignChannelIDs([]string{"A"}); err == nil {
		t.Error("a read-only store accepted a write")
	}
	wantIDs(t, "assign after the plan", assign(t, s, "B", "A"), 1, 2)
	ids, fresh, err = ro.PlanChannelIDs([]string{"C", "A", "B"})
	if err != nil || !slices.Equal(ids, []uint32{3, 2, 1}) || !slices.Equal(fresh, []bool{true, false, false}) {
		t.Errorf("plan after numbering = %v %v %v", ids, fresh, err)
	}
	if got, _ := s.AssignChannelIDs(nil); got.Paths["C"] != 0 {
		t.Error("planning recorded a path")
	}
}

func TestImportChannelIDs(t *testing.T) {
	s, _ := openTemp(t)
	ok, err := s.ImportChannelIDs([]ChannelID{{"Hall", 12}, {"Lobby", 3}})
	if err != nil || !ok {
		t.Fatalf("import into a new data directory = %v, %v", ok, err)
	}
	wantIDs(t, "imported", assign(t, s, "Lobby", "Hall", "New"), 3, 12, 13)
	ok, err = s.ImportChannelIDs([]ChannelID{{"Hall", 40}})
	if err != nil || ok {
		t.Errorf("second import = %v, %v; want false: the recorded ids stay", ok, err)
	}
	wantIDs(t, "after the refused import", assign(t, s, "Hall"), 12)

	s2, _ := openTemp(t)
	if _, err := s2.ImportChannelIDs([]ChannelID{{"A", 2}, {"B", 2}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("import of a duplicate id = %v, want ErrInvalid", err)
	}
}

// makeV1 creates a database with the first schema, as Plenum wrote it
// before channel ids were recorded.
func makeV1(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if err := migrations[0](tx); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`UPDATE schema_version SET version = 1`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestMigrationNumbersTheFirstFileAsBefore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plenum.db")
	db := makeV1(t, path)
	// Under the old scheme the file's third channel was 3; a temporary
	// channel a client created got 9 and is a listener's.
	for _, q := range []string{
		`INSERT INTO users (id, name, name_key, cert_hash, last_channel) VALUES (1, 'ann', 'ann', '` + cert(1) + `', 3)`,
		`INSERT INTO listeners (user_id, channel_id) VALUES (1, 2), (1, 9)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	// plenum check reads the old database without migrating it.
	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	ids, _, err := ro.PlanChannelIDs([]string{"A", "B", "C"})
	ro.Close()
	if err != nil || !slices.Equal(ids, []uint32{1, 2, 3}) {
		t.Errorf("plan on a schema 1 database = %v, %v", ids, err)
	}

	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	wantIDs(t, "first start after the migration", assign(t, s, "A", "B", "C"), 1, 2, 3)
	if u, _ := s.UserByID(1); u.LastChannel != 3 {
		t.Errorf("last channel %d after the migration, want 3", u.LastChannel)
	}
	// Now ids are recorded: an insertion above keeps them, and the new
	// channel does not take the temporary channel's 9.
	wantIDs(t, "insertion", assign(t, s, "New", "A", "B", "C"), 10, 1, 2, 3)
}
