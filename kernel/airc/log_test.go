package airc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel/identity"
	"github.com/continuum-grid/continuum/kernel/store"
	bolt "go.etcd.io/bbolt"
)

// env is a log on a fresh state dir.
type env struct {
	t     *testing.T
	dir   string
	st    *store.Store
	id    *identity.Identity
	log   *Log
	opts  Options
	mu    sync.Mutex
	seen  []api.Event // everything OnCommit delivered, in order
	calls int
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, st: st, id: id, opts: opts}
	e.open()
	t.Cleanup(func() {
		e.log.Close()
		e.st.Close()
	})
	return e
}

func (e *env) open() {
	e.t.Helper()
	opts := e.opts
	user := opts.OnCommit
	opts.OnCommit = func(evs []*api.SharedEvent) {
		e.mu.Lock()
		for _, s := range evs {
			ev, err := s.Event()
			if err != nil {
				e.t.Errorf("OnCommit: %v", err)
				continue
			}
			e.seen = append(e.seen, *ev)
		}
		e.calls++
		e.mu.Unlock()
		if user != nil {
			user(evs)
		}
	}
	l, err := Open(e.st.DB, e.id, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.log = l
}

// reopen closes the log and the bbolt file and opens both again.
func (e *env) reopen() {
	e.t.Helper()
	if err := e.log.Close(); err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.Close(); err != nil {
		e.t.Fatal(err)
	}
	st, err := store.Open(e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	e.st = st
	e.open()
}

func (e *env) append(channel string, payload any) api.Event {
	e.t.Helper()
	ev, dup, err := e.log.Append(context.Background(), api.Event{Class: "chat:posted", Channel: channel, Sender: "test", SchemaVersion: "v1", Payload: payload})
	if err != nil || dup {
		e.t.Fatalf("append: dup=%v err=%v", dup, err)
	}
	return ev
}

// peer makes validly signed foreign events and tracks its own chains.
type peer struct {
	id  *identity.Identity
	seq map[string]uint64
	tip map[string]Hash
	n   int
}

func newPeer(t *testing.T) *peer {
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return &peer{id: id, seq: map[string]uint64{}, tip: map[string]Hash{}}
}

// event builds and signs an event at an explicit place in the chain.
func (p *peer) event(t *testing.T, channel string, originSeq uint64, prev Hash, lamport uint64, payload any) api.Event {
	t.Helper()
	p.n++
	ev := api.Event{
		ID: fmt.Sprintf("p-%d", p.n), Class: "chat:posted", Channel: channel, Origin: p.id.PeerID(),
		OriginSeq: originSeq, Prev: bytes.Clone(prev[:]), Sender: "remote", Lamport: lamport,
		TS: 1700000000000, SchemaVersion: "v1", Payload: payload,
	}
	if err := SignEvent(p.id, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// next builds the next event of the peer's chain on channel.
func (p *peer) next(t *testing.T, channel string, lamport uint64) api.Event {
	t.Helper()
	ev := p.event(t, channel, p.seq[channel]+1, p.tip[channel], lamport, map[string]any{"n": p.n})
	h, _ := HashOf(&ev)
	p.seq[channel]++
	p.tip[channel] = h
	return ev
}

func ingest(t *testing.T, l *Log, ev api.Event) (api.Event, IngestOutcome, error) {
	t.Helper()
	return l.Ingest(context.Background(), ev)
}

func TestAppendStampsSignsAndChains(t *testing.T) {
	e := newEnv(t, Options{})
	a := e.append("room-1", map[string]any{"text": "hi", "roomId": "room-1"})
	b := e.append("room-1", map[string]any{"text": "there"})
	c := e.append("room-2", "x")
	checks := []struct {
		ev                 api.Event
		seq, oseq, lamport uint64
		prev               []byte
	}{
		{a, 1, 1, 1, make([]byte, 32)},
		{b, 2, 2, 2, hashOf(t, a)},
		{c, 3, 1, 3, make([]byte, 32)},
	}
	for i, tc := range checks {
		ev := tc.ev
		if ev.Seq != tc.seq || ev.OriginSeq != tc.oseq || ev.Lamport != tc.lamport || !bytes.Equal(ev.Prev, tc.prev) {
			t.Errorf("event %d: seq %d originSeq %d lamport %d prev %x", i, ev.Seq, ev.OriginSeq, ev.Lamport, ev.Prev[:4])
		}
		if ev.Origin != e.id.PeerID() || len(ev.ID) != 26 || ev.TS == 0 {
			t.Errorf("event %d: origin %q id %q ts %d", i, ev.Origin, ev.ID, ev.TS)
		}
		if _, err := VerifyEvent(&ev); err != nil {
			t.Errorf("event %d: %v", i, err)
		}
	}
	var p map[string]any
	if err := a.DecodePayload(&p); err != nil || p["text"] != "hi" {
		t.Fatalf("payload %v %v", p, err)
	}
	got, err := e.log.Read(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("read %d events", len(got))
	}
	for i, ev := range []api.Event{a, b, c} {
		if !sameEvent(got[i], ev) {
			t.Errorf("read back %d differs:\n%+v\n%+v", i, got[i], ev)
		}
	}
	if e.log.Head() != 3 || e.log.Lamport() != 3 {
		t.Fatalf("head %d lamport %d", e.log.Head(), e.log.Lamport())
	}
}

func hashOf(t *testing.T, ev api.Event) []byte {
	h, err := HashOf(&ev)
	if err != nil {
		t.Fatal(err)
	}
	return h[:]
}

func sameEvent(a, b api.Event) bool {
	ca, err1 := Canonical(&a)
	cb, err2 := Canonical(&b)
	return err1 == nil && err2 == nil && bytes.Equal(ca, cb) && a.Seq == b.Seq && bytes.Equal(a.Sig, b.Sig)
}

func TestAppendRefusesMalformed(t *testing.T) {
	e := newEnv(t, Options{})
	base := api.Event{Class: "chat:posted", Channel: "room", SchemaVersion: "v1"}
	cases := map[string]func(*api.Event){
		"no channel":        func(ev *api.Event) { ev.Channel = "" },
		"no class":          func(ev *api.Event) { ev.Class = "" },
		"control in id":     func(ev *api.Event) { ev.ID = "a\x00b" },
		"long id":           func(ev *api.Event) { ev.ID = string(bytes.Repeat([]byte("x"), MaxIDLen+1)) },
		"control in chan":   func(ev *api.Event) { ev.Channel = "a\nb" },
		"bad utf8 payload":  func(ev *api.Event) { ev.Payload = string([]byte{0xff}) },
		"bad utf8 header":   func(ev *api.Event) { ev.Headers = map[string]string{"k": string([]byte{0xff})} },
		"unencodable value": func(ev *api.Event) { ev.Payload = make(chan int) },
	}
	for name, mut := range cases {
		ev := base
		mut(&ev)
		_, _, err := e.log.Append(context.Background(), ev)
		if api.CodeOf(err) != api.CodeInvalidArgument {
			t.Errorf("%s: got %v, want invalid_argument", name, err)
		}
	}
	if e.log.Head() != 0 {
		t.Fatal("a refused append was stored")
	}
}

func TestDedupe(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	ev := api.Event{ID: "client-1", Class: "chat:posted", Channel: "room", SchemaVersion: "v1", Payload: 1}

	t.Run("client retry", func(t *testing.T) {
		first, dup, err := e.log.Append(ctx, ev)
		if err != nil || dup {
			t.Fatal(dup, err)
		}
		retry := ev
		retry.Payload = 2 // a retry that changed its mind still gets the stored record
		again, dup, err := e.log.Append(ctx, retry)
		if err != nil || !dup || !sameEvent(first, again) {
			t.Fatalf("retry: dup=%v err=%v", dup, err)
		}
		if e.log.Head() != 1 {
			t.Fatalf("head %d after a retry", e.log.Head())
		}
	})

	t.Run("same id in one batch", func(t *testing.T) {
		// The first append is being committed and stalls; the next ones queue
		// behind it and go into one batch.
		release := stallCommits(t, e.log, func() { e.log.Append(ctx, api.Event{Class: "c", Channel: "other"}) })
		var wg sync.WaitGroup
		out := make([]api.Event, 8)
		dups := make([]bool, 8)
		for i := range out {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				out[i], dups[i], err = e.log.Append(ctx, api.Event{ID: "batch-id", Class: "c", Channel: "room", Payload: i})
				if err != nil {
					t.Error(err)
				}
			}()
		}
		waitQueued(t, e.log, 0)
		time.Sleep(20 * time.Millisecond) // let the remaining duplicates find the queued one
		release()
		wg.Wait()
		stored := 0
		for i := range out {
			if !dups[i] {
				stored++
			}
			if !sameEvent(out[i], out[0]) {
				t.Fatalf("answers differ: %+v vs %+v", out[i], out[0])
			}
		}
		if stored != 1 {
			t.Fatalf("%d appends say they stored the event", stored)
		}
		n := 0
		evs, _ := e.log.Read(0, 100)
		for _, ev := range evs {
			if ev.ID == "batch-id" {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("batch-id stored %d times", n)
		}
	})

	t.Run("same id from another origin is not a duplicate", func(t *testing.T) {
		p := newPeer(t)
		foreign := p.event(t, "room", 1, Hash{}, 5, "theirs")
		foreign.ID = "client-1"
		if err := SignEvent(p.id, &foreign); err != nil {
			t.Fatal(err)
		}
		got, outcome, err := ingest(t, e.log, foreign)
		if err != nil || outcome != IngestAppended {
			t.Fatalf("%v %v", outcome, err)
		}
		mine, ok, _ := e.log.Get(e.id.PeerID(), "client-1")
		theirs, ok2, _ := e.log.Get(p.id.PeerID(), "client-1")
		if !ok || !ok2 || mine.Seq == theirs.Seq || theirs.Seq != got.Seq {
			t.Fatalf("both should be stored: %v %v", mine.Seq, theirs.Seq)
		}
		// and a replayed copy of the foreign one is a duplicate
		if _, outcome, err := ingest(t, e.log, foreign); err != nil || outcome != IngestDuplicate {
			t.Fatalf("replayed foreign event: %v %v", outcome, err)
		}
	})
}

// stallCommits makes the next commit wait until release is called; it
// returns once that commit has started.
func stallCommits(t *testing.T, l *Log, trigger func()) (release func()) {
	entered, ch := make(chan struct{}), make(chan struct{})
	var once, rel sync.Once
	f := func() error {
		once.Do(func() { close(entered); <-ch })
		return nil
	}
	l.failCommit.Store(&f)
	release = func() { rel.Do(func() { close(ch) }) }
	t.Cleanup(release) // a failing test must not leave the commit goroutine stuck
	go trigger()
	<-entered
	return release
}

// waitQueued waits until more than n items wait in the queue.
func waitQueued(t *testing.T, l *Log, n int) {
	t.Helper()
	for i := 0; i < 2000; i++ {
		l.mu.Lock()
		q := len(l.queue)
		l.mu.Unlock()
		if q > n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("nothing queued")
}

func TestLamportRules(t *testing.T) {
	e := newEnv(t, Options{MaxLamportSkew: 1000})
	p := newPeer(t)
	steps := []struct {
		name    string
		do      func() (uint64, error) // returns the lamport stored
		want    uint64
		reason  RejectReason
		clockAt uint64
	}{
		{"local takes clock+1", func() (uint64, error) { return e.append("r", 1).Lamport, nil }, 1, "", 1},
		{"received ahead moves the clock", ingestLamport(t, e, p, 500), 500, "", 500},
		{"local after it", func() (uint64, error) { return e.append("r", 2).Lamport, nil }, 501, "", 501},
		{"received behind keeps its lamport", ingestLamport(t, e, p, 10), 10, "", 501},
		{"beyond the skew is refused", ingestLamport(t, e, p, 501+1001), 0, RejectLamportBound, 501},
		{"at the skew is taken", ingestLamport(t, e, p, 501+1000), 1501, "", 1501},
		{"above 2^53-1 is refused", ingestLamport(t, e, p, MaxLamport+1), 0, RejectLamportBound, 1501},
		{"later events still get in", func() (uint64, error) { return e.append("r", 3).Lamport, nil }, 1502, "", 1502},
	}
	for _, s := range steps {
		got, err := s.do()
		var rej *RejectError
		switch {
		case s.reason != "" && (!errors.As(err, &rej) || rej.Reason != s.reason):
			t.Errorf("%s: err %v, want %s", s.name, err, s.reason)
		case s.reason == "" && err != nil:
			t.Errorf("%s: %v", s.name, err)
		case s.reason == "" && got != s.want:
			t.Errorf("%s: lamport %d, want %d", s.name, got, s.want)
		}
		if e.log.Lamport() != s.clockAt {
			t.Errorf("%s: clock %d, want %d", s.name, e.log.Lamport(), s.clockAt)
		}
	}
	if api.CodeOf(fmt.Errorf("wrapped: %w", &RejectError{Reason: RejectLamportBound})) != api.CodeInvalidArgument {
		t.Error("a RejectError should carry invalid_argument")
	}

	// With an unbounded skew the ceiling is exactly 2^53-1.
	e2 := newEnv(t, Options{MaxLamportSkew: 1 << 62})
	p2 := newPeer(t)
	if _, _, err := ingest(t, e2.log, p2.next(t, "r", MaxLamport+1)); err == nil {
		t.Error("2^53 accepted")
	}
	p2.seq["r"], p2.tip["r"] = 0, Hash{}
	if _, _, err := ingest(t, e2.log, p2.next(t, "r", MaxLamport)); err != nil {
		t.Errorf("2^53-1 refused: %v", err)
	}
	if _, _, err := e2.log.Append(context.Background(), api.Event{Class: "c", Channel: "r"}); api.CodeOf(err) != api.CodeResourceExhausted {
		t.Errorf("a local append past the ceiling: %v", err)
	}
}

// ingestLamport ingests the peer's next event on its own channel (so each
// has a fresh chain and only the lamport rule is at play).
func ingestLamport(t *testing.T, e *env, p *peer, lamport uint64) func() (uint64, error) {
	return func() (uint64, error) {
		ch := fmt.Sprintf("l%d", lamport)
		ev, _, err := ingest(t, e.log, p.next(t, ch, lamport))
		if err != nil {
			// a refused event did not advance the peer's chain here
			p.seq[ch], p.tip[ch] = 0, Hash{}
		}
		return ev.Lamport, err
	}
}

func TestChainGapForkAndRejections(t *testing.T) {
	e := newEnv(t, Options{})
	p := newPeer(t)
	ch := "room"
	e1 := p.next(t, ch, 1)
	e2 := p.next(t, ch, 2)
	e3 := p.next(t, ch, 3)
	e4 := p.next(t, ch, 4)
	e5 := p.next(t, ch, 5)
	// a second event at originSeq 2 signed by the same origin: a fork
	fork2 := p.event(t, ch, 2, Hash(hashOf(t, e1)), 2, "other history")
	// an event at hw+1 whose prev names something we do not have
	badPrev := p.event(t, ch, 6, Hash{1}, 6, "dangling")
	badSig := p.next(t, "elsewhere", 7)
	badSig.Payload = "tampered"
	notPeer := e1
	notPeer.Origin = "not-a-peer"
	alias := e1
	alias.ID = "fresh"
	// the same origin key spelled as another peer id does not exist; a
	// valid-looking foreign origin with a signature by p is refused
	other := newPeer(t)
	stolen := e1
	stolen.ID = "stolen"
	stolen.Origin = other.id.PeerID()

	steps := []struct {
		name    string
		ev      api.Event
		outcome IngestOutcome
		reason  RejectReason
		holes   []Range
	}{
		{"first", e1, IngestAppended, "", nil},
		{"second", e2, IngestAppended, "", nil},
		{"gap", e4, IngestGap, "", []Range{{3, 3}}},
		{"hole filled", e3, IngestFilled, "", nil},
		{"fork at a stored originSeq", fork2, IngestFork, RejectFork, nil},
		{"bad signature", badSig, IngestRejected, RejectBadSignature, nil},
		{"origin not a peer id", notPeer, IngestRejected, RejectMalformed, nil},
		{"signature by another key", stolen, IngestRejected, RejectBadSignature, nil},
		{"tampered id", alias, IngestRejected, RejectBadSignature, nil},
		{"next after all that", e5, IngestAppended, "", nil},
		{"prev does not match", badPrev, IngestFork, RejectFork, nil},
	}
	var rejections []RejectReason
	for _, s := range steps {
		got, outcome, err := ingest(t, e.log, s.ev)
		if outcome != s.outcome {
			t.Errorf("%s: outcome %v (%v), want %v", s.name, outcome, err, s.outcome)
		}
		if s.outcome == IngestRejected {
			var rej *RejectError
			if !errors.As(err, &rej) || rej.Reason != s.reason {
				t.Errorf("%s: err %v, want %s", s.name, err, s.reason)
			}
		} else if err != nil {
			t.Errorf("%s: %v", s.name, err)
		} else if got.Seq == 0 {
			t.Errorf("%s: not given a seq", s.name)
		}
		if s.reason != "" {
			rejections = append(rejections, s.reason)
		}
		holes, _ := e.log.Holes(p.id.PeerID(), ch)
		if !slices.Equal(holes, s.holes) {
			t.Errorf("%s: holes %v, want %v", s.name, holes, s.holes)
		}
	}
	recs, err := e.log.Rejections(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []RejectReason
	for _, r := range recs {
		reasons = append(reasons, r.Reason)
	}
	if !slices.Equal(reasons, rejections) {
		t.Fatalf("recorded %v, want %v", reasons, rejections)
	}
	if recs[0].Kept == 0 || recs[0].Origin != p.id.PeerID() || recs[0].OriginSeq != 2 {
		t.Fatalf("fork record %+v", recs[0])
	}
	forked, _ := e.log.ForkedOrigins()
	if forked[p.id.PeerID()] != 2 || len(forked) != 1 {
		t.Fatalf("flagged %v", forked)
	}
	// both events at originSeq 2 are kept; neither overwrote the other
	for _, ev := range []api.Event{e2, fork2} {
		if _, ok, _ := e.log.Get(ev.Origin, ev.ID); !ok {
			t.Fatalf("%s was not kept", ev.ID)
		}
	}
	hw, _ := e.log.HighWater()
	if hw[p.id.PeerID()][ch] != 5 {
		t.Fatalf("high-water %v, want 5 (the fork does not move it)", hw)
	}
	// a filled hole between stored neighbours must link to both
	q := newPeer(t)
	q1, q2, q3 := q.next(t, "c", 1), q.next(t, "c", 2), q.next(t, "c", 3)
	_ = q2
	ingest(t, e.log, q1)
	ingest(t, e.log, q3)
	liar := q.event(t, "c", 2, Hash(hashOf(t, q1)), 2, "not the real 2")
	if _, outcome, _ := ingest(t, e.log, liar); outcome != IngestFork {
		t.Fatalf("a hole filler that the next event does not link to: %v", outcome)
	}
	if holes, _ := e.log.Holes(q.id.PeerID(), "c"); !slices.Equal(holes, []Range{{2, 2}}) {
		t.Fatalf("holes %v: a fork must not fill the hole", holes)
	}
	if _, outcome, _ := ingest(t, e.log, q2); outcome != IngestFilled {
		t.Fatalf("the real originSeq 2: %v", outcome)
	}
}

func TestHoleRanges(t *testing.T) {
	e := newEnv(t, Options{})
	p := newPeer(t)
	var evs []api.Event
	for i := 1; i <= 10; i++ {
		evs = append(evs, p.next(t, "c", uint64(i)))
	}
	steps := []struct {
		originSeq int
		want      []Range
	}{
		{1, nil},
		{10, []Range{{2, 9}}},
		{5, []Range{{2, 4}, {6, 9}}},
		{2, []Range{{3, 4}, {6, 9}}},
		{9, []Range{{3, 4}, {6, 8}}},
		{4, []Range{{3, 3}, {6, 8}}},
		{3, []Range{{6, 8}}},
		{7, []Range{{6, 6}, {8, 8}}},
		{6, []Range{{8, 8}}},
		{8, nil},
	}
	for _, s := range steps {
		if _, _, err := ingest(t, e.log, evs[s.originSeq-1]); err != nil {
			t.Fatal(err)
		}
		if got, _ := e.log.Holes(p.id.PeerID(), "c"); !slices.Equal(got, s.want) {
			t.Fatalf("after %d: holes %v, want %v", s.originSeq, got, s.want)
		}
	}
}

func TestReplayPaging(t *testing.T) {
	e := newEnv(t, Options{})
	peers := []*peer{newPeer(t), newPeer(t)}
	r := rand.New(rand.NewPCG(1, 2))
	var all []api.Event
	for i := 0; i < 40; i++ {
		var ev api.Event
		if i%3 == 0 {
			ev = e.append("room", i)
		} else {
			p := peers[i%2]
			// lamports repeat across origins, so ids break ties
			got, _, err := ingest(t, e.log, p.next(t, "room", uint64(1+r.IntN(30))))
			if err != nil {
				t.Fatal(err)
			}
			ev = got
		}
		all = append(all, ev)
	}
	e.append("other-room", "not in the transcript")
	sort.Slice(all, func(i, j int) bool {
		if all[i].Lamport != all[j].Lamport {
			return all[i].Lamport < all[j].Lamport
		}
		if all[i].ID != all[j].ID {
			return all[i].ID < all[j].ID
		}
		return all[i].Origin < all[j].Origin
	})
	ids := func(evs []api.Event) []uint64 {
		var out []uint64
		for _, ev := range evs {
			out = append(out, ev.Seq)
		}
		return out
	}
	for _, limit := range []int{1, 7, 40, 500} {
		var fwd []api.Event
		cur := ""
		for pages := 0; ; pages++ {
			page, next, err := e.log.Replay("room", cur, "", limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > limit || pages > 100 {
				t.Fatalf("page of %d at limit %d", len(page), limit)
			}
			fwd = append(fwd, page...)
			if next == "" {
				break
			}
			cur = next
		}
		if !slices.Equal(ids(fwd), ids(all)) {
			t.Fatalf("forward at limit %d:\n got  %v\n want %v", limit, ids(fwd), ids(all))
		}
		var back []api.Event
		cur = ReplayEnd
		for {
			page, next, err := e.log.Replay("room", "", cur, limit)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.IsSortedFunc(page, func(a, b api.Event) int { return int(a.Lamport) - int(b.Lamport) }) {
				t.Fatal("a backward page is not in ascending order")
			}
			back = append(slices.Clone(page), back...)
			if next == "" {
				break
			}
			cur = next
		}
		if !slices.Equal(ids(back), ids(all)) {
			t.Fatalf("backward at limit %d:\n got  %v\n want %v", limit, ids(back), ids(all))
		}
	}
	// a cursor taken from an event works in both directions
	mid := all[20]
	after, _, _ := e.log.Replay("room", ReplayCursor(&mid), "", 3)
	before, _, _ := e.log.Replay("room", "", ReplayCursor(&mid), 3)
	if !slices.Equal(ids(after), ids(all[21:24])) || !slices.Equal(ids(before), ids(all[17:20])) {
		t.Fatalf("around the middle: %v | %v", ids(before), ids(after))
	}
	for name, call := range map[string]func() error{
		"limit above 500": func() error { _, _, err := e.log.Replay("room", "", "", 501); return err },
		"after and before": func() error {
			_, _, err := e.log.Replay("room", ReplayCursor(&mid), ReplayCursor(&mid), 5)
			return err
		},
		"garbage cursor": func() error { _, _, err := e.log.Replay("room", "!!", "", 5); return err },
	} {
		if api.CodeOf(call()) != api.CodeInvalidArgument {
			t.Errorf("%s: want invalid_argument", name)
		}
	}
	if evs, next, err := e.log.Replay("nowhere", "", "", 10); err != nil || len(evs) != 0 || next != "" {
		t.Fatalf("unknown channel: %v %q %v", evs, next, err)
	}
}

func TestReadAfterSeq(t *testing.T) {
	e := newEnv(t, Options{})
	for i := 0; i < 25; i++ {
		e.append(fmt.Sprintf("c%d", i%3), i)
	}
	for _, tc := range []struct {
		after uint64
		limit int
		want  []uint64
	}{
		{0, 3, []uint64{1, 2, 3}},
		{22, 10, []uint64{23, 24, 25}},
		{25, 10, nil},
		{100, 10, nil},
		{10, 0, seqs(11, 25)},
	} {
		got, err := e.log.Read(tc.after, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		var s []uint64
		for _, ev := range got {
			s = append(s, ev.Seq)
		}
		if !slices.Equal(s, tc.want) {
			t.Errorf("Read(%d, %d) = %v, want %v", tc.after, tc.limit, s, tc.want)
		}
	}
}

func seqs(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func TestCursorsPersistAcrossReopen(t *testing.T) {
	e := newEnv(t, Options{})
	for i := 0; i < 5; i++ {
		e.append("c", i)
	}
	if err := e.log.Ack("inbox", 3); err != nil {
		t.Fatal(err)
	}
	if err := e.log.Ack("inbox", 2); err != nil { // cursors only move forward
		t.Fatal(err)
	}
	if p, ok, _ := e.log.Cursor("inbox"); !ok || p.Seq != 3 || p.Epoch != 1 {
		t.Fatalf("before the flush: %+v %v", p, ok)
	}
	e.log.Ack("gone", 1)
	e.log.DeleteCursor("gone")
	if err := e.log.Ack("inbox", 99); api.CodeOf(err) != api.CodeInvalidArgument {
		t.Fatalf("ack beyond the head: %v", err)
	}
	e.reopen()
	if p, ok, err := e.log.Cursor("inbox"); err != nil || !ok || p.Seq != 3 {
		t.Fatalf("after reopen: %+v %v %v", p, ok, err)
	}
	if _, ok, _ := e.log.Cursor("gone"); ok {
		t.Fatal("a deleted cursor came back")
	}
	if _, ok, _ := e.log.Cursor("never"); ok {
		t.Fatal("an unknown cursor exists")
	}
	// The epoch is in the file and in the cursors.
	ep, err := e.log.BumpEpoch()
	if err != nil || ep != 2 {
		t.Fatal(ep, err)
	}
	e.log.Ack("inbox", 4)
	if err := e.log.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	if e.log.Epoch() != 2 {
		t.Fatalf("epoch %d after reopen", e.log.Epoch())
	}
	if p, _, _ := e.log.Cursor("inbox"); p != (Position{Epoch: 2, Seq: 4}) {
		t.Fatalf("cursor %+v", p)
	}
	if e.log.Head() != 5 || e.log.Lamport() != 5 {
		t.Fatalf("head %d lamport %d after reopen", e.log.Head(), e.log.Lamport())
	}
	// the chain continues where it was
	ev := e.append("c", "after")
	if ev.OriginSeq != 6 || ev.Seq != 6 || ev.Lamport != 6 {
		t.Fatalf("after reopen: %+v", ev)
	}
}

func TestConcurrentAppenders(t *testing.T) {
	const writers, each = 64, 40
	e := newEnv(t, Options{})
	var (
		mu    sync.Mutex
		acked = map[uint64]api.Event{}
		wg    sync.WaitGroup
	)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				ev, dup, err := e.log.Append(context.Background(), api.Event{
					ID: fmt.Sprintf("w%d-%d", w, i), Class: "c", Channel: fmt.Sprintf("ch%d", w%4), Payload: i,
				})
				if err != nil || dup {
					t.Error(dup, err)
					return
				}
				mu.Lock()
				if _, twice := acked[ev.Seq]; twice {
					t.Errorf("seq %d acknowledged twice", ev.Seq)
				}
				acked[ev.Seq] = ev
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	n := uint64(writers * each)
	if uint64(len(acked)) != n || e.log.Head() != n {
		t.Fatalf("%d acked, head %d, want %d", len(acked), e.log.Head(), n)
	}
	e.mu.Lock()
	seen := slices.Clone(e.seen)
	batches := e.calls
	e.mu.Unlock()
	for i, ev := range seen {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("OnCommit delivered seq %d at position %d", ev.Seq, i)
		}
	}
	if uint64(len(seen)) != n {
		t.Fatalf("OnCommit saw %d events", len(seen))
	}
	t.Logf("%d events in %d group commits", n, batches)
	// Every channel is a dense, linked, signed chain, and lamports grow with seq.
	all, err := e.log.Read(0, int(n))
	if err != nil {
		t.Fatal(err)
	}
	oseq := map[string]uint64{}
	tip := map[string][]byte{}
	var lastLamport uint64
	for _, ev := range all {
		if !sameEvent(ev, acked[ev.Seq]) {
			t.Fatalf("seq %d differs from its acknowledgement", ev.Seq)
		}
		h, err := VerifyEvent(&ev)
		if err != nil {
			t.Fatalf("seq %d: %v", ev.Seq, err)
		}
		if ev.OriginSeq != oseq[ev.Channel]+1 {
			t.Fatalf("seq %d: originSeq %d after %d", ev.Seq, ev.OriginSeq, oseq[ev.Channel])
		}
		if p := tip[ev.Channel]; p != nil && !bytes.Equal(ev.Prev, p) {
			t.Fatalf("seq %d: prev does not link", ev.Seq)
		}
		if ev.Lamport <= lastLamport {
			t.Fatalf("seq %d: lamport %d after %d", ev.Seq, ev.Lamport, lastLamport)
		}
		oseq[ev.Channel], tip[ev.Channel], lastLamport = ev.OriginSeq, h[:], ev.Lamport
	}
}

func TestFailedCommitRollsBack(t *testing.T) {
	e := newEnv(t, Options{})
	p := newPeer(t)
	before := e.append("c", "committed")
	ingest(t, e.log, p.next(t, "c", 1))
	e.log.Ack("cur", 1)
	e.log.Flush(context.Background())
	statsBefore, _ := e.log.Stats()

	var fail atomic.Bool
	fail.Store(true)
	f := func() error {
		if fail.Load() {
			return errors.New("injected: no space left on device")
		}
		return nil
	}
	e.log.failCommit.Store(&f)
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = e.log.Append(context.Background(), api.Event{ID: fmt.Sprintf("f%d", i), Class: "c", Channel: "c", Payload: i})
		}()
	}
	wg.Wait()
	pe := p.next(t, "c", 50)
	if _, _, err := ingest(t, e.log, pe); api.CodeOf(err) != api.CodeUnavailable {
		t.Fatalf("ingest during the failure: %v", err)
	}
	e.log.Ack("cur", 2)
	for i, err := range errs {
		if api.CodeOf(err) != api.CodeUnavailable {
			t.Fatalf("append %d: %v, want unavailable", i, err)
		}
	}
	if e.log.Head() != 2 || e.log.Lamport() != 1 {
		t.Fatalf("head %d lamport %d moved during failed commits", e.log.Head(), e.log.Lamport())
	}
	statsDuring, _ := e.log.Stats()
	if statsDuring.Events != statsBefore.Events || statsDuring.Channels["c"] != statsBefore.Channels["c"] {
		t.Fatalf("counters moved: %+v vs %+v", statsDuring, statsBefore)
	}

	fail.Store(false) // the disk recovered
	// The Ack above starts a commit of its own; if that one read the failure
	// before the Store, whatever is admitted while it runs fails with it
	// (queued on top of a failed batch). Wait for a commit that works.
	for deadline := time.Now().Add(10 * time.Second); e.log.Flush(context.Background()) != nil; {
		if time.Now().After(deadline) {
			t.Fatal("no commit succeeds after the disk recovered")
		}
	}
	after := e.append("c", "after")
	if after.Seq != 3 || after.OriginSeq != 2 || after.Lamport != 2 || !bytes.Equal(after.Prev, hashOf(t, before)) {
		t.Fatalf("after recovery: seq %d originSeq %d lamport %d", after.Seq, after.OriginSeq, after.Lamport)
	}
	// the failed ids were never stored, so they can be appended now
	if _, dup, err := e.log.Append(context.Background(), api.Event{ID: "f0", Class: "c", Channel: "c"}); err != nil || dup {
		t.Fatalf("retry of a failed append: dup=%v err=%v", dup, err)
	}
	// the foreign chain resumes at its committed state: pe (originSeq 2) fits
	if _, outcome, err := ingest(t, e.log, pe); err != nil || outcome != IngestAppended {
		t.Fatalf("foreign retry: %v %v", outcome, err)
	}
	e.log.Flush(context.Background())
	if c, _, _ := e.log.Cursor("cur"); c.Seq != 2 {
		t.Fatalf("the ack made during the failure was lost: %+v", c)
	}
	checkFile(t, e.st.DB)
}

// checkFile runs bbolt's consistency check.
func checkFile(t *testing.T, db *bolt.DB) {
	t.Helper()
	err := db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("bbolt check: %v", err)
	}
}

func TestReadOnlyStore(t *testing.T) {
	e := newEnv(t, Options{})
	e.append("c", 1)
	e.log.Close()
	e.st.Close()
	db, err := bolt.Open(filepath.Join(e.dir, store.FileName), 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l, err := Open(db, e.id, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, _, err := l.Append(context.Background(), api.Event{Class: "c", Channel: "c"}); api.CodeOf(err) != api.CodeUnavailable {
		t.Fatalf("append to a read-only file: %v", err)
	}
	if evs, _ := l.Read(0, 10); len(evs) != 1 || l.Head() != 1 {
		t.Fatalf("reading a read-only file: %d events, head %d", len(evs), l.Head())
	}
	// reopen for the cleanup
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e.st = st
	e.log, _ = Open(st.DB, e.id, Options{})
}

func TestCloseDrains(t *testing.T) {
	e := newEnv(t, Options{})
	release := stallCommits(t, e.log, func() { e.log.Append(context.Background(), api.Event{Class: "c", Channel: "c"}) })
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = e.log.Append(context.Background(), api.Event{Class: "c", Channel: "c", Payload: i})
		}()
	}
	waitQueued(t, e.log, 5)
	done := make(chan struct{})
	go func() { e.log.Close(); close(done) }()
	time.Sleep(10 * time.Millisecond)
	release()
	<-done
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else if api.CodeOf(err) != api.CodeUnavailable {
			t.Fatal(err)
		}
	}
	if uint64(ok)+1 != e.log.Head() {
		t.Fatalf("%d acknowledged, head %d", ok, e.log.Head())
	}
	if _, _, err := e.log.Append(context.Background(), api.Event{Class: "c", Channel: "c"}); api.CodeOf(err) != api.CodeUnavailable {
		t.Fatalf("append after close: %v", err)
	}
}

func TestCanceledWait(t *testing.T) {
	e := newEnv(t, Options{})
	release := stallCommits(t, e.log, func() { e.log.Append(context.Background(), api.Event{Class: "c", Channel: "c"}) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, _, err := e.log.Append(ctx, api.Event{ID: "slow", Class: "c", Channel: "c"})
	if api.CodeOf(err) != api.CodeDeadlineExceeded {
		t.Fatalf("%v", err)
	}
	release()
	// the event was committed all the same; a retry finds it
	ev, dup, err := e.log.Append(context.Background(), api.Event{ID: "slow", Class: "c", Channel: "c"})
	if err != nil || !dup || ev.Seq != 2 {
		t.Fatalf("retry: %v %v %v", ev.Seq, dup, err)
	}
}
