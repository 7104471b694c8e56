package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"maps"
	"slices"
	"sync"
	"time"
)

// maxCached bounds the cache: a flood of distinct logins must not grow
// memory without end. Beyond it the entries closest to expiry go first.
const maxCached = 20000

// Cache remembers a provider's positive answers for TTL, so that a
// reconnecting client (Mumble reconnects after every network hiccup) does
// not ask the directory each time. Only accepts are kept: a refusal or an
// unknown name is asked again, so a fixed password works at once.
//
// Passwords are never kept: an entry is found by an HMAC-SHA-256 of the
// login (kind, name, password, certificate hash) under a key made for
// this process, so the cache holds nothing a password could be read or
// guessed from once the process is gone, and nothing that matches a
// different password. The cache lives in memory only.
type Cache struct {
	Authenticator
	TTL time.Duration
	Now func() time.Time // nil means time.Now; tests replace it

	once    sync.Once
	key     [32]byte
	mu      sync.Mutex
	entries map[[32]byte]cached
}

type cached struct {
	answer  Answer
	expires time.Time
}

// NewCache caches a's positive answers for ttl; a ttl of 0 or less caches
// nothing (and NewCache returns a itself).
func NewCache(a Authenticator, ttl time.Duration) Authenticator {
	if ttl <= 0 {
		return a
	}
	return &Cache{Authenticator: a, TTL: ttl}
}

func (c *Cache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Cache) init() {
	if _, err := rand.Read(c.key[:]); err != nil {
		panic("auth: no randomness for the cache key: " + err.Error()) // crypto/rand does not fail on Linux
	}
	c.entries = map[[32]byte]cached{}
}

// keyOf is the HMAC of the login; each field is length-prefixed, so no two
// logins share an encoding.
func (c *Cache) keyOf(r Request) [32]byte {
	m := hmac.New(sha256.New, c.key[:])
	var n [8]byte
	for _, f := range []string{r.Kind.String(), r.Name, r.Password, r.CertHash} {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		m.Write(n[:])
		m.Write([]byte(f))
	}
	var k [32]byte
	m.Sum(k[:0])
	return k
}

// Authenticate answers from the cache when it can, else asks the provider.
func (c *Cache) Authenticate(ctx context.Context, r Request) (Answer, error) {
	c.once.Do(c.init)
	k := c.keyOf(r)
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[k]
	if ok && now.After(e.expires) {
		delete(c.entries, k)
		ok = false
	}
	c.mu.Unlock()
	if ok {
		a := e.answer
		a.Groups, a.GroupSources = slices.Clone(a.Groups), maps.Clone(a.GroupSources)
		return a, nil
	}
	a, err := c.Authenticator.Authenticate(ctx, r)
	if err != nil || a.Verdict != Accept {
		return a, err
	}
	c.mu.Lock()
	if len(c.entries) >= maxCached {
		c.evictLocked(now)
	}
	c.entries[k] = cached{answer: Answer{Verdict: a.Verdict, Subject: a.Subject, DisplayName: a.DisplayName,
		Groups: slices.Clone(a.Groups), GroupSources: maps.Clone(a.GroupSources)}, expires: now.Add(c.TTL)}
	c.mu.Unlock()
	return a, nil
}

// evictLocked drops the expired entries, and if that is not enough, the
// half closest to expiry.
func (c *Cache) evictLocked(now time.Time) {
	for k, e := range c.entries {
		if now.After(e.expires) {
			delete(c.entries, k)
		}
	}
	if len(c.entries) < maxCached {
		return
	}
	exp := make([]time.Time, 0, len(c.entries))
	for _, e := range c.entries {
		exp = append(exp, e.expires)
	}
	slices.SortFunc(exp, func(a, b time.Time) int { return a.Compare(b) })
	cut := exp[len(exp)/2]
	for k, e := range c.entries {
		if !e.expires.After(cut) {
			delete(c.entries, k)
		}
	}
}

// Len is the number of entries, for tests.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
