package store

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// crashEnv selects the child role of TestCrashDurability and names its
// database; crashRoundEnv tells it which round it is in.
const (
	crashEnv      = "PLENUM_STORE_CRASH_CHILD"
	crashRoundEnv = "PLENUM_STORE_CRASH_ROUND"
)

// TestCrashDurability runs a child process (this test binary) that writes as
// fast as it can and reports each write the moment the call returned, kills
// it with SIGKILL at a random moment, and checks after every round that the
// database is intact and holds every reported write, and that channel ids
// and their sequence were never committed apart.
func TestCrashDurability(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("in the child")
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	const rounds = 8
	type userAck struct{ name, cert, password string }
	users := map[int64]*userAck{}
	bans := map[string]bool{}
	listeners := map[int64]string{}
	chans := map[string]uint32{} // acknowledged channel paths and their ids
	total := 0
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+path, crashRoundEnv+"="+strconv.Itoa(round))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var acks []string
		first := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(out)
			once := sync.OnceFunc(func() { close(first) })
			for sc.Scan() {
				if line, ok := strings.CutPrefix(sc.Text(), "ACK "); ok {
					acks = append(acks, line)
					once()
				}
			}
			once()
		}()
		select {
		case <-first:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatal("child wrote nothing")
		}
		time.Sleep(time.Duration(20+rand.IntN(300)) * time.Millisecond)
		if err := cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		wg.Wait()
		cmd.Wait()

		for _, a := range acks {
			f := strings.Fields(a)
			id, _ := strconv.ParseInt(f[1], 10, 64)
			switch f[0] {
			case "user":
				users[id] = &userAck{name: f[2], cert: f[3]}
			case "pw":
				users[id].password = f[2]
			case "ban":
				bans[f[1]] = true
			case "listen":
				listeners[id] = f[2]
			case "chan":
				// An id has one path: a rename takes it from the old one.
				for p, had := range chans {
					if had == uint32(id) {
						delete(chans, p)
					}
				}
				chans[f[2]] = uint32(id)
			default:
				t.Fatalf("bad ack %q", a)
			}
		}
		total += len(acks)

		s, err := Open(path)
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		s.iterations = 1000 // as the child: no hash upgrades while checking
		var check string
		if err := s.db.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
			t.Fatalf("round %d: integrity_check = %q, %v", round, check, err)
		}
		var fk int
		if err := s.db.QueryRow(`SELECT count(*) FROM pragma_foreign_key_check`).Scan(&fk); err != nil || fk != 0 {
			t.Fatalf("round %d: foreign_key_check found %d rows, %v", round, fk, err)
		}
		for id, want := range users {
			u, err := s.UserByID(id)
			if err != nil || u.Name != want.name || u.CertHash != want.cert {
				t.Errorf("round %d: acknowledged user %d %s: got %+v, %v", round, id, want.name, u, err)
				continue
			}
			if want.password != "" {
				if ok, err := s.CheckPassword(id, want.password); !ok || err != nil {
					t.Errorf("round %d: acknowledged password of user %d lost (%v, %v)", round, id, ok, err)
				}
			}
		}
		stored, err := s.Bans()
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, b := range stored {
			have[b.CertHash] = true
		}
		for h := range bans {
			if !have[h] {
				t.Errorf("round %d: acknowledged ban %s lost", round, h)
			}
		}
		for id, want := range listeners {
			l, err := s.Listeners(id)
			if err != nil || len(l) != 1 || strconv.Itoa(int(l[0])) != want {
				t.Errorf("round %d: acknowledged listener of %d: %v, %v", round, id, l, err)
			}
		}
		numbered, err := s.AssignChannelIDs(nil)
		if err != nil {
			t.Fatal(err)
		}
		for p, id := range chans {
			// The kill may have come after a rename was committed and
			// before it was acknowledged.
			if got := numbered.Paths[p]; got != id && numbered.Paths[p+"-renamed"] != id {
				t.Errorf("round %d: acknowledged channel %q has id %d, want %d", round, p, got, id)
			}
		}
		checkSequenceCoversRows(t, s)
		s.Close()
		t.Logf("round %d: %d writes acknowledged before SIGKILL", round, len(acks))
	}
	if total < rounds {
		t.Errorf("only %d acknowledged writes in %d rounds", total, rounds)
	}
	t.Logf("%d rounds, %d acknowledged writes, %d users, %d bans checked", rounds, total, len(users), len(bans))
}

// TestCrashChild is the child of TestCrashDurability: it writes until it is
// killed, printing "ACK ..." after each call that returned without error.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("only run by TestCrashDurability")
	}
	round := os.Getenv(crashRoundEnv)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.iterations = 1000 // many password writes per round, not strength
	var mu sync.Mutex
	ack := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		// os.Stdout is unbuffered: the line is in the pipe when this returns.
		fmt.Fprintf(os.Stdout, "ACK "+format+"\n", args...)
	}
	deadline := time.Now().Add(20 * time.Second) // a safety net; the parent kills long before
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				tag := fmt.Sprintf("r%sw%di%d", round, w, i)
				c := fmt.Sprintf("%040x", []byte(tag))[:40]
				u, err := s.Register(tag, c)
				if err != nil {
					t.Error(err)
					return
				}
				ack("user %d %s %s", u.ID, u.Name, u.CertHash)
				switch i % 3 {
				case 0:
					if err := s.SetPassword(u.ID, "pw-"+tag); err != nil {
						t.Error(err)
						return
					}
					ack("pw %d pw-%s", u.ID, tag)
				case 1:
					if err := s.AddBan(Ban{CertHash: c, Reason: tag, Duration: time.Hour}); err != nil {
						t.Error(err)
						return
					}
					ack("ban %s", c)
				case 2:
					if err := s.SetListeners(u.ID, []uint32{uint32(i)}); err != nil {
						t.Error(err)
						return
					}
					ack("listen %d %d", u.ID, i)
				}
			}
		}()
	}
	// Channel ids: a new path numbered, then (every other time) renamed,
	// each a transaction of rows and sequence together.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; time.Now().Before(deadline); i++ {
			p := fmt.Sprintf("r%s/c%d", round, i)
			numbered, err := s.AssignChannelIDs([]string{p})
			if err != nil {
				t.Error(err)
				return
			}
			id := numbered.Paths[p]
			ack("chan %d %s", id, p)
			if i%2 == 1 {
				if err := s.RecordChannelIDs([]ChannelID{{p + "-renamed", id}}, 0); err != nil {
					t.Error(err)
					return
				}
				ack("chan %d %s-renamed", id, p)
			}
		}
	}()
	wg.Wait()
	s.Close()
}
