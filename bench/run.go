package bench

import (
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Runner measures one shape at one concurrency for d.
type Runner func(d time.Duration, n int) (Sample, error)

// Shape is one comparison: continuum against one or more peers at several
// concurrencies.
type Shape struct {
	Key       string // short name, matched by -only as "key/N"
	Title     string // what is measured
	Unit      string // of the rate
	Conc      []int  // concurrencies (clients, callers, subscribers, emitters)
	Continuum Runner
	// Name labels the continuum side ("" = continuum); a floor is no daemon.
	Name  string
	Peers []Peer
	// Rounds, when set, overrides Config.Rounds (shapes with costly setup).
	Rounds int
	// MinRate is an absolute goal for continuum's rate, by concurrency.
	MinRate map[int]float64
}

// Peer is what continuum is compared with, and the goal continuum's rate
// must reach relative to it (0: none, a reference).
type Peer struct {
	Name string
	Run  Runner
	Goal float64
	// GoalAt limits the goal to these concurrencies (nil: all).
	GoalAt []int
}

// SideName is the label of the continuum side.
func (s Shape) SideName() string {
	if s.Name == "" {
		return "continuum"
	}
	return s.Name
}

// Shapes are issue 2's live-bus comparisons, then the floors.
func Shapes() []Shape {
	return []Shape{
		{
			Key: "ping", Title: "kernel-handled round trip (kernel/ping vs NATS PING/PONG)", Unit: "calls/s",
			Conc: []int{1, 16}, Continuum: ContinuumPing,
			Peers: []Peer{{Name: "NATS core RTT", Run: NATSPing, Goal: 2}},
		},
		{
			Key: "provided", Title: "client-provided command (caller→kernel→provider→back vs NATS request/reply)", Unit: "calls/s",
			Conc: []int{1, 16}, Continuum: ContinuumProvided,
			Peers: []Peer{{Name: "NATS request/reply", Run: NATSRequest, Goal: 1.5}},
		},
		{
			Key: "fanout", Title: "live fan-out to N subscribers (deliveries counted at all subscribers)", Unit: "deliveries/s",
			Conc: []int{1, 4}, Continuum: ContinuumFanout,
			Peers: []Peer{{Name: "NATS pub/sub", Run: NATSFanout}},
		},
		{
			// The goal is judged here: a NATS publish is fire-and-forget, and so
			// is an events/emit notification; the acked row above measures
			// emit round trips as much as delivery.
			Key: "fanout-nt", Title: "live fan-out, emits sent as notifications (fire-and-forget, as a NATS publish is)", Unit: "deliveries/s",
			Conc: []int{1, 4}, Continuum: ContinuumFanoutNotify,
			Peers: []Peer{{Name: "NATS pub/sub", Run: NATSFanout, Goal: 1, GoalAt: []int{4}}},
		},
		{
			Key: "floor", Title: "floor: raw MessagePack-RPC echo, Unix socket vs TCP loopback (no daemon)", Unit: "calls/s",
			Conc: []int{1, 16}, Name: "raw echo, Unix",
			Continuum: func(d time.Duration, n int) (Sample, error) { return RawEcho(d, n, "unix") },
			Peers:     []Peer{{Name: "raw echo, TCP", Run: func(d time.Duration, n int) (Sample, error) { return RawEcho(d, n, "tcp") }}},
		},
	}
}

// Row is one line of the table: a shape at one concurrency against one peer.
type Row struct {
	Shape     Shape
	Peer      Peer
	N         int
	Continuum Sample
	PeerRun   Sample
}

// Ratio is continuum's rate over the peer's.
func (r Row) Ratio() float64 {
	if r.PeerRun.Rate() == 0 {
		return 0
	}
	return r.Continuum.Rate() / r.PeerRun.Rate()
}

// HasGoal reports whether there is a goal against this peer at this concurrency.
func (r Row) HasGoal() bool {
	if r.Peer.Goal == 0 {
		return false
	}
	return r.Peer.GoalAt == nil || slices.Contains(r.Peer.GoalAt, r.N)
}

// Met reports whether the goal is reached.
func (r Row) Met() bool { return !r.HasGoal() || r.Ratio() >= r.Peer.Goal }

// Config is a run.
type Config struct {
	D      time.Duration  // one window
	Rounds int            // windows per side, rotating which side goes first
	Only   *regexp.Regexp // rows whose "key/N" matches (nil: all)
	Log    io.Writer      // progress lines (nil: none)
	// Side, when "continuum" or "peer", measures only that side (for
	// profiling one of them); ratios are then meaningless.
	Side string
}

// Run measures every selected shape: for each concurrency, Rounds windows of
// each side, rotating which goes first, so drift on a noisy machine falls on
// all of them.
func Run(cfg Config, shapes []Shape) ([]Row, error) {
	if cfg.Rounds < 1 {
		cfg.Rounds = 1
	}
	var rows []Row
	for _, sh := range shapes {
		for _, n := range sh.Conc {
			if cfg.Only != nil && !cfg.Only.MatchString(fmt.Sprintf("%s/%d", sh.Key, n)) {
				continue
			}
			type side struct {
				name string
				run  Runner
				s    Sample
				peer bool
			}
			sides := []*side{{name: sh.SideName(), run: sh.Continuum}}
			for _, p := range sh.Peers {
				sides = append(sides, &side{name: p.Name, run: p.Run, peer: true})
			}
			rounds := cfg.Rounds
			if sh.Rounds > 0 && sh.Rounds < rounds {
				rounds = sh.Rounds
			}
			for r := range rounds {
				for i := range sides {
					sd := sides[(i+r)%len(sides)]
					if (cfg.Side == "continuum" && sd.peer) || (cfg.Side == "peer" && !sd.peer) {
						continue
					}
					s, err := sd.run(cfg.D, n)
					if err != nil {
						return rows, fmt.Errorf("%s n=%d %s: %w", sh.Key, n, sd.name, err)
					}
					if cfg.Log != nil {
						fmt.Fprintf(cfg.Log, "  %-10s n=%-3d %-22s round %d: %12.0f %s  p50 %-9s p99 %-9s%s %s\n",
							sh.Key, n, sd.name, r+1, s.Rate(), sh.Unit, fmtDur(s.Pct(50)), fmtDur(s.Pct(99)), lossNote(s), s.Note)
					}
					sd.s = sd.s.Merge(s)
				}
			}
			for i, p := range sh.Peers {
				rows = append(rows, Row{Shape: sh, Peer: p, N: n, Continuum: sides[0].s, PeerRun: sides[i+1].s})
			}
		}
	}
	return rows, nil
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "–"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func fmtRate(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.2fM", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.1fk", r/1e3)
	}
	return fmt.Sprintf("%.0f", r)
}

