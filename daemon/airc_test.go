package daemon_test

// End-to-end tests of the airc log through a running daemon and the Go
// client: log-backed subscriptions (from, durable, ack), replay paging,
// log/stats, and the emit checks that must leave nothing in the log.

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/daemon"
	"github.com/continuum-grid/continuum/ipc/client"
)

// dialBig connects with a subscription buffer large enough that the client
// itself never drops: a drop here must come from the daemon or not at all.
func dialBig(t *testing.T, d *testDaemon) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, d.SocketPath(), client.WithEventBuffer(1<<16))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func declare(t *testing.T, c *client.Client, cfg api.ClassConfig) {
	t.Helper()
	if cfg.SchemaVersion == "" {
		cfg.SchemaVersion = "v1"
	}
	if _, err := c.DeclareClass(ctxT(t), cfg); err != nil {
		t.Fatalf("declare %s: %v", cfg.Name, err)
	}
}

func logStats(t *testing.T, c *client.Client) api.LogStats {
	t.Helper()
	var st api.LogStats
	if err := c.Call(ctxT(t), api.MethodLogStats, nil, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func mustEmit(t *testing.T, c *client.Client, p api.EmitParams) api.EmitResult {
	t.Helper()
	res, err := c.Emit(ctxT(t), p)
	if err != nil {
		t.Fatalf("emit %s %s: %v", p.Name, p.ID, err)
	}
	return res
}

// collect reads events from sub until want ids have arrived or the deadline
// passes; it fails on a duplicate or a seq that does not increase.
func collect(t *testing.T, sub *client.Subscription, want int) []api.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []api.Event
	seen := map[string]bool{}
	for len(got) < want {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("after %d of %d events: %v", len(got), want, err)
		}
		if seen[ev.ID] {
			t.Fatalf("event %s (seq %d) delivered twice", ev.ID, ev.Seq)
		}
		seen[ev.ID] = true
		if n := len(got); n > 0 && ev.Seq != 0 && got[n-1].Seq >= ev.Seq {
			t.Fatalf("seq %d delivered after seq %d", ev.Seq, got[n-1].Seq)
		}
		got = append(got, *ev)
	}
	return got
}

// noMore fails if sub delivers anything within a short wait.
func noMore(t *testing.T, sub *client.Subscription) {
	t.Helper()
	select {
	case ev, ok := <-sub.Events():
		if ok {
			t.Fatalf("unexpected extra event %s (seq %d, class %s)", ev.ID, ev.Seq, ev.Class)
		}
	case <-time.After(150 * time.Millisecond):
	}
}

