package alloy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// NewManifest returns entries sorted by path, refusing duplicates and paths
// that are not clean, relative and slash-separated.
func NewManifest(entries []ManifestEntry) ([]ManifestEntry, error) {
	m := slices.Clone(entries)
	slices.SortFunc(m, func(a, b ManifestEntry) int { return strings.Compare(a.Path, b.Path) })
	if err := checkManifest(m); err != nil {
		return nil, err
	}
	return m, nil
}

func checkManifest(m []ManifestEntry) error {
	if len(m) > MaxOutputs {
		return fmt.Errorf("%d files is over the limit of %d", len(m), MaxOutputs)
	}
	for i, e := range m {
		if e.Path == "" || path.Clean(e.Path) != e.Path || path.IsAbs(e.Path) || e.Path == ".." || strings.HasPrefix(e.Path, "../") || strings.Contains(e.Path, "\\") {
			return fmt.Errorf("path %q is not clean, relative and slash-separated", short(e.Path))
		}
		if e.Size < 0 {
			return fmt.Errorf("%s: negative size", e.Path)
		}
		if !isHash(e.SHA256) {
			return fmt.Errorf("%s: sha256 is not 64 lowercase hex digits", e.Path)
		}
		if i > 0 && m[i-1].Path >= e.Path {
			return fmt.Errorf("paths are not sorted and unique at %q", e.Path)
		}
	}
	return nil
}

// ManifestHash is the output hash of a multi-file output: sha256 (hex) of
// the canonical bytes of the sorted manifest, a JSON array of {path, size,
// sha256}.
func ManifestHash(m []ManifestEntry) (string, error) {
	b, err := canonical(m)
	if err != nil {
		return "", err
	}
	return sha256Hex(b), nil
}

// hashBufSize is the read size of HashFile: large enough that syscalls do
// not show next to sha256 itself.
const hashBufSize = 1 << 20

// HashFile returns the size and sha256 (hex) of the file at p.
func HashFile(p string) (int64, string, error) {
	return hashFile(context.Background(), p)
}

func hashFile(ctx context.Context, p string) (int64, string, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	return HashReader(ctx, f)
}

// HashReader returns the byte count and sha256 (hex) of everything r
// yields, stopping with ctx's error once ctx is done.
func HashReader(ctx context.Context, r io.Reader) (int64, string, error) {
	h := sha256.New()
	buf := make([]byte, hashBufSize)
	n, err := io.CopyBuffer(h, ctxReader{ctx, r}, buf)
	if err != nil {
		return n, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// ctxReader checks ctx before each read (one per MiB, so the check costs
// nothing), and hides r's WriteTo so io.CopyBuffer uses our buffer.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// HashDir returns the manifest of every regular file under dir (paths
// relative to dir). A symlink or other special file is an error: what is
// hashed must be what is there, not what a link points at.
func HashDir(dir string) ([]ManifestEntry, error) { return hashDir(context.Background(), dir) }

func hashDir(ctx context.Context, dir string) ([]ManifestEntry, error) {
	var m []ManifestEntry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", filepath.ToSlash(rel))
		}
		if len(m) >= MaxOutputs {
			return errors.New("too many files")
		}
		size, sum, err := hashFile(ctx, p)
		if err != nil {
			return err
		}
		m = append(m, ManifestEntry{Path: filepath.ToSlash(rel), Size: size, SHA256: sum})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return NewManifest(m)
}
