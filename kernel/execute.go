package kernel

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel/commands"
)

// execute runs a command where its scope says (docs/PROTOCOL.md, "Commands").
func (k *Kernel) execute(ctx context.Context, s *session, p api.ExecuteParams) (any, error) {
	if err := api.CheckName("command", p.Command, api.MaxCommandNameLen); err != nil {
		return nil, err
	}
	if p.TimeoutMs < 0 {
		return nil, api.Errorf(api.CodeInvalidArgument, "field \"timeoutMs\" must not be negative")
	}
	cmd := k.cmds.Get(p.Command)
	var route commands.Route
	if cmd == nil {
		// A command this install does not have can still run on a peer,
		// when the caller asks for the grid, or when it names no scope and a
		// peer offers it.
		var target api.Scope
		if p.Scope != nil {
			target = p.Scope.Target
		}
		asked := p.Scope != nil && (target == api.ScopeGrid || p.Scope.PeerID != "" || p.Scope.Capability != "")
		switch {
		case target != "" && target != api.ScopeGrid:
			return nil, api.Errorf(api.CodeUnknownMethod, "no command named %q on this install, and scope.target %q keeps it here", p.Command, target)
		case !asked && !k.offeredOnGrid(p.Command):
			return nil, api.Errorf(api.CodeUnknownMethod, "no command named %q (continuum commands list shows them; method commands/list; scope.target grid runs it on a peer)", p.Command)
		}
		route = commands.RouteGrid
	} else {
		var err error
		if route, err = commands.Decide(cmd.Info.NaturalScope, p.Scope); err != nil {
			return nil, err
		}
	}
	if p.TimeoutMs > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(p.TimeoutMs)*time.Millisecond)
		defer cancel()
	}
	if route == commands.RouteGrid {
		res, err := k.executeGrid(ctx, s, cmd, p)
		if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && p.TimeoutMs > 0 && api.CodeOf(err) != api.CodeDeadlineExceeded {
			return nil, api.Errorf(api.CodeDeadlineExceeded, "command %q did not finish on the grid within %d ms", p.Command, p.TimeoutMs)
		}
		return res, err
	}
	var err error
	var res any
	if cmd.Handler != nil {
		res, err = cmd.Handler(ctx, s, api.ValueParams{V: p.Params})
	} else {
		res, err = k.invoke(ctx, s, cmd.Owner, p.Command, p.Params)
	}
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && p.TimeoutMs > 0 {
		return nil, api.Errorf(api.CodeDeadlineExceeded, "command %q did not finish within %d ms", p.Command, p.TimeoutMs)
	}
	return res, err
}

// invoke relays a call to the client that provides the command and waits for
// its answer, its disconnection, or the caller's deadline or cancellation
// (which it passes on as commands/cancel).
func (k *Kernel) invoke(ctx context.Context, caller *session, owner *session, command string, params any) (any, error) {
	inv := "i" + strconv.FormatUint(k.nextID.Add(1), 36)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if !owner.addInvocation(inv, cancel) {
		return nil, api.Errorf(api.CodeUnavailable, "the provider of %q has disconnected", command)
	}
	defer owner.removeInvocation(inv)
	hp := &api.HandleParams{Invocation: inv, Command: command, Params: params, Caller: caller.id}
	if dl, ok := ctx.Deadline(); ok {
		hp.DeadlineMs = dl.UnixMilli()
	}
	res, err := owner.peer.Call(ctx, api.MethodHandle, hp)
	if err != nil {
		if errors.Is(context.Cause(ctx), errProviderGone) {
			return nil, api.Errorf(api.CodeUnavailable, "the provider of %q (%s) disconnected during the call", command, owner.id)
		}
		if ctx.Err() != nil {
			// The caller gave up: tell the provider so it can stop working.
			go owner.peer.Notify(api.MethodCancel, &api.CancelNotification{Invocation: inv})
			return nil, api.AsError(ctx.Err())
		}
		return nil, err
	}
	return paramsValue(res), nil
}

