package contract

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/continuum-grid/continuum/api"
)

// States of a contract (docs/CONTRACTS.md).
const (
	StateProposed  = "proposed"
	StateAccepted  = "accepted"
	StateExecuting = "executing"
	StateDelivered = "delivered"
	StateVerified  = "verified"
	StatePaid      = "paid"
	StateDisputed  = "disputed"
	StateExpired   = "expired"
	StateFailed    = "failed"
)

// States lists every state, for contract/list's filter.
var States = []string{StateProposed, StateAccepted, StateExecuting, StateDelivered, StateVerified, StatePaid, StateDisputed, StateExpired, StateFailed}

// Ended reports whether state is an ending: nothing more is taken.
func Ended(state string) bool {
	switch state {
	case StatePaid, StateDisputed, StateExpired, StateFailed:
		return true
	}
	return false
}

// Refusal reasons: why the tracker did not take an event into its chain.
const (
	ReasonBadPayload        = "bad_payload"        // the payload does not decode, or a field is missing
	ReasonActorNotOrigin    = "actor_not_origin"   // the actor field (proposerId, bidderId, ...) is not the event's origin
	ReasonUnknownContract   = "unknown_contract"   // no proposal before it in transcript order
	ReasonDuplicateProposal = "duplicate_proposal" // a second proposal of the same contractId
	ReasonBidClosed         = "bid_closed"         // a bid after the contract left proposed
	ReasonBidLate           = "bid_late"           // a bid stamped after the bid window
	ReasonSelfBid           = "self_bid"           // the proposer bidding on its own contract
	ReasonOverMaxBid        = "over_max_bid"       // negative, or above maxBid, or in another currency
	ReasonDuplicateBid      = "duplicate_bid"      // a bidder's second bid
	ReasonNotProposer       = "not_proposer"       // accepted, verified, paid or disputed by someone else
	ReasonUnknownBid        = "unknown_bid"        // accepted names no bid, or another bid's hash
	ReasonNotExecutor       = "not_executor"       // executing or delivered by someone not the accepted bidder
	ReasonWrongState        = "wrong_state"        // out of order: not a step from the state the chain is in
	ReasonWrongPayment      = "wrong_payment"      // paid to someone not the executor, or not the accepted amount
	ReasonEnded             = "contract_ended"     // after paid, disputed, expired or failed
)

// Dispute reason codes (the start of contract:disputed's reason) that end a
// contract as expired or failed rather than disputed.
const (
	CodeExpired            = "expired"             // no bid in the window
	CodeNotExecuted        = "not_executed"        // the accepted bidder never started
	CodeNotDelivered       = "not_delivered"       // ... or never delivered in time
	CodeExecutorLost       = "executor_lost"       // the link to it went down mid-job
	CodeVerificationFailed = "verification_failed" // the delivery did not verify
)

// VerifyWithinMs is how long a delivered contract waits for the
// proposer's verdict (its deadline in contract/get).
const VerifyWithinMs = 30_000

// Event is one contract:* event as the tracker folds it.
type Event struct {
	Class   string
	ID      string
	Origin  string
	Lamport uint64
	TS      int64
	Hash    string // hex of airc.HashOf
	Payload any
}

// less is transcript order: (lamport, id), then origin (ids are unique
// per origin only).
func less(a, b Event) int {
	if c := cmp.Compare(a.Lamport, b.Lamport); c != 0 {
		return c
	}
	if c := strings.Compare(a.ID, b.ID); c != 0 {
		return c
	}
	return strings.Compare(a.Origin, b.Origin)
}

type bid struct {
	api.ContractBid
	hash string
}

