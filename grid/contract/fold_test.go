package contract

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/continuum-grid/continuum/api"
)

const (
	pA  = "cAAAA" // proposer
	pB  = "cBBBB" // bidder
	pC  = "cCCCC" // another bidder
	cid = "ct-1"
)

// ev makes an event at lamport l; its hash is its id.
func ev(l uint64, origin, class string, payload any) Event {
	id := origin + "-" + strings.TrimPrefix(class, "contract:") + "-" + string(rune('a'+l))
	return Event{Class: class, ID: id, Origin: origin, Lamport: l, TS: int64(l) * 10, Hash: id, Payload: payload}
}

func proposed(l uint64, by string) Event {
	return ev(l, by, api.EventContractProposed, api.ContractProposed{ContractID: cid, ProposerID: by, MaxBid: 5, ExpiryUnixMs: 100, DeliverWithinMs: 1000, Command: "demo/echo", RequiredCapability: "demo/echo"})
}
func bidBy(l uint64, by string, amount float64) Event {
	return ev(l, by, api.EventContractBid, api.ContractBid{ContractID: cid, BidderID: by, BidAmount: amount})
}
func acceptBy(l uint64, by, bidder string, b Event) Event {
	return ev(l, by, api.EventContractAccepted, api.ContractAccepted{ContractID: cid, ProposerID: by, AcceptedBidderID: bidder, AcceptedBidHash: b.Hash})
}
func executing(l uint64, by string) Event {
	return ev(l, by, api.EventContractExecuting, api.ContractExecuting{ContractID: cid, ExecutorID: by})
}
func delivered(l uint64, by string) Event {
	return ev(l, by, api.EventContractDelivered, api.ContractDelivered{ContractID: cid, ExecutorID: by, DeliveredAlloyHash: strings.Repeat("0", 64)})
}
func verified(l uint64, by string, passed bool) Event {
	return ev(l, by, api.EventContractVerified, api.ContractVerified{ContractID: cid, VerifierID: by, Passed: passed, VerdictReason: "r"})
}
func paid(l uint64, by, to string, amount float64) Event {
	return ev(l, by, api.EventContractPaid, api.ContractPaid{ContractID: cid, PayerID: by, PayeeID: to, Amount: amount})
}
func disputed(l uint64, by, reason string) Event {
	return ev(l, by, api.EventContractDisputed, api.ContractDisputed{ContractID: cid, DisputerID: by, Reason: reason})
}

