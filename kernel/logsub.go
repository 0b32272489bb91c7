package kernel

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel/bus"
)

// closer is anything a session ends when it closes: a live bus subscription
// or a log-backed one. Lag is how far behind it is (kernel/metrics).
type closer interface {
	Close()
	Lag() uint64
}

// subscriberLags is every client whose subscriptions are behind now, most
// behind first, at most api.MaxLagClients of them; the rest are summed
// under "_other". Clients that are not behind are left out, so the usual
// answer is short whatever the number of clients.
func (k *Kernel) subscriberLags() []api.SubscriberLag {
	k.sessMu.Lock()
	sessions := make([]*session, 0, len(k.sessions))
	for s := range k.sessions {
		sessions = append(sessions, s)
	}
	k.sessMu.Unlock()
	out := []api.SubscriberLag{}
	for _, s := range sessions {
		l := api.SubscriberLag{Client: s.id}
		s.mu.Lock()
		for _, sub := range s.subs {
			if n := sub.Lag(); n > 0 {
				l.Subscriptions++
				l.LagEvents += n
			}
		}
		s.mu.Unlock()
		if l.LagEvents > 0 {
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(a, b api.SubscriberLag) int {
		if a.LagEvents != b.LagEvents {
			return cmp.Compare(b.LagEvents, a.LagEvents)
		}
		return strings.Compare(a.Client, b.Client)
	})
	if len(out) > api.MaxLagClients {
		other := api.SubscriberLag{Client: "_other"}
		for _, l := range out[api.MaxLagClients:] {
			other.Subscriptions += l.Subscriptions
			other.LagEvents += l.LagEvents
		}
		out = append(out[:api.MaxLagClients], other)
	}
	return out
}

// onCommit runs in the airc log's commit goroutine after each fsync'd batch:
// live subscribers get the batch in seq order, and log tailers wake up.
func (k *Kernel) onCommit(events []*api.SharedEvent) {
	for _, ev := range events {
		k.bus.PublishShared(ev)
	}
	k.headMu.Lock()
	close(k.headCh)
	k.headCh = make(chan struct{})
	k.headMu.Unlock()
}

// headChanged returns a channel closed at the next commit.
func (k *Kernel) headChanged() <-chan struct{} {
	k.headMu.Lock()
	defer k.headMu.Unlock()
	return k.headCh
}

// logSubscription delivers logged events by reading the log itself, from a
// position to the head and then on at each commit. Reading the log rather
// than a queue means there is no gap or duplicate at the seam between replay
// and live, and a slow subscriber never loses anything: it is simply further
// behind. Local (unlogged) events matching the pattern still come from the
// bus.
type logSubscription struct {
	k       *Kernel
	pattern bus.Pattern
	channel string
	sink    bus.Sink
	live    *bus.Subscription
	done    chan struct{}
	once    sync.Once
	at      atomic.Uint64 // the seq its tailer has delivered up to
}

// Lag is the log positions between the tailer and the head (events of
// other channels and classes included: an upper bound of what it has still
// to read, 0 once it is at the head) plus the local events queued.
func (ls *logSubscription) Lag() uint64 {
	lag := ls.live.Lag()
	if head, at := ls.k.alog.Head(), ls.at.Load(); head > at {
		lag += head - at
	}
	return lag
}

func (k *Kernel) startLogSubscription(pat bus.Pattern, channel string, after uint64, sink bus.Sink) *logSubscription {
	ls := &logSubscription{k: k, pattern: pat, channel: channel, sink: sink, done: make(chan struct{})}
	// Logged events reach a log-backed subscription through its tailer; the
	// bus brings only local ones.
	ls.live = k.bus.SubscribeUnlogged(pat, channel, k.cfg.SubscriberQueue, sink)
	ls.at.Store(after)
	k.tailers.Add(1)
	go ls.run(after)
	return ls
}

// tailBatch is how many events a tailer reads per log transaction.
const tailBatch = 256

// A tailer whose log read fails retries after minReadBackoff, doubling up to
// maxReadBackoff.
const (
	minReadBackoff = 100 * time.Millisecond
	maxReadBackoff = 5 * time.Second
)

func (ls *logSubscription) run(pos uint64) {
	defer ls.k.tailers.Done()
	type kept struct {
		start, end int
		keys       api.EventKeys // aliasing buf
	}
	var batch []kept
	backoff := minReadBackoff
	for {
		wake := ls.k.headChanged()
		// The stored envelopes go out as they are: each is copied out of the
		// read transaction into one buffer per batch (not reused, since a
		// peer may hold on to what it was given), and a peek at the copy's
		// class and channel filters it (a miss is cut off again).
		var buf []byte
		batch = batch[:0]
		read := 0
		last, err := ls.k.alog.ReadEncoded(pos, tailBatch, func(seq uint64, env []byte) error {
			read++
			if buf == nil {
				buf = make([]byte, 0, len(env)*(tailBatch-read+1))
			}
			start := len(buf)
			buf = append(buf, env...)
			k, err := api.PeekEvent(buf[start:])
			if err != nil {
				// A stored envelope that does not parse would stop this
				// subscriber at the same place on every read: skip it, loudly.
				ls.k.log.Error("log subscription: skipping an unreadable stored event", "seq", seq, "err", err)
				buf = buf[:start]
				return nil
			}
			if (ls.channel != "" && string(k.Channel) != ls.channel) || !ls.pattern.Match(string(k.Class)) {
				buf = buf[:start]
				return nil
			}
			batch = append(batch, kept{start, len(buf), k})
			return nil
		})
		if err != nil {
			// A failed read (I/O error) may pass; giving up would leave the
			// subscriber waiting forever with no word, so retry with backoff
			// until it works or the subscription ends.
			ls.k.log.Error("log subscription: read failed; retrying", "after", pos, "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-ls.done:
				return
			}
			backoff = min(2*backoff, maxReadBackoff)
			continue
		}
		backoff = minReadBackoff
		for i := range batch {
			// When buf grew, the keys of the envelopes before still alias the
			// array they were copied into first, which is never written
			// again: the same bytes, so they still describe env.
			b := &batch[i]
			ev := api.ShareEncodedKeys(buf[b.start:b.end:b.end], b.keys)
			select {
			case <-ls.done:
				return
			default:
			}
			if err := ls.sink.Deliver(ev); err != nil {
				ls.Close()
				return
			}
		}
		pos = last
		ls.at.Store(pos)
		if read == tailBatch {
			continue
		}
		select {
		case <-wake:
		case <-ls.done:
			return
		}
	}
}

func (ls *logSubscription) Close() {
	ls.once.Do(func() {
		close(ls.done)
		ls.live.Close()
	})
}

// logStart returns the seq a subscription starts after: a durable cursor's
// stored position (when it exists and its epoch matches), else from.
func (k *Kernel) logStart(p api.SubscribeParams) (uint64, error) {
	head := k.alog.Head()
	after := head // "now"
	switch {
	case p.From.Start:
		after = 0
	case p.From.Seq > 0:
		after = p.From.Seq
	}
	if p.Durable != "" {
		pos, ok, err := k.alog.Cursor(p.Durable)
		if err != nil {
			return 0, api.Errorf(api.CodeUnavailable, "read cursor %q: %v", p.Durable, err)
		}
		if ok {
			if pos.Epoch == k.alog.Epoch() {
				after = pos.Seq
			} else {
				// The log was restored from an older copy: positions may have
				// been issued again, so replay everything (at-least-once).
				k.log.Warn("durable cursor from another epoch: replaying from the start", "durable", p.Durable, "cursor_epoch", pos.Epoch, "log_epoch", k.alog.Epoch())
				after = 0
			}
		}
	}
	return after, nil
}

func (k *Kernel) ack(_ context.Context, _ *session, p api.AckParams) (any, error) {
	if strings.TrimSpace(p.Durable) == "" {
		return nil, api.Errorf(api.CodeInvalidArgument, "field \"durable\" is blank")
	}
	if err := api.CheckName("durable", p.Durable, api.MaxDurableLen); err != nil {
		return nil, err
	}
	if p.Seq > k.alog.Head() {
		return nil, api.Errorf(api.CodeInvalidArgument, "seq %d is beyond the log's head %d", p.Seq, k.alog.Head())
	}
	if err := k.alog.Ack(p.Durable, p.Seq); err != nil {
		return nil, err // the log's errors carry their code (invalid_argument, unavailable)
	}
	return api.Empty{}, nil
}

func (k *Kernel) replay(_ context.Context, _ *session, p api.ReplayParams) (any, error) {
	if strings.TrimSpace(p.Channel) == "" {
		return nil, api.Errorf(api.CodeInvalidArgument, "field \"channel\" is blank")
	}
	if err := api.CheckName("channel", p.Channel, api.MaxChannelLen); err != nil {
		return nil, err
	}
	if p.After != nil && p.Before != nil {
		return nil, api.Errorf(api.CodeInvalidArgument, "pass after or before, not both")
	}
	// A blank cursor is refused rather than read as "from the start": a
	// pager that fed an empty next back would otherwise loop forever.
	after, before := "", ""
	for _, c := range []struct {
		field string
		v     *string
		to    *string
	}{{"after", p.After, &after}, {"before", p.Before, &before}} {
		if c.v == nil {
			continue
		}
		if strings.TrimSpace(*c.v) == "" {
			return nil, api.Errorf(api.CodeInvalidArgument, "field %q is a blank cursor: omit it for the first page, or pass the next of the page before", c.field)
		}
		*c.to = *c.v
	}
	if p.Limit < 0 || p.Limit > 500 {
		return nil, api.Errorf(api.CodeInvalidArgument, "limit %d is outside 1..500", p.Limit)
	}
	events, next, err := k.alog.Replay(p.Channel, after, before, p.Limit)
	if err != nil {
		return nil, err
	}
	if events == nil {
		events = []api.Event{}
	}
	res := api.ReplayResult{Events: events}
	if next != "" {
		res.Next = &next
	}
	return res, nil
}

func (k *Kernel) logStats(context.Context, *session, api.Empty) (any, error) {
	st, err := k.alog.Stats()
	if err != nil {
		return nil, api.Errorf(api.CodeUnavailable, "log stats: %v", err)
	}
	out := api.LogStats{Head: st.Head, Lamport: st.Lamport, Epoch: st.Epoch, Events: st.Events, Bytes: st.Bytes,
		FileBytes: st.FileBytes, Rejections: st.Rejections, ForkedOrigins: st.ForkedOrigins, Channels: []api.LogChannelStats{}}
	for name, c := range st.Channels {
		out.Channels = append(out.Channels, api.LogChannelStats{Channel: name, Events: c.Events, Bytes: c.Bytes, LastSeq: c.LastSeq, LastLamport: c.LastLamport})
	}
	slices.SortFunc(out.Channels, func(a, b api.LogChannelStats) int { return strings.Compare(a.Channel, b.Channel) })
	return out, nil
}
