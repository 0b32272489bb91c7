package chat_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/daemon"
	"github.com/continuum-grid/continuum/grid"
	"github.com/continuum-grid/continuum/kernel"
)

// A room is one transcript across installs: a message sent on A is in B's
// chat/history with A as its origin, and B's answer is in A's, in the same
// order on both.
func TestRoomAcrossTwoDaemons(t *testing.T) {
	if testing.Short() {
		t.Skip("links two daemons over loopback QUIC")
	}
	start := func() *daemon.Daemon {
		dir := shortDir(t)
		d, err := daemon.Start(daemon.Config{
			Kernel: kernel.Config{StateDir: filepath.Join(dir, "state")},
			Socket: filepath.Join(dir, "d.sock"),
			Grid:   grid.Options{ListenQUIC: "127.0.0.1:0"},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = d.Shutdown(ctx)
		})
		return d
	}
	a, b := start(), start()
	ca, cb := dial(t, a), dial(t, b)
	ctx := ctxT(t)
	var inv api.InviteResult
	if err := ca.Call(ctx, api.MethodGridInvite, api.InviteParams{Circle: "household"}, &inv); err != nil {
		t.Fatal(err)
	}
	if err := cb.Call(ctx, api.MethodGridJoin, api.JoinParams{Token: inv.Token}, nil); err != nil {
		t.Fatal(err)
	}
	hello := send(t, ca, api.ChatSendParams{RoomID: "general", Text: "hello from A"})
	waitHistory := func(c interface {
		Call(context.Context, string, any, any) error
	}, n int) []api.ChatEntry {
		deadline := time.Now().Add(20 * time.Second)
		for {
			var h api.ChatHistoryResult
			if err := c.Call(ctx, api.MethodChatHistory, api.ChatHistoryParams{RoomID: "general"}, &h); err != nil {
				t.Fatal(err)
			}
			if len(h.Messages) >= n {
				return h.Messages
			}
			if time.Now().After(deadline) {
				t.Fatalf("history has %d messages, want %d", len(h.Messages), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	onB := waitHistory(cb, 1)
	if onB[0].ID != hello.ID || onB[0].Origin != a.Kernel().PeerID() || onB[0].Text != "hello from A" {
		t.Fatalf("B's copy: %+v", onB[0])
	}
	send(t, cb, api.ChatSendParams{RoomID: "general", Text: "hello from B", ReplyTo: hello.ID})
	onA := waitHistory(ca, 2)
	if onA[1].Origin != b.Kernel().PeerID() || onA[1].ReplyTo != hello.ID {
		t.Fatalf("A's copy of B's answer: %+v", onA[1])
	}
	if got, want := texts(waitHistory(cb, 2)), texts(onA); got != want {
		t.Errorf("the two transcripts differ: B %q, A %q", got, want)
	}
}
