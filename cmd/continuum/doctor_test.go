package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/api/paths"
	bolt "go.etcd.io/bbolt"
)

// libFolder makes a folder with the llama.cpp library names doctor looks for.
func libFolder(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestDoctorHealthy: a running daemon and a complete library folder give no
// fail line and exit 0; the missing GPU backend is a warn with its fix.
func TestDoctorHealthy(t *testing.T) {
	sock := startDaemon(t)
	libs := libFolder(t, "libllama.so", "libggml.so", "libggml-base.so", "libggml-cpu.so")
	r := cli(t, sock, "doctor", "--llama-lib-dir", libs, "--state-dir", privateTemp(t)).ok(t)
	for _, want := range []string{"ok    socket folder", "ok    socket file", "ok    daemon", "ok    llama.cpp libs", "warn  GPU backend", "make llama-libs-cuda"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "fail") {
		t.Errorf("doctor failed a check on a healthy set-up:\n%s", r.stdout)
	}
}

// TestDoctorBroken: missing libraries and a socket others can open are each
// named with the fix, and doctor exits non-zero.
func TestDoctorBroken(t *testing.T) {
	sock := startDaemon(t)
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	libs := libFolder(t, "libggml-base.so") // libllama and libggml missing
	state := privateTemp(t)
	if err := os.Chmod(state, 0o755); err != nil {
		t.Fatal(err)
	}
	r := cli(t, sock, "doctor", "--llama-lib-dir", libs, "--state-dir", state)
	if r.code == 0 {
		t.Fatalf("doctor exit 0 on a broken set-up:\n%s", r.stdout)
	}
	for _, want := range []string{
		"fail  socket file", "mode 0666", "chmod 600 " + sock,
		"fail  llama.cpp libs", "libllama*.so*", "libggml.*", "fix: make llama-libs",
		"fail  state folder", "chmod 700 " + state,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, r.stdout)
		}
	}

	// No daemon, no library folder: both fail with their fixes.
	dir, err := os.MkdirTemp("", "cdoc")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	r = cli(t, filepath.Join(dir, "none.sock"), "doctor", "--llama-lib-dir", filepath.Join(dir, "nolibs"), "--state-dir", dir)
	if r.code == 0 {
		t.Fatalf("doctor exit 0 with no daemon:\n%s", r.stdout)
	}
	for _, want := range []string{"fail  daemon", "systemctl --user start continuumd.socket", "fail  llama.cpp libs", "no folder " + filepath.Join(dir, "nolibs")} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, r.stdout)
		}
	}
}

// privateTemp is a fresh 0700 folder (t.TempDir is 0755, which doctor fails).
func privateTemp(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cdoc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestDoctorPeersAndDaemonState: with a daemon running, doctor reports the
// state file as the daemon reads it, a peer whose link is up, a trusted peer
// whose address answers nothing (fail, the reason and the fix), and one with
// no address (warn, how it links); a failed peer makes doctor exit non-zero.
func TestDoctorPeersAndDaemonState(t *testing.T) {
	sa, _ := startStatusDaemon(t)
	sb, _ := startStatusDaemon(t)
	idb := mustPeerID(t, sb)
	token := strings.TrimSpace(cli(t, sa, "grid", "invite", "--circle", "household").ok(t).stdout)
	cli(t, sb, "grid", "join", token).ok(t)
	waitFor(t, "a sees b up", func() bool {
		out := decode[api.PeersResult](t, cli(t, sa, "grid", "peers", "--json").ok(t).stdout)
		return len(out.Peers) == 1 && out.Peers[0].State == "up"
	})
	libs := libFolder(t, "libllama.so", "libggml.so", "libggml-base.so", "libggml-cpu.so")
	r := cli(t, sa, "doctor", "--llama-lib-dir", libs, "--state-dir", privateTemp(t)).ok(t)
	for _, want := range []string{"ok    state (daemon)   the log reads: ", "ok    peer " + shortID(idb) + " link up (household)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("doctor lacks %q:\n%s", want, r.stdout)
		}
	}

	// Peers that are not there: one at an address nothing listens on (a
	// daemon that was stopped), one with no address.
	sc, dc := startStatusDaemon(t)
	idc := mustPeerID(t, sc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	quic := decode[api.InfoResult](t, cli(t, sc, "info", "--json").ok(t).stdout).QUICAddrs
	if err := dc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	sd, _ := startStatusDaemon(t)
	idd := mustPeerID(t, sd)
	cli(t, sa, "grid", "trust", idc, "--circle", "household", "--addr", quic[0]).ok(t)
	cli(t, sa, "grid", "trust", idd, "--circle", "household").ok(t)
	waitFor(t, "a has tried c", func() bool {
		out := decode[api.PeersResult](t, cli(t, sa, "grid", "peers", "--json").ok(t).stdout)
		for _, p := range out.Peers {
			if p.PeerID == idc {
				return p.LastError != ""
			}
		}
		return false
	})
	r = cli(t, sa, "doctor", "--llama-lib-dir", libs, "--state-dir", privateTemp(t))
	if r.code == 0 {
		t.Fatalf("doctor exit 0 with an unreachable peer:\n%s", r.stdout)
	}
	for _, want := range []string{
		"ok    peer " + shortID(idb),
		"fail  peer " + shortID(idc), "connecting at " + quic[0] + ": ", "fix: ",
		"warn  peer " + shortID(idd), "no link and no address to dial",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("doctor lacks %q:\n%s", want, r.stdout)
		}
	}
}

// With no daemon running, doctor looks into the state file itself: a file
// a daemon wrote passes, one that is not bbolt fails naming the file and the
// fix, and one another process holds is a warning.
func TestDoctorStateFileWithoutDaemon(t *testing.T) {
	r := newRestartable(t)
	if err := os.Chmod(r.state, 0o700); err != nil {
		t.Fatal(err)
	}
	cli(t, r.sock, "events", "emit", "chat:posted", "--json", `{"roomId":"general","text":"kept"}`).ok(t)
	r.stop(t)
	libs := libFolder(t, "libllama.so", "libggml.so", "libggml-base.so")
	file := filepath.Join(r.state, paths.StateFile)
	doctor := func() string {
		return cli(t, r.sock, "doctor", "--llama-lib-dir", libs, "--state-dir", r.state).stdout
	}
	if out := doctor(); !strings.Contains(out, "ok    state file") || !strings.Contains(out, "passes bbolt's consistency check") {
		t.Errorf("a healthy file with the daemon stopped:\n%s", out)
	}

	db, err := bolt.Open(file, 0o600, nil) // holds the lock, as a stuck daemon would
	if err != nil {
		t.Fatal(err)
	}
	if out := doctor(); !strings.Contains(out, "warn  state file") || !strings.Contains(out, "locked by another process") {
		t.Errorf("a locked file:\n%s", out)
	}
	db.Close()

	if err := os.WriteFile(file, bytes.Repeat([]byte("not a bbolt file "), 512), 0o600); err != nil {
		t.Fatal(err)
	}
	res := cli(t, r.sock, "doctor", "--llama-lib-dir", libs, "--state-dir", r.state)
	if res.code == 0 || !strings.Contains(res.stdout, "fail  state file") || !strings.Contains(res.stdout, "does not open as a bbolt file") || !strings.Contains(res.stdout, "mv "+file) {
		t.Errorf("a broken file: exit %d\n%s", res.code, res.stdout)
	}
}
