package grid_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/grid"
	"github.com/continuum-grid/continuum/grid/contract"
	"github.com/continuum-grid/continuum/ipc/client"
	"github.com/continuum-grid/continuum/kernel/airc"
	"github.com/continuum-grid/continuum/kernel/identity"
)

func dialNode(n *node) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return client.Dial(ctx, n.d.SocketPath())
}

func startNodeWith(t *testing.T, tweak func(*grid.Options)) *node {
	t.Helper()
	dir, err := os.MkdirTemp("", "cgrid")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := &node{t: t, dir: dir, listen: "127.0.0.1:0", tweak: tweak}
	n.start()
	t.Cleanup(n.stop)
	return n
}

// triangle links a, b and c pairwise in household.
func triangle(t *testing.T, a, b, c *node) {
	t.Helper()
	join(t, a, b, "household")
	join(t, a, c, "household")
	join(t, b, c, "household")
}

func (n *node) propose(p api.ContractProposeParams) (api.ContractProposeResult, error) {
	var r api.ContractProposeResult
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := n.c.Call(ctx, api.MethodContractPropose, p, &r)
	return r, err
}

func (n *node) contract(id string) (api.Contract, error) {
	var c api.Contract
	err := n.call(api.MethodContractGet, api.ContractGetParams{ContractID: id}, &c)
	return c, err
}

func (n *node) contracts() api.ContractListResult {
	n.t.Helper()
	var r api.ContractListResult
	n.must(api.MethodContractList, api.ContractListParams{}, &r)
	return r
}

