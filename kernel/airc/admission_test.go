package airc

import (
	"errors"
	"strings"
	"testing"

	"github.com/continuum-grid/continuum/api"
)

// tableView is an admission view held in maps: the states of the table.
type tableView struct {
	ids    map[string]bool
	chains map[string]struct {
		hw  uint64
		tip Hash
	}
	slots map[uint64]slotInfo // of origin "o", channel "c"
	fail  error
}

func (v *tableView) seen(origin, id string) (bool, error) { return v.ids[origin+"/"+id], v.fail }
func (v *tableView) chain(origin, channel string) (uint64, Hash, error) {
	c := v.chains[origin+"/"+channel]
	return c.hw, c.tip, v.fail
}
func (v *tableView) slot(origin, channel string, s uint64) (slotInfo, bool, error) {
	if origin != "o" || channel != "c" {
		return slotInfo{}, false, v.fail
	}
	x, ok := v.slots[s]
	return x, ok, v.fail
}

func h(b byte) Hash { var x Hash; x[0] = b; return x }

// The admission rule, case by case: each row a state of the log, an
// event, and what admission must decide.
func TestAdmissionRule(t *testing.T) {
	// A chain of o on c held at originSeq 1..3 and 6, with a hole at 4..5.
	held := func() *tableView {
		return &tableView{
			ids: map[string]bool{"o/known": true},
			chains: map[string]struct {
				hw  uint64
				tip Hash
			}{"o/c": {6, h(6)}},
			slots: map[uint64]slotInfo{1: {seq: 1, hash: h(1), prev: zeroHash[:]}, 2: {seq: 2, hash: h(2), prev: ptrs(h(1))}, 3: {seq: 3, hash: h(3), prev: ptrs(h(2))}, 6: {seq: 9, hash: h(6), prev: ptrs(h(5))}},
		}
	}
	ev := func(id string, originSeq uint64, prev Hash, lamport uint64) *api.Event {
		return &api.Event{Origin: "o", Channel: "c", ID: id, OriginSeq: originSeq, Prev: ptrs(prev), Lamport: lamport}
	}
	const clock, skew = 100, 50
	cases := []struct {
		name   string
		view   *tableView
		ev     *api.Event
		hash   Hash
		want   verdict
		detail string // substring of want.detail
	}{
		{"duplicate id", held(), ev("known", 7, h(6), 101), h(7), verdict{outcome: IngestDuplicate}, ""},
		{"next in chain", held(), ev("e7", 7, h(6), 101), h(7), verdict{outcome: IngestAppended, advance: true}, ""},
		{"first of a new chain", &tableView{}, ev("e1", 1, zeroHash, 1), h(1), verdict{outcome: IngestAppended, advance: true}, ""},
		{"next originSeq, wrong prev", held(), ev("e7", 7, h(9), 101), h(7), verdict{outcome: IngestFork, fork: true}, "prev does not match the hash of originSeq 6"},
		{"gap", held(), ev("e9", 9, h(8), 101), h(9), verdict{outcome: IngestGap, advance: true, gapFrom: 7, gapTo: 8}, ""},
		{"fills the hole, linked both sides", held(), ev("e4", 4, h(3), 90), h(4), verdict{outcome: IngestFilled, fill: true}, ""},
		{"fills the hole, the next does not link to it", held(), ev("e5", 5, h(4), 90), h(9), verdict{outcome: IngestFork, fork: true}, "the stored originSeq 6 (seq 9) does not link to it"},
		{"fills the hole, wrong prev", held(), ev("e4", 4, h(8), 90), h(4), verdict{outcome: IngestFork, fork: true}, "prev does not match the stored originSeq 3"},
		{"held slot, other event", held(), ev("other", 2, h(1), 90), h(0x22), verdict{outcome: IngestFork, fork: true}, "holds originSeq 2"},
		{"originSeq 1 with a prev", &tableView{chains: map[string]struct {
			hw  uint64
			tip Hash
		}{"o/c": {3, h(3)}}}, ev("e1", 1, h(5), 1), h(1), verdict{outcome: IngestFork, fork: true}, "originSeq 1 with a non-zero prev"},
		{"lamport at the skew", held(), ev("e7", 7, h(6), clock+skew), h(7), verdict{outcome: IngestAppended, advance: true}, ""},
		{"lamport beyond the skew", held(), ev("e7", 7, h(6), clock+skew+1), h(7), verdict{outcome: IngestRejected, refuse: RejectLamportBound}, "beyond the bound"},
		{"lamport beyond 2^53-1", held(), ev("e7", 7, h(6), MaxLamport+1), h(7), verdict{outcome: IngestRejected, refuse: RejectLamportBound}, "ceiling"},
		{"lamport far behind is fine", held(), ev("e7", 7, h(6), 1), h(7), verdict{outcome: IngestAppended, advance: true}, ""},
		{"duplicate wins over a bad lamport", held(), ev("known", 7, h(6), MaxLamport+1), h(7), verdict{outcome: IngestDuplicate}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := admit(tc.view, tc.ev, tc.hash, clock, skew)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(got.detail, tc.detail) {
				t.Fatalf("detail %q, want it to say %q", got.detail, tc.detail)
			}
			got.detail = ""
			if got != tc.want {
				t.Fatalf("admit = %+v, want %+v", got, tc.want)
			}
		})
	}
	// A view that cannot be read fails admission; it never guesses.
	broken := held()
	broken.fail = errors.New("disk gone")
	if _, err := admit(broken, ev("e7", 7, h(6), 101), h(7), clock, skew); err == nil {
		t.Fatal("admission read through a failing view")
	}
}

func ptrs(x Hash) []byte { return append([]byte(nil), x[:]...) }
