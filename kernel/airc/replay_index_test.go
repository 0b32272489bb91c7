package airc

import (
	"context"
	"fmt"
	"testing"

	"github.com/continuum-grid/continuum/api"
)

// Replay writes the waiting index entries (indexEvery) only when one of them
// is on the channel it reads: a page of a quiet room costs no commit while
// another room is busy, and a page of the busy room still sees everything.
func TestReplayCommitsTheIndexOnlyForItsChannel(t *testing.T) {
	e := newEnv(t, Options{})
	quiet, _, err := e.log.Append(context.Background(), api.Event{ID: "q", Class: "c", Channel: "quiet"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.log.syncIndex(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, _, err := e.log.Append(context.Background(), api.Event{ID: fmt.Sprintf("b%d", i), Class: "c", Channel: "busy"}); err != nil {
			t.Fatal(err)
		}
	}
	indexed := countKeys(t, e.st.DB, bIDs)
	evs, _, err := e.log.Replay("quiet", "", "", 0)
	if err != nil || len(evs) != 1 || evs[0].ID != quiet.ID {
		t.Fatalf("replay of the quiet channel: %v %+v", err, evs)
	}
	if n := countKeys(t, e.st.DB, bIDs); n != indexed {
		t.Fatalf("replay of the quiet channel wrote the busy channel's index entries (%d → %d)", indexed, n)
	}
	evs, _, err = e.log.Replay("busy", "", "", 0)
	if err != nil || len(evs) != 5 {
		t.Fatalf("replay of the busy channel: %d events, %v", len(evs), err)
	}
	if n := countKeys(t, e.st.DB, bIDs); n != indexed+5 {
		t.Fatalf("after replay of the busy channel the dedupe index holds %d entries, want %d", n, indexed+5)
	}
}
