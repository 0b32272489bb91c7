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

// TestListenQUICLinksTwoBinaries runs two continuumd processes with
// --listen-quic and links them by invite, as the README tour does.
func TestListenQUICLinksTwoBinaries(t *testing.T) {
	bin := daemonBinary(t)
	start := func() (*proc, *client.Client, api.InfoResult) {
		dir, err := os.MkdirTemp("", "cgbin")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		p, c := startBinary(t, bin, filepath.Join(dir, "d.sock"), filepath.Join(dir, "state"), "--listen-quic", "127.0.0.1:0")
		var info api.InfoResult
		if err := c.Call(context.Background(), api.MethodKernelInfo, api.Empty{}, &info); err != nil {
			t.Fatal(err)
		}
		if len(info.QUICAddrs) != 1 {
			t.Fatalf("kernel/info quicAddrs = %v with --listen-quic 127.0.0.1:0", info.QUICAddrs)
		}
		return p, c, info
	}
	pa, ca, ia := start()
	_, cb, ib := start()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var inv api.InviteResult
	if err := ca.Call(ctx, api.MethodGridInvite, api.InviteParams{Circle: "household"}, &inv); err != nil {
		t.Fatal(err)
	}
	var jr api.JoinResult
	if err := cb.Call(ctx, api.MethodGridJoin, api.JoinParams{Token: inv.Token}, &jr); err != nil {
		t.Fatal(err)
	}
	if jr.PeerID != ia.PeerID {
		t.Fatalf("joined %s, want %s", jr.PeerID, ia.PeerID)
	}
	up := func(c *client.Client, id string) bool {
		var r api.PeersResult
		if err := c.Call(ctx, api.MethodGridPeers, api.Empty{}, &r); err != nil {
			t.Fatal(err)
		}
		return len(r.Peers) == 1 && r.Peers[0].PeerID == id && r.Peers[0].State == "up"
	}
	deadline := time.Now().Add(10 * time.Second)
	for !up(ca, ib.PeerID) || !up(cb, ia.PeerID) {
		if time.Now().After(deadline) {
			t.Fatalf("no link between the two binaries\n%s", pa.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	pa.stop(t)
}
