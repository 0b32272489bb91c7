package api

import (
	"fmt"
	"reflect"
	"strconv"

	"github.com/vmihailenco/msgpack/v5"
)

// Protocol is the wire protocol version kernel/info reports. It changes only
// when a message shape changes incompatibly.
const Protocol = 1

// Scope says where a command runs (docs/PROTOCOL.md, "Commands").
type Scope string

// Natural scopes.
const (
	ScopeLocal       Scope = "local"       // in the kernel
	ScopeEnvironment Scope = "environment" // in the local client that registered it
	ScopeGrid        Scope = "grid"        // on a peer install chosen by capability
)

// Empty is the params or result of a method that takes or returns nothing.
type Empty struct{}

// PingResult answers kernel/ping.
type PingResult struct {
	TS int64 `msgpack:"ts" json:"ts" desc:"daemon clock, unix milliseconds"`
}

// InfoResult answers kernel/info: the machine-readable API.
type InfoResult struct {
	Version   string         `msgpack:"version" json:"version" desc:"daemon version"`
	Protocol  int            `msgpack:"protocol" json:"protocol" desc:"wire protocol version"`
	PeerID    string         `msgpack:"peerId" json:"peerId" desc:"this install's peer id"`
	QUICAddrs []string       `msgpack:"quicAddrs,omitempty" json:"quicAddrs,omitempty" desc:"where the grid accepts QUIC links (absent without --listen-quic)"`
	WebSocket *WebSocketInfo `msgpack:"webSocket,omitempty" json:"webSocket,omitempty" desc:"the loopback WebSocket listener (absent without --listen-ws)"`
	Methods   []MethodInfo   `msgpack:"methods" json:"methods" desc:"every method, with params and result described"`
}

// WebSocketInfo tells a local client where the WebSocket listener is, so
// that continuum dashboard can print the page's URL. It names the token file,
// never the token: reading that file is what proves a client may connect.
type WebSocketInfo struct {
	Addr      string `msgpack:"addr" json:"addr" desc:"host:port it accepts on (loopback)"`
	TokenFile string `msgpack:"tokenFile" json:"tokenFile" desc:"the file that holds its token"`
	Dashboard string `msgpack:"dashboard,omitempty" json:"dashboard,omitempty" desc:"path of the dashboard page on it (/dashboard/); absent when not served"`
}

// MethodInfo describes one method for kernel/info and the generator.
type MethodInfo struct {
	Name         string  `msgpack:"name" json:"name" desc:"group/name-with-dashes"`
	NaturalScope Scope   `msgpack:"naturalScope" json:"naturalScope" desc:"local|environment|grid"`
	Description  string  `msgpack:"description" json:"description" desc:"what it does"`
	Kind         string  `msgpack:"kind" json:"kind" desc:"request (client to kernel), notification (kernel to client), or callback (kernel requests the client)"`
	Params       *Schema `msgpack:"params" json:"params" desc:"the params map"`
	Result       *Schema `msgpack:"result" json:"result" desc:"the result; nil for notifications"`
}

// Method kinds.
const (
	KindRequest      = "request"
	KindNotification = "notification"
	KindCallback     = "callback"
)

// NameParams names one thing.
type NameParams struct {
	Name string `msgpack:"name" json:"name" api:"required" desc:"the name"`
}

// ResolveChannelParams are the params of events/resolve-channel.
type ResolveChannelParams struct {
	Name    string `msgpack:"name" json:"name" api:"required" desc:"class name"`
	Payload any    `msgpack:"payload" json:"payload" desc:"the payload the channel is resolved from"`
	Channel string `msgpack:"channel,omitempty" json:"channel,omitempty" desc:"explicit channel, for custom classes"`
}

// ChannelResult answers events/resolve-channel.
type ChannelResult struct {
	Channel string `msgpack:"channel" json:"channel" desc:"the resolved channel"`
}

