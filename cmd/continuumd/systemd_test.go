package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/client"
)

// notifyReader is a fake systemd: a datagram socket that collects what the
// daemon sends to $NOTIFY_SOCKET.
type notifyReader struct {
	path string
	msgs chan string
}

func newNotifyReader(t *testing.T, dir string) *notifyReader {
	t.Helper()
	r := &notifyReader{path: filepath.Join(dir, "notify"), msgs: make(chan string, 64)}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: r.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(r.msgs)
				return
			}
			r.msgs <- string(buf[:n])
		}
	}()
	return r
}

// next waits for the next datagram and fails the test unless it is want.
func (r *notifyReader) next(t *testing.T, want string, within time.Duration, logs func() string) {
	t.Helper()
	select {
	case m := <-r.msgs:
		if m != want {
			t.Fatalf("NOTIFY_SOCKET got %q, want %q\n%s", m, want, logs())
		}
	case <-time.After(within):
		t.Fatalf("no %q on NOTIFY_SOCKET within %s\n%s", want, within, logs())
	}
}

// TestNotifyReadyWatchdogStopping runs the binary under a fake systemd:
// READY=1 arrives only once a client can connect (the dial right after it
// must work, with no retry), WATCHDOG=1 pings come at half of WATCHDOG_USEC,
// and SIGTERM sends STOPPING=1 before the exit.
func TestNotifyReadyWatchdogStopping(t *testing.T) {
	bin := daemonBinary(t)
	dir := privateDir(t)
	r := newNotifyReader(t, dir)
	sock := filepath.Join(dir, "d.sock")
	logs := &lockedBuffer{}
	cmd := exec.Command(bin, "--socket", sock, "--state-dir", filepath.Join(dir, "state"))
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+r.path, "WATCHDOG_USEC=200000")
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })

	r.next(t, "READY=1", 20*time.Second, logs.String)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, sock)
	if err != nil {
		t.Fatalf("READY=1 came but the socket does not serve: %v\n%s", err, logs.String())
	}
	var info api.InfoResult
	if err := c.Call(ctx, api.MethodKernelInfo, api.Empty{}, &info); err != nil {
		t.Fatal(err)
	}
	c.Close()

	// WATCHDOG_USEC=200ms: a ping every 100ms; three within a second.
	start := time.Now()
	for i := 0; i < 3; i++ {
		r.next(t, "WATCHDOG=1", time.Second, logs.String)
	}
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Fatalf("three watchdog pings in %s: faster than half of WATCHDOG_USEC", el)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(15 * time.Second)
	for stopping := false; !stopping; {
		select {
		case m := <-r.msgs:
			switch m {
			case "STOPPING=1":
				stopping = true
			case "WATCHDOG=1": // a ping may race the signal
			default:
				t.Fatalf("NOTIFY_SOCKET got %q after SIGTERM, want STOPPING=1", m)
			}
		case <-deadline:
			t.Fatalf("no STOPPING=1 after SIGTERM\n%s", logs.String())
		}
	}
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("continuumd did not stop after SIGTERM\n%s", logs.String())
	}
}

// TestNotifyAbstractSocket checks the '@' form of NOTIFY_SOCKET (an abstract
// socket name, as systemd uses for some services).
func TestNotifyAbstractSocket(t *testing.T) {
	bin := daemonBinary(t)
	dir := privateDir(t)
	name := "continuum-test-notify-" + filepath.Base(dir)
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: "\x00" + name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	logs := &lockedBuffer{}
	cmd := exec.Command(bin, "--socket", filepath.Join(dir, "d.sock"), "--state-dir", filepath.Join(dir, "state"))
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET=@"+name)
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 256)
	n, err := conn.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("abstract NOTIFY_SOCKET: got %q, %v\n%s", buf[:n], err, logs.String())
	}
}

// TestSocketActivation runs the binary under Debian's systemd-socket-activate:
// systemd-socket-activate binds the socket, starts continuumd on the first
// connection and passes the socket as fd 3 (LISTEN_FDS=1). The daemon must
// serve that socket rather than bind its own: the --socket path it is given
// is elsewhere and must stay absent.
func TestSocketActivation(t *testing.T) {
	bin := daemonBinary(t)
	activate, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Fatalf("systemd-socket-activate not found (Debian package systemd; make deps installs it): %v", err)
	}
	dir := privateDir(t)
	sock := filepath.Join(dir, "activated.sock")
	own := filepath.Join(dir, "own.sock")
	r := newNotifyReader(t, dir)
	logs := &lockedBuffer{}
	cmd := exec.Command(activate, "-l", sock, "--fdname=continuumd",
		"-E", "NOTIFY_SOCKET="+r.path,
		bin, "--socket", own, "--state-dir", filepath.Join(dir, "state"))
	cmd.Stderr = logs
	cmd.Stdout = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })

	// The socket exists before continuumd runs: systemd-socket-activate
	// made it.
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i > 500 {
			t.Fatalf("systemd-socket-activate did not make %s\n%s", sock, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, sock) // this connection starts continuumd
	if err != nil {
		t.Fatalf("dial the activated socket: %v\n%s", err, logs.String())
	}
	defer c.Close()
	var info api.InfoResult
	if err := c.Call(ctx, api.MethodKernelInfo, api.Empty{}, &info); err != nil {
		t.Fatalf("kernel/info on the activated socket: %v\n%s", err, logs.String())
	}
	r.next(t, "READY=1", 10*time.Second, logs.String)
	if _, err := os.Stat(own); err == nil {
		t.Fatalf("continuumd bound its own socket %s under socket activation", own)
	}
	// A second client on the same socket is served too.
	c2, err := client.Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Call(ctx, api.MethodKernelInfo, api.Empty{}, &info); err != nil {
		t.Fatal(err)
	}
	c2.Close()

	// systemd-socket-activate execs continuumd in place: SIGTERM reaches it.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err
		if err != nil || !strings.Contains(logs.String(), "shutting down") {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("activated continuumd did not stop\n%s", logs.String())
	}
}

// privateDir is a fresh 0700 folder, as continuumd wants for its socket.
func privateDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ctsd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
