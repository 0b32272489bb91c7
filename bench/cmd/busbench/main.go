// Command busbench measures continuumd against NATS in one run on one
// machine and prints a table (and, with -md, the same as markdown for
// docs/BENCHMARKS.md). `make bench` runs it through scripts/bench.sh.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/continuum-grid/continuum/bench"
)

func main() {
	d := flag.Duration("d", time.Second, "length of one measurement window")
	rounds := flag.Int("rounds", 3, "windows per side and row, alternating which side goes first")
	only := flag.String("only", "", "measure only rows whose key/N matches this regexp (ping/1, provided/16, fanout, floor, ...)")
	md := flag.String("md", "", "also write the results as markdown to this file")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run (daemon and clients share the process)")
	side := flag.String("side", "", "measure only this side: continuum or peer (for profiling one)")
	flag.Parse()

	cfg := bench.Config{D: *d, Rounds: *rounds, Log: os.Stderr, Side: *side}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			fatal(err)
		}
		cfg.Only = re
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	machine := describeMachine() + "; " + describeCheckout()
	loadStart := loadavg()
	fmt.Fprintf(os.Stderr, "busbench: %s; window %v × %d rounds per side\n", machine, *d, *rounds)
	start := time.Now()
	shapes := bench.Shapes()
	durable := "durable emit and replay: measured"
	if err := bench.DurableSupported(); err != nil {
		durable = "durable emit and replay: skipped: " + err.Error()
		fmt.Fprintln(os.Stderr, "busbench:", durable)
	} else {
		shapes = append(shapes, bench.DurableShapes()...)
	}
	rows, err := bench.Run(cfg, shapes)
	if err != nil {
		fatal(err)
	}
	took := time.Since(start).Round(time.Second)
	load := fmt.Sprintf("1-minute load average %s at the start, %s at the end", loadStart, loadavg())

	fmt.Println()
	bench.Text(os.Stdout, rows)
	goals := bench.AbsoluteGoals(rows)
	for _, g := range goals {
		fmt.Println(g)
	}
	fmt.Printf("\ncontinuum runs on a Unix socket; NATS cannot listen on one, so its side runs on TCP loopback (127.0.0.1).\n")
	fmt.Printf("%s; took %v; %s\n", machine, took, load)

	if *md != "" {
		var b bytes.Buffer
		fmt.Fprintf(&b, "Run on %s, %s: `%s` (window %v × %d rounds per side, alternating; took %v; %s).\n\n",
			time.Now().UTC().Format("2006-01-02"), machine, commandLine(), *d, *rounds, took, load)
		bench.Markdown(&b, rows)
		if len(goals) > 0 {
			fmt.Fprintln(&b)
			for _, g := range goals {
				fmt.Fprintf(&b, "- %s\n", g)
			}
		}
		fmt.Fprintln(&b, "\ncontinuum runs on a Unix socket; NATS cannot listen on one, so its side runs on TCP loopback (127.0.0.1).")
		if err := os.WriteFile(*md, b.Bytes(), 0o644); err != nil {
			fatal(err)
		}
	}
}

// describeMachine names the CPU, cores and Go version the figures came from.
func describeMachine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	osName := runtime.GOOS
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				osName = strings.Trim(v, `"`)
			}
		}
	}
	nproc := fmt.Sprint(runtime.NumCPU())
	if out, err := exec.Command("nproc").Output(); err == nil {
		nproc = strings.TrimSpace(string(out))
	}
	return fmt.Sprintf("%s, nproc %s, %s, %s %s/%s", osName, nproc, model, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// describeCheckout names the commit the daemon was built from, and says so
// when the daemon's packages had uncommitted changes.
func describeCheckout() string {
	out, err := exec.Command("git", "-C", "..", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "continuum at an unknown commit"
	}
	s := "continuum at " + strings.TrimSpace(string(out))
	dirty, err := exec.Command("git", "-C", "..", "status", "--porcelain", "--", "api", "daemon", "ipc", "kernel").Output()
	if err == nil && len(strings.TrimSpace(string(dirty))) > 0 {
		s += " plus uncommitted changes in api/daemon/ipc/kernel"
	}
	return s
}

// loadavg is the 1-minute load average: other work on the machine shows up
// here, and in every figure.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func commandLine() string {
	if c := os.Getenv("BUSBENCH_COMMAND"); c != "" {
		return c
	}
	return "busbench " + strings.Join(os.Args[1:], " ")
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "busbench:", err)
	os.Exit(1)
}
