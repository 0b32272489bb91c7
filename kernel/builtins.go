package kernel

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel/bus"
	"github.com/continuum-grid/continuum/kernel/classes"
	"github.com/continuum-grid/continuum/kernel/commands"
	"github.com/continuum-grid/continuum/kernel/identity"
	"github.com/vmihailenco/msgpack/v5"
)

// Typed adapts a function of decoded params to a Service: params decode into
// P (absent params leave it zero), and a field that does not fit is
// invalid_argument naming it, exactly as for the kernel's own methods.
// Services hosted beside the kernel (inference, the grid) write their
// methods this way.
func Typed[P any](fn func(ctx context.Context, call *Call, p P) (any, error)) Service {
	return func(ctx context.Context, call *Call, params api.Params) (any, error) {
		p, err := decodeParams[P](params)
		if err != nil {
			return nil, err
		}
		return fn(ctx, call, p)
	}
}

// typed is Typed for the built-ins, which see the session itself.
func typed[P any](fn func(ctx context.Context, s *session, p P) (any, error)) commands.Handler[*session] {
	return func(ctx context.Context, s *session, params api.Params) (any, error) {
		p, err := decodeParams[P](params)
		if err != nil {
			return nil, err
		}
		return fn(ctx, s, p)
	}
}

// decodeParams decodes params into a P; the params decoder already reports
// bad fields as invalid_argument, and anything else it fails on is the
// caller's input too.
func decodeParams[P any](params api.Params) (P, error) {
	var p P
	if params == nil {
		return p, nil
	}
	if err := params.Decode(&p); err != nil {
		if api.CodeOf(err) == api.CodeInternal {
			return p, api.Errorf(api.CodeInvalidArgument, "params: %v", err)
		}
		return p, err
	}
	return p, nil
}

// builtins maps each request method of the protocol to its handler.
func (k *Kernel) builtins() map[string]commands.Handler[*session] {
	return map[string]commands.Handler[*session]{
		api.MethodKernelInfo: typed(k.info),
		api.MethodKernelPing: typed(func(context.Context, *session, api.Empty) (any, error) {
			return api.PingResult{TS: time.Now().UnixMilli()}, nil
		}),
		api.MethodDeclareClass:   typed(func(_ context.Context, _ *session, c api.ClassConfig) (any, error) { return k.classes.Declare(c) }),
		api.MethodGetClass:       typed(k.getClass),
		api.MethodListClasses:    typed(func(context.Context, *session, api.Empty) (any, error) { return k.classes.List(), nil }),
		api.MethodResolveChannel: typed(k.resolveChannel),
		api.MethodEmit:           typed(k.emit),
		api.MethodSubscribe:      typed(k.subscribe),
		api.MethodUnsubscribe:    typed(k.unsubscribe),
		api.MethodAck:            typed(k.ack),
		api.MethodReplay:         typed(k.replay),
		api.MethodLogStats:       typed(k.logStats),
		api.MethodKernelMetrics:  typed(func(context.Context, *session, api.Empty) (any, error) { return k.Metrics(), nil }),
		api.MethodExecute:        typed(k.execute),
		api.MethodRegister:       typed(k.register),
		api.MethodUnregister:     typed(k.unregister),
		api.MethodListCommands:   typed(func(context.Context, *session, api.Empty) (any, error) { return k.cmds.List(), nil }),
	}
}

func (k *Kernel) registerBuiltins() error {
	handlers := k.builtins()
	for i := range api.Methods {
		spec := &api.Methods[i]
		if spec.Kind != api.KindRequest {
			continue
		}
		h, ok := handlers[spec.Name]
		if !ok {
			continue // a hosted service's method (inference/*): Host registers it
		}
		if err := k.cmds.Add(&commands.Command[*session]{
			Info:    api.CommandInfo{Name: spec.Name, NaturalScope: spec.NaturalScope, Description: spec.Description, Provider: commands.KernelProvider},
			Spec:    spec,
			Handler: h,
		}); err != nil {
			return err
		}
	}
	return nil
}