// AbsoluteGoals lists the absolute goals (Shape.MinRate) of the measured
// rows, one line each.
func AbsoluteGoals(rows []Row) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range rows {
		want, ok := r.Shape.MinRate[r.N]
		key := fmt.Sprintf("%s/%d", r.Shape.Key, r.N)
		if !ok || seen[key] {
			continue
		}
		seen[key] = true
		mark := "met"
		if r.Continuum.Rate() < want {
			mark = "not met"
		}
		out = append(out, fmt.Sprintf("%s: continuum %s %s, goal ≥ %s: %s", key, fmtRate(r.Continuum.Rate()), r.Shape.Unit, fmtRate(want), mark))
	}
	return out
}

// Markdown writes the rows as a markdown table.
func Markdown(w io.Writer, rows []Row) {
	fmt.Fprintln(w, "| shape | N | continuum (Unix socket) | p50 / p99 | peer (TCP loopback) | p50 / p99 | ratio | goal |")
	fmt.Fprintln(w, "| --- | ---: | ---: | --- | ---: | --- | ---: | --- |")
	for _, r := range rows {
		goal := "–"
		if r.HasGoal() {
			mark := "met"
			if !r.Met() {
				mark = "**not met**"
			}
			goal = fmt.Sprintf("≥ %.1f× %s", r.Peer.Goal, mark)
		}
		side := ""
		if r.Shape.Name != "" {
			side = r.Shape.Name + ": "
		}
		fmt.Fprintf(w, "| %s | %d | %s%s %s%s | %s / %s | %s: %s%s | %s / %s | %.2f× | %s |\n",
			r.Shape.Key, r.N,
			side, fmtRate(r.Continuum.Rate()), r.Shape.Unit, lossNote(r.Continuum), fmtDur(r.Continuum.Pct(50)), fmtDur(r.Continuum.Pct(99)),
			r.Peer.Name, fmtRate(r.PeerRun.Rate()), lossNote(r.PeerRun), fmtDur(r.PeerRun.Pct(50)), fmtDur(r.PeerRun.Pct(99)),
			r.Ratio(), goal)
	}
}

func lossNote(s Sample) string {
	if s.Sent == 0 {
		return ""
	}
	return fmt.Sprintf(" (lost %.1f%%)", 100*float64(s.Lost)/float64(s.Sent))
}

// Text writes the rows as an aligned plain-text table.
func Text(w io.Writer, rows []Row) {
	fmt.Fprintf(w, "%-9s %4s  %14s %9s %9s  %-20s %14s %9s %9s  %7s  %s\n",
		"shape", "N", "continuum", "p50", "p99", "peer", "peer rate", "p50", "p99", "ratio", "goal")
	fmt.Fprintln(w, strings.Repeat("-", 130))
	for _, r := range rows {
		goal := ""
		if r.HasGoal() {
			goal = fmt.Sprintf("≥%.1f× ", r.Peer.Goal)
			if r.Met() {
				goal += "met"
			} else {
				goal += "NOT MET"
			}
		}
		fmt.Fprintf(w, "%-9s %4d  %14s %9s %9s  %-20s %14s %9s %9s  %6.2f×  %s%s\n",
			r.Shape.Key, r.N,
			fmtRate(r.Continuum.Rate())+lossShort(r.Continuum), fmtDur(r.Continuum.Pct(50)), fmtDur(r.Continuum.Pct(99)),
			r.Peer.Name, fmtRate(r.PeerRun.Rate())+lossShort(r.PeerRun), fmtDur(r.PeerRun.Pct(50)), fmtDur(r.PeerRun.Pct(99)),
			r.Ratio(), goal, "")
	}
}

func lossShort(s Sample) string {
	if s.Sent == 0 || s.Lost == 0 {
		return ""
	}
	return fmt.Sprintf(" -%.0f%%", 100*float64(s.Lost)/float64(s.Sent))
}
