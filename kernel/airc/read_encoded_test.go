package airc

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/continuum-grid/continuum/api"
)

// ReadEncoded hands out the stored envelopes: each decodes to what Read
// returns, carries its seq, and can go on the wire as it is.
func TestReadEncodedMatchesRead(t *testing.T) {
	e := newEnv(t, Options{})
	for i := range 10 {
		e.append([]string{"a", "b"}[i%2], map[string]any{"i": i})
	}
	want, err := e.log.Read(2, 5)
	if err != nil {
		t.Fatal(err)
	}
	var got []api.Event
	var seqs []uint64
	last, err := e.log.ReadEncoded(2, 5, func(seq uint64, env []byte) error {
		k, err := api.PeekEvent(env)
		if err != nil {
			return err
		}
		if k.Seq != seq {
			t.Errorf("envelope says seq %d, key %d", k.Seq, seq)
		}
		var ev api.Event
		if err := api.UnmarshalEvent(bytes.Clone(env), &ev); err != nil {
			return err
		}
		got = append(got, ev)
		seqs = append(seqs, seq)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if last != 7 || !reflect.DeepEqual(seqs, []uint64{3, 4, 5, 6, 7}) {
		t.Fatalf("last %d, seqs %v", last, seqs)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ReadEncoded decodes to\n%+v\nRead gives\n%+v", got, want)
	}

	// Past the head: nothing, and last stays where it was.
	if last, err := e.log.ReadEncoded(10, 5, func(uint64, []byte) error { t.Fatal("called past the head"); return nil }); err != nil || last != 10 {
		t.Fatalf("past the head: last %d, %v", last, err)
	}
	// An error from fn stops the read and comes back.
	stop := errors.New("stop")
	n := 0
	if _, err := e.log.ReadEncoded(0, 0, func(uint64, []byte) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("fn's error: %v after %d calls", err, n)
	}
}
