// Package airc is the airc log (docs/PROTOCOL.md, docs/DURABILITY.md): the durable, ordered, signed
// record of every broadcast event, in the daemon's one bbolt file.
//
// # What it holds
//
// Each event is stored once, under its local seq (1, 2, 3… in append order on
// this install), as its msgpack envelope including seq and sig. Indexes beside
// it give: dedupe by (origin, id); each origin's chain per channel (originSeq
// high-water and the hash of that event, holes below it, forks); the transcript
// of each channel in (lamport, id) order for Replay; durable cursors; the
// lamport clock; the epoch; per-channel counters; and a bounded record of
// refused events with typed reasons. All buckets are named "airc/…". The
// dedupe, chain-slot and transcript entries of local appends are written in
// batches of a few hundred (see Durability); the meta bucket records the seq
// up to which they are all written (layout version 2).
//
// Local events come in through Append, which stamps and signs them with this
// install's key; foreign events through Ingest, which checks the origin's
// signature before anything else and then its chain (IngestBatch and
// AdmitBatch do the same for a batch: signatures checked in parallel, one
// wait for the commits, an event already held answered as a duplicate
// without a signature check). The signed bytes and the
// event hash are specified in canonical.go and docs/CANONICAL.md, pinned by
// golden vectors.
//
// # Durability
//
// An acknowledged event is on disk. Append and Ingest return without error
// only after the bbolt transaction that holds the event has committed, and a
// bbolt commit returns only after fdatasync of the data pages and then of the
// meta page (the log never sets bbolt's NoSync). OnCommit sees an event only
// after that point, so nothing delivered live can be lost either. After a
// crash at any moment — kill -9, power loss on a disk that honours fsync —
// every acknowledged event is in the file exactly once, the file opens
// cleanly, and the log resumes after the last committed seq. An append in
// flight at the crash is either wholly there (its record, its counters, the
// clock, its chain head, and its index entries — written or derived at Open,
// below) or wholly absent: a transaction is all or nothing. A caller that saw
// no answer retries with the same id; dedupe makes that safe.
//
// The dedupe, slot and transcript entries of a local append are not written
// with its commit but with a later one, 256 events at a time (indexEvery):
// each of those indexes is its own B-tree, and writing a leaf and its branch
// pages in each of them per commit was two thirds of the pages a small commit
// wrote. They are derived data — every entry follows from the stored record —
// so this moves no promise: until they are written they are served from
// memory (dedupe, Get and the chain checks look there first; Replay and
// retention first make the commit that writes them), and after a crash Open
// reads the events above the recorded high-water (kIndexed) and writes the
// entries any of them lacks before it takes appends. Received events (Ingest)
// get theirs in their own commit. The bbolt file runs with NoFreelistSync:
// the list of free pages is not written with each commit but rebuilt by Open
// (about a second per GB), which crash safety never depended on.
//
// Appends are group-committed: one commit goroutine takes everything queued,
// writes it in one transaction with one fsync, calls OnCommit with the batch
// in seq order, and only then answers the waiters. There is no fixed timer;
// while one batch is being synced the next accumulates, so throughput grows
// with concurrency and a lone append waits for just one fsync. After a
// commit the goroutine waits, at most as long as that commit took (1 ms at
// most), until as many appends are queued as it just answered plus those
// that queued meanwhile, so a closed loop of appenders shares one commit
// instead of two halves taking turns; a lone appender is never held, and a
// Flush, a rejection record or Close ends the wait. Signing happens in
// the appending goroutines, in parallel; the commit goroutine only writes.
// If a commit fails (disk full, I/O error, read-only file), the transaction
// rolls back, every waiter of that batch (and of anything admitted on top of
// it) gets an api.Error with code unavailable, the in-memory clock, chain and
// seq state restart from what is committed, and the log takes later appends as
// soon as the store works again.
//
// Acks of durable cursors are batched: Ack returns at once and the cursor is
// written with the next group commit (Flush waits for it). A crash can lose the
// newest acks, never events; the lost acks mean redelivery, which
// at-least-once delivery allows.
//
// Retention (per channel, by count and age) drops event bodies and transcript
// entries, never the (origin, id) or chain indexes, so a dropped event that
// comes back through replication is recognised as a duplicate.
//
// # Order and clocks
//
// A local append takes lamport clock+1; a received event keeps its own
// lamport and moves the clock to max(clock, lamport). A received lamport above
// MaxLamport (2^53−1) or more than Options.MaxLamportSkew ahead of the clock is
// refused. Live delivery (OnCommit) and Read are in seq order; Replay is in
// (lamport, id) order.
//
// # Epoch
//
// The file carries an epoch, 1 when created. BumpEpoch increments it; the
// kernel calls it when the file is found older than its peers expect (a state
// dir restored from a backup or copied to another machine would otherwise hand
// out again seqs that peers already hold positions for). Durable cursors store
// the epoch they were acknowledged in; a cursor from another epoch is resumed
// from the start, and subscribers dedupe by (origin, id). Nothing bumps the
// epoch automatically yet.
package airc