// Service is the handler of a method hosted in the kernel beyond the protocol's
// own (inference, personas): it gets the calling client's id and params.
type Service func(ctx context.Context, call *Call, params api.Params) (any, error)

// Call is what a Service knows about its caller.
type Call struct {
	ClientID string
	s        *session
}

// Notify sends a notification to the calling client only (for example
// streamed tokens); it fails once the client has gone.
func (c *Call) Notify(method string, params any) error {
	if c.s == nil {
		return api.Errorf(api.CodeUnavailable, "no client to notify")
	}
	return c.s.peer.Notify(method, params)
}

// Host registers a service method; it appears in kernel/info and
// commands/list like the built-ins. Call it before serving clients, so that
// no client sees the method missing; it is safe while they are served.
func (k *Kernel) Host(spec api.MethodSpec, fn Service) error {
	if spec.Kind == "" {
		spec.Kind = api.KindRequest
	}
	if spec.NaturalScope == "" {
		spec.NaturalScope = api.ScopeLocal
	}
	if known, ok := api.Lookup(spec.Name); ok && spec.Params == nil {
		spec = known
	}
	stored := spec
	err := k.cmds.Add(&commands.Command[*session]{
		Info: api.CommandInfo{Name: spec.Name, NaturalScope: spec.NaturalScope, Description: spec.Description, Provider: commands.KernelProvider},
		Spec: &stored,
		Handler: func(ctx context.Context, s *session, p api.Params) (any, error) {
			return fn(ctx, &Call{ClientID: s.id, s: s}, p)
		},
	})
	if err != nil {
		return err
	}
	if _, ok := api.Lookup(spec.Name); !ok {
		k.svcMu.Lock()
		k.services = append(k.services, stored)
		k.svcMu.Unlock()
	}
	return nil
}

func (k *Kernel) info(context.Context, *session, api.Empty) (any, error) {
	k.svcMu.Lock()
	services := slices.Clone(k.services)
	k.svcMu.Unlock()
	methods := make([]api.MethodInfo, 0, len(api.Methods)+len(services))
	for _, m := range api.Methods {
		methods = append(methods, m.Info())
	}
	for _, m := range services {
		methods = append(methods, m.Info())
	}
	return api.InfoResult{Version: Version, Protocol: api.Protocol, PeerID: k.PeerID(), QUICAddrs: k.quicAddrList(), WebSocket: k.webSocket.Load(), Methods: methods}, nil
}

func (k *Kernel) getClass(_ context.Context, _ *session, p api.NameParams) (any, error) {
	if strings.TrimSpace(p.Name) == "" {
		return nil, api.Errorf(api.CodeInvalidArgument, "field \"name\" is blank")
	}
	if err := api.CheckName("name", p.Name, api.MaxClassNameLen); err != nil {
		return nil, err
	}
	return k.classes.Get(p.Name), nil
}

func (k *Kernel) resolveChannel(_ context.Context, _ *session, p api.ResolveChannelParams) (any, error) {
	if err := checkNames(nameField{"name", p.Name, api.MaxClassNameLen, false}, nameField{"channel", p.Channel, api.MaxChannelLen, true}); err != nil {
		return nil, err
	}
	c := k.classes.Get(p.Name)
	var payload map[string]any
	if c != nil && (c.Channel == api.ChannelByRoomID || c.Channel == api.ChannelByPeerID) {
		payload = api.AsMap(p.Payload)
	}
	ch, err := classes.Resolve(c, p.Name, payload, p.Channel)
	if err != nil {
		return nil, err
	}
	return api.ChannelResult{Channel: ch}, nil
}

// emit delivers an event: checks it against its class, resolves the channel
// of a broadcast class, and offers it to every matching subscriber.
func (k *Kernel) emit(ctx context.Context, s *session, p api.EmitParams) (any, error) {
	return k.Emit(ctx, s.id, p)
}

