package kernel

import (
	"context"

	"github.com/continuum-grid/continuum/api"
)

// GridRouter carries commands whose route is the grid to a peer install. The
// kernel knows no links (it must not import grid/ or ipc/): the grid service
// implements this and sets it with SetGridRouter.
type GridRouter interface {
	// Dispatch runs req on a peer and returns its result.
	Dispatch(ctx context.Context, req GridRequest) (any, error)
	// OffersChanged is called (on its own goroutine) after a client's grid
	// command was registered or went away, so the manifest can be re-sent.
	OffersChanged()
	// Offered reports whether a live peer offers command: a command this
	// install does not have, called with no scope, then goes to the grid
	// (its natural scope there is grid).
	Offered(command string) bool
}

// GridRequest is one command for the grid.
type GridRequest struct {
	Command string
	Params  any
	Scope   *api.ScopeParams // never nil
	// Known is true when this install has the command too (then Idempotent is
	// its own flag; else the offer's says).
	Known      bool
	Idempotent bool
	// ForwardedBy lists the installs the request has already passed
	// through, this one excluded (loop detection).
	ForwardedBy []string
	// CallerID is the calling client's id; events the remote job sends
	// back are re-emitted here as that client's.
	CallerID string
}

type gridRouterBox struct{ r GridRouter }

// SetGridRouter installs the grid's router; nil takes it away again.
func (k *Kernel) SetGridRouter(r GridRouter) {
	k.gridRouter.Store(&gridRouterBox{r})
}

func (k *Kernel) router() GridRouter {
	if b := k.gridRouter.Load(); b != nil {
		return b.r
	}
	return nil
}

func (k *Kernel) offersChanged() {
	if r := k.router(); r != nil {
		go r.OffersChanged()
	}
}

// GridCommands lists the commands clients registered with natural scope
// grid: the offers of this install's manifest.
func (k *Kernel) GridCommands() []api.CommandInfo {
	var out []api.CommandInfo
	for _, c := range k.cmds.List() {
		if c.NaturalScope == api.ScopeGrid && c.Provider != "kernel" {
			out = append(out, c)
		}
	}
	return out
}

// Command returns the info of the command called name, if this install
// has it.
func (k *Kernel) Command(name string) (api.CommandInfo, bool) {
	if c := k.cmds.Get(name); c != nil {
		return c.Info, true
	}
	return api.CommandInfo{}, false
}

// Provides reports whether this install runs command itself (a kernel
// method or a client's command).
func (k *Kernel) Provides(command string) bool { return k.cmds.Get(command) != nil }

type forwardedKey struct{}

// WithForwardedBy marks ctx as serving a request that came over the grid
// through the installs in by (the grid's inbound side sets it); a grid
// route taken inside it carries them on.
func WithForwardedBy(ctx context.Context, by []string) context.Context {
	return context.WithValue(ctx, forwardedKey{}, by)
}

// ForwardedBy is what WithForwardedBy put in ctx.
func ForwardedBy(ctx context.Context) []string {
	by, _ := ctx.Value(forwardedKey{}).([]string)
	return by
}

func (k *Kernel) offeredOnGrid(command string) bool {
	r := k.router()
	return r != nil && r.Offered(command)
}
