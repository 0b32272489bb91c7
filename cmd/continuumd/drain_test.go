package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/client"
	"github.com/continuum-grid/continuum/kernel/store"
)

// TestSIGTERMDrainKeepsEveryAcknowledgedEmit: 16 emitters write logged
// events to the real binary while it gets SIGTERM. It must exit 0 within the
// drain timeout, leave a sound bbolt file, and after a restart every
// acknowledged id is in the log exactly once; nothing is stored that was
// never sent.
func TestSIGTERMDrainKeepsEveryAcknowledgedEmit(t *testing.T) {
	bin := daemonBinary(t)
	dir := privateDir(t)
	sock, stateDir := filepath.Join(dir, "d.sock"), filepath.Join(dir, "state")
	p, c := startBinary(t, bin, sock, stateDir, "--drain-timeout", "5s")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.DeclareClass(ctx, api.ClassConfig{Name: "drain:global", SchemaVersion: "v1", Broadcast: true, Channel: api.ChannelGlobal}); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		got  = map[string]bool{}
		sent = map[string]bool{}
		wg   sync.WaitGroup
	)
	for w := 0; w < crashEmitters; w++ {
		em, err := client.Dial(ctx, sock)
		if err != nil {
			t.Fatal(err)
		}
		defer em.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				mu.Lock()
				sent[id] = true
				mu.Unlock()
				if _, err := em.Emit(ctx, api.EmitParams{Name: "drain:global", ID: id, Payload: map[string]any{"w": w, "i": i}}); err != nil {
					return // draining or gone
				}
				mu.Lock()
				got[id] = true
				mu.Unlock()
			}
		}()
	}
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 4*crashEmitters {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("only %d emits acknowledged\n%s", n, p.logs.String())
		}
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("continuumd did not drain within 15s\n%s", p.logs.String())
	}
	if el := time.Since(start); el > 6*time.Second {
		t.Fatalf("drain took %s with --drain-timeout 5s", el)
	}
	wg.Wait()
	t.Logf("%d acknowledged, %d sent", len(got), len(sent))
	checkBoltFile(t, filepath.Join(stateDir, store.FileName))

	_, c2 := startBinary(t, bin, sock, stateDir)
	counts := logCounts(ctx, t, c2)
	for id := range got {
		if counts[id] != 1 {
			t.Fatalf("acknowledged id %s is in the log %d times after SIGTERM", id, counts[id])
		}
	}
	for id, n := range counts {
		if !sent[id] || n != 1 {
			t.Fatalf("id %s is in the log %d times (sent: %v)", id, n, sent[id])
		}
	}
}
