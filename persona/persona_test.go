package persona_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel/airc"
	"github.com/continuum-grid/continuum/kernel/identity"
)

func hasReason(st api.PersonaStatus, reason string, n uint64) bool { return st.Skipped[reason] >= n }

// Two personas, one with a missing model, and a human in one room, with
// real llama.cpp on the tiny model: the gates, a mention, a question, the
// breaker of the broken one (the others unaffected), the rate limit, a
// signature check of everything a persona posted, delete, and a restart
// that resumes from the cursor without answering anything twice.
func TestPersonasInARoom(t *testing.T) {
	e := newEnv(t)
	human := e.dial()
	small := api.PersonaParams{MaxTokens: 6}
	alice := create(t, human, api.PersonaCreateParams{Name: "alice", Role: "helper", Model: e.model, Rooms: []string{"general"}, Params: small})
	bob := create(t, human, api.PersonaCreateParams{Name: "bob", Model: e.model, Rooms: []string{"general", "other"}, Params: small})
	broken := create(t, human, api.PersonaCreateParams{Name: "broken", Model: filepath.Join(e.dir, "missing.gguf"), Rooms: []string{"general"},
		Params: api.PersonaParams{MaxTokens: 6, BreakerErrors: 2, BreakerOpenMs: 600_000}})

	// Identities: the id is the peer id of a 0600 key file in the state dir.
	for _, p := range []api.Persona{alice, bob, broken} {
		if !identity.ValidPeerID(p.ID) {
			t.Fatalf("%s's id %q is not a peer id", p.Name, p.ID)
		}
		key := filepath.Join(e.dir, "state", "personas", p.ID+".key")
		id, err := identity.LoadFile(key)
		if err != nil || id.PeerID() != p.ID {
			t.Fatalf("%s's key: %v %v", p.Name, id, err)
		}
		if st, _ := os.Stat(key); st.Mode().Perm() != 0o600 {
			t.Errorf("%s's key mode %o", p.Name, st.Mode().Perm())
		}
	}

	// Not addressed: nobody answers.
	hello := send(t, human, "general", "hello everyone")
	for _, p := range []api.Persona{alice, bob, broken} {
		waitStatus(t, human, p.ID, "skip the greeting", func(st api.PersonaStatus) bool { return hasReason(st, "not_addressed", 1) })
	}
	// A mention: only alice answers.
	m1 := send(t, human, "general", "@alice tell me something")
	waitStatus(t, human, alice.ID, "answer the mention", func(st api.PersonaStatus) bool { return st.Answered == 1 })
	waitStatus(t, human, bob.ID, "skip the mention of alice", func(st api.PersonaStatus) bool { return hasReason(st, "not_addressed", 2) })
	// A question to nobody: everyone tries; the broken one fails.
	q1 := send(t, human, "general", "is anyone there?")
	waitStatus(t, human, alice.ID, "answer the question", func(st api.PersonaStatus) bool { return st.Answered == 2 })
	waitStatus(t, human, bob.ID, "answer the question", func(st api.PersonaStatus) bool { return st.Answered == 1 })
	waitStatus(t, human, broken.ID, "fail the question", func(st api.PersonaStatus) bool { return st.Failed == 1 })
	// The second failure opens the broken one's breaker; bob, mentioned in
	// the same message, answers as usual.
	send(t, human, "general", "@broken @bob and you?")
	bst := waitStatus(t, human, broken.ID, "open its breaker", func(st api.PersonaStatus) bool { return st.State == api.PersonaBreakerOpen })
	if bst.Breaker.State != api.BreakerOpen || bst.Breaker.OpenUntilMs == 0 || !strings.Contains(bst.LastError, "missing.gguf") || bst.Answered != 0 {
		t.Errorf("broken's status: %+v", bst)
	}
	waitStatus(t, human, bob.ID, "answer despite broken", func(st api.PersonaStatus) bool { return st.Answered == 2 })
	// While open, the broken persona holds its messages: they queue.
	send(t, human, "general", "broken, still there?", "broken")
	// (A question that names others is theirs: alice and bob leave it.)
	if st := waitStatus(t, human, broken.ID, "hold a message", func(st api.PersonaStatus) bool { return st.Queued > 0 }); st.Failed != 2 || st.State != api.PersonaBreakerOpen {
		t.Errorf("broken with an open breaker: %+v", st)
	}

	// The rate limit: bob may answer once a minute now.
	var upd api.Persona
	one := api.PersonaParams{MaxTokens: 6, MaxRepliesPerMinute: 1}
	if err := human.Call(ctxT(t), api.MethodPersonaUpdate, api.PersonaUpdateParams{ID: "bob", Params: &one}, &upd); err != nil || upd.Params.MaxRepliesPerMinute != 1 {
		t.Fatalf("update bob: %+v %v", upd, err)
	}
	send(t, human, "general", "@bob once more")
	waitStatus(t, human, bob.ID, "be rate limited", func(st api.PersonaStatus) bool { return hasReason(st, "rate_limited", 1) })
	// In another room the limit is that room's own.
	other := send(t, human, "other", "@bob over here")
	waitStatus(t, human, bob.ID, "answer in the other room", func(st api.PersonaStatus) bool { return st.Answered == 3 })

	// Everything a persona posted is signed by its own key and names it.
	names := map[string]string{alice.ID: "alice", bob.ID: "bob", broken.ID: "broken"}
	var replies int
	for _, room := range []string{"general", "other"} {
		for _, class := range []string{api.EventChatPosted, api.EventPersonaResponded} {
			for _, ev := range transcript(t, human, room, class) {
				name, ok := names[ev.Sender]
				if !ok {
					continue
				}
				replies++
				if ev.Origin != ev.Sender || ev.Headers[api.HeaderPersona] != name {
					t.Errorf("%s event %s: origin %q header %q", name, ev.ID, ev.Origin, ev.Headers[api.HeaderPersona])
				}
				signing, err := airc.SigningBytes(&ev)
				if err != nil || !identity.Verify(ev.Sender, signing, ev.Sig) {
					t.Errorf("%s event %s does not verify against the persona's key: %v", name, ev.ID, err)
				}
				if identity.Verify(e.d.Kernel().PeerID(), signing, ev.Sig) {
					t.Errorf("%s event %s verifies against the install's key", name, ev.ID)
				}
				if class == api.EventPersonaResponded {
					var r api.PersonaResponded
					if err := api.Assign(&r, ev.Payload); err != nil || r.PersonaID != ev.Sender || r.RoomID != room || r.ReplyTo == "" || r.Reply == "" || r.AlloyHash == "" {
						t.Errorf("persona:responded %+v %v", r, err)
					}
				}
			}
		}
	}
	if replies != 2*(2+3) {
		t.Errorf("%d persona events, want 10 (5 replies and their records)", replies)
	}
	if n := repliesTo(t, human, "general", m1.ID); n[alice.ID] != 1 || len(n) != 1 {
		t.Errorf("replies to the mention: %v", n)
	}
	if n := repliesTo(t, human, "general", q1.ID); n[alice.ID] != 1 || n[bob.ID] != 1 || len(n) != 2 {
		t.Errorf("replies to the question: %v", n)
	}
	if n := repliesTo(t, human, "general", hello.ID); len(n) != 0 {
		t.Errorf("replies to the greeting: %v", n)
	}
	if n := repliesTo(t, human, "other", other.ID); n[bob.ID] != 1 {
		t.Errorf("replies in the other room: %v", n)
	}

	// Delete stops alice: a question gets no answer from her.
	if err := human.Call(ctxT(t), api.MethodPersonaDelete, api.PersonaRefParams{ID: "alice"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "state", "personas", alice.ID+".key")); !os.IsNotExist(err) {
		t.Errorf("alice's key after delete: %v", err)
	}
	if err := human.Call(ctxT(t), api.MethodPersonaGet, api.PersonaRefParams{ID: alice.ID}, nil); api.CodeOf(err) != api.CodeNotFound {
		t.Errorf("get after delete: %v", err)
	}
	bobBefore := status(t, human, bob.ID).Handled
	gone := send(t, human, "general", "@alice are you gone?")
	waitStatus(t, human, bob.ID, "read the message for alice", func(st api.PersonaStatus) bool { return st.Handled > bobBefore })

	// Restart mid-conversation: three mentions of bob are posted and the
	// daemon stops at once; after the restart each has exactly one answer.
	many := api.PersonaParams{MaxTokens: 6, MaxRepliesPerMinute: 100}
	if err := human.Call(ctxT(t), api.MethodPersonaUpdate, api.PersonaUpdateParams{ID: bob.ID, Params: &many}, nil); err != nil {
		t.Fatal(err)
	}
	var pending []api.EmitResult
	for _, text := range []string{"@bob one", "@bob two", "@bob three"} {
		pending = append(pending, send(t, human, "other", text))
	}
	e.stop()
	e.start()
	human = e.dial()
	var list []api.Persona
	if err := human.Call(ctxT(t), api.MethodPersonaList, nil, &list); err != nil || len(list) != 2 || list[0].Name != "bob" || list[1].Name != "broken" {
		t.Fatalf("personas after restart: %+v %v", list, err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, m := range pending {
		for len(repliesTo(t, human, "other", m.ID)) == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	after := send(t, human, "other", "@bob after the restart")
	for len(repliesTo(t, human, "other", after.ID)) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, m := range append(pending, after, other) {
		if n := repliesTo(t, human, "other", m.ID); n[bob.ID] != 1 || len(n) != 1 {
			t.Errorf("replies to %s after the restart: %v (bob: %+v)", m.ID, n, status(t, human, bob.ID))
		}
	}
	if n := repliesTo(t, human, "general", gone.ID); n[alice.ID] != 0 {
		t.Errorf("deleted alice answered: %v", n)
	}
	// The breaker is the process's: broken starts closed again and fails
	// its queued message (not answered before) once more.
	waitStatus(t, human, broken.ID, "try the held message", func(st api.PersonaStatus) bool { return st.Failed >= 1 })
}
