package bench

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/vmihailenco/msgpack/v5"
)

// JetStreamSync says how JetStream syncs its file store.
type JetStreamSync int

// JetStream settings.
const (
	NoJetStream      JetStreamSync = iota // core NATS only
	JetStreamAlways                       // sync_interval: always: each ack means fsync'd
	JetStreamDefault                      // the default: fsync every 2 minutes
)

// NATS is a nats-server started for one measurement on 127.0.0.1 and a random
// port, with JetStream (file storage in a temp folder) when asked.
type NATS struct {
	S   *server.Server
	dir string

	mu    sync.Mutex
	conns []*nats.Conn
}

// StartNATS starts a server in this process.
func StartNATS(js JetStreamSync) (*NATS, error) {
	opts := &server.Options{
		Host:   "127.0.0.1",
		Port:   server.RANDOM_PORT,
		NoLog:  true,
		NoSigs: true,
		// The default 64 MiB pending per client; stated so a reader knows.
		MaxPending: 64 << 20,
	}
	n := &NATS{}
	if js != NoJetStream {
		dir, err := os.MkdirTemp("", "busbench-js-")
		if err != nil {
			return nil, err
		}
		n.dir = dir
		opts.JetStream = true
		opts.StoreDir = dir
		if js == JetStreamAlways {
			opts.SyncAlways = true
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		n.removeDir()
		return nil, err
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		n.removeDir()
		return nil, errors.New("nats-server did not become ready")
	}
	n.S = s
	return n, nil
}

func (n *NATS) removeDir() {
	if n.dir != "" {
		os.RemoveAll(n.dir)
	}
}

// Dial opens one more connection, closed with the server.
func (n *NATS) Dial(opts ...nats.Option) (*nats.Conn, error) {
	// A slow consumer is counted by the bench (lost deliveries), not printed.
	quiet := nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})
	nc, err := nats.Connect(n.S.ClientURL(), append([]nats.Option{nats.NoReconnect(), quiet}, opts...)...)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	n.conns = append(n.conns, nc)
	n.mu.Unlock()
	return nc, nil
}

// DialN opens n connections.
func (n *NATS) DialN(k int) ([]*nats.Conn, error) {
	out := make([]*nats.Conn, k)
	for i := range out {
		nc, err := n.Dial()
		if err != nil {
			return nil, err
		}
		out[i] = nc
	}
	return out, nil
}

// Close ends every connection, stops the server and removes its folder.
func (n *NATS) Close() {
	n.mu.Lock()
	for _, nc := range n.conns {
		nc.Close()
	}
	n.mu.Unlock()
	n.S.Shutdown()
	n.S.WaitForShutdown()
	n.removeDir()
}

// NATSPing is the NATS core round trip: PING/PONG to the server (Flush) from
// n clients, each on its own connection.
func NATSPing(d time.Duration, k int) (Sample, error) {
	n, err := StartNATS(NoJetStream)
	if err != nil {
		return Sample{}, err
	}
	defer n.Close()
	ncs, err := n.DialN(k)
	if err != nil {
		return Sample{}, err
	}
	return closedLoop(d, k, func(w int) error { return ncs[w].Flush() })
}

const echoSubject = "bench.echo"

// NATSRequest is request/reply: n requesters, each on its own connection,
// answered by one responder subscription on another connection. Both sides
// encode and decode the same msgpack Echo as continuum's clients do.
func NATSRequest(d time.Duration, k int) (Sample, error) {
	n, err := StartNATS(NoJetStream)
	if err != nil {
		return Sample{}, err
	}
	defer n.Close()
	resp, err := n.Dial()
	if err != nil {
		return Sample{}, err
	}
	_, err = resp.Subscribe(echoSubject, func(m *nats.Msg) {
		var e Echo
		if err := msgpack.Unmarshal(m.Data, &e); err != nil {
			return
		}
		b, _ := msgpack.Marshal(e)
		_ = m.Respond(b)
	})
	if err != nil {
		return Sample{}, err
	}
	if err := resp.Flush(); err != nil {
		return Sample{}, err
	}
	ncs, err := n.DialN(k)
	if err != nil {
		return Sample{}, err
	}
	seq := make([]int64, k)
	return closedLoop(d, k, func(w int) error {
		seq[w]++
		b, err := msgpack.Marshal(Echo{N: seq[w], Text: echoText})
		if err != nil {
			return err
		}
		m, err := ncs[w].Request(echoSubject, b, 10*time.Second)
		if err != nil {
			return err
		}
		var out Echo
		if err := msgpack.Unmarshal(m.Data, &out); err != nil {
			return err
		}
		if out.N != seq[w] {
			return fmt.Errorf("echo: got n=%d, want %d", out.N, seq[w])
		}
		return nil
	})
}

const tickSubject = "bench.tick"

// NATSFanout is one publisher connection publishing as fast as it can
// (NATS publishes are fire-and-forget, buffered by the client) to subs
// subscribers, each on its own connection, counting deliveries.
func NATSFanout(d time.Duration, subs int) (Sample, error) {
	n, err := StartNATS(NoJetStream)
	if err != nil {
		return Sample{}, err
	}
	defer n.Close()
	f := newFanCounter(subs)
	var decodeErr atomic.Value
	for i := range subs {
		nc, err := n.Dial()
		if err != nil {
			return Sample{}, err
		}
		sub, err := nc.Subscribe(tickSubject, func(m *nats.Msg) {
			var t Tick
			if err := msgpack.Unmarshal(m.Data, &t); err != nil {
				decodeErr.CompareAndSwap(nil, err)
				return
			}
			f.deliver(i, t.TS)
		})
		if err != nil {
			return Sample{}, err
		}
		// As deep as continuum's subscriber buffers (kernel 4096 plus client 65536).
		if err := sub.SetPendingLimits(1<<16+4096, 256<<20); err != nil {
			return Sample{}, err
		}
		if err := nc.Flush(); err != nil {
			return Sample{}, err
		}
	}
	pub, err := n.Dial()
	if err != nil {
		return Sample{}, err
	}
	var pubErr atomic.Value
	s := fanWindow(d, time.Second, subs, f, func(stop <-chan struct{}, sent *atomic.Int64) {
		for n := int64(0); ; n++ {
			if n%64 == 0 {
				select {
				case <-stop:
					if err := pub.Flush(); err != nil {
						pubErr.CompareAndSwap(nil, err)
					}
					return
				default:
				}
			}
			b, _ := msgpack.Marshal(Tick{TS: time.Now().UnixNano(), N: n, Text: echoText})
			if err := pub.Publish(tickSubject, b); err != nil {
				pubErr.CompareAndSwap(nil, err)
				return
			}
			sent.Add(1)
		}
	})
	if err, _ := pubErr.Load().(error); err != nil {
		return s, fmt.Errorf("publish: %w", err)
	}
	if err, _ := decodeErr.Load().(error); err != nil {
		return s, fmt.Errorf("decode: %w", err)
	}
	return s, nil
}
