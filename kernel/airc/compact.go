package airc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// CompactResult is what Compact did.
type CompactResult struct {
	Path   string `json:"path"`
	Before int64  `json:"before"` // file bytes before
	After  int64  `json:"after"`  // file bytes after
	// Kept is true when the compacted copy would not have been smaller
	// (a file with little free space: a fresh bbolt file grows in steps),
	// so the original was left as it was and the copy thrown away.
	Kept bool `json:"kept"`
}

// Compact rewrites the bbolt file at path in place without the free pages
// that deletions (retention) left behind: it copies every bucket and key (so
// every event, index, cursor, class and the entity tier survive) into
// path+".compact", fsyncs the copy, renames it over path and fsyncs the
// folder.
//
// It is an offline operation and refuses, saying so, while a daemon holds
// the file. It keeps bbolt's exclusive lock on the old file from before the
// copy until after the rename, so a daemon started meanwhile cannot open the
// old file and write to it in between (those writes would be lost with it):
// that daemon waits, then reports the state dir in use. An interrupted run
// leaves the original untouched (a leftover copy is removed by the next run).
// A copy that is not smaller than the original replaces nothing (Kept).
func Compact(path string) (CompactResult, error) {
	res := CompactResult{Path: path}
	fi, err := os.Stat(path)
	if err != nil {
		return res, fmt.Errorf("no state file to compact: %w", err)
	}
	res.Before = fi.Size()
	src, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return res, fmt.Errorf("%s is in use by a running continuumd: stop it first (compaction rewrites the file and must have it to itself)", path)
	}
	if err != nil {
		return res, fmt.Errorf("open %s: %w", path, err)
	}
	defer src.Close()
	tmp := path + ".compact"
	// A leftover from an interrupted run is garbage: the old file was never
	// replaced, so it is still the whole truth.
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return res, err
	}
	dst, err := bolt.Open(tmp, fi.Mode().Perm(), &bolt.Options{Timeout: time.Second, NoSync: true})
	if err != nil {
		return res, fmt.Errorf("create %s: %w", tmp, err)
	}
	fail := func(err error) (CompactResult, error) {
		dst.Close()
		os.Remove(tmp)
		return res, err
	}
	// 64 MiB per transaction bounds the memory of a copy of a large log.
	if err := bolt.Compact(dst, src, 64<<20); err != nil {
		return fail(fmt.Errorf("compact %s: %w", path, err))
	}
	// NoSync skipped fsync per copy transaction; one at the end makes the
	// whole copy durable before it replaces the original.
	dst.NoSync = false
	if err := dst.Sync(); err != nil {
		return fail(fmt.Errorf("sync %s: %w", tmp, err))
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return res, err
	}
	if ci, err := os.Stat(tmp); err == nil && ci.Size() >= res.Before {
		os.Remove(tmp)
		res.After, res.Kept = res.Before, true
		return res, nil
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return res, fmt.Errorf("replace %s: %w", path, err)
	}
	// The rename itself must reach the disk, or a crash could bring back
	// the old file (harmless) or lose the name (not).
	dir := filepath.Dir(path)
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return res, fmt.Errorf("sync %s: %w", dir, err)
		}
	}
	if fi, err := os.Stat(path); err == nil {
		res.After = fi.Size()
	}
	return res, nil
}
