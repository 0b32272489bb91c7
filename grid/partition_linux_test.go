//go:build linux

package grid_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/daemon"
	"github.com/continuum-grid/continuum/grid"
	"github.com/continuum-grid/continuum/grid/link"
	"github.com/continuum-grid/continuum/ipc/client"
	"github.com/continuum-grid/continuum/kernel"
	"github.com/continuum-grid/continuum/kernel/airc"
	"golang.org/x/sys/unix"
)

// Partition and heal between three daemons whose QUIC sockets live in
// network namespaces of their own, joined pairwise by veth links (a full
// mesh, one /24 per pair). While all three emit, seeded random rounds take
// pair links down and up (ip link set down); then everything heals, and
// every pair must hold equal vectors and byte-identical transcripts, with
// every acknowledged emit present. Needs root (CI is root); set
// CONTINUUM_PARTITION_SEED to replay a run.
func TestPartitionHeal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make network namespaces (ip netns); CI runs as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip tool (iproute2)")
	}
	seed := time.Now().UnixNano()
	if s := os.Getenv("CONTINUUM_PARTITION_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("CONTINUUM_PARTITION_SEED: %v", err)
		}
	}
	t.Logf("seed %d (CONTINUUM_PARTITION_SEED=%d replays it)", seed, seed)
	rng := rand.New(rand.NewSource(seed))

	const n = 3
	removeStaleNamespaces(t)
	tag := fmt.Sprintf("crp%d", os.Getpid())
	ns := make([]string, n)
	for i := range ns {
		ns[i] = fmt.Sprintf("%s-%d", tag, i)
		run(t, "ip", "netns", "add", ns[i])
		name := ns[i]
		t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
		run(t, "ip", "-n", ns[i], "link", "set", "lo", "up")
		// The node's own address, on lo, reached by the others through
		// their pair link to it: it listens there and says so in its hello
		// (a wildcard listener's addresses would be read in this test's
		// namespace, not the node's).
		run(t, "ip", "-n", ns[i], "addr", "add", nodeAddr(i)+"/32", "dev", "lo")
	}
	// addr[i][j] is i's address on the i–j link; dev[i][j] its device.
	addr := [n][n]string{}
	dev := [n][n]string{}
	subnet := 0
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			subnet++
			dev[i][j], dev[j][i] = fmt.Sprintf("v%d%d", i, j), fmt.Sprintf("v%d%d", j, i)
			run(t, "ip", "link", "add", dev[i][j], "netns", ns[i], "type", "veth", "peer", "name", dev[j][i], "netns", ns[j])
			addr[i][j], addr[j][i] = fmt.Sprintf("10.231.%d.1", subnet), fmt.Sprintf("10.231.%d.2", subnet)
			for _, e := range [][2]int{{i, j}, {j, i}} {
				run(t, "ip", "-n", ns[e[0]], "addr", "add", addr[e[0]][e[1]]+"/24", "dev", dev[e[0]][e[1]])
			}
		}
	}
	// setLink takes the i–j pair link up or down. Down drops the routes
	// through it, so up puts the routes to each other's node address back.
	setLink := func(i, j int, up bool) {
		state := "down"
		if up {
			state = "up"
		}
		run(t, "ip", "-n", ns[i], "link", "set", dev[i][j], state)
		run(t, "ip", "-n", ns[j], "link", "set", dev[j][i], state)
		if up {
			run(t, "ip", "-n", ns[i], "route", "replace", nodeAddr(j)+"/32", "via", addr[j][i], "dev", dev[i][j])
			run(t, "ip", "-n", ns[j], "route", "replace", nodeAddr(i)+"/32", "via", addr[i][j], "dev", dev[j][i])
		}
	}
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			setLink(i, j, true)
		}
	}

	// Links that notice a partition within a couple of seconds and come
	// back fast once it heals.
	links := link.Options{BackoffMin: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond, HelloTimeout: 2 * time.Second, IdleTimeout: 2 * time.Second, KeepAlive: 500 * time.Millisecond, DialTimeout: 2 * time.Second}
	ds := make([]*daemon.Daemon, n)
	cs := make([]*client.Client, n)
	ids := make([]string, n)
	base := t.TempDir()
	if err := os.Chmod(base, 0o700); err != nil { // the socket's folder must be private
		t.Fatal(err)
	}
	for i := range ds {
		ds[i] = startInNetns(t, ns[i], daemon.Config{
			Kernel: kernel.Config{StateDir: filepath.Join(base, fmt.Sprint(i))},
			Socket: filepath.Join(base, fmt.Sprintf("%d.sock", i)),
			Grid:   grid.Options{ListenQUIC: nodeAddr(i) + ":7946", Link: links, Logger: partitionLogger(t, i)},
		})
		d := ds[i]
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			d.Shutdown(ctx)
		})
		c, err := client.NewInProcess(ds[i].Kernel())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		cs[i] = c
		ids[i] = ds[i].Kernel().PeerID()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for i := range cs {
		if _, err := cs[i].DeclareClass(ctx, api.ClassConfig{Name: "chat:posted", Broadcast: true, Channel: api.ChannelByRoomID, SchemaVersion: "v1"}); err != nil {
			t.Fatal(err)
		}
		for j := range cs {
			if i != j {
				p := api.TrustParams{PeerID: ids[j], Circle: "household", Addrs: []string{nodeAddr(j) + ":7946"}}
				if err := cs[i].Call(ctx, api.MethodGridTrust, p, nil); err != nil {
					t.Fatal(err)
				}
			}
		}
	}

	// Everyone emits until the partitions are over; acked counts what the
	// daemons acknowledged.
	var acked [n]int
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := cs[i].Emit(ctx, api.EmitParams{Name: "chat:posted", ID: fmt.Sprintf("n%d-%d", i, k), Payload: map[string]any{"roomId": "general", "k": k}})
				if err != nil {
					t.Errorf("emit on %d: %v", i, err)
					return
				}
				acked[i]++
				time.Sleep(time.Duration(1+k%3) * time.Millisecond / 2)
			}
		}()
	}
	var rounds []string
	for r := 0; r < 8; r++ {
		var down []string
		for i := 0; i < n; i++ {
			for j := i + 1; j < n; j++ {
				up := rng.Intn(2) == 0
				if !up {
					down = append(down, fmt.Sprintf("%d-%d", i, j))
				}
				setLink(i, j, up)
			}
		}
		rounds = append(rounds, "["+strings.Join(down, " ")+"]")
		time.Sleep(time.Duration(300+rng.Intn(2500)) * time.Millisecond)
	}
	t.Logf("partitions per round (pairs down): %s", strings.Join(rounds, " "))
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			setLink(i, j, true)
		}
	}
	close(stop)
	wg.Wait()
	healed := time.Now()

	want := map[string]uint64{}
	for i := range ids {
		want[ids[i]] = uint64(acked[i])
	}
	t.Logf("acknowledged emits: %v", acked)
	vec := func(i int) map[string]uint64 {
		hw, err := ds[i].Kernel().Log().HighWater()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]uint64{}
		for origin, chans := range hw {
			if v, ok := chans["general"]; ok {
				out[origin] = v
			}
		}
		return out
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok := true
		for i := range ds {
			if !maps.Equal(vec(i), want) {
				ok = false
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			for i := range ds {
				t.Logf("node %d holds %v", i, vec(i))
			}
			t.Fatalf("no convergence 60s after the heal; want %v", want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("converged %v after the heal", time.Since(healed).Round(time.Millisecond))
	for i := range ds {
		t.Logf("node %d: link.up %d, repl.appended %d, repl.duplicate %d, repl.stall %d", i,
			ds[i].Grid().Counters().Get("link.up"), replCount(ds[i], "appended"), replCount(ds[i], "duplicate"), replCount(ds[i], "stall"))
	}
	first := transcript(t, ds[0].Kernel().Log(), "general")
	for i := 1; i < n; i++ {
		if got := transcript(t, ds[i].Kernel().Log(), "general"); !bytes.Equal(got, first) {
			t.Fatalf("node %d's transcript (%d bytes) differs from node 0's (%d bytes)", i, len(got), len(first))
		}
	}
	for i := range ds {
		holes, _ := ds[i].Kernel().Log().Holes(ids[(i+1)%n], "general")
		forks, _ := ds[i].Kernel().Log().ForkedOrigins()
		if len(holes) != 0 || len(forks) != 0 {
			t.Errorf("node %d: holes %v, forks %v", i, holes, forks)
		}
	}
}

// removeStaleNamespaces deletes the namespaces of earlier runs of this
// test whose process is gone (killed before its cleanup ran). A namespace
// of a run that is still going is left alone.
func removeStaleNamespaces(t *testing.T) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		pid, _, ok := strings.Cut(strings.TrimPrefix(name, "crp"), "-")
		if !ok || !strings.HasPrefix(name, "crp") {
			continue
		}
		if _, err := strconv.Atoi(pid); err != nil {
			continue
		}
		if _, err := os.Stat("/proc/" + pid); os.IsNotExist(err) {
			t.Logf("removing namespace %s of a run that is gone", name)
			exec.Command("ip", "netns", "del", name).Run()
		}
	}
}

