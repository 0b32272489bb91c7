// Command gocalls measures kernel/ping round trips per second through the Go
// client (ipc/client), the baseline the TypeScript and Python clients are
// compared with (scripts/bench-clients.sh).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/client"
)

func main() {
	socket := flag.String("socket", "", "continuumd socket")
	callers := flag.Int("callers", 1, "concurrent callers")
	dur := flag.Duration("duration", 3*time.Second, "how long to measure")
	flag.Parse()
	ctx := context.Background()
	c, err := client.Dial(ctx, *socket)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer c.Close()
	var res api.PingResult
	for i := 0; i < 200; i++ { // warm up
		if err := c.Call(ctx, api.MethodKernelPing, nil, &res); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(*dur)
	start := time.Now()
	for i := 0; i < *callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r api.PingResult
			for time.Now().Before(deadline) {
				if err := c.Call(ctx, api.MethodKernelPing, nil, &r); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	json.NewEncoder(os.Stdout).Encode(map[string]any{"client": "go", "callers": *callers, "calls_per_s": float64(n.Load()) / time.Since(start).Seconds()})
}
