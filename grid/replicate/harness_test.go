package replicate

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/grid/link"
	"github.com/continuum-grid/continuum/ipc/msgrpc"
	"github.com/continuum-grid/continuum/kernel"
	"github.com/continuum-grid/continuum/kernel/airc"
)

// node is a real kernel (bbolt file in a temp dir) with a replicator.
type node struct {
	t    testing.TB
	name string
	dir  string
	k    *kernel.Kernel
	r    *Replicator
	opts Options
	n    int
}

func newNode(t testing.TB, name string, opts Options) *node {
	t.Helper()
	n := &node{t: t, name: name, dir: filepath.Join(t.TempDir(), name), opts: opts}
	n.open()
	t.Cleanup(n.close)
	return n
}

func (n *node) open() {
	n.t.Helper()
	k, err := kernel.Open(kernel.Config{StateDir: n.dir})
	if err != nil {
		n.t.Fatal(err)
	}
	n.k = k
	o := n.opts
	o.Committed, o.DB = k.Committed, k.DB()
	if o.LongPoll == 0 {
		o.LongPoll = 2 * time.Second
	}
	n.r = New(k.Log(), o)
}

func (n *node) close() {
	if n.k == nil {
		return
	}
	n.r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n.k.Close(ctx)
	n.k = nil
}

func (n *node) id() string { return n.k.PeerID() }

// emit appends count local events to channel.
func (n *node) emit(channel string, count int) []api.Event {
	n.t.Helper()
	out := make([]api.Event, 0, count)
	for range count {
		n.n++
		ev, _, err := n.k.Log().Append(context.Background(), api.Event{
			ID: fmt.Sprintf("%s-%d", n.name, n.n), Class: "chat:posted", Channel: channel, Sender: n.name,
			SchemaVersion: "v1", Payload: map[string]any{"n": n.n, "from": n.name},
		})
		if err != nil {
			n.t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

// vec is the node's {channel: {origin: hw}}.
func (n *node) vec() map[string]map[string]uint64 {
	v, err := n.r.Vectors()
	if err != nil {
		n.t.Fatal(err)
	}
	return v
}

// transcript is the channel's events in transcript order, each encoded
// without its local seq: what must be byte-identical on every peer.
func (n *node) transcript(channel string) []byte {
	n.t.Helper()
	var out []byte
	after := ""
	for {
		evs, next, err := n.k.Log().Replay(channel, after, "", airc.MaxReplayLimit)
		if err != nil {
			n.t.Fatal(err)
		}
		for i := range evs {
			evs[i].Seq = 0
			out, err = api.AppendEvent(out, &evs[i])
			if err != nil {
				n.t.Fatal(err)
			}
		}
		if next == "" || len(evs) == 0 {
			return out
		}
		after = next
	}
}

// pipeLink is an in-process link: the two ends of a net.Pipe as msgrpc
// conns, attached to both replicators as the link layer would.
type pipeLink struct {
	ca, cb           *msgrpc.Conn
	detachA, detachB func()
	once             sync.Once
}

func connect(t testing.TB, a, b *node, circle string) *pipeLink {
	t.Helper()
	pa, pb := net.Pipe()
	l := &pipeLink{
		ca: msgrpc.NewConn(msgrpc.NewStreamTransport(pa, 0), msgrpc.Options{}),
		cb: msgrpc.NewConn(msgrpc.NewStreamTransport(pb, 0), msgrpc.Options{}),
	}
	ha, da := a.r.Attach(link.Peer{ID: b.id(), Circle: circle, Epoch: b.k.Log().Epoch()}, l.ca)
	hb, db := b.r.Attach(link.Peer{ID: a.id(), Circle: circle, Epoch: a.k.Log().Epoch()}, l.cb)
	l.detachA, l.detachB = da, db
	l.ca.Start(ha)
	l.cb.Start(hb)
	t.Cleanup(l.close)
	return l
}

// close takes the link down as the link layer does: close, then detach.
func (l *pipeLink) close() {
	l.once.Do(func() {
		l.ca.Close()
		l.cb.Close()
		l.detachA()
		l.detachB()
	})
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// converged reports whether every node holds the same vectors of channels.
func converged(nodes []*node, channels ...string) bool {
	var first map[string]map[string]uint64
	for i, n := range nodes {
		v := n.vec()
		sub := map[string]map[string]uint64{}
		for _, c := range channels {
			sub[c] = v[c]
		}
		if i == 0 {
			first = sub
			continue
		}
		for _, c := range channels {
			if !maps.Equal(first[c], sub[c]) {
				return false
			}
		}
	}
	return true
}

func sameTranscripts(t *testing.T, nodes []*node, channels ...string) {
	t.Helper()
	for _, c := range channels {
		want := nodes[0].transcript(c)
		for _, n := range nodes[1:] {
			if got := n.transcript(c); !bytes.Equal(got, want) {
				t.Fatalf("channel %s: the transcript of %s (%d bytes) differs from %s's (%d bytes)", c, n.name, len(got), nodes[0].name, len(want))
			}
		}
	}
}

func (n *node) stats(peer *node) PeerStats { return n.r.Stats()[peer.id()] }
