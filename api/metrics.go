package api

// Metrics answers kernel/metrics: the daemon's counters since it started
// (docs/METRICS.md). /metrics serves the same numbers as Prometheus text.
type Metrics struct {
	UptimeSeconds float64           `msgpack:"uptimeSeconds" json:"uptimeSeconds" desc:"seconds since the kernel opened"`
	Connections   ConnectionMetrics `msgpack:"connections" json:"connections" desc:"client sessions, every transport"`
	Calls         []MethodMetrics   `msgpack:"calls" json:"calls" desc:"per method: calls by result code and latency"`
	Events        []ClassMetrics    `msgpack:"events" json:"events" desc:"per event class: emitted, delivered, dropped"`
	Subscriptions int               `msgpack:"subscriptions" json:"subscriptions" desc:"live subscriptions now"`
	SubscriberLag uint64            `msgpack:"subscriberLag" json:"subscriberLag" desc:"events queued for live subscribers and not yet delivered, now"`
	Subscribers   []SubscriberLag   `msgpack:"subscribers" json:"subscribers" desc:"clients whose subscriptions are behind now, most behind first; at most MaxLagClients, the rest summed under client _other"`
	Log           LogMetrics        `msgpack:"log" json:"log" desc:"airc log group commits"`
	Inference     InferenceMetrics  `msgpack:"inference" json:"inference" desc:"tokens generated"`
	Grid          GridMetrics       `msgpack:"grid" json:"grid" desc:"links and replication (grid/status counters)"`
}

// MaxLagClients bounds Metrics.Subscribers (and the client label of
// continuum_client_lag_events): a lag gauge per connected client would let
// clients grow the scrape without bound.
const MaxLagClients = 20

// SubscriberLag is how far one client's subscriptions are behind.
type SubscriberLag struct {
	Client        string `msgpack:"client" json:"client" desc:"the client id (as events carry in sender); _other for the clients past MaxLagClients"`
	Subscriptions int    `msgpack:"subscriptions" json:"subscriptions" desc:"its subscriptions that are behind"`
	LagEvents     uint64 `msgpack:"lagEvents" json:"lagEvents" desc:"events queued for it and not yet delivered, plus, for log-backed subscriptions, log positions between its read position and the head"`
}

// ConnectionMetrics counts client sessions.
type ConnectionMetrics struct {
	Open  uint64 `msgpack:"open" json:"open" desc:"sessions open now"`
	Total uint64 `msgpack:"total" json:"total" desc:"sessions opened since start"`
}

// MethodMetrics counts one method's calls.
type MethodMetrics struct {
	Method  string            `msgpack:"method" json:"method" desc:"method or command name (_other past the label limit)"`
	Codes   map[string]uint64 `msgpack:"codes" json:"codes" desc:"calls by result: ok or an error code"`
	Latency Histogram         `msgpack:"latency" json:"latency" desc:"call latency, seconds"`
}

// ClassMetrics counts one event class's traffic.
type ClassMetrics struct {
	Class     string `msgpack:"class" json:"class" desc:"class name (_other past the label limit)"`
	Emitted   uint64 `msgpack:"emitted" json:"emitted" desc:"events published to the bus (emitted locally or received from peers)"`
	Delivered uint64 `msgpack:"delivered" json:"delivered" desc:"deliveries to live subscribers"`
	Dropped   uint64 `msgpack:"dropped" json:"dropped" desc:"deliveries dropped because a subscriber's queue was full"`
}

// LogMetrics describes the airc log's group commits.
type LogMetrics struct {
	Commits         uint64    `msgpack:"commits" json:"commits" desc:"group commits (one bbolt transaction and fsync each)"`
	Events          uint64    `msgpack:"events" json:"events" desc:"events committed"`
	Bytes           uint64    `msgpack:"bytes" json:"bytes" desc:"encoded event bytes committed"`
	CommitLatency   Histogram `msgpack:"commitLatency" json:"commitLatency" desc:"time of one commit, fsync included, seconds"`
	EventsPerCommit Histogram `msgpack:"eventsPerCommit" json:"eventsPerCommit" desc:"events in one commit"`
}

// InferenceMetrics counts generation.
type InferenceMetrics struct {
	Tokens        uint64  `msgpack:"tokens" json:"tokens" desc:"tokens generated since start"`
	GenerateSecs  float64 `msgpack:"generateSeconds" json:"generateSeconds" desc:"seconds spent generating them"`
	TokensPerSecs float64 `msgpack:"tokensPerSecond" json:"tokensPerSecond" desc:"tokens over generating seconds (0 before any)"`
}

// GridMetrics are the grid's link and replication counters.
type GridMetrics struct {
	PeersUp  int               `msgpack:"peersUp" json:"peersUp" desc:"links up now"`
	Counters map[string]uint64 `msgpack:"counters" json:"counters" desc:"grid/status counters by name"`
	Peers    []PeerReplication `msgpack:"peers" json:"peers" desc:"per peer this process has replicated with: how far behind its log this install is"`
}

// PeerReplication is how far this install is behind one peer's log.
type PeerReplication struct {
	PeerID        string  `msgpack:"peerId" json:"peerId" desc:"the peer"`
	Up            bool    `msgpack:"up" json:"up" desc:"a link to it is up now"`
	LagEvents     uint64  `msgpack:"lagEvents" json:"lagEvents" desc:"seqs in the peer's log past the one this install has pulled and committed, as of the peer's last answer"`
	BehindSeconds float64 `msgpack:"behindSeconds" json:"behindSeconds" desc:"seconds since this install last held everything the peer had; 0 when caught up"`
}

// Histogram is a fixed-bucket histogram.
type Histogram struct {
	Bounds []float64 `msgpack:"bounds" json:"bounds" desc:"bucket upper bounds, ascending"`
	Counts []uint64  `msgpack:"counts" json:"counts" desc:"observations per bucket (not cumulative); one more than bounds, the last is +Inf"`
	Count  uint64    `msgpack:"count" json:"count" desc:"observations"`
	Sum    float64   `msgpack:"sum" json:"sum" desc:"sum of observations"`
}
