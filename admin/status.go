package admin

import (
	"fmt"
	"time"
)

// Status is what the status page and /api/status show an operator: the
// channels with their members, who is talking, each hall's floor, what is
// recorded, and how each connection is doing. It holds names, which is
// why only the operator may read it (auth.go); no address.
type Status struct {
	Time time.Time `json:"time"`
	// The server: the Mumble version it announces, its build, and when
	// it started (Murmur's getVersion and getUptime).
	Version string    `json:"version"`
	Build   string    `json:"build,omitempty"`
	Started time.Time `json:"started"`
	// Summary is the answer at the top of the page. The listener fills it
	// in from the channels and the latest sample of the history; the
	// server leaves it empty.
	Summary  Summary         `json:"summary"`
	Channels []ChannelStatus `json:"channels"`
}

// ChannelStatus is one channel with people in it, or with a floor.
type ChannelStatus struct {
	ID        uint32       `json:"id"`
	Path      string       `json:"path"`
	Recording bool         `json:"recording,omitempty"`
	Mixing    bool         `json:"mixing,omitempty"`
	Floor     *FloorStatus `json:"floor,omitempty"`
	Users     []UserStatus `json:"users"`
}

// FloorStatus is a hall's floor.
type FloorStatus struct {
	Holder      string       `json:"holder,omitempty"`
	LeftSec     float64      `json:"left_s,omitempty"` // speaking time left; 0 without a limit
	Queue       []string     `json:"queue"`
	MuteAll     bool         `json:"mute_all,omitempty"`
	MinutesKept bool         `json:"minutes_kept,omitempty"` // floor_minutes: the hall keeps Minutes
	Minutes     []TurnStatus `json:"minutes,omitempty"`      // the ended turns, oldest first
}

// TurnStatus is one ended turn on the floor, for the minutes.
type TurnStatus struct {
	Name    string    `json:"name"`
	Start   time.Time `json:"start"`
	Seconds float64   `json:"seconds"`
}

// UserStatus is one member. A figure the server does not have (a client
// that has not reported a ping yet, a minute with too little voice to
// tell loss) is null, never 0.
type UserStatus struct {
	Session   uint32 `json:"session"`
	Name      string `json:"name"`
	Talking   bool   `json:"talking"`
	Silenced  bool   `json:"silenced,omitempty"` // muted, suppressed or self-muted
	Transport string `json:"transport"`          // "udp" or "tcp": how voice reaches them
	// PingMs is the TCP ping round trip, as the client measures it and
	// reports it in its pings (the server only echoes them), and
	// UDPPingMs the same over UDP.
	PingMs    *float64 `json:"ping_ms"`
	UDPPingMs *float64 `json:"udp_ping_ms,omitempty"`
	// LossPct is the worse of the two directions over about the last
	// minute: LossInPct of the UDP packets from the client, by the
	// server's crypt statistics, LossOutPct of those to the client, by
	// the statistics the client reports.
	LossPct    *float64 `json:"loss_pct"`
	LossInPct  *float64 `json:"loss_in_pct,omitempty"`
	LossOutPct *float64 `json:"loss_out_pct,omitempty"`
	TalkSec    float64  `json:"talk_s"`            // time talking since they connected, counted once a second
	FloorSec   float64  `json:"floor_s,omitempty"` // time they held a floor since they connected
}

// What makes a connection bad: more loss or a longer ping than this.
const (
	BadLossPct = 2.0
	BadPingMs  = 200.0
)

// Bad reports whether the connection is bad by a figure the server has.
func (u UserStatus) Bad() bool {
	return u.LossPct != nil && *u.LossPct > BadLossPct || u.PingMs != nil && *u.PingMs > BadPingMs
}

// Summary is what the desk asks first.
type Summary struct {
	Participants int `json:"participants"`
	// By how their voice travels: Mumble clients over UDP or through the
	// TCP tunnel; Web stays 0 until browsers can join.
	UDP       int            `json:"udp"`
	TCP       int            `json:"tcp"`
	Web       int            `json:"web"`
	Talking   int            `json:"talking"`
	Bad       int            `json:"bad"` // participants with a bad connection (UserStatus.Bad)
	Floors    []FloorSummary `json:"floors"`
	Recording []ChannelRef   `json:"recording"`
	// The server process over the last sample interval: CPU time as a
	// share of one core, and resident memory; null before the first.
	CPU      *float64 `json:"cpu"`
	MemBytes *uint64  `json:"mem_bytes"`
}

// FloorSummary is one hall's floor in the summary.
type FloorSummary struct {
	ChannelRef
	Holder  string  `json:"holder,omitempty"`
	LeftSec float64 `json:"left_s,omitempty"`
	Queue   int     `json:"queue"`
}

// ChannelRef names a channel.
type ChannelRef struct {
	ID   uint32 `json:"id"`
	Path string `json:"path"`
}

// summarize fills in st.Summary from its channels and the latest sample.
func summarize(st *Status, latest *Sample) {
	sum := Summary{Floors: []FloorSummary{}, Recording: []ChannelRef{}}
	for _, cs := range st.Channels {
		ref := ChannelRef{cs.ID, cs.Path}
		if f := cs.Floor; f != nil {
			sum.Floors = append(sum.Floors, FloorSummary{ChannelRef: ref, Holder: f.Holder, LeftSec: f.LeftSec, Queue: len(f.Queue)})
		}
		if cs.Recording {
			sum.Recording = append(sum.Recording, ref)
		}
		for _, u := range cs.Users {
			sum.Participants++
			switch u.Transport {
			case "udp":
				sum.UDP++
			case "tcp":
				sum.TCP++
			case "web":
				sum.Web++
			}
			if u.Talking {
				sum.Talking++
			}
			if u.Bad() {
				sum.Bad++
			}
		}
	}
	if latest != nil {
		sum.CPU, sum.MemBytes = &latest.CPU, &latest.MemBytes
	}
	st.Summary = sum
}

// String is a one-line summary, for logs and tests.
func (cs ChannelStatus) String() string {
	var talking []string
	for _, u := range cs.Users {
		if u.Talking {
			talking = append(talking, u.Name)
		}
	}
	return fmt.Sprintf("%s: %d users, talking %v", cs.Path, len(cs.Users), talking)
}
