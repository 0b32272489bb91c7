package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/client"
)

// A provided command called by its own name is relayed by the caller
// connection's reader and answered by the provider connection's reader (no
// goroutine waits per call in the daemon): the same answers, errors,
// cancellation and disconnection as the relay through commands/execute.

// provideBlocking provides name with a handler that signals entered and
// returns only when its context ends, reporting that on ended.
func provideBlocking(t *testing.T, provider *client.Client, name string) (entered chan string, ended chan error) {
	t.Helper()
	entered, ended = make(chan string, 4), make(chan error, 4)
	err := provider.Provide(ctxT(t), api.RegisterParams{Name: name}, func(ctx context.Context, inv *client.Invocation) (any, error) {
		entered <- inv.ID
		<-ctx.Done()
		ended <- ctx.Err()
		return nil, ctx.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return entered, ended
}

func TestDirectCallsMany(t *testing.T) {
	d := start(t)
	ctx := ctxT(t)
	provider := dial(t, d)
	type echo struct {
		N    int    `msgpack:"n"`
		Fail bool   `msgpack:"fail"`
		Text string `msgpack:"text"`
	}
	err := provider.Provide(ctx, api.RegisterParams{Name: "demo/echo"}, func(_ context.Context, inv *client.Invocation) (any, error) {
		var e echo
		if err := inv.Params.Decode(&e); err != nil {
			return nil, err
		}
		if e.Fail {
			return nil, api.Errorf(api.CodeNotFound, "no %d", e.N)
		}
		return e, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for c := range 8 {
		caller := dial(t, d)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				n := c*1000 + i
				var out echo
				err := caller.Call(ctx, "demo/echo", echo{N: n, Fail: i%10 == 0, Text: "x"}, &out)
				switch {
				case i%10 == 0:
					if api.CodeOf(err) != api.CodeNotFound || !strings.Contains(err.Error(), fmt.Sprint(n)) {
						errs <- fmt.Errorf("call %d: want its not_found, got %v", n, err)
						return
					}
				case err != nil:
					errs <- fmt.Errorf("call %d: %w", n, err)
					return
				case out.N != n || out.Text != "x":
					errs <- fmt.Errorf("call %d: got %+v", n, out)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestDirectCallProviderVanishes(t *testing.T) {
	d := start(t)
	ctx := ctxT(t)
	provider, caller := dial(t, d), dial(t, d)
	entered, _ := provideBlocking(t, provider, "slow/op")
	result := make(chan error, 1)
	go func() { result <- caller.Call(ctx, "slow/op", nil, nil) }()
	<-entered
	start := time.Now()
	provider.Close()
	select {
	case err := <-result:
		wantCode(t, err, api.CodeUnavailable)
		if !strings.Contains(err.Error(), "disconnected") {
			t.Errorf("the error does not say the provider went: %v", err)
		}
		if time.Since(start) > 2*time.Second {
			t.Fatalf("the pending call failed only after %v", time.Since(start))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the pending call did not fail when its provider vanished")
	}
	wantCode(t, caller.Call(ctx, "slow/op", nil, nil), api.CodeUnknownMethod)
}

func TestDirectCallCancelReachesProvider(t *testing.T) {
	d := start(t)
	provider, caller := dial(t, d), dial(t, d)
	entered, ended := provideBlocking(t, provider, "slow/op")
	ctx, cancel := context.WithCancel(ctxT(t))
	result := make(chan error, 1)
	go func() { result <- caller.Call(ctx, "slow/op", nil, nil) }()
	<-entered
	cancel()
	if err := <-result; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller got %v, want its context's error", err)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the provider's handler was not cancelled")
	}
	// The connection still serves: the next call is answered.
	if _, err := caller.Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

func TestDirectCallCallerGoes(t *testing.T) {
	d := start(t)
	provider, caller := dial(t, d), dial(t, d)
	entered, ended := provideBlocking(t, provider, "slow/op")
	go func() { _ = caller.Call(context.Background(), "slow/op", nil, nil) }()
	<-entered
	caller.Close()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the provider's handler was not cancelled when its caller went")
	}
	// The provider still serves others.
	other := dial(t, d)
	result := make(chan error, 1)
	go func() { result <- other.Call(ctxT(t), "slow/op", nil, nil) }()
	<-entered
	provider.Close()
	wantCode(t, <-result, api.CodeUnavailable)
}

func TestExecuteCancelReachesProvider(t *testing.T) {
	d := start(t)
	provider, caller := dial(t, d), dial(t, d)
	entered, ended := provideBlocking(t, provider, "slow/op")
	ctx, cancel := context.WithCancel(ctxT(t))
	result := make(chan error, 1)
	go func() { result <- caller.Execute(ctx, api.ExecuteParams{Command: "slow/op", TimeoutMs: 60_000}, nil) }()
	<-entered
	cancel()
	if err := <-result; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller got %v, want its context's error", err)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the provider's handler was not cancelled")
	}
	// A deadline the provider does not meet, on the same connections.
	start := time.Now()
	go func() { result <- caller.Execute(ctxT(t), api.ExecuteParams{Command: "slow/op", TimeoutMs: 50}, nil) }()
	<-entered
	err := <-result
	wantCode(t, err, api.CodeDeadlineExceeded)
	if time.Since(start) > 3*time.Second {
		t.Fatalf("after %v: %v", time.Since(start), err)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the provider's handler was not cancelled at the deadline")
	}
	// The daemon's own deadline, with no client-side one in the way.
	go func() {
		result <- caller.Call(ctxT(t), api.MethodExecute, api.ExecuteParams{Command: "slow/op", TimeoutMs: 50}, nil)
	}()
	<-entered
	err = <-result
	wantCode(t, err, api.CodeDeadlineExceeded)
	if !strings.Contains(err.Error(), "within 50 ms") {
		t.Fatalf("deadline error: %v", err)
	}
	<-ended
}
