// Package daemon is continuumd as a library: it opens the kernel and serves it
// on the Unix socket (and any other transport configured), and shuts both
// down in the right order. cmd/continuumd is a thin wrapper over Start and
// Shutdown; an app that embeds the kernel uses the same two calls, and talks
// to it in-process with ipc/client.NewInProcess(d.Kernel()).
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"

	"github.com/continuum-grid/continuum/alloysvc"
	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/api/paths"
	"github.com/continuum-grid/continuum/chat"
	"github.com/continuum-grid/continuum/dashboard"
	"github.com/continuum-grid/continuum/grid"
	"github.com/continuum-grid/continuum/inference"
	"github.com/continuum-grid/continuum/ipc/server"
	"github.com/continuum-grid/continuum/ipc/unixsock"
	"github.com/continuum-grid/continuum/ipc/websocket"
	"github.com/continuum-grid/continuum/kernel"
	"github.com/continuum-grid/continuum/persona"
)

// DefaultMaxMessageSize is the largest message a connection may send.
const DefaultMaxMessageSize = 16 << 20

// Config configures a daemon.
type Config struct {
	Kernel kernel.Config
	// Socket is the Unix socket path; "" means paths.Socket().
	Socket string
	// NoSocket runs the kernel without a socket (in-process clients only).
	NoSocket bool
	// Listener, when set, is served instead of binding Socket (systemd socket
	// activation, tests).
	Listener net.Listener
	// MaxMessageSize bounds one message (default 16 MiB).
	MaxMessageSize int
	// Logger receives logs; nil discards them.
	Logger *slog.Logger
	// WebSocket, when its Addr is set, also serves the protocol on a
	// loopback WebSocket listener for browser pages (ipc/websocket).
	WebSocket WebSocketConfig
	// Inference configures the inference/* service (llama.cpp, loaded at
	// the first inference call; see docs/INFERENCE.md).
	Inference inference.Options
	// Grid configures the grid service: QUIC links to trusted peers
	// (ListenQUIC is --listen-quic), trust and invites; see docs/GRID.md.
	Grid grid.Options
	// MetricsListen, when set, serves GET /metrics (Prometheus text) on this
	// loopback host:port (--metrics-listen); see docs/METRICS.md.
	MetricsListen string
	// Persona configures the persona service (docs/PERSONAS.md).
	Persona persona.Options
}

// WebSocketConfig configures the optional WebSocket listener.
type WebSocketConfig struct {
	// Addr is a loopback host:port (--listen-ws); "" leaves the listener off.
	Addr string
	// TokenFile holds the token clients must present (--ws-token-file);
	// made 0600 with a random token when absent. "" means ws-token in the
	// state dir.
	TokenFile string
	// AllowOrigins lists the page origins that may connect (--ws-allow-origin).
	AllowOrigins []string
	// Dashboard serves the dashboard page at /dashboard/ on the listener
	// (package dashboard; --ws-dashboard, on by default in continuumd). Its
	// page may then open the WebSocket, with the token.
	Dashboard bool
}

// Daemon is a running kernel and its transports.
type Daemon struct {
	kernel  *kernel.Kernel
	infer   *inference.Service
	grid    *grid.Service
	persona *persona.Service
	srv     *server.Server
	ws      *websocket.Server
	wsAddr  string

	metricsSrv  *http.Server
	metricsAddr string
	ln          net.Listener
	path        string
	log         *slog.Logger

	serveErr chan error
	once     sync.Once
}

// Start opens the kernel and starts serving it. On error nothing is left
// running.
func Start(cfg Config) (*Daemon, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Kernel.Logger == nil {
		cfg.Kernel.Logger = logger
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = DefaultMaxMessageSize
	}
	d := &Daemon{log: logger, serveErr: make(chan error, 1)}

	// Bind the socket before opening the store, so a second daemon is told
	// "another continuumd is listening" rather than about a file lock.
	ln := cfg.Listener
	if ln == nil && !cfg.NoSocket {
		d.path = cfg.Socket
		if d.path == "" {
			d.path = paths.Socket()
		}
		var err error
		if ln, err = unixsock.Listen(d.path); err != nil {
			return nil, err
		}
	} else if ln != nil {
		d.path = ln.Addr().String()
	}
	k, err := kernel.Open(cfg.Kernel)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return nil, err
	}
	d.kernel = k
	// The alloy service comes first: inference stores each run's alloy in it.
	alloys, err := alloysvc.Host(k, alloysvc.Options{Logger: logger.With("component", "alloy")})
	if err != nil {
		k.Close(context.Background())
		if ln != nil {
			ln.Close()
		}
		return nil, err
	}
	if cfg.Inference.Alloys == nil {
		cfg.Inference.Alloys = alloys
	}
	if cfg.Inference.Logger == nil {
		cfg.Inference.Logger = logger.With("component", "inference")
	}
	if d.infer, err = inference.Host(k, cfg.Inference); err != nil {
		k.Close(context.Background())
		if ln != nil {
			ln.Close()
		}
		return nil, err
	}
	if cfg.Grid.Logger == nil {
		cfg.Grid.Logger = logger.With("component", "grid")
	}
	if d.grid, err = grid.Host(k, cfg.Grid); err != nil {
		d.infer.Close()
		k.Close(context.Background())
		if ln != nil {
			ln.Close()
		}
		return nil, err
	}
	if _, err = chat.Host(k, chat.Options{Logger: logger.With("component", "chat")}); err != nil {
		_ = d.Shutdown(context.Background())
		if ln != nil {
			ln.Close()
		}
		return nil, err
	}
	// Personas after chat: they post chat:posted, which chat declares.
	if d.persona, err = persona.Host(k, persona.Options{Logger: logger.With("component", "persona"), MaxRepliesPerMessage: cfg.Persona.MaxRepliesPerMessage}); err != nil {
		_ = d.Shutdown(context.Background())
		if ln != nil {
			ln.Close()
		}
		return nil, err
	}
	d.addMetricsSources()
	if cfg.MetricsListen != "" {
		if err := d.startMetrics(cfg.MetricsListen); err != nil {
			_ = d.Shutdown(context.Background())
			if ln != nil {
				ln.Close()
			}
			return nil, err
		}
	}
	// The WebSocket listener (and its token file) comes up before the socket
	// is served, so that "continuumd listening" means everything is ready.
	if cfg.WebSocket.Addr != "" {
		if err := d.startWebSocket(cfg); err != nil {
			_ = d.Shutdown(context.Background())
			if ln != nil {
				ln.Close()
			}
			return nil, err
		}
	}
	if ln != nil {
		d.ln = ln
		d.srv = server.New(k, server.Options{MaxMessageSize: cfg.MaxMessageSize, Logger: logger})
		go func() { d.serveErr <- d.srv.Serve(ln) }()
		logger.Info("continuumd listening", "socket", d.path, "state_dir", k.StateDir())
	}
	return d, nil
}

