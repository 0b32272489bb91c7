package kernel

import (
	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel/airc"
	"github.com/continuum-grid/continuum/kernel/identity"
	bolt "go.etcd.io/bbolt"
)

// Accessors for services that run beside the kernel in the same process
// (inference, the grid). They share the kernel's state instead of opening
// their own: one bbolt file, one identity, one log.

// Identity is this install's key; services that prove who they are to peers
// (the grid's TLS certificates) sign with it.
func (k *Kernel) Identity() *identity.Identity { return k.id }

// DB is the kernel's bbolt file. A service keeps its entities in buckets of
// its own, named "<service>/..." so they never collide with the log's
// ("airc/...") or the class registry's.
func (k *Kernel) DB() *bolt.DB { return k.store.DB }

// Log is the airc log. Replication reads it and ingests received events into
// it; whatever is committed reaches local subscribers as a local emit does.
func (k *Kernel) Log() *airc.Log { return k.alog }

// Committed returns a channel that is closed at the next commit of the airc
// log (local appends and ingested events alike), for readers that follow
// the head: take the channel, read up to the head, then wait on it.
func (k *Kernel) Committed() <-chan struct{} { return k.headChanged() }

// SetQUICAddrs records where the grid service accepts QUIC links, so that
// kernel/info shows them; nil when it does not listen.
func (k *Kernel) SetQUICAddrs(addrs []string) {
	a := append([]string(nil), addrs...)
	k.quicAddrs.Store(&a)
}

// SetWebSocket records the WebSocket listener for kernel/info (nil: none).
func (k *Kernel) SetWebSocket(w *api.WebSocketInfo) {
	if w != nil {
		c := *w
		w = &c
	}
	k.webSocket.Store(w)
}

func (k *Kernel) quicAddrList() []string {
	if p := k.quicAddrs.Load(); p != nil && len(*p) > 0 {
		return *p
	}
	return nil
}