// Emit emits an event as sender; hosted services use it to publish their own
// events (for example streamed tokens).
func (k *Kernel) Emit(ctx context.Context, sender string, p api.EmitParams) (api.EmitResult, error) {
	return k.emitAs(ctx, sender, nil, p)
}

// EmitAs emits an event as an identity of its own (a persona): its sender is
// signer's peer id and, for a broadcast class, the log signs it with
// signer's key as its origin (airc.Log.AppendAs), so every peer verifies
// it as signer's. A local class is delivered with that sender. A repeated
// id answers the stored event, as for Emit, deduplicated by (signer, id).
func (k *Kernel) EmitAs(ctx context.Context, signer *identity.Identity, p api.EmitParams) (api.EmitResult, error) {
	if signer == nil {
		return api.EmitResult{}, api.Errorf(api.CodeInternal, "EmitAs without a signer")
	}
	return k.emitAs(ctx, signer.PeerID(), signer, p)
}

// emitAs is Emit and EmitAs; a nil signer is this install's own key.
func (k *Kernel) emitAs(ctx context.Context, sender string, signer *identity.Identity, p api.EmitParams) (api.EmitResult, error) {
	name := strings.TrimSpace(p.Name)
	if name == "" {
		return api.EmitResult{}, api.Errorf(api.CodeInvalidArgument, "field \"name\" is blank")
	}
	if err := checkNames(
		nameField{"name", name, api.MaxClassNameLen, false},
		nameField{"id", p.ID, api.MaxEventIDLen, true},
		nameField{"channel", p.Channel, api.MaxChannelLen, true},
	); err != nil {
		return api.EmitResult{}, err
	}
	if len(p.SchemaVersion) > api.MaxSchemaVersionLen {
		return api.EmitResult{}, api.Errorf(api.CodeInvalidArgument, "field \"schemaVersion\" is %d bytes long, over the limit of %d bytes", len(p.SchemaVersion), api.MaxSchemaVersionLen)
	}
	ev := &api.Event{
		ID:            p.ID,
		Class:         name,
		Sender:        sender,
		TS:            time.Now().UnixMilli(),
		SchemaVersion: p.SchemaVersion,
		Headers:       p.Headers,
		Payload:       p.Payload,
	}
	class := k.classes.Get(name)
	if class == nil && p.Strict {
		return api.EmitResult{}, api.Errorf(api.CodeUndeclaredClass, "class %q is not declared, and the emit is strict; declare it first (continuum events declare %s --schema-version v1; method events/declare-class), or check the name against continuum events list", name, name)
	}
	if class == nil || !class.Broadcast || class.Channel != api.ChannelCustom {
		if p.Channel != "" {
			return api.EmitResult{}, api.Errorf(api.CodeInvalidArgument, "channel may be passed only for a broadcast class with channel: custom, and %q is not one", name)
		}
	}
	if class != nil {
		if ev.SchemaVersion == "" {
			ev.SchemaVersion = class.SchemaVersion
		} else if ev.SchemaVersion != class.SchemaVersion {
			if class.OnUnknownSchema == api.SchemaFail {
				return api.EmitResult{}, api.Errorf(api.CodeSchemaMismatch, "class %q is at schemaVersion %q, the event says %q (the class fails unknown schemas)", name, class.SchemaVersion, ev.SchemaVersion)
			}
			headers := make(map[string]string, len(p.Headers)+1)
			for h, v := range p.Headers {
				headers[h] = v
			}
			headers[api.HeaderSchemaWarning] = class.SchemaVersion
			ev.Headers = headers
			k.log.Warn("event schemaVersion differs from its class", "class", name, "class_version", class.SchemaVersion, "event_version", ev.SchemaVersion, "sender", sender)
		}
		if class.Broadcast {
			var payload map[string]any
			if class.Channel == api.ChannelByRoomID || class.Channel == api.ChannelByPeerID {
				payload = api.AsMap(p.Payload)
			}
			ch, err := classes.Resolve(class, name, payload, p.Channel)
			if err != nil {
				return api.EmitResult{}, err
			}
			ev.Channel = ch
			// Logged first; live subscribers get it from the commit hook, in
			// seq order, once it is on disk.
			stored, _, err := k.alog.AppendAs(ctx, *ev, signer)
			if err != nil {
				return api.EmitResult{}, err
			}
			return api.EmitResult{ID: stored.ID, Channel: stored.Channel, Lamport: stored.Lamport, Seq: stored.Seq, Declared: true}, nil
		}
	}
	if ev.ID == "" {
		ev.ID = k.newEventID()
	}
	k.bus.PublishWait(ctx, ev, k.stall())
	return api.EmitResult{ID: ev.ID, Channel: ev.Channel, Lamport: ev.Lamport, Seq: ev.Seq, Declared: class != nil}, nil
}

