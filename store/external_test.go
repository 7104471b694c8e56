package store

import (
	"errors"
	"testing"
)

func TestExternalUserIDIsStable(t *testing.T) {
	s, path := openTemp(t)
	a, err := s.ExternalUserID("ldap", "uuid-a")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.ExternalUserID("ldap", "uuid-b")
	other, _ := s.ExternalUserID("webhook", "uuid-a")
	again, _ := s.ExternalUserID("ldap", "uuid-a")
	if a != FirstExternalID || b != a+1 || other != a+2 || again != a {
		t.Errorf("ids %d %d %d %d, want %d, +1, +2 and the first again", a, b, other, again, FirstExternalID)
	}
	if !IsExternalID(a) || IsExternalID(1) {
		t.Error("IsExternalID")
	}
	if _, err := s.ExternalUserID("ldap", ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("an empty subject: %v", err)
	}
	s.Close()
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if id, _ := s2.ExternalUserID("ldap", "uuid-b"); id != b {
		t.Errorf("after reopening: %d, want %d", id, b)
	}
}
