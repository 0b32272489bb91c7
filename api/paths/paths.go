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
	if int(st.Uid) != os.Getuid() {
		return fmt.Errorf("%s belongs to uid %d, not to this user (uid %d)", dir, st.Uid, os.Getuid())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s has mode %04o; it must be private to its owner (chmod 700 %s)", dir, perm, dir)
	}
	return nil
}
