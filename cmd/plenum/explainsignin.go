package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/auth"
	"github.com/plenum-voice/plenum/auth/providers"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/store"
)

// unseenExternalID stands for a signed-in person who never logged in to
// the server, so has no user id yet: a registered id nobody has.
const unseenExternalID = 1<<31 - 1

// signInSubject signs s's user in through cfg's [auth] providers, as the
// server would, with the password on the first line of stdin, and gives
// s what the sign-in gives: a user id, the groups and where they came
// from. It returns a note on what happened.
func signInSubject(cfg *conf.Config, st *store.Store, s *acl.Subject, stdin io.Reader) (string, error) {
	a := cfg.Auth
	if a == nil || (a.Webhook == nil && a.LDAP == nil) {
		return "", errors.New("-signin: the configuration has no [auth.webhook] or [auth.ldap] to sign in with")
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("-signin: reading the password: %w", err)
	}
	password := strings.TrimRight(line, "\r\n")
	built, err := providers.Build(a, nil)
	if err != nil {
		return "", fmt.Errorf("-signin: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), built.Timeout+time.Second)
	defer cancel()
	ans, err := built.Chain.Authenticate(ctx, auth.Request{Name: s.Name, Password: password, CertHash: s.CertHash, Kind: auth.Mumble})
	if err != nil {
		would := "refuse the login"
		if a.UnavailableChoice() == conf.AuthGuest {
			would = "admit " + s.Name + " as a guest"
		}
		return "", fmt.Errorf("-signin: %w (the server would %s)", err, would)
	}
	switch ans.Verdict {
	case auth.Refuse:
		return "", fmt.Errorf("-signin: %s refuses %s (%s)", ans.Provider, s.Name, orDefault(ans.Reason, "wrong name or password"))
	case auth.Unknown:
		if a.UnknownChoice() == conf.AuthRefuse {
			return "", fmt.Errorf("-signin: no provider knows %s, and unknown = \"refuse\": the server would refuse the login", s.Name)
		}
		return fmt.Sprintf("no provider knows %s: the server treats them as without [auth] (unknown = \"local\")", s.Name), nil
	}
	s.UserID = unseenExternalID
	idNote := "no user id yet (never logged in)"
	if st != nil {
		if id, err := st.LookupExternalUserID(ans.Provider, ans.Subject); err == nil {
			s.UserID, idNote = id, fmt.Sprintf("user id %d", id)
		}
	}
	s.SignInGroups, s.SignInBy, s.SignInSources = auth.CleanGroups(ans.Groups), ans.Provider, ans.GroupSources
	var groups []string
	for _, g := range s.SignInGroups {
		if from := s.SignInSources[g]; from != "" {
			g += " (from " + from + ")"
		}
		groups = append(groups, g)
	}
	sort.Strings(groups)
	shown := s.Name
	if ans.DisplayName != "" {
		shown = ans.DisplayName
	}
	return fmt.Sprintf("signed in through %s as %q, %s, groups: %s", ans.Provider, shown, idNote, orDefault(strings.Join(groups, ", "), "none")), nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
