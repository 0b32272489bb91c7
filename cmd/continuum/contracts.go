package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/client"
	flag "github.com/spf13/pflag"
)

var contractsGroup = &group{
	name:    "contracts",
	summary: "propose contracted grid work and read the audited contract chains",
	commands: []*command{
		contractsProposeCommand,
		contractsListCommand,
		contractsShowCommand,
	},
}

var contractsProposeCommand = &command{
	name:    "propose",
	args:    "COMMAND",
	summary: "propose a contract for COMMAND, wait for it to end, print the result and the chain",
	help: `Calls contract/propose with wait (docs/CONTRACTS.md): peers whose offers match
bid from their terms during the bid window (--expiry), the best bid by
--strategy is accepted, the executor runs COMMAND and delivers a signed
receipt, this install verifies it and pays (or disputes). Prints the result
(as JSON) and the chain; exits 1 unless the contract ends paid. Params come
from --params (JSON, "-" reads stdin) and/or -p key=value.`,
	example: `continuum contracts propose demo/echo -p text=hi --max-bid 2 --currency credit
continuum contracts propose inference/generate --capability llm:tiny --params '{"model":"tiny","prompt":"hello","maxTokens":8}'`,
	minArgs: 1,
	maxArgs: 1,
	flags: func(fs *flag.FlagSet) action {
		pairs := fs.StringArrayP("param", "p", nil, "a param as key=value (repeatable)")
		jsonText := fs.String("params", "", `params as JSON ("-" reads stdin)`)
		capability := fs.String("capability", "", "capability bidders must offer (default COMMAND)")
		maxBid := fs.Float64("max-bid", 0, "highest bid accepted")
		currency := fs.String("currency", "", "currency of bids")
		expiry := fs.Duration("expiry", time.Second, "bid window")
		strategy := fs.String("strategy", "", "cheapest or fastest (default: the policy's, else cheapest)")
		deliver := fs.Duration("deliver-within", time.Minute, "time from acceptance to delivery")
		return func(ctx context.Context, e *env, args []string) error {
			p, err := buildMap("contracts propose", "--params", *jsonText, *pairs, e.stdin)
			if err != nil {
				return err
			}
			req := api.ContractProposeParams{Command: args[0], Params: p, RequiredCapability: *capability, MaxBid: *maxBid, BidCurrency: *currency,
				ExpiryMs: expiry.Milliseconds(), Strategy: *strategy, DeliverWithinMs: deliver.Milliseconds(), Wait: true}
			var r api.ContractProposeResult
			if err := e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				return c.Call(ctx, api.MethodContractPropose, req, &r)
			}); err != nil {
				return err
			}
			if e.jsonOut() {
				if err := printJSON(e.stdout, map[string]any{"contract": r.Contract, "result": plain(r.Result)}, false); err != nil {
					return err
				}
			} else {
				if r.Result != nil {
					if err := printJSON(e.stdout, plain(r.Result), false); err != nil {
						return err
					}
				}
				printContract(e.stdout, r.Contract)
			}
			if r.Contract.State != "paid" {
				return fmt.Errorf("contract %s ended %s: %s", r.Contract.ContractID, r.Contract.State, r.Contract.Verdict)
			}
			return nil
		}
	},
}

var contractsListCommand = &command{
	name:    "list",
	summary: "list the contracts in the log, with state, parties and amount",
	help:    `Calls contract/list: every contract this install's log holds (its own and its peers', by replication), folded by the tracker; --state keeps one state. Reservations are the contracts this install holds capacity for.`,
	example: "continuum contracts list\ncontinuum contracts list --state paid --json",
	maxArgs: 0,
	flags: func(fs *flag.FlagSet) action {
		state := fs.String("state", "", "only contracts in this state")
		return func(ctx context.Context, e *env, _ []string) error {
			var r api.ContractListResult
			if err := e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				return c.Call(ctx, api.MethodContractList, api.ContractListParams{State: *state}, &r)
			}); err != nil {
				return err
			}
			if e.jsonOut() {
				return printJSON(e.stdout, r, false)
			}
			rows := make([][]string, 0, len(r.Contracts))
			for _, c := range r.Contracts {
				rows = append(rows, []string{c.ContractID, c.State, c.Command, shortID(c.ProposerID), orDash(shortID(c.AcceptedBidderID)),
					strconv.Itoa(len(c.Bids)), amount(c.Amount, c.BidCurrency), strconv.Itoa(len(c.Refused))})
			}
			if err := table(e.stdout, []string{"CONTRACT", "STATE", "COMMAND", "PROPOSER", "EXECUTOR", "BIDS", "AMOUNT", "REFUSED"}, rows); err != nil {
				return err
			}
			if len(r.Reservations) > 0 {
				fmt.Fprintf(e.stdout, "reserved here: %s\n", strings.Join(r.Reservations, ", "))
			}
			return nil
		}
	},
}

var contractsShowCommand = &command{
	name:    "show",
	args:    "ID",
	summary: "print a contract's audited chain: who, when, amounts, alloy hashes, verdict, refused events",
	help:    `Calls contract/get: the chain as this install's tracker folds it from the log, which every peer holding the same events reconstructs identically. Refused events are listed with their reason (docs/CONTRACTS.md).`,
	example: "continuum contracts show ct-4f1c2a9b8e7d6c5b4a392817",
	minArgs: 1,
	maxArgs: 1,
	flags: func(fs *flag.FlagSet) action {
		return func(ctx context.Context, e *env, args []string) error {
			var c api.Contract
			if err := e.withClient(ctx, func(ctx context.Context, cl *client.Client) error {
				return cl.Call(ctx, api.MethodContractGet, api.ContractGetParams{ContractID: args[0]}, &c)
			}); err != nil {
				return err
			}
			if e.jsonOut() {
				return printJSON(e.stdout, c, false)
			}
			printContract(e.stdout, c)
			return nil
		}
	},
}

func amount(a float64, currency string) string {
	return strings.TrimSpace(strconv.FormatFloat(a, 'f', -1, 64) + " " + currency)
}

// shortID keeps a peer id readable in one line: its first 12 characters
// (grid peers prints them whole).
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func printContract(w io.Writer, c api.Contract) {
	fields(w,
		"contract", c.ContractID,
		"state", c.State,
		"command", c.Command+" ("+c.RequiredCapability+")",
		"proposer", c.ProposerID,
		"executor", orDash(c.AcceptedBidderID),
		"amount", amount(c.Amount, c.BidCurrency)+" (maxBid "+amount(c.MaxBid, c.BidCurrency)+", "+c.Strategy+")",
		"delivered alloy", orDash(c.DeliveredAlloyHash),
		"verdict", orDash(c.Verdict),
	)
	rows := make([][]string, 0, len(c.Chain))
	for _, en := range c.Chain {
		rows = append(rows, []string{time.UnixMilli(en.TS).UTC().Format("15:04:05.000"), strconv.FormatUint(en.Lamport, 10), strings.TrimPrefix(en.Class, "contract:"), shortID(en.Origin), en.Summary})
	}
	table(w, []string{"TIME", "LAMPORT", "STEP", "SIGNED BY", "WHAT"}, rows)
	if len(c.Refused) > 0 {
		fmt.Fprintln(w, "refused:")
		rows = rows[:0]
		for _, r := range c.Refused {
			rows = append(rows, []string{strconv.FormatUint(r.Event.Lamport, 10), strings.TrimPrefix(r.Event.Class, "contract:"), shortID(r.Event.Origin), r.Reason, r.Detail})
		}
		table(w, []string{"LAMPORT", "CLASS", "SIGNED BY", "REASON", "DETAIL"}, rows)
	}
}
