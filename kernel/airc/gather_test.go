package airc

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
)

// slowCommits makes every commit take at least d, so that gather's linger
// (the last commit's time) is long against everything else in a test.
func slowCommits(l *Log, d time.Duration) {
	f := func() error { time.Sleep(d); return nil }
	l.failCommit.Store(&f)
}

func commitCalls(e *env) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls
}

// A closed loop of appenders (each appends again as soon as its append is
// acknowledged) ends up in one commit together instead of two halves taking
// turns: after each commit the log waits for those it answered.
func TestClosedLoopAppendersCommitTogether(t *testing.T) {
	e := newEnv(t, Options{})
	e.log.maxLinger = 2 * time.Second
	slowCommits(e.log, 50*time.Millisecond)
	const writers, rounds = 8, 6
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				ev := api.Event{Class: "chat:posted", Channel: "room-1", Sender: "t", SchemaVersion: "v1", Payload: map[string]any{"w": w, "r": r}}
				if _, _, err := e.log.Append(context.Background(), ev); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// Without the wait the first commit takes whoever came first, the rest
	// queue behind it, and the two groups alternate: 12 commits or more.
	// With it every commit after the first two holds all eight.
	if n := commitCalls(e); n > rounds+2 {
		t.Fatalf("%d appends took %d commits, want at most %d", writers*rounds, n, rounds+2)
	}
}

// A lone appender is never held: it is all the log expects back.
func TestLoneAppenderIsNotHeld(t *testing.T) {
	e := newEnv(t, Options{})
	e.log.maxLinger = 2 * time.Second
	const commit = 100 * time.Millisecond
	slowCommits(e.log, commit)
	const n = 4
	start := time.Now()
	for i := range n {
		if _, _, err := e.log.Append(context.Background(), api.Event{Class: "chat:posted", Channel: "room-1", Payload: i}); err != nil {
			t.Fatal(err)
		}
	}
	// A wait after each commit would add one commit's time per append.
	if took := time.Since(start); took > n*commit+commit/2*n {
		t.Fatalf("%d lone appends took %v, with commits of %v", n, took, commit)
	}
}

// A Flush (a barrier) is not kept waiting while the log gathers a batch
// for appenders that do not come back.
func TestFlushEndsTheGather(t *testing.T) {
	e := newEnv(t, Options{})
	l := e.log
	l.maxLinger = 2 * time.Second
	const commit = 300 * time.Millisecond
	// The first commit (of x) waits until a and b are queued behind it, so
	// the second holds both: afterwards the log expects two back, and
	// nobody comes.
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	f := func() error {
		once.Do(func() { close(held); <-release })
		time.Sleep(commit)
		return nil
	}
	l.failCommit.Store(&f)
	var wg sync.WaitGroup
	appendAsync := func(id string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := l.Append(context.Background(), api.Event{Class: "chat:posted", Channel: "room-1", ID: id, Payload: id}); err != nil {
				t.Error(err)
			}
		}()
	}
	appendAsync("x")
	<-held
	appendAsync("a")
	appendAsync("b")
	waitQueued(t, l, 1)
	close(release)
	wg.Wait()
	// The commit goroutine starts gathering just after it answered them.
	for i := 0; ; i++ {
		l.mu.Lock()
		want := l.want
		l.mu.Unlock()
		if want == 2 {
			break
		}
		if i == 100 {
			t.Fatalf("after a commit of two, the log gathers for %d, want 2", want)
		}
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The barrier's own commit takes `commit`; the gather would have added
	// up to another one before it.
	if took := time.Since(start); took > commit+commit/2 {
		t.Fatalf("Flush took %v during a gather, with commits of %v", took, commit)
	}
}
