package websocket

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ws "github.com/coder/websocket"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/internal/testbackend"
)

const token = "0123456789abcdef"

func start(t *testing.T, opts Options) (string, *Server, *testbackend.Backend) {
	t.Helper()
	b := testbackend.New()
	if opts.Token == "" {
		opts.Token = token
	}
	s, err := NewServer(b, opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := ListenLoopback("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "ws://" + ln.Addr().String() + "/", s, b
}

func dial(t *testing.T, url string, header http.Header, protocols ...string) (*ws.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := ws.Dial(ctx, url, &ws.DialOptions{HTTPHeader: header, Subprotocols: protocols})
	if c != nil {
		c.SetReadLimit(-1)
		t.Cleanup(func() { c.CloseNow() })
	}
	return c, resp, err
}

func send(t *testing.T, c *ws.Conn, v any) {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Write(context.Background(), ws.MessageBinary, b); err != nil {
		t.Fatal(err)
	}
}

func recv(t *testing.T, c *ws.Conn) []any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != ws.MessageBinary {
		t.Fatalf("got a %v frame", typ)
	}
	var m []any
	if err := msgpack.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func errCode(m []any) string {
	e, _ := m[2].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func TestCallsWithTokenSubprotocol(t *testing.T) {
	url, _, _ := start(t, Options{})
	c, _, err := dial(t, url, nil, Subprotocol, TokenPrefix+token)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subprotocol() != Subprotocol {
		t.Fatalf("subprotocol %q", c.Subprotocol())
	}
	send(t, c, []any{0, 1, "kernel/ping", []any{}})
	m := recv(t, c)
	if m[0] != int8(1) || m[2] != nil {
		t.Fatalf("reply %v", m)
	}
	send(t, c, []any{0, 2, testbackend.MethodCaller, []any{}})
	m = recv(t, c)
	if caller, _ := m[3].(map[string]any); caller["Transport"] != "ws" {
		t.Fatalf("caller %v", m[3])
	}
	// the server's own requests and notifications travel too
	send(t, c, []any{0, 3, testbackend.MethodNotify, []any{map[string]any{"method": "x/y", "count": 2}}})
	got := 0
	for got < 3 {
		m := recv(t, c)
		got++
		if m[0] == int8(1) && errCode(m) != "" {
			t.Fatalf("notify failed: %v", m)
		}
	}
}

func TestBearerTokenForPrograms(t *testing.T) {
	url, _, _ := start(t, Options{})
	c, _, err := dial(t, url, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatal(err)
	}
	send(t, c, []any{0, 1, "kernel/ping", []any{}})
	if m := recv(t, c); m[2] != nil {
		t.Fatalf("reply %v", m)
	}
}

func TestWrongTokenIsUnauthenticated(t *testing.T) {
	url, _, b := start(t, Options{})
	for name, protos := range map[string][]string{
		"none":  {Subprotocol},
		"wrong": {Subprotocol, TokenPrefix + "nope"},
	} {
		t.Run(name, func(t *testing.T) {
			c, _, err := dial(t, url, nil, protos...)
			if err != nil {
				t.Fatal(err)
			}
			m := recv(t, c)
			if m[0] != int8(2) || m[1] != api.NotifyProtocolError {
				t.Fatalf("got %v", m)
			}
			if p := m[2].([]any)[0].(map[string]any); p["code"] != string(api.CodeUnauthenticated) {
				t.Fatalf("code %v", p)
			}
			_, _, err = c.Read(context.Background())
			if ws.CloseStatus(err) != ws.StatusPolicyViolation {
				t.Fatalf("close: %v", err)
			}
			if n := b.Sessions(); n != 0 {
				t.Fatalf("%d sessions opened for an unauthenticated connection", n)
			}
		})
	}
}

func TestOriginAndHostChecks(t *testing.T) {
	url, _, _ := start(t, Options{AllowOrigins: []string{"http://127.0.0.1:8080", "HTTP://LocalHost"}})
	for _, c := range []struct {
		origin, host string
		ok           bool
	}{
		{"http://127.0.0.1:8080", "", true},
		{"http://localhost:80", "", true},
		{"", "", true}, // a program, no Origin: the token decides
		{"http://evil.example", "", false},
		{"http://127.0.0.1:8081", "", false},
		{"null", "", false},
		{"http://127.0.0.1:8080", "evil.example", false}, // DNS rebinding
	} {
		h := http.Header{}
		if c.origin != "" {
			h.Set("Origin", c.origin)
		}
		u := url
		if c.host != "" {
			h.Set("Host", c.host)
		}
		conn, resp, err := dialHost(t, u, h, c.host)
		if c.ok {
			if err != nil {
				t.Errorf("origin %q host %q refused: %v", c.origin, c.host, err)
				continue
			}
			conn.CloseNow()
			continue
		}
		if err == nil {
			t.Errorf("origin %q host %q accepted", c.origin, c.host)
			conn.CloseNow()
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("origin %q host %q: %v", c.origin, c.host, err)
		}
	}
}

// dialHost dials with a Host header that differs from the address.
func dialHost(t *testing.T, url string, h http.Header, host string) (*ws.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client := &http.Client{Transport: &hostTransport{host: host}}
	return ws.Dial(ctx, url, &ws.DialOptions{HTTPHeader: h, HTTPClient: client, Subprotocols: []string{Subprotocol, TokenPrefix + token}})
}

type hostTransport struct{ host string }

func (h *hostTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if h.host != "" {
		r.Host = h.host
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	url, _, _ := start(t, Options{MaxMessageSize: 1024})
	good, _, err := dial(t, url, nil, Subprotocol, TokenPrefix+token)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(c *ws.Conn){
		"text frame": func(c *ws.Conn) {
			c.Write(context.Background(), ws.MessageText, []byte("hello"))
		},
		"not msgpack-rpc": func(c *ws.Conn) { send(t, c, map[string]any{"a": 1}) },
		"two messages in one frame": func(c *ws.Conn) {
			a, _ := msgpack.Marshal([]any{0, 1, "kernel/ping", []any{}})
			c.Write(context.Background(), ws.MessageBinary, append(a, a...))
		},
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			c, _, err := dial(t, url, nil, Subprotocol, TokenPrefix+token)
			if err != nil {
				t.Fatal(err)
			}
			f(c)
			m := recv(t, c)
			code := ""
			if m[0] == int8(2) {
				code, _ = m[2].([]any)[0].(map[string]any)["code"].(string)
			} else {
				code = errCode(m)
			}
			if code != string(api.CodeProtocolError) {
				t.Fatalf("got %v", m)
			}
			if _, _, err := c.Read(context.Background()); err == nil {
				t.Fatal("connection still open")
			}
		})
	}
	t.Run("too large, answered by msgid", func(t *testing.T) {
		c, _, err := dial(t, url, nil, Subprotocol, TokenPrefix+token)
		if err != nil {
			t.Fatal(err)
		}
		send(t, c, []any{0, 42, testbackend.MethodEcho, []any{map[string]any{"x": strings.Repeat("y", 4096)}}})
		m := recv(t, c)
		if m[0] != int8(1) || m[1] != int8(42) || errCode(m) != string(api.CodeMessageTooLarge) {
			t.Fatalf("got %v", m)
		}
	})
	send(t, good, []any{0, 9, "kernel/ping", []any{}})
	if m := recv(t, good); m[2] != nil {
		t.Fatalf("the good connection suffered: %v", m)
	}
}

func TestListenLoopbackRefusesOthers(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0", "example.com:0"} {
		if ln, err := ListenLoopback(addr); err == nil {
			ln.Close()
			t.Errorf("%s accepted", addr)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0"} {
		ln, err := ListenLoopback(addr)
		if err != nil {
			t.Errorf("%s: %v", addr, err)
			continue
		}
		if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
			t.Errorf("%s listens on %v", addr, ip)
		}
		ln.Close()
	}
}

func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "ws-token")
	a, err := LoadOrCreateToken(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 64 {
		t.Fatalf("token %q", a)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	b, err := LoadOrCreateToken(path)
	if err != nil || b != a {
		t.Fatalf("second load %q %v", b, err)
	}
	os.Chmod(path, 0o644)
	if _, err := LoadOrCreateToken(path); err == nil {
		t.Fatal("a world-readable token file was accepted")
	}
}

func TestShutdownClosesConnections(t *testing.T) {
	b := testbackend.New()
	s, err := NewServer(b, Options{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := ListenLoopback("127.0.0.1:0")
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	c, _, err := dial(t, "ws://"+ln.Addr().String()+"/", nil, Subprotocol, TokenPrefix+token)
	if err != nil {
		t.Fatal(err)
	}
	send(t, c, []any{0, 1, "kernel/ping", []any{}})
	recv(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(context.Background()); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read after shutdown: %v", err)
	}
	if n := b.Sessions(); n != 0 {
		t.Fatalf("%d sessions left", n)
	}
}

func TestNewServerChecksOptions(t *testing.T) {
	if _, err := NewServer(testbackend.New(), Options{}); err == nil {
		t.Error("no token accepted")
	}
	if _, err := NewServer(testbackend.New(), Options{Token: "has space"}); err == nil {
		t.Error("bad token accepted")
	}
	if _, err := NewServer(testbackend.New(), Options{Token: token, AllowOrigins: []string{"127.0.0.1:8080"}}); err == nil {
		t.Error("origin without scheme accepted")
	}
}

// TestPages: with Options.Pages, plain requests reach the page handler (Host
// still checked), and the listener's own origin may open the WebSocket,
// with the token still required; other origins stay refused.
func TestPages(t *testing.T) {
	pages := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("page " + r.URL.Path))
	})
	url, _, _ := start(t, Options{Pages: pages, AllowOrigins: []string{"http://127.0.0.1:8080"}})
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "ws://"), "/")
	port := addr[strings.LastIndex(addr, ":")+1:]

	get := func(host string) (int, string) {
		req, err := http.NewRequest("GET", "http://"+addr+"/dashboard/", nil)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		return resp.StatusCode, b.String()
	}
	if code, body := get(""); code != 200 || body != "page /dashboard/" {
		t.Fatalf("page: %d %q", code, body)
	}
	if code, _ := get("evil.example:" + port); code != http.StatusForbidden {
		t.Fatalf("page with a rebinding Host: %d, want 403", code)
	}

	for _, c := range []struct {
		origin, host string
		ok           bool
	}{
		{"http://" + addr, "", true},                                   // a page it served
		{"http://localhost:" + port, "localhost:" + port, true},        // same, by name
		{"http://127.0.0.1:8080", "", true},                            // still allowed explicitly
		{"http://localhost:" + port, "", false},                        // not the Host it was asked by
		{"http://127.0.0.1:1", "", false},                              // another port
		{"https://" + addr, "", false},                                 // another scheme
		{"http://evil.example:" + port, "evil.example:" + port, false}, // DNS rebinding
	} {
		h := http.Header{"Origin": {c.origin}}
		conn, resp, err := dialHost(t, url, h, c.host)
		if c.ok != (err == nil) {
			t.Errorf("origin %q host %q: ok=%v err=%v", c.origin, c.host, c.ok, err)
		}
		if err == nil {
			conn.CloseNow()
		} else if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("origin %q host %q: %v (want 403)", c.origin, c.host, err)
		}
	}

	// own origin without the token: upgraded, then refused as unauthenticated
	c, _, err := dial(t, url, http.Header{"Origin": {"http://" + addr}}, Subprotocol)
	if err != nil {
		t.Fatal(err)
	}
	if m := recv(t, c); m[0] != int8(2) || m[1] != api.NotifyProtocolError {
		t.Fatalf("got %v", m)
	}
}

// TestNoPagesNoOwnOrigin: without Pages the listener's own origin is not
// special, and a plain GET is not served.
func TestNoPagesNoOwnOrigin(t *testing.T) {
	url, _, _ := start(t, Options{})
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "ws://"), "/")
	if _, resp, err := dial(t, url, http.Header{"Origin": {"http://" + addr}}, Subprotocol, TokenPrefix+token); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("own origin without Pages: %v", err)
	}
	resp, err := http.Get("http://" + addr + "/dashboard/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 200 {
		t.Fatal("a page was served without Pages")
	}
}
