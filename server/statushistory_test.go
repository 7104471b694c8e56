package server_test

import (
	"testing"
	"time"

	"github.com/plenum-voice/plenum/admin"
	"github.com/plenum-voice/plenum/server"
)

// TestStatusSamplerOnADrivenClock: the server's status sampler, driven
// tick by tick on a clock of the test's, counts a speaker's talk time
// while they talk, measures their loss from what the server decrypted,
// and after 10 s of ticks adds a sample of the whole server (counts and
// rates only) to the history the status page charts.
func TestStatusSamplerOnADrivenClock(t *testing.T) {
	server.DriveStatusSampler(t)
	s := startServer(t, nil)
	alice, bob, carol := s.trio(t)
	for _, p := range []*peer{alice, bob, carol} {
		p.waitUDP()
	}
	t0 := time.Now()
	s.SampleStatus(t0) // the base: nobody has spoken
	if _, ok := s.History().Latest(); ok {
		t.Fatal("a sample after the first tick")
	}

	const frames = 60
	for f := range frames {
		alice.SendAudio(0, uint64(f), opus, false, nil)
		if f == frames-1 { // alice is speaking at the tick
			bob.expectFrame(uint64(f))
			s.SampleStatus(t0.Add(time.Second))
			carol.expectFrame(uint64(f))
			break
		}
		bob.expectFrame(uint64(f))
		carol.expectFrame(uint64(f))
	}
	time.Sleep(500 * time.Millisecond) // no longer
	for i := 2; i < 10; i++ {
		s.SampleStatus(t0.Add(time.Duration(i) * time.Second))
	}
	if _, ok := s.History().Latest(); ok {
		t.Fatal("a sample before 10 s of ticks")
	}
	s.SampleStatus(t0.Add(10 * time.Second))
	got, ok := s.History().Latest()
	if !ok {
		t.Fatal("no sample after 10 s of ticks")
	}
	// 60 packets in and, for bob and carol, 120 copies out, over 10 s.
	if got.Participants != 3 || got.Talking != 1 || got.Bad != 0 || got.VoiceIn != frames/10.0 || got.VoiceOut != 2*frames/10.0 ||
		got.VoiceDropped != 0 || got.CPU < 0 || got.MemBytes == 0 || !got.Time.Equal(t0.Add(10*time.Second)) {
		t.Errorf("the sample: %+v", got)
	}

	var a, b admin.UserStatus
	for _, ch := range s.Status().Channels {
		for _, u := range ch.Users {
			switch u.Name {
			case "alice":
				a = u
			case "bob":
				b = u
			}
		}
	}
	if a.TalkSec != 1 || b.TalkSec != 0 {
		t.Errorf("talk time: alice %v s, bob %v s; want 1 and 0", a.TalkSec, b.TalkSec)
	}
	if a.LossInPct == nil || *a.LossInPct != 0 || a.LossPct == nil {
		t.Errorf("alice sent %d packets in order: loss from her %v, overall %v; want 0", frames, a.LossInPct, a.LossPct)
	}
	if b.LossInPct != nil {
		t.Errorf("bob sent only pings, too few to tell: loss from him %v, want none", *b.LossInPct)
	}
}
