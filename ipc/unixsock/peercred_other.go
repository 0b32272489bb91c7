//go:build !linux

package unixsock

import (
	"errors"
	"net"

	"github.com/continuum-grid/continuum/api"
)

// PeerCred is only implemented on Linux (SO_PEERCRED); elsewhere the caller
// is unknown, which the default authorization policy refuses.
func PeerCred(conn *net.UnixConn) (api.Caller, error) {
	return api.Caller{Transport: "unix", UID: -1, GID: -1, PID: -1}, errors.New("peer credentials are not supported on this system")
}
