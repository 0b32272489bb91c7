package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/client"
)

// waitLog waits until the daemon's stderr holds want.
func waitLog(t *testing.T, p *proc, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the daemon's log:\n%s", want, p.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSIGHUPReloadsLogLevel: the binary starts at info (connections are
// logged at debug, so none show); --config is changed to debug and SIGHUP
// sent; the daemon says what it did, and the next connection is logged. A bad
// file on the next SIGHUP keeps the level and names the line.
func TestSIGHUPReloadsLogLevel(t *testing.T) {
	bin := daemonBinary(t)
	dir := privateDir(t)
	conf := filepath.Join(dir, "continuumd.conf")
	if err := os.WriteFile(conf, []byte("# test\nlog-level = info\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "d.sock")
	p, c := startBinary(t, bin, sock, filepath.Join(dir, "state"), "--log-level", "debug", "--config", conf)
	c.Close()
	if strings.Contains(p.logs.String(), "connection opened") {
		t.Fatalf("--config log-level = info did not win over --log-level debug:\n%s", p.logs.String())
	}

	if err := os.WriteFile(conf, []byte("log-level = debug\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, p, `msg="SIGHUP: settings reloaded"`)
	waitLog(t, p, "log_level=DEBUG was=INFO")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c2, err := client.Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	c2.Close()
	waitLog(t, p, "connection opened")

	if err := os.WriteFile(conf, []byte("log-level = debug\nlog-levle = warn\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, p, "SIGHUP: settings kept")
	waitLog(t, p, `continuumd.conf:2: unknown key \"log-levle\"`)
	p.stop(t)
}

// TestConfigBadAtStart: a --config file with a bad value stops the start
// with the line named.
func TestConfigBadAtStart(t *testing.T) {
	dir := privateDir(t)
	conf := filepath.Join(dir, "c.conf")
	if err := os.WriteFile(conf, []byte("log-level = loud\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	err := run([]string{"--socket", filepath.Join(dir, "d.sock"), "--state-dir", dir, "--config", conf}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "c.conf:1: log-level \"loud\"") {
		t.Fatalf("run with a bad --config: %v", err)
	}
}

// TestSIGHUPReloadsRetention: a daemon started with no retention keeps all
// it is given; the --config file then sets retain-count (and a per-channel
// rule), SIGHUP makes the daemon say so and the next retention pass trims the
// log; a bad value on the next SIGHUP keeps those rules and names the line;
// taking the keys out of the file goes back to the flags.
func TestSIGHUPReloadsRetention(t *testing.T) {
	bin := daemonBinary(t)
	dir := privateDir(t)
	conf := filepath.Join(dir, "continuumd.conf")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(conf, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("log-level = info\n")
	p, c := startBinary(t, bin, filepath.Join(dir, "d.sock"), filepath.Join(dir, "state"), "--config", conf, "--retain-interval", "200ms")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := c.DeclareClass(ctx, api.ClassConfig{Name: "chat:posted", SchemaVersion: "v1", Broadcast: true, Channel: api.ChannelByRoomID}); err != nil {
		t.Fatal(err)
	}
	n := 0
	emit := func(room string, count int) {
		t.Helper()
		for i := 0; i < count; i++ {
			n++
			if _, err := c.Emit(ctx, api.EmitParams{Name: "chat:posted", ID: fmt.Sprintf("e%d", n), Payload: map[string]any{"roomId": room}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	held := func() map[string]uint64 {
		t.Helper()
		var st api.LogStats
		if err := c.Call(ctx, api.MethodLogStats, nil, &st); err != nil {
			t.Fatal(err)
		}
		have := map[string]uint64{}
		for _, ch := range st.Channels {
			have[ch.Channel] = ch.Events
		}
		return have
	}
	waitHeld := func(want map[string]uint64) {
		t.Helper()
		for {
			have := held()
			match := len(have) == len(want)
			for ch, n := range want {
				match = match && have[ch] == n
			}
			if match {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("channels hold %v, want %v\n%s", have, want, p.logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	hup := func() {
		t.Helper()
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	emit("general", 10)
	emit("small", 10)
	time.Sleep(500 * time.Millisecond) // two passes' time: nothing to trim yet
	if have := held(); have["general"] != 10 || have["small"] != 10 {
		t.Fatalf("no retention, yet the log holds %v", have)
	}

	write("log-level = info\nretain-count = 5\nretain = small=count:2\n")
	hup()
	waitLog(t, p, `msg="SIGHUP: settings reloaded"`)
	waitLog(t, p, `retention="default:count=5 small:count=2" retention_was=default:none`)
	waitHeld(map[string]uint64{"general": 5, "small": 2})

	// A bad value: everything in the file is kept as it was, the line named;
	// the rules in force still trim what comes next.
	write("retain-count = -2\n")
	hup()
	waitLog(t, p, "SIGHUP: settings kept")
	waitLog(t, p, `continuumd.conf:1: retain-count \"-2\": want a whole number`)
	emit("general", 4)
	emit("small", 4)
	waitHeld(map[string]uint64{"general": 5, "small": 2})

	// No retention keys: back to the flags (none), so nothing more is dropped.
	write("# retention from the flags\n")
	hup()
	waitLog(t, p, `retention=default:none retention_was="default:count=5 small:count=2"`)
	emit("general", 3)
	time.Sleep(500 * time.Millisecond)
	if have := held(); have["general"] != 8 || have["small"] != 2 {
		t.Fatalf("after going back to no retention the log holds %v, want general 8, small 2", have)
	}
	p.stop(t)
}

// TestConfigRetentionAtStart: the file's retention keys win over the flags
// at start too, and a channel given twice in the file stops the start.
func TestConfigRetentionAtStart(t *testing.T) {
	dir := privateDir(t)
	conf := filepath.Join(dir, "c.conf")
	if err := os.WriteFile(conf, []byte("retain = a=count:1\nretain = a=count:2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	err := run([]string{"--socket", filepath.Join(dir, "d.sock"), "--state-dir", dir, "--config", conf}, &stderr)
	if err == nil || !strings.Contains(err.Error(), `c.conf: --retain: channel "a" is given twice`) {
		t.Fatalf("run with a channel twice in --config: %v", err)
	}
	for _, bad := range []string{"retain-count = lots\n", "retain-age = soon\n", "retain = x\n"} {
		if err := os.WriteFile(conf, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := run([]string{"--socket", filepath.Join(dir, "d.sock"), "--state-dir", dir, "--config", conf}, &stderr); err == nil || !strings.Contains(err.Error(), "c.conf:1: ") {
			t.Errorf("--config %q: %v", bad, err)
		}
	}

	bin := daemonBinary(t)
	if err := os.WriteFile(conf, []byte("retain-count = 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, _ := startBinary(t, bin, filepath.Join(dir, "d.sock"), filepath.Join(dir, "state"), "--config", conf, "--retain-count", "100")
	waitLog(t, p, `msg="airc log retention" count=3`)
	p.stop(t)
}
