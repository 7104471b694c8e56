package server_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/auth"
	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/store"
)

// plenaryForDelegates is a configuration where only the group "delegates"
// may speak in the Plenary, and "presidium" may also mute there.
const plenaryForDelegates = `
[[channel]]
name = "Plenary"

  [[channel.acl]]
  group = "all"
  deny = ["Speak"]

  [[channel.acl]]
  group = "delegates"
  allow = ["Speak"]

  [[channel.acl]]
  group = "presidium"
  allow = ["Speak", "MuteDeafen"]
`

// fakeProvider vouches for the people in its table (password "pw") and
// records what it was asked.
type fakeProvider struct {
	mu     sync.Mutex
	people map[string]auth.Answer
	asked  []auth.Request
	err    error
	delay  time.Duration
}

func (f *fakeProvider) Authenticate(ctx context.Context, r auth.Request) (auth.Answer, error) {
	f.mu.Lock()
	f.asked = append(f.asked, r)
	err, delay := f.err, f.delay
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return auth.Answer{}, fmt.Errorf("%w: %w", auth.ErrUnavailable, ctx.Err())
		}
	}
	if err != nil {
		return auth.Answer{}, err
	}
	a, ok := f.people[r.Name]
	switch {
	case !ok:
		return auth.Answer{Verdict: auth.Unknown}, nil
	case r.Password != "pw":
		return auth.Answer{Verdict: auth.Refuse}, nil
	}
	return a, nil
}

func (f *fakeProvider) names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.asked {
		out = append(out, r.Name)
	}
	return out
}

func startSignInServer(t *testing.T, p auth.Authenticator, a *conf.Auth) *testServer {
	t.Helper()
	return startTestServer(t, testOpts{toml: []byte(plenaryForDelegates), authenticator: p, edit: func(c *conf.Config) { c.Auth = a }})
}

// dialAs logs in and returns the error, closing a client that got in.
func (s *testServer) dialAs(t *testing.T, name, password string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Address: s.addr, Username: name, Password: password})
	if err == nil {
		c.Close()
	}
	return err
}

func rejectType(err error) mumblepb.Reject_RejectType {
	var re *client.RejectError
	if errors.As(err, &re) {
		return re.Type
	}
	return mumblepb.Reject_None
}

// TestSignInGroupsDecideWhoSpeaks: the provider's group lets its member
// speak where only that group may, under the display name it gave and a
// user id of the external range; a guest stays suppressed.
func TestSignInGroupsDecideWhoSpeaks(t *testing.T) {
	p := &fakeProvider{people: map[string]auth.Answer{
		"ada": {Verdict: auth.Accept, Subject: "member-17", DisplayName: "Ada Lovelace", Groups: []string{"delegates", "all", "!x"}},
	}}
	s := startSignInServer(t, auth.Chain{{Name: "test", Authenticator: p}}, nil)
	ada := s.join(t, "ada", func(c *client.Config) { c.Password = "pw" })
	guest := s.join(t, "guest", nil)
	ada.moveTo("Plenary", guest)
	guest.moveTo("Plenary", ada)
	me := func() *mumblepb.UserState { return guest.Users()[ada.Session()] }
	guest.waitFor("the delegate may speak and the guest not", func(*client.Client) bool {
		return me() != nil && !me().GetSuppress() && guest.Users()[guest.Session()].GetSuppress()
	})
	if got := me().GetName(); got != "Ada Lovelace" {
		t.Errorf("name %q, want the display name", got)
	}
	id := me().GetUserId()
	if me().UserId == nil || !store.IsExternalID(int64(id)) {
		t.Errorf("user id %v, want one of the external range", me().UserId)
	}
	ada.Close()
	// The same person logs in again: the same id.
	again := s.join(t, "ada", func(c *client.Config) { c.Password = "pw" })
	guest.waitFor("ada back", func(*client.Client) bool {
		u := guest.Users()[again.Session()]
		return u != nil && u.GetUserId() == id
	})
}

// TestSignInVerdicts: a refusal refuses; an unknown name falls through to
// the server's own rules or is refused; a provider that fails refuses or
// admits a guest; SuperUser is never asked of the provider.
func TestSignInVerdicts(t *testing.T) {
	people := map[string]auth.Answer{"ada": {Verdict: auth.Accept, Subject: "a"}}
	t.Run("refused", func(t *testing.T) {
		s := startSignInServer(t, &fakeProvider{people: people}, nil)
		if err := s.dialAs(t, "ada", "wrong"); rejectType(err) != mumblepb.Reject_WrongUserPW {
			t.Errorf("a wrong password: %v", err)
		}
	})
	t.Run("unknown falls through to local", func(t *testing.T) {
		s := startSignInServer(t, &fakeProvider{people: people}, &conf.Auth{Unknown: conf.AuthLocal})
		if err := s.dialAs(t, "stranger", ""); err != nil {
			t.Errorf("an unknown name was not admitted as a guest: %v", err)
		}
	})
	t.Run("unknown refused", func(t *testing.T) {
		s := startSignInServer(t, &fakeProvider{people: people}, &conf.Auth{Unknown: conf.AuthRefuse})
		if err := s.dialAs(t, "stranger", ""); rejectType(err) != mumblepb.Reject_WrongUserPW {
			t.Errorf("an unknown name: %v", err)
		}
	})
	down := fmt.Errorf("%w: connection refused", auth.ErrUnavailable)
	t.Run("unavailable refuses", func(t *testing.T) {
		s := startSignInServer(t, &fakeProvider{people: people, err: down}, nil)
		if err := s.dialAs(t, "ada", "pw"); rejectType(err) != mumblepb.Reject_AuthenticatorFail {
			t.Errorf("with the provider down: %v", err)
		}
	})
	t.Run("unavailable admits a guest", func(t *testing.T) {
		s := startSignInServer(t, &fakeProvider{people: people, err: down}, &conf.Auth{Unavailable: conf.AuthGuest})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := client.Dial(ctx, client.Config{Address: s.addr, Username: "ada", Password: "pw"})
		if err != nil {
			t.Fatalf("with the provider down and guests allowed: %v", err)
		}
		defer c.Close()
		if u := c.Users()[c.Session()]; u.UserId != nil {
			t.Errorf("the guest has user id %d", u.GetUserId())
		}
	})
	t.Run("SuperUser is not asked", func(t *testing.T) {
		p := &fakeProvider{people: map[string]auth.Answer{"SuperUser": {Verdict: auth.Accept, Subject: "evil"}}}
		s := startSignInServer(t, p, nil)
		if err := s.dialAs(t, "superuser", "pw"); rejectType(err) != mumblepb.Reject_WrongUserPW {
			t.Errorf("SuperUser with the provider's password: %v", err)
		}
		if asked := p.names(); len(asked) != 0 {
			t.Errorf("the provider was asked about %v", asked)
		}
	})
}
