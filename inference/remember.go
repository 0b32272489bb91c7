package inference

import (
	"context"
	"encoding/json"
	"errors"
	"os"

	"github.com/continuum-grid/continuum/api"
	bolt "go.etcd.io/bbolt"
)

// A restart reloads the models that were loaded: each successful
// inference/load is remembered in the entity tier (a bucket of the state
// file, keyed by the model's name) and forgotten on inference/unload, and
// Host starts loading the remembered ones in the background. Models loaded
// implicitly (generate naming a GGUF path) are not remembered: nobody asked
// for them to stay. A remembered model that cannot load at start (no GPU
// and no --allow-cpu, libraries missing) stays remembered, with a warning
// that says how to load it by hand, so that the next start with the fix
// reloads it; one whose file is gone is forgotten, with a warning.

var modelsBucket = []byte("inference.models")

// remembered is one stored model.
type remembered struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

func (s *Service) remember(name, path string) {
	if s.k == nil || s.opts.NoReload {
		return
	}
	b, _ := json.Marshal(remembered{Name: name, Path: path})
	err := s.k.DB().Update(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(modelsBucket)
		if err != nil {
			return err
		}
		return bk.Put([]byte(name), b)
	})
	if err != nil {
		s.log.Warn("cannot remember the model for the next start", "name", name, "err", err)
	}
}

func (s *Service) forget(name string) {
	if s.k == nil {
		return
	}
	err := s.k.DB().Update(func(tx *bolt.Tx) error {
		if bk := tx.Bucket(modelsBucket); bk != nil {
			return bk.Delete([]byte(name))
		}
		return nil
	})
	if err != nil {
		s.log.Warn("cannot forget the model", "name", name, "err", err)
	}
}

func (s *Service) rememberedModels() []remembered {
	var out []remembered
	_ = s.k.DB().View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(modelsBucket)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(k, v []byte) error {
			var r remembered
			if json.Unmarshal(v, &r) == nil && r.Name == string(k) && r.Path != "" {
				out = append(out, r)
			}
			return nil
		})
	})
	return out
}

// reload loads the remembered models, one after another, until done or
// Close. It reports what it did in the daemon log only: there is no client
// to answer.
func (s *Service) reload(ctx context.Context, ms []remembered) {
	defer close(s.reloaded)
	lib, err := s.library()
	if err != nil {
		for _, m := range ms {
			s.log.Warn("model loaded before the restart is not reloaded", "name", m.Name, "path", m.Path, "err", err,
				"fix", "fix the cause and restart continuumd, or load it: continuum model load "+m.Path+" --name "+m.Name)
		}
		return
	}
	for _, m := range ms {
		if ctx.Err() != nil {
			return
		}
		if _, err := os.Stat(m.Path); errors.Is(err, os.ErrNotExist) {
			s.log.Warn("model loaded before the restart is gone from disk; forgetting it", "name", m.Name, "path", m.Path)
			s.forget(m.Name)
			continue
		}
		s.log.Info("reloading a model loaded before the restart", "name", m.Name, "path", m.Path)
		if _, err := s.loadModel(ctx, lib, m.Name, m.Path); err != nil && !errors.Is(err, &api.Error{Code: api.CodeAlreadyExists}) {
			s.log.Warn("model loaded before the restart did not reload", "name", m.Name, "path", m.Path, "err", err,
				"fix", "continuum model load "+m.Path+" --name "+m.Name)
		}
	}
}