// Fold reconstructs one contract from its events, in transcript order, so
// every peer holding the same events reconstructs the same chain and the
// same refusals whatever order they arrived in. It is pure: time is only
// the events' own stamps.
func Fold(id string, events []Event) api.Contract {
	evs := slices.Clone(events)
	slices.SortFunc(evs, less)
	c := api.Contract{ContractID: id, Bids: []api.ContractBid{}, Chain: []api.ContractEntry{}, Refused: []api.ContractRefusal{}}
	var (
		prop     *api.ContractProposed
		bids     []bid
		accepted *bid
		acceptTS int64
	)
	for _, ev := range evs {
		entry := api.ContractEntry{Class: ev.Class, EventID: ev.ID, Hash: ev.Hash, Origin: ev.Origin, Lamport: ev.Lamport, TS: ev.TS}
		refuse := func(reason, format string, args ...any) {
			c.Refused = append(c.Refused, api.ContractRefusal{Event: entry, Reason: reason, Detail: fmt.Sprintf(format, args...)})
		}
		take := func(summary string) {
			entry.Summary = summary
			c.Chain = append(c.Chain, entry)
		}
		actor, summary, err := decodeActor(ev)
		if err != nil {
			refuse(ReasonBadPayload, "%v", err)
			continue
		}
		if actor != ev.Origin {
			refuse(ReasonActorNotOrigin, "the payload names %s, the event was signed by %s", short(actor), short(ev.Origin))
			continue
		}
		if ev.Class != api.EventContractProposed && prop == nil {
			refuse(ReasonUnknownContract, "no contract:proposed before it")
			continue
		}
		if prop != nil && Ended(c.State) {
			refuse(ReasonEnded, "the contract ended %s", c.State)
			continue
		}
		isProposer := prop != nil && ev.Origin == prop.ProposerID
		switch ev.Class {
		case api.EventContractProposed:
			if prop != nil {
				refuse(ReasonDuplicateProposal, "proposed already by %s", short(prop.ProposerID))
				continue
			}
			var p api.ContractProposed
			_ = api.Assign(&p, ev.Payload)
			prop = &p
			c.State, c.ProposerID, c.Command, c.RequiredCapability = StateProposed, p.ProposerID, p.Command, p.RequiredCapability
			c.MaxBid, c.BidCurrency, c.Strategy, c.ExpiryUnixMs, c.DeadlineUnixMs = p.MaxBid, p.BidCurrency, p.Strategy, p.ExpiryUnixMs, p.ExpiryUnixMs
			c.DeliverWithinMs, c.InputHash = p.DeliverWithinMs, p.AlloyHash
			take(summary)
		case api.EventContractBid:
			var b api.ContractBid
			_ = api.Assign(&b, ev.Payload)
			switch {
			case c.State != StateProposed:
				refuse(ReasonBidClosed, "the contract is %s", c.State)
			case ev.Origin == prop.ProposerID:
				refuse(ReasonSelfBid, "the proposer cannot bid")
			case ev.TS > prop.ExpiryUnixMs:
				refuse(ReasonBidLate, "stamped %d ms after the bid window closed", ev.TS-prop.ExpiryUnixMs)
			case b.BidAmount < 0 || b.BidAmount > prop.MaxBid:
				refuse(ReasonOverMaxBid, "bid %g, maxBid %g", b.BidAmount, prop.MaxBid)
			case slices.ContainsFunc(bids, func(o bid) bool { return o.BidderID == b.BidderID }):
				refuse(ReasonDuplicateBid, "%s bid already", short(b.BidderID))
			default:
				bids = append(bids, bid{b, ev.Hash})
				c.Bids = append(c.Bids, b)
				take(summary)
			}
		case api.EventContractAccepted:
			var a api.ContractAccepted
			_ = api.Assign(&a, ev.Payload)
			i := slices.IndexFunc(bids, func(o bid) bool { return o.BidderID == a.AcceptedBidderID })
			switch {
			case !isProposer:
				refuse(ReasonNotProposer, "only the proposer %s accepts", short(prop.ProposerID))
			case c.State != StateProposed:
				refuse(ReasonWrongState, "accepted while %s", c.State)
			case i < 0 || bids[i].hash != a.AcceptedBidHash:
				refuse(ReasonUnknownBid, "no bid by %s with hash %s", short(a.AcceptedBidderID), short(a.AcceptedBidHash))
			default:
				accepted, acceptTS = &bids[i], ev.TS
				c.State, c.AcceptedBidderID, c.Amount = StateAccepted, a.AcceptedBidderID, bids[i].BidAmount
				c.DeadlineUnixMs = acceptTS + prop.DeliverWithinMs
				take(summary)
			}
		case api.EventContractExecuting, api.EventContractDelivered:
			want := StateAccepted
			if ev.Class == api.EventContractDelivered {
				want = StateExecuting
			}
			switch {
			case accepted == nil || ev.Origin != accepted.BidderID:
				refuse(ReasonNotExecutor, "%s is not the accepted bidder", short(ev.Origin))
			case c.State != want:
				refuse(ReasonWrongState, "%s while %s", strings.TrimPrefix(ev.Class, "contract:"), c.State)
			case ev.Class == api.EventContractExecuting:
				c.State = StateExecuting
				take(summary)
			default:
				var d api.ContractDelivered
				_ = api.Assign(&d, ev.Payload)
				c.State, c.DeliveredAlloyHash, c.DeadlineUnixMs = StateDelivered, d.DeliveredAlloyHash, ev.TS+VerifyWithinMs
				take(summary)
			}
		case api.EventContractVerified:
			var v api.ContractVerified
			_ = api.Assign(&v, ev.Payload)
			switch {
			case !isProposer:
				refuse(ReasonNotProposer, "only the proposer %s verifies", short(prop.ProposerID))
			case c.State != StateDelivered:
				refuse(ReasonWrongState, "verified while %s", c.State)
			default:
				c.State, c.Verdict = StateVerified, v.VerdictReason
				if !v.Passed {
					c.Verdict = "failed: " + v.VerdictReason
				}
				take(summary)
			}
		case api.EventContractPaid:
			var p api.ContractPaid
			_ = api.Assign(&p, ev.Payload)
			switch {
			case !isProposer:
				refuse(ReasonNotProposer, "only the proposer %s pays", short(prop.ProposerID))
			case c.State != StateVerified || strings.HasPrefix(c.Verdict, "failed"):
				refuse(ReasonWrongState, "paid while %s (%s)", c.State, c.Verdict)
			case p.PayeeID != accepted.BidderID || p.Amount != accepted.BidAmount || p.Currency != prop.BidCurrency:
				refuse(ReasonWrongPayment, "paid %g %s to %s; the accepted bid is %g %s by %s", p.Amount, p.Currency, short(p.PayeeID), accepted.BidAmount, prop.BidCurrency, short(accepted.BidderID))
			default:
				c.State, c.DeadlineUnixMs = StatePaid, 0
				take(summary)
			}
		case api.EventContractDisputed:
			var d api.ContractDisputed
			_ = api.Assign(&d, ev.Payload)
			if !isProposer {
				refuse(ReasonNotProposer, "only the proposer %s ends a contract", short(prop.ProposerID))
				continue
			}
			code, _, _ := strings.Cut(d.Reason, ":")
			switch code {
			case CodeExpired:
				if c.State != StateProposed {
					refuse(ReasonWrongState, "expired while %s", c.State)
					continue
				}
				c.State = StateExpired
			case CodeNotExecuted, CodeNotDelivered, CodeExecutorLost:
				if c.State != StateAccepted && c.State != StateExecuting {
					refuse(ReasonWrongState, "%s while %s", code, c.State)
					continue
				}
				c.State = StateFailed
			default:
				c.State = StateDisputed
			}
			c.DeadlineUnixMs = 0
			if c.Verdict == "" || code != CodeVerificationFailed {
				c.Verdict = d.Reason
			}
			take(summary)
		}
	}
	return c
}

