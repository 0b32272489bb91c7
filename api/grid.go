package api

// Wire types of the grid/* methods (docs/GRID.md), hosted by the
// grid service (package grid), not the kernel.

// InviteParams are the params of grid/invite.
type InviteParams struct {
	Circle     string `msgpack:"circle" json:"circle" api:"required" desc:"household, trusted-orgs, extended or public-mesh"`
	TTLSeconds int    `msgpack:"ttlSeconds,omitempty" json:"ttlSeconds,omitempty" desc:"how long the token can be redeemed (default 600, at most 604800)"`
}

// InviteResult answers grid/invite.
type InviteResult struct {
	Token       string   `msgpack:"token" json:"token" desc:"the invite token: give it to the joiner, who runs grid/join with it; it works once"`
	ExpiresAtMs int64    `msgpack:"expiresAtMs" json:"expiresAtMs" desc:"when it stops working, unix ms"`
	Addrs       []string `msgpack:"addrs" json:"addrs" desc:"the QUIC addresses in the token"`
}

// JoinParams are the params of grid/join.
type JoinParams struct {
	Token string `msgpack:"token" json:"token" api:"required" desc:"an invite token from grid/invite on the other install"`
}

// JoinResult answers grid/join.
type JoinResult struct {
	PeerID string `msgpack:"peerId" json:"peerId" desc:"the inviter's peer id, now linked and trusted"`
	Circle string `msgpack:"circle" json:"circle" desc:"the circle each side now trusts the other in"`
}

// TrustParams are the params of grid/trust.
type TrustParams struct {
	PeerID string   `msgpack:"peerId" json:"peerId" api:"required" desc:"the peer to trust"`
	Circle string   `msgpack:"circle" json:"circle" api:"required" desc:"household, trusted-orgs, extended or public-mesh"`
	Addrs  []string `msgpack:"addrs,omitempty" json:"addrs,omitempty" desc:"its QUIC addresses (host:port); none: wait for it to dial"`
}

// UntrustParams are the params of grid/untrust.
type UntrustParams struct {
	PeerID string `msgpack:"peerId" json:"peerId" api:"required" desc:"the peer to stop trusting; its live link closes at once"`
}

// UntrustResult answers grid/untrust.
type UntrustResult struct {
	Removed bool `msgpack:"removed" json:"removed" desc:"false when the peer was not trusted"`
}

// GridPeer is one trusted peer in grid/peers.
type GridPeer struct {
	PeerID     string   `msgpack:"peerId" json:"peerId" desc:"its peer id"`
	Circle     string   `msgpack:"circle" json:"circle" desc:"the circle it is trusted in"`
	Addrs      []string `msgpack:"addrs" json:"addrs" desc:"its QUIC addresses, as recorded"`
	State      string   `msgpack:"state" json:"state" desc:"up, connecting (no link, dialling with backoff) or down (no link, no address to dial)"`
	RTTMs      float64  `msgpack:"rttMs" json:"rttMs" desc:"smoothed round trip of the link, ms (0 when not up)"`
	LastSeenMs int64    `msgpack:"lastSeenMs" json:"lastSeenMs" desc:"when a link to it was last up, unix ms; 0 never"`
	AddedAtMs  int64    `msgpack:"addedAtMs" json:"addedAtMs" desc:"when it was trusted, unix ms"`
	LastError  string   `msgpack:"lastError,omitempty" json:"lastError,omitempty" desc:"why the last link attempt failed or the link closed"`
}

// PeersResult answers grid/peers.
type PeersResult struct {
	Peers []GridPeer `msgpack:"peers" json:"peers" desc:"every trusted peer, by peer id"`
}

// GridStatus answers grid/status.
type GridStatus struct {
	PeerID    string                       `msgpack:"peerId" json:"peerId" desc:"this install's peer id"`
	QUICAddrs []string                     `msgpack:"quicAddrs" json:"quicAddrs" desc:"where it accepts links (empty without --listen-quic)"`
	Epoch     uint64                       `msgpack:"epoch" json:"epoch" desc:"the airc log's epoch"`
	Channels  map[string]map[string]uint64 `msgpack:"channels" json:"channels" desc:"per channel, per origin peer id: the highest originSeq this install holds"`
	Links     int                          `msgpack:"links" json:"links" desc:"links up now"`
	Counters  map[string]uint64            `msgpack:"counters" json:"counters" desc:"grid counters by name: link.up, link.refused.REASON, link.closed.REASON, … (docs/GRID.md)"`
}
