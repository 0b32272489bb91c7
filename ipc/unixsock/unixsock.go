// Package unixsock owns continuum's Unix socket: where it lives, who may reach
// it, and how a daemon claims it.
//
// What it promises:
//
//   - The socket's folder is private: Listen creates it 0700, and refuses one
//     that belongs to another user or that the group or others can enter,
//     since the folder, not the socket's mode, is what keeps other local users
//     out on every Unix.
//   - One daemon per path: a lock file next to the socket is held for the
//     listener's lifetime, and a socket that answers means another daemon is
//     serving, which Listen reports instead of stealing the path. A socket
//     file that nobody answers on is stale and is replaced. Anything else at
//     the path (a regular file, a folder) is left alone and reported.
//   - The socket itself is 0600.
//   - Under systemd socket activation, ListenersFromSystemd returns the
//     sockets systemd passed (LISTEN_PID / LISTEN_FDS, fds from 3).
//   - PeerCred reads the connecting process's uid, gid and pid from the kernel
//     (SO_PEERCRED), which the process cannot forge.
package unixsock

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/continuum-grid/continuum/api/paths"
)

// SocketName is the socket's file name inside its folder; the default path
// is paths.Socket.
const SocketName = paths.SocketName

// ErrAlreadyListening reports that another daemon serves the path.
var ErrAlreadyListening = errors.New("another continuumd is already listening")

// Listen claims path for a daemon and listens on it; see the package
// documentation for the rules. Closing the listener removes the socket and
// releases the claim.
func Listen(path string) (net.Listener, error) {
	if path == "" {
		return nil, errors.New("unixsock: empty socket path")
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("socket folder: %w", err)
	}
	if err := paths.CheckPrivate(dir); err != nil {
		return nil, fmt.Errorf("socket folder: %w", err)
	}

	// The lock decides between two daemons starting at once, which the dial
	// check below cannot: both could find the old socket dead and both
	// replace it.
	lock, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("socket lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w on %s", ErrAlreadyListening, path)
		}
		return nil, fmt.Errorf("socket lock: %w", err)
	}
	l, err := listen(path)
	if err != nil {
		lock.Close()
		return nil, err
	}
	return &lockedListener{UnixListener: l, lock: lock}, nil
}

func listen(path string) (*net.UnixListener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket; remove it or choose another path", path)
		}
		// A daemon without our lock (an older build, another tool) may still
		// be serving: ask it.
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%w on %s", ErrAlreadyListening, path)
		}
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return nil, fmt.Errorf("removing stale socket: %w", err)
		}
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	// The folder already keeps others out; the mode is the second lock, and
	// it is what a user sees with ls.
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// lockedListener holds the path's lock for as long as it listens.
type lockedListener struct {
	*net.UnixListener
	lock *os.File
}

func (l *lockedListener) Close() error {
	err := l.UnixListener.Close() // removes the socket file
	l.lock.Close()
	return err
}

// ListenersFromSystemd returns the listeners systemd passed by socket
// activation, in the order of the unit's ListenStream= lines, or nil when the
// process was not socket-activated (LISTEN_PID names another process or is
// unset). It unsets LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES so children do
// not take the sockets for theirs, and it may be called once.
func ListenersFromSystemd() ([]net.Listener, error) {
	pid, err := strconv.Atoi(os.Getenv("LISTEN_PID"))
	if err != nil || pid != os.Getpid() {
		return nil, nil
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n < 0 {
		return nil, fmt.Errorf("socket activation: bad LISTEN_FDS %q", os.Getenv("LISTEN_FDS"))
	}
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_FDNAMES")
	const first = 3 // SD_LISTEN_FDS_START
	var ls []net.Listener
	for fd := first; fd < first+n; fd++ {
		syscall.CloseOnExec(fd)
		f := os.NewFile(uintptr(fd), "systemd-socket-"+strconv.Itoa(fd))
		l, err := net.FileListener(f) // dups fd; the listener owns the copy
		f.Close()
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return nil, fmt.Errorf("socket activation: fd %d: %w", fd, err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}
