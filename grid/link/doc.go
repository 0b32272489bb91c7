// Package link keeps one authenticated QUIC connection to each trusted peer
// of the grid. It promises that a link is only reported up after TLS 1.3 has
// pinned the peer's identity key on both sides and an application hello has
// been answered, that there is at most one live connection per peer, that
// links to trusted peers with known addresses are re-established by
// themselves (with capped, jittered backoff), and that every registered
// Protocol gets one long-lived msgrpc stream per link-up, closed when the
// link goes down.
package link
