package replicate

import (
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// bucket holds, per peer id, the position this install has pulled up to in
// that peer's log: epoch (8 bytes) then seq (8 bytes), big-endian.
var bucket = []byte("grid/repl")

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

// storePosition writes p for peer. Within one epoch it never moves a
// position back (an older link's last write may come after a newer one's).
func storePosition(db *bolt.DB, peer string, p position) error {
	return db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		if v := b.Get([]byte(peer)); len(v) == 16 && binary.BigEndian.Uint64(v) == p.Epoch && binary.BigEndian.Uint64(v[8:]) > p.Seq {
			return nil
		}
		v := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(make([]byte, 0, 16), p.Epoch), p.Seq)
		return b.Put([]byte(peer), v)
	})
}

// resetPosition forgets peer's position (a resync starts from the start).
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
