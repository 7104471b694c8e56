package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/client"
)

// BenchmarkJoin200 measures how long 200 clients that connect at once take
// until every one of them is synced and sees all 200 users. Client and server
// share this machine's cores, so this is an upper bound for the server.
//
//	go test -run x -bench Join200 -benchtime 5x ./server/
func BenchmarkJoin200(b *testing.B) {
	const n = 200
	s := startServer(b, nil)
	for i := 0; i < b.N; i++ {
		clients := make([]*client.Client, n)
		errs := make(chan error, n)
		var wg sync.WaitGroup
		start := time.Now()
		for j := 0; j < n; j++ {
			wg.Add(1)
			go func(j int) {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				c, err := client.Dial(ctx, client.Config{Address: s.addr, Username: fmt.Sprintf("user%03d", j), DisableUDP: true})
				if err != nil {
					errs <- err
					return
				}
				clients[j] = c
			}(j)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		// Synced means every client also knows every other user.
		for _, c := range clients {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := c.Wait(ctx, func(c *client.Client) bool { return len(c.Users()) >= n })
			cancel()
			if err != nil {
				b.Fatalf("a client sees %d of %d users: %v", len(c.Users()), n, err)
			}
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms/200-joins")
		b.StopTimer()
		for _, c := range clients {
			c.Close()
		}
		for s.Stats().Users != 0 {
			time.Sleep(10 * time.Millisecond)
		}
		b.StartTimer()
	}
}
