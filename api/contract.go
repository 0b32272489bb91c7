package api

// Wire types of contracts (DESIGN §8 "Contracts", docs/CONTRACTS.md): the
// eight contract:* classes' payloads, and the contract/* methods that
// propose a contract and read the chain the tracker folds from the log.

// Contract classes: broadcast, channel global, schemaVersion v1.
const (
	EventContractProposed  = "contract:proposed"
	EventContractBid       = "contract:bid"
	EventContractAccepted  = "contract:accepted"
	EventContractExecuting = "contract:executing"
	EventContractDelivered = "contract:delivered"
	EventContractVerified  = "contract:verified"
	EventContractPaid      = "contract:paid"
	EventContractDisputed  = "contract:disputed"
)

// ContractSchema is the schemaVersion of the contract classes.
const ContractSchema = "v1"

// ContractProposed is the payload of contract:proposed. Command, Strategy
// and DeliverWithinMs are beyond DESIGN §8's list: bidders need the command
// to bid, and every peer reads the deadlines from the log. The params are
// not in it: they go to the accepted bidder only, over the link.
type ContractProposed struct {
	ContractID         string  `msgpack:"contractId" json:"contractId" desc:"the contract"`
	ProposerID         string  `msgpack:"proposerId" json:"proposerId" desc:"the proposing install (the event's origin)"`
	AlloyHash          string  `msgpack:"alloyHash" json:"alloyHash" desc:"sha256 of the params bytes the executor will get (the receipt's inputHash)"`
	BidCurrency        string  `msgpack:"bidCurrency" json:"bidCurrency" desc:"currency of bids"`
	MaxBid             float64 `msgpack:"maxBid" json:"maxBid" desc:"highest bid accepted"`
	ExpiryUnixMs       int64   `msgpack:"expiryUnixMs" json:"expiryUnixMs" desc:"end of the bid window, unix ms"`
	RequiredCapability string  `msgpack:"requiredCapability" json:"requiredCapability" desc:"capability a bidder must offer"`
	Command            string  `msgpack:"command" json:"command" desc:"the command to run"`
	Strategy           string  `msgpack:"strategy" json:"strategy" desc:"how the proposer picks a bid: cheapest or fastest"`
	DeliverWithinMs    int64   `msgpack:"deliverWithinMs" json:"deliverWithinMs" desc:"time from acceptance to delivery"`
}

// ContractBid is the payload of contract:bid.
type ContractBid struct {
	ContractID      string  `msgpack:"contractId" json:"contractId" desc:"the contract"`
	BidderID        string  `msgpack:"bidderId" json:"bidderId" desc:"the bidding install (the event's origin)"`
	BidAmount       float64 `msgpack:"bidAmount" json:"bidAmount" desc:"price asked, in the proposal's currency"`
	MaxLatencyMs    float64 `msgpack:"maxLatencyMs" json:"maxLatencyMs" desc:"the bidder's latency estimate"`
	BidExpiryUnixMs int64   `msgpack:"bidExpiryUnixMs" json:"bidExpiryUnixMs" desc:"the bidder holds its capacity until then"`
}

// ContractAccepted is the payload of contract:accepted.
type ContractAccepted struct {
	ContractID       string `msgpack:"contractId" json:"contractId" desc:"the contract"`
	ProposerID       string `msgpack:"proposerId" json:"proposerId" desc:"the proposer (the event's origin)"`
	AcceptedBidderID string `msgpack:"acceptedBidderId" json:"acceptedBidderId" desc:"the bidder chosen"`
	AcceptedBidHash  string `msgpack:"acceptedBidHash" json:"acceptedBidHash" desc:"hex hash of the chosen bid event"`
}

// ContractExecuting is the payload of contract:executing.
type ContractExecuting struct {
	ContractID      string `msgpack:"contractId" json:"contractId" desc:"the contract"`
	ExecutorID      string `msgpack:"executorId" json:"executorId" desc:"the accepted bidder (the event's origin)"`
	StartedAtUnixMs int64  `msgpack:"startedAtUnixMs" json:"startedAtUnixMs" desc:"when it started, unix ms"`
}

