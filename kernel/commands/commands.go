// Package commands is the one command registry (docs/PROTOCOL.md, "Commands"): every built-in
// method of the protocol, every service the kernel hosts, and every command a
// client provides. It promises that a name has one provider at a time, that a
// client's commands go away with its connection, and that routing a call is a
// pure decision (Route) the kernel then carries out.
package commands

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/continuum-grid/continuum/api"
)

// KernelProvider is the Provider of built-in commands in commands/list.
const KernelProvider = "kernel"

// Handler runs a command inside the kernel. caller is the session that asked
// (nil when the kernel calls itself).
type Handler[S any] func(ctx context.Context, caller S, params api.Params) (any, error)

// Command is one registered command. Exactly one of Handler and Owner is set:
// a kernel command has a Handler, a client command has the Owner session that
// answers commands/handle for it.
type Command[S comparable] struct {
	Info    api.CommandInfo
	Spec    *api.MethodSpec // the typed params/result, when known
	Handler Handler[S]
	Owner   S
}

// Registry maps names to commands. S is the kernel's session type, kept
// generic so this package stays free of the kernel.
type Registry[S comparable] struct {
	mu sync.RWMutex
	m  map[string]*Command[S]
}

// NewRegistry returns an empty registry.
func NewRegistry[S comparable]() *Registry[S] {
	return &Registry[S]{m: map[string]*Command[S]{}}
}

// ValidName checks a command name: group/name segments, no blanks or spaces.
func ValidName(name string) error {
	if strings.TrimSpace(name) == "" {
		return api.Errorf(api.CodeInvalidArgument, "command name is blank")
	}
	if err := api.CheckName("name", name, api.MaxCommandNameLen); err != nil {
		return err
	}
	if strings.ContainsAny(name, " \t\r\n") {
		return api.Errorf(api.CodeInvalidArgument, "command name %q has whitespace", name)
	}
	if !strings.Contains(name, "/") || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") {
		return api.Errorf(api.CodeInvalidArgument, "command name %q must look like group/name", name)
	}
	return nil
}

// Add registers c; a taken name is already_exists.
func (r *Registry[S]) Add(c *Command[S]) error {
	if err := ValidName(c.Info.Name); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.m[c.Info.Name]; ok {
		return api.Errorf(api.CodeAlreadyExists, "command %q is already provided by %s", c.Info.Name, old.Info.Provider)
	}
	r.m[c.Info.Name] = c
	return nil
}

// Remove drops name if owner provides it; it reports whether it did.
func (r *Registry[S]) Remove(name string, owner S) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.m[name]; ok && c.Handler == nil && c.Owner == owner {
		delete(r.m, name)
		return true
	}
	return false
}

// RemoveOwner drops every command owner provides.
func (r *Registry[S]) RemoveOwner(owner S) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, c := range r.m {
		if c.Handler == nil && c.Owner == owner {
			delete(r.m, name)
		}
	}
}

// Get returns the command called name, or nil.
func (r *Registry[S]) Get(name string) *Command[S] {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.m[name]
}

// List returns every command's info, sorted by name.
func (r *Registry[S]) List() []api.CommandInfo {
	r.mu.RLock()
	out := make([]api.CommandInfo, 0, len(r.m))
	for _, c := range r.m {
		out = append(out, c.Info)
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b api.CommandInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Route is where a call goes.
type Route int

// Routes.
const (
	RouteHere Route = iota // run it on this install (kernel or a local client)
	RouteGrid              // send it to a peer install
)

// Decide picks the route for a command given the caller's scope: an explicit
// scope.target wins, else the command's natural scope. A command this install
// provides runs here unless the caller explicitly asked for the grid; a grid
// target needs a peer.
func Decide(natural api.Scope, scope *api.ScopeParams) (Route, error) {
	target := natural
	explicit := false
	if scope != nil && scope.Target != "" {
		target, explicit = scope.Target, true
	}
	switch target {
	case api.ScopeLocal, api.ScopeEnvironment:
		return RouteHere, nil
	case api.ScopeGrid:
		if explicit || (scope != nil && (scope.PeerID != "" || scope.Capability != "")) {
			return RouteGrid, nil
		}
		return RouteHere, nil
	}
	return 0, api.Errorf(api.CodeInvalidArgument, "scope.target %q is not local, environment or grid", target)
}
