package airc

import (
	"encoding/binary"
	"fmt"

	"github.com/continuum-grid/continuum/api"
)

// Buckets of the airc log in the shared bbolt file. Every name starts with
// "airc/" so the entity tier and the class registry can live beside them.
var (
	bMeta        = []byte("airc/meta")         // schema version, epoch, lamport clock, head seq
	bEvents      = []byte("airc/events")       // seq (8 bytes BE) -> msgpack envelope incl. seq and sig
	bIDs         = []byte("airc/ids")          // origin 0 id -> seq: dedupe by (origin, id)
	bSlots       = []byte("airc/slots")        // origin 0 channel 0 originSeq -> seq|hash|prev: chain and fork checks
	bChains      = []byte("airc/chains")       // origin 0 channel -> high-water originSeq|hash of that event
	bHoles       = []byte("airc/holes")        // origin 0 channel 0 first -> last: originSeqs never received
	bTranscript  = []byte("airc/transcript")   // sub-bucket per channel: lamport|id 0 origin -> seq|ts
	bChannels    = []byte("airc/channels")     // channel -> counters (events, bytes, last seq, last lamport)
	bCursors     = []byte("airc/cursors")      // name -> epoch|seq
	bRejections  = []byte("airc/rejections")   // n (8 bytes BE) -> msgpack Rejection
	bForkOrigins = []byte("airc/fork-origins") // origin -> count (8 bytes BE): flagged origins
)

var allBuckets = [][]byte{bMeta, bEvents, bIDs, bSlots, bChains, bHoles, bTranscript, bChannels, bCursors, bRejections, bForkOrigins}

var (
	kVersion = []byte("version")
	kEpoch   = []byte("epoch")
	kLamport = []byte("lamport")
	kHead    = []byte("head")
	// kIndexed is the seq up to which every event has its dedupe, slot and
	// transcript entries; above it, Open writes those that are missing.
	kIndexed = []byte("indexed")
)

// schemaVersion is the layout version of the buckets; Open refuses a file
// written with a newer one. Layout 2 added kIndexed: local events above it
// may lack their index entries, which layout 1 code would not know to derive.
const schemaVersion = 2

// Field limits: the one set in api (see api.CheckName). IDs, channels and
// cursor names go into index keys with 0 as a separator, so they may not
// hold control characters.
const (
	MaxIDLen      = api.MaxEventIDLen
	MaxChannelLen = api.MaxChannelLen
	MaxClassLen   = api.MaxClassNameLen
	MaxCursorLen  = api.MaxDurableLen
)

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), v) }

func getU64(b []byte) uint64 {
	if len(b) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func idKey(origin, id string) []byte {
	k := make([]byte, 0, len(origin)+1+len(id))
	return append(append(append(k, origin...), 0), id...)
}

func chainKey(origin, channel string) string { return origin + "\x00" + channel }

func slotKey(origin, channel string, originSeq uint64) []byte {
	k := make([]byte, 0, len(origin)+len(channel)+10)
	k = append(append(append(append(k, origin...), 0), channel...), 0)
	return binary.BigEndian.AppendUint64(k, originSeq)
}

// transcriptKey orders a channel by (lamport, id); the origin only breaks the
// tie between two origins that chose the same id at the same lamport time.
func transcriptKey(lamport uint64, id, origin string) []byte {
	k := make([]byte, 0, 8+len(id)+1+len(origin))
	k = binary.BigEndian.AppendUint64(k, lamport)
	return append(append(append(k, id...), 0), origin...)
}

// checkName validates a name that goes into index keys.
func checkName(what, s string, max int) error {
	if err := api.NameProblem(s, max); err != nil {
		return fmt.Errorf("%s %v", what, err)
	}
	return nil
}
