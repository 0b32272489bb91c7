package replicate

import (
	"github.com/continuum-grid/continuum/api"
	"github.com/vmihailenco/msgpack/v5"
)

// The methods of the repl protocol. Both ends serve both.
const (
	// methodState answers stateResult: the server's epoch, head, the vectors
	// of the channels it shares with the caller, and the seq it last pulled
	// from the caller.
	methodState = "repl/state"
	// methodPull answers pullResult: stored envelopes after a seq.
	methodPull = "repl/pull"
)

// position is a place in one peer's log: a seq, valid in an epoch.
type position struct {
	Epoch uint64 `msgpack:"epoch"`
	Seq   uint64 `msgpack:"seq"`
}

type stateResult struct {
	Epoch uint64 `msgpack:"epoch"`
	Head  uint64 `msgpack:"head"`
	// Channels is {channel: {origin: highest originSeq}}.
	Channels map[string]map[string]uint64 `msgpack:"channels"`
	// Pulled is the furthest the server has pulled in the caller's log (in
	// the latest epoch it pulled from), if it has pulled from it before.
	Pulled *position `msgpack:"pulled,omitempty"`
}

// have is what the puller holds of one chain: everything up to HW except
// the Holes. A resync pull gives these so the server skips what it holds.
type have struct {
	Channel string      `msgpack:"channel"`
	Origin  string      `msgpack:"origin"`
	HW      uint64      `msgpack:"hw"`
	Holes   [][2]uint64 `msgpack:"holes,omitempty"`
}

type pullParams struct {
	After    uint64 `msgpack:"after"`
	Epoch    uint64 `msgpack:"epoch"`  // the epoch After is valid in
	WaitMs   int64  `msgpack:"waitMs"` // long-poll: wait this long for a commit when nothing is there
	Max      int    `msgpack:"max"`
	MaxBytes int    `msgpack:"maxBytes"`
	// Have, when given, is kept by the serving side for the rest of the
	// stream: events the puller already holds are skipped there.
	Have []have `msgpack:"have,omitempty"`
}

type pullResult struct {
	Epoch uint64 `msgpack:"epoch"`
	Head  uint64 `msgpack:"head"`
	// Last is the seq the server read up to (events it skipped included):
	// the next pull's After.
	Last uint64 `msgpack:"last"`
	// Stale: After is not a position in the server's log (its epoch
	// changed, or After is beyond its head): resync.
	Stale  bool     `msgpack:"stale,omitempty"`
	Events [][]byte `msgpack:"events"` // stored envelopes, in the server's seq order
}

// decode reads a protocol message, reporting a bad one as invalid_argument.
func decode(b []byte, dst any) error {
	if err := msgpack.Unmarshal(b, dst); err != nil {
		return api.Errorf(api.CodeInvalidArgument, "repl: malformed message: %v", err)
	}
	return nil
}
