package replicate

import (
	"context"
	bolt "go.etcd.io/bbolt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/client"
)

// Two household peers with history on both sides: after the link comes up
// each holds the other's events (catch-up), then live events flow, and the
// vectors and transcripts end equal.
func TestCatchUpThenLive(t *testing.T) {
	a, b := newNode(t, "a", Options{}), newNode(t, "b", Options{})
	a.emit("general", 1500)
	a.emit("global", 20)
	b.emit("general", 700)
	connect(t, a, b, "household")
	nodes := []*node{a, b}
	eventually(t, 20*time.Second, "catch-up", func() bool {
		return converged(nodes, "general", "global") && b.vec()["general"][a.id()] == 1500
	})
	a.emit("general", 30)
	b.emit("global", 5)
	eventually(t, 10*time.Second, "live", func() bool {
		return converged(nodes, "general", "global") && b.vec()["general"][a.id()] == 1530 && a.vec()["global"][b.id()] == 5
	})
	sameTranscripts(t, nodes, "general", "global")
	eventually(t, 5*time.Second, "counted", func() bool { return b.stats(a).Counts["appended"] == 1550 })
	if s := b.stats(a); s.Counts["appended"] != 1550 || s.Counts["duplicate"] != 0 || !s.Up {
		t.Fatalf("b's counts for a: %+v", s)
	}
}

