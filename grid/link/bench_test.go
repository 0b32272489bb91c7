package link

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/kernel/identity"
	"github.com/quic-go/quic-go"
)

// The raw quic-go floor and msgrpc over a link, in the same run (docs/BENCHMARKS.md):
//
//	go test ./grid/link -run '^$' -bench . -benchtime 2s
//
// Raw: one long-lived stream on a loopback QUIC connection with the same TLS
// as a link, echoing 32-byte messages. Link: msgrpc calls on a protocol
// stream of an established link (the echo protocol of link_test.go).

const benchMsg = 32

// rawPair is a QUIC connection over loopback and an echoing stream on it.
func rawPair(b *testing.B) (*quic.Stream, func()) {
	b.Helper()
	ida, _ := identity.Generate()
	idb, _ := identity.Generate()
	ca, _ := certificate(ida)
	cb, _ := certificate(idb)
	ln, err := quic.ListenAddr("127.0.0.1:0", serverTLS(ca, func(string) error { return nil }), &quic.Config{})
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		c, err := ln.Accept(context.Background())
		if err != nil {
			return
		}
		st, err := c.AcceptStream(context.Background())
		if err != nil {
			return
		}
		io.Copy(st, st)
	}()
	c, err := quic.DialAddr(context.Background(), ln.Addr().String(), clientTLS(cb, ida.PeerID()), &quic.Config{})
	if err != nil {
		b.Fatal(err)
	}
	st, err := c.OpenStreamSync(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return st, func() { c.CloseWithError(0, ""); ln.Close() }
}

func BenchmarkRawQUICRoundTrip(b *testing.B) {
	st, done := rawPair(b)
	defer done()
	buf := make([]byte, benchMsg)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := st.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(st, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N), "µs/rtt")
}

func BenchmarkRawQUICPipelined(b *testing.B) {
	st, done := rawPair(b)
	defer done()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 64<<10)
		want := b.N * benchMsg
		for got := 0; got < want; {
			n, err := st.Read(buf[:min(len(buf), want-got)])
			if err != nil {
				b.Error(err)
				return
			}
			got += n
		}
	}()
	msg := make([]byte, benchMsg)
	for i := 0; i < b.N; i++ {
		if _, err := st.Write(msg); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// linkedEcho is two managers linked, with the echo protocol's conn from a to b.
func linkedEcho(b *testing.B) (call func(ctx context.Context) error, done func()) {
	b.Helper()
	ea, eb := &echo{}, &echo{}
	mk := func(p Protocol) *testNode {
		id, _ := identity.Generate()
		tr := newMemTrust()
		m, err := New(Options{Identity: id, Listen: "127.0.0.1:0", Trust: tr, Protocols: []Protocol{p}})
		if err != nil {
			b.Fatal(err)
		}
		return &testNode{id: id, trust: tr, m: m}
	}
	a, bb := mk(ea), mk(eb)
	a.trust.set(bb.id.PeerID(), "household")
	bb.trust.set(a.id.PeerID(), "household")
	bb.m.Connect(a.id.PeerID(), a.m.Addrs())
	deadline := time.Now().Add(5 * time.Second)
	for ea.conn(bb.id.PeerID()) == nil {
		if time.Now().After(deadline) {
			b.Fatal("no link")
		}
		time.Sleep(5 * time.Millisecond)
	}
	conn := ea.conn(bb.id.PeerID())
	params := map[string]any{"n": 1, "pad": "0123456789abcdef"}
	return func(ctx context.Context) error {
			_, err := conn.Call(ctx, "echo", params)
			return err
		}, func() {
			a.m.Close()
			bb.m.Close()
		}
}

func BenchmarkLinkMsgrpcRoundTrip(b *testing.B) {
	call, done := linkedEcho(b)
	defer done()
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := call(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N), "µs/rtt")
}

func BenchmarkLinkMsgrpcPipelined(b *testing.B) {
	call, done := linkedEcho(b)
	defer done()
	ctx := context.Background()
	b.SetParallelism(16)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := call(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
}
