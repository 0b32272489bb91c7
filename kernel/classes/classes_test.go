package classes

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/continuum-grid/continuum/api"
	bolt "go.etcd.io/bbolt"
)

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		in   api.ClassConfig
		want string // substring of the message; "" = valid
	}{
		{"blank name", api.ClassConfig{SchemaVersion: "v1"}, "class name is blank"},
		{"blank name beats blank schema", api.ClassConfig{Name: "  "}, "class name is blank"},
		{"blank schema", api.ClassConfig{Name: "chat:posted"}, "schemaVersion is blank"},
		{"broadcast without channel", api.ClassConfig{Name: "chat:posted", SchemaVersion: "v1", Broadcast: true}, "broadcast needs a channel"},
		{"broadcast with local", api.ClassConfig{Name: "chat:posted", SchemaVersion: "v1", Broadcast: true, Channel: api.ChannelLocal}, "broadcast needs a channel"},
		{"channel without broadcast", api.ClassConfig{Name: "chat:posted", SchemaVersion: "v1", Channel: api.ChannelGlobal}, "needs broadcast: true"},
		{"unknown strategy", api.ClassConfig{Name: "chat:posted", SchemaVersion: "v1", Broadcast: true, Channel: "byMoon"}, "unknown channel strategy"},
		{"unknown schema policy", api.ClassConfig{Name: "chat:posted", SchemaVersion: "v1", OnUnknownSchema: "ignore"}, "unknown onUnknownSchema"},
		{"wildcard in name", api.ClassConfig{Name: "chat:*", SchemaVersion: "v1"}, "may not hold"},
		{"empty segment", api.ClassConfig{Name: "chat::posted", SchemaVersion: "v1"}, "empty segment"},
		{"local", api.ClassConfig{Name: "ui:clicked", SchemaVersion: "v1"}, ""},
		{"global", api.ClassConfig{Name: "chat:posted", SchemaVersion: "v1", Broadcast: true, Channel: api.ChannelGlobal}, ""},
		{"by room", api.ClassConfig{Name: "chat:posted", SchemaVersion: "v1", Broadcast: true, Channel: api.ChannelByRoomID, OnUnknownSchema: api.SchemaWarn}, ""},
		{"custom", api.ClassConfig{Name: "chat:posted", SchemaVersion: "v1", Broadcast: true, Channel: api.ChannelCustom}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(Normalize(tc.in))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if api.CodeOf(err) != api.CodeInvalidArgument {
				t.Fatalf("want invalid_argument, got %v", err)
			}
			if !contains(err.Error(), tc.want) {
				t.Fatalf("message %q does not name the rule %q", err, tc.want)
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestResolve(t *testing.T) {
	global := &api.ClassConfig{Name: "g", Broadcast: true, Channel: api.ChannelGlobal}
	room := &api.ClassConfig{Name: "r", Broadcast: true, Channel: api.ChannelByRoomID}
	peer := &api.ClassConfig{Name: "p", Broadcast: true, Channel: api.ChannelByPeerID}
	custom := &api.ClassConfig{Name: "c", Broadcast: true, Channel: api.ChannelCustom}
	local := &api.ClassConfig{Name: "l", Channel: api.ChannelLocal}
	cases := []struct {
		name     string
		class    *api.ClassConfig
		payload  map[string]any
		explicit string
		want     string
		code     api.Code
	}{
		{"undeclared", nil, nil, "", "", api.CodeUndeclaredClass},
		{"local", local, nil, "", "", api.CodeNotBroadcast},
		{"global", global, nil, "", "global", ""},
		{"global ignores payload", global, map[string]any{"roomId": "x"}, "", "global", ""},
		{"room", room, map[string]any{"roomId": "general"}, "", "general", ""},
		{"room missing", room, map[string]any{"peerId": "x"}, "", "", api.CodeMissingPayloadField},
		{"room empty", room, map[string]any{"roomId": ""}, "", "", api.CodeMissingPayloadField},
		{"room not string", room, map[string]any{"roomId": 7}, "", "", api.CodeMissingPayloadField},
		{"room nil payload", room, nil, "", "", api.CodeMissingPayloadField},
		{"peer", peer, map[string]any{"peerId": "cabc"}, "", "cabc", ""},
		{"peer missing", peer, map[string]any{}, "", "", api.CodeMissingPayloadField},
		{"custom", custom, nil, "ops", "ops", ""},
		{"custom missing", custom, nil, "", "", api.CodeMissingPayloadField},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Resolve(tc.class, "x:y", tc.payload, tc.explicit)
			if api.CodeOf(err) != tc.code {
				t.Fatalf("code %q, want %q (%v)", api.CodeOf(err), tc.code, err)
			}
			if got != tc.want {
				t.Fatalf("channel %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRegistryPersistsAndRedeclares(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(db)
	if err != nil {
		t.Fatal(err)
	}
	first, err := r.Declare(api.ClassConfig{Name: "chat:posted", SchemaVersion: "v1", Broadcast: true, Channel: api.ChannelByRoomID, Description: "first"})
	if err != nil {
		t.Fatal(err)
	}
	if first.OnUnknownSchema != api.SchemaFail {
		t.Fatalf("default onUnknownSchema = %q", first.OnUnknownSchema)
	}
	again, err := r.Declare(api.ClassConfig{Name: "chat:posted", SchemaVersion: "v1", Broadcast: true, Channel: api.ChannelByRoomID, Description: "second"})
	if err != nil {
		t.Fatalf("idempotent redeclare: %v", err)
	}
	if again.Description != "first" {
		t.Fatalf("description %q, want the first to stay", again.Description)
	}
	_, err = r.Declare(api.ClassConfig{Name: "chat:posted", SchemaVersion: "v2", Broadcast: true, Channel: api.ChannelByRoomID})
	if api.CodeOf(err) != api.CodeConflictingRedeclaration {
		t.Fatalf("want conflicting_redeclaration, got %v", err)
	}
	if _, err := r.Declare(api.ClassConfig{Name: "a:b", SchemaVersion: "v1"}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db, err = bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r, err = Open(db)
	if err != nil {
		t.Fatal(err)
	}
	list := r.List()
	if len(list) != 2 || list[0].Name != "a:b" || list[1].Name != "chat:posted" {
		t.Fatalf("after reopen, list = %+v", list)
	}
	if got := r.Get("chat:posted"); got == nil || got.Description != "first" || got.Channel != api.ChannelByRoomID {
		t.Fatalf("after reopen, get = %+v", got)
	}
	if r.Get("nope") != nil {
		t.Fatal("undeclared class found")
	}
}
