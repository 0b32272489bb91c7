package persona_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/daemon"
	"github.com/continuum-grid/continuum/inference"
	"github.com/continuum-grid/continuum/ipc/client"
	"github.com/continuum-grid/continuum/kernel"
	"github.com/continuum-grid/continuum/llama/gguf"
)

// libDir is where the tests find the llama.cpp libraries:
// $CONTINUUM_LLAMA_LIB_DIR, else <repo>/.cache/llama/cpu (make llama-libs).
func libDir(t testing.TB) string {
	t.Helper()
	d := os.Getenv(inference.EnvLibDir)
	if d == "" {
		_, file, _, _ := runtime.Caller(0)
		d = filepath.Join(filepath.Dir(file), "..", ".cache", "llama", "cpu")
	}
	if st, err := os.Stat(d); err != nil || !st.IsDir() {
		t.Fatalf("llama.cpp libraries not found at %s: run `make llama-libs`, or set %s", d, inference.EnvLibDir)
	}
	return d
}

// env is one state dir and socket, with a daemon that can be restarted.
type env struct {
	t     testing.TB
	dir   string
	sock  string
	d     *daemon.Daemon
	once  *sync.Once
	model string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	dir, err := os.MkdirTemp("", "persona")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &env{t: t, dir: dir, sock: filepath.Join(dir, "d.sock")}
	e.model = filepath.Join(dir, "tiny.gguf")
	if err := gguf.WriteTinyModelFile(e.model, gguf.DefaultTinyConfig()); err != nil {
		t.Fatal(err)
	}
	e.start()
	t.Cleanup(e.stop)
	return e
}

func (e *env) start() {
	e.t.Helper()
	d, err := daemon.Start(daemon.Config{
		Socket:    e.sock,
		Kernel:    kernel.Config{StateDir: filepath.Join(e.dir, "state")},
		Inference: inference.Options{LlamaLibDir: libDir(e.t), AllowCPU: true, NThreads: 1},
		Logger:    testLogger(),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.d, e.once = d, &sync.Once{}
}

func (e *env) stop() {
	e.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := e.d.Shutdown(ctx); err != nil {
			e.t.Errorf("shutdown: %v", err)
		}
	})
}

func (e *env) dial() *client.Client {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, e.sock)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func create(t testing.TB, c *client.Client, p api.PersonaCreateParams) api.Persona {
	t.Helper()
	var out api.Persona
	if err := c.Call(ctxT(t), api.MethodPersonaCreate, p, &out); err != nil {
		t.Fatalf("persona/create %s: %v", p.Name, err)
	}
	return out
}

func status(t testing.TB, c *client.Client, id string) api.PersonaStatus {
	t.Helper()
	var out []api.PersonaStatus
	if err := c.Call(ctxT(t), api.MethodPersonaStatus, api.PersonaStatusParams{ID: id}, &out); err != nil || len(out) != 1 {
		t.Fatalf("persona/status %s: %v %v", id, out, err)
	}
	return out[0]
}

// waitStatus waits until cond holds for persona id's status.
func waitStatus(t testing.TB, c *client.Client, id string, what string, cond func(api.PersonaStatus) bool) api.PersonaStatus {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := status(t, c, id)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("persona %s: %s did not happen: %+v", st.Name, what, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func send(t testing.TB, c *client.Client, room, text string, mentions ...string) api.EmitResult {
	t.Helper()
	var r api.EmitResult
	if err := c.Call(ctxT(t), api.MethodChatSend, api.ChatSendParams{RoomID: room, Text: text, Mentions: mentions}, &r); err != nil {
		t.Fatalf("chat/send %q: %v", text, err)
	}
	return r
}

// transcript is the room's events of class (all pages), oldest first.
func transcript(t testing.TB, c *client.Client, room, class string) []api.Event {
	t.Helper()
	var out []api.Event
	var after *string
	for {
		var r api.ReplayResult
		if err := c.Call(ctxT(t), api.MethodReplay, api.ReplayParams{Channel: room, After: after, Limit: 500}, &r); err != nil {
			t.Fatal(err)
		}
		for _, ev := range r.Events {
			if ev.Class == class {
				out = append(out, ev)
			}
		}
		if r.Next == nil {
			return out
		}
		after = r.Next
	}
}

// repliesTo counts the chat:posted replies to message id, by sender.
func repliesTo(t testing.TB, c *client.Client, room, id string) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, ev := range transcript(t, c, room, api.EventChatPosted) {
		if e := api.ChatEntryOf(&ev); e.ReplyTo == id {
			n[ev.Sender]++
		}
	}
	return n
}

// testLogger logs to stderr when CONTINUUM_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("CONTINUUM_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