func (k *Kernel) register(_ context.Context, s *session, p api.RegisterParams) (any, error) {
	scope := p.NaturalScope
	switch scope {
	case "":
		scope = api.ScopeEnvironment
	case api.ScopeEnvironment, api.ScopeGrid:
	case api.ScopeLocal:
		return nil, api.Errorf(api.CodeInvalidArgument, "naturalScope local is for kernel commands; a client provides environment or grid commands")
	default:
		return nil, api.Errorf(api.CodeInvalidArgument, "naturalScope %q is not environment or grid", scope)
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, api.Errorf(api.CodeUnavailable, "connection closed")
	}
	if p.Capability != "" || p.Terms != nil {
		if scope != api.ScopeGrid {
			return nil, api.Errorf(api.CodeInvalidArgument, "capability and terms are for grid commands; %q is %s", p.Name, scope)
		}
		if err := api.CheckName("capability", p.Capability, api.MaxCommandNameLen); p.Capability != "" && err != nil {
			return nil, err
		}
		if t := p.Terms; t != nil && (t.Price < 0 || t.EstLatencyMs < 0 || t.MaxConcurrent < 0 || len(t.Currency) > 16) {
			return nil, api.Errorf(api.CodeInvalidArgument, "field \"terms\": price, estLatencyMs and maxConcurrent must not be negative, currency at most 16 bytes")
		}
	}
	capability := p.Capability
	if scope == api.ScopeGrid && capability == "" {
		capability = p.Name
	}
	err := k.cmds.Add(&commands.Command[*session]{
		Info:  api.CommandInfo{Name: p.Name, NaturalScope: scope, Description: p.Description, Idempotent: p.Idempotent, Provider: s.id, Capability: capability, Terms: p.Terms},
		Owner: s,
	})
	if err != nil {
		return nil, err
	}
	// A close that raced the registration must not leave the command behind.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		k.cmds.Remove(p.Name, s)
		return nil, api.Errorf(api.CodeUnavailable, "connection closed")
	}
	s.mu.Unlock()
	if scope == api.ScopeGrid {
		k.offersChanged()
	}
	return api.Empty{}, nil
}

func (k *Kernel) unregister(_ context.Context, s *session, p api.NameParams) (any, error) {
	if !k.cmds.Remove(p.Name, s) {
		return nil, api.Errorf(api.CodeNotFound, "this client does not provide %q", p.Name)
	}
	k.offersChanged()
	return api.Empty{}, nil
}

// executeGrid hands a grid-routed command to the grid's router. Commands
// whose natural scope is local (kernel) or environment (a local client)
// never leave this machine, whatever the caller asks.
func (k *Kernel) executeGrid(ctx context.Context, s *session, cmd *commands.Command[*session], p api.ExecuteParams) (any, error) {
	req := GridRequest{Command: p.Command, Params: p.Params, ForwardedBy: ForwardedBy(ctx), CallerID: s.id}
	if cmd != nil {
		switch cmd.Info.NaturalScope {
		case api.ScopeLocal:
			return nil, api.Errorf(api.CodePermissionDenied, "%q is a local command: it never leaves the kernel, so it cannot run on the grid", p.Command)
		case api.ScopeEnvironment:
			return nil, api.Errorf(api.CodePermissionDenied, "%q is an environment command: it never leaves this machine, so it cannot run on the grid", p.Command)
		}
		req.Known, req.Idempotent = true, cmd.Info.Idempotent
	}
	sc := api.ScopeParams{}
	if p.Scope != nil {
		sc = *p.Scope
	}
	sc.Target = api.ScopeGrid
	req.Scope = &sc
	r := k.router()
	if r == nil {
		return nil, api.Errorf(api.CodeNoMatchingPeer, "no peer offers %q: this install has no grid", p.Command).
			WithData(map[string]any{"considered": []string{}})
	}
	return r.Dispatch(ctx, req)
}
