package main

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// The real binary serves the dashboard on its --listen-ws listener by
// default, says so in kernel/info, and drops the page with
// --ws-dashboard=false while keeping the listener.
func TestBinaryWSDashboardFlag(t *testing.T) {
	bin := daemonBinary(t)
	for _, c := range []struct {
		name  string
		extra []string
		page  bool
	}{
		{"default", nil, true},
		{"off", []string{"--ws-dashboard=false"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, err := os.MkdirTemp("", "ctwd")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := l.Addr().String()
			l.Close()
			p, cl := startBinary(t, bin, filepath.Join(dir, "d.sock"), filepath.Join(dir, "state"), append([]string{"--listen-ws", addr}, c.extra...)...)
			info, err := cl.Info(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			ws := info.WebSocket
			if ws == nil || ws.Addr != addr || ws.TokenFile != filepath.Join(dir, "state", "ws-token") || (ws.Dashboard != "") != c.page {
				t.Fatalf("kernel/info webSocket = %+v", ws)
			}
			resp, err := http.Get("http://" + addr + "/dashboard/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if (resp.StatusCode == 200) != c.page {
				t.Fatalf("GET /dashboard/: %d, want the page: %v", resp.StatusCode, c.page)
			}
			p.stop(t)
		})
	}
}
