package grid_test

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/grid/link"
)

// declare makes chat:posted a broadcast class whose channel is the roomId.
func (n *node) declare() {
	n.t.Helper()
	n.must(api.MethodDeclareClass, api.ClassConfig{Name: "chat:posted", Broadcast: true, Channel: api.ChannelByRoomID, SchemaVersion: "v1"}, nil)
}

// post emits count events in room, returning their ids.
func (n *node) post(room string, count int, tag string) []string {
	n.t.Helper()
	ids := make([]string, 0, count)
	for i := range count {
		id := fmt.Sprintf("%s-%s-%d", n.id[:6], tag, i)
		var r api.EmitResult
		n.must(api.MethodEmit, api.EmitParams{Name: "chat:posted", ID: id, Payload: map[string]any{"roomId": room, "i": i}}, &r)
		if r.Channel != room {
			n.t.Fatalf("emitted to channel %q, want %q", r.Channel, room)
		}
		ids = append(ids, id)
	}
	return ids
}

func (n *node) hw(channel, origin string) uint64 { return n.status().Channels[channel][origin] }

// Two real daemons over loopback QUIC: link by invite, a subscriber on B
// sees what A emits (live, within milliseconds), B's events reach A, a
// restart of B in the middle of A's stream loses nothing, and untrust stops
// replication both ways.
func TestReplicationBetweenDaemons(t *testing.T) {
	a, b := startNode(t), startNode(t)
	a.declare()
	b.declare()
	join(t, a, b, "household")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sub, err := b.c.Subscribe(ctx, api.SubscribeParams{Pattern: "chat:posted", Channel: "general", From: api.FromStart})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	want := a.post("general", 20, "first")
	for i, id := range want {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("event %d on B: %v", i, err)
		}
		if ev.ID != id || ev.Origin != a.id {
			t.Fatalf("event %d on B: %s from %s, want %s from %s", i, ev.ID, ev.Origin, id, a.id)
		}
	}
	t.Logf("20 emits on A seen by B's subscriber after %v", time.Since(start))
	sub.Close(ctx)

	b.post("general", 5, "b")
	eventually(t, 10*time.Second, "B's events on A", func() bool { return a.hw("general", b.id) == 5 })

	// A emits while B restarts.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.post("general", 200, "during")
	}()
	time.Sleep(20 * time.Millisecond)
	b.stop()
	time.Sleep(100 * time.Millisecond)
	b.start()
	wg.Wait()
	eventually(t, 20*time.Second, "convergence after B's restart", func() bool {
		sa, sb := a.status(), b.status()
		return sb.Channels["general"][a.id] == 220 && maps.Equal(sa.Channels["general"], sb.Channels["general"])
	})
	if c := b.status().Counters; c["repl.appended"] == 0 || c["repl."+a.id+".appended"] == 0 {
		t.Errorf("B's replication counters: %v", c)
	}

	// Untrust: the link closes and nothing flows either way any more.
	a.must(api.MethodGridUntrust, api.UntrustParams{PeerID: b.id}, nil)
	b.waitState(a, link.StateConnecting)
	a.post("general", 3, "after")
	b.post("general", 3, "after")
	time.Sleep(time.Second)
	if got := b.hw("general", a.id); got != 220 {
		t.Errorf("B took A's events after the untrust: high-water %d", got)
	}
	if got := a.hw("general", b.id); got != 5 {
		t.Errorf("A took B's events after the untrust: high-water %d", got)
	}
}
