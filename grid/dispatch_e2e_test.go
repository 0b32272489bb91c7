package grid_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/daemon"
	"github.com/continuum-grid/continuum/grid"
	"github.com/continuum-grid/continuum/grid/dispatch"
	"github.com/continuum-grid/continuum/ipc/client"
	"github.com/continuum-grid/continuum/kernel"
)

// fastDispatch shortens the manifest timers so tests see offers come and go.
var fastDispatch = dispatch.Options{Heartbeat: 200 * time.Millisecond, Stale: 3 * time.Second, Gone: 4 * time.Second, Check: 100 * time.Millisecond}

type echoParams struct {
	Text  string `msgpack:"text"`
	Sleep int    `msgpack:"sleep"`
}

// serve provides a grid command from a client of n that answers
// {text, by: tag}, after sleep ms; started receives each invocation.
func (n *node) serve(name, tag string, idempotent bool, terms *api.Terms, started chan<- string) *client.Client {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, n.d.SocketPath())
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { c.Close() })
	err = c.Provide(ctx, api.RegisterParams{Name: name, NaturalScope: api.ScopeGrid, Idempotent: idempotent, Terms: terms}, func(ctx context.Context, inv *client.Invocation) (any, error) {
		var p echoParams
		if err := inv.Params.Decode(&p); err != nil {
			return nil, err
		}
		if started != nil {
			started <- tag
		}
		if p.Sleep > 0 {
			select {
			case <-time.After(time.Duration(p.Sleep) * time.Millisecond):
			case <-ctx.Done():
				if started != nil {
					started <- "cancelled:" + tag
				}
				return nil, ctx.Err()
			}
		}
		return map[string]any{"text": p.Text, "by": tag}, nil
	})
	if err != nil {
		n.t.Fatal(err)
	}
	return c
}

func (n *node) routes(capability string) []api.GridRoute {
	n.t.Helper()
	var r api.RoutesResult
	n.must(api.MethodGridRoutes, api.RoutesParams{Capability: capability}, &r)
	return r.Routes
}

// offeredBy reports whether n's index has a live route for capability at peer.
func (n *node) offeredBy(capability string, peer *node) bool {
	for _, r := range n.routes(capability) {
		if r.PeerID == peer.id && r.State == "live" && r.LinkUp {
			return true
		}
	}
	return false
}

type echoResult struct {
	Text string `msgpack:"text"`
	By   string `msgpack:"by"`
}

func (n *node) exec(command string, scope api.ScopeParams, p echoParams) (echoResult, error) {
	var r echoResult
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	scope.Target = api.ScopeGrid
	err := n.c.Execute(ctx, api.ExecuteParams{Command: command, Params: p, Scope: &scope}, &r)
	return r, err
}

func dataOf(err error) map[string]any {
	if ae, ok := err.(*api.Error); ok {
		return api.AsMap(ae.Data)
	}
	return nil
}

func (n *node) writePolicy(text string) {
	n.t.Helper()
	if err := os.WriteFile(filepath.Join(n.dir, "state", "policy.json"), []byte(text), 0o600); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node) reload() api.PolicyReloadResult {
	n.t.Helper()
	var r api.PolicyReloadResult
	n.must(api.MethodGridPolicyReload, api.Empty{}, &r)
	return r
}

