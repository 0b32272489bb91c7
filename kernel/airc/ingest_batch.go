package airc

import (
	"context"
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

// ingestParallelMin is the batch size from which IngestBatch verifies
// signatures on several goroutines; below it the hand-off costs more than
// the verification.
const ingestParallelMin = 16

// IngestBatch ingests evs as Ingest would, one result per event in the same
// order, but waits for the commits once for the whole batch: the signatures
// are checked in parallel (on up to GOMAXPROCS goroutines), the events are
// then admitted in slice order (so one origin's chain given in originSeq
// order appends without gaps), and they share group commits instead of
// paying one fsync each. One refused event never holds up the others.
//
// If ctx ends first, the results not yet answered carry the context error;
// those events may still be committed (ingesting them again is a duplicate).
func (l *Log) IngestBatch(ctx context.Context, evs []api.Event) []IngestResult {
	out := make([]IngestResult, len(evs))
	if err := ctx.Err(); err != nil {
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	prepared := make([]foreign, len(evs))
	workers := min(runtime.GOMAXPROCS(0), len(evs)/ingestParallelMin)
	if workers <= 1 {
		for i := range evs {
			prepared[i] = prepareForeign(evs[i])
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
					prepared[i] = prepareForeign(evs[i])
				}
			}()
		}
		wg.Wait()
	}
	adm := make([]admitted, len(evs))
	for i := range prepared {
		adm[i] = l.admitForeign(&prepared[i])
	}
	for i := range adm {
		out[i].Event, out[i].Outcome, out[i].Err = l.finishForeign(ctx, adm[i])
	}
	return out
}
