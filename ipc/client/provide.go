package client

import (
	"context"
	"runtime/debug"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/vmihailenco/msgpack/v5"
)

// Invocation is one call of a command this client provides.
type Invocation struct {
	ID      string     // the daemon's invocation id (commands/cancel names it)
	Command string     // the command's name
	Caller  string     // id of the client that called it
	Params  api.Params // the caller's params; Decode them into your own type
	// Deadline is when the caller stops waiting; zero when it does not say.
	// The handler's ctx carries it too.
	Deadline time.Time
}

// CommandHandler serves a provided command. Its result goes back to the
// caller; an error goes back as an *api.Error (api.AsError).
type CommandHandler func(ctx context.Context, inv *Invocation) (any, error)

// Provide registers a command with commands/register and serves the daemon's
// commands/handle requests for it with h, each in its own goroutine. The
// handler's context ends at the invocation's deadline, when the daemon sends
// commands/cancel for it, or when the connection closes. The command goes
// away with the connection or Unregister.
func (c *Client) Provide(ctx context.Context, reg api.RegisterParams, h CommandHandler) error {
	c.mu.Lock()
	if _, dup := c.providers[reg.Name]; dup {
		c.mu.Unlock()
		return api.Errorf(api.CodeAlreadyExists, "this client already provides %q", reg.Name)
	}
	// Installed before the daemon knows, so the first commands/handle,
	// which may come right behind the reply, finds it.
	c.providers[reg.Name] = h
	c.mu.Unlock()
	if err := c.t.call(ctx, api.MethodRegister, reg, nil); err != nil {
		c.mu.Lock()
		delete(c.providers, reg.Name)
		c.mu.Unlock()
		return err
	}
	return nil
}

// Unregister stops providing a command.
func (c *Client) Unregister(ctx context.Context, name string) error {
	if err := c.t.call(ctx, api.MethodUnregister, api.NameParams{Name: name}, nil); err != nil {
		return err
	}
	c.mu.Lock()
	delete(c.providers, name)
	c.mu.Unlock()
	return nil
}

// handleRequest serves what the daemon asks of this client: commands/handle.
func (c *Client) handleRequest(ctx context.Context, method string, p api.Params) (any, error) {
	if method != api.MethodHandle {
		return nil, api.Errorf(api.CodeUnknownMethod, "this client serves no method %q", method)
	}
	var hp api.HandleParams
	if err := p.Decode(&hp); err != nil {
		return nil, err
	}
	c.mu.Lock()
	h := c.providers[hp.Command]
	c.mu.Unlock()
	if h == nil {
		return nil, api.Errorf(api.CodeUnknownMethod, "this client does not provide %q", hp.Command)
	}
	inv := &Invocation{ID: hp.Invocation, Command: hp.Command, Caller: hp.Caller, Params: asParams(hp.Params)}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if hp.DeadlineMs > 0 {
		inv.Deadline = time.UnixMilli(hp.DeadlineMs)
		var cancelDeadline context.CancelFunc
		ctx, cancelDeadline = context.WithDeadline(ctx, inv.Deadline)
		defer cancelDeadline()
	}
	if !c.startInvocation(hp.Invocation, cancel) {
		return nil, api.Errorf(api.CodeCancelled, "invocation %s was cancelled", hp.Invocation)
	}
	defer c.endInvocation(hp.Invocation)
	return c.runHandler(ctx, h, inv)
}

func (c *Client) runHandler(ctx context.Context, h CommandHandler, inv *Invocation) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("command handler panicked", "command", inv.Command, "panic", p, "stack", string(debug.Stack()))
			result, err = nil, api.Errorf(api.CodeInternal, "%s: handler panicked: %v", inv.Command, p)
		}
	}()
	result, err = h(ctx, inv)
	if err != nil {
		return nil, api.AsError(err)
	}
	return result, nil
}

// asParams presents the caller's params, raw from the socket or a Go value in
// process, as api.Params.
func asParams(v any) api.Params {
	switch p := v.(type) {
	case nil:
		return api.RawParams(nil)
	case msgpack.RawMessage:
		return api.RawParams(p)
	case api.Params:
		return p
	}
	return api.ValueParams{V: v}
}

// startInvocation records the cancel function of a running invocation. It
// reports false when a commands/cancel for it already came: the cancel
// notification is read in order, but the handle request runs on its own
// goroutine and may start after it.
func (c *Client) startInvocation(id string, cancel context.CancelFunc) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.cancelled {
		if x == id {
			c.cancelled = append(c.cancelled[:i], c.cancelled[i+1:]...)
			return false
		}
	}
	if c.closed {
		return false
	}
	c.invocations[id] = cancel
	return true
}

func (c *Client) endInvocation(id string) {
	c.mu.Lock()
	delete(c.invocations, id)
	c.mu.Unlock()
}

// cancelledMemory bounds the cancels kept for invocations not started yet;
// a cancel for one that already finished is forgotten in time.
const cancelledMemory = 256

func (c *Client) cancelInvocation(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cancel := c.invocations[id]; cancel != nil {
		cancel()
		return
	}
	if len(c.cancelled) == cancelledMemory {
		c.cancelled = c.cancelled[1:]
	}
	c.cancelled = append(c.cancelled, id)
}
