package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/client"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/vmihailenco/msgpack/v5"
	bolt "go.etcd.io/bbolt"
)

// ErrNotLogged says the daemon answered a broadcast emit without logging it
// (seq 0): a build whose kernel does not have the airc log wired in.
var ErrNotLogged = errors.New("the daemon does not log broadcast events (emit returned seq 0)")

// durableClass is broadcast on the global channel: every emit is appended
// to the airc log and answered once it is fsync'd.
var durableClass = api.ClassConfig{
	Name: "bench:durable", Broadcast: true, Channel: api.ChannelGlobal, SchemaVersion: "v1",
}

const durableSubject = "bench.durable"

// ReplayEvents is how many events the replay shapes log and then read back.
var ReplayEvents = 20000

// declareDurable declares the broadcast class and checks that an emit of it
// is logged.
func declareDurable(cl *client.Client) error {
	ctx, cancel := withTimeout()
	defer cancel()
	if _, err := cl.DeclareClass(ctx, durableClass); err != nil {
		return err
	}
	r, err := cl.Emit(ctx, api.EmitParams{Name: durableClass.Name, Payload: Echo{Text: "probe"}})
	if err != nil {
		return err
	}
	if r.Seq == 0 {
		return ErrNotLogged
	}
	return nil
}

// DurableSupported reports whether this build's daemon logs broadcast events.
func DurableSupported() error {
	c, err := StartContinuum()
	if err != nil {
		return err
	}
	defer c.Close()
	cl, err := c.Dial()
	if err != nil {
		return err
	}
	return declareDurable(cl)
}

// ContinuumDurable is events/emit of a broadcast (global) class from n
// emitters, each on its own connection: each reply means the event is in
// the airc log and fsync'd (group-committed).
func ContinuumDurable(d time.Duration, n int) (Sample, error) {
	c, err := StartContinuum()
	if err != nil {
		return Sample{}, err
	}
	defer c.Close()
	cls, err := c.DialN(n)
	if err != nil {
		return Sample{}, err
	}
	if err := declareDurable(cls[0]); err != nil {
		return Sample{}, err
	}
	bg := context.Background()
	seq := make([]int64, n)
	return closedLoop(d, n, func(w int) error {
		seq[w]++
		r, err := cls[w].Emit(bg, api.EmitParams{Name: durableClass.Name, Payload: Echo{N: seq[w], Text: echoText}})
		if err == nil && r.Seq == 0 {
			err = ErrNotLogged
		}
		return err
	})
}

// startStream starts a JetStream server with one file-storage stream.
func startStream(js JetStreamSync) (*NATS, error) {
	n, err := StartNATS(js)
	if err != nil {
		return nil, err
	}
	nc, err := n.Dial()
	if err != nil {
		n.Close()
		return nil, err
	}
	j, err := jetstream.New(nc)
	if err != nil {
		n.Close()
		return nil, err
	}
	ctx, cancel := withTimeout()
	defer cancel()
	_, err = j.CreateStream(ctx, jetstream.StreamConfig{
		Name: "BENCH", Subjects: []string{durableSubject}, Storage: jetstream.FileStorage,
	})
	if err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// JetStreamDurable is a synchronous JetStream publish (waits for the PubAck)
// from n publishers, each on its own connection, to a file-storage stream.
func JetStreamDurable(sync JetStreamSync) Runner {
	return func(d time.Duration, k int) (Sample, error) {
		n, err := startStream(sync)
		if err != nil {
			return Sample{}, err
		}
		defer n.Close()
		js := make([]jetstream.JetStream, k)
		for i := range js {
			nc, err := n.Dial()
			if err != nil {
				return Sample{}, err
			}
			if js[i], err = jetstream.New(nc); err != nil {
				return Sample{}, err
			}
		}
		bg := context.Background()
		seq := make([]int64, k)
		return closedLoop(d, k, func(w int) error {
			seq[w]++
			b, err := msgpack.Marshal(Echo{N: seq[w], Text: echoText})
			if err != nil {
				return err
			}
			_, err = js[w].Publish(bg, durableSubject, b)
			return err
		})
	}
}

// BboltDurable is the floor: n goroutines, each event its own bbolt
// read-write transaction (so its own fdatasync of data and meta pages), with
// a value about the size of a logged continuum event.
func BboltDurable(d time.Duration, n int) (Sample, error) {
	dir, err := os.MkdirTemp("", "busbench-bolt-")
	if err != nil {
		return Sample{}, err
	}
	defer os.RemoveAll(dir)
	db, err := bolt.Open(filepath.Join(dir, "bench.db"), 0o600, nil)
	if err != nil {
		return Sample{}, err
	}
	defer db.Close()
	bucket := []byte("events")
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(bucket); return err }); err != nil {
		return Sample{}, err
	}
	value := loggedEventLike()
	return closedLoop(d, n, func(int) error {
		return db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucket)
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			return b.Put(binary.BigEndian.AppendUint64(nil, seq), value)
		})
	})
}

// loggedEventLike is an event envelope as the log stores it (ids, hashes, a
// signature, the bench payload).
func loggedEventLike() []byte {
	prev, sig := make([]byte, 32), make([]byte, 64)
	rand.Read(prev)
	rand.Read(sig)
	b, _ := msgpack.Marshal(api.Event{
		ID: "01JDQ2ZC4B6S1V4Q0C3Y3P9K1M", Class: durableClass.Name, Channel: "global",
		Origin: "bench7x4kq2m3h5n6p7r8s9t0v1w2y3z4a5b6c7d8e9f0g1h2", OriginSeq: 1, Prev: prev,
		Sender: "c1", Lamport: 1, Seq: 1, TS: time.Now().UnixMilli(), SchemaVersion: "v1",
		Payload: Echo{N: 1, Text: echoText}, Sig: sig,
	})
	return b
}

