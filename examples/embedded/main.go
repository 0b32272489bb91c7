// Command embedded shows an app that runs the continuum kernel inside its own
// process. The app talks to the kernel in-process (no socket, no
// serialization) while the same kernel also listens on a Unix socket, so the
// continuum CLI in another terminal sees the app's command and events.
//
// From the repository root (README.md next to this file says more):
//
//	go run ./examples/embedded
//	bin/continuum --socket /tmp/continuum-embedded-$(id -u)/embedded.sock exec app/greet --param name=Ada
//
// The socket lives in a folder of its own that the kernel creates 0700 (the
// folder, not the socket's mode, keeps other users out), so --socket takes a
// path whose folder is new or already private to you, never a shared folder
// such as /tmp itself:
//
//	go run ./examples/embedded --socket /tmp/my-app/app.sock
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/daemon"
	"github.com/continuum-grid/continuum/ipc/client"
	"github.com/continuum-grid/continuum/kernel"
	flag "github.com/spf13/pflag"
)

func main() {
	socket := flag.String("socket", defaultSocket(), "socket the embedded kernel also serves; its folder is created private (0700) if missing")
	stateDir := flag.String("state-dir", "", "state folder (default: a temporary one)")
	flag.Parse()
	tmpState := ""
	if *stateDir == "" {
		dir, err := os.MkdirTemp("", "continuum-embedded-state-")
		if err != nil {
			log.Fatal(err)
		}
		tmpState, *stateDir = dir, dir
		defer os.RemoveAll(tmpState)
	}

	d, err := daemon.Start(daemon.Config{Kernel: kernel.Config{StateDir: *stateDir}, Socket: *socket})
	if err != nil {
		if tmpState != "" {
			os.RemoveAll(tmpState) // log.Fatal skips the deferred removal
		}
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The app's own client: same API as client.Dial, without a socket.
	app, err := client.NewInProcess(d.Kernel())
	if err != nil {
		log.Fatal(err)
	}
	if _, err := app.DeclareClass(ctx, api.ClassConfig{Name: "app:greeted", SchemaVersion: "v1"}); err != nil {
		log.Fatal(err)
	}
	type greetParams struct {
		Name string `msgpack:"name"`
	}
	err = app.Provide(ctx, api.RegisterParams{Name: "app/greet", Description: "greet someone and emit app:greeted"},
		func(ctx context.Context, inv *client.Invocation) (any, error) {
			var p greetParams
			if err := inv.Params.Decode(&p); err != nil {
				return nil, err
			}
			if p.Name == "" {
				return nil, api.Errorf(api.CodeInvalidArgument, "field \"name\" is required")
			}
			greeting := "hello, " + p.Name
			if _, err := app.Emit(ctx, api.EmitParams{Name: "app:greeted", Payload: map[string]any{"greeting": greeting}}); err != nil {
				return nil, err
			}
			return map[string]any{"greeting": greeting}, nil
		})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("embedded kernel %s serving %s\ntry: bin/continuum --socket %s exec app/greet --param name=Ada\n", d.Kernel().PeerID(), d.SocketPath(), d.SocketPath())

	<-ctx.Done()
	app.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Shutdown(shutdownCtx); err != nil {
		log.Fatal(err)
	}
}

// defaultSocket is a socket in a folder of this user's own under $TMPDIR:
// the kernel creates the folder 0700, and refuses it if another user made it.
func defaultSocket() string {
	return filepath.Join(os.TempDir(), "continuum-embedded-"+strconv.Itoa(os.Getuid()), "embedded.sock")
}
