package acl

import "sync"

// Cache memoises Permissions per (session, channel), like Murmur's acCache.
// It is safe for concurrent use; the voice path reads it.
//
// Invalidation is the caller's job, at the moments Murmur clears its cache:
// Forget(session) after a user's move, token change, registration or
// unregistration and on disconnect; Clear() after any ACL, group or channel
// change (including temporary group members).
//
// A value computed while Forget or Clear runs is never stored, but a caller
// that passes a tree snapshot older than its last Clear would store a stale
// value. Trees that implement Versioned avoid this: the cache then keeps
// values for the newest version it has seen only, never stores values for an
// older one and drops everything when a newer version arrives.
type Cache struct {
	mu      sync.RWMutex
	gen     uint64 // bumped by Forget, Clear and version changes
	version uint64 // the Versioned tree version the values belong to
	users   map[uint32]map[uint32]Permission
}

// Versioned may be implemented by an ACLTree whose ACL data (entries,
// groups, temporary members, channel structure) is versioned: a tree with a
// higher version is newer.
type Versioned interface {
	ACLVersion() uint64
}

// NewCache returns an empty cache.
func NewCache() *Cache { return &Cache{users: map[uint32]map[uint32]Permission{}} }

// Permissions returns Permissions(t, s, channel), from the cache when it can.
// Values are cached per s.Session; SuperUser, who needs no evaluation, is
// not cached (Murmur does not cache it either).
func (c *Cache) Permissions(t ACLTree, s *Subject, channel uint32) Permission {
	if s.UserID == 0 {
		return SuperUserPermissions
	}
	ver, versioned := uint64(0), false
	if v, ok := t.(Versioned); ok {
		ver, versioned = v.ACLVersion(), true
	}
	c.mu.RLock()
	if !versioned || ver == c.version {
		if p, ok := c.users[s.Session][channel]; ok {
			c.mu.RUnlock()
			return p
		}
	}
	gen := c.gen
	c.mu.RUnlock()

	p := Permissions(t, s, channel)

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return p // forgotten or cleared meanwhile: p may be stale
	}
	if versioned {
		if ver < c.version {
			return p // an older snapshot: answer, but do not keep
		}
		if ver > c.version {
			clear(c.users)
			c.version = ver
			c.gen++
		}
	}
	if c.users == nil {
		c.users = map[uint32]map[uint32]Permission{} // a zero Cache works too
	}
	m := c.users[s.Session]
	if m == nil {
		m = map[uint32]Permission{}
		c.users[s.Session] = m
	}
	m[channel] = p
	return p
}

// Forget drops everything cached for session.
func (c *Cache) Forget(session uint32) {
	c.mu.Lock()
	delete(c.users, session)
	c.gen++
	c.mu.Unlock()
}

// Clear drops everything.
func (c *Cache) Clear() {
	c.mu.Lock()
	clear(c.users)
	c.gen++
	c.mu.Unlock()
}
