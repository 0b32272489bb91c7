package api

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// handleMirror is HandleParams without its hand-written codec: the reference
// the reflection encoder and DecodeParams give.
type handleMirror struct {
	Invocation string `msgpack:"invocation"`
	Command    string `msgpack:"command"`
	Params     any    `msgpack:"params"`
	Caller     string `msgpack:"caller"`
	DeadlineMs int64  `msgpack:"deadlineMs,omitempty"`
}

func TestHandleParamsCodecMatchesReflection(t *testing.T) {
	raw, _ := msgpack.Marshal(map[string]any{"n": 7, "text": "hi"})
	for _, p := range []HandleParams{
		{Invocation: "i1", Command: "demo/echo", Params: msgpack.RawMessage(raw), Caller: "c1"},
		{Invocation: "i2", Command: "x", Caller: "c2", DeadlineMs: 1_700_000_000_000},
		{Invocation: "i3", Command: "y", Params: map[string]any{"a": "b"}, DeadlineMs: -1},
		{},
	} {
		got, err := msgpack.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		want, err := msgpack.Marshal(handleMirror(p))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%+v: encoded %x, reflection %x", p, got, want)
		}
		var fast HandleParams
		if err := DecodeParams(got, &fast); err != nil {
			t.Fatal(err)
		}
		var slow handleMirror
		if err := DecodeParams(got, &slow); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(handleMirror(fast), slow) {
			t.Errorf("decoded %+v, reflection %+v", fast, slow)
		}
	}
}

func TestHandleParamsDecodeErrors(t *testing.T) {
	for _, v := range []any{
		[]int{1},
		map[string]any{"invocation": 5},
		map[string]any{"deadlineMs": "soon"},
		map[string]any{"caller": []int{1}},
	} {
		b, _ := msgpack.Marshal(v)
		var fast HandleParams
		errFast := DecodeParams(b, &fast)
		var slow handleMirror
		errSlow := DecodeParams(b, &slow)
		if CodeOf(errFast) != CodeInvalidArgument || CodeOf(errSlow) != CodeInvalidArgument {
			t.Errorf("%v: fast %v, reflection %v", v, errFast, errSlow)
		}
	}
	// Unknown keys are skipped and nil reads as absent.
	b, _ := msgpack.Marshal(map[string]any{"newer": []int{1, 2}, "params": nil, "command": "c"})
	var p HandleParams
	if err := DecodeParams(b, &p); err != nil || p.Command != "c" || p.Params != nil {
		t.Fatalf("%+v %v", p, err)
	}
}

func TestPingResultCodecMatchesReflection(t *testing.T) {
	type mirror struct {
		TS int64 `msgpack:"ts"`
	}
	for _, ts := range []int64{0, 1, -5, 1_700_000_000_123} {
		got, _ := msgpack.Marshal(PingResult{TS: ts})
		want, _ := msgpack.Marshal(mirror{TS: ts})
		if !bytes.Equal(got, want) {
			t.Errorf("%d: %x, reflection %x", ts, got, want)
		}
		var p PingResult
		if err := DecodeParams(got, &p); err != nil || p.TS != ts {
			t.Errorf("%d: decoded %d, %v", ts, p.TS, err)
		}
	}
	b, _ := msgpack.Marshal(map[string]any{"ts": "x"})
	var p PingResult
	if err := DecodeParams(b, &p); CodeOf(err) != CodeInvalidArgument {
		t.Fatalf("got %v", err)
	}
	b, _ = msgpack.Marshal(map[string]any{"other": 1, "ts": uint8(9)})
	if err := DecodeParams(b, &p); err != nil || p.TS != 9 {
		t.Fatalf("%+v %v", p, err)
	}
}

func TestEmptyDecodeMatchesReflection(t *testing.T) {
	type mirror struct{}
	for _, v := range []any{nil, map[string]any{}, map[string]any{"x": []int{1}}, []int{1}, 5, map[int]int{1: 2}} {
		b, _ := msgpack.Marshal(v)
		var fast Empty
		var slow mirror
		errFast, errSlow := DecodeParams(b, &fast), DecodeParams(b, &slow)
		if CodeOf(errFast) != CodeOf(errSlow) || (errFast == nil) != (errSlow == nil) {
			t.Errorf("%v: fast %v, reflection %v", v, errFast, errSlow)
		}
	}
}
