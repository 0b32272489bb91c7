package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/daemon"
	"github.com/continuum-grid/continuum/grid"
	"github.com/continuum-grid/continuum/kernel"
)

// runBinary runs the built continuum with args and returns its exit status
// and output.
func runBinary(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, cliBinary(t), args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errb.String()
	} else if err != nil {
		t.Fatalf("run continuum %v: %v", args, err)
	}
	return 0, out.String(), errb.String()
}

// startStatusDaemon is a daemon with a QUIC listener; the handle lets a
// test host extra methods.
func startStatusDaemon(t *testing.T) (string, *daemon.Daemon) {
	t.Helper()
	dir, err := os.MkdirTemp("", "cstat")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "d.sock")
	d, err := daemon.Start(daemon.Config{Socket: sock, Kernel: kernel.Config{StateDir: filepath.Join(dir, "state")}, Grid: grid.Options{ListenQUIC: "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.Shutdown(ctx)
	})
	return sock, d
}

// TestStatusBinary: the real continuum binary against a real daemon linked
// to a real peer over QUIC: every line has the numbers the daemon's own
// methods give, persona and contract lines appear only once kernel/info
// lists their methods, and --json carries the same.
func TestStatusBinary(t *testing.T) {
	sa, da := startStatusDaemon(t)
	sb, _ := startStatusDaemon(t)
	idb := mustPeerID(t, sb)

	cli(t, sa, "events", "declare", "status:note", "--schema-version", "v1", "--broadcast", "--channel", "global").ok(t)
	cli(t, sa, "events", "emit", "status:note", "--param", "n=1").ok(t)
	cli(t, sa, "events", "emit", "status:note", "--param", "n=2").ok(t)
	token := strings.TrimSpace(cli(t, sa, "grid", "invite", "--circle", "household").ok(t).stdout)
	cli(t, sb, "grid", "join", token).ok(t)
	waitFor(t, "a sees b up", func() bool {
		out := decode[api.PeersResult](t, cli(t, sa, "grid", "peers", "--json").ok(t).stdout)
		return len(out.Peers) == 1 && out.Peers[0].State == "up"
	})

	// The peers' manifests reach the log when they like: status must show
	// the log as it was at some moment between the stats read before it
	// and the one after.
	stBefore := decode[api.LogStats](t, cli(t, sa, "log", "stats", "--json").ok(t).stdout)
	code, out, errOut := runBinary(t, "status", "--socket", sa)
	if code != 0 {
		t.Fatalf("status exit %d: %s %s", code, out, errOut)
	}
	classes := decode[[]api.ClassConfig](t, cli(t, sa, "events", "list", "--json").ok(t).stdout)
	st := decode[api.LogStats](t, cli(t, sa, "log", "stats", "--json").ok(t).stdout)
	for n := stBefore.Events; n < st.Events; n++ {
		if strings.Contains(out, fmt.Sprintf(" %d events in %d channels, head seq %d", n, len(st.Channels), n)) {
			st.Events, st.Head = n, n
			break
		}
	}
	broadcast := 0
	for _, c := range classes {
		if c.Broadcast {
			broadcast++
		}
	}
	for _, want := range []string{
		"continuumd:   " + kernel.Version + " (protocol 1) at " + sa,
		"peer id:      " + da.Kernel().PeerID(),
		"uptime:       ",
		"connections:  ",
		"classes:      " + strconv.Itoa(len(classes)) + " declared, " + strconv.Itoa(broadcast) + " broadcast",
		fmt.Sprintf(" %d events in %d channels, head seq %d", st.Events, len(st.Channels), st.Head),
		"models:       none loaded",
		"peers:        1 up of 1 trusted: " + shortID(idb) + " ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	// persona/ and grid/contract's list methods, none of either yet.
	for _, want := range []string{"personas:     0\n", "contracts:    0\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "ms\n") {
		t.Errorf("no round trip on the peer:\n%s", out)
	}

	code, out, _ = runBinary(t, "status", "--json", "--socket", sa)
	if code != 0 {
		t.Fatalf("status --json exit %d", code)
	}
	var js statusReport
	if err := json.Unmarshal([]byte(out), &js); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if js.PeerID != da.Kernel().PeerID() || js.Log == nil || js.Log.Events < stBefore.Events || js.Log.Channels != len(st.Channels) || js.Log.FileBytes <= 0 ||
		js.Peers == nil || js.Peers.Up != 1 || js.Peers.Total != 1 || js.Peers.Peers[0].PeerID != idb || js.Peers.Peers[0].RTTMs <= 0 ||
		js.Classes == nil || js.Classes.Count != len(classes) || js.Connections.Open < 1 || js.UptimeSecs <= 0 ||
		js.Personas == nil || js.Personas.Count != 0 || js.Contracts == nil || js.Contracts.Count != 0 {
		t.Errorf("status --json: %+v\n%s", js, out)
	}
}

// TestStatusNoDaemon: no daemon at the socket is exit 1 and a message that
// names the socket and how to start one; a bad flag is exit 2.
func TestStatusNoDaemon(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "none.sock")
	code, out, errOut := runBinary(t, "status", "--socket", sock)
	if code != exitError || out != "" || !strings.Contains(errOut, "cannot reach continuumd at "+sock) || !strings.Contains(errOut, "is continuumd running?") {
		t.Errorf("status with no daemon: exit %d stdout %q stderr %q", code, out, errOut)
	}
	code, _, errOut = runBinary(t, "status", "extra", "--socket", sock)
	if code != exitUsage || !strings.Contains(errOut, `unexpected argument "extra"`) {
		t.Errorf("status with an argument: exit %d stderr %q", code, errOut)
	}
}

func mustPeerID(t *testing.T, sock string) string {
	t.Helper()
	return decode[api.InfoResult](t, cli(t, sock, "info", "--json").ok(t).stdout).PeerID
}
