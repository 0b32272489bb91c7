package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/client"
)

// --replicate names the channels that replicate with every trusted peer:
// two binaries linked in "extended" (where the default replicates only
// global) replicate "ops" because of the flag, and still not "other".
func TestReplicateFlagThroughTheBinary(t *testing.T) {
	bin := daemonBinary(t)
	start := func() (*client.Client, string) {
		dir, err := os.MkdirTemp("", "crbin")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		_, c := startBinary(t, bin, filepath.Join(dir, "d.sock"), filepath.Join(dir, "state"), "--listen-quic", "127.0.0.1:0", "--replicate", "ops, ")
		var info api.InfoResult
		if err := c.Call(context.Background(), api.MethodKernelInfo, api.Empty{}, &info); err != nil {
			t.Fatal(err)
		}
		return c, info.PeerID
	}
	ca, ida := start()
	cb, _ := start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var inv api.InviteResult
	if err := ca.Call(ctx, api.MethodGridInvite, api.InviteParams{Circle: "extended"}, &inv); err != nil {
		t.Fatal(err)
	}
	if err := cb.Call(ctx, api.MethodGridJoin, api.JoinParams{Token: inv.Token}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.DeclareClass(ctx, api.ClassConfig{Name: "ops:noted", Broadcast: true, Channel: api.ChannelByRoomID, SchemaVersion: "v1"}); err != nil {
		t.Fatal(err)
	}
	for _, room := range []string{"other", "ops"} {
		if _, err := ca.Emit(ctx, api.EmitParams{Name: "ops:noted", Payload: map[string]any{"roomId": room}}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var st api.GridStatus
		if err := cb.Call(ctx, api.MethodGridStatus, api.Empty{}, &st); err != nil {
			t.Fatal(err)
		}
		if st.Channels["ops"][ida] == 1 {
			if n := st.Channels["other"][ida]; n != 0 {
				t.Fatalf("channel other replicated (%d) though --replicate names only ops", n)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ops never replicated: B holds %v", st.Channels)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
