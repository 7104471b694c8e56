package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/internal/statuspagetest"
)

// TestStatusPageOf200ClientsInChromium: a server with 200 real clients
// (load1 to load200, so that only a natural sort lists them in order)
// shows its counts in the page's header in headless Chromium, the filter
// finds load117 alone, the lobby lists its members in natural order once
// opened, and the page stays within its size and time (the same limits
// as the admin package's page of 1000 on a fake server; 1000 real
// clients are scripts/status-page-1000.sh's).
func TestStatusPageOf200ClientsInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("200 clients")
	}
	ctx := statuspagetest.Browser(t)
	s := startServer(t, func(c *conf.Config) { c.Server.AdminToken = "t0ken" })
	const n = 200
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	errs := make(chan error, n)
	for i := 1; i <= n; i++ {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := client.Dial(ctx, client.Config{Address: s.addr, Username: fmt.Sprintf("load%d", i)})
			if err != nil {
				errs <- err
				return
			}
			t.Cleanup(func() { c.Close() })
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if st := s.Status(); len(st.Channels) > 0 && len(st.Channels[0].Users) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server never had %d users", n)
		}
	}
	start := time.Now()
	nums := statuspagetest.Check(t, ctx, statuspagetest.Options{
		Base: "http://" + s.AdminAddr().String(), Token: "t0ken", Lang: "en", FindOne: "load117",
		Limits: statuspagetest.Limits{PageBytes: 150 << 10, Render: 2 * time.Second, OpenBytes: 600 << 10, Open: 3 * time.Second},
	})
	if nums.Participants != n {
		t.Errorf("the page was checked with %d participants, want %d", nums.Participants, n)
	}
	t.Logf("%v (checked in %v)", nums, time.Since(start).Round(time.Millisecond))
}
