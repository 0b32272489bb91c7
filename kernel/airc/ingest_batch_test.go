package airc

import (
	"context"
	"errors"
	"testing"

	"github.com/continuum-grid/continuum/api"
)

// TestIngestBatch: a batch gets the same outcomes Ingest gives one by one
// (in slice order: no gap for a chain given in order), a bad event in the
// middle is refused with its reason and does not hold up the rest, and the
// whole batch shares group commits.
func TestIngestBatch(t *testing.T) {
	e := newEnv(t, Options{})
	p := newPeer(t)
	list := make([]api.Event, 0, 300)
	for i := range 300 {
		list = append(list, p.next(t, "general", uint64(i+1)))
	}
	forged := list[100]
	forged.Sig = append([]byte(nil), forged.Sig...)
	forged.Sig[0] ^= 1
	relabelled := list[101]
	relabelled.Class = "chat:edited"
	far := p.event(t, "other", 1, Hash{}, 1<<40, nil)
	dup := list[5]
	all := append(append([]api.Event{}, list[:100]...), forged, relabelled, far, dup)
	all = append(all, list[100:]...)

	res := e.log.IngestBatch(context.Background(), all)
	if len(res) != len(all) {
		t.Fatalf("%d results for %d events", len(res), len(all))
	}
	count := map[IngestOutcome]int{}
	reasons := map[RejectReason]int{}
	for i, r := range res {
		count[r.Outcome]++
		if r.Outcome == IngestRejected {
			var re *RejectError
			if !errors.As(r.Err, &re) {
				t.Fatalf("result %d: rejected without a RejectError: %v", i, r.Err)
			}
			reasons[re.Reason]++
		} else if r.Err != nil {
			t.Fatalf("result %d: %v", i, r.Err)
		}
	}
	if count[IngestAppended] != 300 || count[IngestDuplicate] != 1 || count[IngestRejected] != 3 || count[IngestGap] != 0 {
		t.Fatalf("outcomes %v", count)
	}
	if reasons[RejectBadSignature] != 2 || reasons[RejectLamportBound] != 1 {
		t.Fatalf("reasons %v", reasons)
	}
	hw, err := e.log.HighWater()
	if err != nil || hw[p.id.PeerID()]["general"] != 300 {
		t.Fatalf("high-water %v %v", hw, err)
	}
	e.mu.Lock()
	calls := e.calls
	e.mu.Unlock()
	if calls > 50 {
		t.Errorf("300 events took %d commits: the batch did not share them", calls)
	}
	rej, err := e.log.Rejections(0, 10)
	if err != nil || len(rej) != 3 {
		t.Fatalf("rejection records %v %v", rej, err)
	}
}

// TestIngestBatchCanceled: an ended context answers every result with it.
func TestIngestBatchCanceled(t *testing.T) {
	e := newEnv(t, Options{})
	p := newPeer(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := e.log.IngestBatch(ctx, []api.Event{p.next(t, "general", 1)})
	if !errors.Is(res[0].Err, context.Canceled) {
		t.Fatalf("got %v", res[0].Err)
	}
}
