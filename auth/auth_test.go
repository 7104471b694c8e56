package auth

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// counting answers from a table and counts the questions.
type counting struct {
	calls   atomic.Int32
	answers map[string]Answer // by name; the password must be "pw"
	err     error
}

func (p *counting) Authenticate(_ context.Context, r Request) (Answer, error) {
	p.calls.Add(1)
	if p.err != nil {
		return Answer{}, p.err
	}
	a, ok := p.answers[r.Name]
	if !ok {
		return Answer{Verdict: Unknown}, nil
	}
	if r.Password != "pw" {
		return Answer{Verdict: Refuse, Reason: "wrong password"}, nil
	}
	return a, nil
}

func TestCacheKeepsOnlyAcceptsForTTL(t *testing.T) {
	p := &counting{answers: map[string]Answer{"ada": {Verdict: Accept, Subject: "u1", Groups: []string{"delegates"}}}}
	now := time.Unix(1000, 0)
	c := &Cache{Authenticator: p, TTL: time.Minute, Now: func() time.Time { return now }}
	ask := func(name, pw string) Answer {
		t.Helper()
		a, err := c.Authenticate(context.Background(), Request{Name: name, Password: pw})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if a := ask("ada", "pw"); a.Verdict != Accept || a.Subject != "u1" {
		t.Fatalf("first answer %+v", a)
	}
	a := ask("ada", "pw")
	if p.calls.Load() != 1 {
		t.Errorf("a warm cache asked the provider again (%d calls)", p.calls.Load())
	}
	if !reflect.DeepEqual(a.Groups, []string{"delegates"}) {
		t.Errorf("cached groups %v", a.Groups)
	}
	a.Groups[0] = "changed"
	if ask("ada", "pw").Groups[0] != "delegates" {
		t.Error("a caller changed the cached answer")
	}
	if ask("ada", "other").Verdict != Refuse {
		t.Error("another password was answered from the cache")
	}
	ask("ada", "other")
	ask("bob", "pw")
	ask("bob", "pw")
	if got := p.calls.Load(); got != 5 {
		t.Errorf("refusals and unknown names: %d calls in all, want 5 (never cached)", got)
	}
	now = now.Add(61 * time.Second)
	ask("ada", "pw")
	if got := p.calls.Load(); got != 6 {
		t.Errorf("after the TTL: %d calls, want 6", got)
	}
}

// TestCacheHoldsNoPassword: nothing the cache keeps contains the password.
func TestCacheHoldsNoPassword(t *testing.T) {
	p := &counting{answers: map[string]Answer{"ada": {Verdict: Accept, Subject: "u1"}}}
	c := &Cache{Authenticator: p, TTL: time.Minute}
	const pw = "pw"
	c.Authenticate(context.Background(), Request{Name: "ada", Password: pw})
	dump := fmt.Sprintf("%+v", c.entries)
	for k := range c.entries {
		if strings.Contains(string(k[:]), "ada") {
			t.Error("the key holds the name in clear")
		}
	}
	if strings.Contains(dump, "Password") {
		t.Errorf("the cache holds a request: %s", dump)
	}
}

func TestCacheIsBounded(t *testing.T) {
	p := &counting{answers: map[string]Answer{}}
	for i := range maxCached + 10 {
		p.answers[fmt.Sprint("u", i)] = Answer{Verdict: Accept, Subject: fmt.Sprint(i)}
	}
	now := time.Unix(0, 0)
	c := &Cache{Authenticator: p, TTL: time.Hour, Now: func() time.Time { return now }}
	for i := range maxCached + 10 {
		now = now.Add(time.Millisecond)
		c.Authenticate(context.Background(), Request{Name: fmt.Sprint("u", i), Password: "pw"})
	}
	if n := c.Len(); n > maxCached {
		t.Errorf("%d entries, more than %d", n, maxCached)
	}
}

func TestChain(t *testing.T) {
	first := &counting{answers: map[string]Answer{"ada": {Verdict: Accept, Subject: "a"}}}
	second := &counting{answers: map[string]Answer{"bob": {Verdict: Accept, Subject: "b"}, "ada": {Verdict: Accept, Subject: "other"}}}
	c := Chain{{"webhook", first}, {"ldap", second}}
	a, err := c.Authenticate(context.Background(), Request{Name: "ada", Password: "pw"})
	if err != nil || a.Subject != "a" || a.Provider != "webhook" {
		t.Errorf("ada: %+v %v, want the first provider's answer", a, err)
	}
	a, err = c.Authenticate(context.Background(), Request{Name: "bob", Password: "pw"})
	if err != nil || a.Subject != "b" || a.Provider != "ldap" {
		t.Errorf("bob: %+v %v, want the second provider's answer", a, err)
	}
	a, err = c.Authenticate(context.Background(), Request{Name: "ada", Password: "bad"})
	if err != nil || a.Verdict != Refuse || second.calls.Load() != 1 {
		t.Errorf("a refusal did not end the walk: %+v %v", a, err)
	}
	a, _ = c.Authenticate(context.Background(), Request{Name: "eve", Password: "pw"})
	if a.Verdict != Unknown {
		t.Errorf("eve: %v, want unknown", a.Verdict)
	}
	broken := &counting{err: fmt.Errorf("%w: connection refused", ErrUnavailable)}
	_, err = Chain{{"webhook", broken}, {"ldap", second}}.Authenticate(context.Background(), Request{Name: "bob", Password: "pw"})
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("an unavailable provider: %v", err)
	}
	noID := &counting{answers: map[string]Answer{"ada": {Verdict: Accept}}}
	if _, err := (Chain{{"webhook", noID}}).Authenticate(context.Background(), Request{Name: "ada", Password: "pw"}); err == nil {
		t.Error("an accept without a user id was taken")
	}
}

func TestCleanGroups(t *testing.T) {
	got := CleanGroups([]string{"delegates", " presidium ", "", "all", "!x", "~y", "#t", "$h", "sub,1", "delegates", "a\nb", strings.Repeat("x", 65), "in"})
	want := []string{"delegates", "presidium"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CleanGroups = %q, want %q", got, want)
	}
}