// EmitParams are the params of events/emit.
type EmitParams struct {
	Name          string            `msgpack:"name" json:"name" api:"required" desc:"class name"`
	Payload       any               `msgpack:"payload" json:"payload" desc:"the event's data"`
	SchemaVersion string            `msgpack:"schemaVersion,omitempty" json:"schemaVersion,omitempty" desc:"payload schema version; defaults to the class's"`
	Channel       string            `msgpack:"channel,omitempty" json:"channel,omitempty" desc:"explicit channel (custom classes only)"`
	Headers       map[string]string `msgpack:"headers,omitempty" json:"headers,omitempty" desc:"string headers"`
	ID            string            `msgpack:"id,omitempty" json:"id,omitempty" desc:"event id; supply one to make a retry idempotent"`
	// Strict refuses a class nobody declared (undeclared_class) instead of
	// delivering it locally: a typo'd class name otherwise reaches nobody
	// and says nothing.
	Strict bool `msgpack:"strict,omitempty" json:"strict,omitempty" desc:"refuse an undeclared class with undeclared_class instead of delivering it locally"`
}

// EmitResult answers events/emit.
type EmitResult struct {
	ID      string `msgpack:"id" json:"id" desc:"the event id"`
	Channel string `msgpack:"channel" json:"channel" desc:"resolved channel; empty when local"`
	Lamport uint64 `msgpack:"lamport" json:"lamport" desc:"lamport time; 0 when local"`
	Seq     uint64 `msgpack:"seq" json:"seq" desc:"log position; 0 when not logged"`
	// Declared is false when no class of that name is declared: the event
	// went only to local subscribers of the exact pattern, and is often a
	// typo. Clients warn on it.
	Declared bool `msgpack:"declared" json:"declared" desc:"whether the class is declared; false means delivered locally only (often a typo'd name)"`
}

// SubscribeParams are the params of events/subscribe.
type SubscribeParams struct {
	Pattern string `msgpack:"pattern" json:"pattern" api:"required" desc:"class pattern; * matches one segment, a lone * every class"`
	Channel string `msgpack:"channel,omitempty" json:"channel,omitempty" desc:"only events on this channel"`
	From    From   `msgpack:"from,omitempty" json:"from,omitempty" desc:"now (default), start, or a seq to resume after"`
	Durable string `msgpack:"durable,omitempty" json:"durable,omitempty" desc:"name of a durable cursor stored in the log"`
}

// SubscribeResult answers events/subscribe.
type SubscribeResult struct {
	Subscription string `msgpack:"subscription" json:"subscription" desc:"subscription id carried by each events/event"`
	Cursor       uint64 `msgpack:"cursor" json:"cursor" desc:"the seq delivery starts after"`
}

// SubscriptionParams name a subscription.
type SubscriptionParams struct {
	Subscription string `msgpack:"subscription" json:"subscription" api:"required" desc:"subscription id"`
}

// AckParams are the params of events/ack.
type AckParams struct {
	Durable string `msgpack:"durable" json:"durable" api:"required" desc:"durable cursor name"`
	Seq     uint64 `msgpack:"seq" json:"seq" api:"required" desc:"last seq processed"`
}

// ReplayParams are the params of events/replay.
type ReplayParams struct {
	Channel string  `msgpack:"channel" json:"channel" api:"required" desc:"channel to page"`
	After   *string `msgpack:"after,omitempty" json:"after,omitempty" desc:"page cursor (a next from an earlier page): events after it; omit for the first page"`
	Before  *string `msgpack:"before,omitempty" json:"before,omitempty" desc:"page cursor: events before it; \"end\" pages back from the newest"`
	Limit   int     `msgpack:"limit,omitempty" json:"limit,omitempty" desc:"at most this many events (max 500, default 100)"`
}

// ReplayResult answers events/replay.
type ReplayResult struct {
	Events []Event `msgpack:"events" json:"events" desc:"events in (lamport, id) order"`
	Next   *string `msgpack:"next" json:"next" desc:"cursor for the next page in the same direction; nil at the end"`
}

// EventNotification is the params of the events/event notification.
type EventNotification struct {
	Subscription string `msgpack:"subscription" json:"subscription" desc:"subscription id"`
	Event        Event  `msgpack:"event" json:"event" desc:"the event"`
}

// LaggedNotification is the params of the events/lagged notification.
type LaggedNotification struct {
	Subscription string `msgpack:"subscription" json:"subscription" desc:"subscription id"`
	Dropped      uint64 `msgpack:"dropped" json:"dropped" desc:"events dropped since the last notification"`
}

