// Package dispatch makes each install an autonomous router for grid
// commands (DESIGN §8 "Manifests", "Dispatch"; docs/GRID.md).
//
// It publishes this install's manifest (presence:peer-manifest, a signed
// broadcast event on channel global, so replication carries it) at start,
// on every change of its offers and as a heartbeat, and withdraws offers
// that go (presence:capability-withdrawn). It follows the log to keep the
// capability index: capability → live peers, their terms, load and circle;
// a peer whose manifest is older than the stale interval is not routed to,
// and past the gone interval it leaves the index.
//
// It is the kernel's GridRouter: a command routed to the grid goes to a
// peer picked by capability, circle (the trust store's, never the
// manifest's) and strategy, with a deterministic tie-break on peer id, over
// the "cmd" protocol stream of the link. The request carries the deadline
// and the forwardedBy list, so a request that comes back to an install it
// passed is refused (a loop). Failures are typed: no_matching_peer
// {considered}, peer_unreachable {peerId, alternates}, no_accepting_peer
// {tried}. Refusals are retried with the next peer (nothing ran); a peer
// lost mid-call is retried elsewhere only for idempotent commands.
//
// The receiving side admits work by its policy (grid/policy): accepted
// circles, allowed commands, max concurrent jobs and load ceiling, and
// runs it in the kernel as an in-process client; the events a job emits for
// its caller (the inference token stream) go back over the stream and are
// re-emitted on the caller's install as the caller's.
package dispatch
