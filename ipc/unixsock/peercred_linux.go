package unixsock

import (
	"fmt"
	"net"
	"syscall"

	"github.com/continuum-grid/continuum/api"
)

// PeerCred returns who is on the other end of conn, as the kernel recorded it
// when the peer connected (SO_PEERCRED): the peer cannot lie about it.
func PeerCred(conn *net.UnixConn) (api.Caller, error) {
	c := api.Caller{Transport: "unix", UID: -1, GID: -1, PID: -1}
	raw, err := conn.SyscallConn()
	if err != nil {
		return c, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return c, fmt.Errorf("peer credentials: %w", err)
	}
	if credErr != nil {
		return c, fmt.Errorf("peer credentials: %w", credErr)
	}
	c.UID, c.GID, c.PID = int(cred.Uid), int(cred.Gid), int(cred.Pid)
	return c, nil
}