// startWebSocket serves the kernel on the loopback WebSocket listener.
func (d *Daemon) startWebSocket(cfg Config) error {
	wc := cfg.WebSocket
	if wc.TokenFile == "" {
		wc.TokenFile = filepath.Join(d.kernel.StateDir(), "ws-token")
	}
	token, err := websocket.LoadOrCreateToken(wc.TokenFile)
	if err != nil {
		return err
	}
	opts := websocket.Options{
		Token:          token,
		AllowOrigins:   wc.AllowOrigins,
		MaxMessageSize: cfg.MaxMessageSize,
		Logger:         d.log,
	}
	if wc.Dashboard {
		opts.Pages = dashboard.Handler()
	}
	ws, err := websocket.NewServer(d.kernel, opts)
	if err != nil {
		return err
	}
	ln, err := websocket.ListenLoopback(wc.Addr)
	if err != nil {
		return err
	}
	d.ws, d.wsAddr = ws, ln.Addr().String()
	// kernel/info tells local clients where it is (continuum dashboard
	// prints the URL from it); the token file's path, never the token.
	info := &api.WebSocketInfo{Addr: d.wsAddr, TokenFile: wc.TokenFile}
	if abs, err := filepath.Abs(wc.TokenFile); err == nil {
		info.TokenFile = abs
	}
	if wc.Dashboard {
		info.Dashboard = dashboard.Path
	}
	d.kernel.SetWebSocket(info)
	go func() {
		if err := ws.Serve(ln); err != nil {
			d.log.Error("websocket listener stopped", "err", err)
		}
	}()
	d.log.Info("continuumd websocket listening", "addr", d.wsAddr, "token_file", wc.TokenFile, "allowed_origins", wc.AllowOrigins, "dashboard", wc.Dashboard)
	return nil
}

// WebSocketAddr is where the WebSocket listener listens ("" when off).
func (d *Daemon) WebSocketAddr() string { return d.wsAddr }

// Grid is the grid service (links, trust, invites).
func (d *Daemon) Grid() *grid.Service { return d.grid }

// Kernel is the running kernel (for in-process clients and hosted services).
func (d *Daemon) Kernel() *kernel.Kernel { return d.kernel }

// SocketPath is where the daemon listens ("" without a socket).
func (d *Daemon) SocketPath() string { return d.path }

// Done yields the socket server's error
// if it stops on its own (it does not, unless the listener fails).
func (d *Daemon) Done() <-chan error { return d.serveErr }

// Shutdown stops accepting connections, lets in-flight calls finish until
// ctx is done, closes every connection, then closes the kernel and its store.
func (d *Daemon) Shutdown(ctx context.Context) error {
	var err error
	d.once.Do(func() {
		if e := d.stopMetrics(ctx); e != nil && !errors.Is(e, context.Canceled) {
			err = errors.Join(err, fmt.Errorf("metrics server: %w", e))
		}
		if d.ws != nil {
			if e := d.ws.Shutdown(ctx); e != nil && !errors.Is(e, context.Canceled) {
				err = errors.Join(err, fmt.Errorf("websocket server: %w", e))
			}
		}
		if d.srv != nil {
			if e := d.srv.Shutdown(ctx); e != nil && !errors.Is(e, context.Canceled) {
				err = errors.Join(err, fmt.Errorf("socket server: %w", e))
			}
		}
		// Links go down first (peers see "shutdown"), while the log the
		// protocols read is still open.
		if d.grid != nil {
			err = errors.Join(err, d.grid.Close())
		}
		// Personas stop before the kernel: a reply being generated is
		// abandoned unacked and answered at the next start.
		if d.persona != nil {
			d.persona.Close()
		}
		err = errors.Join(err, d.kernel.Close(ctx))
		if d.infer != nil {
			err = errors.Join(err, d.infer.Close())
		}
	})
	return err
}