// decodeActor checks the payload's required fields and returns the actor
// it names and a one-line summary for the audit.
func decodeActor(ev Event) (actor, summary string, err error) {
	need := func(field, v string) error {
		if v == "" {
			return fmt.Errorf("field %q is missing", field)
		}
		return nil
	}
	switch ev.Class {
	case api.EventContractProposed:
		var p api.ContractProposed
		if err := api.Assign(&p, ev.Payload); err != nil {
			return "", "", err
		}
		if p.ExpiryUnixMs <= 0 || p.DeliverWithinMs <= 0 {
			return "", "", fmt.Errorf("fields \"expiryUnixMs\" and \"deliverWithinMs\" must be positive")
		}
		return p.ProposerID, fmt.Sprintf("%s proposes %s (%s), maxBid %g %s, bids until %d", short(p.ProposerID), p.Command, p.RequiredCapability, p.MaxBid, p.BidCurrency, p.ExpiryUnixMs), need("proposerId", p.ProposerID)
	case api.EventContractBid:
		var b api.ContractBid
		if err := api.Assign(&b, ev.Payload); err != nil {
			return "", "", err
		}
		return b.BidderID, fmt.Sprintf("%s bids %g, latency %g ms", short(b.BidderID), b.BidAmount, b.MaxLatencyMs), need("bidderId", b.BidderID)
	case api.EventContractAccepted:
		var a api.ContractAccepted
		if err := api.Assign(&a, ev.Payload); err != nil {
			return "", "", err
		}
		return a.ProposerID, fmt.Sprintf("%s accepts %s's bid %s", short(a.ProposerID), short(a.AcceptedBidderID), short(a.AcceptedBidHash)), need("proposerId", a.ProposerID)
	case api.EventContractExecuting:
		var x api.ContractExecuting
		if err := api.Assign(&x, ev.Payload); err != nil {
			return "", "", err
		}
		return x.ExecutorID, fmt.Sprintf("%s starts", short(x.ExecutorID)), need("executorId", x.ExecutorID)
	case api.EventContractDelivered:
		var d api.ContractDelivered
		if err := api.Assign(&d, ev.Payload); err != nil {
			return "", "", err
		}
		if !isHex64(d.DeliveredAlloyHash) {
			return "", "", fmt.Errorf("field \"deliveredAlloyHash\" is not 64 hex digits")
		}
		return d.ExecutorID, fmt.Sprintf("%s delivers alloy %s", short(d.ExecutorID), d.DeliveredAlloyHash), need("executorId", d.ExecutorID)
	case api.EventContractVerified:
		var v api.ContractVerified
		if err := api.Assign(&v, ev.Payload); err != nil {
			return "", "", err
		}
		verdict := "passed"
		if !v.Passed {
			verdict = "failed"
		}
		return v.VerifierID, fmt.Sprintf("%s verifies: %s (%s)", short(v.VerifierID), verdict, v.VerdictReason), need("verifierId", v.VerifierID)
	case api.EventContractPaid:
		var p api.ContractPaid
		if err := api.Assign(&p, ev.Payload); err != nil {
			return "", "", err
		}
		return p.PayerID, fmt.Sprintf("%s pays %s %g %s", short(p.PayerID), short(p.PayeeID), p.Amount, p.Currency), need("payerId", p.PayerID)
	case api.EventContractDisputed:
		var d api.ContractDisputed
		if err := api.Assign(&d, ev.Payload); err != nil {
			return "", "", err
		}
		return d.DisputerID, fmt.Sprintf("%s ends it: %s", short(d.DisputerID), d.Reason), need("disputerId", d.DisputerID)
	}
	return "", "", fmt.Errorf("class %q is not a contract class", ev.Class)
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// short is the first 12 characters of an id or hash, for summaries.
func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