func TestFold(t *testing.T) {
	b1 := bidBy(2, pB, 1)
	c1 := bidBy(3, pC, 2)
	happy := []Event{proposed(1, pA), b1, c1, acceptBy(4, pA, pB, b1), executing(5, pB), delivered(6, pB), verified(7, pA, true), paid(8, pA, pB, 1)}
	for _, tc := range []struct {
		name    string
		events  []Event
		state   string
		refused []string
	}{
		{"happy path", happy, StatePaid, nil},
		{"no proposal", []Event{bidBy(2, pB, 1)}, "", []string{ReasonUnknownContract}},
		{"second proposal", []Event{proposed(1, pA), proposed(2, pC)}, StateProposed, []string{ReasonDuplicateProposal}},
		{"actor is not the origin", []Event{proposed(1, pA), ev(2, pC, api.EventContractBid, api.ContractBid{ContractID: cid, BidderID: pB})}, StateProposed, []string{ReasonActorNotOrigin}},
		{"bid after acceptance", []Event{proposed(1, pA), b1, acceptBy(3, pA, pB, b1), bidBy(4, pC, 0)}, StateAccepted, []string{ReasonBidClosed}},
		{"bid after the window", []Event{proposed(1, pA), bidBy(11, pB, 0)}, StateProposed, []string{ReasonBidLate}},
		{"bid over maxBid", []Event{proposed(1, pA), bidBy(2, pB, 6)}, StateProposed, []string{ReasonOverMaxBid}},
		{"proposer bids", []Event{proposed(1, pA), bidBy(2, pA, 0)}, StateProposed, []string{ReasonSelfBid}},
		{"second bid", []Event{proposed(1, pA), b1, bidBy(3, pB, 0)}, StateProposed, []string{ReasonDuplicateBid}},
		{"accept by someone else", []Event{proposed(1, pA), b1, acceptBy(3, pC, pB, b1)}, StateProposed, []string{ReasonNotProposer}},
		{"accept of no bid", []Event{proposed(1, pA), b1, acceptBy(3, pA, pC, b1)}, StateProposed, []string{ReasonUnknownBid}},
		{"accept with another bid's hash", []Event{proposed(1, pA), b1, c1, acceptBy(4, pA, pB, c1)}, StateProposed, []string{ReasonUnknownBid}},
		{"delivered by someone else", []Event{proposed(1, pA), b1, acceptBy(3, pA, pB, b1), executing(4, pB), delivered(5, pC)}, StateExecuting, []string{ReasonNotExecutor}},
		{"delivered before executing", []Event{proposed(1, pA), b1, acceptBy(3, pA, pB, b1), delivered(4, pB)}, StateAccepted, []string{ReasonWrongState}},
		{"paid before verified", []Event{proposed(1, pA), b1, acceptBy(3, pA, pB, b1), executing(4, pB), delivered(5, pB), paid(6, pA, pB, 1)}, StateDelivered, []string{ReasonWrongState}},
		{"paid after a failed verification", []Event{proposed(1, pA), b1, acceptBy(3, pA, pB, b1), executing(4, pB), delivered(5, pB), verified(6, pA, false), paid(7, pA, pB, 1)}, StateVerified, []string{ReasonWrongState}},
		{"failed verification disputed", []Event{proposed(1, pA), b1, acceptBy(3, pA, pB, b1), executing(4, pB), delivered(5, pB), verified(6, pA, false), disputed(7, pA, CodeVerificationFailed+": x")}, StateDisputed, nil},
		{"paid the wrong amount", []Event{proposed(1, pA), b1, acceptBy(3, pA, pB, b1), executing(4, pB), delivered(5, pB), verified(6, pA, true), paid(7, pA, pB, 2)}, StateVerified, []string{ReasonWrongPayment}},
		{"paid to someone else", []Event{proposed(1, pA), b1, acceptBy(3, pA, pB, b1), executing(4, pB), delivered(5, pB), verified(6, pA, true), paid(7, pA, pC, 1)}, StateVerified, []string{ReasonWrongPayment}},
		{"expired", []Event{proposed(1, pA), disputed(2, pA, CodeExpired)}, StateExpired, nil},
		{"expired after acceptance", []Event{proposed(1, pA), b1, acceptBy(3, pA, pB, b1), disputed(4, pA, CodeExpired)}, StateAccepted, []string{ReasonWrongState}},
		{"not executed", []Event{proposed(1, pA), b1, acceptBy(3, pA, pB, b1), disputed(4, pA, CodeNotExecuted)}, StateFailed, nil},
		{"executor lost", []Event{proposed(1, pA), b1, acceptBy(3, pA, pB, b1), executing(4, pB), disputed(5, pA, CodeExecutorLost)}, StateFailed, nil},
		{"disputed by the bidder", []Event{proposed(1, pA), b1, disputed(3, pB, "x")}, StateProposed, []string{ReasonNotProposer}},
		{"after the end", append(append([]Event{}, happy...), bidBy(9, pC, 0), executing(10, pB)), StatePaid, []string{ReasonEnded, ReasonEnded}},
		{"bad payload", []Event{proposed(1, pA), ev(2, pB, api.EventContractBid, map[string]any{"contractId": cid, "bidderId": 5})}, StateProposed, []string{ReasonBadPayload}},
		{"missing actor", []Event{proposed(1, pA), ev(2, pB, api.EventContractBid, map[string]any{"contractId": cid})}, StateProposed, []string{ReasonBadPayload}},
		{"bad alloy hash", []Event{proposed(1, pA), b1, acceptBy(3, pA, pB, b1), executing(4, pB), ev(5, pB, api.EventContractDelivered, api.ContractDelivered{ContractID: cid, ExecutorID: pB, DeliveredAlloyHash: "zz"})}, StateExecuting, []string{ReasonBadPayload}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Fold(cid, tc.events)
			if c.State != tc.state {
				t.Errorf("state %q, want %q", c.State, tc.state)
			}
			var got []string
			for _, r := range c.Refused {
				got = append(got, r.Reason)
			}
			if strings.Join(got, ",") != strings.Join(tc.refused, ",") {
				t.Errorf("refused %v, want %v (%+v)", got, tc.refused, c.Refused)
			}
			if len(c.Chain)+len(c.Refused) != len(tc.events) {
				t.Errorf("%d taken + %d refused, want %d events", len(c.Chain), len(c.Refused), len(tc.events))
			}
		})
	}
}

