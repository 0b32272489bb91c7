// Package policy is the grid's policy file (DESIGN §8 "Policy",
// docs/GRID.md): which circles this install sends work to and takes work
// from, how it picks a peer, its limits, which channels replicate per
// circle, what its manifest publishes, and the file's own tests.
//
// What it promises: Parse accepts only a file it fully understands (unknown
// fields, bad circles, strategies or limits are errors naming the field);
// a file whose tests section fails is refused with the failing case; a
// missing or empty file means Defaults, which trust the household circle
// only. A Policy is never changed after Parse, so holders may share it.
package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/continuum-grid/continuum/grid/trust"
)

// FileName is the policy file's name in the state directory.
const FileName = "policy.json"

// Strategies for picking among peers that offer a capability.
const (
	Cheapest    = "cheapest"     // lowest price, then latency estimate
	Fastest     = "fastest"      // lowest latency estimate, then round trip
	Closest     = "closest"      // most trusted circle, then round trip
	LoadBalance = "load-balance" // lowest load (manifest load and calls in flight to it)
)

// Strategies lists the valid strategies.
var Strategies = []string{Cheapest, Fastest, Closest, LoadBalance}

// Policy is a parsed, validated policy.
type Policy struct {
	Version   int                 `json:"version"`
	Outbound  Outbound            `json:"outbound"`
	Inbound   Inbound             `json:"inbound"`
	Replicate map[string][]string `json:"replicate"`
	Publish   Publish             `json:"publish"`
	Tests     []Case              `json:"tests"`
}

// Outbound rules apply to work this install sends to peers.
type Outbound struct {
	// Circles are the circles a peer must be trusted in to get work.
	Circles []string `json:"circles"`
	// Strategy is the default when the caller names none.
	Strategy string `json:"strategy"`
	// MaxCallsPerMinute bounds grid dispatches (0: no bound).
	MaxCallsPerMinute int `json:"maxCallsPerMinute"`
	// MaxPrice is the most a call may cost (the budget per call); offers
	// above it are not considered. Absent: any price.
	MaxPrice *float64 `json:"maxPrice,omitempty"`
}

// Inbound rules apply to work peers send here.
type Inbound struct {
	// Circles are the circles a caller must be trusted in here.
	Circles []string `json:"circles"`
	// MaxConcurrentJobs bounds inbound jobs running at once.
	MaxConcurrentJobs int `json:"maxConcurrentJobs"`
	// LoadCeiling refuses work while the machine's load (1-minute load
	// average per core) is at or above it; 0: no ceiling.
	LoadCeiling float64 `json:"loadCeiling"`
	// Commands, when not empty, are the only commands peers may run here.
	Commands []string `json:"commands,omitempty"`
}

// Publish says what the manifest shows.
type Publish struct {
	DisplayName string   `json:"displayName,omitempty"`
	NoOffers    bool     `json:"noOffers,omitempty"`   // publish no offers (take no work)
	NoHardware  bool     `json:"noHardware,omitempty"` // leave the hardware section empty
	NoAddrs     bool     `json:"noAddrs,omitempty"`    // leave the addresses out
	Wants       []string `json:"wants,omitempty"`      // capabilities this install looks for
}

// Case is one test of the policy: a peer in Circle calling Command in
// Direction is expected to be allowed or denied.
type Case struct {
	Name      string `json:"name,omitempty"`
	Direction string `json:"direction"` // inbound (a peer calls here) or outbound (this install calls a peer)
	Circle    string `json:"circle"`
	Command   string `json:"command"`
	Expect    string `json:"expect"` // allow or deny
}

// Default values.
const (
	DefaultMaxConcurrentJobs = 4
	DefaultStrategy          = Closest
)

// Defaults is the policy of an install without a policy file: work goes to
// and comes from household peers only, four inbound jobs at once, no load
// ceiling, every channel replicates with household peers and global with
// every trusted peer, the manifest publishes everything.
func Defaults() *Policy {
	p := &Policy{Version: 1}
	p.fill()
	return p
}

func (p *Policy) fill() {
	if p.Version == 0 {
		p.Version = 1
	}
	if p.Outbound.Circles == nil {
		p.Outbound.Circles = []string{trust.CircleHousehold}
	}
	if p.Outbound.Strategy == "" {
		p.Outbound.Strategy = DefaultStrategy
	}
	if p.Inbound.Circles == nil {
		p.Inbound.Circles = []string{trust.CircleHousehold}
	}
	if p.Inbound.MaxConcurrentJobs == 0 {
		p.Inbound.MaxConcurrentJobs = DefaultMaxConcurrentJobs
	}
	if p.Replicate == nil {
		p.Replicate = map[string][]string{trust.CircleHousehold: {"*"}}
	}
}

// Parse reads a policy file's bytes. Empty (or blank) input is Defaults.
func Parse(b []byte) (*Policy, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return Defaults(), nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p Policy
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("policy: %v", err)
	}
	if dec.More() {
		return nil, errors.New("policy: trailing data after the JSON object")
	}
	p.fill()
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("policy: %v", err)
	}
	if err := p.RunTests(); err != nil {
		return nil, fmt.Errorf("policy: %v", err)
	}
	return &p, nil
}

