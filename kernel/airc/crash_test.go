package airc

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel/identity"
	"github.com/continuum-grid/continuum/kernel/store"
)

var crashRounds = flag.Int("crash-rounds", 0, "kill -9 rounds of TestCrashKill9 (default 3, or $CONTINUUM_CRASH_ROUNDS)")

func rounds() int {
	if *crashRounds > 0 {
		return *crashRounds
	}
	if n, err := strconv.Atoi(os.Getenv("CONTINUUM_CRASH_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 3
}

// TestCrashKill9 builds internal/crashtest, lets it append from 16 writers,
// SIGKILLs it at a random moment, and checks that every id it printed (each
// printed only after Append acknowledged it) is in the log exactly once, that
// the file passes bbolt's check, and that the chains are dense and signed.
// Rounds reuse the state dir, so each one also recovers from the previous
// crash.
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a helper process")
	}
	bin := filepath.Join(t.TempDir(), "crashtest")
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if out, err := exec.Command(goBin, "build", "-o", bin, "./internal/crashtest").CombinedOutput(); err != nil {
		t.Fatalf("build the helper: %v\n%s", err, out)
	}
	dir := t.TempDir()
	acked := map[string]bool{}
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for round := 0; round < rounds(); round++ {
		cmd := exec.Command(bin, "-dir", dir, "-writers", "16", "-prefix", fmt.Sprintf("r%d", round))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1<<16)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Kill once it is running: after the first ack plus a random while.
		first, ok := <-lines
		if !ok {
			cmd.Wait()
			t.Fatalf("round %d: the helper acknowledged nothing", round)
		}
		time.Sleep(time.Duration(r.IntN(400)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, id := range append([]string{first}, drain(lines)...) {
			if acked[id] {
				t.Fatalf("id %s acknowledged twice", id)
			}
			acked[id] = true
			n++
		}
		cmd.Wait()
		t.Logf("round %d: %d acknowledged before kill -9", round, n)
		verifyAfterCrash(t, dir, acked)
	}
}

func drain(lines <-chan string) []string {
	var out []string
	for l := range lines {
		out = append(out, l)
	}
	return out
}

func verifyAfterCrash(t *testing.T, dir string, acked map[string]bool) {
	t.Helper()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer st.Close()
	checkFile(t, st.DB)
	id, err := identity.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(st.DB, id, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	count := map[string]int{}
	oseq := map[string]uint64{}
	var (
		seq uint64
		all []api.Event
	)
	for {
		evs, err := l.Read(seq, MaxReadLimit)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		for _, ev := range evs {
			if ev.Seq != seq+1 {
				t.Fatalf("seq %d after %d: not dense", ev.Seq, seq)
			}
			seq = ev.Seq
			count[ev.ID]++
			all = append(all, ev)
			if ev.OriginSeq != oseq[ev.Channel]+1 {
				t.Fatalf("channel %s: originSeq %d after %d", ev.Channel, ev.OriginSeq, oseq[ev.Channel])
			}
			oseq[ev.Channel] = ev.OriginSeq
			if _, err := VerifyEvent(&ev); err != nil {
				t.Fatalf("seq %d: %v", ev.Seq, err)
			}
		}
	}
	if seq != l.Head() {
		t.Fatalf("read up to %d, head %d", seq, l.Head())
	}
	// The indexes of the newest local events were in memory at the kill
	// (indexEvery); Open derived them: every event is found by id and in
	// its channel's transcript.
	for _, ev := range all {
		if got, ok, err := l.Get(ev.Origin, ev.ID); err != nil || !ok || got.Seq != ev.Seq {
			t.Fatalf("Get %s after the crash: found=%v err=%v seq %d, want %d", ev.ID, ok, err, got.Seq, ev.Seq)
		}
	}
	for ch, n := range oseq {
		var got uint64
		for cur := ""; ; {
			evs, next, err := l.Replay(ch, cur, "", MaxReplayLimit)
			if err != nil {
				t.Fatal(err)
			}
			got += uint64(len(evs))
			if next == "" {
				break
			}
			cur = next
		}
		if got != n {
			t.Fatalf("channel %s: replay gives %d events, the log holds %d", ch, got, n)
		}
	}
	for id := range acked {
		if count[id] != 1 {
			t.Fatalf("acknowledged id %s is in the log %d times", id, count[id])
		}
	}
	for id, n := range count {
		if n != 1 {
			t.Fatalf("id %s stored %d times", id, n)
		}
	}
	t.Logf("log holds %d events (%d acknowledged, the rest committed as the kill came)", seq, len(acked))
}
