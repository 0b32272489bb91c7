package daemon_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/client"
	"github.com/continuum-grid/continuum/ipc/server"
	"github.com/continuum-grid/continuum/ipc/unixsock"
	"github.com/continuum-grid/continuum/kernel"
)

// A log-backed subscription sends the stored envelopes as they are, filtered
// by a peek at class and channel: over the socket and in process, it must
// deliver exactly the matching events, in order, whole, with envelopes of
// growing size (the tailer's batch buffer grows under them). It wires a
// kernel to an ipc server by hand, so it lives here and not in kernel/,
// which never imports ipc (arch_test.go).
func TestEncodedReplayFiltersAndKeepsEnvelopes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	k, err := kernel.Open(kernel.Config{StateDir: filepath.Join(dir, "state")})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close(ctx)
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, unixsock.SocketName)
	l, err := unixsock.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(k, server.Options{})
	go srv.Serve(l)
	defer srv.Shutdown(ctx)

	em, err := client.NewInProcess(k)
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	for _, c := range []api.ClassConfig{
		{Name: "chat:posted", Broadcast: true, Channel: api.ChannelByRoomID, SchemaVersion: "v1"},
		{Name: "chat:other", Broadcast: true, Channel: api.ChannelGlobal, SchemaVersion: "v1"},
	} {
		if _, err := em.DeclareClass(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	// 600 events: more than two tailer batches; every third in room "a",
	// payloads growing so that later envelopes outsize earlier ones.
	var want []string
	for i := range 600 {
		room := []string{"a", "b", "a"}[i%3]
		name := "chat:posted"
		if i%7 == 0 {
			name = "chat:other"
		}
		pad := strings.Repeat("x", i*5)
		id := fmt.Sprintf("e%d", i)
		if _, err := em.Emit(ctx, api.EmitParams{Name: name, ID: id, Payload: map[string]any{"roomId": room, "pad": pad, "i": i}}); err != nil {
			t.Fatal(err)
		}
		if name == "chat:posted" && room == "a" {
			want = append(want, id)
		}
	}
	sockClient, err := client.Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer sockClient.Close()
	for name, c := range map[string]*client.Client{"socket": sockClient, "inproc": em} {
		t.Run(name, func(t *testing.T) {
			sub, err := c.Subscribe(ctx, api.SubscribeParams{Pattern: "chat:posted", Channel: "a", From: api.FromStart})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close(ctx)
			var lastSeq uint64
			for n, id := range want {
				ev, err := sub.Next(ctx)
				if err != nil {
					t.Fatalf("after %d events: %v", n, err)
				}
				var p struct {
					Room string `msgpack:"roomId"`
					Pad  string `msgpack:"pad"`
					I    int    `msgpack:"i"`
				}
				if err := ev.DecodePayload(&p); err != nil {
					t.Fatal(err)
				}
				if ev.ID != id || ev.Class != "chat:posted" || ev.Channel != "a" || p.Room != "a" || len(p.Pad) != 5*p.I || ev.Seq <= lastSeq || len(ev.Sig) != 64 || len(ev.Prev) != 32 {
					t.Fatalf("event %d: got %s %s %s seq %d (after %d), pad %d for i %d", n, ev.ID, ev.Class, ev.Channel, ev.Seq, lastSeq, len(p.Pad), p.I)
				}
				lastSeq = ev.Seq
			}
		})
	}
}