// Whatever order the events arrive in (replication from several peers),
// the fold is the same: the determinism every peer relies on.
func TestFoldIgnoresArrivalOrder(t *testing.T) {
	b1 := bidBy(2, pB, 1)
	evs := []Event{proposed(1, pA), b1, bidBy(3, pC, 2), acceptBy(4, pA, pB, b1), bidBy(5, pC, 0), executing(6, pB), delivered(7, pC), delivered(8, pB), verified(9, pA, true), paid(10, pA, pB, 1)}
	want, _ := json.Marshal(Fold(cid, evs))
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		shuffled := append([]Event{}, evs...)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		tr := NewTracker()
		for _, e := range shuffled {
			tr.Add(e)
		}
		c, _ := tr.Get(cid)
		if got, _ := json.Marshal(c); string(got) != string(want) {
			t.Fatalf("order %d folds differently:\n%s\nwant\n%s", i, got, want)
		}
	}
	var c api.Contract
	_ = json.Unmarshal(want, &c)
	if c.State != StatePaid || len(c.Refused) != 2 {
		t.Fatalf("state %s refused %+v", c.State, c.Refused)
	}
}

func TestTrackerDedupesAndBoundsIDs(t *testing.T) {
	tr := NewTracker()
	p := proposed(1, pA)
	if _, ok := tr.Add(p); !ok {
		t.Fatal("first add not taken")
	}
	if _, ok := tr.Add(p); ok {
		t.Fatal("same (origin, id) taken twice")
	}
	if id, _ := tr.Add(ev(2, pB, api.EventContractBid, map[string]any{"contractId": strings.Repeat("x", 200)})); id != "" {
		t.Fatal("an oversized contract id was kept")
	}
	if id, _ := tr.Add(ev(3, pB, api.EventContractBid, "not a map")); id != "" {
		t.Fatal("a payload without contractId was kept")
	}
}

func TestCompareBids(t *testing.T) {
	cheapFast := api.ContractBid{BidderID: "cZ", BidAmount: 1, MaxLatencyMs: 10}
	cheapSlow := api.ContractBid{BidderID: "cA", BidAmount: 1, MaxLatencyMs: 99}
	dear := api.ContractBid{BidderID: "cB", BidAmount: 3, MaxLatencyMs: 1}
	tie := api.ContractBid{BidderID: "cY", BidAmount: 1, MaxLatencyMs: 10}
	if compareBids("cheapest", cheapFast, cheapSlow) >= 0 || compareBids("cheapest", cheapSlow, dear) >= 0 {
		t.Error("cheapest: by amount, then latency")
	}
	if compareBids("fastest", dear, cheapFast) >= 0 || compareBids("fastest", cheapFast, cheapSlow) >= 0 {
		t.Error("fastest: by latency, then amount")
	}
	if compareBids("cheapest", tie, cheapFast) >= 0 {
		t.Error("a tie goes to the lower peer id")
	}
}
