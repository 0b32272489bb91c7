package inference

import (
	"context"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel"
)

// SchemaVersion is the payload schema of the service's event classes
// (api.TokenEvent, api.LoadProgressEvent). Bump it when a payload changes.
const SchemaVersion = "v1"

// Classes are the event classes the service publishes, declared when it is
// hosted so that `continuum events list` shows them and every event carries
// a schemaVersion. Both are local and not broadcast (docs/PROTOCOL.md, "Event classes"): a token or a
// progress step matters only to callers of this daemon while it happens, so
// neither is logged nor replicated. An event of another schema fails.
var Classes = []api.ClassConfig{
	{
		Name:            api.EventInferenceTokens,
		Channel:         api.ChannelLocal,
		SchemaVersion:   SchemaVersion,
		OnUnknownSchema: api.SchemaFail,
		Description:     "one streamed token of an inference/generate call with stream: true: {requestId, index, token, piece}; a request's indexes run 0, 1, … and its pieces join to the result's text; sender: the calling client",
	},
	{
		Name:            api.EventInferenceLoadProgress,
		Channel:         api.ChannelLocal,
		SchemaVersion:   SchemaVersion,
		OnUnknownSchema: api.SchemaFail,
		Description:     "progress of a model load (inference/load, or inference/generate naming a file not loaded yet): {name, progress}, progress from 0 to 1 in steps of at least 1%, ending with 1; sender: inference",
	},
}

// declareClasses declares Classes through a session of the kernel's own,
// the way a client would: the kernel exposes class declaration only as the
// events/declare-class method, and going through it keeps one path for
// validation and persistence. A failure is logged, not returned: the
// daemon must start even when its state cannot be written (a full disk),
// and the events flow undeclared meanwhile. A class already declared with
// another configuration (from an earlier run's state) is kept: the
// service's events then take that class's schemaVersion.
func (s *Service) declareClasses(k *kernel.Kernel) {
	sess, err := k.Open(noPeer{}, api.Caller{Transport: "inproc", UID: -1, GID: -1, PID: -1})
	if err != nil {
		s.log.Warn("cannot declare the inference event classes", "err", err)
		return
	}
	defer sess.Close()
	for _, c := range Classes {
		if _, err := sess.Handle(context.Background(), api.MethodDeclareClass, api.ValueParams{V: c}); err != nil {
			s.log.Warn("cannot declare an inference event class", "class", c.Name, "err", err)
		}
	}
}

// noPeer is the declaring session's client: it never subscribes or serves
// commands, so nothing is ever sent to it.
type noPeer struct{}

func (noPeer) Notify(string, any) error { return api.Errorf(api.CodeUnavailable, "no client") }

func (noPeer) Call(context.Context, string, any) (api.Params, error) {
	return nil, api.Errorf(api.CodeUnavailable, "no client")
}
