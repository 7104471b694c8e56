package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/auth"
)

func TestDecode(t *testing.T) {
	cases := []struct {
		body string
		want auth.Answer
		err  bool
	}{
		{`{"result":"accept","user_id":"m-17","display_name":"Ada","groups":["delegates","all"]}`,
			auth.Answer{Verdict: auth.Accept, Subject: "m-17", DisplayName: "Ada", Groups: []string{"delegates"}}, false},
		{`{"result":"accept","user_id":17}`, auth.Answer{Verdict: auth.Accept, Subject: "17", Groups: []string{}}, false},
		{`{"result":"ACCEPT","user_id":"x","extra":true}`, auth.Answer{Verdict: auth.Accept, Subject: "x", Groups: []string{}}, false},
		{`{"result":"refuse","reason":"membership lapsed"}`, auth.Answer{Verdict: auth.Refuse, Reason: "membership lapsed"}, false},
		{`{"result":"unknown"}`, auth.Answer{Verdict: auth.Unknown}, false},
		{`{"result":"accept"}`, auth.Answer{}, true},
		{`{"result":"accept","user_id":""}`, auth.Answer{}, true},
		{`{"result":"accept","user_id":1.5}`, auth.Answer{}, true},
		{`{"result":"accept","user_id":null}`, auth.Answer{}, true},
		{`{"result":"maybe"}`, auth.Answer{}, true},
		{`{}`, auth.Answer{}, true},
		{`{"result":"accept","user_id":"x"} {}`, auth.Answer{}, true},
		{`<html>`, auth.Answer{}, true},
		{``, auth.Answer{}, true},
	}
	for _, c := range cases {
		got, err := Decode([]byte(c.body))
		if c.err {
			if !errors.Is(err, auth.ErrUnavailable) {
				t.Errorf("%s: err %v, want one wrapping ErrUnavailable", c.body, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %+v, %v; want %+v", c.body, got, err, c.want)
		}
	}
}

// FuzzDecode: whatever an endpoint answers, Decode returns a verdict or
// an error, and accepts only with a user id.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"result":"accept","user_id":"m-17","display_name":"Ada","groups":["delegates"]}`))
	f.Add([]byte(`{"result":"refuse","reason":"no"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Decode(data)
		if err == nil && a.Verdict == auth.Accept && a.Subject == "" {
			t.Errorf("accepted without a user id: %q", data)
		}
		for _, g := range a.Groups {
			if !auth.ValidGroupName(g) {
				t.Errorf("group %q passed", g)
			}
		}
	})
}

// TestAgainstAnHTTPServer: the request is what docs/AUTH.md promises, and
// an endpoint that is slow, broken or redirects is an unavailable one.
func TestAgainstAnHTTPServer(t *testing.T) {
	var got Request
	var header http.Header
	mux := http.NewServeMux()
	mux.HandleFunc("POST /auth", func(w http.ResponseWriter, r *http.Request) {
		header = r.Header.Clone()
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &got); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if got.Password != "pw" {
			io.WriteString(w, `{"result":"refuse"}`)
			return
		}
		io.WriteString(w, `{"result":"accept","user_id":"m-17","display_name":"Ada Lovelace","groups":["delegates"]}`)
	})
	mux.HandleFunc("POST /slow", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // then the server notices the client leaving
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	mux.HandleFunc("POST /broken", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "oops", http.StatusInternalServerError) })
	mux.HandleFunc("POST /moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/auth", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("POST /huge", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"result":"accept","user_id":"x","display_name":"`+strings.Repeat("a", maxAnswer)+`"}`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	hook := New(srv.URL+"/auth", "tok")
	a, err := hook.Authenticate(context.Background(), auth.Request{Name: "ada", Password: "pw", CertHash: "ab12", Kind: auth.Mumble})
	if err != nil || a.Verdict != auth.Accept || a.Subject != "m-17" || a.DisplayName != "Ada Lovelace" || !reflect.DeepEqual(a.Groups, []string{"delegates"}) {
		t.Errorf("accept: %+v %v", a, err)
	}
	if want := (Request{Name: "ada", Password: "pw", CertificateHash: "ab12", Kind: "mumble"}); got != want {
		t.Errorf("the endpoint got %+v, want %+v", got, want)
	}
	if header.Get("Authorization") != "Bearer tok" || header.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", header)
	}
	if a, err := hook.Authenticate(context.Background(), auth.Request{Name: "ada", Password: "x"}); err != nil || a.Verdict != auth.Refuse {
		t.Errorf("refuse: %+v %v", a, err)
	}
	for _, path := range []string{"/broken", "/moved", "/huge", "/nothing-here"} {
		if _, err := New(srv.URL+path, "").Authenticate(context.Background(), auth.Request{Name: "ada", Password: "pw"}); !errors.Is(err, auth.ErrUnavailable) {
			t.Errorf("%s: %v, want unavailable", path, err)
		}
	}
	start := time.Now()
	_, err = auth.WithTimeout(New(srv.URL+"/slow", ""), 200*time.Millisecond).Authenticate(context.Background(), auth.Request{Name: "ada", Password: "pw"})
	if !errors.Is(err, auth.ErrUnavailable) || time.Since(start) > 3*time.Second {
		t.Errorf("slow endpoint: %v after %v, want unavailable after the timeout", err, time.Since(start))
	}
	if strings.Contains(err.Error(), "pw") {
		t.Errorf("the error shows the password: %v", err)
	}
}
