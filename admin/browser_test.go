package admin_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/plenum-voice/plenum/admin"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/internal/statuspagetest"
)

// plenary is a fake server with a convention in it: a hall of most of
// the participants (floor control, recorded), a few small rooms, and two
// hours of history.
type plenary struct {
	mu       sync.Mutex
	channels []admin.ChannelStatus
	history  *admin.History
}

func (p *plenary) Status() admin.Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return admin.Status{Time: time.Now(), Channels: p.channels}
}

func (p *plenary) History() *admin.History { return p.history }

func (p *plenary) FloorAction(path, action, arg string) (string, error) {
	return "", fmt.Errorf("not in this test")
}

// newPlenary makes a plenary of n participants, named as a load
// generator without zero padding names them (delegate1, delegate2, ...,
// so that only a natural sort lists them in order). Everything comes
// from a seeded generator: the same n gives the same plenary.
func newPlenary(n int) *plenary {
	rng := rand.New(rand.NewPCG(uint64(n), 20))
	f := func(v float64) *float64 { return &v }
	user := func(session int, name string) admin.UserStatus {
		u := admin.UserStatus{Session: uint32(session), Name: name, Transport: "udp", TalkSec: float64(rng.IntN(600))}
		if rng.IntN(20) == 0 {
			u.Transport = "tcp"
		}
		if rng.IntN(10) > 0 { // some have not reported a ping yet
			u.PingMs = f(15 + rng.Float64()*60)
			if rng.IntN(50) == 0 {
				u.PingMs = f(220 + rng.Float64()*300)
			}
		}
		if rng.IntN(5) > 0 { // some have had too little voice to tell
			u.LossPct = f(rng.Float64())
			if rng.IntN(40) == 0 {
				u.LossPct = f(2.5 + rng.Float64()*10)
			}
			u.LossInPct, u.LossOutPct = f(*u.LossPct/3), u.LossPct
		}
		u.Silenced = rng.IntN(3) == 0
		return u
	}
	hall := admin.ChannelStatus{ID: 2, Path: "Plenary", Recording: true, Floor: &admin.FloorStatus{
		Holder: "delegate17", LeftSec: 83, Queue: []string{"delegate230", "delegate5", "delegate912"}, MinutesKept: true,
		Minutes: []admin.TurnStatus{{Name: "chair", Start: time.Now().Add(-20 * time.Minute), Seconds: 75}, {Name: "delegate3", Start: time.Now().Add(-10 * time.Minute), Seconds: 180}},
	}}
	rooms := []admin.ChannelStatus{
		{ID: 3, Path: "Press"}, {ID: 4, Path: "Tech desk"}, {ID: 5, Path: "Delegations/Bavaria"}, {ID: 6, Path: "Delegations/Saxony"},
	}
	small := n / 20
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("delegate%d", i)
		if i > n-small {
			r := &rooms[i%len(rooms)]
			r.Users = append(r.Users, user(i, fmt.Sprintf("guest%d", i)))
			continue
		}
		u := user(i, name)
		u.Talking = name == "delegate17" || name == "delegate3"
		if u.Talking {
			u.Silenced = false
		}
		hall.Users = append(hall.Users, u)
	}
	p := &plenary{channels: append([]admin.ChannelStatus{hall}, rooms...), history: admin.NewHistory()}
	start := time.Now().Add(-2 * time.Hour)
	for i := range int(2 * time.Hour / admin.SampleEvery) {
		ramp := min(1, float64(i)/90)
		talking := 1 + rng.IntN(3)
		p.history.Add(admin.Sample{
			Time:         start.Add(time.Duration(i+1) * admin.SampleEvery),
			Participants: int(float64(n) * ramp),
			Talking:      talking,
			Bad:          int(float64(n)*ramp/40) + rng.IntN(5),
			VoiceIn:      50 * float64(talking),
			VoiceOut:     50 * float64(talking) * float64(n) * ramp,
			VoiceDropped: float64(rng.IntN(3)),
			CPU:          0.05 + 0.2*ramp + rng.Float64()*0.05,
			MemBytes:     uint64(60<<20 + 30<<20*ramp),
		})
	}
	return p
}

// serve runs the admin listener for srv until the test ends and returns
// its address.
func serve(t *testing.T, srv admin.Server, token string) string {
	t.Helper()
	sc := conf.Default().Server
	sc.Name = "Convention"
	sc.AdminListen, sc.AdminToken, sc.DataDir = "127.0.0.1:0", token, t.TempDir()
	var log bytes.Buffer
	l, err := admin.New(admin.Config{Server: srv, Settings: func() *conf.Server { return &sc },
		Metrics: prometheus.NewGauge(prometheus.GaugeOpts{Name: "plenum_users", Help: "users"}),
		Log:     slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + l.Addr().String()
}

// TestStatusPageOf1000InChromium: the page of a plenary of 1000, opened
// in headless Chromium, shows the server's counts in its header, finds
// one person by name, lists the hall's members in natural order when it
// is opened, and stays within its size and time: at most 150 KB and 2 s
// to load as it opens (the hall collapsed), at most 600 KB with the
// hall's 950 members shown and 3 s to show them. The limits leave room
// for a CI machine's two shared cores under the race detector; what a
// desk's machine measures is in docs/STATUS-PAGE.md.
// PLENUM_SCREENSHOTS=DIR keeps screenshots there.
func TestStatusPageOf1000InChromium(t *testing.T) {
	ctx := statuspagetest.Browser(t)
	base := serve(t, newPlenary(1000), "t0ken")
	n := statuspagetest.Check(t, ctx, statuspagetest.Options{
		Base: base, Token: "t0ken", Lang: "en", FindOne: "delegate917",
		Limits: statuspagetest.Limits{PageBytes: 150 << 10, Render: 2 * time.Second, OpenBytes: 600 << 10, Open: 3 * time.Second},
		Shots:  os.Getenv("PLENUM_SCREENSHOTS"), ShotPrefix: "status-page-fake-",
	})
	t.Log(n)
}