// Three daemons: b and c offer demo/echo on different terms; a routes to
// them by each strategy, sees each typed failure, and loses c's offers when
// c goes.
func TestDispatchThreeDaemons(t *testing.T) {
	a, b, c := startNode(t), startNode(t), startNode(t)
	// a and c trust each other in trusted-orgs, and their policies send work
	// to and take work from that circle too; b is household to both.
	for _, n := range []*node{a, c} {
		n.writePolicy(`{"outbound": {"circles": ["household", "trusted-orgs"]}, "inbound": {"circles": ["household", "trusted-orgs"]},
			"tests": [{"direction": "outbound", "circle": "trusted-orgs", "command": "demo/echo", "expect": "allow"},
			          {"direction": "inbound", "circle": "public-mesh", "command": "demo/echo", "expect": "deny"}]}`)
		if r := n.reload(); !r.Loaded || r.Tests != 2 {
			t.Fatalf("reload: %+v", r)
		}
	}
	join(t, a, b, "household")
	join(t, a, c, "trusted-orgs")
	join(t, b, c, "household")
	b.serve("demo/echo", "b", true, &api.Terms{Price: 2, EstLatencyMs: 5}, nil)
	c.serve("demo/echo", "c", true, &api.Terms{Price: 1, EstLatencyMs: 50}, nil)

	eventually(t, 10*time.Second, "a's index has demo/echo at b and c", func() bool {
		return a.offeredBy("demo/echo", b) && a.offeredBy("demo/echo", c)
	})
	for _, r := range a.routes("demo/echo") {
		if r.Circle != map[string]string{b.id: "household", c.id: "trusted-orgs"}[r.PeerID] || r.Command != "demo/echo" || r.Terms.MaxConcurrent == 0 {
			t.Errorf("route %+v", r)
		}
	}
	eventually(t, 10*time.Second, "b's index has demo/echo at c", func() bool { return b.offeredBy("demo/echo", c) })

	lower, higher := b, c
	if c.id < b.id {
		lower, higher = c, b
	}
	tag := map[*node]string{b: "b", c: "c"}
	for _, tc := range []struct {
		strategy string
		want     string
	}{
		{"cheapest", "c"},            // price 1 < 2
		{"fastest", "b"},             // 5 ms < 50 ms
		{"closest", "b"},             // household before trusted-orgs
		{"load-balance", tag[lower]}, // both idle: lower peer id
	} {
		for i := 0; i < 3; i++ { // deterministic: the same pick every time
			r, err := a.exec("demo/echo", api.ScopeParams{Policy: tc.strategy}, echoParams{Text: "hi"})
			if err != nil || r.By != tc.want || r.Text != "hi" {
				t.Fatalf("%s: %+v %v, want by %s", tc.strategy, r, err, tc.want)
			}
		}
	}
	// load-balance spreads: with a slow call in flight to the lower peer id,
	// the next goes to the other.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if r, err := a.exec("demo/echo", api.ScopeParams{Policy: "load-balance"}, echoParams{Text: "slow", Sleep: 600}); err != nil || r.By != tag[lower] {
			t.Errorf("slow load-balance call: %+v %v", r, err)
		}
	}()
	time.Sleep(200 * time.Millisecond)
	if r, err := a.exec("demo/echo", api.ScopeParams{Policy: "load-balance"}, echoParams{Text: "x"}); err != nil || r.By != tag[higher] {
		t.Errorf("load-balance with the lower peer busy: %+v %v, want %s", r, err, tag[higher])
	}
	wg.Wait()
	// minTrustCircle household leaves c out.
	if r, err := a.exec("demo/echo", api.ScopeParams{Policy: "cheapest", MinTrustCircle: "household"}, echoParams{}); err != nil || r.By != "b" {
		t.Errorf("cheapest, household only: %+v %v", r, err)
	}
	// No scope at all: a has no demo/echo, a peer offers it, so it runs
	// there (its natural scope is grid); a command nobody offers is unknown.
	var plain echoResult
	if err := a.c.Execute(context.Background(), api.ExecuteParams{Command: "demo/echo", Params: echoParams{Text: "plain"}}, &plain); err != nil || plain.Text != "plain" {
		t.Errorf("no scope: %+v %v", plain, err)
	}
	if err := a.c.Execute(context.Background(), api.ExecuteParams{Command: "demo/nobody"}, nil); codeOf(err) != api.CodeUnknownMethod {
		t.Errorf("no scope, nobody offers: %v", err)
	}
	if err := a.c.Execute(context.Background(), api.ExecuteParams{Command: "demo/echo", Scope: &api.ScopeParams{Target: api.ScopeEnvironment}}, nil); codeOf(err) != api.CodeUnknownMethod {
		t.Errorf("scope environment for a command a lacks: %v", err)
	}
	// An explicit peer.
	if r, err := a.exec("demo/echo", api.ScopeParams{PeerID: b.id}, echoParams{Text: "to b"}); err != nil || r.By != "b" {
		t.Errorf("peerId b: %+v %v", r, err)
	}

	// no_matching_peer, with what was considered.
	_, err := a.exec("demo/nobody", api.ScopeParams{}, echoParams{})
	if codeOf(err) != api.CodeNoMatchingPeer || dataOf(err)["considered"] == nil {
		t.Errorf("nobody offers: %v %+v", err, dataOf(err))
	}
	_, err = a.exec("demo/echo", api.ScopeParams{Policy: "random"}, echoParams{})
	if codeOf(err) != api.CodeInvalidArgument {
		t.Errorf("bad strategy: %v", err)
	}

	// Loop detection: a offers demo/back; asked on b (which lacks it), b
	// would pass it on to a, which the request already passed.
	a.serve("demo/back", "a", false, nil, nil)
	eventually(t, 10*time.Second, "b's index has demo/back at a", func() bool { return b.offeredBy("demo/back", a) })
	_, err = a.exec("demo/back", api.ScopeParams{PeerID: b.id}, echoParams{})
	if codeOf(err) != api.CodeNoMatchingPeer {
		t.Fatalf("a→b→a: %v, want no_matching_peer", err)
	}
	cons, _ := dataOf(err)["considered"].([]any)
	if len(cons) != 1 || api.AsMap(cons[0])["reason"] != "in_forwarded_by" || api.AsMap(cons[0])["peerId"] != a.id {
		t.Errorf("a→b→a considered %v", cons)
	}
	// ... while c, which lacks it too, passes it on to a when asked by b.
	if r, err := b.exec("demo/back", api.ScopeParams{PeerID: c.id}, echoParams{Text: "via c"}); err != nil || r.By != "a" {
		t.Errorf("b→c→a: %+v %v", r, err)
	}

	// Inbound limits: b takes one job at a time.
	b.writePolicy(`{"inbound": {"circles": ["household"], "maxConcurrentJobs": 1}}`)
	if r := b.reload(); !r.Loaded || r.Source != "file" {
		t.Fatalf("reload: %+v", r)
	}
	errs := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() {
			_, err := a.exec("demo/echo", api.ScopeParams{PeerID: b.id}, echoParams{Sleep: 500})
			errs <- err
		}()
	}
	var ok, busy int
	for i := 0; i < 2; i++ {
		err := <-errs
		switch {
		case err == nil:
			ok++
		case codeOf(err) == api.CodeNoAcceptingPeer:
			tried, _ := dataOf(err)["tried"].([]any)
			if len(tried) == 1 && api.AsMap(tried[0])["reason"] == "busy" {
				busy++
			} else {
				t.Errorf("refusal data %+v", dataOf(err))
			}
		default:
			t.Errorf("second caller: %v", err)
		}
	}
	if ok != 1 || busy != 1 {
		t.Errorf("max concurrent 1 with two callers: %d ran, %d refused busy", ok, busy)
	}
	if n := b.status().Counters["inbound.refused.busy"]; n != 1 {
		t.Errorf("b's inbound.refused.busy = %d", n)
	}
	if st := a.status(); st.Counters["dispatch.ok"] == 0 || st.Counters["dispatch.refused.busy"] != 1 || st.Counters["manifest.received"] == 0 || st.Counters["manifest.sent"] == 0 {
		t.Errorf("a's counters %v", st.Counters)
	}
	// A refused peer is not the end: without peerId, c takes it.
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.exec("demo/echo", api.ScopeParams{PeerID: b.id}, echoParams{Sleep: 500})
	}()
	time.Sleep(150 * time.Millisecond)
	if r, err := a.exec("demo/echo", api.ScopeParams{Policy: "fastest"}, echoParams{Text: "y"}); err != nil || r.By != "c" {
		t.Errorf("b busy, fastest: %+v %v, want c", r, err)
	}
	wg.Wait()

	// A reload whose tests fail keeps the policy in force.
	b.writePolicy(`{"inbound": {"circles": ["trusted-orgs"], "maxConcurrentJobs": 3},
		"tests": [{"name": "household may call echo", "direction": "inbound", "circle": "household", "command": "demo/echo", "expect": "allow"}]}`)
	if r := b.reload(); r.Loaded || r.Reason == "" {
		t.Errorf("failing tests: %+v, want the old policy kept", r)
	} else {
		t.Logf("kept: %s", r.Reason)
	}
	if p := b.d.Grid().Dispatcher().Policy(); p.Inbound.MaxConcurrentJobs != 1 {
		t.Errorf("policy in force after a refused reload: %+v", p.Inbound)
	}
	// Inbound circles: b stops taking household work; a's call is refused
	// with the reason, and goes to c instead when a may choose.
	b.writePolicy(`{"inbound": {"circles": ["trusted-orgs"]}}`)
	if r := b.reload(); !r.Loaded {
		t.Fatalf("reload: %+v", r)
	}
	_, err = a.exec("demo/echo", api.ScopeParams{PeerID: b.id}, echoParams{})
	if tried, _ := dataOf(err)["tried"].([]any); codeOf(err) != api.CodeNoAcceptingPeer || len(tried) != 1 || api.AsMap(tried[0])["reason"] != "circle_not_accepted" {
		t.Errorf("b refuses household: %v %+v", err, dataOf(err))
	}
	if r, err := a.exec("demo/echo", api.ScopeParams{Policy: "fastest"}, echoParams{}); err != nil || r.By != "c" {
		t.Errorf("b refuses, fastest: %+v %v", r, err)
	}
	b.writePolicy("")
	if r := b.reload(); !r.Loaded {
		t.Fatalf("reload of an empty file: %+v", r)
	}

	// Untrust takes a peer out of routing at once.
	a.must(api.MethodGridUntrust, api.UntrustParams{PeerID: b.id}, nil)
	_, err = a.exec("demo/echo", api.ScopeParams{PeerID: b.id}, echoParams{})
	if codeOf(err) != api.CodeNoMatchingPeer {
		t.Errorf("untrusted b: %v", err)
	}
	for i := 0; i < 3; i++ {
		if r, err := a.exec("demo/echo", api.ScopeParams{Policy: "fastest"}, echoParams{}); err != nil || r.By != "c" {
			t.Errorf("after untrust, fastest: %+v %v, want c", r, err)
		}
	}
}