// ContinuumReplay logs ReplayEvents events (64 emitters, not timed), then
// times one client reading them all with events/subscribe {from: "start"}:
// from the subscribe call to the last event, payloads decoded.
func ContinuumReplay(_ time.Duration, _ int) (Sample, error) {
	c, err := StartContinuum()
	if err != nil {
		return Sample{}, err
	}
	defer c.Close()
	want, err := logReplayEvents(c)
	if err != nil {
		return Sample{}, err
	}
	rd, err := c.Dial(client.WithEventBuffer(1 << 16))
	if err != nil {
		return Sample{}, err
	}
	if replayHook != nil {
		defer replayHook()()
	}
	return readReplay(rd, want)
}

// logReplayEvents declares the durable class and logs ReplayEvents events
// from 64 emitters; it returns how many events the log holds (the probe is
// logged too).
func logReplayEvents(c *Continuum) (int, error) {
	const emitters = 64
	cls, err := c.DialN(emitters)
	if err != nil {
		return 0, err
	}
	if err := declareDurable(cls[0]); err != nil {
		return 0, err
	}
	var next atomic.Int64
	if _, err := closedLoop(time.Hour, emitters, func(w int) error {
		i := next.Add(1)
		if i > int64(ReplayEvents) {
			return errDone
		}
		_, err := cls[w].Emit(context.Background(), api.EmitParams{Name: durableClass.Name, Payload: Echo{N: i, Text: echoText}})
		return err
	}); err != nil && !errors.Is(err, errDone) {
		return 0, err
	}
	return ReplayEvents + 1, nil
}

// readReplay is the timed part of ContinuumReplay: subscribe from the start
// and read want events, payloads decoded; the subscription is closed after.
func readReplay(rd *client.Client, want int) (Sample, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t0 := time.Now()
	sub, err := rd.Subscribe(ctx, api.SubscribeParams{Pattern: durableClass.Name, From: api.FromStart})
	if err != nil {
		return Sample{}, err
	}
	got := 0
	for got < want {
		ev, err := sub.Next(ctx)
		if err != nil {
			return Sample{}, fmt.Errorf("replay: after %d of %d events: %w", got, want, err)
		}
		var e Echo
		if err := decodePayload(ev.Payload, &e); err != nil {
			return Sample{}, err
		}
		got++
	}
	s := Sample{Ops: int64(got), Elapsed: time.Since(t0)}
	if lag := sub.Lagged(); lag.Kernel+lag.Client > 0 {
		s.Note = fmt.Sprintf("lagged: daemon %d, client %d", lag.Kernel, lag.Client)
	}
	_ = sub.Close(ctx)
	return s, nil
}

var errDone = errors.New("done")

// replayHook, when set, runs as the timed part of ContinuumReplay starts;
// what it returns runs when it ends (tests profile the read alone).
var replayHook func() func()

// JetStreamReplay publishes ReplayEvents messages to a file-storage stream
// (async publishes, default sync; not timed), then times an ordered consumer
// reading them all, payloads decoded.
func JetStreamReplay(_ time.Duration, _ int) (Sample, error) {
	n, err := startStream(JetStreamDefault)
	if err != nil {
		return Sample{}, err
	}
	defer n.Close()
	nc, err := n.Dial()
	if err != nil {
		return Sample{}, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return Sample{}, err
	}
	for i := range ReplayEvents {
		b, _ := msgpack.Marshal(Echo{N: int64(i + 1), Text: echoText})
		if _, err := js.PublishAsync(durableSubject, b); err != nil {
			return Sample{}, err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		return Sample{}, errors.New("jetstream: async publishes did not complete")
	}
	rc, err := n.Dial()
	if err != nil {
		return Sample{}, err
	}
	rjs, err := jetstream.New(rc)
	if err != nil {
		return Sample{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t0 := time.Now()
	cons, err := rjs.OrderedConsumer(ctx, "BENCH", jetstream.OrderedConsumerConfig{})
	if err != nil {
		return Sample{}, err
	}
	it, err := cons.Messages()
	if err != nil {
		return Sample{}, err
	}
	defer it.Stop()
	got := 0
	for got < ReplayEvents {
		m, err := it.Next()
		if err != nil {
			return Sample{}, fmt.Errorf("jetstream replay: after %d of %d: %w", got, ReplayEvents, err)
		}
		var e Echo
		if err := msgpack.Unmarshal(m.Data(), &e); err != nil {
			return Sample{}, err
		}
		got++
	}
	return Sample{Ops: int64(got), Elapsed: time.Since(t0)}, nil
}

// DurableShapes are issue 3's comparisons: durable emit and replay.
func DurableShapes() []Shape {
	return []Shape{
		{
			Key: "durable", Title: "durable emit, broadcast global class: each ack means fsync'd", Unit: "events/s",
			Conc: []int{1, 16, 64}, Continuum: ContinuumDurable, Rounds: 2,
			MinRate: map[int]float64{64: 30000}, // issue 15 (was 50k: above the signing floor on 2 cores)
			Peers: []Peer{
				{Name: "JetStream sync always", Run: JetStreamDurable(JetStreamAlways), Goal: 3, GoalAt: []int{16, 64}},
				{Name: "JetStream default sync", Run: JetStreamDurable(JetStreamDefault)},
				{Name: "bbolt tx per event", Run: BboltDurable},
			},
		},
		{
			Key: "replay", Title: fmt.Sprintf("replay %d logged events to one reader", ReplayEvents), Unit: "events/s",
			Conc: []int{1}, Continuum: ContinuumReplay, Rounds: 2,
			Peers: []Peer{{Name: "JetStream ordered", Run: JetStreamReplay, Goal: 2}},
		},
	}
}
