// Package replicate copies the airc log between linked peers: the "repl"
// protocol that runs over one stream of each grid link (grid/link.Protocol).
//
// It promises, for every channel both sides share (Options.Channels):
//
//   - Each side pulls from the other everything the other holds that it does
//     not, first after the last seq it pulled from that peer (remembered in
//     the bbolt bucket "grid/repl", keyed by the peer's epoch), then live:
//     the serving side answers a pull as soon as its log commits more.
//   - A peer whose epoch changed, or whose head went back below the
//     remembered seq (a state dir restored from an older copy), is never
//     trusted by seq: it is pulled from the start, filtered by the puller's
//     vectors, so nothing is missed and nothing is taken twice. An install
//     that finds a peer holding more of its own log than it does bumps its
//     own epoch, so its re-issued seqs are not taken for the old ones.
//   - Every received event goes through airc's Ingest (signature against the
//     origin's key first, dedupe by (origin, id), the lamport bound, forks
//     kept and flagged); events relayed from third origins verify the same.
//     A refused event is counted by reason and never holds up the batch.
//   - A pull that gets no answer in time (a stalled peer), or a bad answer,
//     is counted and asked again later with backoff; the range comes from
//     any other peer that holds it, since each link pulls independently. A
//     link that dies mid-batch loses nothing: the remembered seq only moves
//     past events that are committed here.
//   - Batches are bounded in events and bytes, far under the msgrpc message
//     limit.
//
// Counters per peer and reason are in Stats. See docs/GRID.md, "Replication".
package replicate
