package replicate

import (
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// bucket holds, per peer id, the position this install has pulled up to in
// that peer's log: epoch (8 bytes) then seq (8 bytes), big-endian. Under
// seenKey(peer) it keeps the furthest position ever reached in each epoch's
// latest run (a resync moves the position back; this never moves back
// within an epoch): what repl/state tells the peer, so that a peer restored
// from an older copy learns it, whatever this side's resync did meanwhile.
var bucket = []byte("grid/repl")

func seenKey(peer string) string { return "seen\x00" + peer }

func loadPosition(db *bolt.DB, peer string) (position, bool, error) {
	var p position
	var ok bool
	err := db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		if v := b.Get([]byte(peer)); len(v) == 16 {
			p = position{Epoch: binary.BigEndian.Uint64(v), Seq: binary.BigEndian.Uint64(v[8:])}
			ok = true
		}
		return nil
	})
	return p, ok, err
}

// storePosition writes p for peer, and as its seen position. Within one
// epoch it never moves either back (an older link's last write may come
// after a newer one's).
func storePosition(db *bolt.DB, peer string, p position) error {
	return db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		v := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(make([]byte, 0, 16), p.Epoch), p.Seq)
		for _, k := range []string{peer, seenKey(peer)} {
			if old := b.Get([]byte(k)); len(old) == 16 && binary.BigEndian.Uint64(old) == p.Epoch && binary.BigEndian.Uint64(old[8:]) > p.Seq {
				continue
			}
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
}

// loadSeen is the furthest position reached in peer's log (see bucket).
func loadSeen(db *bolt.DB, peer string) (position, bool, error) {
	return loadPosition(db, seenKey(peer))
}

// resetPosition forgets peer's position (a resync starts from the start);
// the seen position stays.
func resetPosition(db *bolt.DB, peer string, epoch uint64) error {
	return db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		v := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(make([]byte, 0, 16), epoch), 0)
		return b.Put([]byte(peer), v)
	})
}
