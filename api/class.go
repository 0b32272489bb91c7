package api

// ChannelStrategy says how a broadcast class finds its channel (docs/PROTOCOL.md, "Event classes").
type ChannelStrategy string

// Channel strategies.
const (
	ChannelLocal    ChannelStrategy = "local"
	ChannelGlobal   ChannelStrategy = "global"
	ChannelByRoomID ChannelStrategy = "byRoomId"
	ChannelByPeerID ChannelStrategy = "byPeerId"
	ChannelCustom   ChannelStrategy = "custom"
)

// ChannelStrategies lists every valid strategy.
var ChannelStrategies = []ChannelStrategy{ChannelLocal, ChannelGlobal, ChannelByRoomID, ChannelByPeerID, ChannelCustom}

// OnUnknownSchema says what an emit with a different schemaVersion does.
type OnUnknownSchema string

// Unknown-schema policies.
const (
	SchemaFail OnUnknownSchema = "fail"
	SchemaWarn OnUnknownSchema = "warn"
)

// ClassConfig declares an event class. It is both the params of
// events/declare-class and the stored, resolved configuration.
type ClassConfig struct {
	Name            string          `msgpack:"name" json:"name" api:"required" desc:"class name, domain:collection:op"`
	Broadcast       bool            `msgpack:"broadcast" json:"broadcast" desc:"log and replicate the class's events (default false)"`
	Channel         ChannelStrategy `msgpack:"channel" json:"channel" desc:"local|global|byRoomId|byPeerId|custom (default local)"`
	SchemaVersion   string          `msgpack:"schemaVersion" json:"schemaVersion" api:"required" desc:"payload schema version; bump it to change the contract"`
	OnUnknownSchema OnUnknownSchema `msgpack:"onUnknownSchema" json:"onUnknownSchema" desc:"warn|fail (default fail)"`
	Description     string          `msgpack:"description" json:"description" desc:"free text; the first declaration's stays"`
}
