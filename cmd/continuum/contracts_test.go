package main

import (
	"strings"
	"testing"

	"github.com/continuum-grid/continuum/api"
)

// Two daemons: b serves demo/echo on the grid at price 2; a proposes a
// contract for it through the CLI, gets the result, and contracts show and
// list print the audited chain, on a and on b alike.
func TestContractsProposeShowListThroughTheCLI(t *testing.T) {
	sa, ida := startGridDaemon(t)
	sb, idb := startGridDaemon(t)
	token := strings.TrimSpace(cli(t, sa, "grid", "invite", "--circle", "household").ok(t).stdout)
	cli(t, sb, "grid", "join", token).ok(t)
	_, _, stop := background(t, sb, "commands", "serve", "demo/echo", "--scope", "grid", "--price", "2", "--latency-ms", "3")
	defer stop()
	waitFor(t, "b offers demo/echo", func() bool {
		out := decode[api.RoutesResult](t, cli(t, sa, "grid", "routes", "--json").ok(t).stdout)
		return len(out.Routes) == 1 && out.Routes[0].PeerID == idb
	})
	r := cli(t, sa, "contracts", "propose", "demo/echo", "-p", "text=under contract", "--max-bid", "2", "--currency", "credit", "--expiry", "300ms").ok(t)
	for _, want := range []string{`"text": "under contract"`, "paid", "proposes demo/echo", "bids 2", "delivers alloy", "verifies: passed", "pays"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("contracts propose lacks %q:\n%s", want, r.stdout)
		}
	}
	list := decode[api.ContractListResult](t, cli(t, sa, "contracts", "list", "--json").ok(t).stdout)
	if len(list.Contracts) != 1 || list.Contracts[0].State != "paid" || list.Contracts[0].ProposerID != ida {
		t.Fatalf("contracts list: %+v", list)
	}
	id := list.Contracts[0].ContractID
	var showA string
	waitFor(t, "b's tracker has the contract paid", func() bool {
		out := cli(t, sb, "contracts", "show", id)
		return out.code == 0 && strings.Contains(out.stdout, "paid")
	})
	showA = cli(t, sa, "contracts", "show", id).ok(t).stdout
	showB := cli(t, sb, "contracts", "show", id).ok(t).stdout
	if showA != showB {
		t.Errorf("the chain differs between a and b:\n%s\n---\n%s", showA, showB)
	}
	for _, want := range []string{id, "2 credit", idb, "executing", "delivered"} {
		if !strings.Contains(showA, want) {
			t.Errorf("contracts show lacks %q:\n%s", want, showA)
		}
	}
	if r := cli(t, sa, "contracts", "list").ok(t); !strings.Contains(r.stdout, id) {
		t.Errorf("contracts list lacks %s:\n%s", id, r.stdout)
	}
	if r := cli(t, sa, "contracts", "show", "ct-nope"); r.code != exitError || !strings.Contains(r.stderr, "not_found") {
		t.Errorf("show of an unknown contract: exit %d %q", r.code, r.stderr)
	}
	if r := cli(t, sa, "contracts", "propose", "demo/none", "--expiry", "100ms"); r.code != exitError || !strings.Contains(r.stdout+r.stderr, "expired") {
		t.Errorf("propose with no bidder: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
}
