package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel/airc"
)

func TestRetentionFlagsParse(t *testing.T) {
	def, per, err := retentionConfig(100, "30d", []string{"general=count:5", "audit=none", "chat=age:90m,count:7"})
	if err != nil {
		t.Fatal(err)
	}
	if def != (airc.Retention{MaxCount: 100, MaxAge: 30 * 24 * time.Hour}) {
		t.Fatalf("default %+v", def)
	}
	want := map[string]airc.Retention{
		"general": {MaxCount: 5},
		"audit":   {},
		"chat":    {MaxCount: 7, MaxAge: 90 * time.Minute},
	}
	if len(per) != len(want) {
		t.Fatalf("per channel %+v", per)
	}
	for ch, r := range want {
		if got, ok := per[ch]; !ok || got != r {
			t.Fatalf("%s: %+v, want %+v", ch, got, r)
		}
	}
	for _, bad := range [][]string{
		{"general"}, {"=count:1"}, {"general="}, {"general=count:-1"}, {"general=count:x"},
		{"general=size:10"}, {"general=age:soon"}, {"general=count:1,count:2"}, {"a=count:1", "a=count:2"},
		{"general=age:-5m"},
	} {
		if _, _, err := retentionConfig(0, "", bad); err == nil {
			t.Errorf("--retain %q accepted", bad)
		}
	}
	if _, _, err := retentionConfig(-1, "", nil); err == nil {
		t.Error("--retain-count -1 accepted")
	}
	if _, _, err := retentionConfig(0, "3 weeks", nil); err == nil {
		t.Error("--retain-age '3 weeks' accepted")
	}
	// The daemon refuses to start on a bad value, before touching any state.
	var out bytes.Buffer
	dir := t.TempDir()
	err = run([]string{"--socket", filepath.Join(dir, "s"), "--state-dir", filepath.Join(dir, "st"), "--retain", "x=count:y"}, &out)
	if err == nil || !strings.Contains(err.Error(), "--retain") {
		t.Fatalf("run with a bad --retain: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "st")); err == nil {
		t.Fatal("a refused start created the state dir")
	}
}

// The retention flags of the real binary trim the log: a default count, a
// per-channel count, a per-channel age, and a channel exempted with none.
func TestRetentionFlagsTakeEffect(t *testing.T) {
	bin := daemonBinary(t)
	dir, err := os.MkdirTemp("", "ctmret")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	_, c := startBinary(t, bin, filepath.Join(dir, "d.sock"), filepath.Join(dir, "state"),
		"--retain-count", "4", "--retain", "small=count:2", "--retain", "brief=age:1s", "--retain", "keep=none",
		"--retain-interval", "100ms")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.DeclareClass(ctx, api.ClassConfig{Name: "chat:posted", SchemaVersion: "v1", Broadcast: true, Channel: api.ChannelByRoomID}); err != nil {
		t.Fatal(err)
	}
	for _, room := range []string{"other", "small", "brief", "keep"} {
		for i := 0; i < 10; i++ {
			if _, err := c.Emit(ctx, api.EmitParams{Name: "chat:posted", ID: fmt.Sprintf("%s-%d", room, i), Payload: map[string]any{"roomId": room}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := map[string]uint64{"other": 4, "small": 2, "brief": 0, "keep": 10}
	var st api.LogStats
	for {
		if err := c.Call(ctx, api.MethodLogStats, nil, &st); err != nil {
			t.Fatal(err)
		}
		have := map[string]uint64{}
		for _, ch := range st.Channels {
			have[ch.Channel] = ch.Events
		}
		match := len(have) == len(want)
		for ch, n := range want {
			match = match && have[ch] == n
		}
		if match {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("channels hold %v, want %v", have, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Count keeps the newest: the oldest are the ones dropped.
	res, err := c.Replay(ctx, api.ReplayParams{Channel: "small"})
	if err != nil || len(res.Events) != 2 || res.Events[0].ID != "small-8" || res.Events[1].ID != "small-9" {
		t.Fatalf("small keeps %v (%v), want small-8, small-9", res.Events, err)
	}
	// A dropped id is still known: emitting it again stores nothing.
	again, err := c.Emit(ctx, api.EmitParams{Name: "chat:posted", ID: "small-0", Payload: map[string]any{"roomId": "small"}})
	if err != nil || again.Seq != 11 {
		t.Fatalf("re-emit of a dropped id: %+v %v", again, err)
	}
	if res, _ := c.Replay(ctx, api.ReplayParams{Channel: "small"}); len(res.Events) != 2 {
		t.Fatalf("a dropped id was stored again: %d events", len(res.Events))
	}
}
