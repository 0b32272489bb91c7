package grid_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/client"
)

// A contracted dispatch of a trivial command across two real daemons over
// loopback QUIC (docs/BENCHMARKS.md): A proposes, B bids from its offer
// terms, A accepts after the bid window (the shortest, 50 ms, plus the
// 150 ms grace for late bids), B runs the command, signs the receipt and
// delivers, A verifies (alloy/verify) and pays. One op is one whole
// contract, propose to paid, with the caller waiting:
//
//	go test ./grid -run '^$' -bench 'Contract|GridCommand/remote/callers=1' -benchtime 20x
//
// Metrics: propose→delivered-ms (the figure, from the chain's own
// stamps), accepted→paid-ms (the part a plain grid dispatch also does:
// compare it with BenchmarkGridCommand/remote), events/contract.
func BenchmarkContract(b *testing.B) {
	a, bb, link := benchPair(b)
	if err := os.WriteFile(filepath.Join(bb.k.StateDir(), "policy.json"), []byte(`{"inbound": {"maxConcurrentJobs": 64}}`), 0o600); err != nil {
		b.Fatal(err)
	}
	if r := bb.g.ReloadPolicy(); !r.Loaded {
		b.Fatal(r.Reason)
	}
	link()
	ctx := context.Background()
	prov, err := client.NewInProcess(bb.k)
	if err != nil {
		b.Fatal(err)
	}
	defer prov.Close()
	if err := prov.Provide(ctx, api.RegisterParams{Name: "bench/echo", NaturalScope: api.ScopeGrid, Idempotent: true}, func(_ context.Context, inv *client.Invocation) (any, error) {
		return map[string]any{"ok": true}, nil
	}); err != nil {
		b.Fatal(err)
	}
	p := api.ContractProposeParams{Command: "bench/echo", Params: map[string]any{"text": "a 32-byte-ish payload, roughly!"}, ExpiryMs: 50, Wait: true}
	deadline := time.Now().Add(20 * time.Second)
	for { // warm up: until b's link and offer are there, a contract fails expired
		var r api.ContractProposeResult
		if err := a.c.Call(ctx, api.MethodContractPropose, p, &r); err != nil {
			b.Fatal(err)
		}
		if r.Contract.State == "paid" {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("no contract got paid: last %s (%s)", r.Contract.State, r.Contract.Verdict)
		}
	}
	var toDelivered, acceptedToPaid, events int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var r api.ContractProposeResult
		if err := a.c.Call(ctx, api.MethodContractPropose, p, &r); err != nil {
			b.Fatal(err)
		}
		if r.Contract.State != "paid" {
			b.Fatalf("contract %s (%s)", r.Contract.State, r.Contract.Verdict)
		}
		ts := map[string]int64{}
		for _, e := range r.Contract.Chain {
			ts[e.Class] = e.TS
		}
		toDelivered += ts[api.EventContractDelivered] - ts[api.EventContractProposed]
		acceptedToPaid += ts[api.EventContractPaid] - ts[api.EventContractAccepted]
		events += int64(len(r.Contract.Chain))
	}
	n := float64(b.N)
	b.ReportMetric(float64(toDelivered)/n, "propose→delivered-ms")
	b.ReportMetric(float64(acceptedToPaid)/n, "accepted→paid-ms")
	b.ReportMetric(float64(events)/n, "events/contract")
}
