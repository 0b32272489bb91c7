package airc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel/store"
	bolt "go.etcd.io/bbolt"
)

func TestRetentionByCount(t *testing.T) {
	e := newEnv(t, Options{Retention: map[string]Retention{"a": {MaxCount: 5}}, RetentionInterval: -1})
	var a []api.Event
	for i := 0; i < 12; i++ {
		a = append(a, e.append("a", i))
		e.append("b", i) // no rule: kept
	}
	dropped, err := e.log.ApplyRetention()
	if err != nil || dropped != 7 {
		t.Fatalf("dropped %d, %v", dropped, err)
	}
	page, _, _ := e.log.Replay("a", "", "", 100)
	var got []uint64
	for _, ev := range page {
		got = append(got, ev.Seq)
	}
	var want []uint64
	for _, ev := range a[7:] {
		want = append(want, ev.Seq)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("kept %v, want the newest %v", got, want)
	}
	if b, _, _ := e.log.Replay("b", "", "", 100); len(b) != 12 {
		t.Fatalf("channel b lost events: %d", len(b))
	}
	st, _ := e.log.Stats()
	if st.Channels["a"].Events != 5 || st.Channels["b"].Events != 12 || st.Events != 17 {
		t.Fatalf("stats %+v", st)
	}
	// Read skips the dropped seqs.
	all, _ := e.log.Read(0, 100)
	if len(all) != 17 {
		t.Fatalf("read %d", len(all))
	}
	// A dropped event coming back is still a duplicate.
	again, dup, err := e.log.Append(context.Background(), api.Event{ID: a[0].ID, Class: "c", Channel: "a"})
	if err != nil || !dup || again.Seq != a[0].Seq {
		t.Fatalf("re-append of a dropped id: dup=%v seq=%d err=%v", dup, again.Seq, err)
	}
	if n, _ := e.log.ApplyRetention(); n != 0 {
		t.Fatalf("second pass dropped %d", n)
	}
}

func TestRetentionByAgeInBackground(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
	clock := func() time.Time { return time.UnixMilli(now.Load()) }
	e := newEnv(t, Options{DefaultRetention: Retention{MaxAge: time.Hour}, RetentionInterval: 10 * time.Millisecond, Now: clock})
	for i := 0; i < 5; i++ {
		e.append("room", i)
	}
	now.Add(int64(30 * time.Minute / time.Millisecond))
	young := e.append("room", "young")
	now.Add(int64(45 * time.Minute / time.Millisecond)) // the first five are 75 min old now
	deadline := time.Now().Add(5 * time.Second)
	for {
		page, _, _ := e.log.Replay("room", "", "", 100)
		if len(page) == 1 && page[0].Seq == young.Seq {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("background retention left %d events", len(page))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCompactKeepsEverything(t *testing.T) {
	e := newEnv(t, Options{Retention: map[string]Retention{"big": {MaxCount: 10}}, RetentionInterval: -1})
	p := newPeer(t)
	for i := 0; i < 300; i++ {
		e.append("big", map[string]any{"pad": fmt.Sprintf("%0512d", i)})
		if i%10 == 0 {
			e.append("small", i)
			ingest(t, e.log, p.next(t, "small", uint64(i+1)))
		}
	}
	if _, err := e.log.ApplyRetention(); err != nil {
		t.Fatal(err)
	}
	e.log.Ack("cur", 7)
	e.log.Flush(context.Background())
	before, _ := e.log.Read(0, MaxReadLimit)
	stats, _ := e.log.Stats()
	e.log.Close()
	e.st.Close()

	path := filepath.Join(e.dir, store.FileName)
	// Held open (as by a running daemon), the file is refused.
	held, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compact(path); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("compacting a file held open: %v", err)
	}
	held.Close()
	// A leftover copy of an interrupted run is replaced, not trusted.
	if err := os.WriteFile(path+".compact", []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := Compact(path)
	if err != nil {
		t.Fatal(err)
	}
	if res.Path != path || res.Before == 0 || res.After == 0 || res.After > res.Before {
		t.Fatalf("compact: %+v", res)
	}
	if _, err := os.Stat(path + ".compact"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the copy is left behind: %v", err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, db)
	l, err := Open(db, e.id, Options{})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := l.Read(0, MaxReadLimit)
	if len(after) != len(before) || len(before) != 10+30+30 {
		t.Fatalf("%d events before, %d after", len(before), len(after))
	}
	for i := range before {
		if !sameEvent(before[i], after[i]) {
			t.Fatalf("event %d differs after compaction", i)
		}
	}
	if c, _, _ := l.Cursor("cur"); c.Seq != 7 {
		t.Fatalf("cursor %+v", c)
	}
	st2, _ := l.Stats()
	if st2.Events != stats.Events || st2.Head != stats.Head || st2.Lamport != stats.Lamport {
		t.Fatalf("stats before %+v after %+v", stats, st2)
	}
	if st2.FileBytes >= stats.FileBytes {
		t.Logf("note: compacted file %d bytes, original %d", st2.FileBytes, stats.FileBytes)
	}
	// it keeps working: the chain continues
	ev, _, err := l.Append(context.Background(), api.Event{Class: "c", Channel: "small"})
	if err != nil || ev.OriginSeq != 31 {
		t.Fatalf("append after compaction: %+v %v", ev, err)
	}
	l.Close()
	db.Close()
	// cleanup of env expects an open store
	e.st, _ = store.Open(t.TempDir())
	e.log, _ = Open(e.st.DB, e.id, Options{})
}

// A log opened with limits applies them at once, not one interval later:
// a daemon restarted with new retention flags trims what it already holds.
func TestRetentionRunsAtOpen(t *testing.T) {
	e := newEnv(t, Options{RetentionInterval: -1})
	for i := 0; i < 10; i++ {
		e.append("a", i)
	}
	e.opts = Options{Retention: map[string]Retention{"a": {MaxCount: 3}}, RetentionInterval: time.Hour}
	e.reopen()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := e.log.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.Channels["a"].Events == 3 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("channel a still holds %d events after reopening with a limit of 3", st.Channels["a"].Events)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