// A peer lost mid-call: an idempotent command is retried on another peer,
// a non-idempotent one fails with peer_unreachable and the alternates.
// Then the lost peer's offers leave the index.
func TestDispatchPeerDiesMidCall(t *testing.T) {
	a, b, c := startNode(t), startNode(t), startNode(t)
	join(t, a, b, "household")
	join(t, a, c, "household")
	started := make(chan string, 8)
	for _, n := range []*node{b, c} {
		tag := map[*node]string{b: "b", c: "c"}[n]
		price := map[*node]float64{b: 2, c: 1}[n]
		n.serve("demo/retry", tag, true, &api.Terms{Price: price}, started)
		n.serve("demo/once", tag, false, &api.Terms{Price: price}, started)
	}
	eventually(t, 10*time.Second, "a's index has b and c", func() bool {
		return a.offeredBy("demo/retry", b) && a.offeredBy("demo/retry", c) && a.offeredBy("demo/once", b) && a.offeredBy("demo/once", c)
	})
	// c is cheapest; it dies while running demo/once.
	errc := make(chan error, 1)
	go func() {
		_, err := a.exec("demo/once", api.ScopeParams{Policy: "cheapest"}, echoParams{Sleep: 3000})
		errc <- err
	}()
	if who := nextRun(started); who != "c" {
		t.Fatalf("cheapest went to %s", who)
	}
	// Kill c's links only, the way a crash or a cut cable looks from a.
	c.d.Grid().Links().Close()
	err := <-errc
	if codeOf(err) != api.CodePeerUnreachable || dataOf(err)["peerId"] != c.id {
		t.Fatalf("non-idempotent, c lost: %v %+v", err, dataOf(err))
	}
	if alt, _ := dataOf(err)["alternates"].([]any); len(alt) != 1 || alt[0] != b.id {
		t.Errorf("alternates %v, want [b]", dataOf(err)["alternates"])
	}
	time.Sleep(100 * time.Millisecond)
	for len(started) > 0 {
		if who := <-started; !strings.HasPrefix(who, "cancelled:") {
			t.Fatalf("a non-idempotent command ran again, on %s", who)
		}
	}
	// c's links are closed for good: the idempotent command goes to b at
	// once (c has no link).
	r, err := a.exec("demo/retry", api.ScopeParams{Policy: "cheapest"}, echoParams{Text: "again"})
	if err != nil || r.By != "b" {
		t.Fatalf("retry after c lost: %+v %v", r, err)
	}
	nextRun(started)
	// And c's offers leave a's index once its manifest is gone.
	eventually(t, 20*time.Second, "c's offers gone from a's index", func() bool {
		for _, r := range a.routes("") {
			if r.PeerID == c.id {
				return false
			}
		}
		return true
	})
}

