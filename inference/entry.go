package inference

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/llama"
)

// entry is one registered model: loading, loaded, or failed, with its pool of
// contexts.
type entry struct {
	name, path string

	ready chan struct{} // closed when loading ends
	err   error         // the load's error; set before ready closes
	model *llama.Model  // set before ready closes, on success
	info  api.ModelInfo

	// slots holds one token per running generation (capacity: the pool
	// size). Goroutines blocked sending on a channel are queued FIFO, so
	// waiting requests get a context in arrival order.
	slots    chan struct{}
	admitted atomic.Int32  // running + waiting, bounded by pool + queue
	active   atomic.Int32  // running
	gone     chan struct{} // closed at unload
	goneOnce sync.Once

	idleMu sync.Mutex
	idle   []*llama.Context // contexts made so far and not in use

	digest digest // the model file's sha256, for alloys (alloy.go)
}

func newEntry(name, path string, contexts int) *entry {
	return &entry{name: name, path: path, ready: make(chan struct{}), slots: make(chan struct{}, contexts), gone: make(chan struct{})}
}

func (e *entry) loaded(m *llama.Model) {
	in := m.Info()
	e.model = m
	e.info = api.ModelInfo{
		NCtxTrain:   in.NCtxTrain,
		NEmbd:       in.NEmbd,
		NLayer:      in.NLayer,
		NVocab:      in.NVocab,
		SizeBytes:   in.SizeBytes,
		Description: in.Description,
		OnGPU:       in.OnGPU,
	}
	close(e.ready)
}

func (e *entry) fail(err error) {
	e.err = err
	close(e.ready)
}

// wait blocks until the load has ended and returns its error.
func (e *entry) wait(ctx context.Context) error {
	select {
	case <-e.ready:
		return e.err
	case <-ctx.Done():
		return api.AsError(ctx.Err())
	}
}

func (e *entry) isReady() bool {
	select {
	case <-e.ready:
		return e.err == nil
	default:
		return false
	}
}

func (e *entry) describe() api.LoadedModel {
	active := int(e.active.Load())
	return api.LoadedModel{Name: e.name, Path: e.path, Info: e.info, Active: active, Queued: max(0, int(e.admitted.Load())-active)}
}

// acquire waits for a free context, in arrival order, unless the queue is
// full. release gives the context back.
func (e *entry) acquire(ctx context.Context, opts Options) (cx *llama.Context, release func(), err error) {
	limit := int32(opts.ContextsPerModel + opts.MaxQueued)
	if e.admitted.Add(1) > limit {
		e.admitted.Add(-1)
		return nil, nil, api.Errorf(api.CodeResourceExhausted, "model %q is busy: %d generations running and %d waiting (the limit); try again later", e.name, opts.ContextsPerModel, opts.MaxQueued)
	}
	select {
	case e.slots <- struct{}{}:
	case <-ctx.Done():
		e.admitted.Add(-1)
		return nil, nil, api.AsError(ctx.Err())
	case <-e.gone:
		e.admitted.Add(-1)
		return nil, nil, api.Errorf(api.CodeUnavailable, "model %q was unloaded", e.name)
	}
	e.idleMu.Lock()
	if n := len(e.idle); n > 0 {
		cx = e.idle[n-1]
		e.idle = e.idle[:n-1]
	}
	e.idleMu.Unlock()
	if cx == nil {
		cx, err = e.model.NewContext(llama.ContextOptions{NCtx: opts.NCtx, NBatch: opts.NBatch, NThreads: opts.NThreads})
		if err != nil {
			<-e.slots
			e.admitted.Add(-1)
			return nil, nil, apiError(err)
		}
	}
	e.active.Add(1)
	return cx, func() {
		e.idleMu.Lock()
		e.idle = append(e.idle, cx)
		e.idleMu.Unlock()
		e.active.Add(-1)
		<-e.slots
		e.admitted.Add(-1)
	}, nil
}

// close fails waiting requests and frees the model once running
// generations have finished (llama.Model.Close closes its contexts).
func (e *entry) close() {
	e.goneOnce.Do(func() { close(e.gone) })
	if e.model != nil {
		e.model.Close()
	}
}
