package replicate

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/grid/link"
	"github.com/continuum-grid/continuum/ipc/msgrpc"
	"github.com/continuum-grid/continuum/kernel/airc"
	"github.com/continuum-grid/continuum/kernel/identity"
)

// origin signs events of its own chain on one channel, as an install would.
type origin struct {
	t   *testing.T
	id  *identity.Identity
	seq uint64
	tip airc.Hash
	n   int
}

func newOrigin(t *testing.T) *origin {
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return &origin{t: t, id: id}
}

// at signs an event at an explicit place (forks, lamport tests).
func (o *origin) at(channel string, seq uint64, prev airc.Hash, lamport uint64, payload any) api.Event {
	o.t.Helper()
	o.n++
	ev := api.Event{
		ID: fmt.Sprintf("o-%d", o.n), Class: "chat:posted", Channel: channel, Origin: o.id.PeerID(),
		OriginSeq: seq, Prev: bytes.Clone(prev[:]), Sender: "o", Lamport: lamport, TS: time.Now().UnixMilli(),
		SchemaVersion: "v1", Payload: payload,
	}
	if err := airc.SignEvent(o.id, &ev); err != nil {
		o.t.Fatal(err)
	}
	return ev
}

// next signs the next event of the chain.
func (o *origin) next(channel string) api.Event {
	ev := o.at(channel, o.seq+1, o.tip, o.seq+1, map[string]any{"n": o.n})
	h, err := airc.HashOf(&ev)
	if err != nil {
		o.t.Fatal(err)
	}
	o.seq, o.tip = ev.OriginSeq, h
	return ev
}

