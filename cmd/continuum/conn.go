package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/api/paths"
	"github.com/continuum-grid/continuum/ipc/client"
)

// dialError is a failure to reach the daemon at all; it says how to start one.
type dialError struct {
	socket string
	err    error
}

func (d *dialError) Error() string {
	hint := "is continuumd running? start it with make run (or bin/continuumd), or point --socket at its socket"
	if errors.Is(d.err, os.ErrPermission) || errors.Is(d.err, syscall.EACCES) ||
		errors.Is(d.err, &api.Error{Code: api.CodePermissionDenied}) || strings.Contains(d.err.Error(), "permission denied") {
		hint = "only the daemon's own user (and root) may connect to its socket"
	}
	msg := d.err.Error()
	if !strings.Contains(msg, d.socket) {
		msg = fmt.Sprintf("cannot reach continuumd at %s: %s", d.socket, msg)
	}
	return msg + "\n" + hint
}

func (d *dialError) Unwrap() error { return d.err }

// socketPath is the socket the CLI dials.
func (e *env) socketPath() string {
	if e.socket == "" {
		return paths.Socket()
	}
	return e.socket
}

// callCtx bounds one call by --timeout (0: no bound).
func (e *env) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if e.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, e.timeout)
}

// dial connects to the daemon; the connection lives until Close, whatever
// ctx does afterwards.
func (e *env) dial(ctx context.Context) (*client.Client, error) {
	path := e.socketPath()
	dctx, cancel := e.callCtx(ctx)
	defer cancel()
	c, err := client.Dial(dctx, path)
	if err != nil {
		return nil, &dialError{socket: path, err: err}
	}
	return c, nil
}

// withClient dials, runs fn with a context bounded by --timeout, and closes
// the connection: the shape of every one-shot subcommand.
func (e *env) withClient(ctx context.Context, fn func(ctx context.Context, c *client.Client) error) error {
	c, err := e.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	cctx, cancel := e.callCtx(ctx)
	defer cancel()
	return fn(cctx, c)
}
