package airc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel/identity"
	"github.com/continuum-grid/continuum/kernel/store"
)

// TestDiskFull fills a real (tiny tmpfs) filesystem under the log: appends
// that cannot be written fail with unavailable and leave nothing behind, and
// the log works again once space is freed. It needs root to mount; it skips
// otherwise.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a 2 MiB tmpfs (mount -t tmpfs -o size=2m)")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=2m"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v); the injected-failure test covers the logic", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, 0) })
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := identity.Generate()
	l, err := Open(st.DB, id, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(); st.Close() })
	ctx := context.Background()
	appendN := func(payload string) (api.Event, error) {
		ev, _, err := l.Append(ctx, api.Event{Class: "c", Channel: "room", Payload: payload})
		return ev, err
	}
	var acked []api.Event
	for i := 0; i < 10; i++ {
		ev, err := appendN("small")
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, ev)
	}
	// Fill the filesystem.
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	big := strings.Repeat("x", 256<<10)
	var failed error
	for i := 0; i < 20 && failed == nil; i++ {
		ev, err := appendN(big)
		if err != nil {
			failed = err
			break
		}
		acked = append(acked, ev) // there was still room in free pages
	}
	if api.CodeOf(failed) != api.CodeUnavailable {
		t.Fatalf("append on a full disk: %v, want unavailable", failed)
	}
	t.Logf("full disk: %v", failed)
	head := l.Head()
	if head != acked[len(acked)-1].Seq {
		t.Fatalf("head %d, last acknowledged %d", head, acked[len(acked)-1].Seq)
	}
	// Space comes back; the log carries on where it was.
	os.Remove(filler)
	ev, err := appendN("after")
	if err != nil {
		t.Fatalf("after freeing space: %v", err)
	}
	if ev.Seq != head+1 || ev.OriginSeq != uint64(len(acked))+1 {
		t.Fatalf("after recovery: seq %d originSeq %d, want %d %d", ev.Seq, ev.OriginSeq, head+1, len(acked)+1)
	}
	acked = append(acked, ev)
	checkFile(t, st.DB)
	all, err := l.Read(0, 1000)
	if err != nil || len(all) != len(acked) {
		t.Fatalf("read %d events (%v), acknowledged %d", len(all), err, len(acked))
	}
	for i := range all {
		if !sameEvent(all[i], acked[i]) {
			t.Fatalf("event %d differs", i)
		}
		if _, err := VerifyEvent(&all[i]); err != nil {
			t.Fatal(err)
		}
	}
}
