package admin

// What the admin API (/api/v1, api.go) exchanges, as JSON. The server
// implements the API interface; the listener decodes requests into these
// types, checks scopes, and encodes the answers. The OpenAPI document
// (openapi.go) describes the same types.

import (
	"errors"
	"time"
)

// API is what the admin API asks of the server. actor is the name of the
// token the request came with: the server logs every change under it.
// Changes go through the same code as the same change from a Mumble
// client (checked, applied live, written to the configuration file), and
// a method returns once the change is saved.
type API interface {
	Users() []APIUser
	SetUser(actor string, session uint32, c UserChange) error
	Kick(actor string, session uint32, reason string, ban bool) error

	Channels() []APIChannel
	CreateChannel(actor string, c ChannelCreate) (APIChannel, error)
	EditChannel(actor string, id uint32, e ChannelEdit) error
	RemoveChannel(actor string, id uint32) error
	ChannelACL(id uint32) (APIACL, error)
	SetChannelACL(actor string, id uint32, a APIACL) error

	Registrations() ([]Registration, error)
	RenameRegistration(actor string, id uint32, name string) error
	DeleteRegistration(actor string, id uint32) error

	Bans() ([]APIBan, error)
	SetBans(actor string, bans []APIBan) error
	AddBan(actor string, b APIBan) error

	SendMessage(actor string, m Message) error

	ConfigFile() ([]byte, error)
	ValidateConfig(toml []byte) []ConfigProblem
	ApplyConfig(actor string, toml []byte) ([]ConfigProblem, error)

	// Subscribe starts a stream of events; stop ends it and closes the
	// channel, which the server also closes when the subscriber falls
	// too far behind.
	Subscribe() (events <-chan Event, stop func())
}

// Errors the server wraps, which the listener turns into HTTP codes.
var (
	ErrNotFound = errors.New("not found")          // 404: no such user, channel, registration
	ErrInvalid  = errors.New("invalid request")    // 400: the request itself is wrong
	ErrRefused  = errors.New("refused")            // 409: the server's rules refuse it (a name taken, a limit)
	ErrNotSaved = errors.New("could not be saved") // 500: done in memory or not at all, but not on disk
)

// APIUser is one connected user.
type APIUser struct {
	Session         uint32 `json:"session"`
	Name            string `json:"name"`
	UserID          *int64 `json:"user_id,omitempty"` // registered users only
	Channel         uint32 `json:"channel"`
	ChannelPath     string `json:"channel_path"`
	Mute            bool   `json:"mute"`
	Deaf            bool   `json:"deaf"`
	Suppress        bool   `json:"suppress"`
	SelfMute        bool   `json:"self_mute"`
	SelfDeaf        bool   `json:"self_deaf"`
	PrioritySpeaker bool   `json:"priority_speaker"`
	Recording       bool   `json:"recording"`
	OnlineSec       int64  `json:"online_s"`
}

// UserChange is a change of a user's state; absent fields stay.
type UserChange struct {
	Mute            *bool   `json:"mute,omitempty"`
	Deaf            *bool   `json:"deaf,omitempty"`
	Suppress        *bool   `json:"suppress,omitempty"`
	PrioritySpeaker *bool   `json:"priority_speaker,omitempty"`
	Channel         *uint32 `json:"channel,omitempty"` // move into this channel
}

// KickRequest is the body of a kick or ban of a connected user.
type KickRequest struct {
	Reason string `json:"reason,omitempty"`
}

// APIChannel is one channel.
type APIChannel struct {
	ID          uint32   `json:"id"`
	Name        string   `json:"name"`
	Path        string   `json:"path"`             // "" for the root
	Parent      *uint32  `json:"parent,omitempty"` // absent for the root
	Description string   `json:"description,omitempty"`
	Position    int32    `json:"position"`
	MaxUsers    uint32   `json:"max_users"`
	Temporary   bool     `json:"temporary"`
	Links       []uint32 `json:"links"`
	Users       int      `json:"users"`
}

