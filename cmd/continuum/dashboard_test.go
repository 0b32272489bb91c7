package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	ws "github.com/coder/websocket"

	"github.com/continuum-grid/continuum/daemon"
	"github.com/continuum-grid/continuum/kernel"
)

// startWSDaemon starts a daemon with a WebSocket listener on a free port.
func startWSDaemon(t *testing.T, dash bool) (sock string, d *daemon.Daemon, tokenFile string) {
	t.Helper()
	sockDir, err := os.MkdirTemp("", "ccli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock = filepath.Join(sockDir, "d.sock")
	state := t.TempDir()
	d, err = daemon.Start(daemon.Config{
		Socket:    sock,
		Kernel:    kernel.Config{StateDir: state},
		WebSocket: daemon.WebSocketConfig{Addr: "127.0.0.1:0", Dashboard: dash},
	})
	if err != nil {
		t.Fatalf("start daemon: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := d.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return sock, d, filepath.Join(state, "ws-token")
}

func TestDashboardPrintsAWorkingURL(t *testing.T) {
	sock, d, tokenFile := startWSDaemon(t, true)
	out := cli(t, sock, "dashboard").ok(t).stdout
	m := regexp.MustCompile(`^http://127\.0\.0\.1:\d+/dashboard/#token=([0-9a-f]{64})\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("dashboard printed %q", out)
	}
	tok, _ := os.ReadFile(tokenFile)
	if m[1] != strings.TrimSpace(string(tok)) {
		t.Fatalf("token %q, file holds %q", m[1], tok)
	}
	if !strings.Contains(out, d.WebSocketAddr()) {
		t.Fatalf("URL %q does not name the listener %s", out, d.WebSocketAddr())
	}

	// The page is there (the fragment never travels)...
	u, _ := url.Parse(strings.TrimSpace(out))
	resp, err := http.Get((&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "dashboard.js") {
		t.Fatalf("GET %s: %d %.200s", u.Path, resp.StatusCode, body)
	}
	// ...and a page of that origin may open the WebSocket with that token.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := ws.Dial(ctx, "ws://"+u.Host+"/", &ws.DialOptions{
		HTTPHeader:   http.Header{"Origin": {"http://" + u.Host}},
		Subprotocols: []string{"continuum.v1", "continuum.token." + m[1]},
	})
	if err != nil {
		t.Fatalf("the page's origin cannot connect: %v", err)
	}
	c.CloseNow()

	j := decode[dashboardInfo](t, cli(t, sock, "dashboard", "--json").ok(t).stdout)
	if j.URL != strings.TrimSpace(out) || j.Addr != d.WebSocketAddr() || j.TokenFile != tokenFile {
		t.Fatalf("--json: %+v", j)
	}
	if info := cli(t, sock, "info").ok(t).stdout; !strings.Contains(info, d.WebSocketAddr()+" (dashboard: continuum dashboard)") {
		t.Fatalf("info does not show the listener:\n%s", info)
	}
}

func TestDashboardFailsClearly(t *testing.T) {
	t.Run("no listener", func(t *testing.T) {
		sock := startDaemon(t)
		r := cli(t, sock, "dashboard")
		if r.code == 0 || !strings.Contains(r.stderr, "no WebSocket listener") || !strings.Contains(r.stderr, "continuumd --listen-ws 127.0.0.1:7777") {
			t.Fatalf("exit %d stderr %q", r.code, r.stderr)
		}
		if r.stdout != "" {
			t.Fatalf("stdout %q", r.stdout)
		}
	})
	t.Run("dashboard off", func(t *testing.T) {
		sock, _, _ := startWSDaemon(t, false)
		r := cli(t, sock, "dashboard")
		if r.code == 0 || !strings.Contains(r.stderr, "--ws-dashboard=false") {
			t.Fatalf("exit %d stderr %q", r.code, r.stderr)
		}
	})
	t.Run("token file", func(t *testing.T) {
		sock, _, _ := startWSDaemon(t, true)
		missing := filepath.Join(t.TempDir(), "nope")
		r := cli(t, sock, "dashboard", "--ws-token-file", missing)
		if r.code == 0 || !strings.Contains(r.stderr, "cannot read the WebSocket token") || !strings.Contains(r.stderr, missing) {
			t.Fatalf("exit %d stderr %q", r.code, r.stderr)
		}
		empty := filepath.Join(t.TempDir(), "empty")
		os.WriteFile(empty, []byte("\n"), 0o600)
		if r := cli(t, sock, "dashboard", "--ws-token-file", empty); r.code == 0 || !strings.Contains(r.stderr, "is empty") {
			t.Fatalf("exit %d stderr %q", r.code, r.stderr)
		}
		if r := cli(t, sock, "dashboard", "extra"); r.code == 0 {
			t.Fatalf("an argument was accepted: %q", r.stdout)
		}
	})
}
