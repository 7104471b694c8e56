package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
)

// soakFlags registers the soak's own flags on fs; the returned function
// completes the options after parsing, taking the shared flags (-addr,
// -n, -k, ...) from o where they were given and the soak's defaults where
// not.
func soakFlags(fs *flag.FlagSet) func(o Options) SoakOptions {
	so := DefaultSoak()
	fs.DurationVar(&so.Duration, "duration", so.Duration, "soak: activity `time`, warm-up included")
	fs.DurationVar(&so.Warmup, "warmup", 0, "soak: `time` left out of the trends (default min(1m, duration/4))")
	fs.StringVar(&so.MetricsURL, "metrics", "", "soak: the server's Prometheus `URL` (goroutines, counters)")
	fs.StringVar(&so.AdminUser, "admin-user", so.AdminUser, "soak: `name` of the client that edits ACLs")
	fs.StringVar(&so.AdminPassword, "admin-password", "", "soak: its `password` (none: no ACL edits)")
	fs.StringVar(&so.Hall, "hall", so.Hall, "soak: `channel` everyone joins (the server's default channel)")
	rooms := fs.String("rooms", strings.Join(so.Rooms, ","), "soak: comma-separated `channels` to move between")
	fs.StringVar(&so.ACLChannel, "acl-channel", so.ACLChannel, "soak: `channel` whose ACL is edited (not the hall: speakers must keep Speak)")
	fs.StringVar(&so.ACLGroup, "acl-group", so.ACLGroup, "soak: `group` denied Speak there, on and off")
	fs.Float64Var(&so.ChurnPerSec, "churn", so.ChurnPerSec, "soak: disconnects and rejoins per second (`rate`)")
	fs.Float64Var(&so.FreshShare, "fresh", so.FreshShare, "soak: `share` of rejoins with a fresh certificate and name")
	fs.Float64Var(&so.GhostShare, "ghost", so.GhostShare, "soak: `share` of rejoins before the old connection closed")
	fs.Float64Var(&so.MovesPerSec, "moves", so.MovesPerSec, "soak: trips to a room and back per second (`rate`)")
	fs.Float64Var(&so.TextsPerSec, "texts", so.TextsPerSec, "soak: text messages to the hall per second (`rate`)")
	fs.DurationVar(&so.RotateEvery, "rotate", so.RotateEvery, "soak: speaking `time` of each speaker")
	fs.DurationVar(&so.ACLEvery, "acl-every", so.ACLEvery, "soak: `interval` between ACL edits")
	fs.DurationVar(&so.SampleEvery, "sample-every", so.SampleEvery, "soak: sampling `interval`")
	fs.DurationVar(&so.Guard, "guard", so.Guard, "soak: accounting `margin` around every move and rejoin")
	fs.Float64Var(&so.Limits.MaxLossPct, "max-loss", so.Limits.MaxLossPct, "soak: voice loss limit in `percent`")
	fs.Float64Var(&so.Limits.MaxRSSSlopeMB, "max-rss-slope", so.Limits.MaxRSSSlopeMB, "soak: server RSS trend limit, `MB` per 10 min")
	fs.Float64Var(&so.Limits.MaxGoroutineSlope, "max-goroutine-slope", so.Limits.MaxGoroutineSlope, "soak: server goroutine trend limit, `goroutines` per 10 min")
	return func(o Options) SoakOptions {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		so.Addr, so.ServerPID, so.Logf = o.Addr, o.ServerPID, o.Logf
		if set["n"] {
			so.N = o.N
		}
		if set["k"] {
			so.K = o.K
		}
		if set["name-prefix"] {
			so.NamePrefix = o.NamePrefix
		}
		if set["payload"] {
			so.Payload = o.Payload
		}
		if set["dial-concurrency"] {
			so.DialConcurrency = o.DialConcurrency
		}
		so.Rooms = nil
		for r := range strings.SplitSeq(*rooms, ",") {
			if r = strings.TrimSpace(r); r != "" {
				so.Rooms = append(so.Rooms, r)
			}
		}
		return so
	}
}

// runSoak runs a soak, prints its report and fails if a check failed.
func runSoak(ctx context.Context, so SoakOptions, jsonFile string) error {
	r, err := RunSoak(ctx, so)
	if err != nil {
		return err
	}
	if err := r.WriteText(os.Stdout); err != nil {
		return err
	}
	if jsonFile != "" {
		if err := r.WriteJSON(jsonFile); err != nil {
			return err
		}
	}
	if r.Failed > 0 {
		return fmt.Errorf("soak failed %d checks", r.Failed)
	}
	return nil
}
