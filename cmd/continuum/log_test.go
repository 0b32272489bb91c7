package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/daemon"
	"github.com/continuum-grid/continuum/ipc/client"
	"github.com/continuum-grid/continuum/kernel"
	"github.com/continuum-grid/continuum/kernel/airc"
)

// logDaemon is an in-process daemon on a state dir the test knows, so the
// test can stop it, compact its file and start it again.
type logDaemon struct {
	sock, state string
	d           *daemon.Daemon
}

func startLogDaemon(t *testing.T, state string, kc kernel.Config) *logDaemon {
	t.Helper()
	sockDir, err := os.MkdirTemp("", "ccli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	kc.StateDir = state
	ld := &logDaemon{sock: filepath.Join(sockDir, "d.sock"), state: state}
	if ld.d, err = daemon.Start(daemon.Config{Socket: ld.sock, Kernel: kc}); err != nil {
		t.Fatalf("start daemon: %v", err)
	}
	t.Cleanup(func() { ld.stop(t) })
	return ld
}

func (ld *logDaemon) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ld.d.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func (ld *logDaemon) client(t *testing.T) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, ld.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func emitRoom(t *testing.T, c *client.Client, room, id string, extra any) api.EmitResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.Emit(ctx, api.EmitParams{Name: "chat:posted", ID: id, Payload: map[string]any{"roomId": room, "x": extra}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// jsonLines decodes one event per line.
func jsonLines(t *testing.T, s string) []api.Event {
	t.Helper()
	var out []api.Event
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if line != "" {
			out = append(out, decode[api.Event](t, line))
		}
	}
	return out
}

var moreRE = regexp.MustCompile(`more: continuum log replay --channel (\S+) (--after|--before) (\S+)`)

func TestLogStatsAndReplay(t *testing.T) {
	ld := startLogDaemon(t, t.TempDir(), kernel.Config{})
	sock := ld.sock
	r := cli(t, sock, "log", "stats").ok(t)
	if !strings.Contains(r.stdout, "no channels yet") || !regexp.MustCompile(`head:\s+0\n`).MatchString(r.stdout) {
		t.Fatalf("stats of an empty log:\n%s", r.stdout)
	}
	cli(t, sock, "events", "declare", "chat:posted", "--schema-version", "v1", "--broadcast", "--channel", "byRoomId").ok(t)
	c := ld.client(t)
	for i := 0; i < 25; i++ {
		emitRoom(t, c, "general", fmt.Sprintf("m%02d", i), i)
	}
	emitRoom(t, c, "random", "elsewhere", 0)

	r = cli(t, sock, "log", "stats").ok(t)
	for _, re := range []string{`head:\s+26\n`, `events:\s+26\n`, `epoch:\s+1\n`, `2 channels:`, `CHANNEL\s+EVENTS\s+BYTES\s+LAST-SEQ\s+LAST-LAMPORT`, `\ngeneral\s+25\s+\d+\s+25\s+25\n`, `\nrandom\s+1\s+\d+\s+26\s+26\n`} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("log stats lacks %s:\n%s", re, r.stdout)
		}
	}
	st := decode[api.LogStats](t, cli(t, sock, "log", "stats", "--json").ok(t).stdout)
	if st.Head != 26 || st.Events != 26 || len(st.Channels) != 2 || st.Channels[0].Channel != "general" || st.Channels[0].Events != 25 || st.FileBytes == 0 {
		t.Fatalf("log stats --json: %+v", st)
	}

	// Text pages: a table and, on stderr, how to get the next page.
	r = cli(t, sock, "log", "replay", "--channel", "general", "--limit", "10").ok(t)
	rows := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(rows) != 11 || !strings.HasPrefix(rows[0], "SEQ") || !strings.Contains(rows[1], "m00") || !strings.Contains(rows[10], "m09") {
		t.Fatalf("first page:\n%s", r.stdout)
	}
	m := moreRE.FindStringSubmatch(r.stderr)
	if m == nil || m[1] != "general" || m[2] != "--after" {
		t.Fatalf("no next-page hint: %q", r.stderr)
	}
	r = cli(t, sock, "log", "replay", "--channel", "general", "--limit", "10", "--after", m[3]).ok(t)
	if rows = strings.Split(strings.TrimSpace(r.stdout), "\n"); len(rows) != 11 || !strings.Contains(rows[1], "m10") {
		t.Fatalf("second page:\n%s", r.stdout)
	}

	all := decode[api.ReplayResult](t, cli(t, sock, "log", "replay", "--channel", "general", "--limit", "7", "--all", "--json").ok(t).stdout)
	if len(all.Events) != 25 || all.Next != nil {
		t.Fatalf("--all: %d events, next %v", len(all.Events), all.Next)
	}
	for i, ev := range all.Events {
		if ev.ID != fmt.Sprintf("m%02d", i) || ev.Channel != "general" || ev.Seq != uint64(i+1) {
			t.Fatalf("--all event %d: %s seq %d on %s", i, ev.ID, ev.Seq, ev.Channel)
		}
	}
	newest := decode[api.ReplayResult](t, cli(t, sock, "log", "replay", "--channel", "general", "--before", "end", "--limit", "5", "--json").ok(t).stdout)
	if len(newest.Events) != 5 || newest.Events[0].ID != "m20" || newest.Events[4].ID != "m24" || newest.Next == nil {
		t.Fatalf("--before end: %+v", newest)
	}
	back := decode[api.ReplayResult](t, cli(t, sock, "log", "replay", "--channel", "general", "--before", "end", "--limit", "10", "--all", "--json").ok(t).stdout)
	if len(back.Events) != 25 || back.Events[0].ID != "m00" || back.Events[24].ID != "m24" {
		t.Fatalf("--before end --all: %d events", len(back.Events))
	}
	if empty := decode[api.ReplayResult](t, cli(t, sock, "log", "replay", "--channel", "nobody", "--json").ok(t).stdout); empty.Events == nil || len(empty.Events) != 0 {
		t.Fatalf("an empty channel: %+v", empty)
	}

	for _, bad := range [][]string{
		{"log", "replay"},
		{"log", "replay", "--channel", "general", "--limit", "501"},
		{"log", "replay", "--channel", "general", "--after", "x", "--before", "end"},
		{"log", "tail"},
		{"log", "tail", "--channel", "general", "--from", "yesterday"},
	} {
		if r := cli(t, sock, bad...); r.code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", bad, r.code, r.stderr)
		}
	}
	if r := cli(t, sock, "log", "replay", "--channel", "general", "--after", "not-a-cursor"); r.code != 1 || !strings.HasPrefix(r.stderr, "error: invalid_argument: ") {
		t.Errorf("bad cursor: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestLogTail(t *testing.T) {
	ld := startLogDaemon(t, t.TempDir(), kernel.Config{})
	sock := ld.sock
	cli(t, sock, "events", "declare", "chat:posted", "--schema-version", "v1", "--broadcast", "--channel", "byRoomId").ok(t)
	cli(t, sock, "events", "declare", "chat:typing", "--schema-version", "v1").ok(t) // local
	c := ld.client(t)
	for i := 0; i < 20; i++ {
		emitRoom(t, c, "general", fmt.Sprintf("old%02d", i), i)
	}

	fromStart, fsErr, stopFromStart := background(t, sock, "log", "tail", "--channel", "general", "--from", "start", "--json")
	now, nowErr, stopNow := background(t, sock, "log", "tail", "chat:posted", "--channel", "general")
	waitFor(t, "the tails to subscribe", func() bool {
		return strings.Contains(fsErr.String(), "following channel general") && strings.Contains(nowErr.String(), "after seq 20")
	})
	for i := 0; i < 5; i++ {
		emitRoom(t, c, "general", fmt.Sprintf("new%d", i), i)
		emitRoom(t, c, "random", fmt.Sprintf("other%d", i), i)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := c.Emit(ctx, api.EmitParams{Name: "chat:typing"}); err != nil { // local: never in a log tail
			t.Fatal(err)
		}
		cancel()
	}
	waitFor(t, "25 events from start", func() bool { return strings.Count(fromStart.String(), "\n") >= 25 })
	waitFor(t, "5 new events", func() bool { return strings.Count(now.String(), "\n") >= 5 })
	time.Sleep(100 * time.Millisecond) // anything extra would show up now
	if code := stopFromStart(); code != 0 {
		t.Fatalf("tail exit %d: %s", code, fsErr.String())
	}
	if code := stopNow(); code != 0 {
		t.Fatalf("tail exit %d: %s", code, nowErr.String())
	}
	evs := jsonLines(t, fromStart.String())
	if len(evs) != 25 {
		t.Fatalf("from start printed %d events, want 25:\n%s", len(evs), fromStart.String())
	}
	for i, ev := range evs {
		want := fmt.Sprintf("old%02d", i)
		if i >= 20 {
			want = fmt.Sprintf("new%d", i-20)
		}
		if ev.ID != want || ev.Channel != "general" || len(ev.Sig) != 64 {
			t.Fatalf("line %d: %s on %s (sig %d bytes), want %s", i, ev.ID, ev.Channel, len(ev.Sig), want)
		}
	}
	lines := strings.Split(strings.TrimSpace(now.String()), "\n")
	if !strings.HasPrefix(lines[0], "SEQ ") {
		t.Fatalf("tail from now has no header:\n%s", now.String())
	}
	lines = lines[1:]
	if len(lines) != 5 {
		t.Fatalf("tail from now printed %d lines:\n%s", len(lines), now.String())
	}
	for i, line := range lines {
		f := strings.Fields(line)
		if len(f) < 6 || f[0] != strconv.Itoa(21+2*i) || f[3] != "chat:posted" || !strings.Contains(line, `"roomId":"general"`) {
			t.Fatalf("line %d: %q", i, line)
		}
	}
}

// log tail --durable acknowledges what it printed: the next run goes on after
// it.
func TestLogTailDurable(t *testing.T) {
	ld := startLogDaemon(t, t.TempDir(), kernel.Config{})
	sock := ld.sock
	cli(t, sock, "events", "declare", "chat:posted", "--schema-version", "v1", "--broadcast", "--channel", "byRoomId").ok(t)
	c := ld.client(t)
	for i := 0; i < 6; i++ {
		emitRoom(t, c, "general", fmt.Sprintf("a%d", i), i)
	}
	out, errOut, stop := background(t, sock, "log", "tail", "--channel", "general", "--durable", "notes", "--from", "start", "--json")
	waitFor(t, "6 events", func() bool { return strings.Count(out.String(), "\n") >= 6 })
	// Wait for the ack of the last printed event to reach the daemon.
	waitFor(t, "the cursor at 6", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sub, err := c.Subscribe(ctx, api.SubscribeParams{Pattern: "none:none", Durable: "notes"})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close(ctx)
		return sub.Cursor() == 6
	})
	if code := stop(); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	emitRoom(t, c, "general", "b0", 0)
	emitRoom(t, c, "general", "b1", 1)
	out2, errOut2, stop2 := background(t, sock, "log", "tail", "--channel", "general", "--durable", "notes", "--from", "start", "--json")
	waitFor(t, "2 events", func() bool { return strings.Count(out2.String(), "\n") >= 2 })
	time.Sleep(100 * time.Millisecond)
	if code := stop2(); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut2.String())
	}
	evs := jsonLines(t, out2.String())
	if len(evs) != 2 || evs[0].ID != "b0" || evs[1].ID != "b1" {
		t.Fatalf("second run printed %v", ids(evs))
	}
}

