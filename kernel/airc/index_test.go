package airc

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel/store"
	bolt "go.etcd.io/bbolt"
)

// TestIndexWaitsAndIsDerivedAfterACrash covers the index entries that local
// appends leave in memory (indexEvery): before they are written, dedupe, Get
// and Replay still see the events; a copy of the file taken at that moment
// (what a crash leaves: the events committed, their index entries not) opens
// with every entry derived again, byte for byte what writeIndex writes.
func TestIndexWaitsAndIsDerivedAfterACrash(t *testing.T) {
	e := newEnv(t, Options{})
	p := newPeer(t)
	var local []api.Event
	for i := range 10 {
		ev, dup, err := e.log.Append(context.Background(), api.Event{ID: fmt.Sprintf("id-%d", i), Class: "c", Channel: fmt.Sprintf("ch%d", i%2), Payload: i})
		if err != nil || dup {
			t.Fatal(dup, err)
		}
		local = append(local, ev)
	}
	foreign, _, err := ingest(t, e.log, p.next(t, "ch0", 3))
	if err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, e.st.DB, bIDs); n != 1 {
		t.Fatalf("dedupe index holds %d entries before the index flush, want only the received event's", n)
	}
	// Served from memory meanwhile.
	if _, dup, err := e.log.Append(context.Background(), api.Event{ID: "id-3", Class: "c", Channel: "ch1"}); err != nil || !dup {
		t.Fatalf("duplicate of a waiting event: dup=%v err=%v", dup, err)
	}
	if ev, ok, err := e.log.Get(e.log.PeerID(), "id-4"); err != nil || !ok || ev.Seq != local[4].Seq {
		t.Fatalf("Get of a waiting event: %v %v %+v", ok, err, ev)
	}

	// A copy of the file as it is now: committed events, waiting index.
	crashed := filepath.Join(t.TempDir(), "state")
	st2, err := store.Open(crashed)
	if err != nil {
		t.Fatal(err)
	}
	st2.Close()
	if err := e.st.DB.View(func(tx *bolt.Tx) error { return tx.CopyFile(filepath.Join(crashed, store.FileName), 0o600) }); err != nil {
		t.Fatal(err)
	}

	// Replay writes the waiting entries first.
	evs, _, err := e.log.Replay("ch0", "", "", 0)
	if err != nil || len(evs) != 6 {
		t.Fatalf("replay ch0: %d events, %v", len(evs), err)
	}
	want := dumpIndexes(t, e.st.DB)

	st2, err = store.Open(crashed)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	l2, err := Open(st2.DB, e.id, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if got := dumpIndexes(t, st2.DB); got != want {
		t.Fatalf("derived index differs:\n%s\nwant\n%s", got, want)
	}
	checkFile(t, st2.DB)
	// The chain goes on from the derived slots and the stored chain head.
	next, _, err := l2.Append(context.Background(), api.Event{Class: "c", Channel: "ch1", Payload: "next"})
	if err != nil || next.OriginSeq != 6 || string(next.Prev) != string(hashOf(t, local[9])) {
		t.Fatalf("append after recovery: %v %+v", err, next)
	}
	if _, out, err := ingest(t, l2, foreign); err != nil || out != IngestDuplicate {
		t.Fatalf("received event after recovery: %v %v", out, err)
	}
}

func countKeys(t *testing.T, db *bolt.DB, bucket []byte) int {
	t.Helper()
	n := 0
	db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucket).Stats().KeyN
		return nil
	})
	return n
}

// dumpIndexes prints the dedupe, slot and transcript indexes and kIndexed.
func dumpIndexes(t *testing.T, db *bolt.DB) string {
	t.Helper()
	out := ""
	err := db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bIDs, bSlots} {
			tx.Bucket(b).ForEach(func(k, v []byte) error {
				out += fmt.Sprintf("%s %x %x\n", b, k, v)
				return nil
			})
		}
		tr := tx.Bucket(bTranscript)
		tr.ForEach(func(ch, _ []byte) error {
			return tr.Bucket(ch).ForEach(func(k, v []byte) error {
				out += fmt.Sprintf("transcript/%s %x %x\n", ch, k, v)
				return nil
			})
		})
		out += fmt.Sprintf("indexed %d head %d\n", getU64(tx.Bucket(bMeta).Get(kIndexed)), getU64(tx.Bucket(bMeta).Get(kHead)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFailedCommitKeepsWaitingIndex: a failed commit throws away what was
// queued, but the committed events whose index entries wait in memory stay
// findable, and the next commit that writes the index writes theirs.
func TestFailedCommitKeepsWaitingIndex(t *testing.T) {
	e := newEnv(t, Options{})
	first, _, err := e.log.Append(context.Background(), api.Event{ID: "kept", Class: "c", Channel: "ch", Payload: 1})
	if err != nil {
		t.Fatal(err)
	}
	fail := func() error { return fmt.Errorf("injected: no space left on device") }
	e.log.failCommit.Store(&fail)
	if _, _, err := e.log.Append(context.Background(), api.Event{ID: "lost", Class: "c", Channel: "ch"}); api.CodeOf(err) != api.CodeUnavailable {
		t.Fatalf("append during the failure: %v", err)
	}
	if ev, dup, err := e.log.Append(context.Background(), api.Event{ID: "kept", Class: "c", Channel: "ch"}); err != nil || !dup || ev.Seq != first.Seq {
		t.Fatalf("duplicate of a waiting event after a failed commit: dup=%v err=%v seq %d", dup, err, ev.Seq)
	}
	if _, _, err := e.log.Replay("ch", "", "", 0); api.CodeOf(err) != api.CodeUnavailable {
		t.Fatalf("replay while the index cannot be written: %v", err)
	}
	e.log.failCommit.Store(nil)
	evs, _, err := e.log.Replay("ch", "", "", 0)
	if err != nil || len(evs) != 1 || evs[0].ID != "kept" {
		t.Fatalf("replay after the failure: %v %+v", err, evs)
	}
	if n := countKeys(t, e.st.DB, bIDs); n != 1 {
		t.Fatalf("dedupe index holds %d entries, want 1", n)
	}
}