// Load reads dir/policy.json; a missing file is Defaults (found false).
func Load(dir string) (p *Policy, path string, found bool, err error) {
	path = filepath.Join(dir, FileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Defaults(), path, false, nil
	}
	if err != nil {
		return nil, path, false, fmt.Errorf("policy: read %s: %v", path, err)
	}
	p, err = Parse(b)
	return p, path, true, err
}

func checkCircles(field string, cs []string) error {
	for _, c := range cs {
		if !trust.ValidCircle(c) {
			return fmt.Errorf("%s: %q is not one of %s", field, c, strings.Join(trust.Circles, ", "))
		}
	}
	return nil
}

func (p *Policy) validate() error {
	if p.Version != 1 {
		return fmt.Errorf("version: %d, this daemon reads version 1", p.Version)
	}
	if err := checkCircles("outbound.circles", p.Outbound.Circles); err != nil {
		return err
	}
	if err := checkCircles("inbound.circles", p.Inbound.Circles); err != nil {
		return err
	}
	if !slices.Contains(Strategies, p.Outbound.Strategy) {
		return fmt.Errorf("outbound.strategy: %q is not one of %s", p.Outbound.Strategy, strings.Join(Strategies, ", "))
	}
	if p.Outbound.MaxCallsPerMinute < 0 {
		return errors.New("outbound.maxCallsPerMinute: must not be negative")
	}
	if p.Outbound.MaxPrice != nil && *p.Outbound.MaxPrice < 0 {
		return errors.New("outbound.maxPrice: must not be negative")
	}
	if p.Inbound.MaxConcurrentJobs < 0 || p.Inbound.MaxConcurrentJobs > 4096 {
		return fmt.Errorf("inbound.maxConcurrentJobs: %d, want 1 to 4096", p.Inbound.MaxConcurrentJobs)
	}
	if p.Inbound.LoadCeiling < 0 {
		return errors.New("inbound.loadCeiling: must not be negative")
	}
	for c, chans := range p.Replicate {
		if !trust.ValidCircle(c) {
			return fmt.Errorf("replicate: %q is not a circle (%s)", c, strings.Join(trust.Circles, ", "))
		}
		for _, ch := range chans {
			if strings.TrimSpace(ch) == "" {
				return fmt.Errorf("replicate.%s: a blank channel", c)
			}
		}
	}
	for i, tc := range p.Tests {
		if tc.Direction != "inbound" && tc.Direction != "outbound" {
			return fmt.Errorf("tests[%d].direction: %q, want inbound or outbound", i, tc.Direction)
		}
		if !trust.ValidCircle(tc.Circle) {
			return fmt.Errorf("tests[%d].circle: %q is not a circle", i, tc.Circle)
		}
		if tc.Expect != "allow" && tc.Expect != "deny" {
			return fmt.Errorf("tests[%d].expect: %q, want allow or deny", i, tc.Expect)
		}
		if tc.Command == "" {
			return fmt.Errorf("tests[%d].command: missing", i)
		}
	}
	return nil
}

// RunTests runs the tests section; the first failing case is the error.
func (p *Policy) RunTests() error {
	for i, tc := range p.Tests {
		var ok bool
		if tc.Direction == "inbound" {
			ok = p.AcceptsInbound(tc.Circle, tc.Command) == ""
		} else {
			ok = p.AllowsOutbound(tc.Circle)
		}
		if got := map[bool]string{true: "allow", false: "deny"}[ok]; got != tc.Expect {
			name := tc.Name
			if name == "" {
				name = fmt.Sprintf("#%d", i)
			}
			return fmt.Errorf("tests[%d] (%s): a peer in %s calling %s %s is %s, the test expects %s", i, name, tc.Circle, tc.Command, tc.Direction, got, tc.Expect)
		}
	}
	return nil
}

// Inbound refusal reasons (AcceptsInbound, and the dispatcher's own).
const (
	ReasonCircle  = "circle_not_accepted"
	ReasonCommand = "command_not_allowed"
)

// AcceptsInbound says why a caller in circle may not run command here, or
// "" when it may (limits of the moment, concurrency and load, are the
// dispatcher's).
func (p *Policy) AcceptsInbound(circle, command string) string {
	if !slices.Contains(p.Inbound.Circles, circle) {
		return ReasonCircle
	}
	if len(p.Inbound.Commands) > 0 && !slices.Contains(p.Inbound.Commands, command) {
		return ReasonCommand
	}
	return ""
}

// AllowsOutbound says whether work may go to a peer trusted in circle.
func (p *Policy) AllowsOutbound(circle string) bool {
	return slices.Contains(p.Outbound.Circles, circle)
}

// Replicates says whether channel replicates with a peer in circle: global
// always does; otherwise the circle's list names it or holds "*".
func (p *Policy) Replicates(channel, circle string) bool {
	if channel == "global" {
		return true
	}
	l := p.Replicate[circle]
	return slices.Contains(l, "*") || slices.Contains(l, channel)
}
