// Command crashtest is the helper of kernel/airc's crash test: it opens the
// log in -dir and appends from -writers goroutines with ids it chooses,
// writing each id to stdout (one write per line, so a line is whole or
// absent) as soon as Append has acknowledged it, until it is killed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel/airc"
	"github.com/continuum-grid/continuum/kernel/identity"
	"github.com/continuum-grid/continuum/kernel/store"
)

func main() {
	dir := flag.String("dir", "", "state dir")
	writers := flag.Int("writers", 16, "concurrent appenders")
	prefix := flag.String("prefix", "r0", "id prefix (unique per run)")
	flag.Parse()
	st, err := store.Open(*dir)
	if err != nil {
		fail(err)
	}
	id, err := identity.LoadOrCreate(*dir)
	if err != nil {
		fail(err)
	}
	l, err := airc.Open(st.DB, id, airc.Options{})
	if err != nil {
		fail(err)
	}
	for w := 0; w < *writers; w++ {
		go func() {
			for i := 0; ; i++ {
				evID := fmt.Sprintf("%s-w%02d-%07d", *prefix, w, i)
				_, _, err := l.Append(context.Background(), api.Event{
					ID: evID, Class: "crash:test", Channel: fmt.Sprintf("ch%d", w%4), Sender: "crashtest",
					Payload: map[string]any{"w": w, "i": i, "pad": "0123456789abcdef0123456789abcdef"},
				})
				if err != nil {
					fail(err)
				}
				os.Stdout.Write([]byte(evID + "\n"))
			}
		}()
	}
	select {}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "crashtest:", err)
	os.Exit(1)
}