// nodeAddr is node i's own address (on its lo).
func nodeAddr(i int) string { return fmt.Sprintf("10.232.0.%d", i+1) }

// startInNetns starts a daemon whose sockets are made inside the network
// namespace name: the goroutine's OS thread joins it and is never given
// back to the runtime (it ends with the goroutine), so no other goroutine
// ever runs in that namespace.
func startInNetns(t *testing.T, name string, cfg daemon.Config) *daemon.Daemon {
	t.Helper()
	type result struct {
		d   *daemon.Daemon
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		f, err := os.Open(filepath.Join("/var/run/netns", name))
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("setns %s: %v", name, err)}
			return
		}
		d, err := daemon.Start(cfg)
		ch <- result{d, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.d
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// transcript is channel's events in transcript order without their local
// seqs: what every peer must hold byte for byte.
func transcript(t *testing.T, l *airc.Log, channel string) []byte {
	t.Helper()
	var out []byte
	after := ""
	for {
		evs, next, err := l.Replay(channel, after, "", airc.MaxReplayLimit)
		if err != nil {
			t.Fatal(err)
		}
		for i := range evs {
			evs[i].Seq = 0
			if out, err = api.AppendEvent(out, &evs[i]); err != nil {
				t.Fatal(err)
			}
		}
		if next == "" || len(evs) == 0 {
			return out
		}
		after = next
	}
}

func replCount(d *daemon.Daemon, reason string) uint64 {
	var n uint64
	for _, ps := range d.Grid().Replicator().Stats() {
		n += ps.Counts[reason]
	}
	return n
}

// partitionLogger writes node i's grid log to a file that the test prints
// when it fails.
func partitionLogger(t *testing.T, i int) *slog.Logger {
	path := filepath.Join(t.TempDir(), fmt.Sprintf("grid-%d.log", i))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		if t.Failed() {
			b, _ := os.ReadFile(path)
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("node %d's grid log (tail):\n%s", i, b)
		}
	})
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
