package daemon_test

import (
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
)

// An in-process emitter can hand the kernel a payload msgpack cannot encode.
// A socket subscriber then misses that one event (reported as lagged) and
// keeps its subscription: the next event still arrives.
func TestUnencodablePayloadSkipsOneEventNotTheSubscription(t *testing.T) {
	d := start(t)
	emitter := inproc(t, d)
	sub, err := dial(t, d).Subscribe(ctxT(t), api.SubscribeParams{Pattern: "ui:*"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if _, err := emitter.Emit(ctx, api.EmitParams{Name: "ui:bad", Payload: map[string]any{"f": func() {}}}); err != nil {
		t.Fatalf("in-process emit: %v", err)
	}
	if _, err := emitter.Emit(ctx, api.EmitParams{Name: "ui:good", ID: "good", Payload: map[string]any{"ok": true}}); err != nil {
		t.Fatal(err)
	}
	ev, err := sub.Next(ctx)
	if err != nil || ev.ID != "good" {
		t.Fatalf("after the bad event: %+v, %v", ev, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for sub.Lagged().Kernel != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("lag %+v, want the kernel to report 1 dropped event", sub.Lagged())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