// An idempotent command whose peer is lost mid-call runs again elsewhere.
func TestDispatchIdempotentRetriedElsewhere(t *testing.T) {
	a, b, c := startNode(t), startNode(t), startNode(t)
	join(t, a, b, "household")
	join(t, a, c, "household")
	started := make(chan string, 8)
	b.serve("demo/retry", "b", true, &api.Terms{Price: 2}, started)
	c.serve("demo/retry", "c", true, &api.Terms{Price: 1}, started)
	eventually(t, 10*time.Second, "a's index has b and c", func() bool {
		return a.offeredBy("demo/retry", b) && a.offeredBy("demo/retry", c)
	})
	type res struct {
		r   echoResult
		err error
	}
	done := make(chan res, 1)
	go func() {
		r, err := a.exec("demo/retry", api.ScopeParams{Policy: "cheapest"}, echoParams{Text: "idem", Sleep: 300})
		done <- res{r, err}
	}()
	if who := nextRun(started); who != "c" {
		t.Fatalf("cheapest went to %s", who)
	}
	c.d.Grid().Links().Close()
	got := <-done
	if got.err != nil || got.r.By != "b" || got.r.Text != "idem" {
		t.Fatalf("idempotent retried: %+v %v, want b", got.r, got.err)
	}
	if who := nextRun(started); who != "b" {
		t.Errorf("second run on %s", who)
	}
}

