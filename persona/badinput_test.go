package persona_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
)

// Every persona/* method refuses bad params with invalid_argument naming
// the field (not_found for an unknown persona), writes nothing, and the
// connection keeps serving.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	c := e.dial()
	ok := create(t, c, api.PersonaCreateParams{Name: "ok", Model: e.model, Rooms: []string{"general"}})
	good := map[string]any{"name": "x", "model": e.model, "rooms": []string{"general"}}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for a, b := range good {
			m[a] = b
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	rooms := make([]string, api.MaxPersonaRooms+1)
	for i := range rooms {
		rooms[i] = "r" + strings.Repeat("x", i)
	}
	cases := []struct {
		name   string
		method string
		params any
		code   api.Code
		want   string
	}{
		{"create: no params", api.MethodPersonaCreate, nil, api.CodeInvalidArgument, "name"},
		{"create: missing name", api.MethodPersonaCreate, with("name", nil), api.CodeInvalidArgument, "name"},
		{"create: missing model", api.MethodPersonaCreate, with("model", nil), api.CodeInvalidArgument, "model"},
		{"create: missing rooms", api.MethodPersonaCreate, with("rooms", nil), api.CodeInvalidArgument, "rooms"},
		{"create: numeric name", api.MethodPersonaCreate, with("name", 7), api.CodeInvalidArgument, "name"},
		{"create: rooms a string", api.MethodPersonaCreate, with("rooms", "general"), api.CodeInvalidArgument, "rooms"},
		{"create: params a list", api.MethodPersonaCreate, with("params", []int{1}), api.CodeInvalidArgument, "params"},
		{"create: maxTokens a string", api.MethodPersonaCreate, with("params", map[string]any{"maxTokens": "many"}), api.CodeInvalidArgument, "params"},
		{"create: name with a space", api.MethodPersonaCreate, with("name", "a b"), api.CodeInvalidArgument, "name"},
		{"create: oversized name", api.MethodPersonaCreate, with("name", strings.Repeat("n", api.MaxPersonaNameLen+1)), api.CodeInvalidArgument, "name"},
		{"create: blank model", api.MethodPersonaCreate, with("model", "  "), api.CodeInvalidArgument, "model"},
		{"create: oversized prompt", api.MethodPersonaCreate, with("systemPrompt", strings.Repeat("p", api.MaxPersonaPromptLen+1)), api.CodeInvalidArgument, "systemPrompt"},
		{"create: oversized role", api.MethodPersonaCreate, with("role", strings.Repeat("r", api.MaxPersonaRoleLen+1)), api.CodeInvalidArgument, "role"},
		{"create: no rooms", api.MethodPersonaCreate, with("rooms", []string{}), api.CodeInvalidArgument, "rooms"},
		{"create: too many rooms", api.MethodPersonaCreate, with("rooms", rooms), api.CodeInvalidArgument, "rooms"},
		{"create: blank room", api.MethodPersonaCreate, with("rooms", []string{"general", " "}), api.CodeInvalidArgument, "rooms[1]"},
		{"create: room with a newline", api.MethodPersonaCreate, with("rooms", []string{"a\nb"}), api.CodeInvalidArgument, "rooms[0]"},
		{"create: repeated room", api.MethodPersonaCreate, with("rooms", []string{"a", "a"}), api.CodeInvalidArgument, "rooms[1]"},
		{"create: negative maxTokens", api.MethodPersonaCreate, with("params", map[string]any{"maxTokens": -1}), api.CodeInvalidArgument, "params.maxTokens"},
		{"create: huge contextTokens", api.MethodPersonaCreate, with("params", map[string]any{"contextTokens": 1 << 30}), api.CodeInvalidArgument, "params.contextTokens"},
		{"create: temperature 3", api.MethodPersonaCreate, with("params", map[string]any{"temperature": 3.0}), api.CodeInvalidArgument, "params.temperature"},
		{"create: long breaker", api.MethodPersonaCreate, with("params", map[string]any{"breakerOpenMs": api.MaxPersonaBreakerOpen + 1}), api.CodeInvalidArgument, "params.breakerOpenMs"},
		{"create: a taken name", api.MethodPersonaCreate, with("name", "OK"), api.CodeAlreadyExists, "OK"},
		{"get: no params", api.MethodPersonaGet, nil, api.CodeInvalidArgument, "id"},
		{"get: numeric id", api.MethodPersonaGet, map[string]any{"id": 5}, api.CodeInvalidArgument, "id"},
		{"get: oversized id", api.MethodPersonaGet, map[string]any{"id": strings.Repeat("i", 300)}, api.CodeInvalidArgument, "id"},
		{"get: unknown", api.MethodPersonaGet, map[string]any{"id": "nobody"}, api.CodeNotFound, "nobody"},
		{"update: no params", api.MethodPersonaUpdate, nil, api.CodeInvalidArgument, "id"},
		{"update: unknown", api.MethodPersonaUpdate, map[string]any{"id": "nobody"}, api.CodeNotFound, "nobody"},
		{"update: bad name", api.MethodPersonaUpdate, map[string]any{"id": "ok", "name": "no way"}, api.CodeInvalidArgument, "name"},
		{"update: name a number", api.MethodPersonaUpdate, map[string]any{"id": "ok", "name": 3}, api.CodeInvalidArgument, "name"},
		{"update: empty rooms list", api.MethodPersonaUpdate, map[string]any{"id": "ok", "rooms": []string{""}}, api.CodeInvalidArgument, "rooms[0]"},
		{"update: bad params", api.MethodPersonaUpdate, map[string]any{"id": "ok", "params": map[string]any{"breakerErrors": -2}}, api.CodeInvalidArgument, "params.breakerErrors"},
		{"delete: no params", api.MethodPersonaDelete, nil, api.CodeInvalidArgument, "id"},
		{"delete: unknown", api.MethodPersonaDelete, map[string]any{"id": "nobody"}, api.CodeNotFound, "nobody"},
		{"delete: id a map", api.MethodPersonaDelete, map[string]any{"id": map[string]any{}}, api.CodeInvalidArgument, "id"},
		{"status: unknown", api.MethodPersonaStatus, map[string]any{"id": "nobody"}, api.CodeNotFound, "nobody"},
		{"status: id a list", api.MethodPersonaStatus, map[string]any{"id": []int{}}, api.CodeInvalidArgument, "id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Call(ctxT(t), tc.method, tc.params, nil)
			if api.CodeOf(err) != tc.code || !errors.Is(err, &api.Error{Code: tc.code}) {
				t.Fatalf("want %s, got %v", tc.code, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("the error does not name %q: %v", tc.want, err)
			}
		})
	}
	var list []api.Persona
	if err := c.Call(ctxT(t), api.MethodPersonaList, nil, &list); err != nil || len(list) != 1 || list[0].ID != ok.ID {
		t.Fatalf("refused calls changed the personas: %+v %v", list, err)
	}
	var got api.Persona
	if err := c.Call(ctxT(t), api.MethodPersonaGet, api.PersonaRefParams{ID: "ok"}, &got); err != nil || got.Params != (api.PersonaParams{}) || got.Name != "ok" {
		t.Errorf("the refused updates changed ok: %+v %v", got, err)
	}
}