// Subscriptions that replay the log while emitters keep going must see every
// event exactly once, in seq order, across the seam between what was in the
// log when they subscribed and what came after.
func TestLogSubscribeFromStartWhileEmitting(t *testing.T) {
	d := start(t)
	c := dialBig(t, d)
	declare(t, c, api.ClassConfig{Name: "tick:sent", Broadcast: true, Channel: api.ChannelGlobal})

	// Emitters run until told to stop, which is only once the subscriptions
	// are in place and many more events came after them: emits are sure to
	// cross the seam.
	const emitters, before, after = 8, 200, 200
	var (
		mu   sync.Mutex
		ids  = map[string]uint64{}
		wg   sync.WaitGroup
		stop = make(chan struct{})
	)
	// A Fatal below must not leave emitters running past the test's end.
	defer wg.Wait()
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }) }
	defer halt()
	for w := 0; w < emitters; w++ {
		em := dial(t, d)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%d", w, i)
				res, err := em.Emit(context.Background(), api.EmitParams{Name: "tick:sent", ID: id, Payload: map[string]any{"i": i}})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ids[id] = res.Seq
				mu.Unlock()
			}
		}()
	}
	// Subscribe once a backlog exists and while emits are still arriving.
	waitHead := func(n uint64) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for logStats(t, c).Head < n {
			if time.Now().After(deadline) {
				t.Fatal("emitters made no progress")
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitHead(before)
	ctx := ctxT(t)
	fromStart, err := c.Subscribe(ctx, api.SubscribeParams{Pattern: "tick:*", From: api.FromStart})
	if err != nil {
		t.Fatal(err)
	}
	durable, err := c.Subscribe(ctx, api.SubscribeParams{Pattern: "*", From: api.FromStart, Durable: "seam"})
	if err != nil {
		t.Fatal(err)
	}
	mid := logStats(t, c).Head
	fromSeq, err := c.Subscribe(ctx, api.SubscribeParams{Pattern: "tick:sent", From: api.FromSeq(mid)})
	if err != nil {
		t.Fatal(err)
	}
	if fromSeq.Cursor() != mid || fromStart.Cursor() != 0 {
		t.Fatalf("cursors: from seq %d, from start %d; want %d and 0", fromSeq.Cursor(), fromStart.Cursor(), mid)
	}
	waitHead(mid + after)
	halt()
	wg.Wait()
	if t.Failed() {
		return
	}
	total := len(ids)
	if st := logStats(t, c); st.Events != uint64(total) {
		t.Fatalf("%d emits acknowledged, the log holds %d", total, st.Events)
	}
	for name, sub := range map[string]*client.Subscription{"from start": fromStart, "durable": durable} {
		got := collect(t, sub, total)
		for i, ev := range got {
			if ev.Seq != uint64(i+1) {
				t.Fatalf("%s: event %d has seq %d: a gap or reordering", name, i, ev.Seq)
			}
			if ids[ev.ID] != ev.Seq {
				t.Fatalf("%s: event %s has seq %d, emit said %d", name, ev.ID, ev.Seq, ids[ev.ID])
			}
		}
		noMore(t, sub)
		if lag := sub.Lagged(); lag.Kernel+lag.Client != 0 {
			t.Fatalf("%s: lagged %+v", name, lag)
		}
	}
	got := collect(t, fromSeq, total-int(mid))
	if got[0].Seq != mid+1 {
		t.Fatalf("from seq %d starts at %d", mid, got[0].Seq)
	}
	noMore(t, fromSeq)
}

// A durable cursor resumes after the last ack, on a new connection and after a
// restart; events delivered but not acked come again (at-least-once).
func TestDurableCursorResumesAfterAck(t *testing.T) {
	d := start(t)
	dir := d.dir
	c := dialBig(t, d)
	declare(t, c, api.ClassConfig{Name: "job:queued", Broadcast: true, Channel: api.ChannelGlobal})
	ctx := ctxT(t)
	var seqs []uint64
	for i := 0; i < 10; i++ {
		seqs = append(seqs, mustEmit(t, c, api.EmitParams{Name: "job:queued", ID: fmt.Sprintf("j%d", i)}).Seq)
	}

	w1 := dialBig(t, d)
	// No cursor stored yet: from decides where a new durable starts.
	sub, err := w1.Subscribe(ctx, api.SubscribeParams{Pattern: "job:*", Durable: "worker", From: api.FromStart})
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, sub, 10)
	if got[0].ID != "j0" || got[9].ID != "j9" {
		t.Fatalf("first delivery %s..%s", got[0].ID, got[9].ID)
	}
	if err := w1.Ack(ctx, "worker", got[5].Seq); err != nil {
		t.Fatal(err)
	}
	wantCode(t, w1.Ack(ctx, " ", 1), api.CodeInvalidArgument)
	wantCode(t, w1.Ack(ctx, "worker", seqs[9]+100), api.CodeInvalidArgument)
	w1.Close()

	for i := 10; i < 13; i++ {
		mustEmit(t, c, api.EmitParams{Name: "job:queued", ID: fmt.Sprintf("j%d", i)})
	}
	// A new connection with the same name: j6..j9 again (never acked), then
	// j10..j12. from: start is ignored once the cursor exists.
	w2 := dialBig(t, d)
	sub, err = w2.Subscribe(ctx, api.SubscribeParams{Pattern: "job:*", Durable: "worker", From: api.FromStart})
	if err != nil {
		t.Fatal(err)
	}
	if sub.Cursor() != seqs[5] {
		t.Fatalf("resumed after %d, want the acked %d", sub.Cursor(), seqs[5])
	}
	got = collect(t, sub, 7)
	if got[0].ID != "j6" || got[6].ID != "j12" {
		t.Fatalf("resumed delivery %s..%s, want j6..j12", got[0].ID, got[6].ID)
	}
	noMore(t, sub)
	if err := w2.Ack(ctx, "worker", got[4].Seq); err != nil { // up to j10
		t.Fatal(err)
	}
	// An ack lower than the stored one does not move the cursor back.
	if err := w2.Ack(ctx, "worker", seqs[1]); err != nil {
		t.Fatal(err)
	}
	w2.Close()

	// The ack survives a restart of the daemon.
	c.Close()
	d.stop(t)
	d2 := startIn(t, dir)
	w3 := dialBig(t, d2)
	sub, err = w3.Subscribe(ctx, api.SubscribeParams{Pattern: "job:*", Durable: "worker"})
	if err != nil {
		t.Fatal(err)
	}
	got = collect(t, sub, 2)
	if got[0].ID != "j11" || got[1].ID != "j12" {
		t.Fatalf("after restart got %s, %s; want j11, j12", got[0].ID, got[1].ID)
	}
	noMore(t, sub)
	// And it goes live after the replay.
	mustEmit(t, w3, api.EmitParams{Name: "job:queued", ID: "j13"})
	if got = collect(t, sub, 1); got[0].ID != "j13" {
		t.Fatalf("live after replay: %s", got[0].ID)
	}
}