func ids(evs []api.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

// log compact refuses while the daemon holds the file, shrinks the file
// once it is stopped, and keeps every event, cursor, class and the identity.
func TestLogCompact(t *testing.T) {
	state := t.TempDir()
	ld := startLogDaemon(t, state, kernel.Config{DefaultRetention: airc.Retention{MaxCount: 10}, RetentionInterval: 20 * time.Millisecond})
	cli(t, ld.sock, "events", "declare", "chat:posted", "--schema-version", "v1", "--broadcast", "--channel", "byRoomId").ok(t)
	c := ld.client(t)
	pad := strings.Repeat("x", 8<<10)
	// Eight emitters share the commits: 400 fsyncs one by one would be slow.
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 400; i += 8 {
				if _, err := c.Emit(context.Background(), api.EmitParams{Name: "chat:posted", ID: fmt.Sprintf("m%03d", i), Payload: map[string]any{"roomId": "general", "x": pad}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if err := c.Ack(context.Background(), "reader", 395); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "retention to keep 10", func() bool {
		return decode[api.LogStats](t, cli(t, ld.sock, "log", "stats", "--json").ok(t).stdout).Events == 10
	})
	before := decode[api.ReplayResult](t, cli(t, ld.sock, "log", "replay", "--channel", "general", "--json").ok(t).stdout)
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	r := cli(t, "", "log", "compact", "--state-dir", state)
	if r.code != 1 || !strings.Contains(r.stderr, "in use by a running continuumd: stop it first") {
		t.Fatalf("compact while running: exit %d, stderr %q", r.code, r.stderr)
	}
	c.Close()
	ld.stop(t)

	r = cli(t, "", "log", "compact", "--state-dir", state, "--json").ok(t)
	res := decode[compactResult](t, r.stdout)
	if res.Path != filepath.Join(state, "continuum.db") || res.After <= 0 || res.After >= res.Before/2 {
		t.Fatalf("compact: %+v (the log went from 400 events of 8 KiB to 10)", res)
	}
	if _, err := os.Stat(res.Path + ".compact"); err == nil {
		t.Fatal("the temporary copy was left behind")
	}
	// A second compaction has nothing to give back: the file is kept as it
	// was (never grown), and the command says so.
	fi, err := os.Stat(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	r = cli(t, "", "log", "compact", "--state-dir", state).ok(t)
	if !strings.HasPrefix(r.stdout, "kept "+res.Path+" as it was") || !strings.Contains(r.stderr, "little free space") {
		t.Fatalf("second compact: stdout %q, stderr %q", r.stdout, r.stderr)
	}
	if fi2, err := os.Stat(res.Path); err != nil || fi2.Size() != fi.Size() {
		t.Fatalf("the kept file changed: %v → %v (%v)", fi.Size(), fi2, err)
	}

	ld2 := startLogDaemon(t, state, kernel.Config{})
	c2 := ld2.client(t)
	after := decode[api.ReplayResult](t, cli(t, ld2.sock, "log", "replay", "--channel", "general", "--json").ok(t).stdout)
	if len(after.Events) != 10 || len(before.Events) != 10 {
		t.Fatalf("events before %d, after %d", len(before.Events), len(after.Events))
	}
	for i := range after.Events {
		b, a := before.Events[i], after.Events[i]
		if a.ID != b.ID || a.Seq != b.Seq || a.Lamport != b.Lamport || string(a.Sig) != string(b.Sig) {
			t.Fatalf("event %d changed: %+v vs %+v", i, a, b)
		}
	}
	if info2, err := c2.Info(context.Background()); err != nil || info2.PeerID != info.PeerID {
		t.Fatalf("peer id %q after compaction, %q before (%v)", info2.PeerID, info.PeerID, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sub, err := c2.Subscribe(ctx, api.SubscribeParams{Pattern: "*", Durable: "reader"})
	if err != nil || sub.Cursor() != 395 {
		t.Fatalf("durable cursor after compaction: %v %v", sub, err)
	}
	if cl, err := c2.GetClass(ctx, "chat:posted"); err != nil || cl == nil {
		t.Fatalf("class lost: %v %v", cl, err)
	}
	// The next emit goes on from the old head.
	if res := emitRoom(t, c2, "general", "next", 0); res.Seq != 401 {
		t.Fatalf("emit after compaction got seq %d, want 401", res.Seq)
	}

	if r := cli(t, "", "log", "compact", "--state-dir", filepath.Join(state, "nope")); r.code != 1 || !strings.Contains(r.stderr, "no state file") {
		t.Fatalf("compact of a missing file: exit %d, %q", r.code, r.stderr)
	}
}
