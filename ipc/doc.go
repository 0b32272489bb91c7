// Package ipc is the home of continuum's transports; the code lives in its
// sub-packages:
//
//   - msgrpc: MessagePack-RPC framing (bounded, never trusting a length header)
//     and a bidirectional connection with concurrent request dispatch.
//   - unixsock: the daemon's Unix socket (path, permissions, stale-file and
//     second-daemon handling, systemd socket activation, SO_PEERCRED).
//   - server: the socket server that hands each connection to an api.Backend.
//   - client: the Go client, over the socket or in-process, with one API.
//
// ipc knows no kernel: it talks to the interfaces of package api only.
package ipc
