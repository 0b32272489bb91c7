// Package contract runs the grid's contracts (DESIGN §8 "Contracts",
// docs/CONTRACTS.md): the bid loop over the eight contract:* classes and
// the tracker that folds them from the airc log.
//
// What it promises: the tracker is a view over the log. Every committed
// contract:* event, local or replicated, is folded per contract in
// transcript order (lamport, id, origin) by Fold, a pure function, so every
// peer holding the same events reconstructs the same chain and refuses the
// same events with the same typed reasons; nothing is refused at log
// admission (a gap in an origin's chain would stall replication). Each
// actor emits its own events, signed by its install. Every state has a
// deadline driven by timers set from the tracker's deadlines (the log is
// never polled), and every ending releases the bidder's reservation.
package contract