// Clients that vanish with persona calls in flight leave the daemon
// serving the others, with every persona acknowledged to anyone stored and
// running.
func TestClientVanishesMidCall(t *testing.T) {
	e := newEnv(t)
	steady := e.dial()
	for round := 0; round < 3; round++ {
		gone := e.dial()
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(2)
			go func() {
				defer wg.Done()
				_ = gone.Call(context.Background(), api.MethodPersonaCreate, api.PersonaCreateParams{Name: "ghost" + string(rune('a'+round)) + string(rune('a'+i)), Model: e.model, Rooms: []string{"general"}}, nil)
			}()
			go func() {
				defer wg.Done()
				_ = gone.Call(context.Background(), api.MethodPersonaStatus, nil, nil)
			}()
		}
		time.Sleep(time.Millisecond)
		gone.Close()
		wg.Wait()
	}
	p := create(t, steady, api.PersonaCreateParams{Name: "steady", Model: e.model, Rooms: []string{"general"}})
	// A create of a vanished client may still be running in the daemon
	// (its client saw unavailable at once): wait until the stored personas
	// and the running ones are the same set.
	var (
		list []api.Persona
		sts  []api.PersonaStatus
	)
	for deadline := time.Now().Add(5 * time.Second); ; {
		if err := steady.Call(ctxT(t), api.MethodPersonaList, nil, &list); err != nil {
			t.Fatal(err)
		}
		if err := steady.Call(ctxT(t), api.MethodPersonaStatus, nil, &sts); err != nil {
			t.Fatal(err)
		}
		if len(sts) == len(list) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status of %d stored personas lists %d", len(list), len(sts))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, st := range sts {
		if st.State != api.PersonaRunning {
			t.Errorf("%s is %s", st.Name, st.State)
		}
	}
	if got := status(t, steady, p.ID); got.Name != "steady" {
		t.Errorf("steady: %+v", got)
	}
}
