package daemon_test

import (
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ws "github.com/coder/websocket"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/daemon"
	"github.com/continuum-grid/continuum/ipc/client"
	"github.com/continuum-grid/continuum/ipc/websocket"
)

// When Shutdown's deadline cuts calls short on both listeners, its error
// names both: the socket server's error is joined to the WebSocket server's,
// not written over it.
func TestShutdownReportsBothListeners(t *testing.T) {
	d := start(t, func(c *daemon.Config) { c.WebSocket.Addr = "127.0.0.1:0" })
	ctx := ctxT(t)

	// A command that answers only when the test ends, provided in process.
	release := make(chan struct{})
	defer close(release)
	var serving atomic.Int32
	prov := inproc(t, d)
	err := prov.Provide(ctx, api.RegisterParams{Name: "test/hang"}, func(ctx context.Context, _ *client.Invocation) (any, error) {
		serving.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// One call to it in flight over the socket...
	sockDone := make(chan error, 1)
	go func() { sockDone <- dial(t, d).Execute(ctx, api.ExecuteParams{Command: "test/hang"}, nil) }()

	// ...and one over the WebSocket.
	token, err := websocket.LoadOrCreateToken(d.Kernel().StateDir() + "/ws-token")
	if err != nil {
		t.Fatal(err)
	}
	wc, _, err := ws.Dial(ctx, "ws://"+d.WebSocketAddr()+"/", &ws.DialOptions{Subprotocols: []string{websocket.Subprotocol, websocket.TokenPrefix + token}})
	if err != nil {
		t.Fatal(err)
	}
	defer wc.CloseNow()
	var req bytes.Buffer
	if err := msgpack.NewEncoder(&req).Encode([]any{0, 1, api.MethodExecute, []any{map[string]any{"command": "test/hang"}}}); err != nil {
		t.Fatal(err)
	}
	if err := wc.Write(ctx, ws.MessageBinary, req.Bytes()); err != nil {
		t.Fatal(err)
	}

	// Both calls are being served once the provider sees two invocations.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if serving.Load() == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the two calls never reached the provider")
		}
		time.Sleep(10 * time.Millisecond)
	}

	sctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = d.Shutdown(sctx)
	var sawWS, sawSock bool
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			sawWS = sawWS || strings.HasPrefix(line, "websocket server: ")
			sawSock = sawSock || strings.HasPrefix(line, "socket server: ")
		}
	}
	if !sawWS || !sawSock {
		t.Fatalf("Shutdown cut calls short on both listeners and said: %v", err)
	}
	<-sockDone
}
