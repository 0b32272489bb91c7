// Package persona is the daemon's persona service: AI participants that are
// entities of the kernel's bbolt file (bucket "persona/entities"), each with
// an Ed25519 identity of its own, reading their rooms through durable
// cursors over chat:posted and answering through commands/execute
// inference/generate (docs/PERSONAS.md). It is hosted in the kernel
// (k.Host), does not speak ipc, and never calls llama/ or inference/: a
// generation is a command like any other, which the kernel may run here or
// route to a peer.
//
// What it promises:
//
//   - A persona's id is the peer id of its own key (stored 0600 under the
//     state dir's personas/ folder); every event it posts (its chat:posted
//     replies, its persona:responded records) has that id as sender and
//     origin and is signed by that key (kernel.EmitAs), so any peer verifies
//     it through the log's ordinary ingest path.
//   - Each persona runs in its own goroutine with its own circuit breaker:
//     a failing persona (its model missing, say) pauses itself, never
//     another. An idle persona blocks on its subscriptions: no timers, no
//     polling.
//   - A message is acknowledged on the persona's cursor only once it is
//     handled (its reply committed, or a gate said no, or the reply failed).
//     A reply's event id is derived from the persona and the message, so a
//     message delivered again after a crash is never answered twice: the
//     persona sees its reply in the log and skips it, and were two attempts
//     to race, the log's dedupe by (origin, id) keeps one.
//   - persona/* methods check every field before anything is written:
//     each failure is invalid_argument naming the field.
package persona