// A durable subscriber that does not read is resumed from the log: it gets
// every event once it reads again, and no events/lagged; a live subscriber on
// the same flood is dropped from and told so.
func TestDurableSubscriberThatLagsLosesNothing(t *testing.T) {
	d := start(t, func(c *daemon.Config) { c.Kernel.SubscriberQueue = 16 })
	emitter := dial(t, d)
	declare(t, emitter, api.ClassConfig{Name: "flood:x", Broadcast: true, Channel: api.ChannelGlobal})
	durable := rawDial(t, d)
	durable.send(0, 1, "events/subscribe", []any{map[string]any{"pattern": "flood:*", "durable": "slow", "from": "start"}})
	if msg := durable.next(); msg == nil || msg[2] != nil {
		t.Fatalf("durable subscribe: %v", msg)
	}
	live := rawDial(t, d)
	live.send(0, 1, "events/subscribe", []any{map[string]any{"pattern": "flood:*"}})
	if msg := live.next(); msg == nil || msg[2] != nil {
		t.Fatalf("live subscribe: %v", msg)
	}

	const n, emitters = 800, 8 // 4 KiB each: far more than the socket buffers hold
	pad := string(make([]byte, 4096))
	var wg sync.WaitGroup
	defer wg.Wait()
	for w := 0; w < emitters; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += emitters {
				if _, err := emitter.Emit(context.Background(), api.EmitParams{Name: "flood:x", ID: fmt.Sprint(i), Payload: pad}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	var last uint64
	seen := map[string]bool{}
	for len(seen) < n {
		msg := durable.next()
		if msg == nil {
			t.Fatalf("durable connection closed after %d events", len(seen))
		}
		if len(msg) != 3 {
			continue
		}
		p := msg[2].([]any)[0].(map[string]any)
		switch msg[1] {
		case "events/lagged":
			t.Fatalf("durable subscriber told it lagged after %d events: %v", len(seen), p)
		case "events/event":
			ev := p["event"].(map[string]any)
			seq := uint64(toInt(ev["seq"]))
			id := ev["id"].(string)
			if seq <= last || seen[id] {
				t.Fatalf("durable: seq %d (id %s) after seq %d", seq, id, last)
			}
			last = seq
			seen[id] = true
		}
	}

	events, dropped := live.countEvents(n)
	if dropped == 0 {
		t.Fatalf("the live subscriber got all %d events: the flood did not make anyone lag, so the durable result proves nothing", events)
	}
}

// Patterns and channels filter log-backed subscriptions as they do live ones,
// and a log-backed subscription still gets local (unlogged) events live.
func TestLogSubscriptionFilters(t *testing.T) {
	d := start(t)
	c := dialBig(t, d)
	declare(t, c, api.ClassConfig{Name: "chat:posted", Broadcast: true, Channel: api.ChannelByRoomID})
	declare(t, c, api.ClassConfig{Name: "chat:edited", Broadcast: true, Channel: api.ChannelByRoomID})
	declare(t, c, api.ClassConfig{Name: "doc:edited", Broadcast: true, Channel: api.ChannelGlobal})
	declare(t, c, api.ClassConfig{Name: "ui:clicked"}) // local
	emitAll := func(prefix string) {
		for _, e := range []struct{ class, room string }{
			{"chat:posted", "general"}, {"chat:posted", "random"}, {"chat:edited", "general"},
			{"doc:edited", ""}, {"chat:edited", "random"},
		} {
			p := api.EmitParams{Name: e.class, ID: prefix + "-" + e.class + "-" + e.room}
			if e.room != "" {
				p.Payload = map[string]any{"roomId": e.room}
			}
			mustEmit(t, c, p)
		}
	}
	emitAll("old")
	ctx := ctxT(t)
	subs := map[string]*client.Subscription{}
	for name, p := range map[string]api.SubscribeParams{
		"chat in general": {Pattern: "chat:*", Channel: "general", From: api.FromStart},
		"edited anywhere": {Pattern: "*:edited", Durable: "edits", From: api.FromStart},
		"global":          {Pattern: "*", Channel: "global", From: api.FromStart},
		"everything":      {Pattern: "*", From: api.FromStart},
	} {
		s, err := c.Subscribe(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		subs[name] = s
	}
	emitAll("new")
	mustEmit(t, c, api.EmitParams{Name: "ui:clicked", ID: "click"})

	want := map[string][]string{
		"chat in general": {"old-chat:posted-general", "old-chat:edited-general", "new-chat:posted-general", "new-chat:edited-general"},
		"edited anywhere": {"old-chat:edited-general", "old-doc:edited-", "old-chat:edited-random", "new-chat:edited-general", "new-doc:edited-", "new-chat:edited-random"},
		"global":          {"old-doc:edited-", "new-doc:edited-"},
	}
	for name, ids := range want {
		got := collect(t, subs[name], len(ids))
		for i := range ids {
			if got[i].ID != ids[i] {
				t.Fatalf("%s: event %d is %s, want %s", name, i, got[i].ID, ids[i])
			}
		}
		noMore(t, subs[name])
	}
	// A local event comes through the live bus and logged ones through the
	// log tailer, so the local one may arrive before logged events emitted
	// earlier: check the logged ones' order and that the local one came once.
	got := collect(t, subs["everything"], 11)
	var logged []api.Event
	clicks := 0
	for _, ev := range got {
		if ev.ID == "click" {
			clicks++
			if ev.Seq != 0 || ev.Channel != "" {
				t.Fatalf("the local event on a log-backed subscription: %+v", ev)
			}
			continue
		}
		logged = append(logged, ev)
	}
	if clicks != 1 || len(logged) != 10 {
		t.Fatalf("everything: %d local and %d logged events, want 1 and 10", clicks, len(logged))
	}
	for i := 1; i < len(logged); i++ {
		if logged[i].Seq != logged[i-1].Seq+1 {
			t.Fatalf("everything: seq %d after %d", logged[i].Seq, logged[i-1].Seq)
		}
	}
	noMore(t, subs["everything"])

	_, err := c.Subscribe(ctx, api.SubscribeParams{Pattern: "chat::x", From: api.FromStart})
	wantCode(t, err, api.CodeInvalidArgument)
}

// events/replay pages a channel in (lamport, id) order, forwards with after
// and backwards from the newest with before, and refuses bad params.
func TestReplayPaging(t *testing.T) {
	d := start(t)
	c := dial(t, d)
	declare(t, c, api.ClassConfig{Name: "chat:posted", Broadcast: true, Channel: api.ChannelByRoomID})
	const n = 23
	for i := 0; i < n; i++ {
		mustEmit(t, c, api.EmitParams{Name: "chat:posted", ID: fmt.Sprintf("m%02d", i), Payload: map[string]any{"roomId": "r", "i": i}})
		mustEmit(t, c, api.EmitParams{Name: "chat:posted", ID: fmt.Sprintf("o%02d", i), Payload: map[string]any{"roomId": "other"}})
	}
	ctx := ctxT(t)
	checkOrder := func(evs []api.Event) {
		t.Helper()
		for i, ev := range evs {
			if ev.Channel != "r" {
				t.Fatalf("replay of r returned an event of %q", ev.Channel)
			}
			if i > 0 && (evs[i-1].Lamport > ev.Lamport || evs[i-1].Lamport == ev.Lamport && evs[i-1].ID >= ev.ID) {
				t.Fatalf("not in (lamport, id) order: %d/%s then %d/%s", evs[i-1].Lamport, evs[i-1].ID, ev.Lamport, ev.ID)
			}
		}
	}

	var all []api.Event
	pages := 0
	for after := (*string)(nil); ; {
		res, err := c.Replay(ctx, api.ReplayParams{Channel: "r", After: after, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(res.Events) > 10 {
			t.Fatalf("page of %d events with limit 10", len(res.Events))
		}
		all = append(all, res.Events...)
		if res.Next == nil {
			break
		}
		after = res.Next
	}
	if pages != 3 || len(all) != n {
		t.Fatalf("%d pages, %d events; want 3 and %d", pages, len(all), n)
	}
	checkOrder(all)
	for i, ev := range all {
		if ev.ID != fmt.Sprintf("m%02d", i) {
			t.Fatalf("event %d is %s", i, ev.ID)
		}
		var p struct {
			I int `msgpack:"i"`
		}
		if err := ev.DecodePayload(&p); err != nil || p.I != i || len(ev.Sig) != 64 || ev.Origin == "" {
			t.Fatalf("event %d: payload %+v (%v), sig %d bytes, origin %q", i, p, err, len(ev.Sig), ev.Origin)
		}
	}

	// Backwards from the newest: each page ascending, pages walking back.
	res, err := c.Replay(ctx, api.ReplayParams{Channel: "r", Before: ptr("end"), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	checkOrder(res.Events)
	if len(res.Events) != 10 || res.Events[0].ID != "m13" || res.Events[9].ID != "m22" || res.Next == nil {
		t.Fatalf("newest page: %d events, %v", len(res.Events), ids(res.Events))
	}
	res, err = c.Replay(ctx, api.ReplayParams{Channel: "r", Before: res.Next, Limit: 10})
	if err != nil || len(res.Events) != 10 || res.Events[0].ID != "m03" || res.Events[9].ID != "m12" {
		t.Fatalf("previous page: %v %v", ids(res.Events), err)
	}
	res, err = c.Replay(ctx, api.ReplayParams{Channel: "r", Before: res.Next, Limit: 10})
	if err != nil || len(res.Events) != 3 || res.Events[0].ID != "m00" || res.Next != nil {
		t.Fatalf("oldest page: %v next %v %v", ids(res.Events), res.Next, err)
	}

	// Default and maximum limits, an empty channel, and bad params.
	if res, err := c.Replay(ctx, api.ReplayParams{Channel: "r", Limit: 500}); err != nil || len(res.Events) != n || res.Next != nil {
		t.Fatalf("limit 500: %d events, next %v, %v", len(res.Events), res.Next, err)
	}
	if res, err := c.Replay(ctx, api.ReplayParams{Channel: "nobody-here"}); err != nil || res.Events == nil || len(res.Events) != 0 || res.Next != nil {
		t.Fatalf("empty channel: %+v %v", res, err)
	}
	for name, p := range map[string]api.ReplayParams{
		"limit 501":         {Channel: "r", Limit: 501},
		"negative limit":    {Channel: "r", Limit: -1},
		"blank channel":     {Channel: " "},
		"after and before":  {Channel: "r", After: ptr(all[0].ID), Before: ptr("end")},
		"not a cursor":      {Channel: "r", After: ptr("!!")},
		"cursor too short":  {Channel: "r", After: ptr("AAAA")},
		"before not cursor": {Channel: "r", Before: ptr("???")},
		"blank after":       {Channel: "r", After: ptr("")},
		"blank before":      {Channel: "r", Before: ptr(" ")},
	} {
		_, err := c.Replay(ctx, p)
		if api.CodeOf(err) != api.CodeInvalidArgument {
			t.Errorf("%s: want invalid_argument, got %v", name, err)
		}
	}
}

func ids(evs []api.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

// log/stats counts events and bytes per channel and follows the head.
func TestLogStats(t *testing.T) {
	d := start(t)
	c := dial(t, d)
	st := logStats(t, c)
	if st.Head != 0 || st.Events != 0 || st.Epoch != 1 || st.FileBytes <= 0 || st.Channels == nil || len(st.Channels) != 0 {
		t.Fatalf("empty log stats %+v", st)
	}
	declare(t, c, api.ClassConfig{Name: "chat:posted", Broadcast: true, Channel: api.ChannelByRoomID})
	declare(t, c, api.ClassConfig{Name: "doc:saved", Broadcast: true, Channel: api.ChannelGlobal})
	for i := 0; i < 5; i++ {
		mustEmit(t, c, api.EmitParams{Name: "chat:posted", Payload: map[string]any{"roomId": "zeta", "text": "hello"}})
	}
	for i := 0; i < 3; i++ {
		mustEmit(t, c, api.EmitParams{Name: "chat:posted", Payload: map[string]any{"roomId": "alpha"}})
	}
	last := mustEmit(t, c, api.EmitParams{Name: "doc:saved"})
	mustEmit(t, c, api.EmitParams{Name: "ui:clicked"}) // undeclared: not logged

	st = logStats(t, c)
	if st.Head != 9 || st.Events != 9 || st.Lamport != last.Lamport || st.Bytes == 0 || len(st.Channels) != 3 {
		t.Fatalf("stats %+v", st)
	}
	want := []struct {
		name   string
		events uint64
	}{{"alpha", 3}, {"global", 1}, {"zeta", 5}}
	var sum uint64
	for i, w := range want {
		ch := st.Channels[i]
		if ch.Channel != w.name || ch.Events != w.events || ch.Bytes == 0 {
			t.Fatalf("channel %d: %+v, want %s with %d events", i, ch, w.name, w.events)
		}
		sum += ch.Bytes
	}
	if sum != st.Bytes {
		t.Fatalf("channel bytes add up to %d, total says %d", sum, st.Bytes)
	}
	if st.Channels[1].LastSeq != 9 || st.Channels[2].LastSeq != 5 {
		t.Fatalf("last seqs %+v", st.Channels)
	}
}

// Emits that the class refuses leave nothing in the log and say why; a warn
// class stores the event with the marker header.
func TestEmitChecksStoreNothing(t *testing.T) {
	logs := &lockedLog{}
	d := start(t, func(c *daemon.Config) { c.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
	c := dialBig(t, d)
	// Not chat:posted: the daemon declares that one itself (package chat) at v1.
	declare(t, c, api.ClassConfig{Name: "room:posted", Broadcast: true, Channel: api.ChannelByRoomID, SchemaVersion: "v2"})
	declare(t, c, api.ClassConfig{Name: "note:added", Broadcast: true, Channel: api.ChannelGlobal, SchemaVersion: "v3", OnUnknownSchema: api.SchemaWarn})
	declare(t, c, api.ClassConfig{Name: "game:moved", Broadcast: true, Channel: api.ChannelCustom})
	declare(t, c, api.ClassConfig{Name: "peer:pinged", Broadcast: true, Channel: api.ChannelByPeerID})
	ctx := ctxT(t)
	watch, err := c.Subscribe(ctx, api.SubscribeParams{Pattern: "*", From: api.FromStart})
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		p    api.EmitParams
		code api.Code
	}{
		{"wrong schema, fail", api.EmitParams{Name: "room:posted", SchemaVersion: "v1", Payload: map[string]any{"roomId": "r"}}, api.CodeSchemaMismatch},
		{"byRoomId without roomId", api.EmitParams{Name: "room:posted", Payload: map[string]any{"text": "hi"}}, api.CodeMissingPayloadField},
		{"byRoomId with a numeric roomId", api.EmitParams{Name: "room:posted", Payload: map[string]any{"roomId": 7}}, api.CodeMissingPayloadField},
		{"byRoomId with an empty roomId", api.EmitParams{Name: "room:posted", Payload: map[string]any{"roomId": ""}}, api.CodeMissingPayloadField},
		{"byRoomId with no payload", api.EmitParams{Name: "room:posted"}, api.CodeMissingPayloadField},
		{"byPeerId without peerId", api.EmitParams{Name: "peer:pinged", Payload: map[string]any{"roomId": "r"}}, api.CodeMissingPayloadField},
		{"custom without a channel", api.EmitParams{Name: "game:moved"}, api.CodeMissingPayloadField},
		{"a channel for a byRoomId class", api.EmitParams{Name: "room:posted", Channel: "r", Payload: map[string]any{"roomId": "r"}}, api.CodeInvalidArgument},
		{"a channel for an undeclared class", api.EmitParams{Name: "nobody:declared", Channel: "custom-1"}, api.CodeInvalidArgument},
		{"blank name", api.EmitParams{Name: " "}, api.CodeInvalidArgument},
	}
	for _, tc := range cases {
		_, err := c.Emit(ctx, tc.p)
		if api.CodeOf(err) != tc.code {
			t.Errorf("%s: want %s, got %v", tc.name, tc.code, err)
			continue
		}
		if e := api.AsError(err); e.Message == "" {
			t.Errorf("%s: no message with the error", tc.name)
		}
	}
	if st := logStats(t, c); st.Head != 0 || st.Events != 0 {
		t.Fatalf("refused emits left %d events (head %d)", st.Events, st.Head)
	}
	noMore(t, watch)

	// warn: stored, delivered, marked with the class's version.
	res := mustEmit(t, c, api.EmitParams{Name: "note:added", ID: "n1", SchemaVersion: "v9", Headers: map[string]string{"k": "v"}})
	if res.Seq != 1 || res.Channel != "global" {
		t.Fatalf("warn emit %+v", res)
	}
	ev := collect(t, watch, 1)[0]
	if ev.ID != "n1" || ev.SchemaVersion != "v9" || ev.Headers[api.HeaderSchemaWarning] != "v3" || ev.Headers["k"] != "v" {
		t.Fatalf("delivered warn event %+v", ev)
	}
	rp, err := c.Replay(ctx, api.ReplayParams{Channel: "global"})
	if err != nil || len(rp.Events) != 1 || rp.Events[0].Headers[api.HeaderSchemaWarning] != "v3" || rp.Events[0].SchemaVersion != "v9" {
		t.Fatalf("stored warn event %+v %v", rp.Events, err)
	}
	if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "class=note:added") || !strings.Contains(l, "event_version=v9") {
		t.Fatalf("no warning logged for the warn class's mismatch:\n%s", l)
	}
	// The right version, or none, is not marked.
	mustEmit(t, c, api.EmitParams{Name: "note:added", ID: "n2", SchemaVersion: "v3"})
	mustEmit(t, c, api.EmitParams{Name: "game:moved", ID: "g1", Channel: "match-7"})
	for _, ev := range collect(t, watch, 2) {
		if _, marked := ev.Headers[api.HeaderSchemaWarning]; marked || ev.SchemaVersion == "" {
			t.Fatalf("event %s marked or without a version: %+v", ev.ID, ev)
		}
	}
	if st := logStats(t, c); st.Events != 3 {
		t.Fatalf("%d events stored, want 3", st.Events)
	}
}

// Emitting an (origin, id) that is already logged returns the stored record
// and stores nothing, also when the duplicates race each other.
func TestDuplicateEmitReturnsStoredRecord(t *testing.T) {
	d := start(t)
	c := dialBig(t, d)
	declare(t, c, api.ClassConfig{Name: "pay:sent", Broadcast: true, Channel: api.ChannelGlobal})
	ctx := ctxT(t)
	watch, err := c.Subscribe(ctx, api.SubscribeParams{Pattern: "*", Durable: "audit", From: api.FromStart})
	if err != nil {
		t.Fatal(err)
	}
	first := mustEmit(t, c, api.EmitParams{Name: "pay:sent", ID: "p1", Payload: map[string]any{"amount": 1}})
	mustEmit(t, c, api.EmitParams{Name: "pay:sent", ID: "p2"})
	again := mustEmit(t, c, api.EmitParams{Name: "pay:sent", ID: "p1", Payload: map[string]any{"amount": 999}})
	if again != first {
		t.Fatalf("retry answered %+v, first emit %+v", again, first)
	}

	// Concurrent duplicates, each from its own connection.
	const racers = 12
	answers := make([]api.EmitResult, racers)
	var wg sync.WaitGroup
	for i := range answers {
		em := dial(t, d)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if answers[i], err = em.Emit(context.Background(), api.EmitParams{Name: "pay:sent", ID: "race", Payload: i}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, a := range answers {
		if a != answers[0] || a.Seq == 0 {
			t.Fatalf("racing duplicates got different answers: %+v vs %+v", a, answers[0])
		}
	}
	if st := logStats(t, c); st.Events != 3 || st.Head != 3 {
		t.Fatalf("stats after duplicates: %+v", st)
	}
	got := collect(t, watch, 3)
	var p struct {
		Amount int `msgpack:"amount"`
	}
	if err := got[0].DecodePayload(&p); err != nil || got[0].ID != "p1" || p.Amount != 1 {
		t.Fatalf("stored p1 %+v (%v)", p, err)
	}
	noMore(t, watch)
}

// kernel/info reports this install's peer id: the origin of its events, kept
// across restarts, different for another state dir.
func TestInfoPeerID(t *testing.T) {
	d := start(t)
	c := dial(t, d)
	ctx := ctxT(t)
	info, err := c.Info(ctx)
	if err != nil || info.PeerID == "" || info.PeerID != d.Kernel().PeerID() {
		t.Fatalf("info %q, kernel %q, %v", info.PeerID, d.Kernel().PeerID(), err)
	}
	declare(t, c, api.ClassConfig{Name: "x:y", Broadcast: true, Channel: api.ChannelGlobal})
	mustEmit(t, c, api.EmitParams{Name: "x:y"})
	rp, err := c.Replay(ctx, api.ReplayParams{Channel: "global"})
	if err != nil || len(rp.Events) != 1 || rp.Events[0].Origin != info.PeerID {
		t.Fatalf("origin of a logged event: %+v %v", rp.Events, err)
	}
	dir := d.dir
	c.Close()
	d.stop(t)
	d2 := startIn(t, dir)
	if again, err := dial(t, d2).Info(ctx); err != nil || again.PeerID != info.PeerID {
		t.Fatalf("peer id after restart %q, before %q (%v)", again.PeerID, info.PeerID, err)
	}
	other, err := dial(t, start(t)).Info(ctx)
	if err != nil || other.PeerID == info.PeerID || other.PeerID == "" {
		t.Fatalf("another state dir has peer id %q (%v)", other.PeerID, err)
	}
}

// lockedLog collects the daemon's log lines while the test reads them.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func ptr[T any](v T) *T { return &v }
