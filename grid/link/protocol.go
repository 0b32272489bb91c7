package link

import "github.com/continuum-grid/continuum/ipc/msgrpc"

// Peer is the other end of an established link (hello answered).
type Peer struct {
	ID     string // its peer id (verified by TLS pinning)
	Circle string // the circle this install trusts it in
	Epoch  uint64 // its log epoch, from the hello
}

// A Protocol runs over one long-lived bidirectional stream per link, opened
// by the link layer after the hello (its first message names the protocol).
// Attach is called once per link-up with the stream's msgrpc.Conn, not yet
// started; it returns the handler for requests and notifications the peer
// sends on that stream, and the link layer then calls conn.Start(h). The
// link layer closes conn when the link goes down (untrust, peer gone,
// shutdown) and then calls detach. Both calls may come from any goroutine;
// Attach must not block.
type Protocol interface {
	Name() string // e.g. "repl"
	Attach(p Peer, conn *msgrpc.Conn) (h msgrpc.Handler, detach func())
}
