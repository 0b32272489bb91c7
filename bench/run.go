package bench

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// Runner measures one shape at one concurrency for d.
type Runner func(d time.Duration, n int) (Sample, error)

// Shape is one comparison: continuum against its peer at several
// concurrencies, with the goal continuum's rate must reach relative to the
// peer's (0: no goal, a floor or a reference).
type Shape struct {
	Key   string  // short name, matched by -only
	Title string  // what is measured
	Unit  string  // of the rate
	Conc  []int   // concurrencies (clients, callers, subscribers, emitters)
	Goal  float64 // continuum/peer rate to reach; 0 = none
	// GoalAt limits the goal to these concurrencies (nil: all).
	GoalAt    []int
	Continuum Runner
	// Name labels the continuum side ("" = continuum); the floor is no daemon.
	Name     string
	PeerName string
	Peer     Runner
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
			Conc: []int{1, 16}, Goal: 2,
			Continuum: ContinuumPing, PeerName: "NATS core RTT", Peer: NATSPing,
		},
		{
			Key: "provided", Title: "client-provided command (caller→kernel→provider→back vs NATS request/reply)", Unit: "calls/s",
			Conc: []int{1, 16}, Goal: 1.5,
			Continuum: ContinuumProvided, PeerName: "NATS request/reply", Peer: NATSRequest,
		},
		{
			Key: "fanout", Title: "live fan-out to N subscribers (deliveries counted at all subscribers)", Unit: "deliveries/s",
			Conc: []int{1, 4}, Goal: 1, GoalAt: []int{4},
			Continuum: ContinuumFanout, PeerName: "NATS pub/sub", Peer: NATSFanout,
		},
		{
			Key: "fanout-nt", Title: "live fan-out, emits sent as notifications (fire-and-forget, as a NATS publish is)", Unit: "deliveries/s",
			Conc:      []int{1, 4},
			Continuum: ContinuumFanoutNotify, PeerName: "NATS pub/sub", Peer: NATSFanout,
		},
		{
			Key: "floor", Title: "floor: raw MessagePack-RPC echo, Unix socket vs TCP loopback (no daemon)", Unit: "calls/s",
			Conc: []int{1, 16}, Name: "raw echo, Unix",
			Continuum: func(d time.Duration, n int) (Sample, error) { return RawEcho(d, n, "unix") },
			PeerName:  "raw echo, TCP", Peer: func(d time.Duration, n int) (Sample, error) { return RawEcho(d, n, "tcp") },
		},
	}
}

// Row is one line of the table: a shape at one concurrency.
type Row struct {
	Shape     Shape
	N         int
	Continuum Sample
	Peer      Sample
}

// Ratio is continuum's rate over the peer's.
func (r Row) Ratio() float64 {
	if r.Peer.Rate() == 0 {
		return 0
	}
	return r.Continuum.Rate() / r.Peer.Rate()
}

// HasGoal reports whether the shape sets a goal at this concurrency.
func (r Row) HasGoal() bool {
	if r.Shape.Goal == 0 {
		return false
	}
	if r.Shape.GoalAt == nil {
		return true
	}
	for _, n := range r.Shape.GoalAt {
		if n == r.N {
			return true
		}
	}
	return false
}

// Met reports whether the goal is reached.
func (r Row) Met() bool { return !r.HasGoal() || r.Ratio() >= r.Shape.Goal }

// Config is a run.
type Config struct {
	D      time.Duration  // one window
	Rounds int            // windows per side, alternating which side goes first
	Only   *regexp.Regexp // rows whose "key/N" matches (nil: all)
	Log    io.Writer      // progress lines (nil: none)
	// Side, when "continuum" or "peer", measures only that side (for
	// profiling one of them); ratios are then meaningless.
	Side string
}

// Run measures every selected shape: for each concurrency, Rounds windows of
// each side, alternating which goes first, so drift on a noisy machine falls
// on both.
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
			row := Row{Shape: sh, N: n}
			for r := range cfg.Rounds {
				sides := []struct {
					name string
					run  Runner
					into *Sample
				}{{sh.SideName(), sh.Continuum, &row.Continuum}, {sh.PeerName, sh.Peer, &row.Peer}}
				if r%2 == 1 {
					sides[0], sides[1] = sides[1], sides[0]
				}
				for _, side := range sides {
					if (cfg.Side == "continuum" && side.into != &row.Continuum) || (cfg.Side == "peer" && side.into != &row.Peer) {
						continue
					}
					s, err := side.run(cfg.D, n)
					if err != nil {
						return rows, fmt.Errorf("%s n=%d %s: %w", sh.Key, n, side.name, err)
					}
					if cfg.Log != nil {
						fmt.Fprintf(cfg.Log, "  %-9s n=%-3d %-20s round %d: %12.0f %s  p50 %-9s p99 %-9s%s %s\n",
							sh.Key, n, side.name, r+1, s.Rate(), sh.Unit, fmtDur(s.Pct(50)), fmtDur(s.Pct(99)), lossNote(s), s.Note)
					}
					*side.into = side.into.Merge(s)
				}
			}
			rows = append(rows, row)
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
			goal = fmt.Sprintf("≥ %.1f× %s", r.Shape.Goal, mark)
		}
		side := ""
		if r.Shape.Name != "" {
			side = r.Shape.Name + ": "
		}
		fmt.Fprintf(w, "| %s | %d | %s%s %s%s | %s / %s | %s: %s%s | %s / %s | %.2f× | %s |\n",
			r.Shape.Key, r.N,
			side, fmtRate(r.Continuum.Rate()), r.Shape.Unit, lossNote(r.Continuum), fmtDur(r.Continuum.Pct(50)), fmtDur(r.Continuum.Pct(99)),
			r.Shape.PeerName, fmtRate(r.Peer.Rate()), lossNote(r.Peer), fmtDur(r.Peer.Pct(50)), fmtDur(r.Peer.Pct(99)),
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
			goal = fmt.Sprintf("≥%.1f× ", r.Shape.Goal)
			if r.Met() {
				goal += "met"
			} else {
				goal += "NOT MET"
			}
		}
		fmt.Fprintf(w, "%-9s %4d  %14s %9s %9s  %-20s %14s %9s %9s  %6.2f×  %s%s\n",
			r.Shape.Key, r.N,
			fmtRate(r.Continuum.Rate())+lossShort(r.Continuum), fmtDur(r.Continuum.Pct(50)), fmtDur(r.Continuum.Pct(99)),
			r.Shape.PeerName, fmtRate(r.Peer.Rate())+lossShort(r.Peer), fmtDur(r.Peer.Pct(50)), fmtDur(r.Peer.Pct(99)),
			r.Ratio(), goal, "")
	}
}

func lossShort(s Sample) string {
	if s.Sent == 0 || s.Lost == 0 {
		return ""
	}
	return fmt.Sprintf(" -%.0f%%", 100*float64(s.Lost)/float64(s.Sent))
}
