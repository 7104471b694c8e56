package browsertest

import (
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/plenum-voice/plenum/conf"
)

// TestChromiumSignInLink: the login form offers the single sign-on link
// when the server has [auth.oidc], and not otherwise. (The sign-in itself
// runs against a real provider in server's TestOIDCSignIn.)
func TestChromiumSignInLink(t *testing.T) {
	ctx := sharedChromium(t)
	withOIDC := hallConfig(t)
	withOIDC.Auth = &conf.Auth{OIDC: &conf.OIDC{
		Issuer: "http://127.0.0.1:9", ClientID: "plenum", RedirectURL: "http://127.0.0.1:9/auth/oidc/callback",
	}}
	for _, c := range []struct {
		name string
		cfg  *conf.Config
		want bool
	}{{"without [auth.oidc]", hallConfig(t), false}, {"with [auth.oidc]", withOIDC, true}} {
		e := startServer(t, c.cfg)
		if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"/?channel=Hall")); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, "the sign-in check done", `window.plenum && window.plenum.signInChecked === true`)
		shown, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!document.getElementById("signin").hidden`))
		if err != nil {
			t.Fatal(err)
		}
		href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("signin").getAttribute("href") || ""`))
		if err != nil {
			t.Fatal(err)
		}
		if shown != c.want || (c.want && href != "/auth/oidc/login") {
			t.Errorf("%s: link shown %v (href %q), want %v", c.name, shown, href, c.want)
		}
	}
}