// ProtocolErrorNotification is the params of kernel/protocol-error, sent before
// the daemon closes a connection whose bytes it could not parse.
type ProtocolErrorNotification struct {
	Code    Code   `msgpack:"code" json:"code" desc:"protocol_error or message_too_large"`
	Message string `msgpack:"message" json:"message" desc:"what was wrong"`
}

// ScopeParams choose where a command runs.
type ScopeParams struct {
	Target         Scope  `msgpack:"target,omitempty" json:"target,omitempty" desc:"local|environment|grid; default the command's naturalScope"`
	PeerID         string `msgpack:"peerId,omitempty" json:"peerId,omitempty" desc:"run on this peer (grid)"`
	Capability     string `msgpack:"capability,omitempty" json:"capability,omitempty" desc:"capability a peer must offer (grid)"`
	Policy         string `msgpack:"policy,omitempty" json:"policy,omitempty" desc:"cheapest|fastest|closest|load-balance (grid)"`
	MinTrustCircle string `msgpack:"minTrustCircle,omitempty" json:"minTrustCircle,omitempty" desc:"least trusted circle accepted (grid)"`
}

// ExecuteParams are the params of commands/execute.
type ExecuteParams struct {
	Command   string       `msgpack:"command" json:"command" api:"required" desc:"command name"`
	Params    any          `msgpack:"params" json:"params" desc:"the command's params map"`
	Scope     *ScopeParams `msgpack:"scope,omitempty" json:"scope,omitempty" desc:"where to run it"`
	TimeoutMs int64        `msgpack:"timeoutMs,omitempty" json:"timeoutMs,omitempty" desc:"deadline in milliseconds; deadline_exceeded after it"`
}

// RegisterParams are the params of commands/register.
type RegisterParams struct {
	Name         string `msgpack:"name" json:"name" api:"required" desc:"command name, group/name-with-dashes"`
	NaturalScope Scope  `msgpack:"naturalScope,omitempty" json:"naturalScope,omitempty" desc:"environment (default) or grid"`
	Description  string `msgpack:"description,omitempty" json:"description,omitempty" desc:"what it does"`
	Idempotent   bool   `msgpack:"idempotent,omitempty" json:"idempotent,omitempty" desc:"safe to retry on another provider"`
	Capability   string `msgpack:"capability,omitempty" json:"capability,omitempty" desc:"grid: the capability it offers (default the command name)"`
	Terms        *Terms `msgpack:"terms,omitempty" json:"terms,omitempty" desc:"grid: the terms it offers it on"`
}

// CommandInfo describes one command in commands/list.
type CommandInfo struct {
	Name         string `msgpack:"name" json:"name" desc:"command name"`
	NaturalScope Scope  `msgpack:"naturalScope" json:"naturalScope" desc:"local|environment|grid"`
	Description  string `msgpack:"description" json:"description" desc:"what it does"`
	Idempotent   bool   `msgpack:"idempotent" json:"idempotent" desc:"safe to retry"`
	Provider     string `msgpack:"provider" json:"provider" desc:"kernel, or the id of the client that registered it"`
	Capability   string `msgpack:"capability,omitempty" json:"capability,omitempty" desc:"grid: the capability it offers"`
	Terms        *Terms `msgpack:"terms,omitempty" json:"terms,omitempty" desc:"grid: the terms it offers it on"`
}

// HandleParams are the params of commands/handle, which the kernel sends to the
// client that registered a command.
type HandleParams struct {
	Invocation string `msgpack:"invocation" json:"invocation" desc:"id of this invocation; commands/cancel names it"`
	Command    string `msgpack:"command" json:"command" desc:"command name"`
	Params     any    `msgpack:"params" json:"params" desc:"the caller's params"`
	Caller     string `msgpack:"caller" json:"caller" desc:"id of the calling client"`
	DeadlineMs int64  `msgpack:"deadlineMs,omitempty" json:"deadlineMs,omitempty" desc:"unix milliseconds by which the caller stops waiting; 0 for none"`
}

// CancelNotification is the params of commands/cancel, sent to a provider when
// the caller of an invocation went away or its deadline passed.
type CancelNotification struct {
	Invocation string `msgpack:"invocation" json:"invocation" desc:"the invocation to stop"`
}

// From is where a subscription starts: "now" (the zero value), "start", or
// after a seq. On the wire it is the string "now" or "start", or an integer.
type From struct {
	Start bool   // from the beginning of the log
	Seq   uint64 // after this seq, when Start is false and Seq > 0
}

