package unixsock

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// privateDir is a fresh 0700 folder: t.TempDir follows the umask, and Listen
// rightly refuses a folder others can enter.
func privateDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

func TestListenPermissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "continuum", SocketName)
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := mode(t, filepath.Dir(path)); m.Perm() != 0o700 || !m.IsDir() {
		t.Fatalf("folder mode %v, want drwx------", m)
	}
	if m := mode(t, path); m.Type() != os.ModeSocket || m.Perm() != 0o600 {
		t.Fatalf("socket mode %v, want srw-------", m)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	l.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("socket left behind after Close: %v", err)
	}
	// The path is free again.
	l, err = Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}

func TestListenRefusesSecondDaemon(t *testing.T) {
	path := filepath.Join(privateDir(t), SocketName)
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = Listen(path)
	if !errors.Is(err, ErrAlreadyListening) || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v, want %v naming the path", err, ErrAlreadyListening)
	}
	// The first listener still works.
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// A server that holds no lock (another build, another tool) but answers on
// the path is still a live daemon.
func TestListenRefusesAnsweringSocket(t *testing.T) {
	path := filepath.Join(privateDir(t), SocketName)
	other, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := Listen(path); !errors.Is(err, ErrAlreadyListening) {
		t.Fatalf("got %v, want %v", err, ErrAlreadyListening)
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(privateDir(t), SocketName)
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false) // as after a crash: the file stays, nobody answers
	old.Close()
	if mode(t, path).Type() != os.ModeSocket {
		t.Fatal("setup: no stale socket")
	}
	l, err := Listen(path)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	defer l.Close()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestListenRefuses(t *testing.T) {
	t.Run("a regular file at the path", func(t *testing.T) {
		path := filepath.Join(privateDir(t), SocketName)
		if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
			t.Fatalf("got %v", err)
		}
		if b, _ := os.ReadFile(path); string(b) != "keep me" {
			t.Fatal("the file was touched")
		}
	})
	t.Run("an open folder", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "open")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := Listen(filepath.Join(dir, SocketName)); err == nil || !strings.Contains(err.Error(), "private") {
			t.Fatalf("got %v", err)
		}
	})
	// A shared folder such as /tmp (1777): the advice must be a private
	// sub-folder, never a chmod that would break every other user of it.
	t.Run("a shared folder", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "shared")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
			t.Fatal(err)
		}
		_, err := Listen(filepath.Join(dir, "app.sock"))
		if err == nil {
			t.Fatal("listened in a shared folder")
		}
		msg := err.Error()
		want := filepath.Join(dir, "continuum-"+strconv.Itoa(os.Getuid()), SocketName)
		if strings.Contains(msg, "chmod 700") || !strings.Contains(msg, "shared folder") || !strings.Contains(msg, "1777") || !strings.Contains(msg, want) {
			t.Fatalf("got %q", msg)
		}
		// The advice works: the sub-folder it names is created private.
		l, err := Listen(want)
		if err != nil {
			t.Fatalf("the advised path: %v", err)
		}
		l.Close()
		if m := mode(t, filepath.Dir(want)); m.Perm() != 0o700 {
			t.Fatalf("advised folder mode %v", m)
		}
	})
	t.Run("a folder that is a link", func(t *testing.T) {
		base := privateDir(t)
		real := filepath.Join(base, "real")
		if err := os.Mkdir(real, 0o700); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(base, "link")
		if err := os.Symlink(real, link); err != nil {
			t.Fatal(err)
		}
		if _, err := Listen(filepath.Join(link, SocketName)); err == nil {
			t.Fatal("listened in a folder reached through a symlink")
		}
	})
}

func TestPeerCred(t *testing.T) {
	path := filepath.Join(privateDir(t), SocketName)
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	who, err := PeerCred(s.(*net.UnixConn))
	if err != nil {
		t.Fatal(err)
	}
	if who.Transport != "unix" || who.UID != os.Getuid() || who.GID != os.Getgid() || who.PID != os.Getpid() {
		t.Fatalf("got %+v", who)
	}
}

func TestListenersFromSystemdNotActivated(t *testing.T) {
	t.Setenv("LISTEN_PID", "1")
	t.Setenv("LISTEN_FDS", "1")
	ls, err := ListenersFromSystemd()
	if err != nil || ls != nil {
		t.Fatalf("got %v, %v for another process's sockets", ls, err)
	}
}

// TestListenersFromSystemd starts this test binary again with a listening
// socket at fd 3, as systemd would, and checks the child serves on it.
func TestListenersFromSystemd(t *testing.T) {
	if os.Getenv("UNIXSOCK_ACTIVATED_CHILD") == "1" {
		activatedChild()
		return
	}
	path := filepath.Join(privateDir(t), SocketName)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestListenersFromSystemd$")
	cmd.Env = append(os.Environ(), "UNIXSOCK_ACTIVATED_CHILD=1", "LISTEN_FDS=1")
	cmd.ExtraFiles = []*os.File{f}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _ := c.Read(buf)
	c.Close()
	_, _ = out.Read(make([]byte, 4096))
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	if got := string(buf[:n]); got != "activated 1 unset" {
		t.Fatalf("child said %q", got)
	}
}

// activatedChild plays the daemon: systemd sets LISTEN_PID to the child's
// pid after fork, which a test can only do from inside the child.
func activatedChild() {
	os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	ls, err := ListenersFromSystemd()
	if err != nil || len(ls) != 1 {
		os.Stderr.WriteString("child: " + strconv.Itoa(len(ls)) + " listeners, " + errString(err) + "\n")
		os.Exit(2)
	}
	c, err := ls[0].Accept()
	if err != nil {
		os.Exit(3)
	}
	unset := "set"
	if os.Getenv("LISTEN_FDS") == "" && os.Getenv("LISTEN_PID") == "" {
		unset = "unset"
	}
	_, _ = c.Write([]byte("activated " + strconv.Itoa(len(ls)) + " " + unset))
	c.Close()
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
