// Command continuumd is the continuum daemon: one per machine account. It
// serves the kernel on a Unix socket; see README.md and docs/PROTOCOL.md.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/continuum-grid/continuum/api/paths"
	"github.com/continuum-grid/continuum/daemon"
	"github.com/continuum-grid/continuum/grid"
	"github.com/continuum-grid/continuum/grid/replicate"
	"github.com/continuum-grid/continuum/inference"
	"github.com/continuum-grid/continuum/ipc/unixsock"
	"github.com/continuum-grid/continuum/kernel"
	"github.com/continuum-grid/continuum/kernel/airc"
	flag "github.com/spf13/pflag"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "continuumd:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("continuumd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := fs.String("socket", paths.Socket(), "Unix socket to listen on")
	stateDir := fs.String("state-dir", paths.StateDir(), "folder for the bbolt file and the identity key")
	maxMsg := fs.Int("max-message-size", daemon.DefaultMaxMessageSize, "largest message a client may send, in bytes")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	drain := fs.Duration("drain-timeout", 10*time.Second, "how long SIGTERM waits for in-flight calls")
	configFile := fs.String("config", "", "file of settings SIGHUP reloads (key = value a line; today: log-level); read at start too, where it wins over the flags")
	version := fs.Bool("version", false, "print the version and exit")
	listenQUIC := fs.String("listen-quic", "", "accept grid links (QUIC) on this UDP host:port, e.g. 0.0.0.0:7946 or 127.0.0.1:0 for any free port; off when empty")
	replicateList := fs.String("replicate", "", "channels to replicate with every trusted peer, comma-separated (global always); empty: global with every peer and every channel with household peers")
	metricsListen := fs.String("metrics-listen", "", "serve Prometheus /metrics on this loopback host:port (127.0.0.1:9464); off when empty")
	listenWS := fs.String("listen-ws", "", "also serve on a loopback WebSocket at host:port (127.0.0.1:7777); off when empty")
	wsTokenFile := fs.String("ws-token-file", "", "file with the WebSocket token, made 0600 when absent (default: ws-token in the state dir)")
	wsOrigins := fs.StringArray("ws-allow-origin", nil, "origin of a page allowed to open the WebSocket, e.g. http://127.0.0.1:8080 (repeatable)")
	wsDashboard := fs.Bool("ws-dashboard", true, "serve the dashboard page at /dashboard/ on the --listen-ws listener (continuum dashboard prints its URL); --ws-dashboard=false turns it off")
	llamaDir := fs.String("llama-lib-dir", inference.DefaultLibDir(), "folder of the llama.cpp libraries, as filled by make llama-libs; default $"+inference.EnvLibDir+", else ./.cache/llama/cpu, else ../.cache/llama/cpu next to the executable")
	llamaFile := fs.String("llama-file", "", "file name of libllama in --llama-lib-dir (default: found by pattern, libllama.*.so)")
	ggmlFile := fs.String("ggml-file", "", "file name of libggml in --llama-lib-dir (default: found by pattern, libggml.*.so)")
	ggmlBaseFile := fs.String("ggml-base-file", "", "file name of libggml-base in --llama-lib-dir (default: libggml-base.so)")
	noReload := fs.Bool("no-reload-models", false, "do not load again at start the models that were loaded (continuum model load) when continuumd last stopped")
	allowCPU := fs.Bool("allow-cpu", false, "run inference on the CPU when no GPU is usable (development); without it inference answers gpu_unavailable")
	inferCtx := fs.Int("inference-ctx", 0, "context length per generation in tokens (0: the model's, at most 4096)")
	inferThreads := fs.Int("inference-threads", 0, "CPU threads per generation (0: half the CPUs)")
	retainCount := fs.Int("retain-count", 0, "keep at most this many events per channel of the airc log, dropping the oldest (0: no limit)")
	retainAge := fs.String("retain-age", "", "drop logged events older than this, e.g. 720h or 30d (empty: no limit)")
	retainRules := fs.StringArray("retain", nil, "per-channel limits replacing the two above: CHANNEL=count:N,age:DUR or CHANNEL=none (repeatable)")
	retainEvery := fs.Duration("retain-interval", time.Minute, "how often retention runs, when any limit is set")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "continuumd: the continuum daemon (version %s)\n\nUsage: continuumd [flags]\n\nFlags (defaults are the resolved paths for this user):\n", kernel.Version)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return err
	}
	if *version {
		fmt.Println(kernel.Version)
		return nil
	}
	level := new(slog.LevelVar)
	logger, err := newLogger(stderr, *logLevel, *logFormat, level)
	if err != nil {
		return err
	}
	if *configFile != "" {
		r, err := readReloadable(*configFile)
		if err != nil {
			return err
		}
		if r.LogLevel != "" {
			_ = level.UnmarshalText([]byte(r.LogLevel)) // checked by readReloadable
		}
	}
	if *maxMsg < 1024 {
		return fmt.Errorf("--max-message-size %d is too small (at least 1024)", *maxMsg)
	}

	defRetain, chanRetain, err := retentionConfig(*retainCount, *retainAge, *retainRules)
	if err != nil {
		return err
	}
	if *retainEvery <= 0 {
		return fmt.Errorf("--retain-interval %s: must be positive", *retainEvery)
	}
	if defRetain != (airc.Retention{}) || len(chanRetain) > 0 {
		// Said once at start, so a log reader knows why old events are gone.
		logger.Info("airc log retention", "count", defRetain.MaxCount, "age", defRetain.MaxAge, "per_channel", fmt.Sprint(chanRetain), "every", *retainEvery)
	}

	cfg := daemon.Config{
		Kernel: kernel.Config{
			StateDir:          *stateDir,
			Logger:            logger,
			DefaultRetention:  defRetain,
			Retention:         chanRetain,
			RetentionInterval: *retainEvery,
		},
		Socket:         *socket,
		MaxMessageSize: *maxMsg,
		WebSocket:      daemon.WebSocketConfig{Addr: *listenWS, TokenFile: *wsTokenFile, AllowOrigins: *wsOrigins, Dashboard: *wsDashboard},
		MetricsListen:  *metricsListen,
		Logger:         logger,
		Grid:           grid.Options{ListenQUIC: *listenQUIC, Replicate: replicateOptions(*replicateList)},
		Inference: inference.Options{
			LlamaLibDir:  *llamaDir,
			LlamaFile:    *llamaFile,
			GGMLFile:     *ggmlFile,
			GGMLBaseFile: *ggmlBaseFile,
			AllowCPU:     *allowCPU,
			NoReload:     *noReload,
			NCtx:         *inferCtx,
			NThreads:     *inferThreads,
		},
	}
	if lns, err := unixsock.ListenersFromSystemd(); err != nil {
		return err
	} else if len(lns) > 0 {
		cfg.Listener = lns[0]
	}
	// Catch signals before the socket serves: a client may signal as soon
	// as it got an answer, and Go's default SIGINT handling would kill the
	// process without draining.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	d, err := daemon.Start(cfg)
	if err != nil {
		return err
	}
	_ = daemon.NotifyReady()
	wdCtx, wdStop := context.WithCancel(context.Background())
	defer wdStop()
	go daemon.RunWatchdog(wdCtx, nil)
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				if *configFile != "" {
					if r, err := readReloadable(*configFile); err != nil {
						logger.Error("SIGHUP: settings kept", "reason", err.Error())
					} else {
						r.apply(level, logger, *configFile)
					}
				}
				// SIGHUP reloads the grid policy (docs/GRID.md "Policy"):
				// swapped in whole, or the old one kept with the reason.
				if g := d.Grid(); g != nil {
					r := g.ReloadPolicy()
					if r.Loaded {
						logger.Info("SIGHUP: grid policy reloaded", "path", r.Path, "source", r.Source, "tests", r.Tests)
					} else {
						logger.Error("SIGHUP: grid policy kept", "path", r.Path, "reason", r.Reason)
					}
				}
				continue
			}
			logger.Info("shutting down", "signal", sig.String())
			_ = daemon.NotifyStopping()
			wdStop()
			ctx, cancel := context.WithTimeout(context.Background(), *drain)
			err := d.Shutdown(ctx)
			cancel()
			return err
		case err := <-d.Done():
			ctx, cancel := context.WithTimeout(context.Background(), *drain)
			defer cancel()
			_ = d.Shutdown(ctx)
			return fmt.Errorf("socket server stopped: %w", err)
		}
	}
}

// newLogger writes at level (set into lv, which SIGHUP may change later).
func newLogger(w io.Writer, level, format string, lv *slog.LevelVar) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	lv.Set(l)
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// replicateOptions turns --replicate into the replication policy.
func replicateOptions(list string) replicate.Options {
	var chans []string
	for _, c := range strings.Split(list, ",") {
		if c = strings.TrimSpace(c); c != "" {
			chans = append(chans, c)
		}
	}
	if len(chans) == 0 {
		return replicate.Options{}
	}
	return replicate.Options{Channels: replicate.ChannelList(chans)}
}
