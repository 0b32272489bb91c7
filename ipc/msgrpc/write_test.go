package msgrpc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/vmihailenco/msgpack/v5"
)

// seqParams is what the flooding tests send: who sent it, its number in that
// sender's order, and padding to vary the size.
type seqParams struct {
	From int    `msgpack:"from"`
	Seq  int    `msgpack:"seq"`
	Pad  []byte `msgpack:"pad"`
}

// readSeqs reads n notifications from r with the framing Reader and checks
// that each is a whole, well-formed message and that every sender's
// messages arrive in the order it sent them.
func readSeqs(t *testing.T, r io.Reader, senders, n int) error {
	t.Helper()
	fr := NewReader(r, 0)
	next := make([]int, senders)
	for i := range n {
		b, err := fr.ReadMessage()
		if err != nil {
			return fmt.Errorf("message %d of %d: %w", i, n, err)
		}
		m, err := ParseMessage(b)
		if err != nil {
			return fmt.Errorf("message %d is not whole: %w", i, err)
		}
		var p seqParams
		if err := m.Params.Decode(&p); err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
		if m.Method != "seq" || p.From < 0 || p.From >= senders || p.Seq != next[p.From] {
			return fmt.Errorf("message %d: %s from %d seq %d, want seq %d", i, m.Method, p.From, p.Seq, next[min(max(p.From, 0), senders-1)])
		}
		if len(p.Pad) != padFor(p.From, p.Seq) {
			return fmt.Errorf("message %d: %d bytes of padding, want %d", i, len(p.Pad), padFor(p.From, p.Seq))
		}
		next[p.From]++
	}
	return nil
}

// padFor varies message sizes from a few bytes to more than a socket buffer
// round, so batches both share syscalls and span several.
func padFor(from, seq int) int {
	switch (from + seq) % 10 {
	case 0:
		return 70 << 10
	case 1, 2:
		return 9000
	}
	return (from*7 + seq) % 300
}

