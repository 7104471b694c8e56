package server

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/plenum-voice/plenum/conf"
)

// newUnstarted makes a server that opens no sockets, logging into log.
func newUnstarted(t *testing.T, dataDir, adminListen, adminToken string, log *bytes.Buffer) *Server {
	t.Helper()
	cfg := conf.Default()
	cfg.Server.AdminToken = adminToken
	s, err := New(Options{Config: cfg, Listen: "127.0.0.1:0", WebListen: NoWeb, AdminListen: adminListen, DataDir: dataDir,
		Logger: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.store.Close() })
	return s
}

// TestAdminListenerWarning: the server warns at start when admin_listen
// is not a loopback address and admin_token is not set (the listener then
// takes the generated token, over plain HTTP, from anyone who reaches it),
// and only then.
func TestAdminListenerWarning(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		listen, token string
		warn          bool
	}{
		{"0.0.0.0:0", "", true},
		{":64740", "", true},
		{"[::]:0", "", true},
		{"192.0.2.1:64740", "", true},
		{"plenum.example.org:64740", "", true},
		{"127.0.0.1:0", "", false},
		{"127.0.0.2:64740", "", false},
		{"[::1]:0", "", false},
		{"localhost:64740", "", false},
		{"0.0.0.0:0", "chosen", false},
		{NoAdmin, "", false},
	} {
		var log bytes.Buffer
		newUnstarted(t, dir, tc.listen, tc.token, &log)
		warned := strings.Contains(log.String(), "admin listener not on loopback and admin_token not set")
		if warned != tc.warn {
			t.Errorf("admin_listen %q, admin_token %q: warned %v, want %v; log:\n%s", tc.listen, tc.token, warned, tc.warn, log.String())
		}
		if warned && !strings.Contains(log.String(), "token_file="+dir+"/admin_token") {
			t.Errorf("the warning does not say where the token is:\n%s", log.String())
		}
	}
}
