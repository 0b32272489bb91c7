package api

// Code is a stable, snake_case error code from the one catalogue (docs/PROTOCOL.md, "Error catalogue").
// Codes are never renamed or reused; checks compare codes, never messages.
type Code string

// The error catalogue. Add codes at the end of Catalogue; never rename one.
const (
	CodeInvalidArgument          Code = "invalid_argument"
	CodeNotFound                 Code = "not_found"
	CodeAlreadyExists            Code = "already_exists"
	CodeConflictingRedeclaration Code = "conflicting_redeclaration"
	CodeSchemaMismatch           Code = "schema_mismatch"
	CodeUndeclaredClass          Code = "undeclared_class"
	CodeNotBroadcast             Code = "not_broadcast"
	CodeMissingPayloadField      Code = "missing_payload_field"
	CodeUnknownMethod            Code = "unknown_method"
	CodePermissionDenied         Code = "permission_denied"
	CodeUnauthenticated          Code = "unauthenticated"
	CodeDeadlineExceeded         Code = "deadline_exceeded"
	CodeCancelled                Code = "cancelled"
	CodeUnavailable              Code = "unavailable"
	CodeResourceExhausted        Code = "resource_exhausted"
	CodeMessageTooLarge          Code = "message_too_large"
	CodeProtocolError            Code = "protocol_error"
	CodeNoMatchingPeer           Code = "no_matching_peer"
	CodePeerUnreachable          Code = "peer_unreachable"
	CodeNoAcceptingPeer          Code = "no_accepting_peer"
	CodeGPUUnavailable           Code = "gpu_unavailable"
	CodeInternal                 Code = "internal"
)

// CodeInfo documents one code for generated clients and docs.
type CodeInfo struct {
	Code        Code   `msgpack:"code" json:"code"`
	Description string `msgpack:"description" json:"description"`
}

// Catalogue lists every code in a fixed order; gen/ writes it into each shim.
var Catalogue = []CodeInfo{
	{CodeInvalidArgument, "A parameter is missing, has the wrong type, or breaks a rule; the message names the field or rule."},
	{CodeNotFound, "The named thing (class, subscription, command, model) does not exist."},
	{CodeAlreadyExists, "The name is taken (for example a command another client registered)."},
	{CodeConflictingRedeclaration, "An event class was declared again with a different wire contract; bump schemaVersion to change it."},
	{CodeSchemaMismatch, "The emitted schemaVersion differs from the class's and the class says onUnknownSchema=fail."},
	{CodeUndeclaredClass, "The event class has not been declared."},
	{CodeNotBroadcast, "The event class is local, so it has no channel."},
	{CodeMissingPayloadField, "The channel strategy needs a field (roomId, peerId, or an explicit channel) that is absent."},
	{CodeUnknownMethod, "No method or command has this name."},
	{CodePermissionDenied, "The caller is not allowed to do this (for example a foreign uid on the socket)."},
	{CodeUnauthenticated, "The connection has not presented the credentials it needs (for example the WebSocket token)."},
	{CodeDeadlineExceeded, "The call's deadline (timeoutMs) passed before it finished."},
	{CodeCancelled, "The call was cancelled by its caller or by shutdown."},
	{CodeUnavailable, "The service cannot serve now (a provider went away, the store is read-only, the daemon is draining)."},
	{CodeResourceExhausted, "A bound was hit (queue full, too many concurrent calls)."},
	{CodeMessageTooLarge, "A message exceeded the size limit; the connection is closed."},
	{CodeProtocolError, "The bytes were not valid MessagePack-RPC; the connection is closed."},
	{CodeNoMatchingPeer, "No peer offers the capability the grid command needs."},
	{CodePeerUnreachable, "The chosen peer could not be reached."},
	{CodeNoAcceptingPeer, "Every peer tried refused the work."},
	{CodeGPUUnavailable, "Inference needs a GPU backend and none is usable; the message says what was found and how to fix it."},
	{CodeInternal, "A bug or unexpected failure inside the daemon."},
}
