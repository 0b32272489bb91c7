package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/daemon"
	"github.com/continuum-grid/continuum/grid"
	"github.com/continuum-grid/continuum/kernel"
)

// startGridDaemon runs continuumd in-process with a QUIC listener and
// returns its socket and peer id.
func startGridDaemon(t *testing.T) (sock, peerID string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "cgcli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock = filepath.Join(dir, "d.sock")
	d, err := daemon.Start(daemon.Config{Socket: sock, Kernel: kernel.Config{StateDir: filepath.Join(dir, "state")}, Grid: grid.Options{ListenQUIC: "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.Shutdown(ctx)
	})
	return sock, d.Kernel().PeerID()
}

func TestGridInviteJoinPeersStatusUntrust(t *testing.T) {
	sa, ida := startGridDaemon(t)
	sb, idb := startGridDaemon(t)

	r := cli(t, sa, "grid", "invite", "--circle", "household").ok(t)
	token := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(token, "cinv1.") || !strings.Contains(r.stderr, "continuum grid join "+token) {
		t.Fatalf("invite printed %q / %q", r.stdout, r.stderr)
	}
	r = cli(t, sb, "grid", "join", token).ok(t)
	if want := "joined " + ida + " in household"; !strings.Contains(r.stdout, want) {
		t.Fatalf("join printed %q, want %q", r.stdout, want)
	}
	waitFor(t, "a lists b as up", func() bool {
		out := decode[api.PeersResult](t, cli(t, sa, "grid", "peers", "--json").ok(t).stdout)
		return len(out.Peers) == 1 && out.Peers[0].PeerID == idb && out.Peers[0].State == "up"
	})
	r = cli(t, sa, "grid", "peers").ok(t)
	if !strings.Contains(r.stdout, idb) || !strings.Contains(r.stdout, "household") || !strings.Contains(r.stdout, "up") {
		t.Errorf("grid peers:\n%s", r.stdout)
	}
	st := decode[api.GridStatus](t, cli(t, sb, "grid", "status", "-o", "json").ok(t).stdout)
	if st.PeerID != idb || len(st.QUICAddrs) != 1 || st.Links != 1 {
		t.Errorf("grid status --json: %+v", st)
	}
	if r := cli(t, sb, "grid", "status").ok(t); !strings.Contains(r.stdout, st.QUICAddrs[0]) || !strings.Contains(r.stdout, "link.up") {
		t.Errorf("grid status:\n%s", r.stdout)
	}
	if r := cli(t, sb, "info").ok(t); !strings.Contains(r.stdout, st.QUICAddrs[0]) {
		t.Errorf("info does not show the QUIC address:\n%s", r.stdout)
	}

	// A used token: a clear error, exit 1.
	r = cli(t, sb, "grid", "join", token)
	if r.code != exitError || !strings.Contains(r.stderr, "error: ") {
		t.Errorf("rejoin with a used token: exit %d, %q", r.code, r.stderr)
	}
	r = cli(t, sa, "grid", "untrust", idb).ok(t)
	if !strings.Contains(r.stdout, "untrusted "+idb) {
		t.Errorf("untrust printed %q", r.stdout)
	}
	r = cli(t, sa, "grid", "trust", idb, "--circle", "extended", "--addr", st.QUICAddrs[0]).ok(t)
	if !strings.Contains(r.stdout, "trusted "+idb+" in extended") {
		t.Errorf("trust printed %q", r.stdout)
	}

	// Usage errors: exit 2.
	for _, args := range [][]string{
		{"grid", "invite"},
		{"grid", "join"},
		{"grid", "trust", idb},
		{"grid", "untrust"},
		{"grid", "invite", "--circle", "household", "--ttl", "5ms"},
	} {
		if r := cli(t, sa, args...); r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, r.code, exitUsage, r.stderr)
		}
	}
	// A bad circle is the daemon's invalid_argument: exit 1.
	if r := cli(t, sa, "grid", "invite", "--circle", "friends"); r.code != exitError || !strings.Contains(r.stderr, "invalid_argument") {
		t.Errorf("bad circle: exit %d, %q", r.code, r.stderr)
	}
}

// The "done when": a command served on b with --scope grid runs
// from a with exec --grid, and grid routes on a shows it.
func TestGridExecAndRoutesThroughTheCLI(t *testing.T) {
	sa, _ := startGridDaemon(t)
	sb, idb := startGridDaemon(t)
	token := strings.TrimSpace(cli(t, sa, "grid", "invite", "--circle", "household").ok(t).stdout)
	cli(t, sb, "grid", "join", token).ok(t)
	_, _, stop := background(t, sb, "commands", "serve", "demo/echo", "--scope", "grid", "--price", "2", "--latency-ms", "3")
	defer stop()
	waitFor(t, "a's index shows demo/echo at b", func() bool {
		out := decode[api.RoutesResult](t, cli(t, sa, "grid", "routes", "--json").ok(t).stdout)
		return len(out.Routes) == 1 && out.Routes[0].PeerID == idb && out.Routes[0].LinkUp && out.Routes[0].State == "live"
	})
	r := cli(t, sa, "grid", "routes").ok(t)
	for _, want := range []string{"demo/echo", idb, "household", "live", "up"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("grid routes lacks %q:\n%s", want, r.stdout)
		}
	}
	r = cli(t, sa, "exec", "demo/echo", "--grid", "--param", "text=over the grid").ok(t)
	if !strings.Contains(r.stdout, `"text": "over the grid"`) {
		t.Errorf("exec --grid printed %q", r.stdout)
	}
	// Nobody offers it: the typed error, exit 1.
	r = cli(t, sa, "exec", "demo/none", "--grid")
	if r.code != exitError || !strings.Contains(r.stderr, "no_matching_peer") {
		t.Errorf("exec --grid of nothing: exit %d %q", r.code, r.stderr)
	}
	if r := cli(t, sa, "grid", "policy-reload").ok(t); !strings.Contains(r.stdout, "defaults") {
		t.Errorf("policy-reload without a file: %q", r.stdout)
	}
}
