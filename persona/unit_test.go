package persona

import (
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
)

func TestBreaker(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := newBreaker(3, 30*time.Second)
	for i := 0; i < 2; i++ {
		b.failure(t0)
	}
	if ok, _ := b.allow(t0); !ok || b.state != api.BreakerClosed {
		t.Fatalf("two failures of three opened it: %+v", b.view())
	}
	b.success()
	b.failure(t0)
	b.failure(t0)
	if b.state != api.BreakerClosed {
		t.Fatal("a success did not reset the count")
	}
	b.failure(t0)
	if ok, wait := b.allow(t0.Add(10 * time.Second)); ok || wait != 20*time.Second {
		t.Fatalf("open: ok %v wait %v", ok, wait)
	}
	if v := b.view(); v.State != api.BreakerOpen || v.Opened != 1 || v.OpenUntilMs != t0.Add(30*time.Second).UnixMilli() {
		t.Errorf("view: %+v", v)
	}
	// Half open after the period: one failure reopens it at once.
	if ok, _ := b.allow(t0.Add(30 * time.Second)); !ok || b.state != api.BreakerHalfOpen {
		t.Fatalf("after the period: %+v", b.view())
	}
	b.failure(t0.Add(31 * time.Second))
	if ok, _ := b.allow(t0.Add(32 * time.Second)); ok || b.opened != 2 {
		t.Fatalf("half open failure: %+v", b.view())
	}
	b.allow(t0.Add(62 * time.Second))
	b.success()
	if b.state != api.BreakerClosed || b.errors != 0 {
		t.Fatalf("half open success: %+v", b.view())
	}
}

func TestGates(t *testing.T) {
	p := &api.Persona{ID: "cme", Name: "Ada"}
	msg := func(sender, text string, mentions []string, persona string) *message {
		return &message{ev: api.Event{Origin: "cpeer", Sender: sender, Headers: map[string]string{api.HeaderPersona: persona}},
			entry: api.ChatEntry{Text: text, Mentions: mentions}, fromPersona: persona}
	}
	cases := []struct {
		name string
		m    *message
		p    api.PersonaParams
		want string
	}{
		{"plain", msg("h", "hello", nil, ""), api.PersonaParams{}, skipNotAddressed},
		{"mention by name", msg("h", "hi", []string{"ada"}, ""), api.PersonaParams{}, ""},
		{"mention by id", msg("h", "hi", []string{"cme"}, ""), api.PersonaParams{}, ""},
		{"@name in text", msg("h", "so @ADA, hi", nil, ""), api.PersonaParams{}, ""},
		{"@name as a prefix of another", msg("h", "@adam hi", nil, ""), api.PersonaParams{}, skipNotAddressed},
		{"a question", msg("h", "anyone? ", nil, ""), api.PersonaParams{}, ""},
		{"a question, mentions only", msg("h", "anyone?", nil, ""), api.PersonaParams{MentionsOnly: true}, skipNotAddressed},
		{"a question to someone else", msg("h", "@bob you?", nil, ""), api.PersonaParams{}, skipNotAddressed},
		{"a question mentioning someone else", msg("h", "you?", []string{"bob"}, ""), api.PersonaParams{}, skipNotAddressed},
		{"a persona's question", msg("cother", "why?", nil, "bob"), api.PersonaParams{}, skipNotAddressed},
		{"a persona's mention", msg("cother", "@ada why", nil, "bob"), api.PersonaParams{}, ""},
		{"own by sender", msg("cme", "@ada?", nil, ""), api.PersonaParams{}, skipOwn},
		{"asleep", msg("h", "@ada", nil, ""), api.PersonaParams{Asleep: true}, skipAsleep},
	}
	for _, tc := range cases {
		q := *p
		q.Params = tc.p
		if got := gate(&q, tc.m); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	own := msg("x", "hi", nil, "")
	own.ev.Origin = "cme"
	if gate(p, own) != skipOwn {
		t.Error("own origin passed")
	}
}

func TestRateWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var w rateWindow
	for i := 0; i < 2; i++ {
		if !w.allow(t0, 2) {
			t.Fatal("refused under the limit")
		}
		w.record(t0)
	}
	if w.allow(t0.Add(59*time.Second), 2) {
		t.Fatal("a third within the minute")
	}
	if !w.allow(t0.Add(61*time.Second), 2) {
		t.Fatal("refused after the minute")
	}
}

func TestReplyCapAndIDs(t *testing.T) {
	s := &Service{cap: 2, claims: map[string]int{}}
	if !s.claimReply("o", "m") || !s.claimReply("o", "m") || s.claimReply("o", "m") {
		t.Fatal("cap of 2 not kept")
	}
	s.release("o", "m")
	if !s.claimReply("o", "m") {
		t.Fatal("a released claim was not free")
	}
	for i := 0; i < maxClaims+10; i++ {
		s.claimReply("o", string(rune(i+100)))
	}
	if len(s.claims) > maxClaims || len(s.claimOrder) > maxClaims {
		t.Fatalf("claims grew to %d", len(s.claims))
	}
	a, b := replyID("p", "o", "m"), replyID("p", "o", "m")
	if a != b || a == replyID("q", "o", "m") || a == replyID("p", "o2", "m") || len(a) > api.MaxEventIDLen {
		t.Fatalf("reply ids: %s %s", a, b)
	}
	long := durableName("c"+string(make([]byte, 55)), string(make([]byte, 256)))
	if len(long) > api.MaxDurableLen {
		t.Fatalf("durable name %d bytes", len(long))
	}
	if replyText("  ") != "…" || len(replyText(string(make([]byte, api.MaxChatTextLen+5)))) != api.MaxChatTextLen {
		t.Fatal("replyText")
	}
}
