package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The real binary serves /metrics with --metrics-listen, and refuses an
// address off loopback before it starts.
func TestBinaryMetricsListen(t *testing.T) {
	bin := daemonBinary(t)
	dir, err := os.MkdirTemp("", "ctmm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	out, err := exec.Command(bin, "--socket", filepath.Join(dir, "x.sock"), "--state-dir", filepath.Join(dir, "x"), "--metrics-listen", "0.0.0.0:9464").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "only a loopback address") {
		t.Fatalf("--metrics-listen 0.0.0.0:9464: err %v\n%s", err, out)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	p, c := startBinary(t, bin, filepath.Join(dir, "d.sock"), filepath.Join(dir, "state"), "--metrics-listen", addr)
	if _, err := c.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `continuum_calls_total{method="kernel/ping",code="ok"} 1`) {
		t.Fatalf("/metrics after one ping:\n%s", body)
	}
	p.stop(t)
}
