package statuspagetest

import (
	"os"
	"testing"
	"time"
)

// TestARunningServer checks the status page of a server that is already
// running, as scripts/status-page-1000.sh starts one: PLENUM_STATUS_PAGE
// is its admin listener (http://HOST:PORT), PLENUM_ADMIN_TOKEN its token,
// PLENUM_FIND_ONE a name the filter must find alone, and
// PLENUM_SCREENSHOTS a directory for the screenshots. Without
// PLENUM_STATUS_PAGE it is skipped.
func TestARunningServer(t *testing.T) {
	base := os.Getenv("PLENUM_STATUS_PAGE")
	if base == "" {
		t.Skip("PLENUM_STATUS_PAGE not set: scripts/status-page-1000.sh runs this")
	}
	ctx := Browser(t)
	n := Check(t, ctx, Options{
		Base: base, Token: os.Getenv("PLENUM_ADMIN_TOKEN"), Lang: "en", FindOne: os.Getenv("PLENUM_FIND_ONE"),
		Limits: Limits{PageBytes: 150 << 10, Render: 2 * time.Second, OpenBytes: 600 << 10, Open: 3 * time.Second},
		Shots:  os.Getenv("PLENUM_SCREENSHOTS"), ShotPrefix: "status-page-1000-",
		StreamFor: 10 * time.Second,
	})
	t.Log(n)
}