// FromSeq returns a From that resumes after seq.
func FromSeq(seq uint64) From { return From{Seq: seq} }

// FromStart replays the whole log.
var FromStart = From{Start: true}

// IsZero reports "now", so omitempty leaves it out.
func (f From) IsZero() bool { return !f.Start && f.Seq == 0 }

func (f From) String() string {
	switch {
	case f.Start:
		return "start"
	case f.Seq > 0:
		return strconv.FormatUint(f.Seq, 10)
	}
	return "now"
}

// EncodeMsgpack writes "now", "start", or the seq as an integer.
func (f From) EncodeMsgpack(enc *msgpack.Encoder) error {
	if f.Seq > 0 && !f.Start {
		return enc.EncodeUint(f.Seq)
	}
	return enc.EncodeString(f.String())
}

// DecodeMsgpack reads "now", "start", a decimal string, or a non-negative integer.
func (f *From) DecodeMsgpack(dec *msgpack.Decoder) error {
	v, err := dec.DecodeInterfaceLoose()
	if err != nil {
		return err
	}
	parsed, err := ParseFrom(v)
	if err != nil {
		return err
	}
	*f = parsed
	return nil
}

// ParseFrom reads a From from a string or integer.
func ParseFrom(v any) (From, error) {
	switch x := v.(type) {
	case nil:
		return From{}, nil
	case string:
		switch x {
		case "", "now":
			return From{}, nil
		case "start":
			return FromStart, nil
		}
		n, err := strconv.ParseUint(x, 10, 64)
		if err != nil {
			return From{}, fmt.Errorf(`from must be "now", "start" or a seq, not %q`, x)
		}
		return FromSeq(n), nil
	case int64:
		if x < 0 {
			return From{}, fmt.Errorf("from must not be negative")
		}
		return FromSeq(uint64(x)), nil
	case uint64:
		return FromSeq(x), nil
	}
	return From{}, fmt.Errorf(`from must be "now", "start" or a seq, not %T`, v)
}

// MethodSpec ties a method name to its Go types; Methods is the table the kernel
// serves and gen/ reads.
type MethodSpec struct {
	Name         string
	NaturalScope Scope
	Kind         string
	Description  string
	Params       reflect.Type
	Result       reflect.Type // nil for notifications
}

func typeOf[T any]() reflect.Type { return reflect.TypeOf((*T)(nil)).Elem() }

func method[P, R any](name, desc string) MethodSpec {
	return MethodSpec{Name: name, NaturalScope: ScopeLocal, Kind: KindRequest, Description: desc, Params: typeOf[P](), Result: typeOf[R]()}
}

func gridMethod[P, R any](name, desc string) MethodSpec {
	m := method[P, R](name, desc)
	m.NaturalScope = ScopeGrid
	return m
}

func notification[P any](name, desc string) MethodSpec {
	return MethodSpec{Name: name, NaturalScope: ScopeLocal, Kind: KindNotification, Description: desc, Params: typeOf[P]()}
}

