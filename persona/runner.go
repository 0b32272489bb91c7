package persona

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/continuum-grid/continuum/alloy"
	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel/airc"
	"github.com/continuum-grid/continuum/kernel/identity"
	"github.com/vmihailenco/msgpack/v5"
)

// queueLen bounds the messages delivered to a persona and not yet handled.
// The subscriptions are log-backed, so a full queue only holds the log
// reader back: nothing is dropped, it is read when there is room.
const queueLen = 64

// delivery is one message for the loop, with the durable cursor to ack.
type delivery struct {
	ev      api.Event
	durable string
}

// runner is one persona's loop: its own goroutine, session, subscriptions
// and breaker.
type runner struct {
	svc   *Service
	id    *identity.Identity
	queue chan delivery
	stop  chan struct{}
	done  chan struct{}
	wake  chan struct{} // params changed (an open breaker may be closed by them)
	sess  api.Session

	mu       sync.Mutex
	p        api.Persona
	subs     map[string]string // room → subscription id
	brk      *breaker
	rates    map[string]*rateWindow
	stopped  bool
	handled  uint64
	answered uint64
	failed   uint64
	skipped  map[string]uint64
	lastErr  string
	lastErrT time.Time
	lastRep  time.Time
}

// durableName is the cursor of persona id over room: the room's name when
// it fits, else its hash.
func durableName(id, room string) string {
	n := "persona/" + id + "/" + room
	if len(n) <= api.MaxDurableLen {
		return n
	}
	h := sha256.Sum256([]byte(room))
	return "persona/" + id + "/#" + hex.EncodeToString(h[:16])
}

// replyID is the event id of p's reply to the message (origin, id): the
// same on every attempt, so the log's dedupe keeps one reply.
func replyID(persona, origin, id string) string {
	h := sha256.Sum256([]byte(persona + "\x00" + origin + "\x00" + id))
	return "pr-" + hex.EncodeToString(h[:20])
}

func respondedID(reply string) string { return "pd-" + strings.TrimPrefix(reply, "pr-") }

func newRunner(svc *Service, p api.Persona, id *identity.Identity) *runner {
	return &runner{
		svc: svc, id: id, p: p,
		queue:   make(chan delivery, queueLen),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		subs:    map[string]string{},
		brk:     newBreaker(breakerErrors(&p.Params), breakerOpen(&p.Params)),
		rates:   map[string]*rateWindow{},
		skipped: map[string]uint64{},
	}
}

// start opens the runner's session, subscribes to its rooms from their
// cursors and starts the loop.
func (r *runner) start() error {
	sess, err := r.svc.k.Open(runnerPeer{r}, api.Caller{Transport: "inproc", UID: -1, GID: -1, PID: -1})
	if err != nil {
		return err
	}
	r.sess = sess
	r.mu.Lock()
	rooms := append([]string(nil), r.p.Rooms...)
	r.mu.Unlock()
	for _, room := range rooms {
		if err := r.subscribe(room); err != nil {
			sess.Close()
			return err
		}
	}
	go r.loop()
	return nil
}

func (r *runner) subscribe(room string) error {
	var res api.SubscribeResult
	out, err := r.sess.Handle(context.Background(), api.MethodSubscribe, api.ValueParams{V: api.SubscribeParams{
		Pattern: api.EventChatPosted, Channel: room, Durable: durableName(r.id.PeerID(), room)}})
	if err != nil {
		return fmt.Errorf("persona %s: subscribe to %s: %w", r.id.PeerID(), room, err)
	}
	res, _ = out.(api.SubscribeResult)
	r.mu.Lock()
	r.subs[room] = res.Subscription
	r.mu.Unlock()
	return nil
}