// ContractDelivered is the payload of contract:delivered.
type ContractDelivered struct {
	ContractID         string `msgpack:"contractId" json:"contractId" desc:"the contract"`
	ExecutorID         string `msgpack:"executorId" json:"executorId" desc:"the executor (the event's origin)"`
	DeliveredAlloyHash string `msgpack:"deliveredAlloyHash" json:"deliveredAlloyHash" desc:"hash of the receipt alloy of the result"`
}

// ContractVerified is the payload of contract:verified.
type ContractVerified struct {
	ContractID    string `msgpack:"contractId" json:"contractId" desc:"the contract"`
	VerifierID    string `msgpack:"verifierId" json:"verifierId" desc:"the proposer (the event's origin)"`
	Passed        bool   `msgpack:"passed" json:"passed" desc:"the delivery verified"`
	VerdictReason string `msgpack:"verdictReason" json:"verdictReason" desc:"why not, or ok"`
}

// ContractPaid is the payload of contract:paid.
type ContractPaid struct {
	ContractID    string  `msgpack:"contractId" json:"contractId" desc:"the contract"`
	PayerID       string  `msgpack:"payerId" json:"payerId" desc:"the proposer (the event's origin)"`
	PayeeID       string  `msgpack:"payeeId" json:"payeeId" desc:"the executor"`
	Amount        float64 `msgpack:"amount" json:"amount" desc:"the accepted bid's amount (may be 0)"`
	Currency      string  `msgpack:"currency" json:"currency" desc:"its currency"`
	SettlementRef string  `msgpack:"settlementRef,omitempty" json:"settlementRef,omitempty" desc:"reference of a settlement outside continuum"`
}

// ContractDisputed is the payload of contract:disputed. Reason starts with
// a code (docs/CONTRACTS.md): expired, not_executed, not_delivered,
// executor_lost end the contract as expired or failed; any other code
// (verification_failed) as disputed.
type ContractDisputed struct {
	ContractID        string `msgpack:"contractId" json:"contractId" desc:"the contract"`
	DisputerID        string `msgpack:"disputerId" json:"disputerId" desc:"the proposer (the event's origin)"`
	Reason            string `msgpack:"reason" json:"reason" desc:"a code, then ': ' and words"`
	DisputedEventHash string `msgpack:"disputedEventHash,omitempty" json:"disputedEventHash,omitempty" desc:"hex hash of the event disputed"`
}

// ContractProposeParams are the params of contract/propose.
type ContractProposeParams struct {
	Command            string  `msgpack:"command" json:"command" api:"required" desc:"the command to run"`
	Params             any     `msgpack:"params" json:"params" desc:"its params (sent to the accepted bidder only)"`
	RequiredCapability string  `msgpack:"requiredCapability,omitempty" json:"requiredCapability,omitempty" desc:"capability bidders must offer (default the command)"`
	MaxBid             float64 `msgpack:"maxBid,omitempty" json:"maxBid,omitempty" desc:"highest bid accepted (default 0: free offers only)"`
	BidCurrency        string  `msgpack:"bidCurrency,omitempty" json:"bidCurrency,omitempty" desc:"currency of bids (default none)"`
	ExpiryMs           int64   `msgpack:"expiryMs,omitempty" json:"expiryMs,omitempty" desc:"bid window, ms (default 1000, 50 to 600000)"`
	Strategy           string  `msgpack:"strategy,omitempty" json:"strategy,omitempty" desc:"cheapest or fastest (default cheapest)"`
	DeliverWithinMs    int64   `msgpack:"deliverWithinMs,omitempty" json:"deliverWithinMs,omitempty" desc:"time from acceptance to delivery, ms (default 60000, at most 3600000)"`
	Wait               bool    `msgpack:"wait,omitempty" json:"wait,omitempty" desc:"answer once the contract ends, with the result"`
}

// ContractProposeResult answers contract/propose.
type ContractProposeResult struct {
	Contract Contract `msgpack:"contract" json:"contract" desc:"the contract as the tracker sees it"`
	Result   any      `msgpack:"result,omitempty" json:"result,omitempty" desc:"the command's result (with wait, when paid)"`
}

