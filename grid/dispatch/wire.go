package dispatch

import (
	"github.com/continuum-grid/continuum/api"
	"github.com/vmihailenco/msgpack/v5"
)

// Methods of the cmd protocol.
const (
	methodRun   = "cmd/run"   // request: run a command here; answers runResult
	methodEvent = "cmd/event" // notification: an event of a job, for its caller
)

// runRequest asks the peer to run a command.
type runRequest struct {
	Job         string   `msgpack:"job" api:"required"`
	Command     string   `msgpack:"command" api:"required"`
	Params      any      `msgpack:"params"`
	Capability  string   `msgpack:"capability,omitempty"`
	DeadlineMs  int64    `msgpack:"deadlineMs,omitempty"`
	ForwardedBy []string `msgpack:"forwardedBy"`
}

// runResult answers it: the command's result and how many cmd/event
// notifications the job sent before it (the caller waits for them, so the
// stream is complete when the result arrives).
type runResult struct {
	Result any `msgpack:"result"`
	Events int `msgpack:"events"`
}

// eventNote is one event a job emitted for its caller.
type eventNote struct {
	Job           string             `msgpack:"job" api:"required"`
	Name          string             `msgpack:"name" api:"required"`
	SchemaVersion string             `msgpack:"schemaVersion,omitempty"`
	Payload       msgpack.RawMessage `msgpack:"payload"`
}

// forward is what goes back to the caller of one command: the events of
// class, and how many of them the call's params and result say were emitted
// (so the job waits for exactly those to be sent; false: wait until the
// stream is quiet).
type forward struct {
	class string
	count func(params, result any) (int, bool)
}

// forwardEvents names, per command, the events its jobs send back to the
// caller: the inference token stream, one event per generated token.
var forwardEvents = map[string]forward{
	api.MethodInferenceGenerate: {class: api.EventInferenceTokens, count: func(params, result any) (int, bool) {
		var p api.GenerateParams
		if api.Assign(&p, params) != nil {
			return 0, false
		}
		if !p.Stream {
			return 0, true // no token events without stream
		}
		var r api.GenerateResult
		if api.Assign(&r, result) != nil {
			return 0, false
		}
		return len(r.Tokens), true
	}},
}
