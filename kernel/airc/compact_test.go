package airc

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/continuum-grid/continuum/kernel/store"
)

// A file with nothing to give back is kept as it was: a fresh bbolt copy of
// a small file comes out larger (it grows in steps), and compaction must
// never grow the file.
func TestCompactKeepsAFileItCannotShrink(t *testing.T) {
	e := newEnv(t, Options{})
	for i := 0; i < 3; i++ {
		e.append("general", i)
	}
	e.log.Close()
	e.st.Close()
	path := filepath.Join(e.dir, store.FileName)
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Compact(path)
	if err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Kept || res.After != res.Before || after.Size() != before.Size() {
		t.Fatalf("compact of a small file: %+v; size %d → %d", res, before.Size(), after.Size())
	}
	if _, err := os.Stat(path + ".compact"); !os.IsNotExist(err) {
		t.Fatalf("the copy is left behind: %v", err)
	}
	e.st, err = store.Open(e.dir) // for the cleanup
	if err != nil {
		t.Fatal(err)
	}
	e.open()
}
