package api

import "context"

// Caller is who is on the other end of a connection, read once when it opens.
type Caller struct {
	Transport string // "unix", "ws" or "inproc"
	UID       int    // -1 when unknown
	GID       int    // -1 when unknown
	PID       int    // -1 when unknown
}

// Peer is the kernel's handle on one connected client, whatever carries it.
// Both methods are safe for concurrent use.
type Peer interface {
	// Notify sends a notification. It may block while the transport is busy,
	// so the kernel calls it only from goroutines that may wait (one per
	// subscription), never while holding a shared lock.
	Notify(method string, params any) error
	// Call sends a request to the client (commands/handle) and waits for its
	// result, or for ctx.
	Call(ctx context.Context, method string, params any) (Params, error)
}

// Session is one client's conversation with the kernel.
type Session interface {
	// ID is the client id the kernel gave this connection (it appears as
	// sender and caller).
	ID() string
	// Handle serves one request. It is called concurrently.
	Handle(ctx context.Context, method string, params Params) (any, error)
	// Close ends the session: its subscriptions and commands go away and its
	// pending calls fail with unavailable.
	Close()
}

// Backend opens sessions: the kernel implements it, transports call it.
type Backend interface {
	Open(peer Peer, caller Caller) (Session, error)
}