// stall is the bound of an emit's wait for subscribers (Config.SubscriberStall).
func (k *Kernel) stall() time.Duration {
	switch d := k.cfg.SubscriberStall; {
	case d == 0:
		return bus.DefaultStall
	case d < 0:
		return 0
	default:
		return d
	}
}

func (k *Kernel) subscribe(_ context.Context, s *session, p api.SubscribeParams) (any, error) {
	if err := checkNames(nameField{"channel", p.Channel, api.MaxChannelLen, true}, nameField{"durable", p.Durable, api.MaxDurableLen, true}); err != nil {
		return nil, err
	}
	pat, err := bus.ParsePattern(p.Pattern)
	if err != nil {
		return nil, err
	}
	id := "s" + strconv.FormatUint(k.nextID.Add(1), 36)
	sink := &subscriptionSink{peer: s.peer, id: id, log: k.log, metrics: k.metrics}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, api.Errorf(api.CodeUnavailable, "connection closed")
	}
	if p.From.IsZero() && p.Durable == "" {
		s.subs[id] = k.bus.Subscribe(pat, p.Channel, k.cfg.SubscriberQueue, sink)
		return api.SubscribeResult{Subscription: id, Cursor: k.alog.Head()}, nil
	}
	after, err := k.logStart(p)
	if err != nil {
		return nil, err
	}
	s.subs[id] = k.startLogSubscription(pat, p.Channel, after, sink)
	return api.SubscribeResult{Subscription: id, Cursor: after}, nil
}

func (k *Kernel) unsubscribe(_ context.Context, s *session, p api.SubscriptionParams) (any, error) {
	s.mu.Lock()
	sub, ok := s.subs[p.Subscription]
	delete(s.subs, p.Subscription)
	s.mu.Unlock()
	if !ok {
		return nil, api.Errorf(api.CodeNotFound, "no subscription %q on this connection", p.Subscription)
	}
	sub.Close()
	return api.Empty{}, nil
}

// paramsValue turns transport params into a value that can be forwarded:
// raw bytes stay raw (encoded verbatim to a socket provider).
func paramsValue(p api.Params) any {
	switch v := p.(type) {
	case nil:
		return nil
	case api.RawParams:
		if len(v) == 0 {
			return nil
		}
		return msgpack.RawMessage(v)
	case api.ValueParams:
		return v.V
	}
	return p
}

// nameField is one client-chosen name of a request, for checkNames.
type nameField struct {
	field    string
	value    string
	max      int
	optional bool // "" means not given
}

// checkNames applies api.CheckName to each name given: the one set of limits
// (api/names.go), checked at the door.
func checkNames(names ...nameField) error {
	for _, n := range names {
		if n.optional && n.value == "" {
			continue
		}
		if err := api.CheckName(n.field, n.value, n.max); err != nil {
			return err
		}
	}
	return nil
}