// ContractGetParams are the params of contract/get.
type ContractGetParams struct {
	ContractID string `msgpack:"contractId" json:"contractId" api:"required" desc:"the contract"`
}

// ContractListParams are the params of contract/list.
type ContractListParams struct {
	State string `msgpack:"state,omitempty" json:"state,omitempty" desc:"only contracts in this state"`
}

// ContractListResult answers contract/list.
type ContractListResult struct {
	Contracts    []Contract `msgpack:"contracts" json:"contracts" desc:"by proposal time (lamport, id)"`
	Reservations []string   `msgpack:"reservations" json:"reservations" desc:"contracts this install holds capacity for (its open bids and jobs)"`
}

// Contract is one contract's chain as the tracker folded it from the log.
type Contract struct {
	ContractID         string            `msgpack:"contractId" json:"contractId" desc:"the contract"`
	State              string            `msgpack:"state" json:"state" desc:"proposed, accepted, executing, delivered, verified, paid, disputed, expired or failed"`
	ProposerID         string            `msgpack:"proposerId" json:"proposerId" desc:"the proposer"`
	Command            string            `msgpack:"command" json:"command" desc:"the command"`
	RequiredCapability string            `msgpack:"requiredCapability" json:"requiredCapability" desc:"capability required"`
	MaxBid             float64           `msgpack:"maxBid" json:"maxBid" desc:"highest bid accepted"`
	BidCurrency        string            `msgpack:"bidCurrency" json:"bidCurrency" desc:"currency"`
	Strategy           string            `msgpack:"strategy" json:"strategy" desc:"cheapest or fastest"`
	ExpiryUnixMs       int64             `msgpack:"expiryUnixMs" json:"expiryUnixMs" desc:"end of the bid window"`
	DeliverWithinMs    int64             `msgpack:"deliverWithinMs" json:"deliverWithinMs" desc:"time from acceptance to delivery"`
	InputHash          string            `msgpack:"inputHash" json:"inputHash" desc:"the proposal's alloyHash: sha256 of the params bytes"`
	DeadlineUnixMs     int64             `msgpack:"deadlineUnixMs" json:"deadlineUnixMs" desc:"when the current state must move on (0 when ended)"`
	Bids               []ContractBid     `msgpack:"bids" json:"bids" desc:"bids taken, in log order"`
	AcceptedBidderID   string            `msgpack:"acceptedBidderId,omitempty" json:"acceptedBidderId,omitempty" desc:"the chosen bidder"`
	Amount             float64           `msgpack:"amount" json:"amount" desc:"the accepted bid's amount"`
	DeliveredAlloyHash string            `msgpack:"deliveredAlloyHash,omitempty" json:"deliveredAlloyHash,omitempty" desc:"the delivery's receipt alloy"`
	Verdict            string            `msgpack:"verdict,omitempty" json:"verdict,omitempty" desc:"the proposer's verdict reason"`
	Chain              []ContractEntry   `msgpack:"chain" json:"chain" desc:"every contract event taken, in transcript order"`
	Refused            []ContractRefusal `msgpack:"refused" json:"refused" desc:"contract events that do not fit the chain, with the reason"`
}

// ContractEntry is one event of a chain.
type ContractEntry struct {
	Class   string `msgpack:"class" json:"class" desc:"contract:*"`
	EventID string `msgpack:"eventId" json:"eventId" desc:"the event's id"`
	Hash    string `msgpack:"hash" json:"hash" desc:"hex hash of the event (what acceptedBidHash names)"`
	Origin  string `msgpack:"origin" json:"origin" desc:"who signed it"`
	Lamport uint64 `msgpack:"lamport" json:"lamport" desc:"its lamport time"`
	TS      int64  `msgpack:"ts" json:"ts" desc:"unix ms at its origin"`
	Summary string `msgpack:"summary" json:"summary" desc:"amounts, hashes, verdict, in words"`
}

// ContractRefusal is an event the tracker refused.
type ContractRefusal struct {
	Event  ContractEntry `msgpack:"event" json:"event" desc:"the refused event"`
	Reason string        `msgpack:"reason" json:"reason" desc:"the refusal reason (docs/CONTRACTS.md)"`
	Detail string        `msgpack:"detail" json:"detail" desc:"in words"`
}
