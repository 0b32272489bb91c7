package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/client"
)

// streamTable prints rows as they come, in columns that line up: each
// column is at least as wide as its header and its minimum, and widens (for
// the rows after) when a cell is longer. The last column is never padded.
// A table of a finished list is text/tabwriter's job; a stream cannot wait
// for its longest row.
type streamTable struct {
	w      io.Writer
	widths []int
}

// newStreamTable prints the header at once, so the columns are named before
// the first event arrives.
func newStreamTable(w io.Writer, header []string, minWidths []int) (*streamTable, error) {
	t := &streamTable{w: w, widths: make([]int, len(header))}
	for i, h := range header {
		t.widths[i] = len(h)
		if i < len(minWidths) && minWidths[i] > t.widths[i] {
			t.widths[i] = minWidths[i]
		}
	}
	return t, t.row(header)
}

func (t *streamTable) row(cells []string) error {
	var b strings.Builder
	for i, c := range cells {
		c = oneLine(c)
		if i == len(cells)-1 || i >= len(t.widths) {
			b.WriteString(c)
			break
		}
		if n := len([]rune(c)); n > t.widths[i] {
			t.widths[i] = n
		}
		b.WriteString(c)
		b.WriteString(strings.Repeat(" ", t.widths[i]-len([]rune(c))+2))
	}
	b.WriteByte('\n')
	_, err := io.WriteString(t.w, b.String())
	return err
}

// follower keeps one subscription going for a tail command, across daemon
// restarts: when the connection goes, it says so on stderr, dials again
// with a growing pause until the daemon is back (or Ctrl-C), and subscribes
// again through subscribe, which is told it resumes so that it can pick up
// where the last event printed left off.
type follower struct {
	e *env
	// reconnect is false with --no-reconnect: a lost connection ends the
	// command with unavailable, as scripts may want.
	reconnect bool
	// subscribe opens the subscription on c; resumed is false the first
	// time.
	subscribe func(ctx context.Context, c *client.Client, resumed bool) (*client.Subscription, error)
	// handle prints one event; an error ends the command.
	handle func(ctx context.Context, c *client.Client, sub *client.Subscription, ev api.Event) error
}

// backoff bounds the pause between two dials while the daemon is away.
var backoff = struct{ first, max time.Duration }{100 * time.Millisecond, 2 * time.Second}

func (f *follower) run(ctx context.Context) error {
	c, err := f.e.dial(ctx)
	if err != nil {
		return err
	}
	resumed := false
	for {
		err := f.session(ctx, c, resumed)
		c.Close()
		switch {
		case ctx.Err() != nil:
			return nil // interrupted: the normal way to stop
		case !errors.Is(err, &api.Error{Code: api.CodeUnavailable}):
			return err
		case !f.reconnect:
			return api.Errorf(api.CodeUnavailable, "lost the connection to continuumd (%v)", err)
		}
		fmt.Fprintf(f.e.stderr, "lost the connection to continuumd at %s; reconnecting until it is back (Ctrl-C to stop)\n", f.e.socketPath())
		if c = f.redial(ctx); c == nil {
			return nil
		}
		fmt.Fprintln(f.e.stderr, "reconnected")
		resumed = true
	}
}

// session subscribes on c and handles events until the subscription ends.
func (f *follower) session(ctx context.Context, c *client.Client, resumed bool) error {
	sub, err := f.subscribe(ctx, c, resumed)
	if err != nil {
		return err
	}
	for {
		ev, err := sub.Next(ctx)
		if err != nil {
			return err
		}
		if err := f.handle(ctx, c, sub, *ev); err != nil {
			return err
		}
	}
}

// redial dials until it connects or ctx ends (nil).
func (f *follower) redial(ctx context.Context) *client.Client {
	pause := backoff.first
	for {
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := client.Dial(dctx, f.e.socketPath())
		cancel()
		if err == nil {
			return c
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
		pause = min(pause*2, backoff.max)
	}
}
