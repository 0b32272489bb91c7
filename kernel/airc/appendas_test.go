package airc

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel/identity"
)

// An event appended as another identity (a persona) is that identity's:
// origin, chain and signature are its own, it verifies against its key
// alone, a peer log ingests it through the ordinary path, and a tampered
// copy is refused there.
func TestAppendAsSignsWithTheSigner(t *testing.T) {
	e := newEnv(t, Options{})
	persona, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mine := e.append("general", map[string]any{"roomId": "general", "text": "human"})
	as := func(id string, text string) (api.Event, bool) {
		t.Helper()
		ev, dup, err := e.log.AppendAs(ctx, api.Event{ID: id, Class: "chat:posted", Channel: "general", Sender: persona.PeerID(), SchemaVersion: "v1",
			Payload: map[string]any{"roomId": "general", "text": text}}, persona)
		if err != nil {
			t.Fatal(err)
		}
		return ev, dup
	}
	p1, _ := as("r-1", "first")
	p2, _ := as("r-2", "second")
	if p1.Origin != persona.PeerID() || p1.Sender != persona.PeerID() {
		t.Fatalf("origin %q sender %q, want the persona %q", p1.Origin, p1.Sender, persona.PeerID())
	}
	// Its own chain: originSeq 1, 2 on the channel where the install's own
	// chain is at 1 too; the lamport clock and seqs are the log's.
	if p1.OriginSeq != 1 || !bytes.Equal(p1.Prev, make([]byte, HashSize)) || p2.OriginSeq != 2 || !bytes.Equal(p2.Prev, hashOf(t, p1)) {
		t.Errorf("persona chain: %d/%x, %d/%x", p1.OriginSeq, p1.Prev[:4], p2.OriginSeq, p2.Prev[:4])
	}
	if p1.Lamport != mine.Lamport+1 || p1.Seq != mine.Seq+1 {
		t.Errorf("lamport %d seq %d after the install's %d/%d", p1.Lamport, p1.Seq, mine.Lamport, mine.Seq)
	}
	if next := e.append("general", "x"); next.OriginSeq != 2 {
		t.Errorf("the install's chain was moved by the persona: originSeq %d", next.OriginSeq)
	}
	// The signature is the persona's, not the install's.
	signing, err := SigningBytes(&p1)
	if err != nil {
		t.Fatal(err)
	}
	if !identity.Verify(persona.PeerID(), signing, p1.Sig) {
		t.Error("the persona's key does not verify its event")
	}
	if identity.Verify(e.id.PeerID(), signing, p1.Sig) {
		t.Error("the install's key verifies the persona's event")
	}
	if _, err := VerifyEvent(&p1); err != nil {
		t.Errorf("VerifyEvent: %v", err)
	}
	// Dedupe by (persona, id): a retry answers the stored event; the same id
	// under the install's origin is another event.
	if again, dup := as("r-1", "a different text"); !dup || again.Seq != p1.Seq {
		t.Errorf("a retry of r-1: dup %v seq %d (first %d)", dup, again.Seq, p1.Seq)
	}
	if got, ok, err := e.log.Get(persona.PeerID(), "r-1"); err != nil || !ok || got.Seq != p1.Seq {
		t.Errorf("Get(persona, r-1): %v %v %v", got.Seq, ok, err)
	}
	if own, dup, err := e.log.Append(ctx, api.Event{ID: "r-1", Class: "chat:posted", Channel: "general", SchemaVersion: "v1", Payload: "x"}); err != nil || dup || own.Origin != e.id.PeerID() {
		t.Errorf("r-1 as the install: dup %v origin %q err %v", dup, own.Origin, err)
	}
	// The chain survives a reopen: the next persona event continues it.
	e.reopen()
	if p3, _ := as("r-3", "third"); p3.OriginSeq != 3 || !bytes.Equal(p3.Prev, hashOf(t, p2)) {
		t.Errorf("after reopen: originSeq %d", p3.OriginSeq)
	}

	// A peer's log takes the persona's events through Ingest (signature,
	// chain), and refuses a tampered copy.
	other := newEnv(t, Options{})
	for _, ev := range []api.Event{p1, p2} {
		if _, out, err := other.log.Ingest(ctx, ev); err != nil || out != IngestAppended {
			t.Fatalf("peer ingest %s: %v %v", ev.ID, out, err)
		}
	}
	forged := p2
	forged.ID = "r-forged"
	forged.OriginSeq = 3
	forged.Prev = hashOf(t, p2)
	forged.Payload = map[string]any{"roomId": "general", "text": "not what it said"}
	var re *RejectError
	if _, out, err := other.log.Ingest(ctx, forged); out != IngestRejected || !errors.As(err, &re) || re.Reason != RejectBadSignature {
		t.Errorf("a tampered persona event: %v %v", out, err)
	}
	hw, err := other.log.HighWater()
	if err != nil || hw[persona.PeerID()]["general"] != 2 {
		t.Errorf("peer's high-water of the persona: %v %v", hw, err)
	}
}

func TestAppendAsNilSignerIsAppend(t *testing.T) {
	e := newEnv(t, Options{})
	ev, _, err := e.log.AppendAs(context.Background(), api.Event{Class: "c", Channel: "ch", SchemaVersion: "v1", Payload: 1}, nil)
	if err != nil || ev.Origin != e.id.PeerID() {
		t.Fatalf("origin %q err %v", ev.Origin, err)
	}
}
