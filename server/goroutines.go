package server

import (
	"maps"
	"sync"
)

// goroutines starts goroutines and counts them by name, so that their
// owner waits for all of them at the end and can say which are still
// running while it waits. Every goroutine the server starts goes through
// one (Server.goroutines, and each connection's for its writer).
type goroutines struct {
	wg      sync.WaitGroup
	mu      sync.Mutex
	running map[string]int
}

// Go runs f in a new goroutine counted under name. It is counted before Go
// returns, so a Wait that begins after Go waits for it.
func (g *goroutines) Go(name string, f func()) {
	g.mu.Lock()
	if g.running == nil {
		g.running = make(map[string]int)
	}
	g.running[name]++
	g.mu.Unlock()
	g.wg.Add(1)
	go func() {
		defer g.done(name)
		f()
	}()
}

func (g *goroutines) done(name string) {
	g.mu.Lock()
	if g.running[name]--; g.running[name] == 0 {
		delete(g.running, name)
	}
	g.mu.Unlock()
	g.wg.Done()
}

// Wait waits until every goroutine started has returned.
func (g *goroutines) Wait() { g.wg.Wait() }

// Running returns how many goroutines of each name are running.
func (g *goroutines) Running() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.running)
}