// floodSeqs has senders goroutines send perSender notifications each on c:
// through Notify, which leaves the writing to the writer goroutine, or
// inline, the way requests and responses go (a sender writes when nobody else
// is).
func floodSeqs(c *Conn, senders, perSender int, inline bool) <-chan error {
	errc := make(chan error, senders)
	for s := range senders {
		go func() {
			for i := range perSender {
				p := seqParams{From: s, Seq: i, Pad: make([]byte, padFor(s, i))}
				var err error
				if inline {
					var e *encoder
					if e, err = encodeNotification("seq", p); err == nil {
						err = c.send(context.Background(), e)
					}
				} else {
					err = c.Notify("seq", p)
				}
				if err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	return errc
}

// Many goroutines sending on one connection at once: every message leaves
// whole, none is lost, and each sender's order is kept, whether senders write
// themselves or leave it to the writer goroutine, whether the peer keeps up
// or reads in fits and starts (so that inline writes would block and go to
// the writer goroutine), over a socket and over a transport that is not one.
func TestConnConcurrentSendersWholeMessages(t *testing.T) {
	const senders, perSender = 16, 60
	for _, tc := range []struct {
		name   string
		pipe   bool
		slow   bool
		inline bool
	}{
		{"socket, inline", false, false, true}, {"socket, inline, slow reader", false, true, true},
		{"socket, writer goroutine", false, false, false}, {"socket, writer goroutine, slow reader", false, true, false},
		{"pipe", true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var x, y net.Conn
			if tc.pipe {
				x, y = net.Pipe()
				t.Cleanup(func() { x.Close(); y.Close() })
			} else {
				x, y = socketPair(t)
			}
			c := NewConn(NewStreamTransport(x, 0), Options{QueueSize: 8})
			defer c.Close()
			var r io.Reader = y
			if tc.slow {
				r = &stutterReader{r: y}
			}
			done := make(chan error, 1)
			go func() { done <- readSeqs(t, r, senders, senders*perSender) }()
			errc := floodSeqs(c, senders, perSender, tc.inline)
			for range senders {
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the reader did not get every message")
			}
		})
	}
}

// stutterReader reads in small pieces with pauses, so that the writer's
// socket fills up now and then.
type stutterReader struct {
	r io.Reader
	n int
}

func (s *stutterReader) Read(p []byte) (int, error) {
	s.n++
	if s.n%50 == 0 {
		time.Sleep(2 * time.Millisecond)
	}
	return s.r.Read(p[:min(len(p), 4096)])
}

// A peer that stops reading fills its socket and then the bounded queue;
// after that, and only then, senders on that connection wait (a Call gives
// up with its context). Nothing else waits: the connection's reader keeps
// serving, inline methods included, and another connection works as usual.
func TestConnPeerNotReadingBlocksNoOneElse(t *testing.T) {
	for _, inline := range []bool{true, false} {
		t.Run(fmt.Sprintf("inline=%v", inline), func(t *testing.T) { testPeerNotReading(t, inline) })
	}
}

func testPeerNotReading(t *testing.T, inline bool) {
	x, y := socketPair(t)
	h := &inlineHandler{testHandler: newTestHandler(), inline: map[string]bool{"echo": true}}
	c := NewConn(NewStreamTransport(x, 0), Options{QueueSize: 4})
	c.Start(h)
	defer c.Close()

	// Fill the socket and the queue: sending stops returning.
	var sent atomic.Int64
	flood := make(chan error, 1)
	go func() {
		for {
			p := map[string]any{"b": make([]byte, 32<<10)}
			var err error
			if inline {
				var e *encoder
				if e, err = encodeNotification("flood", p); err == nil {
					err = c.send(context.Background(), e)
				}
			} else {
				err = c.Notify("flood", p)
			}
			if err != nil {
				flood <- err
				return
			}
			sent.Add(1)
		}
	}()
	for deadline := time.Now().Add(10 * time.Second); !c.queueFull(); {
		if time.Now().After(deadline) {
			t.Fatalf("the queue never filled (%d sent)", sent.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if sent.Load() == 0 {
		t.Fatal("nothing was sent")
	}

	// A call on the stuck connection waits for room, bounded by its context.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Call(ctx, "echo", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call on a full queue: %v, want the deadline", err)
	}

	// The reader still reads: requests (inline ones too, whose responses
	// cannot be queued now) do not stop a notification sent after them.
	req := mustMarshal(t, []any{0, 1, "echo", []any{map[string]any{}}})
	for range 20 {
		if _, err := y.Write(req); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := y.Write(mustMarshal(t, []any{2, "note", []any{map[string]any{"n": 5}}})); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.noted:
	case <-time.After(5 * time.Second):
		t.Fatal("the reader stopped behind a peer that does not read")
	}

	// Another connection is not affected.
	a, b, _, _ := connPair(t, Options{})
	_ = b
	cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer ccancel()
	if _, err := a.Call(cctx, "echo", map[string]any{"v": "x"}); err != nil {
		t.Fatalf("another connection: %v", err)
	}

	// Closing releases the stuck sender.
	c.Close()
	select {
	case err := <-flood:
		if !errors.Is(err, &api.Error{Code: api.CodeUnavailable}) {
			t.Fatalf("stuck sender got %v, want unavailable", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release a sender waiting on a full queue")
	}
}

// Shutdown flushes everything queued to a peer that is slow to read, in
// order, before it closes.
func TestConnShutdownFlushesToSlowPeer(t *testing.T) {
	x, y := socketPair(t)
	c := NewConn(NewStreamTransport(x, 0), Options{QueueSize: 1000})
	c.Start(newTestHandler())
	const n = 300
	for i := range n {
		if err := c.Notify("seq", seqParams{From: 0, Seq: i, Pad: make([]byte, padFor(0, i))}); err != nil {
			t.Fatal(err)
		}
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- c.Shutdown(ctx)
	}()
	time.Sleep(20 * time.Millisecond) // Shutdown now waits on the peer
	br := bufio.NewReader(y)
	if err := readSeqs(t, br, 1, n); err != nil {
		t.Fatal(err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	_ = y.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("want EOF after the queued messages, got %x %v", b, err)
	}
}

// inlineHandler serves the methods in inline on the reader.
type inlineHandler struct {
	*testHandler
	inline map[string]bool
}

func (h *inlineHandler) InlineMethod(method string) bool { return h.inline[method] }

// Inline methods run on the reader: with the one in-flight slot taken by a
// slow request, an inline one is still served, and a slow request never
// holds up an inline one behind it.
func TestConnInlineMethods(t *testing.T) {
	ra, rb := socketPair(t)
	opts := Options{MaxInFlight: 1}
	a := NewConn(NewStreamTransport(ra, 0), opts)
	b := NewConn(NewStreamTransport(rb, 0), opts)
	hb := &inlineHandler{testHandler: newTestHandler(), inline: map[string]bool{"echo": true, "panic": true}}
	a.Start(newTestHandler())
	b.Start(hb)
	defer a.Close()
	defer b.Close()

	blocked := make(chan error, 1)
	go func() {
		_, err := a.Call(context.Background(), "block", nil)
		blocked <- err
	}()
	<-hb.started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := range 100 {
		raw, err := a.Call(ctx, "echo", echoParams{V: "hi", N: i})
		if err != nil {
			t.Fatalf("inline call behind a slow one: %v", err)
		}
		var p echoParams
		if err := raw.Decode(&p); err != nil || p.N != i {
			t.Fatalf("got %+v, %v", p, err)
		}
	}
	// A panicking inline handler is an internal error, not a dead reader.
	if _, err := a.Call(ctx, "panic", nil); !errors.Is(err, &api.Error{Code: api.CodeInternal}) {
		t.Fatalf("panic: %v", err)
	}
	close(hb.release)
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
}

// Shutdown refuses inline requests as it does others, and answers those
// read before it.
func TestConnShutdownInline(t *testing.T) {
	ra, rb := socketPair(t)
	a := NewConn(NewStreamTransport(ra, 0), Options{})
	b := NewConn(NewStreamTransport(rb, 0), Options{})
	hb := &inlineHandler{testHandler: newTestHandler(), inline: map[string]bool{"echo": true}}
	a.Start(newTestHandler())
	b.Start(hb)
	defer a.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := a.Call(context.Background(), "block", nil)
		errc <- err
	}()
	<-hb.started
	shut := make(chan error, 1)
	go func() { shut <- b.Shutdown(context.Background()) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := a.Call(context.Background(), "echo", nil)
		if errors.Is(err, &api.Error{Code: api.CodeUnavailable}) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("inline echo during drain: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	close(hb.release)
	if err := <-errc; err != nil {
		t.Fatalf("in-flight call during drain: %v", err)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	<-a.Done()
}

// Over a transport that is not a socket every write goes through the writer
// goroutine; calls work both ways and concurrently.
func TestConnOverPipe(t *testing.T) {
	x, y := net.Pipe()
	a := NewConn(NewStreamTransport(x, 0), Options{})
	b := NewConn(NewStreamTransport(y, 0), Options{})
	a.Start(newTestHandler())
	b.Start(&inlineHandler{testHandler: newTestHandler(), inline: map[string]bool{"echo": true}})
	defer a.Close()
	defer b.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 16 {
		for _, c := range []*Conn{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range 50 {
					raw, err := c.Call(context.Background(), "echo", echoParams{N: i*100 + j})
					if err != nil {
						errs <- err
						return
					}
					var p echoParams
					if err := msgpack.Unmarshal(raw, &p); err != nil || p.N != i*100+j {
						errs <- fmt.Errorf("got %+v, %v", p, err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