// Method names, one constant each, so code never spells them twice.
const (
	MethodKernelInfo     = "kernel/info"
	MethodKernelPing     = "kernel/ping"
	MethodKernelMetrics  = "kernel/metrics"
	MethodDeclareClass   = "events/declare-class"
	MethodGetClass       = "events/get-class"
	MethodListClasses    = "events/list-classes"
	MethodResolveChannel = "events/resolve-channel"
	MethodEmit           = "events/emit"
	MethodSubscribe      = "events/subscribe"
	MethodUnsubscribe    = "events/unsubscribe"
	MethodAck            = "events/ack"
	MethodReplay         = "events/replay"
	MethodLogStats       = "log/stats"
	MethodExecute        = "commands/execute"
	MethodRegister       = "commands/register"
	MethodUnregister     = "commands/unregister"
	MethodListCommands   = "commands/list"
	MethodHandle         = "commands/handle"
	MethodCancel         = "commands/cancel"
	NotifyEvent          = "events/event"
	NotifyLagged         = "events/lagged"
	NotifyProtocolError  = "kernel/protocol-error"

	// Hosted by the inference service (package inference), not the kernel.
	MethodInferenceLoad     = "inference/load"
	MethodInferenceUnload   = "inference/unload"
	MethodInferenceModels   = "inference/models"
	MethodInferenceGenerate = "inference/generate"

	// Hosted by the grid service (package grid), not the kernel.
	MethodGridInvite       = "grid/invite"
	MethodGridJoin         = "grid/join"
	MethodGridTrust        = "grid/trust"
	MethodGridUntrust      = "grid/untrust"
	MethodGridPeers        = "grid/peers"
	MethodGridStatus       = "grid/status"
	MethodGridRoutes       = "grid/routes"
	MethodGridPolicyReload = "grid/policy-reload"

	// Hosted by the alloy service (package alloysvc).
	MethodAlloyVerify = "alloy/verify"
	MethodAlloyGet    = "alloy/get"
	MethodAlloyList   = "alloy/list"

	// Hosted by the grid's contract service (package grid/contract).
	MethodContractPropose = "contract/propose"
	MethodContractGet     = "contract/get"
	MethodContractList    = "contract/list"

	// Hosted by the chat service (package chat).
	MethodChatSend    = "chat/send"
	MethodChatHistory = "chat/history"

	// Hosted by the persona service (package persona).
	MethodPersonaCreate = "persona/create"
	MethodPersonaList   = "persona/list"
	MethodPersonaGet    = "persona/get"
	MethodPersonaUpdate = "persona/update"
	MethodPersonaDelete = "persona/delete"
	MethodPersonaStatus = "persona/status"
)

