package grid_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/inference"
	"github.com/continuum-grid/continuum/kernel/airc"
	"github.com/continuum-grid/continuum/llama/gguf"
)

// A persona on A answers a message posted on B; its reply reaches B over
// the QUIC link signed by the persona's own key: B's log admitted it
// through the ingest path (signature against the origin, the persona's peer
// id), B's chat shows it as the persona's, and the signature verifies on
// B's copy.
func TestPersonaReplyReplicatesSignedAsThePersona(t *testing.T) {
	lib, ok := llamaLibDir()
	if !ok {
		t.Fatalf("llama.cpp libraries not found at %s: run `make llama-libs` or set %s", lib, inference.EnvLibDir)
	}
	a := startInferenceNode(t, inference.Options{LlamaLibDir: lib, AllowCPU: true, NThreads: 1, NCtx: 256})
	b := startNode(t)
	join(t, a, b, "household") // household replicates every channel
	model := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := gguf.WriteTinyModelFile(model, gguf.DefaultTinyConfig()); err != nil {
		t.Fatal(err)
	}
	var ada api.Persona
	a.must(api.MethodPersonaCreate, api.PersonaCreateParams{Name: "ada", Model: model, Rooms: []string{"general"},
		Params: api.PersonaParams{MaxTokens: 4, ContextTokens: 160}}, &ada)
	if ada.ID == a.id {
		t.Fatalf("the persona has the install's id")
	}

	var sent api.EmitResult
	b.must(api.MethodChatSend, api.ChatSendParams{RoomID: "general", Text: "hello @ada, from b", Mentions: []string{ada.ID}}, &sent)

	var reply api.ChatEntry
	eventually(t, 60*time.Second, "ada's reply on b", func() bool {
		var h api.ChatHistoryResult
		b.must(api.MethodChatHistory, api.ChatHistoryParams{RoomID: "general"}, &h)
		for _, m := range h.Messages {
			if m.ReplyTo == sent.ID {
				reply = m
				return true
			}
		}
		return false
	})
	if reply.Persona != "ada" || reply.Sender != ada.ID || reply.Origin != ada.ID {
		t.Fatalf("the reply on b is not the persona's own: %+v (persona id %s)", reply, ada.ID)
	}

	// B's stored copy: its signature verifies against the persona's key
	// (VerifyEvent checks sig against the origin's public key).
	var page api.ReplayResult
	b.must(api.MethodReplay, api.ReplayParams{Channel: "general", Limit: 500}, &page)
	found := false
	for i := range page.Events {
		ev := page.Events[i]
		if ev.ID != reply.ID {
			continue
		}
		found = true
		if _, err := airc.VerifyEvent(&ev); err != nil {
			t.Errorf("b's copy of the reply does not verify: %v", err)
		}
		ev.Payload = map[string]any{"roomId": "general", "text": "edited on the way"}
		if _, err := airc.VerifyEvent(&ev); err == nil {
			t.Errorf("an edited copy verifies")
		}
	}
	if !found {
		t.Fatalf("the reply %s is not in b's log", reply.ID)
	}
	var st api.LogStats
	b.must(api.MethodLogStats, nil, &st)
	if st.Rejections != 0 {
		t.Errorf("b rejected %d events", st.Rejections)
	}
}
