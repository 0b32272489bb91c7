package airc

import (
	"context"
	"strings"
	"testing"

	"github.com/continuum-grid/continuum/api"
)

// A cursor name the file cannot hold is refused by Ack; one that reached a
// commit anyway (here planted by hand) is dropped alone, and the events and
// acks sharing its commit are written.
func TestUnwritableCursorFailsOnlyItself(t *testing.T) {
	e := newEnv(t, Options{})
	ev := e.append("general", "a")
	huge := strings.Repeat("d", 40000)
	if err := e.log.Ack(huge, ev.Seq); api.CodeOf(err) != api.CodeInvalidArgument {
		t.Fatalf("Ack of a 40 KB name: %v, want invalid_argument", err)
	}
	if _, _, err := e.log.Cursor(huge); api.CodeOf(err) != api.CodeInvalidArgument {
		t.Fatalf("Cursor of a 40 KB name: %v", err)
	}

	e.log.mu.Lock()
	e.log.dirtyCursor[huge] = cursorUpdate{seq: ev.Seq}
	e.log.mu.Unlock()
	if err := e.log.Ack("good", ev.Seq); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		e.append("general", i)
	}
	if err := e.log.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	if p, ok, err := e.log.Cursor("good"); err != nil || !ok || p.Seq != ev.Seq {
		t.Fatalf("the good ack sharing the commit: %+v %v %v", p, ok, err)
	}
	if h := e.log.Head(); h != ev.Seq+3 {
		t.Fatalf("head %d, want %d", h, ev.Seq+3)
	}
}
