package server

// Text messages and the blobs (long comments and descriptions) clients fetch.

import (
	"context"
	"regexp"
	"strings"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
)

var imgTag = regexp.MustCompile(`(?is)<img\b[^>]*>`)

// textAllowed applies Murmur's length limits (counted in UTF-16 units, as Qt
// does). With HTML allowed, images may use the larger image limit as long as
// the text around them fits the text limit.
func (s *Server) textAllowed(text string) bool {
	textLimit, imageLimit := s.cfg().TextMessageLength, s.cfg().ImageMessageLength
	n := utf16Len(text)
	if !s.cfg().AllowHTML {
		return textLimit == 0 || n <= textLimit
	}
	if textLimit == 0 && imageLimit == 0 {
		return true
	}
	if imageLimit > 0 && n > imageLimit {
		return false
	}
	if textLimit == 0 || n <= textLimit {
		return true
	}
	if !strings.Contains(text, "<") {
		return false
	}
	return utf16Len(imgTag.ReplaceAllString(text, "<img>")) <= textLimit
}

func (s *Server) handleTextMessage(sender *user, m *mumblepb.TextMessage) {
	text := m.GetMessage()
	if text == "" {
		return
	}
	if !s.textAllowed(text) {
		s.denyType(sender, mumblepb.PermissionDenied_TextTooLong)
		return
	}
	s.mu.Lock()
	defer s.unlock()
	if hall, line, ok := s.floorCommand(m); ok {
		// A floor command is for the server, never chat in the hall.
		s.handleFloorCommandLocked(sender, hall, line)
		return
	}
	recipients := make(map[*user]struct{})
	channels, trees := map[*channel]bool{}, map[*channel]bool{} // for users of other nodes
	var remote []uint32
	for _, id := range m.ChannelId {
		ch, ok := s.channels[id]
		if !ok {
			return // an unknown channel drops the whole message, as in Murmur
		}
		if !s.requireLocked(sender, ch, acl.TextMessage) {
			return
		}
		addChannelRecipients(ch, recipients)
		channels[ch] = true
	}
	for _, id := range m.TreeId {
		ch, ok := s.channels[id]
		if !ok {
			return
		}
		if !s.requireLocked(sender, ch, acl.TextMessage) {
			return
		}
		s.addTreeRecipients(sender, ch, recipients)
		s.markTree(sender, ch, trees)
	}
	for _, session := range m.Session {
		u, ok := s.users[session]
		if !ok {
			if r, isRemote := s.remote[session]; isRemote {
				if !s.requireLocked(sender, r.channel, acl.TextMessage) {
					return
				}
				remote = append(remote, session)
			}
			continue
		}
		if !s.requireLocked(sender, u.channel, acl.TextMessage) {
			return
		}
		recipients[u] = struct{}{}
	}
	delete(recipients, sender)
	s.textToRemoteLocked(sender, m, channels, trees, remote)
	if len(recipients) == 0 {
		return
	}
	out := &mumblepb.TextMessage{
		Actor:     actorOf(sender),
		Session:   m.Session,
		ChannelId: m.ChannelId,
		TreeId:    m.TreeId,
		Message:   m.Message,
	}
	frame, err := control.Marshal(out)
	if err != nil {
		return
	}
	s.noteTextLocked(sender, out)
	for u := range recipients {
		u.conn.sendFrame(frame)
	}
}

// addTreeRecipients adds the users of ch and of every subchannel where the
// sender may text; a subchannel without permission is skipped with its
// subtree.
func (s *Server) addTreeRecipients(sender *user, ch *channel, into map[*user]struct{}) {
	addChannelRecipients(ch, into)
	for _, child := range ch.children {
		if s.may(sender, child, acl.TextMessage) {
			s.addTreeRecipients(sender, child, into)
		}
	}
}

func (s *Server) handleRequestBlob(u *user, m *mumblepb.RequestBlob) {
	var fetch []remoteBlob
	s.mu.Lock()
	for _, session := range m.SessionTexture {
		if other, ok := s.users[session]; ok && len(other.texture) > 0 {
			u.conn.send(&mumblepb.UserState{Session: ptr(session), Texture: other.texture})
		} else if r, ok := s.remote[session]; ok && r.TextureHash != nil {
			fetch = append(fetch, remoteBlob{session, BlobTexture})
		}
	}
	for _, session := range m.SessionComment {
		if other, ok := s.users[session]; ok && other.comment != "" {
			u.conn.send(&mumblepb.UserState{Session: ptr(session), Comment: ptr(other.comment)})
		} else if r, ok := s.remote[session]; ok && r.Comment != "" {
			u.conn.send(&mumblepb.UserState{Session: ptr(session), Comment: ptr(r.Comment)})
		} else if ok && r.CommentHash != nil {
			fetch = append(fetch, remoteBlob{session, BlobComment})
		}
	}
	for _, id := range m.ChannelDescription {
		if ch, ok := s.channels[id]; ok && ch.shown != "" {
			u.conn.send(&mumblepb.ChannelState{ChannelId: ptr(id), Description: ptr(ch.shown)})
		}
	}
	fetcher, _ := s.cluster.(BlobFetcher)
	s.unlock()
	if len(fetch) > 0 && fetcher != nil {
		s.fetchRemoteBlobs(u, fetcher, fetch)
	}
}

// remoteBlob is a remote user's avatar or long comment a client asked for.
type remoteBlob struct {
	session uint32
	kind    BlobKind
}

// fetchRemoteBlobs gets blobs of remote users from their nodes and sends
// them to u, as the user's own node would. It runs on u's reader, outside
// the world lock, for at most blobFetchWait.
func (s *Server) fetchRemoteBlobs(u *user, fetcher BlobFetcher, blobs []remoteBlob) {
	ctx, cancel := context.WithTimeout(context.Background(), blobFetchWait)
	defer cancel()
	for _, b := range blobs {
		data, err := fetcher.FetchBlob(ctx, b.session, b.kind)
		switch {
		case err != nil:
			s.log.Debug("a remote user's blob could not be fetched", "user.session", b.session, "kind", b.kind, "err", err)
		case len(data) == 0: // gone meanwhile
		case b.kind == BlobTexture:
			u.conn.send(&mumblepb.UserState{Session: ptr(b.session), Texture: data})
		default:
			u.conn.send(&mumblepb.UserState{Session: ptr(b.session), Comment: ptr(string(data))})
		}
	}
}

// addChannelRecipients adds the users in ch and those listening to it.
// markTree adds ch and every subchannel where sender may text to into,
// as addTreeRecipients chooses them.
func (s *Server) markTree(sender *user, ch *channel, into map[*channel]bool) {
	into[ch] = true
	for _, child := range ch.children {
		if s.may(sender, child, acl.TextMessage) {
			s.markTree(sender, child, into)
		}
	}
}

func addChannelRecipients(ch *channel, into map[*user]struct{}) {
	for u := range ch.users {
		into[u] = struct{}{}
	}
	for u := range ch.listeners {
		into[u] = struct{}{}
	}
}
