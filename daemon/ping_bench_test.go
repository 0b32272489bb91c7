package daemon_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/continuum-grid/continuum/daemon"
	"github.com/continuum-grid/continuum/ipc/client"
	"github.com/continuum-grid/continuum/kernel"
)

// BenchmarkKernelPing is kernel/ping through a real daemon on its Unix
// socket, N callers on one connection: the path every call takes, metrics
// counting included (docs/BENCHMARKS.md, "Metrics cost").
func BenchmarkKernelPing(b *testing.B) {
	for _, callers := range []int{1, 16} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			dir := b.TempDir()
			sock := filepath.Join(shortDirB(b), "d.sock")
			d, err := daemon.Start(daemon.Config{Kernel: kernel.Config{StateDir: filepath.Join(dir, "state")}, Socket: sock})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Shutdown(context.Background())
			c, err := client.Dial(context.Background(), sock)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := range callers {
				n := b.N / callers
				if w < b.N%callers {
					n++
				}
				wg.Go(func() {
					for range n {
						if _, err := c.Ping(context.Background()); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}

func shortDirB(b *testing.B) string {
	dir, err := os.MkdirTemp("", "ctmb")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
