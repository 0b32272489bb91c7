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
