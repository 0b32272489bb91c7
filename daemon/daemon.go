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
	"sync"

	"github.com/continuum-grid/continuum/ipc/server"
	"github.com/continuum-grid/continuum/ipc/unixsock"
	"github.com/continuum-grid/continuum/kernel"
)

// DefaultMaxMessageSize is the largest message a connection may send.
const DefaultMaxMessageSize = 16 << 20

// Config configures a daemon.
type Config struct {
	Kernel kernel.Config
	// Socket is the Unix socket path; "" means unixsock.DefaultSocketPath().
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
}

// Daemon is a running kernel and its transports.
type Daemon struct {
	kernel *kernel.Kernel
	srv    *server.Server
	ln     net.Listener
	path   string
	log    *slog.Logger

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
			d.path = unixsock.DefaultSocketPath()
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
	if ln != nil {
		d.ln = ln
		d.srv = server.New(k, server.Options{MaxMessageSize: cfg.MaxMessageSize, Logger: logger})
		go func() { d.serveErr <- d.srv.Serve(ln) }()
		logger.Info("continuumd listening", "socket", d.path, "state_dir", k.StateDir())
	}
	return d, nil
}

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
		if d.srv != nil {
			if e := d.srv.Shutdown(ctx); e != nil && !errors.Is(e, context.Canceled) {
				err = fmt.Errorf("socket server: %w", e)
			}
		}
		err = errors.Join(err, d.kernel.Close(ctx))
	})
	return err
}
