package client

import (
	"context"

	"github.com/continuum-grid/continuum/api"
)

// Typed helpers, one per request method of api.Methods. Each is Call with the
// method's params and result types.

// Info describes the daemon and every method (kernel/info).
func (c *Client) Info(ctx context.Context) (api.InfoResult, error) {
	var r api.InfoResult
	err := c.t.call(ctx, api.MethodKernelInfo, nil, &r)
	return r, err
}

// Ping answers at once with the daemon's clock (kernel/ping).
func (c *Client) Ping(ctx context.Context) (api.PingResult, error) {
	var r api.PingResult
	err := c.t.call(ctx, api.MethodKernelPing, nil, &r)
	return r, err
}

// DeclareClass declares an event class and returns its resolved config
// (events/declare-class).
func (c *Client) DeclareClass(ctx context.Context, cfg api.ClassConfig) (api.ClassConfig, error) {
	var r api.ClassConfig
	err := c.t.call(ctx, api.MethodDeclareClass, cfg, &r)
	return r, err
}

// GetClass returns a class's config, or nil when it is undeclared
// (events/get-class).
func (c *Client) GetClass(ctx context.Context, name string) (*api.ClassConfig, error) {
	var r *api.ClassConfig
	err := c.t.call(ctx, api.MethodGetClass, api.NameParams{Name: name}, &r)
	return r, err
}

// ListClasses lists every declared class, sorted by name (events/list-classes).
func (c *Client) ListClasses(ctx context.Context) ([]api.ClassConfig, error) {
	var r []api.ClassConfig
	err := c.t.call(ctx, api.MethodListClasses, nil, &r)
	return r, err
}

// ResolveChannel returns the channel an event of a broadcast class would go
// to (events/resolve-channel).
func (c *Client) ResolveChannel(ctx context.Context, p api.ResolveChannelParams) (string, error) {
	var r api.ChannelResult
	err := c.t.call(ctx, api.MethodResolveChannel, p, &r)
	return r.Channel, err
}

// Emit emits an event (events/emit). For a broadcast class it returns once
// the event is on disk.
func (c *Client) Emit(ctx context.Context, p api.EmitParams) (api.EmitResult, error) {
	var r api.EmitResult
	err := c.t.call(ctx, api.MethodEmit, p, &r)
	return r, err
}

// Publish emits an event without waiting for the daemon: events/emit sent as
// a MessagePack-RPC notification, so many publishes share each write and the
// daemon's reply never holds the caller (what NATS calls a publish). It
// returns once the notification is queued on the connection, and fails only
// when it cannot be (the connection is gone, or the params cannot be
// encoded). What the daemon thinks of the event (an undeclared class with a
// channel, a schema mismatch, a log that refuses it) is logged by the daemon,
// not returned; the event's id and seq are not known to the caller. The
// daemon serves one connection's notifications in the order they were sent,
// so publishes from one client reach each subscriber in order.
//
// Use it for local events where throughput matters more than confirmation.
// For a broadcast class use Emit, which returns once the event is on disk:
// a published broadcast event is logged too, but the publisher cannot tell
// when, or whether, that happened.
func (c *Client) Publish(p api.EmitParams) error {
	return c.t.notify(api.MethodEmit, p)
}

// Unsubscribe ends a subscription by id (events/unsubscribe); a Subscription
// of this client with that id ends too. Subscription.Close does the same.
func (c *Client) Unsubscribe(ctx context.Context, id string) error {
	c.mu.Lock()
	c.forgetLocked(id)
	c.mu.Unlock()
	return c.t.call(ctx, api.MethodUnsubscribe, api.SubscriptionParams{Subscription: id}, nil)
}

// Ack advances a durable cursor to seq (events/ack).
func (c *Client) Ack(ctx context.Context, durable string, seq uint64) error {
	return c.t.call(ctx, api.MethodAck, api.AckParams{Durable: durable, Seq: seq}, nil)
}

// Replay pages a channel's transcript (events/replay).
func (c *Client) Replay(ctx context.Context, p api.ReplayParams) (api.ReplayResult, error) {
	var r api.ReplayResult
	err := c.t.call(ctx, api.MethodReplay, p, &r)
	return r, err
}

// Execute runs a command where its scope says and decodes its result into
// result, a pointer (nil to ignore it) (commands/execute).
func (c *Client) Execute(ctx context.Context, p api.ExecuteParams, result any) error {
	return c.t.call(ctx, api.MethodExecute, p, result)
}

// ListCommands lists every command and where it runs (commands/list).
func (c *Client) ListCommands(ctx context.Context) ([]api.CommandInfo, error) {
	var r []api.CommandInfo
	err := c.t.call(ctx, api.MethodListCommands, nil, &r)
	return r, err
}