// A caller that gives up cancels the job on the peer, down to its provider;
// a deadline does the same and answers deadline_exceeded.
func TestDispatchCallerCancelReachesTheProvider(t *testing.T) {
	a, b := startNode(t), startNode(t)
	join(t, a, b, "household")
	started := make(chan string, 8)
	b.serve("demo/echo", "b", false, nil, started)
	eventually(t, 10*time.Second, "a's index has b", func() bool { return a.offeredBy("demo/echo", b) })

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- a.c.Execute(ctx, api.ExecuteParams{Command: "demo/echo", Params: echoParams{Sleep: 30000}, Scope: &api.ScopeParams{Target: api.ScopeGrid}}, nil)
	}()
	if s := <-started; s != "b" {
		t.Fatalf("started %s", s)
	}
	cancel()
	select {
	case s := <-started:
		if s != "cancelled:b" {
			t.Fatalf("got %s", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the provider on b was not cancelled when the caller on a gave up")
	}
	<-errc

	start := time.Now()
	err := a.c.Execute(context.Background(), api.ExecuteParams{Command: "demo/echo", Params: echoParams{Sleep: 30000}, Scope: &api.ScopeParams{Target: api.ScopeGrid}, TimeoutMs: 300}, nil)
	if codeOf(err) != api.CodeDeadlineExceeded || time.Since(start) > 5*time.Second {
		t.Errorf("deadline: %v after %s", err, time.Since(start))
	}
	<-started
	select {
	case s := <-started:
		if s != "cancelled:b" {
			t.Errorf("got %s", s)
		}
	case <-time.After(5 * time.Second):
		t.Error("the provider on b was not cancelled at the deadline")
	}
}

// nextRun is the next provider start, skipping cancellations.
func nextRun(started chan string) string {
	for {
		if who := <-started; !strings.HasPrefix(who, "cancelled:") {
			return who
		}
	}
}

// Bad params of the dispatch methods and of grid registrations are typed
// errors, and the daemon serves on.
func TestDispatchBadParams(t *testing.T) {
	a := startNode(t)
	if err := a.call(api.MethodGridRoutes, map[string]any{"capability": 5}, nil); codeOf(err) != api.CodeInvalidArgument {
		t.Errorf("routes with a number: %v", err)
	}
	if err := a.call(api.MethodGridPolicyReload, []int{1}, nil); codeOf(err) != api.CodeInvalidArgument {
		t.Errorf("policy-reload with an array: %v", err)
	}
	for _, reg := range []api.RegisterParams{
		{Name: "demo/a", Capability: "x"},                                                     // environment
		{Name: "demo/b", NaturalScope: api.ScopeGrid, Terms: &api.Terms{Price: -1}},           // negative price
		{Name: "demo/c", NaturalScope: api.ScopeGrid, Capability: string(make([]byte, 5000))}, // oversized
	} {
		if err := a.call(api.MethodRegister, reg, nil); codeOf(err) != api.CodeInvalidArgument {
			t.Errorf("register %+v: %v", reg.Name, err)
		}
	}
	var routes api.RoutesResult
	a.must(api.MethodGridRoutes, api.RoutesParams{}, &routes)
	if len(routes.Routes) != 0 {
		t.Errorf("routes of a lone install: %+v", routes)
	}
	// A grid command can be registered, and a lone install publishes no
	// manifest (no peer to tell): the log stays free of presence events.
	a.must(api.MethodRegister, api.RegisterParams{Name: "demo/ok", NaturalScope: api.ScopeGrid, Capability: "demo:ok", Terms: &api.Terms{Price: 1, Currency: "credits"}}, nil)
	time.Sleep(300 * time.Millisecond)
	var cmds []api.CommandInfo
	a.must(api.MethodListCommands, api.Empty{}, &cmds)
	found := false
	for _, c := range cmds {
		if c.Name == "demo/ok" {
			found = c.Capability == "demo:ok" && c.Terms != nil && c.Terms.Currency == "credits"
		}
	}
	if !found {
		t.Errorf("commands/list does not show demo/ok's capability and terms: %+v", cmds)
	}
	var stats api.LogStats
	a.must(api.MethodLogStats, api.Empty{}, &stats)
	if stats.Events != 0 {
		t.Errorf("a lone install logged %d events", stats.Events)
	}
}

// A daemon does not start on a policy file it cannot read, and says why.
func TestDaemonRefusesABadPolicyFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "policy.json"), []byte(`{"inbound": {"circles": ["friends"]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := daemon.Start(daemon.Config{Kernel: kernel.Config{StateDir: state}, Socket: filepath.Join(dir, "d.sock"), Grid: grid.Options{ListenQUIC: "127.0.0.1:0"}})
	if err == nil {
		d.Shutdown(context.Background())
		t.Fatal("started on a bad policy file")
	}
	if !strings.Contains(err.Error(), `inbound.circles: "friends"`) {
		t.Errorf("error %v does not name the field", err)
	}
}
