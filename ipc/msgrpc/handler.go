package msgrpc

import (
	"context"

	"github.com/continuum-grid/continuum/api"
)

// Handler serves what the peer sends on a Conn.
type Handler interface {
	// HandleRequest serves one request, in its own goroutine. ctx ends when
	// the connection closes or the peer cancels the request (CancelMethod). The result may be any value msgpack encodes;
	// msgpack.RawMessage and api.RawParams are written verbatim. The error
	// becomes the response's error map through api.AsError.
	HandleRequest(ctx context.Context, method string, params api.RawParams) (any, error)
	// HandleNotification is called on the connection's reader goroutine, in
	// the order notifications arrived, so it must not block: hand slow work
	// to another goroutine.
	HandleNotification(ctx context.Context, method string, params api.RawParams)
}

// InlineHandler is a Handler that names methods cheap enough to serve on the
// connection's reader goroutine. Such a request runs at once where it was
// read, and its response is written by that goroutine too when the socket
// takes it without waiting: no hand-off to a worker and back, which is most of
// a small round trip's cost. While an inline method runs, the connection reads
// nothing else, so a method named here must be quick and must never block: no
// I/O, no call to a peer, no lock that is held across either. Requests for
// other methods still run in goroutines of their own, so a slow one never
// holds up an inline one behind it.
type InlineHandler interface {
	Handler
	// InlineMethod reports whether requests for method may be served inline.
	// It is called once per request, on the reader goroutine, and must not
	// block either.
	InlineMethod(method string) bool
}

// AsyncHandler is a Handler that can take some requests on the reader and
// answer them later, from whatever goroutine learns the answer, with no
// goroutine waiting meanwhile: the daemon relaying a call to the client that
// provides it, whose answer arrives on that client's connection. A request so
// taken saves the hand-off to a worker goroutine and the hand-off back from
// the goroutine that learns the answer.
//
// A taken request counts as in flight, like any other, until reply is called,
// and holds one of the connection's MaxInFlight places meanwhile, so a peer
// cannot pile up more of them than of requests served by goroutines.
type AsyncHandler interface {
	Handler
	// AsyncMethod reports whether StartRequest may take requests for
	// method. It is called once per request not served inline, on the
	// reader, and must be quick and never block.
	AsyncMethod(method string) bool
	// StartRequest is called on the reader for a request AsyncMethod named.
	// It must not block. With ok false it took nothing and the request is
	// served by HandleRequest in a goroutine, as any other. With ok true it
	// must see that reply is called exactly once, from any goroutine and
	// possibly before StartRequest returns; reply never blocks. cancel, when
	// not nil, is called (at most once, on any goroutine) when the peer
	// cancels the request (CancelMethod) or the connection closes before
	// reply was called; it should make reply come soon.
	StartRequest(method string, params api.RawParams, reply func(result any, err error)) (cancel func(), ok bool)
}

// LendingHandler is a Handler that reads the params of some notifications
// only while HandleNotification runs and keeps nothing of them (it copies
// what it keeps). For those the reader passes the bytes straight from its
// read buffer, which the next message reuses, instead of the copy it makes
// of every other message's params: on a subscriber's connection that copy is
// one allocation the size of each event.
type LendingHandler interface {
	Handler
	// LendParams reports whether method's params may be lent. It is called
	// once per notification, on the reader goroutine, and must not block.
	LendParams(method string) bool
}

// HandlerFuncs adapts functions to Handler (and LendingHandler); a nil
// Request answers requests with unknown_method, a nil Notification ignores
// notifications, and a nil Lend lends none.
type HandlerFuncs struct {
	Request      func(ctx context.Context, method string, params api.RawParams) (any, error)
	Notification func(ctx context.Context, method string, params api.RawParams)
	Lend         func(method string) bool
}

// LendParams implements LendingHandler.
func (h HandlerFuncs) LendParams(method string) bool { return h.Lend != nil && h.Lend(method) }

// HandleRequest implements Handler.
func (h HandlerFuncs) HandleRequest(ctx context.Context, method string, params api.RawParams) (any, error) {
	if h.Request == nil {
		return nil, api.Errorf(api.CodeUnknownMethod, "%s: no such method", method)
	}
	return h.Request(ctx, method, params)
}

// HandleNotification implements Handler.
func (h HandlerFuncs) HandleNotification(ctx context.Context, method string, params api.RawParams) {
	if h.Notification != nil {
		h.Notification(ctx, method, params)
	}
}
