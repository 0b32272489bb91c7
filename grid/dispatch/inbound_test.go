package dispatch

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/grid/link"
	"github.com/continuum-grid/continuum/grid/policy"
	"github.com/continuum-grid/continuum/grid/trust"
	"github.com/continuum-grid/continuum/ipc/msgrpc"
	"github.com/continuum-grid/continuum/kernel"
	"github.com/continuum-grid/continuum/kernel/airc"
	"github.com/continuum-grid/continuum/kernel/identity"
)

// noLinks answers for a link layer with no links (the peer here comes over
// a net.Pipe, attached by hand).
type noLinks struct{ c *link.Counters }

func (n noLinks) Counters() *link.Counters { return n.c }

func (noLinks) Addrs() []string             { return nil }
func (noLinks) State(string) link.PeerState { return link.PeerState{State: link.StateDown} }

// provider is an in-process client of the kernel serving one grid command:
// it answers {"ok": true} after sleep, or records its cancellation.
type provider struct {
	sleep     time.Duration
	started   chan struct{}
	cancelled chan struct{}
}

func (p *provider) Notify(string, any) error { return nil }
func (p *provider) Call(ctx context.Context, method string, _ any) (api.Params, error) {
	if method != api.MethodHandle {
		return nil, api.Errorf(api.CodeUnknownMethod, "%s", method)
	}
	p.started <- struct{}{}
	select {
	case <-time.After(p.sleep):
		return api.ValueParams{V: map[string]any{"ok": true}}, nil
	case <-ctx.Done():
		close(p.cancelled)
		return nil, ctx.Err()
	}
}

type rig struct {
	k      *kernel.Kernel
	d      *Dispatcher
	ts     *trust.Store
	peerID string
	theirs *msgrpc.Conn // the peer's end of the cmd stream
	prov   *provider
}

