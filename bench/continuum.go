package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/daemon"
	"github.com/continuum-grid/continuum/ipc/client"
	"github.com/continuum-grid/continuum/kernel"
	"github.com/vmihailenco/msgpack/v5"
)

// Echo is the params and result of the round trips that a client answers.
type Echo struct {
	N    int64  `msgpack:"n"`
	Text string `msgpack:"text"`
}

// Tick is the payload of a fan-out event: TS (unix nanoseconds at emit)
// gives each delivery's latency.
type Tick struct {
	TS   int64  `msgpack:"ts"`
	N    int64  `msgpack:"n"`
	Text string `msgpack:"text"`
}

const echoText = "the quick brown fox"

// Continuum is a daemon started for one measurement, on a Unix socket in a
// fresh temp folder (state and socket), removed by Close.
type Continuum struct {
	D    *daemon.Daemon
	dir  string
	mu   sync.Mutex
	open []*client.Client
}

// StartContinuum starts a daemon in this process.
func StartContinuum() (*Continuum, error) {
	dir, err := os.MkdirTemp("", "busbench-")
	if err != nil {
		return nil, err
	}
	d, err := daemon.Start(daemon.Config{
		Socket: filepath.Join(dir, "run", "continuumd.sock"),
		Kernel: kernel.Config{StateDir: filepath.Join(dir, "state")},
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &Continuum{D: d, dir: dir}, nil
}

// Dial opens one more client connection, closed with the daemon.
func (c *Continuum) Dial(opts ...client.Option) (*client.Client, error) {
	ctx, cancel := withTimeout()
	defer cancel()
	cl, err := client.Dial(ctx, c.D.SocketPath(), opts...)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.open = append(c.open, cl)
	c.mu.Unlock()
	return cl, nil
}

// DialN opens n connections.
func (c *Continuum) DialN(n int, opts ...client.Option) ([]*client.Client, error) {
	out := make([]*client.Client, n)
	for i := range out {
		cl, err := c.Dial(opts...)
		if err != nil {
			return nil, err
		}
		out[i] = cl
	}
	return out, nil
}

// Close ends every client, drains the daemon and removes its folder.
func (c *Continuum) Close() {
	c.mu.Lock()
	for _, cl := range c.open {
		cl.Close()
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.D.Shutdown(ctx)
	os.RemoveAll(c.dir)
}

// ContinuumPing is kernel/ping from n clients, each on its own connection.
func ContinuumPing(d time.Duration, n int) (Sample, error) {
	c, err := StartContinuum()
	if err != nil {
		return Sample{}, err
	}
	defer c.Close()
	cls, err := c.DialN(n)
	if err != nil {
		return Sample{}, err
	}
	ctx := context.Background()
	return closedLoop(d, n, func(w int) error {
		_, err := cls[w].Ping(ctx)
		return err
	})
}

// EchoCommand is the command the provider serves.
const EchoCommand = "bench/echo"

// ContinuumProvided is a call of a command that another client provides:
// caller → daemon → provider → daemon → caller. One provider connection
// serves n callers, each on its own connection.
func ContinuumProvided(d time.Duration, n int) (Sample, error) {
	c, err := StartContinuum()
	if err != nil {
		return Sample{}, err
	}
	defer c.Close()
	prov, err := c.Dial()
	if err != nil {
		return Sample{}, err
	}
	ctx, cancel := withTimeout()
	defer cancel()
	err = prov.Provide(ctx, api.RegisterParams{Name: EchoCommand}, func(_ context.Context, inv *client.Invocation) (any, error) {
		var e Echo
		if err := inv.Params.Decode(&e); err != nil {
			return nil, err
		}
		return e, nil
	})
	if err != nil {
		return Sample{}, err
	}
	cls, err := c.DialN(n)
	if err != nil {
		return Sample{}, err
	}
	bg := context.Background()
	seq := make([]int64, n)
	return closedLoop(d, n, func(w int) error {
		seq[w]++
		var out Echo
		if err := cls[w].Call(bg, EchoCommand, Echo{N: seq[w], Text: echoText}, &out); err != nil {
			return err
		}
		if out.N != seq[w] {
			return fmt.Errorf("echo: got n=%d, want %d", out.N, seq[w])
		}
		return nil
	})
}

// FanEmitters is how many emits one emitter keeps in flight.
const FanEmitters = 4

// tickClass is undeclared, so its events are local: delivered live, never logged.
const tickClass = "bench:tick"

// ContinuumFanout is one emitter connection with FanEmitters emits in flight
// and subs subscribers, each on its own connection, counting deliveries.
func ContinuumFanout(d time.Duration, subs int) (Sample, error) {
	return continuumFanout(d, subs, FanEmitters, false)
}

// ContinuumFanoutNotify is ContinuumFanout with the emitter sending
// events/emit as MessagePack-RPC notifications: no reply, like a NATS
// publish, with the socket as the only flow control.
func ContinuumFanoutNotify(d time.Duration, subs int) (Sample, error) {
	return continuumFanout(d, subs, 1, true)
}

func continuumFanout(d time.Duration, subs, inflight int, notify bool) (Sample, error) {
	c, err := StartContinuum()
	if err != nil {
		return Sample{}, err
	}
	var wg sync.WaitGroup
	// Closing the clients ends the subscriptions, and so the readers.
	defer func() { c.Close(); wg.Wait() }()
	ctx, cancel := withTimeout()
	defer cancel()
	f := newFanCounter(subs)
	var allSubs []*client.Subscription
	var decodeErr atomic.Value
	for i := range subs {
		cl, err := c.Dial(client.WithEventBuffer(1 << 16))
		if err != nil {
			return Sample{}, err
		}
		sub, err := cl.Subscribe(ctx, api.SubscribeParams{Pattern: tickClass})
		if err != nil {
			return Sample{}, err
		}
		allSubs = append(allSubs, sub)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range sub.Events() {
				var t Tick
				if err := decodePayload(ev.Payload, &t); err != nil {
					decodeErr.CompareAndSwap(nil, err)
					continue
				}
				f.deliver(i, t.TS)
			}
		}()
	}
	em, err := c.Dial()
	if err != nil {
		return Sample{}, err
	}
	var emitErr atomic.Value
	s := fanWindow(d, time.Second, subs, f, func(stop <-chan struct{}, sent *atomic.Int64) {
		var ew sync.WaitGroup
		for range inflight {
			ew.Add(1)
			go func() {
				defer ew.Done()
				bg := context.Background()
				for n := int64(0); ; n++ {
					select {
					case <-stop:
						if notify {
							// A call behind the notifications returns once
							// the daemon has read them all.
							if _, err := em.Ping(bg); err != nil {
								emitErr.CompareAndSwap(nil, err)
							}
						}
						return
					default:
					}
					p := api.EmitParams{Name: tickClass, Payload: Tick{TS: time.Now().UnixNano(), N: n, Text: echoText}}
					var err error
					if notify {
						err = em.Notify(api.MethodEmit, p)
					} else {
						_, err = em.Emit(bg, p)
					}
					if err != nil {
						emitErr.CompareAndSwap(nil, err)
						return
					}
					sent.Add(1)
				}
			}()
		}
		ew.Wait()
	})
	var lag client.Lag
	for _, sub := range allSubs {
		l := sub.Lagged()
		lag.Kernel += l.Kernel
		lag.Client += l.Client
	}
	if lag.Kernel+lag.Client > 0 {
		s.Note = fmt.Sprintf("dropped by the daemon %d, by the client library %d", lag.Kernel, lag.Client)
	}
	if err, _ := emitErr.Load().(error); err != nil {
		return s, fmt.Errorf("emit: %w", err)
	}
	if err, _ := decodeErr.Load().(error); err != nil {
		return s, fmt.Errorf("decode: %w", err)
	}
	return s, nil
}

// decodePayload reads an event payload: raw msgpack from the socket.
func decodePayload(p any, dst any) error {
	switch v := p.(type) {
	case msgpack.RawMessage:
		return msgpack.Unmarshal(v, dst)
	case []byte:
		return msgpack.Unmarshal(v, dst)
	case nil:
		return errors.New("no payload")
	}
	b, err := msgpack.Marshal(p)
	if err != nil {
		return err
	}
	return msgpack.Unmarshal(b, dst)
}