// setRooms follows an update of the rooms: new rooms are read from now,
// dropped ones stop (their cursors go).
func (r *runner) update(p api.Persona) {
	r.mu.Lock()
	old := r.subs
	r.p = p
	r.brk.configure(breakerErrors(&p.Params), breakerOpen(&p.Params))
	r.mu.Unlock()
	keep := map[string]bool{}
	for _, room := range p.Rooms {
		keep[room] = true
		r.mu.Lock()
		_, ok := old[room]
		r.mu.Unlock()
		if !ok {
			if err := r.svc.startCursor(p.ID, room); err == nil {
				_ = r.subscribe(room)
			}
		}
	}
	for room, sub := range old {
		if !keep[room] {
			_, _ = r.sess.Handle(context.Background(), api.MethodUnsubscribe, api.ValueParams{V: api.SubscriptionParams{Subscription: sub}})
			r.mu.Lock()
			delete(r.subs, room)
			r.mu.Unlock()
			_ = r.svc.k.Log().DeleteCursor(durableName(p.ID, room))
		}
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// close stops the loop and waits for it; a message being answered is
// abandoned unacked, so the next start answers it.
func (r *runner) close() {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		<-r.done
		return
	}
	r.stopped = true
	r.mu.Unlock()
	close(r.stop)
	if r.sess != nil {
		r.sess.Close()
	}
	<-r.done
}

func (r *runner) loop() {
	defer close(r.done)
	for {
		r.mu.Lock()
		ok, wait := r.brk.allow(time.Now())
		r.mu.Unlock()
		if !ok {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-r.wake:
			case <-r.stop:
				t.Stop()
				return
			}
			t.Stop()
			continue
		}
		select {
		case d := <-r.queue:
			if !r.handle(d) {
				return
			}
		case <-r.wake:
		case <-r.stop:
			return
		}
	}
}

// handle answers one message or says which gate kept it; false when the
// runner is stopping (the message stays unacked).
func (r *runner) handle(d delivery) bool {
	r.mu.Lock()
	p := r.p
	r.mu.Unlock()
	m := &message{ev: d.ev, entry: api.ChatEntryOf(&d.ev), room: d.ev.Channel, fromPersona: d.ev.Headers[api.HeaderPersona]}
	reason := gate(&p, m)
	reply := replyID(p.ID, m.ev.Origin, m.ev.ID)
	if reason == "" {
		if _, ok, err := r.svc.k.Log().Get(p.ID, reply); err == nil && ok {
			reason = skipAnsweredBefore
		}
	}
	claimed := false
	if reason == "" {
		r.mu.Lock()
		w := r.rates[m.room]
		if w == nil {
			w = &rateWindow{}
			r.rates[m.room] = w
		}
		if !w.allow(time.Now(), repliesPerMin(&p.Params)) {
			reason = skipRateLimited
		}
		r.mu.Unlock()
	}
	if reason == "" {
		if claimed = r.svc.claim(m.ev.Origin, m.ev.ID); !claimed {
			reason = skipReplyCap
		}
	}
	if reason != "" {
		r.mu.Lock()
		r.handled++
		r.skipped[reason]++
		r.mu.Unlock()
		r.ack(d)
		return true
	}
	err := r.answer(&p, m, reply)
	if err != nil && r.stopping() {
		r.svc.release(m.ev.Origin, m.ev.ID)
		return false
	}
	now := time.Now()
	r.mu.Lock()
	r.handled++
	if err != nil {
		r.failed++
		r.lastErr, r.lastErrT = err.Error(), now
		r.brk.failure(now)
	} else {
		r.answered++
		r.lastRep = now
		r.brk.success()
		r.rates[m.room].record(now)
	}
	r.mu.Unlock()
	if err != nil {
		r.svc.release(m.ev.Origin, m.ev.ID)
		r.svc.log.Warn("persona reply failed", "persona", p.Name, "room", m.room, "message", m.ev.ID, "err", err)
	}
	// A failed reply is not tried again: the message is acked, the failure
	// is counted against the breaker and shown in persona/status.
	r.ack(d)
	return true
}

func (r *runner) stopping() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

func (r *runner) ack(d delivery) {
	if err := r.svc.k.Log().Ack(d.durable, d.ev.Seq); err != nil && !r.stopping() {
		r.svc.log.Warn("persona: ack failed", "durable", d.durable, "seq", d.ev.Seq, "err", err)
	}
}