// ChannelCreate makes a permanent channel.
type ChannelCreate struct {
	Parent      uint32 `json:"parent"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Position    int32  `json:"position,omitempty"`
	MaxUsers    uint32 `json:"max_users,omitempty"`
}

// ChannelEdit changes a channel; absent fields stay.
type ChannelEdit struct {
	Name        *string  `json:"name,omitempty"`
	Parent      *uint32  `json:"parent,omitempty"` // move below this channel
	Description *string  `json:"description,omitempty"`
	Position    *int32   `json:"position,omitempty"`
	MaxUsers    *uint32  `json:"max_users,omitempty"`
	LinksAdd    []uint32 `json:"links_add,omitempty"`
	LinksRemove []uint32 `json:"links_remove,omitempty"`
}

// APIACL is a channel's own groups and ACL entries, as the configuration
// file holds them (users by registered name). Reading it also gives the
// entries inherited from above, which a write ignores.
type APIACL struct {
	InheritACL *bool                `json:"inherit_acl,omitempty"` // absent: true
	Groups     map[string]*APIGroup `json:"groups,omitempty"`
	Entries    []APIACLEntry        `json:"entries,omitempty"`
	Inherited  []APIACLEntry        `json:"inherited,omitempty"` // read only
}

// APIGroup is a group defined on a channel.
type APIGroup struct {
	Inherit     *bool    `json:"inherit,omitempty"`     // absent: true
	Inheritable *bool    `json:"inheritable,omitempty"` // absent: true
	Add         []string `json:"add,omitempty"`
	Remove      []string `json:"remove,omitempty"`
}

// APIACLEntry is one ACL entry: for a user (registered name) or a group
// spec, with permission names as in the configuration file.
type APIACLEntry struct {
	User      string   `json:"user,omitempty"`
	Group     string   `json:"group,omitempty"`
	ApplyHere *bool    `json:"apply_here,omitempty"` // absent: true
	ApplySubs *bool    `json:"apply_subs,omitempty"` // absent: true
	Allow     []string `json:"allow,omitempty"`
	Deny      []string `json:"deny,omitempty"`
	Channel   *uint32  `json:"channel,omitempty"` // inherited entries: where they are defined
}

// Registration is a registered user.
type Registration struct {
	ID          uint32 `json:"id"`
	Name        string `json:"name"`
	LastChannel uint32 `json:"last_channel"`
	LastSeen    string `json:"last_seen,omitempty"` // UTC, as the Mumble client shows it
}

// RenameRequest renames a registered user.
type RenameRequest struct {
	Name string `json:"name"`
}

// APIBan is a ban. Unless show_addresses is on, the server shows a ban's
// address as a stand-in from 2001:db8::/32 (as to Mumble's ban editor);
// sending the stand-in back keeps the ban's real address.
type APIBan struct {
	Address  string    `json:"address"` // IPv4 or IPv6
	Bits     uint32    `json:"bits"`    // mask length; 0 means the whole address
	Name     string    `json:"name,omitempty"`
	CertHash string    `json:"cert_hash,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Start    time.Time `json:"start,omitzero"`
	Duration uint32    `json:"duration_s,omitempty"` // 0: for ever
}

// BanList is a list of bans.
type BanList struct {
	Bans []APIBan `json:"bans"`
}

// Message is a text message from the server.
type Message struct {
	Message  string   `json:"message"`
	Sessions []uint32 `json:"sessions,omitempty"`
	Channels []uint32 `json:"channels,omitempty"`
	Trees    []uint32 `json:"trees,omitempty"` // a channel and its subchannels
}

// ConfigProblem is one problem of a configuration file.
type ConfigProblem struct {
	Line int    `json:"line,omitempty"`
	Key  string `json:"key,omitempty"`
	Msg  string `json:"message"`
}

// ConfigCheck is the answer to a validation or an apply.
type ConfigCheck struct {
	Valid    bool            `json:"valid"`
	Problems []ConfigProblem `json:"problems"`
}

// Event is one event of the stream (GET /api/v1/events), sent as a
// server-sent event named after its Type.
type Event struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// Type is user.connected, user.left, user.removed (kicked or
	// banned), user.state, channel.state (created or changed),
	// channel.acl (groups or ACL edited), channel.removed, text (only
	// with admin_events_text) or floor.
	Type        string  `json:"type"`
	Session     uint32  `json:"session,omitempty"`
	Name        string  `json:"name,omitempty"`
	Channel     *uint32 `json:"channel,omitempty"`
	ChannelPath string  `json:"channel_path,omitempty"`
	// user.state: what changed (mute, deaf, suppress, self_mute,
	// self_deaf, priority_speaker, recording, registered).
	State map[string]bool `json:"state,omitempty"`
	// user.removed: why, and whether it was a ban.
	Reason string `json:"reason,omitempty"`
	Ban    bool   `json:"ban,omitempty"`
	// channel.state: the parent, and the links added or removed.
	Parent      *uint32  `json:"parent,omitempty"`
	LinksAdd    []uint32 `json:"links_add,omitempty"`
	LinksRemove []uint32 `json:"links_remove,omitempty"`
	// text: the message and whom it went to.
	Text     string   `json:"text,omitempty"`
	Sessions []uint32 `json:"sessions,omitempty"`
	Channels []uint32 `json:"channels,omitempty"`
	Trees    []uint32 `json:"trees,omitempty"`
	// floor: the hall's floor after the change, as the hall reads it.
	Floor string `json:"floor,omitempty"`
}

// Done is the answer to a change that has nothing else to say.
type Done struct {
	OK bool `json:"ok"`
}

// APIError is the body of every error answer.
type APIError struct {
	Error string `json:"error"`
}
