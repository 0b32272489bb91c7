// Command viadaemon measures generation through a running continuumd the way
// an application sees it: a client on the Unix socket loads the model with
// inference/load, subscribes to inference:tokens, and calls
// inference/generate with stream: true, timing each token's event as it
// arrives. It is the continuumd side of scripts/bench-inference.sh; the other
// side is bench/node-llama (node-llama-cpp in-process, same libraries, same
// model, same prompt, same greedy decoding).
//
//	continuumd --allow-cpu --inference-threads 1 --inference-ctx 1024 --socket S &
//	go -C bench run ./cmd/viadaemon -socket S -model /tmp/bench.gguf -runs 20
//
// With -direct LIBDIR it drives the same Go bindings (package llama)
// in-process instead, without the daemon, timing onToken: the difference
// between the two is what the daemon adds (socket, event bus, encoding),
// and the difference between -direct and node is the bindings' own.
//
// Prints one JSON object: per-run tokens/s (tokens after the first over the
// time from the first to the last event) and time to first token (from
// sending the request to the first event), both measured by the client, and
// the daemon's own figures from the result, plus the first token ids (to
// check that both sides do the same work).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/client"
	"github.com/continuum-grid/continuum/llama"
)

type report struct {
	Engine             string    `json:"engine"`
	Runs               int       `json:"runs"`
	MaxTokens          int       `json:"maxTokens"`
	TokensPerSec       []float64 `json:"tokensPerSecRuns"`
	TTFTMs             []float64 `json:"ttftMsRuns"`
	ServerTokensPerSec []float64 `json:"serverTokensPerSecRuns"`
	ServerTTFTMs       []float64 `json:"serverTtftMsRuns"`
	FirstIDs           []int32   `json:"firstIds"`
	// CPU time per generated token over the measured runs: of the process
	// that runs llama.cpp (the daemon, or this one with -direct), and of this
	// client. Unlike wall-clock rates it hardly moves with the machine's
	// load, so it shows what each side spends even when the rates are noisy.
	CPUMsPerToken       float64 `json:"cpuMsPerToken"`
	ClientCPUMsPerToken float64 `json:"clientCpuMsPerToken,omitempty"`
}

type arrival struct {
	id    string
	index int
	at    time.Time
}

func main() {
	socket := flag.String("socket", "", "continuumd socket")
	model := flag.String("model", "", "absolute path of the GGUF model")
	runs := flag.Int("runs", 20, "measured generations")
	maxTokens := flag.Int("max-tokens", 128, "tokens per generation")
	prompt := flag.String("prompt", "the quick brown fox jumps over the lazy dog", "prompt")
	direct := flag.String("direct", "", "drive the llama.cpp libraries in this folder in-process instead of a daemon")
	threads := flag.Int("threads", 1, "with -direct: CPU threads")
	daemonPID := flag.Int("daemon-pid", 0, "continuumd's process id, to report its CPU time per token")
	flag.Parse()
	if (*socket == "") == (*direct == "") || *model == "" {
		fmt.Fprintln(os.Stderr, "usage: viadaemon (-socket PATH | -direct LIBDIR) -model /abs/model.gguf [-runs N]")
		os.Exit(2)
	}
	var err error
	if *direct != "" {
		err = runDirect(*direct, *model, *prompt, *runs, *maxTokens, *threads)
	} else {
		err = run(*socket, *model, *prompt, *runs, *maxTokens, *daemonPID)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "viadaemon:", err)
		os.Exit(1)
	}
}

