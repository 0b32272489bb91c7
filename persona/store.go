package persona

import (
	"errors"
	"slices"
	"strings"

	"github.com/continuum-grid/continuum/api"
	"github.com/vmihailenco/msgpack/v5"
	bolt "go.etcd.io/bbolt"
)

// bucket holds the entities: persona id → msgpack of api.Persona.
var bucket = []byte("persona/entities")

type store struct{ db *bolt.DB }

func openStore(db *bolt.DB) (*store, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	})
	return &store{db: db}, err
}

func (s *store) list() ([]api.Persona, error) {
	var out []api.Persona
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(_, v []byte) error {
			var p api.Persona
			if err := msgpack.Unmarshal(v, &p); err != nil {
				return err
			}
			out = append(out, p)
			return nil
		})
	})
	slices.SortFunc(out, func(a, b api.Persona) int { return strings.Compare(a.Name, b.Name) })
	return out, err
}

// put stores p, refusing a name another persona holds; create also refuses
// an install already at MaxPersonas. One transaction, so two creates of one
// name cannot both pass.
func (s *store) put(p *api.Persona, create bool) error {
	v, err := msgpack.Marshal(p)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		n := 0
		err := b.ForEach(func(k, v []byte) error {
			n++
			var o api.Persona
			if err := msgpack.Unmarshal(v, &o); err != nil {
				return err
			}
			if string(k) != p.ID && strings.EqualFold(o.Name, p.Name) {
				return api.Errorf(api.CodeAlreadyExists, "a persona named %q exists (%s)", o.Name, o.ID)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if create && n >= api.MaxPersonas {
			return api.Errorf(api.CodeResourceExhausted, "this install has %d personas, the most it keeps", n)
		}
		if !create && b.Get([]byte(p.ID)) == nil {
			return api.Errorf(api.CodeNotFound, "no persona %q", p.ID)
		}
		return b.Put([]byte(p.ID), v)
	})
}

func (s *store) delete(id string) (bool, error) {
	found := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		found = b.Get([]byte(id)) != nil
		return b.Delete([]byte(id))
	})
	return found, err
}

var errNotFound = errors.New("not found")