func envelope(t *testing.T, ev api.Event) []byte {
	t.Helper()
	b, err := api.AppendEvent(nil, &ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hostile is a scripted peer on the far end of a net.Pipe: it answers
// repl/state with state and each repl/pull with the next scripted answer
// (an api.RawParams is sent as it is: garbage), then with nothing at its head.
type hostile struct {
	t     *testing.T
	id    *identity.Identity
	conn  *msgrpc.Conn
	pipe  *cutPipe
	state stateResult
	mu    sync.Mutex
	pulls []func(ctx context.Context) (any, error)
	asked atomic.Int64
}

// cutPipe is the hostile end's stream; armed with cut, it writes half of
// the next write and closes: a peer that dies in the middle of a message.
// Armed with hang, it writes half and then nothing more, keeping the
// stream open: a peer that stalls in the middle of a message.
type cutPipe struct {
	net.Conn
	cut, hang, hung atomic.Bool
}

func (c *cutPipe) Write(b []byte) (int, error) {
	if c.hung.Load() {
		return len(b), nil // swallowed: nothing more ever arrives
	}
	if c.hang.Load() && len(b) > 1 {
		c.hung.Store(true)
		c.Conn.Write(b[:len(b)/2])
		return len(b), nil
	}
	if c.cut.Load() && len(b) > 1 {
		n, _ := c.Conn.Write(b[:len(b)/2])
		c.Conn.Close()
		return n, net.ErrClosed
	}
	return c.Conn.Write(b)
}

// attachHostile links victim to a hostile peer trusted in household that
// starts with state.
func attachHostile(t *testing.T, victim *node, state stateResult) *hostile {
	t.Helper()
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	pv, ph := net.Pipe()
	h := &hostile{t: t, id: id, pipe: &cutPipe{Conn: ph}, state: state}
	h.conn = msgrpc.NewConn(msgrpc.NewStreamTransport(h.pipe, 0), msgrpc.Options{})
	vc := msgrpc.NewConn(msgrpc.NewStreamTransport(pv, 0), msgrpc.Options{})
	handler, detach := victim.r.Attach(link.Peer{ID: id.PeerID(), Circle: "household", Epoch: 1}, vc)
	vc.Start(handler)
	h.conn.Start(msgrpc.HandlerFuncs{Request: h.serve})
	t.Cleanup(func() {
		vc.Close()
		h.conn.Close()
		detach()
	})
	return h
}

func (h *hostile) script(answers ...func(ctx context.Context) (any, error)) {
	h.mu.Lock()
	h.pulls = append(h.pulls, answers...)
	h.mu.Unlock()
}

func (h *hostile) serve(ctx context.Context, method string, params api.RawParams) (any, error) {
	switch method {
	case methodState:
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.state, nil
	case methodPull:
		h.asked.Add(1)
		h.mu.Lock()
		var next func(context.Context) (any, error)
		if len(h.pulls) > 0 {
			next, h.pulls = h.pulls[0], h.pulls[1:]
		}
		h.mu.Unlock()
		if next != nil {
			return next(ctx)
		}
		var p pullParams
		_ = decode(params, &p)
		select { // at its head: a long-poll that never sees a commit
		case <-time.After(time.Duration(p.WaitMs) * time.Millisecond):
		case <-ctx.Done():
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		return pullResult{Epoch: h.state.Epoch, Head: h.state.Head, Last: h.state.Head}, nil
	}
	return nil, api.Errorf(api.CodeUnknownMethod, "%s", method)
}

// batch answers a pull with envelopes, advancing the head to last.
func (h *hostile) batch(last uint64, envs ...[]byte) func(context.Context) (any, error) {
	return func(context.Context) (any, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.state.Head = max(h.state.Head, last)
		return pullResult{Epoch: h.state.Epoch, Head: h.state.Head, Last: last, Events: envs}, nil
	}
}

// Every kind of bad event in one batch: each is refused or flagged with its
// typed reason and counted, and the good events around them, and the next
// batch, are taken.
func TestHostileBatch(t *testing.T) {
	v := newNode(t, "v", Options{})
	h := attachHostile(t, v, stateResult{Epoch: 1})
	o := newOrigin(t) // a third origin the hostile peer relays
	e1, e2, e3 := o.next("general"), o.next("general"), o.next("general")

	forged := e2
	forged.Sig = bytes.Clone(e2.Sig)
	forged.Sig[10] ^= 0x40
	relabelled := e2
	relabelled.Class = "chat:deleted"
	beyond := o.at("lamport", 1, airc.Hash{}, 1<<50, nil)
	fork := o.at("general", 2, mustHash(t, e1), 2, map[string]any{"other": true})
	noOrigin := e3
	noOrigin.Origin = "not-a-peer-id"
	// Its own key over an event claiming another origin: the signature is
	// checked against the claimed origin's key, so it fails.
	impostor := o.at("general", 4, airc.Hash{}, 4, nil)
	impostor.Sig = h.id.Sign([]byte("whatever"))

	h.script(h.batch(10,
		envelope(t, e1),
		envelope(t, forged),
		envelope(t, relabelled),
		[]byte{0x93, 0x01, 0x02}, // an array, not an envelope
		envelope(t, e2),
		envelope(t, e1), // replayed
		envelope(t, beyond),
		envelope(t, fork),
		envelope(t, noOrigin),
		envelope(t, impostor),
		envelope(t, e3),
	))
	e4 := o.next("general")
	h.script(h.batch(11, envelope(t, e4)))

	eventually(t, 10*time.Second, "both batches", func() bool { return v.vec()["general"][o.id.PeerID()] == 4 })
	s := v.r.Stats()[h.id.PeerID()]
	want := map[string]uint64{
		"appended": 4, "duplicate": 1, "fork": 1, "undecodable": 1,
		"rejected:bad_signature": 3, "rejected:lamport_bound": 1, "rejected:malformed": 1,
	}
	eventually(t, 5*time.Second, "counts", func() bool {
		s = v.r.Stats()[h.id.PeerID()]
		for k, n := range want {
			if s.Counts[k] != n {
				return false
			}
		}
		return true
	})
	if !s.Up || s.Pulled != 11 {
		t.Fatalf("after the hostile batches: %+v", s)
	}
	forks, err := v.k.Log().ForkedOrigins()
	if err != nil || forks[o.id.PeerID()] != 1 {
		t.Fatalf("forks %v %v", forks, err)
	}
	rej, err := v.k.Log().Rejections(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[airc.RejectReason]int{}
	for _, r := range rej {
		reasons[r.Reason]++
	}
	if reasons[airc.RejectBadSignature] != 3 || reasons[airc.RejectLamportBound] != 1 || reasons[airc.RejectMalformed] != 1 || reasons[airc.RejectFork] != 1 {
		t.Fatalf("recorded rejections %v", reasons)
	}
	// The stored chain is the first-seen one, and e3 links to it.
	got, ok, err := v.k.Log().Get(o.id.PeerID(), e2.ID)
	if err != nil || !ok || !bytes.Equal(got.Sig, e2.Sig) {
		t.Fatalf("e2 as stored: %v %v", ok, err)
	}
}

func mustHash(t *testing.T, ev api.Event) airc.Hash {
	t.Helper()
	h, err := airc.HashOf(&ev)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// A pull answered with something that is not a pull result, a result that
// goes backwards, or a frame that is not msgpack: counted broken, nothing
// taken, the peer asked again later (a garbage frame ends the stream
// itself); the victim keeps serving its other links.
func TestHostileMalformedAnswers(t *testing.T) {
	cases := map[string]func(h *hostile){
		"not a result": func(h *hostile) {
			h.script(func(context.Context) (any, error) { return "garbage", nil })
		},
		"wrong types": func(h *hostile) {
			h.script(func(context.Context) (any, error) {
				return map[string]any{"epoch": "one", "events": 7}, nil
			})
		},
		"last beyond head": func(h *hostile) {
			h.script(func(context.Context) (any, error) {
				return pullResult{Epoch: 1, Head: 5, Last: 9}, nil
			})
		},
		"raw garbage frame": func(h *hostile) {
			h.script(func(context.Context) (any, error) {
				h.pipe.Conn.Write([]byte{0xc1, 0xc1, 0xc1, 0xff})
				return nil, nil
			})
		},
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			v, other := newNode(t, "v", Options{StallTimeout: 200 * time.Millisecond}), newNode(t, "other", Options{})
			connect(t, v, other, "household")
			h := attachHostile(t, v, stateResult{Epoch: 1})
			setup(h)
			eventually(t, 10*time.Second, "the bad answer counted", func() bool { return v.r.Stats()[h.id.PeerID()].Counts["broken"] >= 1 })
			if name == "raw garbage frame" {
				eventually(t, 5*time.Second, "the stream closed", func() bool {
					select {
					case <-h.conn.Done():
						return true
					default:
						return false
					}
				})
			} else {
				eventually(t, 10*time.Second, "asked again", func() bool { return h.asked.Load() >= 2 })
			}
			other.emit("general", 3)
			eventually(t, 10*time.Second, "the other link still works", func() bool { return v.vec()["general"][other.id()] == 3 })
			if s := v.r.Stats()[h.id.PeerID()]; s.Pulled != 0 || len(v.vec()["general"]) != 1 {
				t.Fatalf("took something from a bad answer: %+v", s)
			}
		})
	}
}

// A peer that says it holds events and then never answers the pull, or
// stops in the middle of its answer, is timed out (and asked again later,
// with backoff); the same range comes from another peer meanwhile.
func TestStalledPeerIsTimedOutAndRangeComesFromAnother(t *testing.T) {
	for _, midBatch := range []bool{false, true} {
		t.Run(map[bool]string{false: "before answering", true: "mid-batch"}[midBatch], func(t *testing.T) {
			v := newNode(t, "v", Options{StallTimeout: 300 * time.Millisecond, LongPoll: 200 * time.Millisecond})
			honest := newNode(t, "honest", Options{})
			o := newOrigin(t)
			var evs []api.Event
			var envs [][]byte
			for range 20 {
				ev := o.next("general")
				evs = append(evs, ev)
				envs = append(envs, envelope(t, ev))
			}
			for _, r := range honest.k.Log().IngestBatch(context.Background(), evs) {
				if r.Err != nil {
					t.Fatal(r.Err)
				}
			}
			h := attachHostile(t, v, stateResult{Epoch: 1, Head: 20, Channels: map[string]map[string]uint64{"general": {o.id.PeerID(): 20}}})
			if midBatch {
				h.script(func(ctx context.Context) (any, error) {
					h.pipe.hang.Store(true)
					return pullResult{Epoch: 1, Head: 20, Last: 20, Events: envs}, nil
				})
			} else {
				h.script(func(ctx context.Context) (any, error) { <-ctx.Done(); return nil, ctx.Err() })
			}
			start := time.Now()
			eventually(t, 10*time.Second, "stall noticed", func() bool { return v.r.Stats()[h.id.PeerID()].Counts["stall"] >= 1 })
			if d := time.Since(start); d > 4*time.Second { // 0.3 s plus a loaded machine
				t.Errorf("the stall took %v to notice", d)
			}
			if got := v.vec()["general"][o.id.PeerID()]; got != 0 {
				t.Fatalf("took %d events from a batch that never arrived whole", got)
			}
			connect(t, v, honest, "household")
			eventually(t, 10*time.Second, "the range from the honest peer", func() bool { return v.vec()["general"][o.id.PeerID()] == 20 })
			if !midBatch {
				// The stalled peer is asked again after a backoff (and now answers).
				eventually(t, 10*time.Second, "asked again", func() bool { return h.asked.Load() >= 2 })
			}
		})
	}
}

// A peer that dies in the middle of a batch (half a message, then the
// stream closes): nothing of the batch is taken, the position stays, and
// the next link brings all of it.
func TestPeerDiesMidBatch(t *testing.T) {
	v := newNode(t, "v", Options{})
	h := attachHostile(t, v, stateResult{Epoch: 1})
	o := newOrigin(t)
	var envs [][]byte
	for range 100 {
		envs = append(envs, envelope(t, o.next("general")))
	}
	h.script(func(ctx context.Context) (any, error) {
		h.pipe.cut.Store(true)
		return pullResult{Epoch: 1, Head: 100, Last: 100, Events: envs}, nil
	})
	eventually(t, 5*time.Second, "the link closed", func() bool {
		select {
		case <-h.conn.Done():
			return true
		default:
			return false
		}
	})
	eventually(t, 5*time.Second, "the failed pull counted", func() bool { return v.r.Stats()[h.id.PeerID()].Counts["broken"] >= 1 })
	if got := v.vec()["general"][o.id.PeerID()]; got != 0 {
		t.Fatalf("took %d events of a batch that never arrived whole", got)
	}
	if p, ok, _ := loadPosition(v.k.DB(), h.id.PeerID()); ok && p.Seq != 0 {
		t.Fatalf("position moved to %d", p.Seq)
	}
	// The same peer, linked again and honest this time.
	pv, ph := net.Pipe()
	hc := msgrpc.NewConn(msgrpc.NewStreamTransport(ph, 0), msgrpc.Options{})
	vc := msgrpc.NewConn(msgrpc.NewStreamTransport(pv, 0), msgrpc.Options{})
	h2 := &hostile{t: t, id: h.id, conn: hc, state: stateResult{Epoch: 1, Head: 100}}
	h2.script(h2.batch(100, envs...))
	handler, detach := v.r.Attach(link.Peer{ID: h.id.PeerID(), Circle: "household", Epoch: 1}, vc)
	vc.Start(handler)
	hc.Start(msgrpc.HandlerFuncs{Request: h2.serve})
	defer func() { vc.Close(); hc.Close(); detach() }()
	eventually(t, 10*time.Second, "all of it on the next link", func() bool { return v.vec()["general"][o.id.PeerID()] == 100 })
}

// What a peer asks of this side's server: bad params are invalid_argument,
// an unknown method unknown_method, a position beyond the head or in
// another epoch is answered stale, and the server goes on serving.
func TestServerRefusesBadRequests(t *testing.T) {
	v := newNode(t, "v", Options{})
	v.emit("general", 3)
	h := attachHostile(t, v, stateResult{Epoch: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, params := range map[string]any{
		"after is a string": map[string]any{"after": "x"},
		"have is a number":  map[string]any{"have": 7},
		"not a map":         []int{1, 2},
	} {
		if _, err := h.conn.Call(ctx, methodPull, params); api.CodeOf(err) != api.CodeInvalidArgument {
			t.Errorf("%s: %v, want invalid_argument", name, err)
		}
	}
	if _, err := h.conn.Call(ctx, "repl/nothing", nil); api.CodeOf(err) != api.CodeUnknownMethod {
		t.Errorf("unknown method: %v", err)
	}
	tooMany := make([]have, maxHave+1)
	if _, err := h.conn.Call(ctx, methodPull, pullParams{Have: tooMany}); api.CodeOf(err) != api.CodeInvalidArgument {
		t.Errorf("too many chains in have: %v", err)
	}
	for name, p := range map[string]pullParams{
		"beyond the head": {After: 99, Epoch: 1},
		"another epoch":   {After: 1, Epoch: 7},
	} {
		raw, err := h.conn.Call(ctx, methodPull, p)
		var r pullResult
		if err == nil {
			err = decode(raw, &r)
		}
		if err != nil || !r.Stale || len(r.Events) != 0 {
			t.Errorf("%s: %+v %v, want stale", name, r, err)
		}
	}
	raw, err := h.conn.Call(ctx, methodPull, pullParams{After: 0, Epoch: 1, Max: 2})
	var r pullResult
	if err == nil {
		err = decode(raw, &r)
	}
	if err != nil || len(r.Events) != 2 || r.Last != 2 || r.Head != 3 {
		t.Fatalf("a good pull after the bad ones: %+v %v", r, err)
	}
}

// A pull served while the log keeps committing never answers with a last
// seq beyond the head it names (a puller takes that for a broken peer and
// stops pulling from it for its backoff). Events on a channel the peer may
// not have are skipped, so one pull reads the log several times over a
// head that keeps moving: the window where that went wrong.
func TestPullAnswersNeverPassTheirHead(t *testing.T) {
	v := newNode(t, "v", Options{Channels: func(channel, circle string) bool { return channel != "private" }})
	h := attachHostile(t, v, stateResult{Epoch: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const emitters, each = 8, 60
	var wg sync.WaitGroup
	for e := range emitters {
		wg.Go(func() {
			for i := range each {
				ev := api.Event{ID: fmt.Sprintf("p-%d-%d", e, i), Class: "chat:posted", Channel: "private", Sender: "v", SchemaVersion: "v1", Payload: map[string]any{"i": i}}
				if _, _, err := v.k.Log().Append(context.Background(), ev); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	t.Cleanup(wg.Wait) // before the node closes, even when a check below fails
	v.emit("general", 1)
	var after, shared uint64
	for pulls := 0; after < emitters*each+1; pulls++ {
		raw, err := h.conn.Call(ctx, methodPull, pullParams{After: after, Epoch: 1, Max: 3})
		var r pullResult
		if err == nil {
			err = decode(raw, &r)
		}
		if err != nil {
			t.Fatalf("pull %d after %d: %v", pulls, after, err)
		}
		if r.Last > r.Head || r.Last < after {
			t.Fatalf("pull %d after %d answered last %d with head %d", pulls, after, r.Last, r.Head)
		}
		shared += uint64(len(r.Events))
		after = r.Last
	}
	wg.Wait()
	if shared != 1 {
		t.Fatalf("the peer got %d events, want the one on general", shared)
	}
}
