// Package paths says where continuum's files are when no flag names them: the
// daemon's Unix socket and its state folder. The daemon and every client
// compute the same defaults from the same environment; --socket and
// --state-dir override them on both sides.
//
// It is a leaf (standard library only), so that a program can show or use the
// defaults without importing what serves them: the CLI names the state folder
// without linking the store, and ipc/unixsock and the clients share one
// socket path.
package paths

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// SocketName is the socket's file name inside its folder.
const SocketName = "continuumd.sock"

// StateFile is the bbolt file's name inside the state folder.
const StateFile = "continuum.db"

// Socket returns where the daemon listens and clients dial when no path is
// given:
//
//  1. $XDG_RUNTIME_DIR/continuum/continuumd.sock — the per-user runtime folder
//     that systemd-logind makes (0700, on tmpfs, removed at logout), the
//     place the XDG base-directory spec names for sockets;
//  2. when XDG_RUNTIME_DIR is unset (cron, su, containers), /run/user/<uid>/continuum/continuumd.sock
//     if /run/user/<uid> exists, is a folder, belongs to this user and is not
//     open to group or others — the same folder logind would have named;
//  3. otherwise $TMPDIR/continuum-<uid>/continuumd.sock ($TMPDIR defaulting
//     to /tmp), a folder the daemon creates 0700 and refuses to use if
//     someone else made it first.
func Socket() string {
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		return filepath.Join(dir, "continuum", SocketName)
	}
	uid := os.Getuid()
	run := filepath.Join("/run/user", strconv.Itoa(uid))
	if CheckPrivate(run) == nil {
		return filepath.Join(run, "continuum", SocketName)
	}
	return filepath.Join(os.TempDir(), "continuum-"+strconv.Itoa(uid), SocketName)
}

// StateDir is $XDG_STATE_HOME/continuum, or ~/.local/state/continuum when
// XDG_STATE_HOME is unset (the XDG default).
func StateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "continuum")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "continuum")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("continuum-state-%d", os.Getuid()))
}

// CheckPrivate reports an error unless dir is a folder (not a link) owned by
// this user with no access for group or others: the folder, not a socket's
// mode, is what keeps other local users out on every Unix.
func CheckPrivate(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a folder", dir)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: cannot read its owner", dir)
	}
	// A shared folder (/tmp, /var/tmp: other-writable, usually sticky) is
	// never to be made private, which would break every other program
	// using it: the fix is a folder of one's own inside it, which the
	// daemon creates 0700. Only a folder that is this user's alone and
	// merely too open is worth a chmod.
	mode := fi.Mode()
	if mode&os.ModeSticky != 0 || mode.Perm()&0o002 != 0 {
		return fmt.Errorf("%s is a shared folder (mode %s); the socket needs a private folder of its own: put it in a sub-folder, e.g. --socket %s, which is created 0700 (never chmod a shared folder)",
			dir, modeString(mode), filepath.Join(dir, "continuum-"+strconv.Itoa(os.Getuid()), SocketName))
	}
	if int(st.Uid) != os.Getuid() {
		return fmt.Errorf("%s belongs to uid %d, not to this user (uid %d); the socket needs a folder of this user's own, e.g. --socket %s", dir, st.Uid, os.Getuid(), privateExample())
	}
	if perm := mode.Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s has mode %04o; it must be private to its owner (chmod 700 %s if it is yours alone, or put the socket in a new folder, e.g. --socket %s)", dir, perm, dir, privateExample())
	}
	return nil
}

// modeString writes a folder's permission bits in octal with the sticky bit
// as it is usually written (1777).
func modeString(m os.FileMode) string {
	n := uint32(m.Perm())
	if m&os.ModeSticky != 0 {
		n |= 0o1000
	}
	return fmt.Sprintf("%04o", n)
}

// privateExample is a socket path in a folder the daemon would create for
// this user.
func privateExample() string {
	return filepath.Join(os.TempDir(), "continuum-"+strconv.Itoa(os.Getuid()), SocketName)
}
