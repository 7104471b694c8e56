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
	Time     time.Time       `json:"time"`
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

// UserStatus is one member.
type UserStatus struct {
	Session   uint32  `json:"session"`
	Name      string  `json:"name"`
	Talking   bool    `json:"talking"`
	Silenced  bool    `json:"silenced,omitempty"` // muted, suppressed or self-muted
	Transport string  `json:"transport"`          // "udp" or "tcp": how voice reaches them
	PingMs    float64 `json:"ping_ms"`            // the client's own average, UDP or TCP
	LossPct   float64 `json:"loss_pct"`           // voice from the server the client lost
	FloorSec  float64 `json:"floor_s,omitempty"`  // time they held a floor since they connected
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
