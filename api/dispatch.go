package api

// Wire types of grid dispatch (DESIGN §8 "Manifests", "Dispatch", "Policy";
// docs/GRID.md): the manifest every install publishes, the capability index
// grid/routes shows, and the policy reload. Hosted by the grid service.

// Event classes the grid publishes (broadcast, channel global).
const (
	EventPeerManifest        = "presence:peer-manifest"
	EventCapabilityWithdrawn = "presence:capability-withdrawn"
)

// Terms are what a peer asks for running an offer.
type Terms struct {
	Price         float64 `msgpack:"price" json:"price" desc:"price per call in currency (0: free)"`
	Currency      string  `msgpack:"currency,omitempty" json:"currency,omitempty" desc:"currency of price"`
	EstLatencyMs  float64 `msgpack:"estLatencyMs" json:"estLatencyMs" desc:"the provider's own estimate of one call's latency, ms"`
	MaxConcurrent int     `msgpack:"maxConcurrent" json:"maxConcurrent" desc:"calls it takes at once (0: the install's inbound limit)"`
}

// Offer is one capability a peer serves.
type Offer struct {
	Capability string `msgpack:"capability" json:"capability" desc:"what it offers: the command name, or e.g. llm:MODEL"`
	Command    string `msgpack:"command" json:"command" desc:"the command that serves it"`
	Idempotent bool   `msgpack:"idempotent,omitempty" json:"idempotent,omitempty" desc:"safe to retry on another peer"`
	Terms      Terms  `msgpack:"terms" json:"terms" desc:"price, latency estimate, concurrency"`
	AlloyHash  string `msgpack:"alloyHash,omitempty" json:"alloyHash,omitempty" desc:"hash of the alloy it runs, when it has one"`
}

// Hardware is what a manifest says about the machine.
type Hardware struct {
	CPUCores int     `msgpack:"cpuCores" json:"cpuCores" desc:"logical CPUs"`
	MemoryGB float64 `msgpack:"memoryGb" json:"memoryGb" desc:"physical memory, GiB (0 unknown)"`
	GPUs     int     `msgpack:"gpus" json:"gpus" desc:"GPUs usable for inference"`
}

// Manifest is the payload of presence:peer-manifest.
type Manifest struct {
	PeerID         string   `msgpack:"peerId" json:"peerId" desc:"the publishing install (equal to the event's origin)"`
	DisplayName    string   `msgpack:"displayName,omitempty" json:"displayName,omitempty" desc:"a name for people"`
	Addrs          []string `msgpack:"addrs" json:"addrs" desc:"its QUIC addresses"`
	Offers         []Offer  `msgpack:"offers" json:"offers" desc:"what it serves"`
	Wants          []string `msgpack:"wants" json:"wants" desc:"capabilities it looks for"`
	Hardware       Hardware `msgpack:"hardware" json:"hardware" desc:"the machine"`
	Load           float64  `msgpack:"load" json:"load" desc:"inbound jobs running over the inbound limit, 0 to 1"`
	AdvertisedAtMs int64    `msgpack:"advertisedAtMs" json:"advertisedAtMs" desc:"when it was sent, unix ms"`
	ExpiresAtMs    int64    `msgpack:"expiresAtMs" json:"expiresAtMs" desc:"when it is gone unless renewed, unix ms"`
}

// CapabilityWithdrawn is the payload of presence:capability-withdrawn.
type CapabilityWithdrawn struct {
	PeerID     string `msgpack:"peerId" json:"peerId" desc:"the install that no longer offers it"`
	Capability string `msgpack:"capability" json:"capability" desc:"the capability"`
	Command    string `msgpack:"command" json:"command" desc:"the command that served it"`
	AtMs       int64  `msgpack:"atMs" json:"atMs" desc:"when, unix ms"`
}

// RoutesParams are the params of grid/routes.
type RoutesParams struct {
	Capability string `msgpack:"capability,omitempty" json:"capability,omitempty" desc:"only this capability (default all)"`
}

// GridRoute is one peer offering one capability in grid/routes.
type GridRoute struct {
	Capability     string  `msgpack:"capability" json:"capability" desc:"the capability"`
	Command        string  `msgpack:"command" json:"command" desc:"the command that serves it"`
	PeerID         string  `msgpack:"peerId" json:"peerId" desc:"the peer offering it"`
	Circle         string  `msgpack:"circle" json:"circle" desc:"the circle this install trusts it in"`
	Idempotent     bool    `msgpack:"idempotent" json:"idempotent" desc:"safe to retry elsewhere"`
	Terms          Terms   `msgpack:"terms" json:"terms" desc:"its terms"`
	Load           float64 `msgpack:"load" json:"load" desc:"its load from its last manifest"`
	State          string  `msgpack:"state" json:"state" desc:"live, or stale (no manifest for the stale interval; not routed to)"`
	LinkUp         bool    `msgpack:"linkUp" json:"linkUp" desc:"whether a link to it is up now (routing needs one)"`
	RTTMs          float64 `msgpack:"rttMs" json:"rttMs" desc:"the link's round trip, ms"`
	AdvertisedAtMs int64   `msgpack:"advertisedAtMs" json:"advertisedAtMs" desc:"when its last manifest was sent, unix ms"`
}

// RoutesResult answers grid/routes.
type RoutesResult struct {
	Routes []GridRoute `msgpack:"routes" json:"routes" desc:"by capability, then peer id"`
}

// PolicyReloadResult answers grid/policy-reload.
type PolicyReloadResult struct {
	Loaded bool   `msgpack:"loaded" json:"loaded" desc:"true when the new policy is in force; false keeps the old one"`
	Path   string `msgpack:"path" json:"path" desc:"the policy file read"`
	Reason string `msgpack:"reason,omitempty" json:"reason,omitempty" desc:"why the old policy was kept"`
	Tests  int    `msgpack:"tests" json:"tests" desc:"the policy's own tests that ran (and passed, when loaded)"`
	Source string `msgpack:"source" json:"source" desc:"file, or defaults when there is no file"`
}
