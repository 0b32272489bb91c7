package daemon_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/continuum-grid/continuum/api"
)

// A full disk under the daemon's state: the emit that cannot be written fails
// with unavailable and leaves nothing, the daemon keeps serving everything
// else, and emits work again, with no seq skipped, once space is freed.
func TestEmitOnFullDiskIsUnavailable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a 2 MiB tmpfs as the state dir")
	}
	dir := shortDir(t)
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", state, "tmpfs", 0, "size=2m"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	// Registered before the daemon's own cleanup, so it runs after it.
	t.Cleanup(func() { syscall.Unmount(state, 0) })
	d := startIn(t, dir)
	c := dialBig(t, d)
	declare(t, c, api.ClassConfig{Name: "blob:put", Broadcast: true, Channel: api.ChannelGlobal})
	watch, err := c.Subscribe(ctxT(t), api.SubscribeParams{Pattern: "*", From: api.FromStart})
	if err != nil {
		t.Fatal(err)
	}
	var acked []api.EmitResult
	for i := 0; i < 5; i++ {
		acked = append(acked, mustEmit(t, c, api.EmitParams{Name: "blob:put", ID: fmt.Sprintf("small-%d", i), Payload: "x"}))
	}

	filler, err := os.Create(filepath.Join(state, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := filler.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	filler.Close()

	// Large events until the file cannot grow: the free pages bbolt already
	// has may take a few first.
	big := strings.Repeat("y", 48<<10)
	var failed error
	for i := 0; i < 200 && failed == nil; i++ {
		res, err := c.Emit(ctxT(t), api.EmitParams{Name: "blob:put", ID: fmt.Sprintf("big-%d", i), Payload: big})
		if err != nil {
			failed = err
			break
		}
		acked = append(acked, res)
	}
	if failed == nil {
		t.Fatal("200 emits of 48 KiB fitted on a full 2 MiB filesystem")
	}
	wantCode(t, failed, api.CodeUnavailable)
	// The daemon is still up and its other methods still answer.
	if _, err := c.Ping(ctxT(t)); err != nil {
		t.Fatalf("ping after a failed commit: %v", err)
	}
	if _, err := dial(t, d).ListClasses(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if st := logStats(t, c); st.Events != uint64(len(acked)) || st.Head != acked[len(acked)-1].Seq {
		t.Fatalf("after the failed emit the log holds %d events (head %d); %d were acknowledged", st.Events, st.Head, len(acked))
	}

	if err := os.Remove(filepath.Join(state, "filler")); err != nil {
		t.Fatal(err)
	}
	res := mustEmit(t, c, api.EmitParams{Name: "blob:put", ID: "after", Payload: "z"})
	if res.Seq != acked[len(acked)-1].Seq+1 {
		t.Fatalf("emit after freeing space got seq %d, want %d (no seq skipped)", res.Seq, acked[len(acked)-1].Seq+1)
	}
	acked = append(acked, res)
	got := collect(t, watch, len(acked))
	for i, ev := range got {
		if ev.ID != acked[i].ID || ev.Seq != acked[i].Seq {
			t.Fatalf("subscriber event %d: %s seq %d, acknowledged %s seq %d", i, ev.ID, ev.Seq, acked[i].ID, acked[i].Seq)
		}
	}
	noMore(t, watch)
}