// audit is what every peer must agree on: the state and the chain and
// refusals (the deadline is derived from them too).
func audit(t *testing.T, c api.Contract) string {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sameEverywhere waits until every node reconstructs the contract exactly
// as the first, in state, and returns it.
func sameEverywhere(t *testing.T, id, state string, nodes ...*node) api.Contract {
	t.Helper()
	var want api.Contract
	eventually(t, 20*time.Second, "contract "+id+" "+state+" and identical on every peer", func() bool {
		var first string
		for i, n := range nodes {
			c, err := n.contract(id)
			if err != nil || c.State != state {
				return false
			}
			if i == 0 {
				want, first = c, audit(t, c)
			} else if audit(t, c) != first {
				return false
			}
		}
		return true
	})
	return want
}

func reasons(c api.Contract) []string {
	var out []string
	for _, r := range c.Refused {
		out = append(out, r.Event.Class+"="+r.Reason)
	}
	return out
}

func classes(c api.Contract) []string {
	var out []string
	for _, e := range c.Chain {
		out = append(out, strings.TrimPrefix(e.Class, "contract:"))
	}
	return out
}

// Three daemons: b and c bid on a's contracts from their offer terms; the
// strategy picks, the executor delivers a signed receipt, a verifies and
// pays; every peer reconstructs the same chain, and the reservations are
// released.
func TestContractChainToPaidAndStrategies(t *testing.T) {
	a, b, c := startNode(t), startNode(t), startNode(t)
	triangle(t, a, b, c)
	b.serve("demo/echo", "b", false, &api.Terms{Price: 2, EstLatencyMs: 10}, nil)
	c.serve("demo/echo", "c", false, &api.Terms{Price: 1, EstLatencyMs: 500}, nil)

	for _, tc := range []struct {
		strategy, want string
	}{{"cheapest", c.id}, {"fastest", b.id}} {
		r, err := a.propose(api.ContractProposeParams{Command: "demo/echo", Params: echoParams{Text: "hi " + tc.strategy},
			MaxBid: 5, BidCurrency: "credit", ExpiryMs: 800, Strategy: tc.strategy, Wait: true})
		if err != nil {
			t.Fatalf("%s: propose: %v", tc.strategy, err)
		}
		ct := r.Contract
		if ct.State != contract.StatePaid || ct.AcceptedBidderID != tc.want {
			t.Fatalf("%s: contract %s accepted %s, want paid by %s; chain %v refused %v", tc.strategy, ct.State, ct.AcceptedBidderID, tc.want, classes(ct), reasons(ct))
		}
		var res echoResult
		if err := api.Assign(&res, r.Result); err != nil || res.Text != "hi "+tc.strategy {
			t.Fatalf("%s: result %+v (%v)", tc.strategy, res, err)
		}
		got := sameEverywhere(t, ct.ContractID, contract.StatePaid, a, b, c)
		if want := "proposed bid bid accepted executing delivered verified paid"; strings.Join(classes(got), " ") != want {
			t.Fatalf("%s: chain %v, want %s", tc.strategy, classes(got), want)
		}
		if len(got.Refused) != 0 || len(got.DeliveredAlloyHash) != 64 {
			t.Fatalf("%s: refused %v, delivered %q", tc.strategy, reasons(got), got.DeliveredAlloyHash)
		}
		wantAmount := map[string]float64{b.id: 2, c.id: 1}[tc.want]
		if got.Amount != wantAmount {
			t.Fatalf("%s: amount %g, want %g", tc.strategy, got.Amount, wantAmount)
		}
		// The proposer verified the receipt through alloy/verify, which stored it.
		var entry api.AlloyEntry
		a.must(api.MethodAlloyGet, api.AlloyHashParams{Hash: got.DeliveredAlloyHash}, &entry)
	}
	for _, n := range []*node{b, c} {
		eventually(t, 10*time.Second, "reservations released on "+n.id[:8], func() bool { return len(n.contracts().Reservations) == 0 })
	}
	if l := a.contracts(); len(l.Contracts) != 2 {
		t.Fatalf("a lists %d contracts, want 2", len(l.Contracts))
	}
	var paid api.ContractListResult
	c.must(api.MethodContractList, api.ContractListParams{State: contract.StatePaid}, &paid)
	if len(paid.Contracts) != 2 {
		t.Fatalf("c lists %d paid contracts, want 2", len(paid.Contracts))
	}
}

// No one offers the command: the contract expires at its window.
func TestContractExpiresWithNoBids(t *testing.T) {
	a, b := startNode(t), startNode(t)
	join(t, a, b, "household")
	r, err := a.propose(api.ContractProposeParams{Command: "nobody/serves", ExpiryMs: 200, Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Contract.State != contract.StateExpired || !strings.HasPrefix(r.Contract.Verdict, contract.CodeExpired) {
		t.Fatalf("contract %s (%s), want expired", r.Contract.State, r.Contract.Verdict)
	}
	sameEverywhere(t, r.Contract.ContractID, contract.StateExpired, a, b)
}

// An executor whose result is not what its receipt signed: the proposer's
// verification fails and the contract is disputed, naming the delivery.
func TestContractFailedVerificationIsDisputed(t *testing.T) {
	a := startNode(t)
	b := startNodeWith(t, func(g *grid.Options) {
		g.Contract.Tamper = func(res []byte) []byte { return append(bytes.Clone(res), 0xc0) }
	})
	join(t, a, b, "household")
	b.serve("demo/echo", "b", false, nil, nil)
	r, err := a.propose(api.ContractProposeParams{Command: "demo/echo", Params: echoParams{Text: "x"}, ExpiryMs: 300, Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	got := sameEverywhere(t, r.Contract.ContractID, contract.StateDisputed, a, b)
	if want := "proposed bid accepted executing delivered verified disputed"; strings.Join(classes(got), " ") != want {
		t.Fatalf("chain %v, want %s", classes(got), want)
	}
	if !strings.Contains(got.Verdict, "outputHash") && !strings.Contains(got.Verdict, "alloy/verify") {
		t.Fatalf("verdict %q does not say what failed", got.Verdict)
	}
	if r.Result != nil {
		t.Fatalf("a disputed contract returned a result: %v", r.Result)
	}
}

// The accepted bidder dies mid-job: the contract fails (executor_lost),
// and the chain says so on the survivors.
func TestContractBidderDiesAfterAcceptance(t *testing.T) {
	a, b, c := startNode(t), startNode(t), startNode(t)
	triangle(t, a, b, c)
	started := make(chan string, 4)
	b.serve("demo/echo", "b", false, nil, started)
	done := make(chan api.ContractProposeResult, 1)
	go func() {
		r, err := a.propose(api.ContractProposeParams{Command: "demo/echo", Params: echoParams{Text: "slow", Sleep: 20000}, ExpiryMs: 300, Wait: true})
		if err != nil {
			t.Errorf("propose: %v", err)
		}
		done <- r
	}()
	select {
	case <-started:
	case <-time.After(15 * time.Second):
		t.Fatal("the job never started on b")
	}
	b.stop()
	var r api.ContractProposeResult
	select {
	case r = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the proposer never ended the contract")
	}
	got := sameEverywhere(t, r.Contract.ContractID, contract.StateFailed, a, c)
	if !strings.HasPrefix(got.Verdict, contract.CodeExecutorLost) && !strings.HasPrefix(got.Verdict, contract.CodeNotDelivered) {
		t.Fatalf("verdict %q, want executor_lost or not_delivered", got.Verdict)
	}
}

// A third peer emits contract events that do not fit a's contract; every
// peer refuses the same ones for the same reasons. Forged and relabelled
// contract events never get that far: airc's signature check refuses them
// at admission on every peer.
func TestContractEventsThatDoNotFitAreRefusedEverywhere(t *testing.T) {
	a, b, c := startNode(t), startNode(t), startNode(t)
	triangle(t, a, b, c)
	r, err := a.propose(api.ContractProposeParams{Command: "nobody/serves", ExpiryMs: 1500})
	if err != nil {
		t.Fatal(err)
	}
	id := r.Contract.ContractID
	eventually(t, 10*time.Second, "c sees the proposal", func() bool { _, err := c.contract(id); return err == nil })
	ck := c.d.Kernel()
	ctx := context.Background()
	hex64 := strings.Repeat("ab", 32)
	for _, e := range []api.EmitParams{
		{Name: api.EventContractAccepted, Payload: api.ContractAccepted{ContractID: id, ProposerID: c.id, AcceptedBidderID: c.id}},      // not_proposer
		{Name: api.EventContractBid, Payload: api.ContractBid{ContractID: id, BidderID: b.id, BidAmount: 0}},                            // actor_not_origin
		{Name: api.EventContractDelivered, Payload: api.ContractDelivered{ContractID: id, ExecutorID: c.id, DeliveredAlloyHash: hex64}}, // not_executor
		{Name: api.EventContractBid, Payload: api.ContractBid{ContractID: id, BidderID: c.id, BidAmount: 99}},                           // over_max_bid
		{Name: api.EventContractBid, Payload: map[string]any{"contractId": id, "bidderId": 7}},                                          // bad_payload
		{Name: api.EventContractExecuting, Payload: api.ContractExecuting{ContractID: "ct-unknown", ExecutorID: c.id}},                  // unknown_contract
	} {
		if _, err := ck.Emit(ctx, contract.Sender, e); err != nil {
			t.Fatalf("emit %s: %v", e.Name, err)
		}
	}
	got := sameEverywhere(t, id, contract.StateExpired, a, b, c)
	want := []string{"contract:accepted=not_proposer", "contract:bid=actor_not_origin", "contract:delivered=not_executor", "contract:bid=over_max_bid", "contract:bid=bad_payload"}
	if strings.Join(reasons(got), " ") != strings.Join(want, " ") {
		t.Fatalf("refused %v, want %v", reasons(got), want)
	}
	// After the end: a bid is refused as contract_ended, everywhere.
	if _, err := ck.Emit(ctx, contract.Sender, api.EmitParams{Name: api.EventContractBid, Payload: api.ContractBid{ContractID: id, BidderID: c.id}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the late bid refused on every peer", func() bool {
		for _, n := range []*node{a, b, c} {
			ct, err := n.contract(id)
			if err != nil || len(ct.Refused) != len(want)+1 || ct.Refused[len(want)].Reason != contract.ReasonEnded {
				return false
			}
		}
		return true
	})
	sameEverywhere(t, id, contract.StateExpired, a, b, c)
	unknown := sameEverywhere(t, "ct-unknown", "", a, b, c)
	if len(unknown.Refused) != 1 || unknown.Refused[0].Reason != contract.ReasonUnknownContract {
		t.Fatalf("ct-unknown refused %v", reasons(unknown))
	}

	// Forged (signed by a key that is not its origin's) and relabelled (a
	// bid signed by c, its class changed to accepted) contract events are
	// rejected by every peer's log before the tracker sees them.
	mallory, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	forged := api.Event{ID: "forged-1", Class: api.EventContractPaid, Channel: "global", Origin: a.id, OriginSeq: 1000, Prev: make([]byte, 32),
		Sender: contract.Sender, Lamport: 1, TS: time.Now().UnixMilli(), SchemaVersion: api.ContractSchema,
		Payload: map[string]any{"contractId": id, "payerId": a.id, "payeeId": c.id, "amount": 0, "currency": ""}}
	forged.Origin = mallory.PeerID()
	if err := airc.SignEvent(mallory, &forged); err != nil {
		t.Fatal(err)
	}
	forged.Origin = a.id // signed as mallory, claimed as a
	cid, err := identity.LoadOrCreate(c.dir + "/state")
	if err != nil {
		t.Fatal(err)
	}
	relabelled := api.Event{ID: "relabel-1", Class: api.EventContractBid, Channel: "global", Origin: c.id, OriginSeq: 1001, Prev: make([]byte, 32),
		Sender: contract.Sender, Lamport: 2, TS: time.Now().UnixMilli(), SchemaVersion: api.ContractSchema,
		Payload: map[string]any{"contractId": id, "proposerId": c.id, "acceptedBidderId": c.id, "acceptedBidHash": hex64}}
	if cid.PeerID() != c.id {
		t.Fatalf("loaded identity %s, want c's %s", cid.PeerID(), c.id)
	}
	if err := airc.SignEvent(cid, &relabelled); err != nil {
		t.Fatal(err)
	}
	relabelled.Class = api.EventContractAccepted
	for _, n := range []*node{a, b, c} {
		res := n.d.Kernel().Log().IngestBatch(ctx, []api.Event{forged, relabelled})
		for i, r := range res {
			if r.Outcome != airc.IngestRejected {
				t.Fatalf("%s: event %d ingested as %v, want rejected", n.id[:8], i, r.Outcome)
			}
		}
	}
	got2 := sameEverywhere(t, id, contract.StateExpired, a, b, c)
	if audit(t, got2) != audit(t, got) && len(got2.Refused) != len(want)+1 {
		t.Fatalf("a rejected event reached the tracker: %v", reasons(got2))
	}
	for _, r := range got2.Refused {
		if r.Event.EventID == "forged-1" || r.Event.EventID == "relabel-1" {
			t.Fatalf("tracker saw %s", r.Event.EventID)
		}
	}
}

// c is down while a and b run a contract to paid; once c is back it
// reconstructs the very same chain from what replication brings.
func TestContractChainReconstructedAfterPartitionHeals(t *testing.T) {
	a, b, c := startNode(t), startNode(t), startNode(t)
	triangle(t, a, b, c)
	b.serve("demo/echo", "b", false, nil, nil)
	c.stop()
	r, err := a.propose(api.ContractProposeParams{Command: "demo/echo", Params: echoParams{Text: "while c is away"}, ExpiryMs: 300, Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Contract.State != contract.StatePaid {
		t.Fatalf("state %s (%s)", r.Contract.State, r.Contract.Verdict)
	}
	c.start()
	sameEverywhere(t, r.Contract.ContractID, contract.StatePaid, a, b, c)
}

func TestContractMethodsRefuseBadParams(t *testing.T) {
	a := startNode(t)
	for _, tc := range []struct {
		name   string
		method string
		params any
		want   string
	}{
		{"missing command", api.MethodContractPropose, map[string]any{}, "command"},
		{"command wrong type", api.MethodContractPropose, map[string]any{"command": 5}, "command"},
		{"bad strategy", api.MethodContractPropose, map[string]any{"command": "x", "strategy": "random"}, "strategy"},
		{"negative maxBid", api.MethodContractPropose, map[string]any{"command": "x", "maxBid": -1}, "maxBid"},
		{"expiry too short", api.MethodContractPropose, map[string]any{"command": "x", "expiryMs": 1}, "expiryMs"},
		{"deliver too long", api.MethodContractPropose, map[string]any{"command": "x", "deliverWithinMs": 1 << 40}, "deliverWithinMs"},
		{"oversized params", api.MethodContractPropose, map[string]any{"command": "x", "params": map[string]any{"blob": strings.Repeat("x", contract.MaxParamsBytes+1)}}, "params"},
		{"long currency", api.MethodContractPropose, map[string]any{"command": "x", "bidCurrency": strings.Repeat("c", 65)}, "bidCurrency"},
		{"get missing id", api.MethodContractGet, map[string]any{}, "contractId"},
		{"get wrong type", api.MethodContractGet, map[string]any{"contractId": []int{1}}, "contractId"},
		{"list bad state", api.MethodContractList, map[string]any{"state": "dancing"}, "state"},
	} {
		err := a.call(tc.method, tc.params, nil)
		if codeOf(err) != api.CodeInvalidArgument || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want invalid_argument naming %q", tc.name, err, tc.want)
		}
	}
	if err := a.call(api.MethodContractGet, api.ContractGetParams{ContractID: "ct-nope"}, nil); codeOf(err) != api.CodeNotFound {
		t.Errorf("get unknown: %v, want not_found", err)
	}
	// A client that vanishes mid-propose (wait) costs nobody else: the
	// daemon still answers, and the contract still ends.
	c2, err := dialNode(a)
	if err != nil {
		t.Fatal(err)
	}
	go c2.Call(context.Background(), api.MethodContractPropose, api.ContractProposeParams{Command: "nobody/serves", ExpiryMs: 200, Wait: true}, nil)
	time.Sleep(50 * time.Millisecond)
	c2.Close()
	eventually(t, 10*time.Second, "the abandoned contract expires", func() bool {
		var l api.ContractListResult
		return a.call(api.MethodContractList, api.ContractListParams{State: contract.StateExpired}, &l) == nil && len(l.Contracts) == 1
	})
}
