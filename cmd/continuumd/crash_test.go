package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/client"
	"github.com/continuum-grid/continuum/kernel/store"
	bolt "go.etcd.io/bbolt"
)

// A few rounds keep `make test` fast; -crash-rounds=25 (or
// CONTINUUM_CRASH_ROUNDS=25, which also reaches kernel/airc's crash test when
// several packages are tested at once) is the soak.
var (
	crashRounds = flag.Int("crash-rounds", 0, "kill -9 rounds of TestKill9KeepsEveryAcknowledgedEmit (default 3, or $CONTINUUM_CRASH_ROUNDS)")
	crashSeed   = flag.Uint64("crash-seed", 0, "seed for the kill moments (0: from the clock; the test logs the one it used)")
)

func rounds() int {
	if *crashRounds > 0 {
		return *crashRounds
	}
	if n, err := strconv.Atoi(os.Getenv("CONTINUUM_CRASH_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 3
}

const crashEmitters = 16

// TestKill9KeepsEveryAcknowledgedEmit drives the real continuumd with 16
// concurrent emitters choosing their own ids, SIGKILLs it at a random moment,
// checks the bbolt file, restarts on the same state dir and checks that every
// acknowledged id is in the log exactly once. The ids in flight at the kill
// are then emitted again, as a client would retry: each must end up stored
// exactly once whether or not the crash kept it. The state dir carries over
// from round to round, so later rounds also check the earlier rounds' events.
func TestKill9KeepsEveryAcknowledgedEmit(t *testing.T) {
	bin := daemonBinary(t)
	dir, err := os.MkdirTemp("", "ctmk9")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock, stateDir := filepath.Join(dir, "d.sock"), filepath.Join(dir, "state")
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -crash-seed %d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	acked := map[string]bool{} // every id acknowledged so far, all rounds
	for round := 0; round < rounds(); round++ {
		p, c := startBinary(t, bin, sock, stateDir)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		for _, cl := range []api.ClassConfig{
			{Name: "crash:global", SchemaVersion: "v1", Broadcast: true, Channel: api.ChannelGlobal},
			{Name: "crash:room", SchemaVersion: "v1", Broadcast: true, Channel: api.ChannelByRoomID},
		} {
			if _, err := c.DeclareClass(ctx, cl); err != nil {
				t.Fatal(err)
			}
		}

		var (
			mu       sync.Mutex
			inflight = map[string]api.EmitParams{}
			got      = map[string]bool{}
			wg       sync.WaitGroup
			conns    []*client.Client
		)
		ackedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
		for w := 0; w < crashEmitters; w++ {
			em, err := client.Dial(ctx, sock)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, em)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					p := api.EmitParams{Name: "crash:global", ID: fmt.Sprintf("r%d-w%d-%d", round, w, i), Payload: map[string]any{"w": w, "i": i}}
					if w%2 == 1 {
						p.Name = "crash:room"
						p.Payload = map[string]any{"roomId": fmt.Sprintf("room-%d", w%4), "i": i}
					}
					mu.Lock()
					inflight[p.ID] = p
					mu.Unlock()
					if _, err := em.Emit(ctx, p); err != nil {
						return // the daemon is gone
					}
					mu.Lock()
					delete(inflight, p.ID)
					got[p.ID] = true
					mu.Unlock()
				}
			}()
		}
		// Kill at a random moment once some emits were acknowledged, so each
		// round has something to lose.
		for ackedCount() < crashEmitters {
			if ctx.Err() != nil {
				t.Fatalf("round %d: only %d emits acknowledged\n%s", round, ackedCount(), p.logs.String())
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.done
		p.done <- nil
		wg.Wait()
		cancel()
		for _, em := range conns {
			em.Close()
		}
		for id := range got {
			acked[id] = true
		}
		t.Logf("round %d: %d acknowledged, %d in flight at the kill", round, len(got), len(inflight))

		checkBoltFile(t, filepath.Join(stateDir, store.FileName))

		vp, c := startBinary(t, bin, sock, stateDir)
		ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
		counts := logCounts(ctx, t, c)
		for id := range acked {
			if counts[id] != 1 {
				t.Fatalf("round %d: acknowledged id %s is in the log %d times", round, id, counts[id])
			}
		}
		for id, n := range counts {
			if n != 1 {
				t.Fatalf("round %d: id %s is in the log %d times", round, id, n)
			}
		}
		// Retry what was in flight: a duplicate answers with the stored
		// record, a lost one is stored now; either way exactly once.
		for id, p := range inflight {
			res, err := c.Emit(ctx, p)
			if err != nil {
				t.Fatalf("retry %s: %v", id, err)
			}
			if res.ID != id || res.Seq == 0 {
				t.Fatalf("retry %s answered %+v", id, res)
			}
			acked[id] = true
		}
		counts = logCounts(ctx, t, c)
		for id := range acked {
			if counts[id] != 1 {
				t.Fatalf("round %d: after the retries %s is in the log %d times", round, id, counts[id])
			}
		}
		var st api.LogStats
		if err := c.Call(ctx, api.MethodLogStats, nil, &st); err != nil {
			t.Fatal(err)
		}
		if st.Events != uint64(len(counts)) || st.Head != st.Events {
			t.Fatalf("round %d: log/stats says %d events (head %d), the channels hold %d", round, st.Events, st.Head, len(counts))
		}
		cancel()
		c.Close()
		// The verifying daemon is killed too, so the next round's start is
		// another recovery from kill -9.
		vp.cmd.Process.Signal(syscall.SIGKILL)
		vp.done <- <-vp.done
	}
}

// logCounts reads every channel of the log with events/replay and counts the
// ids of the events it holds.
func logCounts(ctx context.Context, t *testing.T, c *client.Client) map[string]int {
	t.Helper()
	var st api.LogStats
	if err := c.Call(ctx, api.MethodLogStats, nil, &st); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	seqs := map[uint64]bool{}
	for _, ch := range st.Channels {
		var after *string
		for {
			res, err := c.Replay(ctx, api.ReplayParams{Channel: ch.Channel, After: after, Limit: 500})
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range res.Events {
				if seqs[ev.Seq] {
					t.Fatalf("seq %d appears twice", ev.Seq)
				}
				seqs[ev.Seq] = true
				counts[ev.ID]++
			}
			if res.Next == nil {
				break
			}
			after = res.Next
		}
	}
	return counts
}

// checkBoltFile opens the state file as continuumd left it and runs bbolt's
// consistency check over every page.
func checkBoltFile(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("the state file does not open after kill -9: %v", err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("bbolt check after kill -9: %v", err)
	}
}