func run(socket, model, prompt string, runs, maxTokens, daemonPID int) error {
	ctx := context.Background()
	c, err := client.Dial(ctx, socket)
	if err != nil {
		return err
	}
	defer c.Close()
	// The model may still be loaded from an earlier round (the daemon
	// outlives this process): naming it by path finds it or loads it.
	sub, err := c.Subscribe(ctx, api.SubscribeParams{Pattern: api.EventInferenceTokens})
	if err != nil {
		return err
	}
	// Arrival times are taken by a goroutine that does nothing else, so the
	// time the caller spends decoding the reply does not delay them.
	arrivals := make(chan arrival, 4*maxTokens)
	go func() {
		for ev := range sub.Events() {
			now := time.Now()
			var te api.TokenEvent
			if api.Assign(&te, ev.Payload) == nil {
				arrivals <- arrival{te.RequestID, te.Index, now}
			}
		}
		close(arrivals)
	}()

	gen := func(id string, n int, stream bool) (api.GenerateResult, error) {
		var r api.GenerateResult
		err := c.Call(ctx, api.MethodInferenceGenerate, api.GenerateParams{Model: model, Prompt: prompt, MaxTokens: n, Stream: stream, RequestID: id}, &r)
		return r, err
	}
	// Warm-up: the first call loads the model, and each of the daemon's
	// contexts is created on its first use; node's side also warms up.
	for range 2 {
		if _, err := gen("warm", 8, false); err != nil {
			return err
		}
	}

	rep := report{Engine: "continuumd (Go client over the Unix socket)", Runs: runs, MaxTokens: maxTokens}
	daemonCPU0, client0 := procCPU(daemonPID), selfCPU()
	for i := range runs {
		id := "bench-" + strconv.Itoa(i)
		start := time.Now()
		res, err := gen(id, maxTokens, true)
		if err != nil {
			return err
		}
		if len(res.Tokens) != maxTokens {
			return fmt.Errorf("run %d: %d tokens (%s), want %d", i, len(res.Tokens), res.StopReason, maxTokens)
		}
		var first, last time.Time
		for got := 0; got < maxTokens; {
			select {
			case a, ok := <-arrivals:
				if !ok {
					return fmt.Errorf("the subscription ended")
				}
				if a.id != id {
					continue
				}
				if a.index == 0 {
					first = a.at
				}
				last = a.at
				got++
			case <-time.After(10 * time.Second):
				return fmt.Errorf("run %d: events missing", i)
			}
		}
		rep.TokensPerSec = append(rep.TokensPerSec, float64(maxTokens-1)/last.Sub(first).Seconds())
		rep.TTFTMs = append(rep.TTFTMs, float64(first.Sub(start).Microseconds())/1000)
		rep.ServerTokensPerSec = append(rep.ServerTokensPerSec, res.TokensPerSec)
		rep.ServerTTFTMs = append(rep.ServerTTFTMs, res.TimeToFirstTokenMs)
		if i == 0 {
			rep.FirstIDs = res.Tokens[:min(8, len(res.Tokens))]
		}
	}
	tokens := float64(runs * maxTokens)
	if daemonPID > 0 {
		rep.CPUMsPerToken = float64((procCPU(daemonPID) - daemonCPU0).Microseconds()) / 1000 / tokens
	}
	rep.ClientCPUMsPerToken = float64((selfCPU() - client0).Microseconds()) / 1000 / tokens
	return json.NewEncoder(os.Stdout).Encode(rep)
}

// selfCPU is this process's user and system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is another process's user and system CPU time, from
// /proc/PID/stat (fields 14 and 15, in clock ticks of 10 ms on Linux).
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: count from after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// runDirect is run without the daemon: the same context options as the
// daemon's (1024-token context, threads), the same request, tokens timed in
// onToken.
func runDirect(libDir, model, prompt string, runs, maxTokens, threads int) error {
	ctx := context.Background()
	lib, err := llama.Load(llama.LibraryOptions{Dir: libDir})
	if err != nil {
		return err
	}
	m, err := lib.LoadModel(ctx, model, llama.ModelOptions{AllowCPU: true})
	if err != nil {
		return err
	}
	defer m.Close()
	cx, err := m.NewContext(llama.ContextOptions{NCtx: 1024, NThreads: threads})
	if err != nil {
		return err
	}
	req := llama.GenerateRequest{Prompt: prompt, MaxTokens: 8}
	if _, err := cx.Generate(ctx, req, nil); err != nil { // warm-up
		return err
	}
	req.MaxTokens = maxTokens
	rep := report{Engine: "Go bindings in-process (package llama)", Runs: runs, MaxTokens: maxTokens}
	cpu0 := selfCPU()
	for i := range runs {
		var first, last time.Time
		start := time.Now()
		res, err := cx.Generate(ctx, req, func(t llama.Token) error {
			now := time.Now()
			if t.Index == 0 {
				first = now
			}
			last = now
			return nil
		})
		if err != nil {
			return err
		}
		if len(res.Tokens) != maxTokens {
			return fmt.Errorf("run %d: %d tokens (%s), want %d", i, len(res.Tokens), res.StopReason, maxTokens)
		}
		rep.TokensPerSec = append(rep.TokensPerSec, float64(maxTokens-1)/last.Sub(first).Seconds())
		rep.TTFTMs = append(rep.TTFTMs, float64(first.Sub(start).Microseconds())/1000)
		rep.ServerTokensPerSec = append(rep.ServerTokensPerSec, res.TokensPerSec)
		rep.ServerTTFTMs = append(rep.ServerTTFTMs, res.TimeToFirstTokenMs)
		if i == 0 {
			rep.FirstIDs = res.Tokens[:min(8, len(res.Tokens))]
		}
	}
	rep.CPUMsPerToken = float64((selfCPU() - cpu0).Microseconds()) / 1000 / float64(runs*maxTokens)
	return json.NewEncoder(os.Stdout).Encode(rep)
}