// A received event reaches a local subscriber like a local emit: a
// subscriber on B from the start and one that subscribed live both see A's
// events, in order.
func TestReceivedEventsReachSubscribers(t *testing.T) {
	a, b := newNode(t, "a", Options{}), newNode(t, "b", Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.NewInProcess(b.k)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sub, err := c.Subscribe(ctx, api.SubscribeParams{Pattern: "chat:*", Channel: "general", From: api.FromStart})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(ctx)
	early := a.emit("general", 10)
	connect(t, a, b, "household")
	late := a.emit("general", 10)
	for i, want := range append(early, late...) {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ev.ID != want.ID || ev.Origin != a.id() || ev.OriginSeq != want.OriginSeq || string(ev.Sig) != string(want.Sig) {
			t.Fatalf("event %d: got %s from %s (originSeq %d), want %s", i, ev.ID, ev.Origin, ev.OriginSeq, want.ID)
		}
	}
}

// The default policy: with a trusted-orgs peer only "global" replicates;
// with a household peer every channel does. ChannelList widens it.
func TestChannelPolicy(t *testing.T) {
	a, b := newNode(t, "a", Options{}), newNode(t, "b", Options{})
	a.emit("general", 5)
	a.emit("global", 3)
	connect(t, a, b, "trusted-orgs")
	eventually(t, 10*time.Second, "global", func() bool { return b.vec()["global"][a.id()] == 3 })
	a.emit("global", 1)
	eventually(t, 10*time.Second, "global live", func() bool { return b.vec()["global"][a.id()] == 4 })
	if got := b.vec()["general"]; len(got) != 0 {
		t.Fatalf("general replicated to a trusted-orgs peer: %v", got)
	}

	c := newNode(t, "c", Options{Channels: ChannelList([]string{"general"})})
	d := newNode(t, "d", Options{Channels: ChannelList([]string{"general"})})
	c.emit("general", 2)
	c.emit("other", 2)
	connect(t, c, d, "extended")
	eventually(t, 10*time.Second, "listed channel", func() bool { return d.vec()["general"][c.id()] == 2 })
	if got := d.vec()["other"]; len(got) != 0 {
		t.Fatalf("an unlisted channel replicated: %v", got)
	}
}

// Relay: C is linked only to B; A's events reach it through B and verify
// with A's key.
func TestRelayThroughThirdPeer(t *testing.T) {
	a, b, c := newNode(t, "a", Options{}), newNode(t, "b", Options{}), newNode(t, "c", Options{})
	connect(t, a, b, "household")
	connect(t, b, c, "household")
	a.emit("general", 50)
	c.emit("general", 40)
	nodes := []*node{a, b, c}
	eventually(t, 10*time.Second, "relay", func() bool {
		return converged(nodes, "general") && c.vec()["general"][a.id()] == 50 && a.vec()["general"][c.id()] == 40
	})
	sameTranscripts(t, nodes, "general")
}

// A link that goes down and comes back resumes after the remembered seq:
// the second link serves only what is new.
func TestReconnectResumesFromPosition(t *testing.T) {
	a, b := newNode(t, "a", Options{}), newNode(t, "b", Options{})
	a.emit("general", 200)
	l := connect(t, a, b, "household")
	eventually(t, 10*time.Second, "first link", func() bool { return b.vec()["general"][a.id()] == 200 })
	l.close()
	a.emit("general", 25)
	served := a.stats(b).Counts["served"]
	connect(t, a, b, "household")
	eventually(t, 10*time.Second, "second link", func() bool { return b.vec()["general"][a.id()] == 225 })
	if got := a.stats(b).Counts["served"] - served; got != 25 {
		t.Fatalf("the second link served %d events, want the 25 new ones", got)
	}
	if s := b.stats(a); s.Counts["duplicate"] != 0 || s.Counts["resync"] != 0 || s.Links != 2 {
		t.Fatalf("b's counts for a: %+v", s)
	}
}

// B restarts (its process ends, its bbolt file stays): the next link
// resumes from the position B wrote, and nothing is lost.
func TestRestartResumes(t *testing.T) {
	a, b := newNode(t, "a", Options{}), newNode(t, "b", Options{})
	a.emit("general", 300)
	l := connect(t, a, b, "household")
	eventually(t, 10*time.Second, "first link", func() bool { return b.vec()["general"][a.id()] == 300 })
	l.close()
	b.close()
	b.open()
	a.emit("general", 10)
	connect(t, a, b, "household")
	eventually(t, 10*time.Second, "after restart", func() bool { return converged([]*node{a, b}, "general") && b.vec()["general"][a.id()] == 310 })
	// The counters are added once the batch's commit is answered, just
	// after the vectors show it.
	eventually(t, 5*time.Second, "counted", func() bool { return b.stats(a).Counts["appended"] == 10 })
	if s := b.stats(a); s.Counts["duplicate"] != 0 || s.Counts["appended"] != 10 {
		t.Fatalf("after the restart b took %+v", s.Counts)
	}
}

// A's state dir is restored from an older copy: A finds B holding more of
// A's log than A does and bumps its epoch; B finds A's epoch changed and
// resyncs by vectors instead of trusting seqs; A takes its own lost events
// back from B, so its next events continue its chains (no fork) and reach B.
func TestRestoredPeerResyncs(t *testing.T) {
	a, b := newNode(t, "a", Options{}), newNode(t, "b", Options{})
	restoreOlderCopy(t, a, b, 50, 50)
	if h := a.k.Log().Head(); h != 50 {
		t.Fatalf("the restored copy has head %d", h)
	}
	b.emit("general", 7) // something new on B too, pulled by A however it resyncs
	connect(t, a, b, "household")
	eventually(t, 10*time.Second, "A takes its own events back", func() bool {
		return a.vec()["general"][a.id()] == 100 && a.vec()["general"][b.id()] == 7
	})
	if e := a.k.Log().Epoch(); e != 2 {
		t.Fatalf("A's epoch is %d, want 2 (bumped)", e)
	}
	if s := a.stats(b); s.Counts["restored"] != 1 {
		t.Fatalf("A's counts for B: %+v", s.Counts)
	}
	a.emit("general", 5)
	eventually(t, 10*time.Second, "A's new events on B", func() bool { return converged([]*node{a, b}, "general") && b.vec()["general"][a.id()] == 105 })
	if s := b.stats(a); s.Counts["resync"] == 0 {
		t.Fatalf("B did not resync: %+v", s.Counts)
	}
	for _, n := range []*node{a, b} {
		if f, err := n.k.Log().ForkedOrigins(); err != nil || len(f) != 0 {
			t.Fatalf("%s flagged forks %v (%v)", n.name, f, err)
		}
	}
	sameTranscripts(t, []*node{a, b}, "general")
}

// Received events are held like local ones by durable cursors and replay:
// a durable subscriber on B that acks half of A's events and comes back
// gets exactly the other half, and events/replay on B pages them in
// transcript order.
func TestReceivedEventsDurableAndReplay(t *testing.T) {
	a, b := newNode(t, "a", Options{}), newNode(t, "b", Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sent := a.emit("general", 40)
	connect(t, a, b, "household")
	eventually(t, 10*time.Second, "replicated", func() bool { return b.vec()["general"][a.id()] == 40 })
	c, err := client.NewInProcess(b.k)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sub, err := c.Subscribe(ctx, api.SubscribeParams{Pattern: "chat:*", Channel: "general", Durable: "reader", From: api.FromStart})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		ev, err := sub.Next(ctx)
		if err != nil || ev.ID != sent[i].ID {
			t.Fatalf("durable event %d: %v %v", i, ev.ID, err)
		}
		if i == 19 {
			if err := c.Ack(ctx, "reader", ev.Seq); err != nil {
				t.Fatal(err)
			}
		}
	}
	sub.Close(ctx)
	if err := b.k.Log().Flush(ctx); err != nil {
		t.Fatal(err)
	}
	sub, err = c.Subscribe(ctx, api.SubscribeParams{Pattern: "chat:*", Channel: "general", Durable: "reader"})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(ctx)
	for i := 20; i < 40; i++ {
		ev, err := sub.Next(ctx)
		if err != nil || ev.ID != sent[i].ID {
			t.Fatalf("resumed durable event %d: %v %v", i, ev.ID, err)
		}
	}
	evs, _, err := b.k.Log().Replay("general", "", "", 100)
	if err != nil || len(evs) != 40 {
		t.Fatalf("replay on B: %d events, %v", len(evs), err)
	}
	for i := range evs {
		if evs[i].ID != sent[i].ID || evs[i].Lamport != sent[i].Lamport {
			t.Fatalf("replay %d: %s at lamport %d, want %s at %d", i, evs[i].ID, evs[i].Lamport, sent[i].ID, sent[i].Lamport)
		}
	}
}

// The same restore, when the peer's record of how far it pulled was lost
// (as if it had not been saved before the copy was taken): the restored
// install still finds itself older, from the peer holding its own events
// beyond its own chains, and bumps its epoch.
func TestRestoredPeerFoundByVectors(t *testing.T) {
	a, b := newNode(t, "a", Options{}), newNode(t, "b", Options{})
	restoreOlderCopy(t, a, b, 20, 20)
	// B's record of how far it pulled in A's log, gone.
	if err := b.k.DB().Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucket)
		if err := bk.Delete([]byte(a.id())); err != nil {
			return err
		}
		return bk.Delete([]byte(seenKey(a.id())))
	}); err != nil {
		t.Fatal(err)
	}
	connect(t, a, b, "household")
	eventually(t, 10*time.Second, "A takes its own events back", func() bool { return a.vec()["general"][a.id()] == 40 })
	if e := a.k.Log().Epoch(); e != 2 {
		t.Fatalf("A's epoch is %d, want 2 (bumped)", e)
	}
	a.emit("general", 3)
	eventually(t, 10*time.Second, "A's new events on B", func() bool { return b.vec()["general"][a.id()] == 43 })
	if f, err := b.k.Log().ForkedOrigins(); err != nil || len(f) != 0 {
		t.Fatalf("B flagged forks %v (%v)", f, err)
	}
}

// restoreOlderCopy emits before events on a, copies a's state dir, emits
// after more, lets b take them all over a link, closes it and puts the copy
// back: a is then an older copy of itself, which b knows better.
func restoreOlderCopy(t *testing.T, a, b *node, before, after int) {
	t.Helper()
	a.emit("general", before)
	a.close()
	snapshot := filepath.Join(t.TempDir(), "snapshot")
	if out, err := exec.Command("cp", "-a", a.dir, snapshot).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	a.open()
	a.emit("general", after)
	l := connect(t, a, b, "household")
	eventually(t, 10*time.Second, "first link", func() bool { return b.vec()["general"][a.id()] == uint64(before+after) })
	l.close()
	a.close()
	if err := os.RemoveAll(a.dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(snapshot, a.dir); err != nil {
		t.Fatal(err)
	}
	a.open()
}
