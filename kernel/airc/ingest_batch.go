package airc

import (
	"context"
	"errors"
	"runtime"
	"sync"

	"github.com/continuum-grid/continuum/api"
)

// IngestResult is what Ingest returned for one event of a batch.
type IngestResult struct {
	Event   api.Event
	Outcome IngestOutcome
	Err     error
}

// ingestParallelMin is the batch size from which AdmitBatch verifies
// signatures on several goroutines; below it the hand-off costs more than
// the verification.
const ingestParallelMin = 16

// IngestBatch ingests evs as Ingest would, one result per event in the same
// order, but waits for the commits once for the whole batch: see
// AdmitBatch. If ctx ends first, the results not yet answered carry the
// context error; those events may still be committed (ingesting them again
// is a duplicate).
func (l *Log) IngestBatch(ctx context.Context, evs []api.Event) []IngestResult {
	if err := ctx.Err(); err != nil {
		out := make([]IngestResult, len(evs))
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	return l.AdmitBatch(evs)(ctx)
}

// AdmitBatch runs Ingest's checks on evs and queues them for commit, and
// returns without waiting for the commit: wait answers one result per event,
// in order, as Ingest would, once they are committed. The signatures are
// checked in parallel (on up to GOMAXPROCS goroutines); the events are then
// admitted in slice order, so one origin's chain given in originSeq order
// appends without gaps, and batches admitted one after another are decided
// in that order too. A caller can so verify the next batch while the commit
// of this one is written. One refused event never holds up the others.
//
// An event whose (origin, id) the log already holds is answered as a
// duplicate before its signature is checked: nothing of it is stored or
// trusted, and relays, which bring most events twice, cost a lookup instead
// of a verification.
func (l *Log) AdmitBatch(evs []api.Event) (wait func(ctx context.Context) []IngestResult) {
	prepared := make([]foreign, len(evs))
	held := make([]bool, len(evs))
	for i := range evs {
		held[i] = l.holds(evs[i].Origin, evs[i].ID)
	}
	prepare := func(i int) {
		if held[i] {
			prepared[i] = foreign{ev: evs[i]}
			return
		}
		prepared[i] = prepareForeign(evs[i])
	}
	workers := min(runtime.GOMAXPROCS(0), len(evs)/ingestParallelMin)
	if workers <= 1 {
		for i := range evs {
			prepare(i)
		}
	} else {
		var wg sync.WaitGroup
		chunk := (len(evs) + workers - 1) / workers
		for lo := 0; lo < len(evs); lo += chunk {
			hi := min(lo+chunk, len(evs))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := lo; i < hi; i++ {
					prepare(i)
				}
			}()
		}
		wg.Wait()
	}
	adm := make([]admitted, len(evs))
	for i := range prepared {
		if held[i] {
			adm[i] = l.admitHeld(&prepared[i])
			continue
		}
		adm[i] = l.admitForeign(&prepared[i])
	}
	return func(ctx context.Context) []IngestResult {
		out := make([]IngestResult, len(evs))
		for i := range adm {
			out[i].Event, out[i].Outcome, out[i].Err = l.finishForeign(ctx, adm[i])
		}
		return out
	}
}

// holds reports whether (origin, id) is queued or stored. A malformed
// origin or id is never held (the full checks then refuse it).
func (l *Log) holds(origin, id string) bool {
	if origin == "" || id == "" {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	dup, stored, err := l.lookupLocked(idKey(origin, id))
	return err == nil && (dup != nil || stored != nil)
}

// admitHeld answers an event found held by holds as the duplicate it is.
func (l *Log) admitHeld(f *foreign) admitted {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return admitted{err: errClosed()}
	}
	dup, stored, err := l.lookupLocked(idKey(f.ev.Origin, f.ev.ID))
	switch {
	case err != nil:
		return admitted{err: unavailable("dedupe lookup", err)}
	case dup == nil && stored == nil:
		// Not there any more: only a failed commit drops queued events, and
		// its waiters were answered unavailable; so is this one.
		return admitted{err: unavailable("dedupe lookup", errGone)}
	}
	return admitted{outcome: IngestDuplicate, dup: dup, stored: stored}
}

var errGone = errors.New("the event it duplicated was rolled back")