// answer generates and posts p's reply to m, then its persona:responded.
func (r *runner) answer(p *api.Persona, m *message, reply string) error {
	ctx, cancel := context.WithTimeout(context.Background(), defaultGenerateTimout)
	defer cancel()
	go func() {
		select {
		case <-r.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	msgs, err := r.context(p, m)
	if err != nil {
		return err
	}
	start := time.Now()
	out, err := r.sess.Handle(ctx, api.MethodExecute, api.ValueParams{V: api.ExecuteParams{
		Command: api.MethodInferenceGenerate,
		Params: api.GenerateParams{
			Model: p.Model, Messages: msgs, MaxTokens: maxTokens(&p.Params), Temperature: p.Params.Temperature,
			RequestID: reply,
		},
	}})
	if err != nil {
		return fmt.Errorf("generate with %q: %w", p.Model, err)
	}
	ms := time.Since(start).Milliseconds()
	var res api.GenerateResult
	if err := convert(out, &res); err != nil {
		return fmt.Errorf("generate with %q: an unreadable result: %w", p.Model, err)
	}
	text := replyText(res.Text)
	payload := map[string]any{"roomId": m.room, "text": text, "replyTo": m.ev.ID}
	if m.ev.Sender != "" && len(m.ev.Sender) <= api.MaxChatMentionLen {
		payload["mentions"] = []string{m.ev.Sender}
	}
	headers := map[string]string{api.HeaderPersona: p.Name}
	if _, err := r.svc.k.EmitAs(ctx, r.id, api.EmitParams{Name: api.EventChatPosted, ID: reply, Payload: payload, Headers: headers, Strict: true}); err != nil {
		return fmt.Errorf("post the reply: %w", err)
	}
	resp := map[string]any{"personaId": p.ID, "roomId": m.room, "replyTo": m.ev.ID, "reply": reply, "tokens": len(res.Tokens), "ms": ms}
	if res.Alloy != nil {
		if canon, err := alloy.Canonical(res.Alloy); err == nil {
			resp["alloyHash"] = alloy.HashBytes(canon)
		}
	}
	if _, err := r.svc.k.EmitAs(ctx, r.id, api.EmitParams{Name: api.EventPersonaResponded, ID: respondedID(reply), Payload: resp, Headers: headers, Strict: true}); err != nil {
		// The reply is posted and is what matters; the record is best effort.
		r.svc.log.Warn("persona: persona:responded not logged", "persona", p.Name, "err", err)
	}
	return nil
}

// replyText makes generated text a postable message: never blank (a model
// may stop at once: "…" stands for an empty answer), at most
// MaxChatTextLen bytes, cut at a character boundary.
func replyText(s string) string {
	if strings.TrimSpace(s) == "" {
		return "…"
	}
	if len(s) <= api.MaxChatTextLen {
		return s
	}
	s = s[:api.MaxChatTextLen]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// context is the conversation given to the model: the system turn, then
// the room's transcript before m, newest first until the token budget is
// spent (a token counted as bytesPerToken bytes), in order, and m last.
// The persona's own messages are assistant turns; others' are user turns
// prefixed with who said them.
func (r *runner) context(p *api.Persona, m *message) ([]api.ChatMessage, error) {
	system := p.SystemPrompt
	if system == "" {
		system = fmt.Sprintf("You are %s, a participant in the chat room %s.", p.Name, m.room)
		if p.Role != "" {
			system += " Your role: " + p.Role + "."
		}
	}
	budget := contextTokens(&p.Params)*bytesPerToken - len(system) - turnOverhead
	last := api.ChatMessage{Role: "user", Content: speaker(m.ev, m.fromPersona) + ": " + m.entry.Text}
	budget -= len(last.Content) + turnOverhead
	var turns []api.ChatMessage
	before := airc.ReplayCursor(&m.ev)
	for budget > 0 {
		events, next, err := r.svc.k.Log().Replay(m.room, "", before, 50)
		if err != nil {
			return nil, fmt.Errorf("read the transcript of %s: %w", m.room, err)
		}
		for i := len(events) - 1; i >= 0 && budget > 0; i-- {
			ev := &events[i]
			if ev.Class != api.EventChatPosted {
				continue
			}
			e := api.ChatEntryOf(ev)
			t := api.ChatMessage{Role: "user", Content: speaker(*ev, ev.Headers[api.HeaderPersona]) + ": " + e.Text}
			if ev.Origin == p.ID {
				t = api.ChatMessage{Role: "assistant", Content: e.Text}
			}
			if len(t.Content)+turnOverhead > budget {
				budget = 0
				break
			}
			budget -= len(t.Content) + turnOverhead
			turns = append(turns, t)
		}
		if next == "" || len(events) == 0 {
			break
		}
		before = next
	}
	out := make([]api.ChatMessage, 0, len(turns)+2)
	out = append(out, api.ChatMessage{Role: "system", Content: system})
	for i := len(turns) - 1; i >= 0; i-- {
		out = append(out, turns[i])
	}
	return append(out, last), nil
}

// turnOverhead is what the chat template adds to each turn, counted as
// bytes: chatml's "<|im_start|>user\n…<|im_end|>\n" is 26, and a model
// without those special tokens reads them byte by byte.
const turnOverhead = 32

// speaker names a message's sender for the model: a persona by name, a
// client by its id without the connection counter.
func speaker(ev api.Event, persona string) string {
	if persona != "" {
		return persona
	}
	if i := strings.LastIndex(ev.Sender, "/"); i > 0 {
		return ev.Sender[:i]
	}
	return ev.Sender
}

// convert reads a command's result (a Go value when the kernel ran it, a
// decoded map when a peer did) into v.
func convert(out any, v any) error {
	if g, ok := out.(api.GenerateResult); ok {
		*(v.(*api.GenerateResult)) = g
		return nil
	}
	b, err := msgpack.Marshal(out)
	if err != nil {
		return err
	}
	return msgpack.Unmarshal(b, v)
}

func (r *runner) status() api.PersonaStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := api.PersonaStatus{
		ID: r.p.ID, Name: r.p.Name, State: api.PersonaRunning, Queued: len(r.queue),
		Handled: r.handled, Answered: r.answered, Failed: r.failed, Skipped: map[string]uint64{},
		LastError: r.lastErr, Breaker: r.brk.view(),
	}
	for k, v := range r.skipped {
		st.Skipped[k] = v
	}
	if !r.lastErrT.IsZero() {
		st.LastErrorMs = r.lastErrT.UnixMilli()
	}
	if !r.lastRep.IsZero() {
		st.LastReplyMs = r.lastRep.UnixMilli()
	}
	switch {
	case r.stopped:
		st.State = api.PersonaStopped
	case r.brk.state == api.BreakerOpen && time.Now().Before(r.brk.openUntil):
		st.State = api.PersonaBreakerOpen
	case r.p.Params.Asleep:
		st.State = api.PersonaAsleep
	}
	return st
}

// runnerPeer is the runner's session's client: subscriptions' events go
// into its queue. Deliver blocks while the queue is full (the log-backed
// subscription simply reads on later) and fails once the runner stops, which
// ends the subscription.
type runnerPeer struct{ r *runner }

func (rp runnerPeer) Notify(method string, params any) error {
	if method != api.NotifyEvent {
		return nil // events/lagged: log-backed subscriptions resume from the log
	}
	d, ok := params.(*api.EventDelivery)
	if !ok {
		return nil
	}
	ev, err := d.Event.Event()
	if err != nil {
		rp.r.svc.log.Warn("persona: an unreadable event skipped", "err", err)
		return nil
	}
	select {
	case rp.r.queue <- delivery{ev: *ev, durable: durableName(rp.r.id.PeerID(), ev.Channel)}:
		return nil
	case <-rp.r.stop:
		return errStopped
	}
}

func (rp runnerPeer) Call(context.Context, string, any) (api.Params, error) {
	return nil, api.Errorf(api.CodeUnavailable, "a persona serves no commands")
}

var errStopped = errors.New("persona stopped")