// newRig runs a real kernel and dispatcher, a household peer attached over
// a net.Pipe, and a provider of demo/slow (grid) and demo/env (environment).
func newRig(t *testing.T) *rig {
	t.Helper()
	k, err := kernel.Open(kernel.Config{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close(context.Background()) })
	ts, err := trust.Open(k.DB(), k.Identity())
	if err != nil {
		t.Fatal(err)
	}
	other, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Put(trust.Record{PeerID: other.PeerID(), Circle: trust.CircleHousehold}); err != nil {
		t.Fatal(err)
	}
	d, err := New(k, ts, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d.Start(noLinks{link.NewCounters()})
	k.SetGridRouter(d)
	t.Cleanup(d.Close)
	c1, c2 := net.Pipe()
	mine := msgrpc.NewConn(msgrpc.NewStreamTransport(c1, 1<<20), msgrpc.Options{})
	theirs := msgrpc.NewConn(msgrpc.NewStreamTransport(c2, 1<<20), msgrpc.Options{})
	h, detach := d.Attach(link.Peer{ID: other.PeerID(), Circle: trust.CircleHousehold}, mine)
	mine.Start(h)
	theirs.Start(msgrpc.HandlerFuncs{})
	t.Cleanup(func() { mine.Close(); theirs.Close(); detach() })

	prov := &provider{sleep: 50 * time.Millisecond, started: make(chan struct{}, 8), cancelled: make(chan struct{})}
	sess, err := k.Open(prov, api.Caller{Transport: "inproc", UID: -1, GID: -1, PID: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sess.Close)
	for _, reg := range []api.RegisterParams{{Name: "demo/slow", NaturalScope: api.ScopeGrid}, {Name: "demo/env"}} {
		if _, err := sess.Handle(context.Background(), api.MethodRegister, api.ValueParams{V: reg}); err != nil {
			t.Fatal(err)
		}
	}
	return &rig{k: k, d: d, ts: ts, peerID: other.PeerID(), theirs: theirs, prov: prov}
}

func (r *rig) run(t *testing.T, params any) (runResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	raw, err := r.theirs.Call(ctx, methodRun, params)
	var res runResult
	if err == nil {
		err = raw.Decode(&res)
	}
	return res, err
}

func reasonOf(err error) string {
	if ae, ok := err.(*api.Error); ok {
		if m := api.AsMap(ae.Data); m != nil {
			s, _ := m["reason"].(string)
			return s
		}
	}
	return ""
}

// A peer's bad requests get typed errors and the stream keeps serving.
func TestInboundRefusesBadRequests(t *testing.T) {
	r := newRig(t)
	long := make([]string, MaxHops+1)
	for i := range long {
		g, _ := identity.Generate()
		long[i] = g.PeerID()
	}
	for _, tc := range []struct {
		name   string
		params any
		code   api.Code
		reason string
	}{
		{"not a map", []int{1, 2}, api.CodeInvalidArgument, ""},
		{"wrong type", map[string]any{"job": 5, "command": "demo/slow"}, api.CodeInvalidArgument, ""},
		{"missing command", map[string]any{"job": "1"}, api.CodeInvalidArgument, ""},
		{"oversized command", map[string]any{"job": "1", "command": strings.Repeat("x", 10000)}, api.CodeInvalidArgument, ""},
		{"loop", runRequest{Job: "1", Command: "demo/slow", ForwardedBy: []string{r.peerID, r.d.me}}, api.CodeNoAcceptingPeer, ReasonLoop},
		{"too many hops", runRequest{Job: "1", Command: "demo/slow", ForwardedBy: long}, api.CodeNoAcceptingPeer, ReasonHops},
		{"environment command", runRequest{Job: "1", Command: "demo/env", ForwardedBy: []string{r.peerID}}, api.CodeNoAcceptingPeer, ReasonNotOffered},
		{"kernel method", runRequest{Job: "1", Command: api.MethodListClasses, ForwardedBy: []string{r.peerID}}, api.CodeNoAcceptingPeer, ReasonNotOffered},
		{"nobody has it", runRequest{Job: "1", Command: "demo/none", ForwardedBy: []string{r.peerID}}, api.CodeNoMatchingPeer, ""},
	} {
		_, err := r.run(t, tc.params)
		if api.CodeOf(err) != tc.code || reasonOf(err) != tc.reason {
			t.Errorf("%s: %v (reason %q), want %s %q", tc.name, err, reasonOf(err), tc.code, tc.reason)
		}
	}
	if _, err := r.theirs.Call(context.Background(), "cmd/nope", nil); api.CodeOf(err) != api.CodeUnknownMethod {
		t.Errorf("unknown method: %v", err)
	}
	// Events for no call of ours, or of a class that is not forwarded, are dropped.
	r.theirs.Notify(methodEvent, eventNote{Job: "zz", Name: "inference:tokens"})
	r.theirs.Notify(methodEvent, eventNote{Job: "zz", Name: "chat:posted"})
	r.theirs.Notify(methodEvent, []int{1})
	// Still serving.
	res, err := r.run(t, runRequest{Job: "2", Command: "demo/slow", ForwardedBy: []string{r.peerID}})
	if err != nil || api.AsMap(res.Result)["ok"] != true {
		t.Fatalf("a good request after the bad ones: %+v %v", res, err)
	}
	// Untrusted now: refused at once.
	if _, err := r.ts.Delete(r.peerID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.run(t, runRequest{Job: "3", Command: "demo/slow"}); reasonOf(err) != "circle_not_accepted" {
		t.Errorf("untrusted caller: %v", err)
	}
}

// The peer vanishing mid-call cancels the job and its provider.
func TestInboundPeerVanishesMidCall(t *testing.T) {
	r := newRig(t)
	r.prov.sleep = time.Minute
	go r.run(t, runRequest{Job: "1", Command: "demo/slow", ForwardedBy: []string{r.peerID}})
	<-r.prov.started
	r.theirs.Close()
	select {
	case <-r.prov.cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the provider was not cancelled when the calling peer vanished")
	}
	// The job is gone from the count.
	deadline := time.Now().Add(5 * time.Second)
	for r.d.load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the vanished peer's job still counts")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A reload that no longer admits a running job's circle cancels it.
func TestReloadCancelsJobsItNoLongerAdmits(t *testing.T) {
	r := newRig(t)
	r.prov.sleep = time.Minute
	errc := make(chan error, 1)
	go func() {
		_, err := r.run(t, runRequest{Job: "1", Command: "demo/slow", ForwardedBy: []string{r.peerID}})
		errc <- err
	}()
	<-r.prov.started
	writeFile(t, r.k.StateDir(), `{"inbound": {"circles": ["trusted-orgs"]}}`)
	if res := r.d.Reload(); !res.Loaded {
		t.Fatalf("reload: %+v", res)
	}
	select {
	case err := <-errc:
		if api.CodeOf(err) != api.CodeCancelled || !strings.Contains(err.Error(), "circle_not_accepted") {
			t.Errorf("running job after the reload: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the job the policy no longer admits still runs")
	}
	<-r.prov.cancelled
}

func writeFile(t *testing.T, dir, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, policy.FileName), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Candidates are filtered by what the index, the trust store and the
// outbound policy say, each left-out peer with its reason; the rate limit
// counts every dispatch.
func TestOutboundFiltersAndRate(t *testing.T) {
	r := newRig(t)
	now := time.Now()
	mk := func() string { g, _ := identity.Generate(); return g.PeerID() }
	pricey, stale, unlinked, stranger, orgs := mk(), mk(), mk(), mk(), mk()
	for id, circle := range map[string]string{pricey: "household", stale: "household", unlinked: "household", orgs: "trusted-orgs"} {
		if _, err := r.ts.Put(trust.Record{PeerID: id, Circle: circle}); err != nil {
			t.Fatal(err)
		}
	}
	offer := func(id string, price float64, at time.Time) {
		r.d.ix.put(api.Manifest{PeerID: id, AdvertisedAtMs: at.UnixMilli(), Offers: []api.Offer{{Capability: "demo/x", Command: "demo/x", Terms: api.Terms{Price: price}}}}, now)
	}
	offer(pricey, 10, now)
	offer(unlinked, 0, now)
	offer(stranger, 0, now)
	offer(orgs, 0, now)
	offer(stale, 0, now.Add(-6*time.Minute)) // past stale (5 min), before gone (15)

	writeFile(t, r.k.StateDir(), `{"outbound": {"maxPrice": 5, "maxCallsPerMinute": 2}}`)
	if res := r.d.Reload(); !res.Loaded {
		t.Fatal(res.Reason)
	}
	req := kernel.GridRequest{Command: "demo/x", Scope: &api.ScopeParams{Target: api.ScopeGrid}}
	_, err := r.d.Dispatch(context.Background(), req)
	if api.CodeOf(err) != api.CodeNoMatchingPeer {
		t.Fatalf("%v", err)
	}
	got := map[string]string{}
	cons, _ := api.AsMap(err.(*api.Error).Data)["considered"].([]map[string]any)
	for _, c := range cons {
		got[c["peerId"].(string)] = c["reason"].(string)
	}
	want := map[string]string{pricey: whyPrice, stale: whyStale, unlinked: whyNoLink, stranger: whyUntrusted, orgs: whyCircle}
	for id, why := range want {
		if got[id] != why {
			t.Errorf("%s: %q, want %q (all: %v)", id[:8], got[id], why, got)
		}
	}
	// Two dispatches a minute: the third is resource_exhausted.
	r.d.Dispatch(context.Background(), req)
	if _, err := r.d.Dispatch(context.Background(), req); api.CodeOf(err) != api.CodeResourceExhausted {
		t.Errorf("third call in a minute: %v", err)
	}
	// Bad scope values are invalid_argument.
	for _, sc := range []api.ScopeParams{{Policy: "random"}, {MinTrustCircle: "friends"}, {PeerID: r.d.me}} {
		sc.Target = api.ScopeGrid
		if _, err := r.d.Dispatch(context.Background(), kernel.GridRequest{Command: "demo/x", Scope: &sc}); api.CodeOf(err) != api.CodeInvalidArgument {
			t.Errorf("scope %+v: %v", sc, err)
		}
	}
}

// A manifest is taken only from its own origin: one signed by X that
// speaks for Y is ignored; X's own goes in the index.
func TestManifestOnlyFromItsOrigin(t *testing.T) {
	r := newRig(t)
	x, _ := identity.Generate()
	y, _ := identity.Generate()
	if _, err := r.ts.Put(trust.Record{PeerID: x.PeerID(), Circle: trust.CircleHousehold}); err != nil {
		t.Fatal(err)
	}
	var prev [32]byte
	for i, speaksFor := range []string{y.PeerID(), x.PeerID()} {
		m := api.Manifest{PeerID: speaksFor, AdvertisedAtMs: time.Now().UnixMilli(), Offers: []api.Offer{{Capability: "demo/x", Command: "demo/x"}}}
		ev := api.Event{ID: fmt.Sprint("m", i), Class: api.EventPeerManifest, Channel: "global", Origin: x.PeerID(), OriginSeq: uint64(i + 1),
			Prev: bytes.Clone(prev[:]), Sender: Sender, Lamport: uint64(i + 1), TS: time.Now().UnixMilli(), SchemaVersion: ManifestSchema, Payload: m}
		if err := airc.SignEvent(x, &ev); err != nil {
			t.Fatal(err)
		}
		if _, out, err := r.k.Log().Ingest(context.Background(), ev); err != nil {
			t.Fatalf("ingest: %v %v", out, err)
		}
		h, _ := airc.HashOf(&ev)
		prev = h
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.d.links.Counters().Get("manifest.received") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("x's own manifest never reached the index")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := r.d.links.Counters().Get("manifest.ignored"); n != 1 {
		t.Errorf("manifest.ignored = %d, want 1 (x speaking for y)", n)
	}
	routes := r.d.Routes("demo/x").Routes
	if len(routes) != 1 || routes[0].PeerID != x.PeerID() {
		t.Errorf("routes %+v, want x only", routes)
	}
	if r.d.ix.has(y.PeerID()) {
		t.Error("y is in the index on x's word")
	}
}

// The load ceiling refuses work while the machine is at it.
func TestInboundLoadCeiling(t *testing.T) {
	r := newRig(t)
	writeFile(t, r.k.StateDir(), `{"inbound": {"loadCeiling": 1.5}}`)
	if res := r.d.Reload(); !res.Loaded {
		t.Fatal(res.Reason)
	}
	defer func() { loadNow = machineLoad }()
	loadNow = func() float64 { return 2 }
	if _, err := r.run(t, runRequest{Job: "1", Command: "demo/slow", ForwardedBy: []string{r.peerID}}); reasonOf(err) != ReasonOverloaded {
		t.Errorf("at load 2, ceiling 1.5: %v", err)
	}
	loadNow = func() float64 { return 0.5 }
	if _, err := r.run(t, runRequest{Job: "2", Command: "demo/slow", ForwardedBy: []string{r.peerID}}); err != nil {
		t.Errorf("at load 0.5: %v", err)
	}
	if l := machineLoad(); l < 0 {
		t.Errorf("machine load %v", l)
	}
}
