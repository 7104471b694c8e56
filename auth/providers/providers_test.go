package providers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/auth"
	"github.com/plenum-voice/plenum/auth/oidcauth"
	"github.com/plenum-voice/plenum/conf"
)

// TestCodesNeverReachOtherProviders: a single sign-on code is answered by
// the codes alone, never sent to the webhook; other passwords go on.
func TestCodesNeverReachOtherProviders(t *testing.T) {
	var asked atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		w.Write([]byte(`{"result":"unknown"}`))
	}))
	defer hook.Close()
	codes := oidcauth.NewGrants(time.Minute)
	b, err := Build(&conf.Auth{Webhook: &conf.Webhook{URL: hook.URL}, OIDC: &conf.OIDC{}}, codes)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Chain) != 2 || b.Chain[0].Name != "oidc" || b.Timeout != time.Second+conf.DefaultAuthTimeout {
		t.Fatalf("chain %v, timeout %v", b.Chain, b.Timeout)
	}
	code := codes.Issue(oidcauth.Identity{Subject: "s", Name: "ada"})
	for _, pw := range []string{code, "sso-expired-or-forged"} {
		a, err := b.Chain.Authenticate(context.Background(), auth.Request{Name: "ada", Password: pw})
		if err != nil || a.Provider != "oidc" {
			t.Errorf("%s: %+v %v", pw, a, err)
		}
	}
	if n := asked.Load(); n != 0 {
		t.Errorf("the webhook was asked %d times about codes", n)
	}
	if a, _ := b.Chain.Authenticate(context.Background(), auth.Request{Name: "ada", Password: "ordinary"}); a.Verdict != auth.Unknown || asked.Load() != 1 {
		t.Errorf("an ordinary password: %+v, webhook asked %d times", a, asked.Load())
	}
}