// Methods is every method of the protocol, in the order kernel/info lists them.
var Methods = []MethodSpec{
	method[Empty, InfoResult](MethodKernelInfo, "Describe the daemon and every method, with params and result, for clients and generators."),
	method[Empty, PingResult](MethodKernelPing, "Answer at once; for health checks and latency measurement."),
	method[Empty, Metrics](MethodKernelMetrics, "The daemon's counters: connections, calls by method and code with latency, events per class, subscriber lag, log commits, inference tokens and grid counters (docs/METRICS.md)."),
	method[ClassConfig, ClassConfig](MethodDeclareClass, "Declare an event class; idempotent when the wire contract matches, conflicting_redeclaration otherwise. Returns the resolved config."),
	method[NameParams, *ClassConfig](MethodGetClass, "Return a class's config, or nil when undeclared."),
	method[Empty, []ClassConfig](MethodListClasses, "List every declared class, sorted by name."),
	method[ResolveChannelParams, ChannelResult](MethodResolveChannel, "Resolve the channel an event of a broadcast class would go to."),
	method[EmitParams, EmitResult](MethodEmit, "Emit an event: delivered to matching subscribers; broadcast classes are logged first and the reply comes once on disk."),
	method[SubscribeParams, SubscribeResult](MethodSubscribe, "Subscribe to classes matching a pattern; events arrive as events/event notifications."),
	method[SubscriptionParams, Empty](MethodUnsubscribe, "End a subscription."),
	method[AckParams, Empty](MethodAck, "Advance a durable cursor."),
	method[ReplayParams, ReplayResult](MethodReplay, "Page a channel's transcript in (lamport, id) order."),
	method[Empty, LogStats](MethodLogStats, "Describe the airc log: head, clock, epoch, and per-channel counts and sizes."),
	method[ExecuteParams, any](MethodExecute, "Run a command where its scope says: in the kernel, in the client that registered it, or on a peer."),
	method[RegisterParams, Empty](MethodRegister, "Provide a command from this client; the kernel sends it commands/handle requests. It goes away with the connection."),
	method[NameParams, Empty](MethodUnregister, "Stop providing a command this client registered."),
	method[Empty, []CommandInfo](MethodListCommands, "List every command and where it runs."),
	{Name: MethodHandle, NaturalScope: ScopeEnvironment, Kind: KindCallback, Description: "Sent by the kernel to the client that registered a command; the reply is relayed to the caller.", Params: typeOf[HandleParams](), Result: typeOf[any]()},
	notification[CancelNotification](MethodCancel, "Sent to a provider when the invocation's caller went away or its deadline passed."),
	notification[EventNotification](NotifyEvent, "An event for a subscription."),
	notification[LaggedNotification](NotifyLagged, "A live subscription fell behind its queue bound and events were dropped."),
	notification[ProtocolErrorNotification](NotifyProtocolError, "The daemon could not parse the connection's bytes and closes it."),
	method[LoadModelParams, LoadedModel](MethodInferenceLoad, "Validate and load a GGUF model under a name; progress goes out as inference:load-progress events."),
	method[NameParams, Empty](MethodInferenceUnload, "Unload a model once its running generations finish; queued ones fail with unavailable."),
	method[Empty, []LoadedModel](MethodInferenceModels, "List the loaded models."),
	gridMethod[GenerateParams, GenerateResult](MethodInferenceGenerate, "Generate text from a prompt or messages; with stream, each token is also an inference:tokens event. Greedy at temperature 0."),
	method[InviteParams, InviteResult](MethodGridInvite, "Issue a signed, expiring, one-off invite token for a circle; the joiner redeems it with grid/join."),
	method[JoinParams, JoinResult](MethodGridJoin, "Redeem an invite token: link to the inviter; both sides then trust each other in the token's circle."),
	method[TrustParams, GridPeer](MethodGridTrust, "Trust a peer in a circle (operator only; no transitive trust) and keep a link to it at its addresses."),
	method[UntrustParams, UntrustResult](MethodGridUntrust, "Stop trusting a peer: its live link closes at once and it is refused from then on."),
	method[Empty, PeersResult](MethodGridPeers, "List the trusted peers with their link state, round trip and when last seen."),
	method[Empty, GridStatus](MethodGridStatus, "This install on the grid: peer id, QUIC addresses, epoch, per-channel origin vectors and counters."),
	method[RoutesParams, RoutesResult](MethodGridRoutes, "The capability index: which live peers offer what, with terms, load and circle."),
	method[Empty, PolicyReloadResult](MethodGridPolicyReload, "Read the policy file again, validate it and run its tests; swap it in atomically or keep the old one and say why."),
	method[AlloyVerifyParams, AlloyVerdict](MethodAlloyVerify, "Verify an alloy offline: signatures, links, hashes, the artifacts given, expected configs and its proof contract; returns the verdict signed by this install and stores the alloy when its chain holds."),
	method[AlloyHashParams, AlloyEntry](MethodAlloyGet, "Return a stored alloy by its hash (or a unique prefix)."),
	method[AlloyListParams, []AlloySummary](MethodAlloyList, "List stored alloys, newest first."),
	method[ContractProposeParams, ContractProposeResult](MethodContractPropose, "Propose a contract for a command: peers whose offers match bid, the best bid by the strategy is accepted, the executor delivers a signed receipt, this install verifies it and pays or disputes; each step a signed contract:* event."),
	method[ContractGetParams, Contract](MethodContractGet, "A contract's chain as folded from the log on this install: who, when, amounts, alloy hashes, verdict, and refused events with reasons."),
	method[ContractListParams, ContractListResult](MethodContractList, "List the contracts in the log (optionally in one state) and this install's reservations."),
	method[ChatSendParams, EmitResult](MethodChatSend, "Post a message to a room as the calling client: a chat:posted event on the room's channel, answered once it is on disk."),
	method[ChatHistoryParams, ChatHistoryResult](MethodChatHistory, "Page a room's transcript back from the newest message, through the log's replay; next is nil at the room's start."),
	method[PersonaCreateParams, Persona](MethodPersonaCreate, "Create a persona with an Ed25519 identity of its own; it starts reading its rooms from now and answers what passes its gates."),
	method[Empty, []Persona](MethodPersonaList, "List the personas, sorted by name."),
	method[PersonaRefParams, Persona](MethodPersonaGet, "Return one persona by id or name."),
	method[PersonaUpdateParams, Persona](MethodPersonaUpdate, "Change a persona's name, role, model, prompt, rooms or params; its loop picks them up at the next message."),
	method[PersonaRefParams, Empty](MethodPersonaDelete, "Delete a persona: its loop stops, its cursors and its key are removed; what it posted stays in the log."),
	method[PersonaStatusParams, []PersonaStatus](MethodPersonaStatus, "Each persona's loop: state, queue depth, answered and skipped messages, last error and circuit breaker."),
}

// Lookup returns the spec of a protocol method.
func Lookup(name string) (MethodSpec, bool) {
	for _, m := range Methods {
		if m.Name == name {
			return m, true
		}
	}
	return MethodSpec{}, false
}
